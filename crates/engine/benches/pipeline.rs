//! `Pipeline::process` throughput on 1-minute candles for five instruments, building
//! 1m/5m/15m/1h bars and scoring each closed bar.
//!
//! `cargo bench -p atalaya-engine --bench pipeline`

use std::hint::black_box;

use atalaya_engine::{EngineConfig, Pipeline};
use atalaya_model::{Candle, Envelope, Event, InstrumentId, Symbol, Timeframe};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A deterministic random walk of 1m candles, interleaved across instruments in time order.
fn candles(per_instrument: usize) -> Vec<Envelope<Event>> {
    let ids: Vec<InstrumentId> = ["BTC", "ETH", "ADA", "SOL", "AVAX"]
        .iter()
        .map(|b| InstrumentId::new("sim", b, "USDT").expect("valid id"))
        .collect();
    let src = Symbol::new("bench").expect("valid symbol");
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut price = vec![100.0_f64; ids.len()];
    let mut out = Vec::with_capacity(per_instrument * ids.len());
    for i in 0..per_instrument {
        let t = i as i64 * Timeframe::M1.nanos();
        for (k, id) in ids.iter().enumerate() {
            let open = price[k];
            let close = open * (1.0 + 0.004 * next());
            let high = open.max(close) * (1.0 + 0.001 * (next() + 0.5));
            let low = open.min(close) * (1.0 - 0.001 * (next() + 0.5));
            price[k] = close;
            let c = Candle::new(
                *id,
                Timeframe::M1,
                t,
                [open, high, low, close],
                10.0 + 5.0 * next(),
                10,
            )
            .expect("valid candle");
            let close_t = c.close_time();
            out.push(Envelope::new(
                out.len() as u64,
                close_t,
                close_t,
                src,
                Event::Candle(c),
            ));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let input = candles(20_000);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(input.len() as u64));
    g.sample_size(10);
    g.bench_function("process_1m_candles_4_timeframes", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(EngineConfig::default()).expect("default config is valid");
            let mut n = 0usize;
            for env in &input {
                n += p.process(black_box(env)).len();
            }
            black_box(n)
        })
    });
    g.bench_function("process_1m_candles_1m_only", |b| {
        let cfg = EngineConfig {
            timeframes: vec![Timeframe::M1],
            ..EngineConfig::default()
        };
        b.iter(|| {
            let mut p = Pipeline::new(cfg.clone()).expect("valid config");
            let mut n = 0usize;
            for env in &input {
                n += p.process(black_box(env)).len();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
