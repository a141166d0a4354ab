//! The weighted multi-factor decision: four factors computed from the bar's indicators
//! (technical, momentum, volume, volatility), three reported absent until their inputs exist
//! (fundamental, sentiment, ML), a score that is the weighted sum of the factor values, and
//! a trade plan (stop, target, expected return, horizon, risk) taken from the bar's ATR.
//!
//! The factor definitions are written out in `docs/DECISION.md`.

use atalaya_model::{
    FactorContribution, InstrumentId, MarketStats, OpportunityKind, OpportunityRaw, Timeframe,
    UnixNanos,
};

use crate::config::DecisionConfig;
use atalaya_ml::index::{Reading, Trend};
use atalaya_ta::volatility::Bands;

/// What the indicators say about one closed bar, once every indicator is ready.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    /// The bar's open.
    pub open: f64,
    /// The bar's high.
    pub high: f64,
    /// The bar's low.
    pub low: f64,
    /// The bar's close.
    pub close: f64,
    /// Fast EMA of closes.
    pub ema_fast: f64,
    /// Slow EMA of closes.
    pub ema_slow: f64,
    /// Wilder RSI.
    pub rsi: f64,
    /// Whether the RSI window was flat (no gains and no losses).
    pub rsi_flat: bool,
    /// Average true range.
    pub atr: f64,
    /// Bollinger Bands.
    pub bands: Bands,
    /// Close now over close `momentum` bars ago, minus one.
    pub roc: f64,
    /// This bar's volume over the baseline average volume.
    pub volume_ratio: f64,
    /// ATR over its baseline average.
    pub atr_ratio: f64,
}

/// The outcome of scoring one bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The type for this score.
    pub kind: OpportunityKind,
    /// The weighted score in `[-1, 1]`.
    pub score: f64,
    /// Confidence in `[0, 1]`.
    pub confidence: f64,
    /// Normalised weights of the four computed factors.
    pub weights: [f64; 4],
    factors: Factors,
    /// The fundamental factor, when market statistics are known: value, normalised weight
    /// and the statistics it was computed from.
    fundamental: Option<(f64, f64, MarketStats)>,
    /// The sentiment factor, when the asset's index has a recent item: value, normalised
    /// weight and the reading.
    sentiment: Option<(f64, f64, Reading)>,
}

/// The fundamental factor from market statistics: the 7-day and 24-hour changes, each
/// squashed by `tanh` around a typical move (10% a week, 5% a day), weighted 0.6 and 0.4.
pub fn fundamental_value(m: &MarketStats) -> f64 {
    clamp1(0.6 * tanh(m.change_7d_pct() / 10.0) + 0.4 * tanh(m.change_24h_pct() / 5.0))
}

impl Decision {
    /// Values of technical, momentum, volume and volatility, in `[-1, 1]`.
    pub fn values(&self) -> [f64; 4] {
        self.factors.values
    }
}

/// Periods shown in the factor explanations.
#[derive(Clone, Copy, Debug)]
pub struct Periods {
    /// Fast EMA period.
    pub ema_fast: usize,
    /// Slow EMA period.
    pub ema_slow: usize,
    /// RSI period.
    pub rsi: usize,
    /// Momentum look-back.
    pub momentum: usize,
}

/// `tanh` through one `exp`: within a few ulps of libm's `tanh`, and cheaper on the hot path.
fn tanh(x: f64) -> f64 {
    let e = (-2.0 * x.abs()).exp();
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

fn clamp1(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) }
}

/// The four computed factor values, in `[-1, 1]`, and the numbers their explanations quote.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Factors {
    values: [f64; 4],
    spread_atr: f64,
    pct_b: f64,
    z: f64,
    body: f64,
    trend: f64,
}

