//! The risk manager's rules, as pure functions over plain numbers so that each can be tested
//! (and property-tested) alone: position sizing, exposure caps, the correlation limit, the
//! cooldown after a loss and the drawdown circuit breaker.
//!
//! The [`PaperTrader`](crate::PaperTrader) calls them in a fixed order and writes every refusal
//! and resize, with its reason, to the audit stream.

use serde::{Deserialize, Serialize};

use crate::config::ConfigIssue;

/// How an entry's size is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sizing {
    /// Risk `risk_per_trade` of equity between entry and stop (the original plan's 2%).
    FixedFraction,
    /// Size so that the position's daily volatility (from ATR) is `target_volatility` of
    /// equity.
    VolatilityTarget,
    /// Kelly fraction from the trader's own closed trades (win rate and payoff), multiplied
    /// by `kelly_scale` and capped by `max_position_fraction`; fixed fraction until
    /// `kelly_min_trades` trades have closed.
    Kelly,
    /// Everything the caps allow (`max_position_fraction` of equity): the peers' benchmarks
    /// use it.
    AllIn,
}

/// Risk limits. Fractions are of current equity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Sizing method.
    pub sizing: Sizing,
    /// Equity risked per trade with `fixed_fraction`.
    pub risk_per_trade: f64,
    /// Daily volatility per position, as a fraction of equity, with `volatility_target`.
    pub target_volatility: f64,
    /// Multiplier on the Kelly fraction (0.5 is "half Kelly").
    pub kelly_scale: f64,
    /// Closed trades needed before Kelly sizing is used.
    pub kelly_min_trades: usize,
    /// Stop distance in ATRs for entries that do not bring their own stop (rule signals); 0
    /// for no protective stop (then only `all_in`, `volatility_target` and Kelly can size).
    pub stop_atr: f64,
    /// Take-profit distance in ATRs for such entries; 0 for none.
    pub target_atr: f64,
    /// Trailing stop distance in ATRs below the highest high since entry; 0 for none.
    pub trailing_atr: f64,
    /// ATR period used for stops and sizing.
    pub atr_period: usize,
    /// Open positions at most.
    pub max_open_positions: usize,
    /// One position's value at most, as a fraction of equity.
    pub max_position_fraction: f64,
    /// All positions' value at most, as a fraction of equity.
    pub max_total_exposure: f64,
    /// Largest correlation of recent returns allowed between a new position and an open one.
    pub max_correlation: f64,
    /// Bars of returns over which the correlation is measured.
    pub correlation_window: usize,
    /// Opportunities whose risk level is above this are refused (the original plan's 0.3).
    pub max_risk_level: f64,
    /// Bars without new entries in an instrument after a losing trade in it.
    pub cooldown_bars: u64,
    /// Drawdown from the equity peak that trips the circuit breaker.
    pub max_drawdown: f64,
    /// Bars the breaker pauses new entries; then the peak is reset to current equity.
    pub breaker_bars: u64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            sizing: Sizing::FixedFraction,
            risk_per_trade: 0.02,
            target_volatility: 0.01,
            kelly_scale: 0.5,
            kelly_min_trades: 30,
            stop_atr: 2.0,
            target_atr: 4.0,
            trailing_atr: 0.0,
            atr_period: 14,
            max_open_positions: 5,
            max_position_fraction: 0.25,
            max_total_exposure: 1.0,
            max_correlation: 0.8,
            correlation_window: 50,
            max_risk_level: 0.3,
            cooldown_bars: 6,
            max_drawdown: 0.20,
            breaker_bars: 24,
        }
    }
}

