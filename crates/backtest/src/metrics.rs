//! Performance metrics of an equity curve and its trades.
//!
//! Returns are bar to bar; annualisation assumes markets that never close (365 days a year,
//! as crypto trades). Sharpe and Sortino use a zero risk-free rate. Drawdown is measured on
//! the curve's points (bar closes).

use atalaya_engine::ClosedTrade;
use atalaya_model::{Timeframe, UnixNanos, format_utc};
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::Timed;

const YEAR_NS: f64 = 365.0 * 86_400e9;

/// The figures the backtest reports, for the strategy and for buy-and-hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// First point (UTC).
    pub start: String,
    /// Last point (UTC).
    pub end: String,
    /// Points on the curve.
    pub bars: usize,
    /// Starting equity.
    pub initial_equity: f64,
    /// Final equity.
    pub final_equity: f64,
    /// Final over initial, minus one.
    pub total_return: f64,
    /// Compound annual growth rate over the span.
    pub cagr: f64,
    /// Annualised mean over standard deviation of bar returns.
    pub sharpe: f64,
    /// Annualised mean over downside deviation of bar returns.
    pub sortino: f64,
    /// Largest fall from a peak, as a fraction of the peak.
    pub max_drawdown: f64,
    /// CAGR over maximum drawdown.
    pub calmar: f64,
    /// Closed trades (the number of instruments bought, for buy-and-hold).
    pub trades: usize,
    /// Winning trades over trades.
    pub win_rate: Option<f64>,
    /// Gross profit over gross loss (`None` without losing trades).
    pub profit_factor: Option<f64>,
    /// Mean P&L per trade in the quote currency.
    pub avg_trade: Option<f64>,
    /// Mean return per trade.
    pub avg_trade_return: Option<f64>,
    /// Fraction of bars with a position open.
    pub exposure: f64,
}

/// Drawdown at each point: `1 − value / running peak`.
pub fn drawdowns(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut peak = f64::MIN;
    values
        .into_iter()
        .map(|v| {
            peak = peak.max(v);
            if peak > 0.0 { 1.0 - v / peak } else { 0.0 }
        })
        .collect()
}

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// Metrics of `points` (valued by `value`) that started from `initial`; `trades` are the
/// strategy's (`None` for buy-and-hold, which counts one trade per bought instrument and
/// is always exposed).
pub fn metrics<P: Timed>(
    points: &[P],
    value: impl Fn(&P) -> f64,
    initial: f64,
    trades: Option<&[ClosedTrade]>,
    tf: Timeframe,
) -> Metrics {
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => Some((a.ts(), b.ts())),
        _ => None,
    };
    curve_metrics(points.iter().map(value), span, initial, trades, tf)
}

/// The figures of one pass over a curve's values, taken a value at a time.
pub(crate) struct Pass {
    n: usize,
    last: f64,
    /// Sums of the bar returns less the first one, and of their squares (the shift keeps the
    /// variance exact for a curve of equal returns, and accurate whatever the returns' level).
    shift: f64,
    sum: f64,
    sum_sq: f64,
    /// Sum of the squared negative returns.
    down_sq: f64,
    max_drawdown: f64,
    /// The running peak and the lowest value since it.
    peak: f64,
    low: f64,
}

impl Pass {
    /// A pass over a curve that started from `initial`.
    pub(crate) fn new(initial: f64) -> Self {
        Self {
            n: 0,
            last: initial,
            shift: f64::NAN,
            sum: 0.0,
            sum_sq: 0.0,
            down_sq: 0.0,
            max_drawdown: 0.0,
            peak: initial,
            low: initial,
        }
    }

