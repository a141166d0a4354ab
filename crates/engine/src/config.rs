//! The engine's configuration: which bars to build, indicator periods, factor weights and
//! decision thresholds. Every field has a default; `validate` reports every problem at once.

use atalaya_model::Timeframe;
pub use atalaya_ta::anomaly::AnomalyConfig;
use atalaya_ta::set::{Spec, parse_set};
use serde::{Deserialize, Serialize};

use crate::rules::{
    ANOMALY_FIELDS, BAR_FIELDS, DECISION_FIELDS, FIRST_INDICATOR, Resolver, Rule, RuleConfig,
};

/// Everything the [`Pipeline`](crate::Pipeline) needs to know.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Bar timeframes to aggregate and analyse.
    pub timeframes: Vec<Timeframe>,
    /// Timeframes on which the decision runs; empty means every timeframe in `timeframes`.
    pub decision_timeframes: Vec<Timeframe>,
    /// Indicator periods.
    pub indicators: IndicatorConfig,
    /// Factor weights and thresholds.
    pub decision: DecisionConfig,
    /// Streaming anomaly detection on each closed bar, emitted as `anomaly.*` signals.
    pub anomaly: AnomalyConfig,
    /// Trading rules evaluated on every closed bar of the decision timeframes; a hit is a
    /// `rule.<name>` signal.
    pub rules: Vec<RuleConfig>,
    /// The sentiment factor: how headlines are scored and aggregated per asset.
    pub sentiment: SentimentConfig,
}

/// The sentiment factor's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentimentConfig {
    /// Directory with VADER's `vader_lexicon.txt`; without it the crypto-slang lexicon alone
    /// scores text.
    pub lexicon_dir: Option<std::path::PathBuf>,
    /// Directory with FinVADER's `sentibignomics.tsv` and `henry_2008.tsv`.
    pub finance_lexicon_dir: Option<std::path::PathBuf>,
    /// A transformer model directory (a sequence classifier such as FinBERT, a directory
    /// written by `atalaya sentiment train`, or all-MiniLM-L6-v2 as downloaded, which gets the
    /// shipped head); without it the lexicon and the keyword signal score text.
    pub model_dir: Option<std::path::PathBuf>,
    /// Ensemble weight of the lexicon model's score.
    pub lexicon_weight: f64,
    /// Ensemble weight of the transformer's score (when `model_dir` is set).
    pub transformer_weight: f64,
    /// Ensemble weight of the crypto-keyword signal.
    pub keyword_weight: f64,
    /// A text is labelled neutral when the ensemble's score lies within ± this (labels only:
    /// the sentiment factor uses the score itself).
    pub neutral_band: f64,
    /// Age at which an item counts half, in hours.
    pub half_life_hours: f64,
    /// The factor is absent when the newest item about the asset is older than this, in hours.
    pub max_age_hours: f64,
    /// Weight of a headline against a social post (the original plan: 0.6 and 0.4).
    pub news_weight: f64,
    /// Weight of a social post (before engagement).
    pub social_weight: f64,
    /// A `sentiment.buzz` signal when an asset's mentions over the last half-life run at this
    /// many times their rate over four half-lives (at most 4; 2 = twice the day's average).
    pub buzz_ratio: f64,
    /// …and at least this many (decayed) mentions.
    pub buzz_min_items: f64,
}

impl Default for SentimentConfig {
    fn default() -> Self {
        Self {
            lexicon_dir: None,
            finance_lexicon_dir: None,
            model_dir: None,
            lexicon_weight: 0.3,
            transformer_weight: 0.5,
            keyword_weight: 0.2,
            neutral_band: atalaya_ml::ensemble::DEFAULT_NEUTRAL_BAND,
            half_life_hours: 6.0,
            max_age_hours: 24.0,
            news_weight: 0.6,
            social_weight: 0.4,
            buzz_ratio: 2.0,
            buzz_min_items: 5.0,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            timeframes: vec![Timeframe::M1, Timeframe::M5, Timeframe::M15, Timeframe::H1],
            decision_timeframes: Vec::new(),
            indicators: IndicatorConfig::default(),
            decision: DecisionConfig::default(),
            anomaly: AnomalyConfig::default(),
            rules: Vec::new(),
            sentiment: SentimentConfig::default(),
        }
    }
}