fn factors(s: &Snapshot, p: Periods) -> Factors {
    let atr = s.atr.max(f64::MIN_POSITIVE);
    // Technical: EMA spread in ATRs, position within the Bollinger half-width, RSI around 50.
    let spread_atr = (s.ema_fast - s.ema_slow) / atr;
    let trend = tanh(spread_atr);
    let half = s.bands.upper - s.bands.middle;
    let pct_b = if half > 0.0 {
        clamp1((s.close - s.bands.middle) / half)
    } else {
        0.0
    };
    let rsi_s = if s.rsi_flat {
        0.0
    } else {
        clamp1((s.rsi - 50.0) / 25.0)
    };
    let technical = clamp1((trend + pct_b + rsi_s) / 3.0);
    // Momentum: the look-back return in units of the volatility expected over it.
    let expected_move = (atr / s.close) * (p.momentum as f64).sqrt();
    let z = s.roc / expected_move;
    let momentum = clamp1(tanh(z));
    // Volume: bar direction (body over range) weighted by relative volume.
    let range = s.high - s.low;
    let body = if range > 0.0 {
        (s.close - s.open) / range
    } else {
        0.0
    };
    let volume = clamp1(body * (s.volume_ratio / 2.0).min(1.0));
    // Volatility: expansion of ATR over its baseline confirms the trend; contraction is neutral.
    let expansion = (s.atr_ratio - 1.0).clamp(0.0, 1.0);
    let volatility = clamp1(trend * expansion);
    Factors {
        values: [technical, momentum, volume, volatility],
        spread_atr,
        pct_b,
        z,
        body,
        trend,
    }
}

/// The explanations, written only for bars that become opportunities.
fn details(f: &Factors, s: &Snapshot, p: Periods) -> [String; 4] {
    [
        format!(
            "EMA{} {:.6} vs EMA{} {:.6} ({:+.2} ATR); close {:+.2} of the Bollinger half-width; RSI{} {:.1}",
            p.ema_fast, s.ema_fast, p.ema_slow, s.ema_slow, f.spread_atr, f.pct_b, p.rsi, s.rsi
        ),
        format!(
            "{}-bar return {:+.3}% = {:+.2}x the ATR-implied move",
            p.momentum,
            s.roc * 100.0,
            f.z
        ),
        format!(
            "volume {:.2}x its average on a bar whose body is {:+.2} of its range",
            s.volume_ratio, f.body
        ),
        format!(
            "ATR {:.6} is {:.2}x its average ({} trend)",
            s.atr,
            s.atr_ratio,
            if f.trend >= 0.0 { "up" } else { "down" }
        ),
    ]
}

/// Scores one bar. Allocation-free: the explanation is written by [`explain`] only when
/// the bar becomes an opportunity.
pub fn decide(
    s: &Snapshot,
    p: Periods,
    cfg: &DecisionConfig,
    stats: Option<&MarketStats>,
    mood: Option<&Reading>,
) -> Decision {
    let f = factors(s, p);
    let named = cfg.weights.named();
    let fundamental_w = if stats.is_some() { named[4].1 } else { 0.0 };
    let sentiment_w = if mood.is_some() { named[5].1 } else { 0.0 };
    let available_total: f64 =
        named[..4].iter().map(|(_, w)| w).sum::<f64>() + fundamental_w + sentiment_w;
    let norm = |w: f64| {
        if available_total > 0.0 {
            w / available_total
        } else {
            0.0
        }
    };
    let mut weights = [0.0; 4];
    let mut score = 0.0;
    for i in 0..4 {
        weights[i] = norm(named[i].1);
        score += f.values[i] * weights[i];
    }
    let fundamental = stats.map(|m| (fundamental_value(m), norm(fundamental_w), *m));
    if let Some((v, w, _)) = fundamental {
        score += v * w;
    }
    let sentiment = mood.map(|r| (clamp1(r.value), norm(sentiment_w), r.clone()));
    if let Some((v, w, _)) = &sentiment {
        score += v * w;
    }
    let score = score.clamp(-1.0, 1.0);
    let agree: f64 = (0..4)
        .map(|i| (f.values[i], weights[i]))
        .chain(fundamental.map(|(v, w, _)| (v, w)))
        .chain(sentiment.as_ref().map(|(v, w, _)| (*v, *w)))
        .filter(|&(v, _)| v != 0.0 && v.signum() == score.signum())
        .map(|(_, w)| w)
        .sum();
    let confidence = (agree * (0.5 + 0.5 * score.abs())).clamp(0.0, 1.0);
    let kind = if score >= cfg.strong_buy {
        OpportunityKind::StrongBuy
    } else if score >= cfg.buy {
        OpportunityKind::Buy
    } else if score <= cfg.strong_sell {
        OpportunityKind::StrongSell
    } else if score <= cfg.sell {
        OpportunityKind::Sell
    } else {
        OpportunityKind::Hold
    };
    // Measured hit rates replace the agreement-based confidence where history exists.
    let confidence = cfg
        .bucket(kind.direction(), score)
        .map_or(confidence, |b| b.hit_rate);
    Decision {
        kind,
        score,
        confidence,
        weights,
        factors: f,
        fundamental,
        sentiment,
    }
}