    /// Takes the curve's next value: its bar return's moments, and the drawdown. The drawdown
    /// from a peak is largest at the lowest value before the next peak, so it is divided out
    /// once per new peak, not once per value.
    #[inline]
    pub(crate) fn push(&mut self, v: f64) {
        let r = if self.last > 0.0 {
            v / self.last - 1.0
        } else {
            0.0
        };
        if self.n == 0 {
            self.shift = r;
        }
        self.n += 1;
        self.last = v;
        let d = r - self.shift;
        self.sum += d;
        self.sum_sq += d * d;
        // Comparisons rather than `f64::min`, whose NaN handling costs instructions on every
        // value: the same results (a NaN return counts as no loss, a NaN value is no low).
        let neg = if r < 0.0 { r } else { 0.0 };
        self.down_sq += neg * neg;
        if v > self.peak {
            self.max_drawdown = self.max_drawdown.max(deepest(self.peak, self.low));
            (self.peak, self.low) = (v, v);
        } else if v < self.low {
            self.low = v;
        }
    }

    /// The figures once every value is in.
    fn finish(mut self) -> Self {
        self.max_drawdown = self.max_drawdown.max(deepest(self.peak, self.low));
        self
    }
}

/// The fall from `peak` to `low`.
fn deepest(peak: f64, low: f64) -> f64 {
    if peak > 0.0 { 1.0 - low / peak } else { 0.0 }
}

/// [`metrics`] of a curve given as its values, with the times of its first and last point
/// (`None` for an empty curve).
pub(crate) fn curve_metrics(
    values: impl Iterator<Item = f64>,
    span: Option<(UnixNanos, UnixNanos)>,
    initial: f64,
    trades: Option<&[ClosedTrade]>,
    tf: Timeframe,
) -> Metrics {
    let mut p = Pass::new(initial);
    values.for_each(|v| p.push(v));
    pass_metrics(p, span, initial, trades, tf)
}

