//! Properties every indicator keeps on arbitrary input: outputs start exactly at the
//! lookback and never stop; `reset` gives back a fresh indicator; streaming and batch agree
//! to the bit; bad numbers (NaN, infinities, negative prices, high below low) never panic.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use atalaya_ta::candles::{CandlePattern, Pattern};
use atalaya_ta::custom::{Donchian, Ichimoku, Keltner, RollingVwap, SuperTrend};
use atalaya_ta::kernel::batch_pair;
use atalaya_ta::ma::{Dema, Ema, Kama, Sma, T3, Tema, Trima, Wma};
use atalaya_ta::momentum::{
    Cci, Cmo, Macd, MacdColumns, Mom, Ppo, Roc, Rsi, Stoch, StochF, StochRsi, WillR,
};
use atalaya_ta::trend::{Adx, Adxr, Aroon, AroonOsc, Dx, LinRegSlope, MinusDi, PlusDi, Sar};
use atalaya_ta::volatility::{Atr, BandColumns, Bbands, Natr, StdDev, TRange};
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

/// Bits of a column; every NaN counts as one (its sign and payload carry nothing, and x86
/// picks them by operand order).
fn col_bits(v: &[f64]) -> Vec<u64> {
    v.iter()
        .map(|x| if x.is_nan() { f64::NAN } else { *x }.to_bits())
        .collect()
}

/// Bits of an `Option` column as TA-Lib lays it out (`NaN` for `None`).
fn opt_bits<T: Copy>(v: &[Option<T>], f: impl Fn(T) -> f64) -> Vec<u64> {
    col_bits(&v.iter().map(|o| o.map_or(f64::NAN, &f)).collect::<Vec<_>>())
}

/// A batch kernel `run(ind, input) -> columns` against streaming `update()`: over the whole
/// input, over two halves split at `cut` (the kernel continues from its own state), and with
/// streaming continuing after a kernel run (the kernel leaves the state streaming would).
fn check_kernel<I, C>(
    fresh: &I,
    input: &[I::Input],
    cut: usize,
    run: impl Fn(&mut I, &[I::Input]) -> C,
    cols: impl Fn(&C) -> Vec<Vec<u64>>,
    out_cols: impl Fn(&[Option<I::Output>]) -> Vec<Vec<u64>>,
) -> Result<(), TestCaseError>
where
    I: Indicator + Clone,
{
    let cut = cut.min(input.len());
    let streamed: Vec<_> = {
        let mut s = fresh.clone();
        input.iter().map(|&x| s.update(x)).collect()
    };
    let want = out_cols(&streamed);
    let whole = cols(&run(&mut fresh.clone(), input));
    prop_assert_eq!(&whole, &want);
    // Two kernel calls.
    let mut k = fresh.clone();
    let (a, b) = (
        cols(&run(&mut k, &input[..cut])),
        cols(&run(&mut k, &input[cut..])),
    );
    let joined: Vec<Vec<u64>> = a
        .into_iter()
        .zip(b)
        .map(|(mut x, y)| {
            x.extend(y);
            x
        })
        .collect();
    prop_assert_eq!(&joined, &want);
    // A kernel call, then streaming.
    let mut k = fresh.clone();
    let a = cols(&run(&mut k, &input[..cut]));
    let rest: Vec<_> = input[cut..].iter().map(|&x| k.update(x)).collect();
    let joined: Vec<Vec<u64>> = a
        .into_iter()
        .zip(out_cols(&rest))
        .map(|(mut x, y)| {
            x.extend(y);
            x
        })
        .collect();
    prop_assert_eq!(&joined, &want);
    Ok(())
}