impl RiskConfig {
    /// Every problem, with paths relative to the risk section.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut bad = |path: &str, message: String| {
            out.push(ConfigIssue {
                path: path.to_owned(),
                message,
            });
        };
        for (name, v, lo, hi) in [
            ("risk_per_trade", self.risk_per_trade, 0.0, 1.0),
            ("target_volatility", self.target_volatility, 0.0, 1.0),
            ("kelly_scale", self.kelly_scale, 0.0, 1.0),
            (
                "max_position_fraction",
                self.max_position_fraction,
                0.0,
                1.0,
            ),
            ("max_total_exposure", self.max_total_exposure, 0.0, 1.0),
            ("max_drawdown", self.max_drawdown, 0.0, 1.0),
        ] {
            if !(v.is_finite() && v > lo && v <= hi) {
                bad(name, format!("must lie in ({lo}, {hi}], got {v}"));
            }
        }
        for (name, v) in [
            ("stop_atr", self.stop_atr),
            ("target_atr", self.target_atr),
            ("trailing_atr", self.trailing_atr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bad(name, format!("must be >= 0, got {v}"));
            }
        }
        if !(self.max_correlation.is_finite() && (-1.0..=1.0).contains(&self.max_correlation)) {
            bad(
                "max_correlation",
                format!("must lie in [-1, 1], got {}", self.max_correlation),
            );
        }
        if !(self.max_risk_level.is_finite() && (0.0..=1.0).contains(&self.max_risk_level)) {
            bad(
                "max_risk_level",
                format!("must lie in [0, 1], got {}", self.max_risk_level),
            );
        }
        if self.max_open_positions == 0 {
            bad("max_open_positions", "must be at least 1".into());
        }
        for (name, v) in [
            ("atr_period", self.atr_period),
            ("correlation_window", self.correlation_window),
        ] {
            if !(2..=10_000).contains(&v) {
                bad(name, format!("must be between 2 and 10000, got {v}"));
            }
        }
        out
    }
}

/// The quantity an entry at `price` with its stop `stop_distance` away would have before the
/// caps, or `None` when the inputs cannot size a trade (no equity, no stop distance).
///
/// `atr_daily` is the ATR-implied daily move in price units; `kelly` the fraction from
/// [`kelly_fraction`] when there is one.
pub fn raw_quantity(
    cfg: &RiskConfig,
    equity: f64,
    price: f64,
    stop_distance: f64,
    atr_daily: f64,
    kelly: Option<f64>,
) -> Option<f64> {
    if !(equity > 0.0 && price > 0.0 && price.is_finite()) {
        return None;
    }
    let by_stop = |fraction: f64| {
        (stop_distance > 0.0 && stop_distance.is_finite())
            .then(|| equity * fraction / stop_distance)
    };
    let q = match cfg.sizing {
        Sizing::FixedFraction => by_stop(cfg.risk_per_trade)?,
        Sizing::VolatilityTarget => {
            if !(atr_daily > 0.0 && atr_daily.is_finite()) {
                return None;
            }
            equity * cfg.target_volatility / atr_daily
        }
        Sizing::Kelly => match kelly {
            Some(f) if f > 0.0 => equity * f / price,
            Some(_) => 0.0,
            None => by_stop(cfg.risk_per_trade)?,
        },
        Sizing::AllIn => equity * cfg.max_position_fraction / price,
    };
    (q.is_finite() && q >= 0.0).then_some(q)
}

/// The Kelly fraction `W − (1 − W) / R` for win rate `W` and payoff ratio `R` (average win
/// over average loss), scaled and capped; `None` without enough trades or without losses.
pub fn kelly_fraction(cfg: &RiskConfig, wins: &[f64], losses: &[f64]) -> Option<f64> {
    let n = wins.len() + losses.len();
    if n < cfg.kelly_min_trades || wins.is_empty() || losses.is_empty() {
        return None;
    }
    let w = wins.len() as f64 / n as f64;
    let avg_win = wins.iter().sum::<f64>() / wins.len() as f64;
    let avg_loss = losses.iter().map(|l| l.abs()).sum::<f64>() / losses.len() as f64;
    if avg_loss <= 0.0 {
        return None;
    }
    let r = avg_win / avg_loss;
    let k = w - (1.0 - w) / r;
    Some((k * cfg.kelly_scale).clamp(0.0, cfg.max_position_fraction))
}

/// The largest quantity the exposure caps allow: the position at most
/// `max_position_fraction` of equity, all positions at most `max_total_exposure`, and never
/// more than `cash` buys after `fee_rate`.
pub fn cap_quantity(
    cfg: &RiskConfig,
    equity: f64,
    exposure: f64,
    cash: f64,
    price: f64,
    fee_rate: f64,
) -> f64 {
    if !(price > 0.0 && equity > 0.0) {
        return 0.0;
    }
    let per_asset = equity * cfg.max_position_fraction / price;
    let total = ((equity * cfg.max_total_exposure - exposure) / price).max(0.0);
    let affordable = (cash / (price * (1.0 + fee_rate))).max(0.0);
    per_asset.min(total).min(affordable)
}