/// [`curve_metrics`] of the values a [`Pass`] took (all of them, from `initial`).
pub(crate) fn pass_metrics(
    p: Pass,
    span: Option<(UnixNanos, UnixNanos)>,
    initial: f64,
    trades: Option<&[ClosedTrade]>,
    tf: Timeframe,
) -> Metrics {
    let p = p.finish();
    let final_equity = p.last;
    let total_return = if initial > 0.0 {
        final_equity / initial - 1.0
    } else {
        0.0
    };
    // The first point is a bar close: the span starts one bar earlier.
    let (t0, t1) = span.map_or((0, 0), |(a, b)| (a - tf.nanos(), b));
    let years = (t1 - t0) as f64 / YEAR_NS;
    let cagr = if years > 0.0 && final_equity > 0.0 && initial > 0.0 {
        (final_equity / initial).powf(1.0 / years) - 1.0
    } else {
        -1.0_f64.max(total_return)
    };
    let n = p.n.max(1) as f64;
    let mean = if p.n == 0 { 0.0 } else { p.shift + p.sum / n };
    let ss = (p.sum_sq - p.sum * p.sum / n).max(0.0);
    let var = ss / (n - 1.0).max(1.0);
    let down = (p.down_sq / n).sqrt();
    let per_year = YEAR_NS / tf.nanos() as f64;
    let sharpe = finite(mean / var.sqrt() * per_year.sqrt());
    let sortino = finite(mean / down * per_year.sqrt());
    let max_drawdown = p.max_drawdown;
    let calmar = if max_drawdown > 0.0 {
        cagr / max_drawdown
    } else {
        0.0
    };
    let (count, win_rate, profit_factor, avg_trade, avg_trade_return) = match trades {
        Some(ts) if !ts.is_empty() => {
            let pnls: Vec<f64> = ts.iter().map(|t| t.pnl.to_f64().unwrap_or(0.0)).collect();
            let wins = pnls.iter().filter(|p| **p > 0.0).count();
            let gross_win = pnls.iter().filter(|p| **p > 0.0).fold(0.0, |a, p| a + p);
            let gross_loss = pnls.iter().filter(|p| **p < 0.0).fold(0.0, |a, p| a - p);
            let k = ts.len() as f64;
            (
                ts.len(),
                Some(wins as f64 / k),
                (gross_loss > 0.0).then(|| gross_win / gross_loss),
                Some(pnls.iter().sum::<f64>() / k),
                Some(ts.iter().map(|t| t.return_pct).sum::<f64>() / k),
            )
        }
        Some(_) => (0, None, None, None, None),
        None => (p.n.min(1), None, None, None, None),
    };
    let fmt = |t: UnixNanos| format_utc(t);
    Metrics {
        start: fmt(t0),
        end: fmt(t1),
        bars: p.n,
        initial_equity: initial,
        final_equity,
        total_return,
        cagr,
        sharpe,
        sortino,
        max_drawdown,
        calmar,
        trades: count,
        win_rate,
        profit_factor,
        avg_trade,
        avg_trade_return,
        exposure: if trades.is_some() { 0.0 } else { 1.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    #[test]
    fn a_curve_computed_by_hand() {
        // 100 → 110 → 99 → 121 over three hourly bars.
        let pts: Vec<(UnixNanos, f64)> = vec![(H, 110.0), (2 * H, 99.0), (3 * H, 121.0)];
        let m = metrics(&pts, |p| p.1, 100.0, None, Timeframe::H1);
        assert!((m.total_return - 0.21).abs() < 1e-12);
        assert!((m.max_drawdown - 0.1).abs() < 1e-12, "110 → 99");
        // Returns 0.1, -0.1, 0.2222…: mean 0.0740740…, sample sd 0.1613…
        let r = [0.1, -0.1, 121.0 / 99.0 - 1.0];
        let mean = r.iter().sum::<f64>() / 3.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let want = mean / sd * (365.0 * 24.0f64).sqrt();
        assert!((m.sharpe - want).abs() < 1e-9, "{} vs {want}", m.sharpe);
        let dd = (0.01f64 / 3.0).sqrt();
        assert!((m.sortino - mean / dd * (365.0 * 24.0f64).sqrt()).abs() < 1e-9);
        // Three hours is 3/8760 of a year.
        let cagr = 1.21f64.powf(8760.0 / 3.0) - 1.0;
        assert!((m.cagr / cagr - 1.0).abs() < 1e-9);
        assert_eq!(m.start, "1970-01-01T00:00:00Z");
        assert_eq!(m.end, "1970-01-01T03:00:00Z");
        assert_eq!(drawdowns([1.0, 2.0, 1.5, 3.0]), vec![0.0, 0.0, 0.25, 0.0]);
    }

    #[test]
    fn one_pass_agrees_with_the_textbook_two_pass_figures() {
        // A long curve with several peaks, the deepest fall after the second.
        let mut v = 100.0;
        let mut state = 7u64;
        let pts: Vec<(UnixNanos, f64)> = (1..=5_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let r = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.495) * 0.02;
                v *= 1.0 + r;
                (i * H, v)
            })
            .collect();
        let m = metrics(&pts, |p| p.1, 100.0, None, Timeframe::H1);
        let mut prev = 100.0;
        let rs: Vec<f64> = pts
            .iter()
            .map(|p| {
                let r = p.1 / prev - 1.0;
                prev = p.1;
                r
            })
            .collect();
        let n = rs.len() as f64;
        let mean = rs.iter().sum::<f64>() / n;
        let sd = (rs.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let down = (rs.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
        let k = (365.0 * 24.0f64).sqrt();
        assert!((m.sharpe / (mean / sd * k) - 1.0).abs() < 1e-9);
        assert!((m.sortino / (mean / down * k) - 1.0).abs() < 1e-9);
        let dd = drawdowns(std::iter::once(100.0).chain(pts.iter().map(|p| p.1)));
        let want = dd.iter().copied().fold(0.0, f64::max);
        assert!(want > 0.05, "the curve falls somewhere: {want}");
        assert!((m.max_drawdown - want).abs() < 1e-12);
        // A flat curve: no variance and no fall, so no Sharpe, Sortino or drawdown.
        let flat: Vec<(UnixNanos, f64)> = (1..=100).map(|i| (i * H, 100.0)).collect();
        let m = metrics(&flat, |p| p.1, 100.0, None, Timeframe::H1);
        assert_eq!((m.sharpe, m.sortino, m.max_drawdown), (0.0, 0.0, 0.0));
    }
}
