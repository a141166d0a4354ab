//! Properties of the pipeline's aggregation, checked on random trade streams.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use atalaya_engine::{EngineConfig, Pipeline};
use atalaya_model::{Candle, Envelope, Event, InstrumentId, Side, Symbol, Timeframe, Trade};
use proptest::prelude::*;

const MIN: i64 = 60_000_000_000;

fn closed(out: &[Envelope<Event>], tf: Timeframe) -> Vec<Candle> {
    out.iter()
        .filter_map(|e| match &e.payload {
            Event::Candle(c) if c.timeframe() == tf => Some(*c),
            _ => None,
        })
        .collect()
}

/// Trades as (gap in ms from the previous trade, price, quantity, instrument 0 or 1).
fn trades() -> impl Strategy<Value = Vec<(i64, f64, f64, u8)>> {
    prop::collection::vec(
        (0i64..200_000, 1.0f64..1000.0, 0.001f64..10.0, 0u8..2),
        1..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every 5-minute bar equals the aggregation of its 1-minute bars, volume is conserved,
    /// and the same input gives the same output.
    #[test]
    fn higher_timeframes_agree_with_lower_ones(ts in trades()) {
        let ids: [InstrumentId; 2] = ["p:AAA/USD".parse().unwrap(), "p:BBB/USD".parse().unwrap()];
        let cfg = EngineConfig { timeframes: vec![Timeframe::M1, Timeframe::M5], ..EngineConfig::default() };
        let run = || {
            let mut p = Pipeline::new(cfg.clone()).unwrap();
            let src = Symbol::new("prop").unwrap();
            let mut out = Vec::new();
            let mut t = 0i64;
            let mut total = [0.0f64; 2];
            for (k, &(gap_ms, price, qty, inst)) in ts.iter().enumerate() {
                t += gap_ms * 1_000_000;
                let i = usize::from(inst);
                total[i] += qty;
                let tr = Trade::new(ids[i], k as u64, price, qty, Side::Buy).unwrap();
                out.extend(p.process(&Envelope::new(k as u64, t, t, src, Event::Trade(tr))).iter().cloned());
            }
            let end = Timeframe::M5.open_time(t) + 5 * MIN;
            out.extend(p.process(&Envelope::new(0, end, end, src, Event::Heartbeat)).iter().cloned());
            (out, total, p.stats())
        };
        let (out, total, stats) = run();
        let (again, _, _) = run();
        prop_assert_eq!(&out, &again);
        prop_assert_eq!(stats.late, 0);
        for (i, id) in ids.iter().enumerate() {
            let m1: Vec<Candle> = closed(&out, Timeframe::M1).into_iter().filter(|c| c.instrument() == *id).collect();
            let m5: Vec<Candle> = closed(&out, Timeframe::M5).into_iter().filter(|c| c.instrument() == *id).collect();
            let v1: f64 = m1.iter().map(Candle::volume).sum();
            prop_assert!((v1 - total[i]).abs() <= 1e-9 * total[i].max(1.0));
            for b in &m5 {
                let parts: Vec<&Candle> = m1.iter().filter(|c| Timeframe::M5.open_time(c.open_time()) == b.open_time()).collect();
                prop_assert!(!parts.is_empty());
                prop_assert_eq!(b.open(), parts[0].open());
                prop_assert_eq!(b.close(), parts[parts.len() - 1].close());
                prop_assert_eq!(b.high(), parts.iter().map(|c| c.high()).fold(f64::MIN, f64::max));
                prop_assert_eq!(b.low(), parts.iter().map(|c| c.low()).fold(f64::MAX, f64::min));
                prop_assert_eq!(b.trades(), parts.iter().map(|c| c.trades()).sum::<u32>());
                let v: f64 = parts.iter().map(|c| c.volume()).sum();
                prop_assert!((b.volume() - v).abs() <= 1e-9 * v.max(1.0));
            }
            // Bars come out in time order per instrument and timeframe.
            prop_assert!(m1.windows(2).all(|w| w[0].open_time() < w[1].open_time()));
            prop_assert!(m5.windows(2).all(|w| w[0].open_time() < w[1].open_time()));
        }
    }

    /// Out-of-order trades are counted as late and never change an emitted bar.
    #[test]
    fn late_trades_are_counted_not_merged(back_ms in 1i64..120_000) {
        let id: InstrumentId = "p:AAA/USD".parse().unwrap();
        let mut p = Pipeline::new(EngineConfig { timeframes: vec![Timeframe::M1], ..EngineConfig::default() }).unwrap();
        let src = Symbol::new("prop").unwrap();
        let tr = |k: u64, t: i64, px: f64| Envelope::new(k, t, t, src, Event::Trade(Trade::new(id, k, px, 1.0, Side::Sell).unwrap()));
        p.process(&tr(0, 10, 5.0));
        let first = closed(p.process(&tr(1, 2 * MIN, 6.0)), Timeframe::M1);
        prop_assert_eq!(first.len(), 1);
        let late_t = 2 * MIN - back_ms * 1_000_000;
        let out = p.process(&tr(2, late_t, 1_000.0)).to_vec();
        prop_assert!(out.is_empty());
        prop_assert_eq!(p.stats().late, u64::from(late_t < 2 * MIN));
    }
}