/// Indicator periods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndicatorConfig {
    /// Fast EMA period (trend).
    pub ema_fast: usize,
    /// Slow EMA period (trend).
    pub ema_slow: usize,
    /// RSI period (Wilder).
    pub rsi: usize,
    /// ATR period (Wilder).
    pub atr: usize,
    /// Bollinger period.
    pub bollinger: usize,
    /// Bollinger width in standard deviations.
    pub bollinger_k: f64,
    /// Bars over which momentum (rate of change) is measured.
    pub momentum: usize,
    /// Bars over which average volume and average ATR are measured.
    pub baseline: usize,
    /// More indicators to keep on every series, as `name[:param…]` (`adx:14`, `cdlengulfing`,
    /// `supertrend:10:3`); their latest values are readable by name.
    pub extra: Vec<String>,
}

impl Default for IndicatorConfig {
    fn default() -> Self {
        Self {
            ema_fast: 12,
            ema_slow: 26,
            rsi: 14,
            atr: 14,
            bollinger: 20,
            bollinger_k: 2.0,
            momentum: 10,
            baseline: 20,
            extra: Vec::new(),
        }
    }
}

/// Factor weights, thresholds and the trade-plan multiples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionConfig {
    /// Score bars and emit opportunities. Off, the built-in indicators are not computed
    /// (a rules-only strategy runs faster) and the decision fields read NaN in rules.
    pub enabled: bool,
    /// Relative weight of each factor; renormalised over the factors that have input.
    pub weights: Weights,
    /// Score at or above which the type is STRONG_BUY.
    pub strong_buy: f64,
    /// Score at or above which the type is BUY.
    pub buy: f64,
    /// Score at or below which the type is SELL.
    pub sell: f64,
    /// Score at or below which the type is STRONG_SELL.
    pub strong_sell: f64,
    /// Opportunities below this confidence are not emitted.
    pub min_confidence: f64,
    /// Protective stop distance, in ATRs.
    pub stop_atr: f64,
    /// Target distance, in ATRs.
    pub target_atr: f64,
    /// Horizon of the opportunity, in bars of its timeframe.
    pub horizon_bars: u32,
    /// Measured outcomes per score bucket (`atalaya calibrate` writes them): when a bucket
    /// matches, the confidence is its observed hit rate, and the expected return and horizon
    /// are its measured mean return and mean time to the outcome.
    pub calibration: Vec<CalibrationBucket>,
}

/// What history says about opportunities of one direction whose |score| lies in
/// `[min_score, max_score)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationBucket {
    /// +1 for buys, −1 for sells.
    pub direction: i8,
    /// Lowest |score| of the bucket.
    pub min_score: f64,
    /// |score| below this.
    pub max_score: f64,
    /// Share of opportunities whose target was reached before the stop (smoothed).
    pub hit_rate: f64,
    /// Mean return in the opportunity's direction at its exit (target, stop or horizon).
    pub expected_return: f64,
    /// Mean bars to that exit.
    pub horizon_bars: u32,
    /// Opportunities measured.
    pub samples: u64,
}

impl DecisionConfig {
    /// The calibration bucket for a decision, when one matches.
    pub fn bucket(&self, direction: i8, score: f64) -> Option<&CalibrationBucket> {
        let a = score.abs();
        self.calibration
            .iter()
            .find(|b| b.direction == direction && a >= b.min_score && a < b.max_score)
    }
}

impl Default for DecisionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weights: Weights::default(),
            strong_buy: 0.80,
            buy: 0.60,
            sell: -0.60,
            strong_sell: -0.80,
            min_confidence: 0.50,
            stop_atr: 1.5,
            target_atr: 3.0,
            horizon_bars: 12,
            calibration: Vec::new(),
        }
    }
}

