//! Exactness against TA-Lib 0.8.1 (PyPI `ta-lib==0.8.2`), on every output bar, warm-up
//! included.
//!
//! `reference/talib_reference.py` writes the reference (`.ci/run` runs it into a folder and
//! sets `ATALAYA_TALIB_REF` to it). Unset: the test says it was skipped. Set: the folder must
//! hold the reference files, or the test fails.
//!
//! Tolerance: `|ours − ta-lib| ≤ max(1e-9 · max(|ours|, |ta-lib|), 1e-12 · S, A)` where `S`
//! is the mean absolute close of the series (for outputs in price units that cross zero, such
//! as MACD or slopes) and `A` is 1e-9 for outputs that are not in price units (oscillators
//! such as RSI, %R and DI, and the Chaikin oscillator, in volume units): the issue's "1e-9
//! absolute near zero", kept stricter for prices so that tiny-priced series are still held
//! to 1e-12 of their scale.
//! Warm-up positions must be empty exactly where TA-Lib's are `NaN`.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use std::path::PathBuf;

use atalaya_ta::candles::{CandlePattern, Pattern};
use atalaya_ta::ma::{Dema, Ema, Kama, Sma, T3, Tema, Trima, Wma};
use atalaya_ta::momentum::{Cci, Cmo, Macd, Mom, Ppo, Roc, Rsi, Stoch, StochF, StochRsi, WillR};
use atalaya_ta::trend::{Adx, Adxr, Aroon, AroonOsc, Dx, LinRegSlope, MinusDi, PlusDi, Sar};
use atalaya_ta::volatility::{Atr, Bbands, Natr, StdDev, TRange};
use atalaya_ta::volume::{Ad, Adosc, Mfi, Obv};
use atalaya_ta::{Bar, Indicator, batch, batch_f64};
use serde_json::Value;

