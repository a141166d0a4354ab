//! Walk-forward optimisation: rolling train and test windows; on each train window a seeded
//! random search (in parallel) over the configured parameters picks the best set by the
//! objective; that set is then run, untouched, on the following test window. The stitched
//! test windows are the out-of-sample result; the in-sample versus out-of-sample gap and a
//! Monte Carlo resampling of the out-of-sample trades say how far to trust it.
//!
//! Parameters are dotted paths into the settings (`engine.decision.buy`, `risk.stop_atr`) or
//! `rules.NAME`, which replaces `{NAME}` in every rule's text (`crosses_above(sma_{fast},
//! sma_{slow})`), so indicator periods can be searched too.

use std::collections::BTreeMap;

use atalaya_engine::{EngineConfig, PortfolioConfig, RiskConfig};
use atalaya_model::{Candle, InstrumentId, UnixNanos, format_utc};
use rayon::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Backtest, BacktestError, Metrics, Settings, metrics, run_candles};

const DAY: i64 = 86_400_000_000_000;

/// What the search maximises on each train window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Annualised Sharpe ratio.
    Sharpe,
    /// Annualised Sortino ratio.
    Sortino,
    /// Total return.
    TotalReturn,
    /// CAGR over maximum drawdown.
    Calmar,
}

impl Objective {
    fn of(self, m: &Metrics) -> f64 {
        match self {
            Self::Sharpe => m.sharpe,
            Self::Sortino => m.sortino,
            Self::TotalReturn => m.total_return,
            Self::Calmar => m.calmar,
        }
    }
}

/// One searched parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// `engine.decision.buy`, `risk.stop_atr`, or `rules.NAME` for `{NAME}` in rule texts.
    pub path: String,
    /// Lowest value tried.
    pub min: f64,
    /// Highest value tried.
    pub max: f64,
    /// Whole numbers only (periods, counts).
    #[serde(default)]
    pub integer: bool,
}

/// `[optimize]`: windows, search and objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizeConfig {
    /// Days in each train window.
    pub train_days: u32,
    /// Days in each test window (also the step between windows).
    pub test_days: u32,
    /// Parameter sets tried per train window.
    pub trials: usize,
    /// Seed of the search and of the Monte Carlo resampling.
    pub seed: u64,
    /// What the search maximises.
    pub objective: Objective,
    /// Bars before each window fed to warm the indicators up, not traded.
    pub warmup_bars: u32,
    /// Train results with fewer trades score as the worst (a strategy that never trades has
    /// no risk and no information).
    pub min_trades: usize,
    /// Monte Carlo resamples of the out-of-sample trades.
    pub resamples: usize,
    /// The parameters searched.
    pub params: Vec<Param>,
}

impl Default for OptimizeConfig {
    fn default() -> Self {
        Self {
            train_days: 180,
            test_days: 30,
            trials: 64,
            seed: 42,
            objective: Objective::Sharpe,
            warmup_bars: 300,
            min_trades: 5,
            resamples: 1000,
            params: Vec::new(),
        }
    }
}

/// SplitMix64: a small, seeded, portable generator.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn set_path(root: &mut Value, path: &str, v: Value) -> Result<(), String> {
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let Some(obj) = cur.as_object_mut() else {
            return Err(format!(
                "`{path}`: `{}` is not a section",
                parts[..i].join(".")
            ));
        };
        let Some(next) = obj.get_mut(*p) else {
            return Err(format!("`{path}`: there is no field `{p}` here"));
        };
        cur = next;
    }
    if !(cur.is_number() || cur.is_string() || cur.is_null()) {
        return Err(format!("`{path}` is a section, not a number"));
    }
    *cur = v;
    Ok(())
}