/// Every factor with its value, weight, contribution and explanation, in report order;
/// factors without input are listed as absent with weight 0.
pub fn explain(
    d: &Decision,
    s: &Snapshot,
    p: Periods,
    cfg: &DecisionConfig,
) -> Vec<FactorContribution> {
    contributions(d, s, p, cfg, true)
}

/// The factors' contributions; their `detail` sentences only when `sentences` is set (a
/// backtest reads the values, never the words, and formatting them is a tenth of its time).
fn contributions(
    d: &Decision,
    s: &Snapshot,
    p: Periods,
    cfg: &DecisionConfig,
    sentences: bool,
) -> Vec<FactorContribution> {
    let mut texts = if sentences {
        details(&d.factors, s, p)
    } else {
        Default::default()
    }
    .into_iter();
    cfg.weights
        .named()
        .into_iter()
        .enumerate()
        .map(
            |(i, (name, w))| match (d.factors.values.get(i), texts.next()) {
                (Some(&value), Some(detail)) => FactorContribution {
                    name: name.to_owned(),
                    available: true,
                    value,
                    weight: d.weights[i],
                    contribution: value * d.weights[i],
                    detail,
                },
                _ if let ("fundamental", Some((value, weight, m))) = (name, d.fundamental) => {
                    FactorContribution {
                        name: name.to_owned(),
                        available: true,
                        value,
                        weight,
                        contribution: value * weight,
                        detail: sentence(sentences, || {
                            format!(
                                "{} 7d {:+.1}%, 24h {:+.1}%; market cap ${:.3e}, 7-day average volume ${:.3e}",
                                m.asset(),
                                m.change_7d_pct(),
                                m.change_24h_pct(),
                                m.market_cap_usd(),
                                m.avg_volume_7d_usd()
                            )
                        }),
                    }
                }
                _ if let ("sentiment", Some((value, weight, r))) = (name, &d.sentiment) => {
                    let trend = match r.trend {
                        Trend::Improving => "improving",
                        Trend::Declining => "declining",
                        Trend::Stable => "stable",
                    };
                    let detail = sentence(sentences, || {
                        let movers = r
                            .movers
                            .iter()
                            .map(|(t, sc, _)| format!("\"{t}\" ({sc:+.2})"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!(
                            "index {:+.2}, {trend}, from {} item{} (buzz {:.1}); moved most by {movers}",
                            r.value,
                            r.items,
                            if r.items == 1 { "" } else { "s" },
                            r.buzz
                        )
                    });
                    FactorContribution {
                        name: name.to_owned(),
                        available: true,
                        value: *value,
                        weight: *weight,
                        contribution: value * weight,
                        detail,
                    }
                }
                _ => FactorContribution {
                    name: name.to_owned(),
                    available: false,
                    value: 0.0,
                    weight: 0.0,
                    contribution: 0.0,
                    detail: sentence(sentences, || {
                        format!("absent: no {name} input yet; its weight {w} was redistributed")
                    }),
                },
            },
        )
        .collect()
}

/// `write()` when `on`, else an empty (unallocated) string.
fn sentence(on: bool, write: impl FnOnce() -> String) -> String {
    if on { write() } else { String::new() }
}

/// Which bar an opportunity is about, and the id it gets.
#[derive(Clone, Copy, Debug)]
pub struct BarKey {
    /// The opportunity's id.
    pub id: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The bar's timeframe.
    pub timeframe: Timeframe,
    /// The bar's close time (the opportunity's generation time).
    pub close_time: UnixNanos,
}

/// Turns a non-HOLD decision into the fields of an opportunity, with its trade plan:
/// stop and target at `stop_atr` and `target_atr` ATRs from the close; expected return and
/// horizon from the matching calibration bucket (measured mean return and bars to exit), or
/// without one `p × target − (1 − p) × stop` with the confidence as `p` and `horizon_bars`
/// bars; risk as the ATR-implied daily volatility over 10%.
///
/// With `sentences` off the factors keep their values, weights and contributions but not
/// their `detail` sentences (see [`Pipeline::set_explanations`](crate::Pipeline::set_explanations)).
pub fn plan(
    d: &Decision,
    s: &Snapshot,
    bar: BarKey,
    p: Periods,
    cfg: &DecisionConfig,
    sentences: bool,
) -> Option<OpportunityRaw> {
    let tf = bar.timeframe;
    let dir = f64::from(d.kind.direction());
    if dir == 0.0 {
        return None;
    }
    let stop_dist = cfg.stop_atr * s.atr;
    let target_dist = cfg.target_atr * s.atr;
    let stop = s.close - dir * stop_dist;
    let target = s.close + dir * target_dist;
    let bucket = cfg.bucket(d.kind.direction(), d.score);
    let expected_return = match bucket {
        Some(b) => dir * b.expected_return,
        None => {
            let hit = d.confidence;
            dir * (hit * target_dist - (1.0 - hit) * stop_dist) / s.close
        }
    };
    let horizon_bars = bucket.map_or(cfg.horizon_bars, |b| b.horizon_bars);
    let bars_per_day = 86_400_000_000_000.0 / tf.nanos() as f64;
    let daily_vol = (s.atr / s.close) * bars_per_day.sqrt();
    let risk_level = (daily_vol / 0.10).clamp(0.0, 1.0);
    let raw = OpportunityRaw {
        id: bar.id,
        instrument: bar.instrument,
        timeframe: tf,
        kind: d.kind,
        score: d.score,
        confidence: d.confidence,
        expected_return,
        risk_level,
        horizon_ns: tf.nanos().saturating_mul(i64::from(horizon_bars)),
        price: s.close,
        stop_loss: (stop > 0.0).then_some(stop),
        take_profit: (target > 0.0).then_some(target),
        generated_at: bar.close_time,
        factors: contributions(d, s, p, cfg, sentences),
    };
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(trend_up: bool) -> Snapshot {
        let sgn = if trend_up { 1.0 } else { -1.0 };
        Snapshot {
            open: 100.0 - sgn,
            high: 101.5,
            low: 98.5,
            close: 100.0 + sgn,
            ema_fast: 100.0 + sgn * 2.0,
            ema_slow: 100.0,
            rsi: 50.0 + sgn * 20.0,
            rsi_flat: false,
            atr: 1.0,
            bands: Bands {
                lower: 98.0,
                middle: 100.0,
                upper: 102.0,
            },
            roc: sgn * 0.05,
            volume_ratio: 2.5,
            atr_ratio: 1.6,
        }
    }

    fn key() -> BarKey {
        BarKey {
            id: 1,
            instrument: "sim:BTC/USDT".parse().unwrap(),
            timeframe: Timeframe::H1,
            close_time: 3_600_000_000_000,
        }
    }

    fn periods() -> Periods {
        Periods {
            ema_fast: 12,
            ema_slow: 26,
            rsi: 14,
            momentum: 10,
        }
    }

    #[test]
    fn tanh_matches_libm() {
        for i in -4000..=4000 {
            let x = f64::from(i) / 200.0;
            assert!((tanh(x) - x.tanh()).abs() < 1e-15, "{x}");
        }
        assert_eq!(tanh(1e300), 1.0);
        assert_eq!(tanh(-1e300), -1.0);
    }

    #[test]
    fn strong_uptrend_is_a_buy_whose_contributions_add_up() {
        let cfg = DecisionConfig::default();
        let d = decide(&snap(true), periods(), &cfg, None, None);
        assert!(d.score >= cfg.buy, "{d:?}");
        let factors = explain(&d, &snap(true), periods(), &cfg);
        let sum: f64 = factors.iter().map(|f| f.contribution).sum();
        assert!((sum - d.score).abs() < 1e-12);
        assert_eq!(factors.len(), 7);
        assert_eq!(factors.iter().filter(|f| !f.available).count(), 3);
        let wsum: f64 = factors.iter().map(|f| f.weight).sum();
        assert!((wsum - 1.0).abs() < 1e-12);
        let raw = plan(&d, &snap(true), key(), periods(), &cfg, true).unwrap();
        assert_eq!(raw.kind.direction(), 1);
        assert!(raw.stop_loss.unwrap() < 101.0 && raw.take_profit.unwrap() > 101.0);
        assert!(raw.expected_return > 0.0);
    }

    #[test]
    fn mirror_image_is_a_sell() {
        let cfg = DecisionConfig::default();
        let up = decide(&snap(true), periods(), &cfg, None, None);
        let down = decide(&snap(false), periods(), &cfg, None, None);
        // Not an exact mirror: momentum is scaled by ATR over the (different) close.
        assert!(
            up.score >= cfg.buy && down.score <= cfg.sell,
            "{} {}",
            up.score,
            down.score
        );
        assert_eq!(down.kind.direction(), -1);
        let raw = plan(&down, &snap(false), key(), periods(), &cfg, true).unwrap();
        assert!(raw.expected_return < 0.0);
        assert!(raw.stop_loss.unwrap() > 99.0);
    }

    #[test]
    fn a_calibration_bucket_sets_confidence_return_and_horizon() {
        let mut cfg = DecisionConfig::default();
        let raw = decide(&snap(true), periods(), &cfg, None, None);
        cfg.calibration = vec![crate::CalibrationBucket {
            direction: 1,
            min_score: 0.0,
            max_score: 1.01,
            hit_rate: 0.42,
            expected_return: 0.0125,
            horizon_bars: 7,
            samples: 300,
        }];
        let d = decide(&snap(true), periods(), &cfg, None, None);
        assert_eq!(d.score, raw.score);
        assert_eq!(d.confidence, 0.42);
        let plan = plan(&d, &snap(true), key(), periods(), &cfg, true).unwrap();
        assert_eq!(plan.expected_return, 0.0125);
        assert_eq!(plan.horizon_ns, 7 * Timeframe::H1.nanos());
        // Sells have no bucket here: uncalibrated.
        let down = decide(&snap(false), periods(), &cfg, None, None);
        assert_eq!(
            down.confidence,
            decide(
                &snap(false),
                periods(),
                &DecisionConfig::default(),
                None,
                None
            )
            .confidence
        );
    }

    #[test]
    fn market_statistics_make_the_fundamental_factor_available() {
        let cfg = DecisionConfig::default();
        let m = MarketStats::new(
            atalaya_model::Symbol::new("BTC").unwrap(),
            1.2e12,
            2.0,
            12.0,
            3.0e10,
        )
        .unwrap();
        let v = fundamental_value(&m);
        assert!((v - (0.6 * 1.2f64.tanh() + 0.4 * 0.4f64.tanh())).abs() < 1e-12);
        let with = decide(&snap(true), periods(), &cfg, Some(&m), None);
        let factors = explain(&with, &snap(true), periods(), &cfg);
        let f = factors.iter().find(|f| f.name == "fundamental").unwrap();
        assert!(f.available && f.value == v, "{f:?}");
        assert!(
            f.detail.starts_with("BTC 7d +12.0%, 24h +2.0%"),
            "{}",
            f.detail
        );
        // Weights still sum to one, and the contributions to the score.
        let wsum: f64 = factors.iter().map(|f| f.weight).sum();
        assert!((wsum - 1.0).abs() < 1e-12);
        let sum: f64 = factors.iter().map(|f| f.contribution).sum();
        assert!((sum - with.score).abs() < 1e-12);
        assert_eq!(
            factors.iter().filter(|f| !f.available).count(),
            2,
            "sentiment and ML"
        );
        // Without statistics it is absent and its weight redistributed.
        let without = decide(&snap(true), periods(), &cfg, None, None);
        let factors = explain(&without, &snap(true), periods(), &cfg);
        assert!(
            !factors
                .iter()
                .find(|f| f.name == "fundamental")
                .unwrap()
                .available
        );
    }

    #[test]
    fn sentiment_factor_from_the_index() {
        use atalaya_ml::index::{IndexConfig, Origin, SentimentIndex};
        let cfg = DecisionConfig::default();
        let mut ix = SentimentIndex::new(IndexConfig::default());
        ix.add("BTC", 0, 0.9, Origin::News, "Bitcoin ETF approved");
        ix.add("BTC", 10, 0.5, Origin::News, "Inflows continue");
        let r = ix.read("BTC", 10).unwrap();
        let with = decide(&snap(true), periods(), &cfg, None, Some(&r));
        let factors = explain(&with, &snap(true), periods(), &cfg);
        let f = factors.iter().find(|f| f.name == "sentiment").unwrap();
        assert!(f.available && (f.value - r.value).abs() < 1e-12, "{f:?}");
        assert!(
            f.detail.contains("\"Bitcoin ETF approved\" (+0.90)"),
            "{}",
            f.detail
        );
        let wsum: f64 = factors.iter().map(|f| f.weight).sum();
        assert!((wsum - 1.0).abs() < 1e-12);
        let sum: f64 = factors.iter().map(|f| f.contribution).sum();
        assert!((sum - with.score).abs() < 1e-12);
        let mut bad = SentimentIndex::new(IndexConfig::default());
        bad.add("BTC", 0, -0.9, Origin::News, "Exchange hacked");
        let r = bad.read("BTC", 10).unwrap();
        let worse = decide(&snap(true), periods(), &cfg, None, Some(&r));
        assert!(worse.score < with.score, "bad news weighs the score down");
    }
}