/// Factor weights. Factors without input yet (fundamental, sentiment, ML until their
/// issues land) are reported absent and their weight goes to the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Trend and band position: EMA spread, Bollinger %B, RSI.
    pub technical: f64,
    /// Rate of change scaled by volatility.
    pub momentum: f64,
    /// Relative volume in the direction of the bar.
    pub volume: f64,
    /// Volatility expansion in the direction of the trend.
    pub volatility: f64,
    /// Market statistics (needs `MarketStats` events).
    pub fundamental: f64,
    /// News and social sentiment (the per-asset index of scored headlines and posts).
    pub sentiment: f64,
    /// ML price prediction (needs the ML predictor).
    pub ml: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            technical: 0.30,
            momentum: 0.20,
            volume: 0.10,
            volatility: 0.10,
            fundamental: 0.10,
            sentiment: 0.15,
            ml: 0.05,
        }
    }
}

impl Weights {
    /// `(name, weight)` for every factor, in report order.
    pub fn named(&self) -> [(&'static str, f64); 7] {
        [
            ("technical", self.technical),
            ("momentum", self.momentum),
            ("volume", self.volume),
            ("volatility", self.volatility),
            ("fundamental", self.fundamental),
            ("sentiment", self.sentiment),
            ("ml", self.ml),
        ]
    }
}

/// One configuration problem: the dotted path of the field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted field path, relative to the engine section (`decision.buy`).
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl EngineConfig {
    /// The timeframes the decision runs on.
    pub fn decision_timeframes(&self) -> &[Timeframe] {
        if self.decision_timeframes.is_empty() {
            &self.timeframes
        } else {
            &self.decision_timeframes
        }
    }

    /// Every problem with this configuration; empty when it is usable.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut bad = |path: &str, message: String| {
            out.push(ConfigIssue {
                path: path.to_owned(),
                message,
            });
        };
        if self.timeframes.is_empty() {
            bad("timeframes", "at least one timeframe is required".into());
        }
        let st = &self.sentiment;
        for (path, v) in [
            ("sentiment.half_life_hours", st.half_life_hours),
            ("sentiment.max_age_hours", st.max_age_hours),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bad(path, format!("must be a positive number of hours, got {v}"));
            }
        }
        if !(st.buzz_ratio > 1.0 && st.buzz_ratio <= 4.0) {
            bad(
                "sentiment.buzz_ratio",
                format!(
                    "must lie in (1, 4] (the last half-life's rate over four half-lives'), got {}",
                    st.buzz_ratio
                ),
            );
        }
        for (path, v) in [
            ("sentiment.news_weight", st.news_weight),
            ("sentiment.social_weight", st.social_weight),
            ("sentiment.buzz_min_items", st.buzz_min_items),
            ("sentiment.lexicon_weight", st.lexicon_weight),
            ("sentiment.transformer_weight", st.transformer_weight),
            ("sentiment.keyword_weight", st.keyword_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bad(path, format!("must be zero or positive, got {v}"));
            }
        }
        if !(st.neutral_band >= 0.0 && st.neutral_band < 1.0) {
            bad(
                "sentiment.neutral_band",
                format!("must lie in [0, 1), got {}", st.neutral_band),
            );
        }
        if st.lexicon_weight + st.transformer_weight + st.keyword_weight <= 0.0 {
            bad(
                "sentiment.lexicon_weight",
                "the ensemble weights (lexicon, transformer, keyword) must not all be zero".into(),
            );
        }
        let mut seen = self.timeframes.clone();
        seen.sort();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            bad("timeframes", "a timeframe is listed twice".into());
        }
        for tf in &self.decision_timeframes {
            if !self.timeframes.contains(tf) {
                bad(
                    "decision_timeframes",
                    format!("{tf} is not in `timeframes`"),
                );
            }
        }
        let i = &self.indicators;
        for (name, v) in [
            ("indicators.ema_fast", i.ema_fast),
            ("indicators.ema_slow", i.ema_slow),
            ("indicators.rsi", i.rsi),
            ("indicators.atr", i.atr),
            ("indicators.bollinger", i.bollinger),
            ("indicators.momentum", i.momentum),
            ("indicators.baseline", i.baseline),
        ] {
            if v == 0 || v > 10_000 {
                bad(name, format!("must be between 1 and 10000, got {v}"));
            }
        }
        if let Err(errors) = parse_set(&i.extra.join(",")) {
            for e in errors {
                bad("indicators.extra", e.to_string());
            }
        }
        if i.ema_fast >= i.ema_slow {
            bad(
                "indicators.ema_fast",
                format!("must be shorter than ema_slow ({})", i.ema_slow),
            );
        }
        if !(i.bollinger_k.is_finite() && i.bollinger_k > 0.0) {
            bad(
                "indicators.bollinger_k",
                format!("must be > 0, got {}", i.bollinger_k),
            );
        }
        let d = &self.decision;
        let mut total = 0.0;
        for (name, w) in d.weights.named() {
            if !(w.is_finite() && w >= 0.0) {
                bad(
                    &format!("decision.weights.{name}"),
                    format!("must be >= 0, got {w}"),
                );
            } else {
                total += w;
            }
        }
        let computed =
            d.weights.technical + d.weights.momentum + d.weights.volume + d.weights.volatility;
        if total <= 0.0 || computed <= 0.0 {
            bad(
                "decision.weights",
                "technical, momentum, volume and volatility cannot all be 0".into(),
            );
        }
        for (name, v) in [
            ("decision.strong_buy", d.strong_buy),
            ("decision.buy", d.buy),
            ("decision.sell", d.sell),
            ("decision.strong_sell", d.strong_sell),
        ] {
            if !(v.is_finite() && (-1.0..=1.0).contains(&v)) {
                bad(name, format!("must lie in [-1, 1], got {v}"));
            }
        }
        if !(d.strong_sell <= d.sell && d.sell < d.buy && d.buy <= d.strong_buy) {
            bad(
                "decision",
                format!(
                    "thresholds must satisfy strong_sell <= sell < buy <= strong_buy, got {} <= {} < {} <= {}",
                    d.strong_sell, d.sell, d.buy, d.strong_buy
                ),
            );
        }
        if !(d.min_confidence.is_finite() && (0.0..=1.0).contains(&d.min_confidence)) {
            bad(
                "decision.min_confidence",
                format!("must lie in [0, 1], got {}", d.min_confidence),
            );
        }
        for (name, v) in [
            ("decision.stop_atr", d.stop_atr),
            ("decision.target_atr", d.target_atr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bad(name, format!("must be > 0, got {v}"));
            }
        }
        if d.horizon_bars == 0 {
            bad("decision.horizon_bars", "must be at least 1".into());
        }
        for (n, b) in d.calibration.iter().enumerate() {
            let ok = (b.direction == 1 || b.direction == -1)
                && (0.0..=1.0).contains(&b.min_score)
                && b.min_score < b.max_score
                && (0.0..=1.0).contains(&b.hit_rate)
                && b.expected_return.is_finite()
                && b.horizon_bars > 0;
            if !ok {
                bad(
                    &format!("decision.calibration[{n}]"),
                    "needs direction ±1, 0 <= min_score < max_score, hit_rate in [0, 1], a finite expected_return and horizon_bars >= 1".into(),
                );
            }
        }
        let a = &self.anomaly;
        for (name, v) in [
            ("anomaly.window", a.window),
            ("anomaly.vol_short", a.vol_short),
            ("anomaly.vol_long", a.vol_long),
            ("anomaly.forest_refit", a.forest_refit),
        ] {
            if !(3..=100_000).contains(&v) {
                bad(name, format!("must be between 3 and 100000, got {v}"));
            }
        }
        if a.vol_short >= a.vol_long {
            bad(
                "anomaly.vol_short",
                format!("must be shorter than vol_long ({})", a.vol_long),
            );
        }
        for (name, v) in [
            ("anomaly.return_z", a.return_z),
            ("anomaly.volume_z", a.volume_z),
            ("anomaly.gap_atr", a.gap_atr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bad(name, format!("must be > 0, got {v}"));
            }
        }
        if !(a.vol_ratio.is_finite() && a.vol_ratio > 1.0) {
            bad(
                "anomaly.vol_ratio",
                format!("must be > 1, got {}", a.vol_ratio),
            );
        }
        if !(a.forest_score.is_finite() && a.forest_score > 0.5 && a.forest_score < 1.0) {
            bad(
                "anomaly.forest_score",
                format!("must lie in (0.5, 1), got {}", a.forest_score),
            );
        }
        let mut names: Vec<&str> = Vec::new();
        for (n, r) in self.rules.iter().enumerate() {
            let name = r.name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                bad(
                    &format!("rules[{n}].name"),
                    format!(
                        "must be a non-empty word of letters, digits, `_` or `-`, got {name:?}"
                    ),
                );
            } else if names.contains(&name) {
                bad(
                    &format!("rules[{n}].name"),
                    format!("{name:?} is used by an earlier rule"),
                );
            }
            names.push(name);
        }
        if let Err(errors) = self.compile_rules() {
            out.extend(errors);
        }
        out
    }

    /// Compiles the rules against the series layout; returns them with every indicator a
    /// series keeps (`indicators.extra` first, then those the rules name).
    pub fn compile_rules(&self) -> Result<(Vec<Rule>, Vec<Spec>), Vec<ConfigIssue>> {
        let mut slots = Slots {
            specs: parse_set(&self.indicators.extra.join(",")).unwrap_or_default(),
            columns: Vec::new(),
        };
        slots.columns = slots.specs.iter().flat_map(Spec::columns).collect();
        let mut rules = Vec::new();
        let mut issues = Vec::new();
        for (n, r) in self.rules.iter().enumerate() {
            match Rule::compile(r, &mut slots) {
                Ok(rule) => rules.push(rule),
                Err(e) => issues.push(ConfigIssue {
                    path: format!("rules[{n}].when"),
                    message: e.to_string(),
                }),
            }
        }
        if issues.is_empty() {
            Ok((rules, slots.specs))
        } else {
            Err(issues)
        }
    }
}