struct Series {
    closes: Vec<f64>,
    bars: Vec<Bar>,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn closes<I: Indicator<Input = f64, Output = f64>>(mut i: I, s: &Series) -> Vec<f64> {
    let mut out = Vec::new();
    batch_f64(&mut i, &s.closes, &mut out);
    out
}

fn bars<I: Indicator<Input = Bar, Output = f64>>(mut i: I, s: &Series) -> Vec<f64> {
    let mut out = Vec::new();
    batch_f64(&mut i, &s.bars, &mut out);
    out
}

fn multi<I: Indicator, T>(
    mut i: I,
    input: &[I::Input],
    pick: impl Fn(&I::Output) -> f64,
) -> Vec<f64> {
    let _ = std::marker::PhantomData::<T>;
    let mut out = Vec::new();
    batch(&mut i, input, &mut out);
    out.iter()
        .map(|o| o.as_ref().map_or(f64::NAN, &pick))
        .collect()
}

/// Our output for a reference key such as `SMA_30` or `MACD_12_26_9.signal`; `None` when the
/// key is not one we implement. Second value: whether the output is a unitless oscillator.
fn ours(key: &str, s: &Series) -> Option<(Vec<f64>, bool)> {
    let (name, part) = match key.rsplit_once('.') {
        Some((a, b)) if b.chars().all(|c| c.is_ascii_alphabetic()) => (a, b),
        _ => (key, ""),
    };
    let mut it = name.split('_');
    let mut head = it.next()?.to_owned();
    let mut nums: Vec<f64> = Vec::new();
    for tok in it {
        match tok.parse::<f64>() {
            Ok(n) => nums.push(n),
            Err(_) => {
                head.push('_');
                head.push_str(tok);
            }
        }
    }
    let n = |i: usize| nums.get(i).map_or(0, |x| *x as usize);
    let osc = true;
    Some(match head.as_str() {
        "SMA" => (closes(Sma::new(n(0)), s), false),
        "EMA" => (closes(Ema::new(n(0)), s), false),
        "WMA" => (closes(Wma::new(n(0)), s), false),
        "DEMA" => (closes(Dema::new(n(0)), s), false),
        "TEMA" => (closes(Tema::new(n(0)), s), false),
        "TRIMA" => (closes(Trima::new(n(0)), s), false),
        "KAMA" => (closes(Kama::new(n(0)), s), false),
        "T3" => (closes(T3::new(n(0), nums[1]), s), false),
        "RSI" => (closes(Rsi::new(n(0)), s), osc),
        "CMO" => (closes(Cmo::new(n(0)), s), osc),
        "MOM" => (closes(Mom::new(n(0)), s), false),
        "ROC" => (closes(Roc::new(n(0)), s), osc),
        "STDDEV" => (closes(StdDev::new(n(0), 1.0), s), false),
        "LINEARREG_SLOPE" => (closes(LinRegSlope::new(n(0)), s), false),
        "PPO" => (closes(Ppo::new(n(0), n(1)), s), osc),
        "ATR" => (bars(Atr::new(n(0)), s), false),
        "NATR" => (bars(Natr::new(n(0)), s), osc),
        "TRANGE" => (bars(TRange::new(), s), false),
        "WILLR" => (bars(WillR::new(n(0)), s), osc),
        "CCI" => (bars(Cci::new(n(0)), s), osc),
        "MFI" => (bars(Mfi::new(n(0)), s), osc),
        "PLUS_DI" => (bars(PlusDi::new(n(0)), s), osc),
        "MINUS_DI" => (bars(MinusDi::new(n(0)), s), osc),
        "DX" => (bars(Dx::new(n(0)), s), osc),
        "ADX" => (bars(Adx::new(n(0)), s), osc),
        "ADXR" => (bars(Adxr::new(n(0)), s), osc),
        "AROONOSC" => (bars(AroonOsc::new(n(0)), s), osc),
        "OBV" => (bars(Obv::new(), s), false),
        "AD" => (bars(Ad::new(), s), false),
        "ADOSC" => (bars(Adosc::new(n(0), n(1)), s), osc),
        "SAR" => (bars(Sar::new(nums[0], nums[1]), s), false),
        "AROON" => (
            multi::<_, ()>(Aroon::new(n(0)), &s.bars, |o| {
                if part == "up" { o.up } else { o.down }
            }),
            osc,
        ),
        "MACD" => (
            multi::<_, ()>(Macd::new(n(0), n(1), n(2)), &s.closes, |o| match part {
                "macd" => o.macd,
                "signal" => o.signal,
                _ => o.hist,
            }),
            false,
        ),
        "BBANDS" => (
            multi::<_, ()>(Bbands::new(n(0), nums[1]), &s.closes, |o| match part {
                "upper" => o.upper,
                "middle" => o.middle,
                _ => o.lower,
            }),
            false,
        ),
        "STOCH" => (
            multi::<_, ()>(Stoch::new(n(0), n(1), n(2)), &s.bars, |o| {
                if part == "k" { o.k } else { o.d }
            }),
            osc,
        ),
        "STOCHF" => (
            multi::<_, ()>(StochF::new(n(0), n(1)), &s.bars, |o| {
                if part == "k" { o.k } else { o.d }
            }),
            osc,
        ),
        "STOCHRSI" => (
            multi::<_, ()>(StochRsi::new(n(0), n(1), n(2)), &s.closes, |o| {
                if part == "k" { o.k } else { o.d }
            }),
            osc,
        ),
        cdl if cdl.starts_with("CDL") => {
            let p = Pattern::ALL.into_iter().find(|p| p.talib_name() == cdl)?;
            let mut out = Vec::new();
            batch(&mut CandlePattern::new(p), &s.bars, &mut out);
            // TA-Lib writes 0 on warm-up bars of CDL functions; comparisons are exact.
            (
                out.iter().map(|o| f64::from(o.unwrap_or(0))).collect(),
                false,
            )
        }
        _ => return None,
    })
}

#[test]
fn every_indicator_matches_ta_lib_on_every_bar() {
    let Some(dir) = std::env::var_os("ATALAYA_TALIB_REF").map(PathBuf::from) else {
        eprintln!(
            "skipped every_indicator_matches_ta_lib_on_every_bar: ATALAYA_TALIB_REF is not set"
        );
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("ATALAYA_TALIB_REF={}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no reference files in {}", dir.display());
    let mut failures = Vec::new();
    let mut compared = 0usize;
    for file in &files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let col =
            |k: &str| -> Vec<f64> { doc["inputs"][k].as_array().unwrap().iter().map(f).collect() };
        let (o, h, l, c, v) = (
            col("open"),
            col("high"),
            col("low"),
            col("close"),
            col("volume"),
        );
        let s = Series {
            bars: (0..c.len())
                .map(|i| Bar::new(o[i], h[i], l[i], c[i], v[i]))
                .collect(),
            closes: c,
        };
        let scale = s.closes.iter().map(|x| x.abs()).sum::<f64>() / s.closes.len() as f64;
        let outputs = doc["outputs"].as_object().unwrap();
        for (key, reference) in outputs {
            let Some((got, osc)) = ours(key, &s) else {
                failures.push(format!("{}: {key} is not implemented", file.display()));
                continue;
            };
            let reference: Vec<f64> = reference.as_array().unwrap().iter().map(f).collect();
            assert_eq!(got.len(), reference.len(), "{key}");
            let mut worst: Option<(usize, f64, f64)> = None;
            for (i, (&a, &b)) in got.iter().zip(&reference).enumerate() {
                compared += 1;
                let ok = if b.is_nan() || a.is_nan() {
                    a.is_nan() && b.is_nan()
                } else {
                    let tol = (1e-9 * a.abs().max(b.abs()))
                        .max(1e-12 * scale)
                        .max(if osc { 1e-9 } else { 0.0 });
                    (a - b).abs() <= tol
                };
                if !ok && worst.is_none() {
                    worst = Some((i, a, b));
                }
            }
            if let Some((i, a, b)) = worst {
                let name = file.file_name().unwrap().to_string_lossy();
                failures.push(format!(
                    "{name}: {key} first differs at bar {i}: ours {a:e}, ta-lib {b:e}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches ({compared} values compared):\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{compared} values compared against TA-Lib, all within tolerance");
}
