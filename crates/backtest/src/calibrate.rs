//! Calibration of the decision: what happened after each opportunity, measured on history.
//!
//! Every opportunity (with the confidence gate off, so that every non-HOLD call is measured)
//! is followed bar by bar on its own series until its stop, its target or its horizon:
//! the outcome is a **hit** when the target is reached first (when one bar reaches both, the
//! stop is assumed), and its return is the move from the opportunity's price to the exit, in
//! the opportunity's direction. From these outcomes:
//!
//! * the **reliability table** sets stated confidence against the observed hit rate;
//! * the **calibration buckets** (per direction and |score| band) give the hit rate (Laplace
//!   smoothed), the mean directional return and the mean bars to the exit, which the engine
//!   then uses as confidence, expected return and horizon (`engine.decision.calibration`).

use std::collections::HashMap;

use atalaya_engine::{CalibrationBucket, EngineConfig, Pipeline};
use atalaya_model::{Candle, Envelope, Event, InstrumentId, Opportunity, Timeframe, UnixNanos};
use serde::Serialize;

use crate::BacktestError;

/// What happened after one opportunity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// The opportunity's time.
    pub ts: UnixNanos,
    /// +1 buy, −1 sell.
    pub direction: i8,
    /// Its score.
    pub score: f64,
    /// Its stated confidence.
    pub confidence: f64,
    /// Target reached before the stop.
    pub hit: bool,
    /// Return to the exit, in the opportunity's direction.
    pub ret: f64,
    /// Bars to the exit.
    pub bars: u32,
}