/// Resolves rule names to a series' value slots, adding the indicators rules name.
struct Slots {
    specs: Vec<Spec>,
    columns: Vec<String>,
}

impl Resolver for Slots {
    fn resolve(&mut self, name: &str) -> Result<u32, String> {
        let lower = name.to_ascii_lowercase();
        let fixed = BAR_FIELDS
            .iter()
            .chain(&DECISION_FIELDS)
            .chain(&ANOMALY_FIELDS)
            .position(|f| *f == lower);
        let slot = match fixed {
            Some(i) => i,
            None => match self.columns.iter().position(|c| *c == lower) {
                Some(i) => FIRST_INDICATOR + i,
                None => {
                    let spec = Spec::for_column(&lower).ok_or_else(|| {
                        format!(
                            "unknown name `{name}`: not a bar field (open, high, low, close, volume), \
                             a decision field (score, confidence, factor_technical, factor_momentum, \
                             factor_volume, factor_volatility), an anomaly (anomaly_return, \
                             anomaly_volume_spike, anomaly_gap, anomaly_volatility_regime, \
                             anomaly_multivariate) or an indicator column such as rsi_14, ema_200, \
                             macd_12_26_9_signal, bbands_20_2_upper, cdlhammer"
                        )
                    })?;
                    self.columns.extend(spec.columns());
                    self.specs.push(spec);
                    FIRST_INDICATOR
                        + self
                            .columns
                            .iter()
                            .position(|c| *c == lower)
                            .unwrap_or_default()
                }
            },
        };
        u32::try_from(slot).map_err(|_| "too many indicators".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(EngineConfig::default().validate(), vec![]);
    }

    #[test]
    fn reports_every_problem() {
        let mut c = EngineConfig::default();
        c.indicators.ema_fast = 50;
        c.decision.buy = 0.9;
        c.decision.weights.volume = -1.0;
        c.decision.min_confidence = 2.0;
        c.decision_timeframes = vec![Timeframe::D1];
        let paths: Vec<_> = c.validate().into_iter().map(|i| i.path).collect();
        for p in [
            "indicators.ema_fast",
            "decision",
            "decision.weights.volume",
            "decision.min_confidence",
            "decision_timeframes",
        ] {
            assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
        }
    }
}