/// The settings with `values` applied (path → value); an error names a bad path or a
/// configuration the values make invalid.
pub fn apply(base: &Settings, values: &BTreeMap<String, f64>) -> Result<Settings, String> {
    let mut root = serde_json::json!({
        "engine": base.engine,
        "portfolio": base.portfolio,
        "risk": base.risk,
    });
    let mut placeholders = Vec::new();
    for (path, &v) in values {
        if let Some(name) = path.strip_prefix("rules.") {
            placeholders.push((format!("{{{name}}}"), v));
            continue;
        }
        let json = if v.fract() == 0.0 && v.abs() < 9e15 {
            Value::from(v as i64)
        } else {
            Value::from(v)
        };
        set_path(&mut root, path, json)?;
    }
    let field = |k: &str| root.get(k).cloned().unwrap_or(Value::Null);
    let mut engine: EngineConfig =
        serde_json::from_value(field("engine")).map_err(|e| format!("engine: {e}"))?;
    let portfolio: PortfolioConfig =
        serde_json::from_value(field("portfolio")).map_err(|e| format!("portfolio: {e}"))?;
    let risk: RiskConfig =
        serde_json::from_value(field("risk")).map_err(|e| format!("risk: {e}"))?;
    for rule in &mut engine.rules {
        for (ph, v) in &placeholders {
            rule.when = rule.when.replace(ph.as_str(), &format_number(*v));
        }
    }
    let problems: Vec<String> = engine
        .validate()
        .into_iter()
        .map(|i| format!("engine.{}: {}", i.path, i.message))
        .chain(
            risk.validate()
                .into_iter()
                .map(|i| format!("risk.{}: {}", i.path, i.message)),
        )
        .chain(
            portfolio
                .validate()
                .into_iter()
                .map(|i| format!("portfolio.{}: {}", i.path, i.message)),
        )
        .collect();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(Settings {
        engine,
        portfolio,
        risk,
        trade_from: base.trade_from,
    })
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn sample(params: &[Param], rng: &mut Rng) -> BTreeMap<String, f64> {
    params
        .iter()
        .map(|p| {
            let u = rng.unit();
            let v = if p.integer {
                (p.min.round() + (u * (p.max.round() - p.min.round() + 1.0)).floor())
                    .min(p.max.round())
            } else {
                p.min + u * (p.max - p.min)
            };
            (p.path.clone(), v)
        })
        .collect()
}

/// One train/test window's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct WindowReport {
    /// Train window start (UTC).
    pub train_from: String,
    /// Test window start = train window end.
    pub test_from: String,
    /// Test window end.
    pub test_to: String,
    /// The chosen parameters.
    pub params: BTreeMap<String, f64>,
    /// Trials that produced a result (others made the configuration invalid).
    pub valid_trials: usize,
    /// The objective of the chosen set on the train window.
    pub in_sample: f64,
    /// The objective of the chosen set on the test window.
    pub out_of_sample: f64,
    /// The test window's metrics.
    pub test: Metrics,
}

/// Percentiles of a resampled quantity.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    /// 5th percentile.
    pub p5: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// The whole walk-forward outcome.
#[derive(Clone, Debug, Serialize)]
pub struct WalkForward {
    /// The objective used.
    pub objective: Objective,
    /// Each window.
    pub windows: Vec<WindowReport>,
    /// The stitched out-of-sample curve's metrics.
    pub out_of_sample: Metrics,
    /// Buy-and-hold over the same test windows, stitched.
    pub buy_and_hold: Metrics,
    /// Mean in-sample objective of the chosen sets.
    pub in_sample_mean: f64,
    /// Mean out-of-sample objective of the same sets.
    pub out_of_sample_mean: f64,
    /// Out-of-sample trades.
    pub trades: usize,
    /// Total return of the out-of-sample trades resampled with replacement.
    pub mc_total_return: Option<Spread>,
    /// Maximum drawdown of the resampled trade sequences.
    pub mc_max_drawdown: Option<Spread>,
    /// The set to deploy: the best on the last train window, ending at the data's end.
    pub deploy: Option<Deploy>,
    /// The stitched out-of-sample equity, for charts.
    #[serde(skip)]
    pub equity: Vec<(UnixNanos, f64)>,
}

/// The parameters chosen on the most recent train window (what a user would run next).
#[derive(Clone, Debug, Serialize)]
pub struct Deploy {
    /// Train window start.
    pub train_from: String,
    /// Train window end (the data's end).
    pub train_to: String,
    /// The chosen parameters.
    pub params: BTreeMap<String, f64>,
    /// Their objective on that window (in sample: expect less).
    pub in_sample: f64,
}

/// The bars closing after `from` and up to `to`.
fn window(bars: &[Candle], from: UnixNanos, to: UnixNanos) -> &[Candle] {
    let a = bars.partition_point(|c| c.close_time() <= from);
    let b = bars.partition_point(|c| c.close_time() <= to);
    &bars[a..b]
}

fn percentiles(mut xs: Vec<f64>) -> Spread {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    Spread {
        p5: at(0.05),
        p50: at(0.5),
        p95: at(0.95),
    }
}

