//! Named indicator specifications (`rsi:14`, `macd:12:26:9`) and a set of them updated
//! together, each writing its named output columns.

use std::fmt;
use std::str::FromStr;

use crate::candles::{CandlePattern, Pattern};
use crate::custom::{Donchian, Ichimoku, Keltner, RollingVwap, SessionVwap, SuperTrend, TimedBar};
use crate::ma::{Dema, Ema, Kama, Sma, T3, Tema, Trima, Wma};
use crate::momentum::{Cci, Cmo, Macd, Mom, Ppo, Roc, Rsi, Stoch, StochF, StochRsi, WillR};
use crate::trend::{Adx, Adxr, Aroon, AroonOsc, Dx, LinRegSlope, MinusDi, PlusDi, Sar};
use crate::volatility::{Atr, Bbands, Natr, StdDev, TRange};
use crate::volume::{Ad, Adosc, Mfi, Obv};
use crate::{Bar, Indicator};

/// A bad indicator specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaError {
    /// The name is not a known indicator.
    #[error("unknown indicator {name:?} in {spec:?}; known: {known}")]
    Unknown {
        /// The whole specification.
        spec: String,
        /// The name.
        name: String,
        /// The known names.
        known: &'static str,
    },
    /// A parameter is missing, extra, not a number or out of range.
    #[error("bad parameters in {spec:?}: {reason} (expected {usage})")]
    Params {
        /// The whole specification.
        spec: String,
        /// What is wrong.
        reason: String,
        /// The expected form.
        usage: &'static str,
    },
}

const KNOWN: &str = "cdl… (the 21 TA-Lib candlestick names, e.g. cdlhammer) t3 donchian keltner supertrend ichimoku vwap rolling_vwap sma ema wma dema tema trima kama rsi cmo mom roc macd ppo willr cci stoch stochf stochrsi trange atr natr stddev bbands obv ad adosc mfi plus_di minus_di dx adx adxr aroon aroonosc sar linreg_slope";

/// One indicator with its parameters, as written in a set: `name[:p1[:p2…]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    name: String,
    params: Vec<f64>,
}

/// The candlestick pattern named like TA-Lib's function, lower-case (`cdlhammer`).
fn pattern(name: &str) -> Option<Pattern> {
    Pattern::ALL
        .into_iter()
        .find(|p| p.talib_name().eq_ignore_ascii_case(name))
}

/// (name, usage, default parameters, number of periods that must be whole numbers ≥ 1).
fn usage(name: &str) -> Option<(&'static str, &'static [f64], usize)> {
    Some(match name {
        "sma" | "ema" | "wma" | "dema" | "tema" | "trima" | "kama" => ("name:period", &[30.0], 1),
        "rsi" | "cmo" | "atr" | "natr" | "willr" | "cci" | "mfi" => ("name:period", &[14.0], 1),
        "plus_di" | "minus_di" | "dx" | "adx" | "adxr" | "aroon" | "aroonosc" | "linreg_slope" => {
            ("name:period", &[14.0], 1)
        }
        "mom" | "roc" => ("name:period", &[10.0], 1),
        "macd" => ("macd:fast:slow:signal", &[12.0, 26.0, 9.0], 3),
        "ppo" => ("ppo:fast:slow", &[12.0, 26.0], 2),
        "stoch" => ("stoch:k:slow_k:slow_d", &[5.0, 3.0, 3.0], 3),
        "stochf" => ("stochf:k:d", &[5.0, 3.0], 2),
        "stochrsi" => ("stochrsi:period:k:d", &[14.0, 5.0, 3.0], 3),
        "stddev" => ("stddev:period[:nbdev]", &[5.0, 1.0], 1),
        "bbands" => ("bbands:period[:k]", &[20.0, 2.0], 1),
        "adosc" => ("adosc:fast:slow", &[3.0, 10.0], 2),
        "sar" => ("sar[:accel:max]", &[0.02, 0.2], 0),
        "trange" | "obv" | "ad" | "vwap" => ("name", &[], 0),
        "t3" => ("t3:period[:vfactor]", &[5.0, 0.7], 1),
        "donchian" => ("donchian:period", &[20.0], 1),
        "keltner" => (
            "keltner:ema_period:atr_period[:multiplier]",
            &[20.0, 10.0, 2.0],
            2,
        ),
        "supertrend" => ("supertrend:atr_period[:multiplier]", &[10.0, 3.0], 1),
        "ichimoku" => (
            "ichimoku:tenkan:kijun:senkou:displacement",
            &[9.0, 26.0, 52.0, 26.0],
            4,
        ),
        "rolling_vwap" => ("rolling_vwap:period", &[20.0], 1),
        cdl if pattern(cdl).is_some() => ("cdlname", &[], 0),
        _ => return None,
    })
}