/// Pearson correlation of two equally long return windows; `None` when either is flat or
/// they are shorter than 3.
pub fn correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n < 3 {
        return None;
    }
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// The drawdown circuit breaker: trips when equity falls `max_drawdown` below its peak,
/// pauses new entries for `breaker_bars` bars, then resumes with the peak reset to the
/// equity at that time (so it does not trip again at once on the same loss).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Breaker {
    peak: f64,
    paused_until: Option<u64>,
}

/// What the breaker did on a bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BreakerChange {
    /// It tripped at this drawdown.
    Tripped(f64),
    /// It resumed.
    Resumed,
}

impl Breaker {
    /// Updates with the equity after bar number `bar`.
    pub fn update(&mut self, cfg: &RiskConfig, bar: u64, equity: f64) -> Option<BreakerChange> {
        if let Some(until) = self.paused_until {
            if bar >= until {
                self.paused_until = None;
                self.peak = equity;
                return Some(BreakerChange::Resumed);
            }
            return None;
        }
        if equity > self.peak {
            self.peak = equity;
        }
        // Far above the trip level the drawdown cannot reach the limit: a multiplication
        // decides that without the division (the margin dwarfs any rounding).
        if self.peak > 0.0 && equity > self.peak * (1.0 - cfg.max_drawdown) * (1.0 + 1e-9) {
            return None;
        }
        let dd = if self.peak > 0.0 {
            1.0 - equity / self.peak
        } else {
            0.0
        };
        if dd >= cfg.max_drawdown {
            self.paused_until = Some(bar + cfg.breaker_bars.max(1));
            return Some(BreakerChange::Tripped(dd));
        }
        None
    }

    /// [`update`](Self::update) with each equity of a run at once, when none of them can
    /// change the breaker: it is not paused and the run's lowest equity `low` stays above the
    /// trip level of the highest peak the run reaches (each point's own level is no higher).
    /// Then only the peak moves, to the run's highest equity `high`, and it returns `true`;
    /// otherwise nothing changes and the run goes point by point.
    pub fn skip_run(&mut self, cfg: &RiskConfig, low: f64, high: f64) -> bool {
        let keep = 1.0 - cfg.max_drawdown;
        if self.paused_until.is_some() || self.peak <= 0.0 || keep.is_nan() || keep < 0.0 {
            return false;
        }
        let peak = self.peak.max(high);
        if low > peak * keep * (1.0 + 1e-9) {
            self.peak = peak;
            true
        } else {
            false
        }
    }