/// Runs the walk-forward optimisation of `base` over `bars` (venue bars of `instruments` in the
/// order of their close, each received at its close, as a replay's are); `progress` is called
/// with (windows done, windows). Each trial is a [`run_candles`] of
/// its window.
pub fn walk_forward(
    base: &Settings,
    cfg: &OptimizeConfig,
    instruments: &[InstrumentId],
    bars: &[Candle],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<WalkForward, BacktestError> {
    let bad = |problems: String| BacktestError::Config {
        section: "optimize",
        problems,
    };
    if cfg.params.is_empty() {
        return Err(bad(
            "no parameters to search (add [[optimize.params]])".into()
        ));
    }
    if cfg.trials == 0 || cfg.train_days == 0 || cfg.test_days == 0 {
        return Err(bad(
            "trials, train_days and test_days must be at least 1".into()
        ));
    }
    for p in &cfg.params {
        if !(p.min.is_finite() && p.max.is_finite() && p.min <= p.max) {
            return Err(bad(format!("{}: min must be <= max", p.path)));
        }
    }
    // Every path must exist: try the midpoints.
    let mid: BTreeMap<String, f64> = cfg
        .params
        .iter()
        .map(|p| {
            let m = (p.min + p.max) / 2.0;
            (p.path.clone(), if p.integer { m.round() } else { m })
        })
        .collect();
    if let Err(e) = apply(base, &mid)
        && (e.contains("there is no field")
            || e.contains("is a section")
            || e.contains("is not a section"))
    {
        return Err(bad(e));
    }
    let tf = base.trading_timeframe();
    let (Some(first), Some(last)) = (
        bars.first().map(Candle::close_time),
        bars.last().map(Candle::close_time),
    ) else {
        return Err(BacktestError::NoBars(tf));
    };
    let warm = tf.nanos() * i64::from(cfg.warmup_bars);
    let (train, test) = (
        i64::from(cfg.train_days) * DAY,
        i64::from(cfg.test_days) * DAY,
    );
    let start = first;
    let mut bounds = Vec::new();
    let mut t = start;
    while t + train + test / 2 <= last {
        bounds.push((t, t + train, (t + train + test).min(last)));
        t += test;
    }
    if bounds.is_empty() {
        return Err(bad(format!(
            "the data spans {:.0} days: too short for a {}-day train and a {}-day test window",
            (last - start) as f64 / DAY as f64,
            cfg.train_days,
            cfg.test_days
        )));
    }
    let cash = base.portfolio.initial_cash.to_f64().unwrap_or(1.0);
    let bt = |s: &Settings, from: UnixNanos, to: UnixNanos| -> Option<Backtest> {
        let slice = window(bars, from - warm, to);
        let s = Settings {
            trade_from: Some(from),
            ..s.clone()
        };
        run_candles(&s, instruments, slice, &mut |_| {}).ok()
    };
    let search = |rng: &mut Rng, a: UnixNanos, b: UnixNanos| {
        let candidates: Vec<BTreeMap<String, f64>> =
            (0..cfg.trials).map(|_| sample(&cfg.params, rng)).collect();
        let scored: Vec<Option<(f64, usize)>> = candidates
            .par_iter()
            .map(|vals| {
                let s = apply(base, vals).ok()?;
                let r = bt(&s, a, b)?;
                let score = if r.metrics.trades < cfg.min_trades {
                    f64::NEG_INFINITY
                } else {
                    cfg.objective.of(&r.metrics)
                };
                Some((score, r.metrics.trades))
            })
            .collect();
        let valid = scored.iter().filter(|s| s.is_some()).count();
        let best = scored
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|(v, _)| (i, v)))
            .fold(None, |acc: Option<(usize, f64)>, (i, v)| match acc {
                Some((_, bv)) if bv >= v => acc,
                _ => Some((i, v)),
            });
        (best, valid, candidates)
    };
    let mut rng = Rng(cfg.seed);
    let mut windows = Vec::new();
    let mut stitched: Vec<(UnixNanos, f64)> = Vec::new();
    let mut hold: Vec<(UnixNanos, f64)> = Vec::new();
    let (mut level, mut hold_level) = (cash, cash);
    let mut oos_trades: Vec<f64> = Vec::new();
    for (w, &(a, b, c)) in bounds.iter().enumerate() {
        let (best, valid, candidates) = search(&mut rng, a, b);
        progress(w + 1, bounds.len());
        let Some((bi, in_sample)) = best else {
            continue;
        };
        let params = candidates[bi].clone();
        let Some(chosen) = apply(base, &params).ok() else {
            continue;
        };
        let Some(r) = bt(&chosen, b, c) else {
            continue;
        };
        for p in &r.equity {
            stitched.push((p.ts, level * p.equity / cash));
        }
        for (p, h) in r.equity.iter().zip(&r.benchmark) {
            hold.push((p.ts, hold_level * h / cash));
        }
        level = stitched.last().map_or(level, |p| p.1);
        hold_level = hold.last().map_or(hold_level, |p| p.1);
        oos_trades.extend(r.trades.iter().map(|t| t.return_pct));
        windows.push(WindowReport {
            train_from: format_utc(a),
            test_from: format_utc(b),
            test_to: format_utc(c),
            params,
            valid_trials: valid,
            in_sample,
            out_of_sample: cfg.objective.of(&r.metrics),
            test: r.metrics,
        });
    }
    if windows.is_empty() {
        return Err(bad(
            "no window produced a result: every trial was invalid or traded nothing".into(),
        ));
    }
    let finite_mean = |xs: Vec<f64>| {
        let f: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
        if f.is_empty() {
            f64::NAN
        } else {
            f.iter().sum::<f64>() / f.len() as f64
        }
    };
    let in_sample_mean = finite_mean(windows.iter().map(|w| w.in_sample).collect());
    let out_of_sample_mean = finite_mean(windows.iter().map(|w| w.out_of_sample).collect());
    let (mc_total_return, mc_max_drawdown) = if oos_trades.len() >= 2 && cfg.resamples > 0 {
        let mut mc = Rng(cfg.seed ^ 0x5EED);
        let n = oos_trades.len();
        let (mut rets, mut dds) = (Vec::new(), Vec::new());
        for _ in 0..cfg.resamples {
            let (mut eq, mut peak, mut dd) = (1.0f64, 1.0f64, 0.0f64);
            for _ in 0..n {
                let r = oos_trades[(mc.next() % n as u64) as usize];
                eq *= 1.0 + r;
                peak = peak.max(eq);
                dd = dd.max(1.0 - eq / peak);
            }
            rets.push(eq - 1.0);
            dds.push(dd);
        }
        (Some(percentiles(rets)), Some(percentiles(dds)))
    } else {
        (None, None)
    };
    let end = last;
    let deploy = match search(&mut rng, (end - train).max(start), end) {
        (Some((i, v)), _, c) => Some(Deploy {
            train_from: format_utc((end - train).max(start)),
            train_to: format_utc(end),
            params: c[i].clone(),
            in_sample: v,
        }),
        _ => None,
    };
    let out_of_sample = metrics(&stitched, |p| p.1, cash, None, tf);
    let buy_and_hold = metrics(&hold, |p| p.1, cash, None, tf);
    let mut oos = out_of_sample;
    oos.trades = oos_trades.len();
    Ok(WalkForward {
        objective: cfg.objective,
        windows,
        out_of_sample: oos,
        buy_and_hold,
        in_sample_mean,
        out_of_sample_mean,
        trades: oos_trades.len(),
        mc_total_return,
        mc_max_drawdown,
        deploy,
        equity: stitched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::sma_crossover;
    use atalaya_model::Timeframe;

    #[test]
    fn apply_sets_paths_and_rule_placeholders_and_names_bad_paths() {
        let mut base = sma_crossover(Timeframe::H1, 5, 20);
        base.engine.rules[0].when = "crosses_above(sma_{fast}, sma_{slow})".into();
        let vals: BTreeMap<String, f64> = [
            ("rules.fast".to_owned(), 7.0),
            ("rules.slow".to_owned(), 30.0),
            ("risk.stop_atr".to_owned(), 2.5),
            ("engine.decision.buy".to_owned(), 0.55),
            ("risk.cooldown_bars".to_owned(), 3.0),
        ]
        .into_iter()
        .collect();
        let s = apply(&base, &vals).unwrap();
        assert_eq!(s.engine.rules[0].when, "crosses_above(sma_7, sma_30)");
        assert_eq!(s.risk.stop_atr, 2.5);
        assert_eq!(s.risk.cooldown_bars, 3);
        assert_eq!(s.engine.decision.buy, 0.55);
        let bad: BTreeMap<String, f64> = [("risk.stop_atrr".to_owned(), 1.0)].into_iter().collect();
        assert!(
            apply(&base, &bad)
                .unwrap_err()
                .contains("no field `stop_atrr`")
        );
        let invalid: BTreeMap<String, f64> = [("engine.decision.buy".to_owned(), 3.0)]
            .into_iter()
            .collect();
        assert!(
            apply(&base, &invalid)
                .unwrap_err()
                .contains("engine.decision.buy")
        );
    }

    #[test]
    fn integer_samples_cover_the_range_inclusively() {
        let p = [Param {
            path: "x".into(),
            min: 2.0,
            max: 4.0,
            integer: true,
        }];
        let mut rng = Rng(1);
        let mut seen = [0; 3];
        for _ in 0..300 {
            let v = sample(&p, &mut rng)["x"];
            seen[(v - 2.0) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