impl FromStr for Spec {
    type Err = TaError;

    fn from_str(s: &str) -> Result<Self, TaError> {
        let spec = s.trim().to_ascii_lowercase();
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or("").trim().to_owned();
        let Some((usage, defaults, periods)) = usage(&name) else {
            return Err(TaError::Unknown {
                spec: s.to_owned(),
                name,
                known: KNOWN,
            });
        };
        let bad = |reason: String| TaError::Params {
            spec: s.to_owned(),
            reason,
            usage,
        };
        let given: Vec<f64> = parts
            .map(|p| {
                p.trim()
                    .parse::<f64>()
                    .map_err(|_| bad(format!("{p:?} is not a number")))
            })
            .collect::<Result<_, _>>()?;
        if given.len() > defaults.len() {
            return Err(bad(format!("{} parameters given", given.len())));
        }
        let mut params = defaults.to_vec();
        params[..given.len()].copy_from_slice(&given);
        for (i, p) in params.iter().enumerate() {
            let whole = i < periods;
            if !p.is_finite() || *p <= 0.0 || (whole && (p.fract() != 0.0 || *p > 100_000.0)) {
                return Err(bad(format!(
                    "parameter {} = {p} must be a positive {}",
                    i + 1,
                    if whole {
                        "whole number up to 100000"
                    } else {
                        "number"
                    }
                )));
            }
        }
        let min_period = match name.as_str() {
            "plus_di" | "minus_di" | "dx" | "adx" | "adxr" | "linreg_slope" => 2.0,
            _ => 1.0,
        };
        if periods > 0 && params[0] < min_period {
            return Err(bad(format!("the period must be at least {min_period}")));
        }
        Ok(Self { name, params })
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for p in &self.params {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// An indicator behind a uniform interface: one bar in, `width` columns out (NaN while
/// warming up).
trait Columns: Send {
    fn update(&mut self, ts: i64, bar: &Bar, out: &mut [f64]);
    fn reset(&mut self);

    /// [`update`](Self::update) with each bar in turn, bar `i`'s columns written from
    /// `out[i * stride]` on. Indicators override it with a loop the compiler sees whole.
    fn update_block(&mut self, ts: &[i64], bars: &[Bar], out: &mut [f64], stride: usize) {
        for (i, (t, b)) in ts.iter().zip(bars).enumerate() {
            self.update(*t, b, &mut out[i * stride..]);
        }
    }
}

struct OnClose<I>(I);
struct OnBar<I>(I);
struct Multi<I, F>(I, F);

impl<I: Indicator<Input = f64, Output = f64> + Send> Columns for OnClose<I> {
    fn update(&mut self, _ts: i64, bar: &Bar, out: &mut [f64]) {
        out[0] = self.0.update(bar.close).unwrap_or(f64::NAN);
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    fn update_block(&mut self, _ts: &[i64], bars: &[Bar], out: &mut [f64], stride: usize) {
        self.0.update_strided(bars, |b| b.close, out, stride);
    }
}

struct Cdl(CandlePattern);

/// Session VWAP needs the bar's time.
struct Vwap(SessionVwap);

impl Columns for Vwap {
    fn update(&mut self, ts: i64, bar: &Bar, out: &mut [f64]) {
        out[0] = self
            .0
            .update(TimedBar { ts, bar: *bar })
            .unwrap_or(f64::NAN);
    }
    fn reset(&mut self) {
        self.0.reset();
    }
}

impl Columns for Cdl {
    fn update(&mut self, _ts: i64, bar: &Bar, out: &mut [f64]) {
        out[0] = self.0.update(*bar).map_or(f64::NAN, f64::from);
    }
    fn reset(&mut self) {
        self.0.reset();
    }
}

impl<I: Indicator<Input = Bar, Output = f64> + Send> Columns for OnBar<I> {
    fn update(&mut self, _ts: i64, bar: &Bar, out: &mut [f64]) {
        out[0] = self.0.update(*bar).unwrap_or(f64::NAN);
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    fn update_block(&mut self, _ts: &[i64], bars: &[Bar], out: &mut [f64], stride: usize) {
        self.0.update_strided(bars, |b| *b, out, stride);
    }
}

/// A multi-output indicator (on closes or bars) with a function writing its columns.
impl<I, F> Columns for Multi<I, F>
where
    I: Indicator + Send,
    F: Fn(Option<I::Output>, &mut [f64]) + Send,
    I::Input: From<Bar>,
{
    fn update(&mut self, _ts: i64, bar: &Bar, out: &mut [f64]) {
        let o = self.0.update(I::Input::from(*bar));
        (self.1)(o, out);
    }
    fn reset(&mut self) {
        self.0.reset();
    }
}

/// Indicators on closes read a bar's close.
impl From<Bar> for f64 {
    fn from(b: Bar) -> f64 {
        b.close
    }
}

fn cols<const N: usize, T>(o: Option<T>, out: &mut [f64], f: impl Fn(&T) -> [f64; N]) {
    match o {
        Some(v) => out[..N].copy_from_slice(&f(&v)),
        None => out[..N].fill(f64::NAN),
    }
}

impl Spec {
    /// The indicator's name (`macd`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Column names, e.g. `rsi_14`, or `macd_12_26_9`, `macd_12_26_9_signal`, `macd_12_26_9_hist`.
    pub fn columns(&self) -> Vec<String> {
        let base = std::iter::once(self.name.clone())
            .chain(self.params.iter().map(|p| format!("{p}")))
            .collect::<Vec<_>>()
            .join("_");
        let suffixes: &[&str] = match self.name.as_str() {
            "macd" => &["", "_signal", "_hist"],
            "bbands" => &["_upper", "_middle", "_lower"],
            "stoch" | "stochf" | "stochrsi" => &["_k", "_d"],
            "donchian" | "keltner" => &["_upper", "_middle", "_lower"],
            "supertrend" => &["", "_direction"],
            "ichimoku" => &["_tenkan", "_kijun", "_span_a", "_span_b"],
            "aroon" => &["_down", "_up"],
            _ => &[""],
        };
        suffixes.iter().map(|s| format!("{base}{s}")).collect()
    }

    /// The specification whose columns include `column` (`rsi_14` → `rsi:14`,
    /// `macd_12_26_9_signal` → `macd:12:26:9`, `plus_di_14` → `plus_di:14`,
    /// `cdlhammer` → `cdlhammer`); `None` when no indicator writes such a column.
    pub fn for_column(column: &str) -> Option<Spec> {
        let column = column.to_ascii_lowercase();
        let tokens: Vec<&str> = column.split('_').collect();
        for k in 1..=tokens.len() {
            let base = tokens[..k].join("_");
            if usage(&base).is_none() {
                continue;
            }
            let numeric = tokens[k..]
                .iter()
                .take_while(|t| t.parse::<f64>().is_ok())
                .count();
            for n in (0..=numeric).rev() {
                let mut text = base.clone();
                for t in &tokens[k..k + n] {
                    text.push(':');
                    text.push_str(t);
                }
                if let Ok(spec) = text.parse::<Spec>()
                    && spec.columns().contains(&column)
                {
                    return Some(spec);
                }
            }
        }
        None
    }

    fn build(&self) -> Box<dyn Columns> {
        let p = &self.params;
        let n = |i: usize| p.get(i).map_or(1, |x| *x as usize);
        match self.name.as_str() {
            "sma" => Box::new(OnClose(Sma::new(n(0)))),
            "ema" => Box::new(OnClose(Ema::new(n(0)))),
            "wma" => Box::new(OnClose(Wma::new(n(0)))),
            "dema" => Box::new(OnClose(Dema::new(n(0)))),
            "tema" => Box::new(OnClose(Tema::new(n(0)))),
            "trima" => Box::new(OnClose(Trima::new(n(0)))),
            "kama" => Box::new(OnClose(Kama::new(n(0)))),
            "rsi" => Box::new(OnClose(Rsi::new(n(0)))),
            "cmo" => Box::new(OnClose(Cmo::new(n(0)))),
            "mom" => Box::new(OnClose(Mom::new(n(0)))),
            "roc" => Box::new(OnClose(Roc::new(n(0)))),
            "ppo" => Box::new(OnClose(Ppo::new(n(0), n(1)))),
            "stddev" => Box::new(OnClose(StdDev::new(n(0), p[1]))),
            "linreg_slope" => Box::new(OnClose(LinRegSlope::new(n(0)))),
            "atr" => Box::new(OnBar(Atr::new(n(0)))),
            "natr" => Box::new(OnBar(Natr::new(n(0)))),
            "trange" => Box::new(OnBar(TRange::new())),
            "willr" => Box::new(OnBar(WillR::new(n(0)))),
            "cci" => Box::new(OnBar(Cci::new(n(0)))),
            "mfi" => Box::new(OnBar(Mfi::new(n(0)))),
            "obv" => Box::new(OnBar(Obv::new())),
            "ad" => Box::new(OnBar(Ad::new())),
            "adosc" => Box::new(OnBar(Adosc::new(n(0), n(1)))),
            "plus_di" => Box::new(OnBar(PlusDi::new(n(0)))),
            "minus_di" => Box::new(OnBar(MinusDi::new(n(0)))),
            "dx" => Box::new(OnBar(Dx::new(n(0)))),
            "adx" => Box::new(OnBar(Adx::new(n(0)))),
            "adxr" => Box::new(OnBar(Adxr::new(n(0)))),
            "aroonosc" => Box::new(OnBar(AroonOsc::new(n(0)))),
            "sar" => Box::new(OnBar(Sar::new(p[0], p[1]))),
            "t3" => Box::new(OnClose(T3::new(n(0), p[1]))),
            "vwap" => Box::new(Vwap(SessionVwap::daily())),
            "rolling_vwap" => Box::new(OnBar(RollingVwap::new(n(0)))),
            "donchian" => Box::new(Multi(Donchian::new(n(0)), |o, out: &mut [f64]| {
                cols(o, out, |c: &crate::custom::Channel| {
                    [c.upper, c.middle, c.lower]
                })
            })),
            "keltner" => Box::new(Multi(
                Keltner::new(n(0), n(1), p[2]),
                |o, out: &mut [f64]| {
                    cols(o, out, |c: &crate::custom::Channel| {
                        [c.upper, c.middle, c.lower]
                    })
                },
            )),
            "supertrend" => Box::new(Multi(SuperTrend::new(n(0), p[1]), |o, out: &mut [f64]| {
                cols(o, out, |s: &crate::custom::SuperTrendOut| {
                    [s.value, f64::from(s.direction)]
                })
            })),
            "ichimoku" => Box::new(Multi(
                Ichimoku::new(n(0), n(1), n(2), n(3)),
                |o, out: &mut [f64]| {
                    cols(o, out, |x: &crate::custom::IchimokuOut| {
                        [x.tenkan, x.kijun, x.span_a, x.span_b]
                    })
                },
            )),
            cdl if pattern(cdl).is_some() => Box::new(Cdl(CandlePattern::new(
                pattern(cdl).unwrap_or(Pattern::Doji),
            ))),
            "macd" => Box::new(Multi(Macd::new(n(0), n(1), n(2)), |o, out: &mut [f64]| {
                cols(o, out, |m: &crate::momentum::MacdOut| {
                    [m.macd, m.signal, m.hist]
                })
            })),
            "bbands" => Box::new(Multi(Bbands::new(n(0), p[1]), |o, out: &mut [f64]| {
                cols(o, out, |b: &crate::volatility::Bands| {
                    [b.upper, b.middle, b.lower]
                })
            })),
            "stochrsi" => Box::new(Multi(
                StochRsi::new(n(0), n(1), n(2)),
                |o, out: &mut [f64]| cols(o, out, |x: &crate::momentum::KD| [x.k, x.d]),
            )),
            "stoch" => Box::new(Multi(Stoch::new(n(0), n(1), n(2)), |o, out: &mut [f64]| {
                cols(o, out, |x: &crate::momentum::KD| [x.k, x.d])
            })),
            "stochf" => Box::new(Multi(StochF::new(n(0), n(1)), |o, out: &mut [f64]| {
                cols(o, out, |x: &crate::momentum::KD| [x.k, x.d])
            })),
            // "aroon" and anything else validated by `usage`.
            _ => Box::new(Multi(Aroon::new(n(0)), |o, out: &mut [f64]| {
                cols(o, out, |x: &crate::trend::AroonOut| [x.down, x.up])
            })),
        }
    }
}

/// Parses a comma-separated set: `"rsi:14,ema:20,macd:12:26:9"`, reporting every bad entry.
pub fn parse_set(s: &str) -> Result<Vec<Spec>, Vec<TaError>> {
    let (ok, bad): (Vec<_>, Vec<_>) = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse::<Spec>)
        .partition(Result::is_ok);
    if bad.is_empty() {
        Ok(ok.into_iter().filter_map(Result::ok).collect())
    } else {
        Err(bad.into_iter().filter_map(Result::err).collect())
    }
}

/// Several indicators updated together on each bar, writing their columns side by side.
pub struct IndicatorSet {
    specs: Vec<Spec>,
    parts: Vec<(Box<dyn Columns>, usize)>,
    columns: Vec<String>,
}

impl fmt::Debug for IndicatorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndicatorSet")
            .field("columns", &self.columns)
            .finish()
    }
}

impl IndicatorSet {
    /// A set of the given indicators.
    pub fn new(specs: Vec<Spec>) -> Self {
        let mut columns = Vec::new();
        let parts = specs
            .iter()
            .map(|s| {
                let c = s.columns();
                let width = c.len();
                columns.extend(c);
                (s.build(), width)
            })
            .collect();
        Self {
            specs,
            parts,
            columns,
        }
    }

    /// The specifications, in order.
    pub fn specs(&self) -> &[Spec] {
        &self.specs
    }

    /// Every output column's name, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Updates every indicator with `bar`, opened at `ts` (nanoseconds UTC; only session
    /// indicators read it), writing one value per column into `out` (NaN while warming up).
    /// `out` must hold `columns().len()` values.
    pub fn update(&mut self, ts: i64, bar: &Bar, out: &mut [f64]) {
        let mut at = 0;
        for (ind, width) in &mut self.parts {
            ind.update(ts, bar, &mut out[at..at + *width]);
            at += *width;
        }
    }

    /// [`update`](Self::update) with each of `bars` in turn (opened at the matching `ts`),
    /// bar `i`'s columns written at `out[i * stride..]`: the same values in the same order
    /// of updates, but each indicator runs over the whole block in one loop, with no dynamic
    /// call per bar. `out` must reach the last bar's last column; `stride` is at least
    /// `columns().len()`.
    ///
    /// # Panics
    /// When `ts` and `bars` differ in length or `out` is too short.
    pub fn update_block(&mut self, ts: &[i64], bars: &[Bar], out: &mut [f64], stride: usize) {
        assert_eq!(ts.len(), bars.len(), "one open time per bar");
        let mut at = 0;
        for (ind, width) in &mut self.parts {
            if !bars.is_empty() {
                ind.update_block(ts, bars, &mut out[at..], stride);
            }
            at += *width;
        }
    }

    /// Forgets all state.
    pub fn reset(&mut self) {
        for (ind, _) in &mut self.parts {
            ind.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch;

    #[test]
    fn parses_names_defaults_and_errors() {
        let set = parse_set("rsi:14, ema:20,macd:12:26:9,bbands:20:2,atr").unwrap();
        let cols: Vec<String> = IndicatorSet::new(set).columns().to_vec();
        assert_eq!(
            cols,
            vec![
                "rsi_14",
                "ema_20",
                "macd_12_26_9",
                "macd_12_26_9_signal",
                "macd_12_26_9_hist",
                "bbands_20_2_upper",
                "bbands_20_2_middle",
                "bbands_20_2_lower",
                "atr_14"
            ]
        );
        let more = IndicatorSet::new(parse_set("supertrend,ichimoku,keltner,vwap,t3").unwrap());
        assert_eq!(more.columns().len(), 2 + 4 + 3 + 1 + 1);
        assert_eq!(more.columns()[0], "supertrend_10_3");
        let cdl = IndicatorSet::new(parse_set("CDLHAMMER,cdl3outside").unwrap());
        assert_eq!(
            cdl.columns(),
            &["cdlhammer".to_owned(), "cdl3outside".to_owned()]
        );
        let errs = parse_set("rsi:0,foo:3,ema:1.5,macd:1:2:3:4,adx:1").unwrap_err();
        assert_eq!(errs.len(), 5);
        assert!(errs[1].to_string().contains("unknown indicator \"foo\""));
        assert!(errs[0].to_string().contains("expected name:period"));
    }

    #[test]
    fn specs_are_found_from_column_names() {
        for (col, spec) in [
            ("rsi_14", "rsi:14"),
            ("sma_200", "sma:200"),
            ("macd_12_26_9_signal", "macd:12:26:9"),
            ("plus_di_14", "plus_di:14"),
            ("bbands_20_2.5_upper", "bbands:20:2.5"),
            ("CDLHAMMER", "cdlhammer"),
            ("supertrend_10_3_direction", "supertrend:10:3"),
            ("vwap", "vwap"),
            ("linreg_slope_20", "linreg_slope:20"),
        ] {
            assert_eq!(
                Spec::for_column(col).map(|s| s.to_string()),
                Some(spec.to_owned()),
                "{col}"
            );
        }
        for bad in [
            "rsi",
            "rsi_0",
            "sma_x",
            "foo_3",
            "macd_12_26_9_bogus",
            "close",
        ] {
            assert_eq!(Spec::for_column(bad), None, "{bad}");
        }
    }

    #[test]
    fn set_columns_equal_the_indicators_alone() {
        let bars: Vec<Bar> = (0..200)
            .map(|i| {
                let c = 100.0 + (f64::from(i) * 0.3).sin() * 5.0;
                Bar::new(c - 0.5, c + 1.0, c - 1.0, c, 10.0 + f64::from(i % 7))
            })
            .collect();
        let mut set = IndicatorSet::new(parse_set("macd:12:26:9,stoch,aroon:10").unwrap());
        let mut row = vec![0.0; set.columns().len()];
        let mut macd = Vec::new();
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        batch(&mut Macd::new(12, 26, 9), &closes, &mut macd);
        for (i, b) in bars.iter().enumerate() {
            set.update(0, b, &mut row);
            match macd[i] {
                Some(m) => assert_eq!((row[0], row[1], row[2]), (m.macd, m.signal, m.hist)),
                None => assert!(row[0].is_nan() && row[2].is_nan()),
            }
        }
    }

    #[test]
    fn blocks_give_the_values_of_bar_by_bar_updates_whatever_the_split() {
        let specs = "sma:5,ema:7,wma:4,rsi:6,macd:5:9:3,bbands:6:2,atr:5,stoch,vwap,cdlhammer,obv,adx:5,sar,kama:6";
        let bars: Vec<Bar> = (0..300)
            .map(|i| {
                let c = 100.0 + (f64::from(i) * 0.37).sin() * 6.0 + f64::from(i % 11) * 0.1;
                Bar::new(c - 0.4, c + 1.1, c - 0.9, c, 5.0 + f64::from(i % 13))
            })
            .collect();
        let ts: Vec<i64> = (0..300).map(|i| i * 3_600_000_000_000).collect();
        let mut one = IndicatorSet::new(parse_set(specs).unwrap());
        let w = one.columns().len();
        let mut want = vec![0.0; bars.len() * w];
        for (i, b) in bars.iter().enumerate() {
            one.update(ts[i], b, &mut want[i * w..(i + 1) * w]);
        }
        // Blocks of uneven sizes, written with a wider stride (a caller's row holds more).
        let stride = w + 3;
        let mut block = IndicatorSet::new(parse_set(specs).unwrap());
        let mut got = vec![0.0; bars.len() * stride];
        let mut at = 0;
        for len in [1usize, 2, 7, 0, 64, 100, 126] {
            block.update_block(
                &ts[at..at + len],
                &bars[at..at + len],
                &mut got[at * stride..],
                stride,
            );
            at += len;
        }
        assert_eq!(at, bars.len());
        for i in 0..bars.len() {
            for c in 0..w {
                let (a, b) = (want[i * w + c], got[i * stride + c]);
                assert!(
                    a.to_bits() == b.to_bits(),
                    "bar {i} column {}: {a} bar by bar, {b} in blocks",
                    one.columns()[c]
                );
            }
        }
    }
}
