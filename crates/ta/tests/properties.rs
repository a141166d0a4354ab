//! Properties every indicator keeps on arbitrary input: outputs start exactly at the
//! lookback and never stop; `reset` gives back a fresh indicator; streaming and batch agree
//! to the bit; bad numbers (NaN, infinities, negative prices, high below low) never panic.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use atalaya_ta::candles::{CandlePattern, Pattern};
use atalaya_ta::custom::{Donchian, Ichimoku, Keltner, RollingVwap, SuperTrend};
use atalaya_ta::ma::{Dema, Ema, Kama, Sma, T3, Tema, Trima, Wma};
use atalaya_ta::momentum::{Cci, Cmo, Macd, Mom, Ppo, Roc, Rsi, Stoch, StochF, StochRsi, WillR};
use atalaya_ta::trend::{Adx, Adxr, Aroon, AroonOsc, Dx, LinRegSlope, MinusDi, PlusDi, Sar};
use atalaya_ta::volatility::{Atr, Bbands, Natr, StdDev, TRange};
use atalaya_ta::volume::{Ad, Adosc, Mfi, Obv};
use atalaya_ta::{Bar, Indicator, batch};
use proptest::prelude::*;

fn bits<T: std::fmt::Debug>(v: &[Option<T>]) -> String {
    format!("{v:?}")
}

fn check<I>(mut ind: I, input: &[I::Input]) -> Result<(), TestCaseError>
where
    I: Indicator + Clone,
    I::Output: std::fmt::Debug,
{
    let mut fresh = ind.clone();
    let mut out = Vec::new();
    batch(&mut ind, input, &mut out);
    // Streaming, one by one, on a clone gives the same bits.
    let streamed: Vec<_> = input.iter().map(|&x| fresh.update(x)).collect();
    prop_assert_eq!(bits(&out), bits(&streamed));
    // Outputs start exactly at the lookback and never stop.
    let lb = ind.lookback();
    for (i, o) in out.iter().enumerate() {
        prop_assert_eq!(o.is_some(), i >= lb, "index {} lookback {}", i, lb);
    }
    // Reset gives a fresh indicator.
    ind.reset();
    let mut again = Vec::new();
    batch(&mut ind, input, &mut again);
    prop_assert_eq!(bits(&out), bits(&again));
    Ok(())
}

fn series() -> impl Strategy<Value = Vec<Bar>> {
    prop::collection::vec(
        (
            0.5f64..2.0,
            0.0f64..0.05,
            0.0f64..0.05,
            0u8..4,
            0.0f64..1000.0,
        ),
        0..260,
    )
    .prop_map(|steps| {
        let mut p = 100.0;
        steps
            .into_iter()
            .map(|(r, up, dn, kind, v)| {
                let open = p;
                // A quarter of the bars are flat (no change, no range).
                let close = if kind == 0 { p } else { p * (0.98 + 0.02 * r) };
                let (h, l) = if kind == 0 {
                    (p, p)
                } else {
                    (open.max(close) * (1.0 + up), open.min(close) * (1.0 - dn))
                };
                p = close;
                Bar::new(open, h, l, close, if kind == 1 { 0.0 } else { v })
            })
            .collect()
    })
}

macro_rules! all_indicators {
    ($bars:expr, $closes:expr) => {{
        let (b, c) = ($bars, $closes);
        check(Sma::new(5), c)?;
        check(Ema::new(5), c)?;
        check(Wma::new(5), c)?;
        check(Dema::new(4), c)?;
        check(Tema::new(4), c)?;
        check(Trima::new(6), c)?;
        check(Trima::new(7), c)?;
        check(Kama::new(5), c)?;
        check(Rsi::new(5), c)?;
        check(Cmo::new(5), c)?;
        check(Mom::new(5), c)?;
        check(Roc::new(5), c)?;
        check(Macd::new(5, 12, 4), c)?;
        check(Ppo::new(5, 12), c)?;
        check(StdDev::new(5, 1.0), c)?;
        check(Bbands::new(5, 2.0), c)?;
        check(LinRegSlope::new(5), c)?;
        check(StochRsi::new(5, 3, 3), c)?;
        check(TRange::new(), b)?;
        check(Atr::new(5), b)?;
        check(Natr::new(5), b)?;
        check(WillR::new(5), b)?;
        check(Cci::new(5), b)?;
        check(Stoch::new(5, 3, 3), b)?;
        check(StochF::new(5, 3), b)?;
        check(Mfi::new(5), b)?;
        check(Obv::new(), b)?;
        check(Ad::new(), b)?;
        check(Adosc::new(3, 10), b)?;
        check(PlusDi::new(5), b)?;
        check(MinusDi::new(5), b)?;
        check(Dx::new(5), b)?;
        check(Adx::new(5), b)?;
        check(Adxr::new(5), b)?;
        check(Aroon::new(5), b)?;
        check(AroonOsc::new(5), b)?;
        check(Sar::new(0.02, 0.2), b)?;
        check(T3::new(4, 0.7), c)?;
        check(Donchian::new(5), b)?;
        check(Keltner::new(5, 4, 2.0), b)?;
        check(SuperTrend::new(4, 3.0), b)?;
        check(Ichimoku::new(3, 5, 8, 4), b)?;
        check(RollingVwap::new(5), b)?;
        for p in Pattern::ALL {
            check(CandlePattern::new(p), b)?;
        }
    }};
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn lookback_reset_and_streaming_agree(bars in series()) {
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        all_indicators!(&bars[..], &closes[..]);
    }

    #[test]
    fn bad_numbers_never_panic(raw in prop::collection::vec(
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-5.0), Just(0.0), -1e300f64..1e300],
        0..120,
    )) {
        // Any five numbers as a bar, including a high below the low.
        let bars: Vec<Bar> = raw.chunks(5).filter(|c| c.len() == 5).map(|c| Bar::new(c[0], c[1], c[2], c[3], c[4])).collect();
        all_indicators!(&bars[..], &raw[..]);
    }
}