/// Runs `cfg`'s pipeline over `envs` and measures every opportunity's outcome. Opportunities
/// whose horizon runs past the data are left out.
pub fn outcomes<'a, I>(cfg: &EngineConfig, envs: I) -> Result<Vec<Outcome>, BacktestError>
where
    I: IntoIterator<Item = &'a Envelope<Event>>,
{
    let mut cfg = cfg.clone();
    cfg.decision.min_confidence = 0.0;
    cfg.decision.calibration.clear();
    let mut p = Pipeline::new(cfg)?;
    // Outcomes are measured from the numbers; the factor sentences are not needed.
    p.set_explanations(false);
    let mut bars: HashMap<(InstrumentId, Timeframe), Vec<Candle>> = HashMap::new();
    let mut opps: Vec<(Opportunity, usize)> = Vec::new();
    for env in envs {
        for out in p.process(env) {
            match &out.payload {
                Event::Candle(c) => bars
                    .entry((c.instrument(), c.timeframe()))
                    .or_default()
                    .push(*c),
                Event::Opportunity(o) => {
                    let n = bars
                        .get(&(o.instrument(), o.timeframe()))
                        .map_or(0, Vec::len);
                    opps.push(((**o).clone(), n));
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::with_capacity(opps.len());
    for (o, next) in opps {
        let Some(series) = bars.get(&(o.instrument(), o.timeframe())) else {
            continue;
        };
        let dir = o.kind().direction();
        let d = f64::from(dir);
        let horizon = usize::try_from(o.horizon_ns() / o.timeframe().nanos())
            .unwrap_or(1)
            .max(1);
        let Some(window) = series.get(next..next + horizon) else {
            continue;
        };
        let price = o.price();
        let (stop, target) = (o.stop_loss(), o.take_profit());
        let mut result = None;
        for (k, c) in window.iter().enumerate() {
            // In the opportunity's direction: adverse is low for buys, high for sells.
            let (adverse, favourable) = if dir > 0 {
                (c.low(), c.high())
            } else {
                (c.high(), c.low())
            };
            if let Some(s) = stop
                && (adverse - s) * d <= 0.0
            {
                result = Some((false, (s / price - 1.0) * d, k + 1));
                break;
            }
            if let Some(t) = target
                && (favourable - t) * d >= 0.0
            {
                result = Some((true, (t / price - 1.0) * d, k + 1));
                break;
            }
        }
        let (hit, ret, bars_to_exit) = result.unwrap_or_else(|| {
            let last = window.last().map_or(price, Candle::close);
            (false, (last / price - 1.0) * d, horizon)
        });
        out.push(Outcome {
            ts: o.generated_at(),
            direction: dir,
            score: o.score(),
            confidence: o.confidence(),
            hit,
            ret,
            bars: u32::try_from(bars_to_exit).unwrap_or(u32::MAX),
        });
    }
    out.sort_by_key(|a| a.ts);
    Ok(out)
}

/// One row of a reliability table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reliability {
    /// Lowest stated confidence of the row.
    pub from: f64,
    /// Stated confidence below this.
    pub to: f64,
    /// Opportunities.
    pub n: usize,
    /// Mean stated confidence.
    pub stated: f64,
    /// Observed hit rate.
    pub observed: f64,
    /// Mean directional return to the exit.
    pub mean_return: f64,
}

/// Stated confidence (by `confidence_of`) against the observed hit rate, in tenths.
pub fn reliability(
    outcomes: &[Outcome],
    confidence_of: impl Fn(&Outcome) -> f64,
) -> Vec<Reliability> {
    (0..10)
        .filter_map(|i| {
            let (from, to) = (f64::from(i) / 10.0, f64::from(i + 1) / 10.0);
            let rows: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| {
                    let c = confidence_of(o);
                    c >= from && (c < to || (i == 9 && c <= 1.0))
                })
                .collect();
            let n = rows.len();
            (n > 0).then(|| Reliability {
                from,
                to,
                n,
                stated: rows.iter().map(|o| confidence_of(o)).sum::<f64>() / n as f64,
                observed: rows.iter().filter(|o| o.hit).count() as f64 / n as f64,
                mean_return: rows.iter().map(|o| o.ret).sum::<f64>() / n as f64,
            })
        })
        .collect()
}

/// Calibration buckets per direction and |score| band of `width`, starting at `from`;
/// bands with fewer than `min_samples` outcomes are merged into the band below.
pub fn buckets(
    outcomes: &[Outcome],
    from: f64,
    width: f64,
    min_samples: usize,
) -> Vec<CalibrationBucket> {
    let mut out = Vec::new();
    for dir in [1i8, -1] {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.direction == dir).collect();
        let mut edges = vec![from];
        let mut e = from + width;
        while e < 1.0 - 1e-9 {
            edges.push(e);
            e += width;
        }
        edges.push(1.0 + 1e-9);
        let make = |lo: f64, hi: f64| {
            let band: Vec<&&Outcome> = mine
                .iter()
                .filter(|o| o.score.abs() >= lo && o.score.abs() < hi)
                .collect();
            let n = band.len();
            let hits = band.iter().filter(|o| o.hit).count();
            CalibrationBucket {
                direction: dir,
                min_score: lo,
                max_score: hi,
                hit_rate: (hits as f64 + 1.0) / (n as f64 + 2.0),
                expected_return: if n > 0 {
                    band.iter().map(|o| o.ret).sum::<f64>() / n as f64
                } else {
                    0.0
                },
                horizon_bars: if n > 0 {
                    ((band.iter().map(|o| f64::from(o.bars)).sum::<f64>() / n as f64).round()
                        as u32)
                        .max(1)
                } else {
                    1
                },
                samples: n as u64,
            }
        };
        let mut lo = 0;
        let mut made: Vec<CalibrationBucket> = Vec::new();
        for hi in 1..edges.len() {
            let b = make(edges[lo], edges[hi]);
            let last = hi + 1 == edges.len();
            if (b.samples as usize) < min_samples {
                if !last {
                    continue; // widen this band
                }
                // The top band is thin: fold it into the previous bucket, if any.
                if let Some(prev) = made.pop() {
                    made.push(make(prev.min_score, edges[hi]));
                }
                break;
            }
            made.push(b);
            lo = hi;
        }
        out.extend(made);
    }
    out
}

/// The hit rate the buckets assign to an outcome's call (`None` without a bucket).
pub fn calibrated(buckets: &[CalibrationBucket], o: &Outcome) -> Option<f64> {
    let a = o.score.abs();
    buckets
        .iter()
        .find(|b| b.direction == o.direction && a >= b.min_score && a < b.max_score)
        .map(|b| b.hit_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(direction: i8, score: f64, hit: bool, ret: f64) -> Outcome {
        Outcome {
            ts: 0,
            direction,
            score,
            confidence: score.abs(),
            hit,
            ret,
            bars: 4,
        }
    }

    #[test]
    fn buckets_smooth_merge_thin_bands_and_reliability_counts() {
        let mut v = Vec::new();
        for i in 0..40 {
            v.push(o(
                1,
                0.65,
                i % 4 == 0,
                if i % 4 == 0 { 0.03 } else { -0.01 },
            ));
        }
        for i in 0..3 {
            v.push(o(1, 0.95, i == 0, 0.0));
        }
        let b = buckets(&v, 0.6, 0.1, 10);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(
            (b[0].hit_rate - 12.0 / 45.0).abs() < 1e-12,
            "(11 hits + 1) / (43 + 2)"
        );
        assert_eq!(b[0].samples, 43);
        assert!(b[0].max_score > 1.0);
        assert_eq!(calibrated(&b, &o(1, 0.99, true, 0.0)), Some(b[0].hit_rate));
        assert_eq!(calibrated(&b, &o(-1, 0.7, true, 0.0)), None);
        let r = reliability(&v, |x| x.confidence);
        assert_eq!(r.iter().map(|x| x.n).sum::<usize>(), 43);
        assert_eq!(r[0].from, 0.6);
        assert!((r[0].observed - 0.25).abs() < 1e-12);
    }
}