fn check_kernels(bars: &[Bar], closes: &[f64], cut: usize) -> Result<(), TestCaseError> {
    let one = |v: &[Option<f64>]| vec![opt_bits(v, |x| x)];
    for ema in [Ema::new(1), Ema::new(5), Ema::fused(5)] {
        check_kernel(
            &ema,
            closes,
            cut,
            |e, x| {
                let mut o = Vec::new();
                e.batch_into(x, &mut o);
                o
            },
            |o| vec![col_bits(o)],
            one,
        )?;
    }
    for p in [1, 2, 5] {
        check_kernel(
            &Rsi::new(p),
            closes,
            cut,
            |e, x| {
                let mut o = Vec::new();
                e.batch_into(x, &mut o);
                o
            },
            |o| vec![col_bits(o)],
            one,
        )?;
    }
    for (f, s, g) in [(5, 12, 4), (1, 1, 1), (12, 26, 9)] {
        check_kernel(
            &Macd::new(f, s, g),
            closes,
            cut,
            |m, x| {
                let mut o = MacdColumns::default();
                m.batch_columns(x, &mut o);
                o
            },
            |o| vec![col_bits(&o.macd), col_bits(&o.signal), col_bits(&o.hist)],
            |v| {
                vec![
                    opt_bits(v, |m| m.macd),
                    opt_bits(v, |m| m.signal),
                    opt_bits(v, |m| m.hist),
                ]
            },
        )?;
    }
    for p in [1, 2, 5] {
        check_kernel(
            &Bbands::new(p, 2.0),
            closes,
            cut,
            |b, x| {
                let mut o = BandColumns::default();
                b.batch_columns(x, &mut o);
                o
            },
            |o| vec![col_bits(&o.upper), col_bits(&o.middle), col_bits(&o.lower)],
            |v| {
                vec![
                    opt_bits(v, |b| b.upper),
                    opt_bits(v, |b| b.middle),
                    opt_bits(v, |b| b.lower),
                ]
            },
        )?;
    }
    // Two in one loop: the same bits as each alone, into fresh, reused and too-long buffers.
    for (rp, e) in [(5, Ema::new(3)), (2, Ema::fused(9)), (14, Ema::new(1))] {
        let alone = |mut i: Box<dyn FnMut(f64) -> Option<f64>>| -> Vec<u64> {
            col_bits(
                &closes
                    .iter()
                    .map(|&x| i(x).unwrap_or(f64::NAN))
                    .collect::<Vec<_>>(),
            )
        };
        let (mut r1, mut e1) = (Rsi::new(rp), e.clone());
        let want_r = alone(Box::new(move |x| r1.update(x)));
        let want_e = alone(Box::new(move |x| e1.update(x)));
        let (mut oa, mut ob) = (Vec::new(), vec![1.0; closes.len() + 7]);
        for _ in 0..2 {
            batch_pair(&mut Rsi::new(rp), &mut e.clone(), closes, &mut oa, &mut ob);
            prop_assert_eq!(col_bits(&oa), want_r.clone());
            prop_assert_eq!(col_bits(&ob), want_e.clone());
        }
        // And the state each is left in continues as streaming would.
        let (mut r, mut e2) = (Rsi::new(rp), e.clone());
        let cut = cut.min(closes.len());
        batch_pair(&mut r, &mut e2, &closes[..cut], &mut oa, &mut ob);
        let tail: Vec<f64> = closes[cut..]
            .iter()
            .map(|&x| r.update(x).unwrap_or(f64::NAN))
            .collect();
        oa.extend(tail);
        prop_assert_eq!(col_bits(&oa), want_r.clone());
    }
    for p in [1, 5] {
        check_kernel(
            &Atr::new(p),
            bars,
            cut,
            |a, x| {
                let (h, l, c): (Vec<f64>, Vec<f64>, Vec<f64>) = (
                    x.iter().map(|b| b.high).collect(),
                    x.iter().map(|b| b.low).collect(),
                    x.iter().map(|b| b.close).collect(),
                );
                let mut o = Vec::new();
                a.batch_hlc(&h, &l, &c, &mut o);
                o
            },
            |o| vec![col_bits(o)],
            one,
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The batch kernels (tight loops over columns) equal streaming to the bit, including
    /// across calls and when streaming takes over from a kernel.
    #[test]
    fn kernels_equal_streaming(bars in series(), cut in 0usize..300) {
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        check_kernels(&bars, &closes, cut)?;
    }

    #[test]
    fn kernels_equal_streaming_on_bad_numbers(raw in prop::collection::vec(
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-5.0), Just(0.0), Just(-0.0), -1e300f64..1e300, 90.0f64..110.0],
        0..200,
    ), cut in 0usize..60) {
        let bars: Vec<Bar> = raw.chunks(5).filter(|c| c.len() == 5).map(|c| Bar::new(c[0], c[1], c[2], c[3], c[4])).collect();
        check_kernels(&bars, &raw, cut)?;
    }
}