    /// Whether new entries are paused.
    pub fn paused(&self) -> bool {
        self.paused_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixed_fraction_risks_two_percent_between_entry_and_stop() {
        let cfg = RiskConfig::default();
        // 10,000 equity, stop 5 away: risk 200 = 40 units.
        let q = raw_quantity(&cfg, 10_000.0, 100.0, 5.0, 3.0, None).unwrap();
        assert!((q - 40.0).abs() < 1e-9);
        assert_eq!(raw_quantity(&cfg, 10_000.0, 100.0, 0.0, 3.0, None), None);
        assert_eq!(raw_quantity(&cfg, 0.0, 100.0, 5.0, 3.0, None), None);
    }

    #[test]
    fn volatility_target_and_kelly() {
        let cfg = RiskConfig {
            sizing: Sizing::VolatilityTarget,
            ..RiskConfig::default()
        };
        // 1% of 10,000 = 100 of daily move; 4 per unit per day: 25 units.
        let q = raw_quantity(&cfg, 10_000.0, 100.0, 5.0, 4.0, None).unwrap();
        assert!((q - 25.0).abs() < 1e-9);
        let cfg = RiskConfig {
            sizing: Sizing::Kelly,
            kelly_min_trades: 4,
            ..RiskConfig::default()
        };
        // W = 0.75, R = 2/1: K = 0.75 - 0.25/2 = 0.625, half = 0.3125, capped at 0.25.
        let k = kelly_fraction(&cfg, &[2.0, 2.0, 2.0], &[-1.0]).unwrap();
        assert!((k - 0.25).abs() < 1e-12);
        assert_eq!(kelly_fraction(&cfg, &[2.0, 2.0], &[-1.0]), None, "too few");
        // W = 0.25, R = 1: negative Kelly: size 0.
        let k = kelly_fraction(&cfg, &[1.0], &[-1.0, -1.0, -1.0]).unwrap();
        assert_eq!(k, 0.0);
        assert_eq!(raw_quantity(&cfg, 1e4, 100.0, 5.0, 4.0, Some(k)), Some(0.0));
    }

    #[test]
    fn correlation_of_known_series() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((correlation(&a, &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((correlation(&a, &[8.0, 6.0, 4.0, 2.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&a, &[1.0, 1.0, 1.0, 1.0]), None);
    }

    #[test]
    fn breaker_trips_pauses_and_resumes_with_a_new_peak() {
        let cfg = RiskConfig {
            max_drawdown: 0.1,
            breaker_bars: 3,
            ..RiskConfig::default()
        };
        let mut b = Breaker::default();
        assert_eq!(b.update(&cfg, 0, 100.0), None);
        assert_eq!(b.update(&cfg, 1, 95.0), None);
        assert!(
            matches!(b.update(&cfg, 2, 89.0), Some(BreakerChange::Tripped(d)) if (d - 0.11).abs() < 1e-12)
        );
        assert!(b.paused());
        assert_eq!(b.update(&cfg, 3, 80.0), None);
        assert_eq!(b.update(&cfg, 5, 80.0), Some(BreakerChange::Resumed));
        assert!(!b.paused());
        // The peak is now 80: a fall to 75 is 6.25%, not a trip.
        assert_eq!(b.update(&cfg, 6, 75.0), None);
    }

    proptest! {
        /// A run the breaker skips leaves it as updating it point by point does, and point by
        /// point nothing happens on it; a run it does not skip is left untouched.
        #[test]
        fn a_skipped_run_changes_the_breaker_as_each_point_would(
            start in prop::collection::vec(1.0f64..200.0, 0..8),
            run in prop::collection::vec(1.0f64..200.0, 1..30),
            max_drawdown in 0.01f64..=1.0,
        ) {
            let cfg = RiskConfig { max_drawdown, breaker_bars: 3, ..RiskConfig::default() };
            let mut b = Breaker::default();
            for (k, e) in start.iter().enumerate() {
                b.update(&cfg, k as u64 + 1, *e);
            }
            let before = b.clone();
            let low = run.iter().copied().fold(f64::INFINITY, f64::min);
            let high = run.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut skipped = b.clone();
            let skips = skipped.skip_run(&cfg, low, high);
            let mut each = b;
            let changes: Vec<_> = run
                .iter()
                .enumerate()
                .filter_map(|(k, e)| each.update(&cfg, (start.len() + k) as u64 + 1, *e))
                .collect();
            if skips {
                prop_assert!(changes.is_empty());
                prop_assert_eq!(skipped, each);
            } else {
                prop_assert_eq!(skipped, before);
            }
        }

        #[test]
        fn caps_are_never_exceeded(
            equity in 1.0f64..1e7,
            exposure_frac in 0.0f64..1.2,
            cash_frac in 0.0f64..1.0,
            price in 1e-4f64..1e5,
            per_asset in 0.01f64..1.0,
            total in 0.01f64..1.0,
            fee in 0.0f64..0.01,
        ) {
            let cfg = RiskConfig {
                max_position_fraction: per_asset,
                max_total_exposure: total,
                ..RiskConfig::default()
            };
            let exposure = equity * exposure_frac;
            let cash = equity * cash_frac;
            let q = cap_quantity(&cfg, equity, exposure, cash, price, fee);
            prop_assert!(q >= 0.0);
            let value = q * price;
            prop_assert!(value <= equity * per_asset * (1.0 + 1e-12));
            prop_assert!(exposure + value <= (equity * total).max(exposure) * (1.0 + 1e-12));
            prop_assert!(value * (1.0 + fee) <= cash * (1.0 + 1e-12));
        }
    }
}
