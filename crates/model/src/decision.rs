use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{in_range, non_negative, positive};
use crate::{InstrumentId, ModelError, Timeframe, UnixNanos};

/// A single analyser's finding on a closed bar: a named, directional observation with the
/// reason in words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SignalRaw")]
pub struct Signal {
    instrument: InstrumentId,
    timeframe: Timeframe,
    name: String,
    direction: f64,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalRaw {
    instrument: InstrumentId,
    timeframe: Timeframe,
    name: String,
    direction: f64,
    reason: String,
}

impl TryFrom<SignalRaw> for Signal {
    type Error = ModelError;
    fn try_from(r: SignalRaw) -> Result<Self, Self::Error> {
        Signal::new(r.instrument, r.timeframe, r.name, r.direction, r.reason)
    }
}

impl Signal {
    /// A signal whose `direction` lies in `[-1, 1]` (negative is bearish).
    pub fn new(
        instrument: InstrumentId,
        timeframe: Timeframe,
        name: impl Into<String>,
        direction: f64,
        reason: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(ModelError::EmptyField {
                what: "signal",
                field: "name",
            });
        }
        in_range(
            "signal",
            "direction",
            direction,
            -1.0,
            1.0,
            "must lie in [-1, 1]",
        )?;
        Ok(Self {
            instrument,
            timeframe,
            name,
            direction,
            reason: reason.into(),
        })
    }
    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }
    /// The timeframe of the bar that produced it.
    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }
    /// The signal's name (`rsi_oversold`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Direction in `[-1, 1]`.
    pub fn direction(&self) -> f64 {
        self.direction
    }
    /// Why it fired.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// What the decision engine recommends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OpportunityKind {
    /// Score at or above the strong-buy threshold.
    StrongBuy,
    /// Score at or above the buy threshold.
    Buy,
    /// Between the sell and buy thresholds.
    Hold,
    /// Score at or below the sell threshold.
    Sell,
    /// Score at or below the strong-sell threshold.
    StrongSell,
}

impl OpportunityKind {
    /// The name as the API and alerts write it (`STRONG_BUY`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StrongBuy => "STRONG_BUY",
            Self::Buy => "BUY",
            Self::Hold => "HOLD",
            Self::Sell => "SELL",
            Self::StrongSell => "STRONG_SELL",
        }
    }
    /// +1 for buys, -1 for sells, 0 for hold.
    pub const fn direction(self) -> i8 {
        match self {
            Self::StrongBuy | Self::Buy => 1,
            Self::Hold => 0,
            Self::Sell | Self::StrongSell => -1,
        }
    }
}

impl fmt::Display for OpportunityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OpportunityKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::StrongBuy,
            Self::Buy,
            Self::Hold,
            Self::Sell,
            Self::StrongSell,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| ModelError::InvalidOpportunityKind {
            input: s.to_owned(),
        })
    }
}

/// One factor's part in a decision: its value in `[-1, 1]`, its normalised weight, and the
/// contribution `value × weight` to the score. An absent factor (no input yet) has weight 0
/// and says so in `detail`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorContribution {
    /// Factor name (`technical`, `momentum`, `volume`, `volatility`, …).
    pub name: String,
    /// Whether the factor had input; absent factors carry no weight.
    pub available: bool,
    /// The factor's value in `[-1, 1]`.
    pub value: f64,
    /// The factor's weight after renormalising over the available factors.
    pub weight: f64,
    /// `value × weight`; the contributions add up to the score.
    pub contribution: f64,
    /// The evidence in words, with the numbers behind it.
    pub detail: String,
}

/// A scored, explained recommendation for one instrument at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "OpportunityRaw")]
pub struct Opportunity {
    id: u64,
    instrument: InstrumentId,
    timeframe: Timeframe,
    kind: OpportunityKind,
    score: f64,
    confidence: f64,
    expected_return: f64,
    risk_level: f64,
    horizon_ns: i64,
    price: f64,
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    generated_at: UnixNanos,
    factors: Vec<FactorContribution>,
}

/// The fields of an [`Opportunity`], validated by [`Opportunity::new`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpportunityRaw {
    /// Sequence number assigned by the pipeline (deterministic for a given input).
    pub id: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The timeframe of the bar that was scored.
    pub timeframe: Timeframe,
    /// The recommendation.
    pub kind: OpportunityKind,
    /// Weighted score in `[-1, 1]`.
    pub score: f64,
    /// Confidence in `[0, 1]`.
    pub confidence: f64,
    /// Expected return over the horizon, as a fraction (0.03 = 3%), signed.
    pub expected_return: f64,
    /// Risk in `[0, 1]`.
    pub risk_level: f64,
    /// Horizon in nanoseconds (> 0).
    pub horizon_ns: i64,
    /// Reference price (the bar's close).
    pub price: f64,
    /// Suggested protective stop.
    #[serde(default)]
    pub stop_loss: Option<f64>,
    /// Suggested target.
    #[serde(default)]
    pub take_profit: Option<f64>,
    /// Event time at which it was generated (the bar's close time).
    pub generated_at: UnixNanos,
    /// Every factor with value, weight and contribution.
    pub factors: Vec<FactorContribution>,
}

impl TryFrom<OpportunityRaw> for Opportunity {
    type Error = ModelError;
    fn try_from(r: OpportunityRaw) -> Result<Self, Self::Error> {
        Opportunity::new(r)
    }
}

impl Opportunity {
    /// Validates and builds an opportunity: score in `[-1, 1]`, confidence and risk in
    /// `[0, 1]`, positive horizon and price, finite expected return, at least one factor,
    /// every contribution equal to `value × weight`, and contributions that add up to the
    /// score (to 1e-9).
    pub fn new(r: OpportunityRaw) -> Result<Self, ModelError> {
        const W: &str = "opportunity";
        in_range(W, "score", r.score, -1.0, 1.0, "must lie in [-1, 1]")?;
        in_range(
            W,
            "confidence",
            r.confidence,
            0.0,
            1.0,
            "must lie in [0, 1]",
        )?;
        in_range(
            W,
            "risk_level",
            r.risk_level,
            0.0,
            1.0,
            "must lie in [0, 1]",
        )?;
        in_range(
            W,
            "expected_return",
            r.expected_return,
            -1.0,
            100.0,
            "must be finite and >= -100%",
        )?;
        positive(W, "price", r.price)?;
        if r.horizon_ns <= 0 {
            return Err(ModelError::InvalidValue {
                what: W,
                field: "horizon_ns",
                value: r.horizon_ns as f64,
                reason: "must be > 0",
            });
        }
        for (field, v) in [("stop_loss", r.stop_loss), ("take_profit", r.take_profit)] {
            if let Some(v) = v {
                positive(W, field, v)?;
            }
        }
        if r.factors.is_empty() {
            return Err(ModelError::EmptyField {
                what: W,
                field: "factors",
            });
        }
        let mut sum = 0.0;
        for f in &r.factors {
            in_range(W, "factor value", f.value, -1.0, 1.0, "must lie in [-1, 1]")?;
            non_negative(W, "factor weight", f.weight)?;
            if (f.value * f.weight - f.contribution).abs() > 1e-12 {
                return Err(ModelError::InvalidValue {
                    what: W,
                    field: "factor contribution",
                    value: f.contribution,
                    reason: "must equal value x weight",
                });
            }
            sum += f.contribution;
        }
        if (sum - r.score).abs() > 1e-9 {
            return Err(ModelError::ScoreMismatch {
                sum,
                score: r.score,
            });
        }
        Ok(Self {
            id: r.id,
            instrument: r.instrument,
            timeframe: r.timeframe,
            kind: r.kind,
            score: r.score,
            confidence: r.confidence,
            expected_return: r.expected_return,
            risk_level: r.risk_level,
            horizon_ns: r.horizon_ns,
            price: r.price,
            stop_loss: r.stop_loss,
            take_profit: r.take_profit,
            generated_at: r.generated_at,
            factors: r.factors,
        })
    }

    /// Sequence number assigned by the pipeline.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }
    /// The scored bar's timeframe.
    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }
    /// The recommendation.
    pub fn kind(&self) -> OpportunityKind {
        self.kind
    }
    /// Weighted score in `[-1, 1]`.
    pub fn score(&self) -> f64 {
        self.score
    }
    /// Confidence in `[0, 1]`.
    pub fn confidence(&self) -> f64 {
        self.confidence
    }
    /// Expected return over the horizon, as a signed fraction.
    pub fn expected_return(&self) -> f64 {
        self.expected_return
    }
    /// Risk in `[0, 1]`.
    pub fn risk_level(&self) -> f64 {
        self.risk_level
    }
    /// Horizon in nanoseconds.
    pub fn horizon_ns(&self) -> i64 {
        self.horizon_ns
    }
    /// Reference price.
    pub fn price(&self) -> f64 {
        self.price
    }
    /// Suggested protective stop.
    pub fn stop_loss(&self) -> Option<f64> {
        self.stop_loss
    }
    /// Suggested target.
    pub fn take_profit(&self) -> Option<f64> {
        self.take_profit
    }
    /// Event time of generation.
    pub fn generated_at(&self) -> UnixNanos {
        self.generated_at
    }
    /// Every factor, in configuration order.
    pub fn factors(&self) -> &[FactorContribution] {
        &self.factors
    }
}

/// How urgently an alert should reach a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertPriority {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// A message for a person, derived from an opportunity or from the system's own health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Sequence number.
    pub id: u64,
    /// The opportunity it reports, if any (system alerts have none).
    pub opportunity_id: Option<u64>,
    /// The instrument concerned, if any.
    pub instrument: Option<InstrumentId>,
    /// Priority.
    pub priority: AlertPriority,
    /// One-line title.
    pub title: String,
    /// The full text.
    pub body: String,
    /// Event time of creation.
    pub created_at: UnixNanos,
    /// Where it goes, decided when it was created: one entry per channel, pending or
    /// suppressed (with the reason). Empty for alerts not routed yet.
    #[serde(default)]
    pub deliveries: Vec<AlertDelivery>,
    /// The timeframe of the bar it is about, when there is one (for its chart).
    #[serde(default)]
    pub timeframe: Option<Timeframe>,
    /// The one-line form for SMS, when the alert reports an opportunity.
    #[serde(default)]
    pub short: Option<String>,
}

/// The state of one alert on one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its channel (budget, quiet hours, a retry) or being sent.
    Pending,
    /// Accepted by the channel.
    Delivered,
    /// Not sent on purpose (a repeat within the de-duplication window); see the reason.
    Suppressed,
    /// Given up after the maximum number of attempts or a permanent refusal.
    DeadLettered,
}

impl DeliveryState {
    /// The name as stored and shown (`dead_lettered`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Suppressed => "suppressed",
            Self::DeadLettered => "dead_lettered",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Delivered,
            Self::Suppressed,
            Self::DeadLettered,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One channel an alert is routed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDelivery {
    /// The channel (`telegram`, `email`, …).
    pub channel: String,
    /// Its state.
    pub state: DeliveryState,
    /// Why it was suppressed or dead-lettered.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Long or short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSide {
    /// Profits when the price rises.
    Long,
    /// Profits when the price falls.
    Short,
}

/// An open paper position. Money is [`Decimal`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PositionRaw")]
pub struct Position {
    instrument: InstrumentId,
    side: PositionSide,
    quantity: Decimal,
    entry_price: Decimal,
    opened_at: UnixNanos,
    stop_loss: Option<Decimal>,
    take_profit: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionRaw {
    instrument: InstrumentId,
    side: PositionSide,
    quantity: Decimal,
    entry_price: Decimal,
    opened_at: UnixNanos,
    #[serde(default)]
    stop_loss: Option<Decimal>,
    #[serde(default)]
    take_profit: Option<Decimal>,
}

impl TryFrom<PositionRaw> for Position {
    type Error = ModelError;
    fn try_from(r: PositionRaw) -> Result<Self, Self::Error> {
        Position::new(r.instrument, r.side, r.quantity, r.entry_price, r.opened_at)?
            .with_exits(r.stop_loss, r.take_profit)
    }
}

impl Position {
    /// A position with positive quantity and entry price.
    pub fn new(
        instrument: InstrumentId,
        side: PositionSide,
        quantity: Decimal,
        entry_price: Decimal,
        opened_at: UnixNanos,
    ) -> Result<Self, ModelError> {
        if quantity <= Decimal::ZERO {
            return Err(ModelError::InvalidAmount {
                field: "quantity",
                reason: "must be > 0",
            });
        }
        if entry_price <= Decimal::ZERO {
            return Err(ModelError::InvalidAmount {
                field: "entry_price",
                reason: "must be > 0",
            });
        }
        Ok(Self {
            instrument,
            side,
            quantity,
            entry_price,
            opened_at,
            stop_loss: None,
            take_profit: None,
        })
    }

    /// Sets stop-loss and take-profit; each must be positive and on the correct side of the
    /// entry (below it for a long's stop, above it for a long's target, and mirrored for a
    /// short).
    pub fn with_exits(
        mut self,
        stop_loss: Option<Decimal>,
        take_profit: Option<Decimal>,
    ) -> Result<Self, ModelError> {
        let long = self.side == PositionSide::Long;
        // A long's stop lies below the entry and its target above; a short's the reverse.
        let below = |p: Decimal| p > Decimal::ZERO && p < self.entry_price;
        let above = |p: Decimal| p > self.entry_price;
        if stop_loss.is_some_and(|sl| if long { !below(sl) } else { !above(sl) }) {
            return Err(ModelError::InvalidAmount {
                field: "stop_loss",
                reason: "must be positive and on the losing side of the entry",
            });
        }
        if take_profit.is_some_and(|tp| if long { !above(tp) } else { !below(tp) }) {
            return Err(ModelError::InvalidAmount {
                field: "take_profit",
                reason: "must be positive and on the winning side of the entry",
            });
        }
        self.stop_loss = stop_loss;
        self.take_profit = take_profit;
        Ok(self)
    }

    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }
    /// Long or short.
    pub fn side(&self) -> PositionSide {
        self.side
    }
    /// Quantity in the base asset.
    pub fn quantity(&self) -> Decimal {
        self.quantity
    }
    /// Entry price in the quote asset.
    pub fn entry_price(&self) -> Decimal {
        self.entry_price
    }
    /// Event time of entry.
    pub fn opened_at(&self) -> UnixNanos {
        self.opened_at
    }
    /// Stop-loss price.
    pub fn stop_loss(&self) -> Option<Decimal> {
        self.stop_loss
    }
    /// Take-profit price.
    pub fn take_profit(&self) -> Option<Decimal> {
        self.take_profit
    }
    /// Unrealised profit or loss at `price`, in the quote asset.
    pub fn unrealized_pnl(&self, price: Decimal) -> Decimal {
        let diff = price - self.entry_price;
        match self.side {
            PositionSide::Long => diff * self.quantity,
            PositionSide::Short => -diff * self.quantity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(score: f64, contributions: &[(f64, f64)]) -> OpportunityRaw {
        OpportunityRaw {
            id: 1,
            instrument: "sim:BTC/USDT".parse().unwrap(),
            timeframe: Timeframe::M5,
            kind: OpportunityKind::Buy,
            score,
            confidence: 0.7,
            expected_return: 0.02,
            risk_level: 0.3,
            horizon_ns: 1,
            price: 100.0,
            stop_loss: Some(95.0),
            take_profit: Some(110.0),
            generated_at: 0,
            factors: contributions
                .iter()
                .map(|&(value, weight)| FactorContribution {
                    name: "f".into(),
                    available: true,
                    value,
                    weight,
                    contribution: value * weight,
                    detail: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn opportunity_checks_that_contributions_add_up() {
        assert!(Opportunity::new(raw(0.65, &[(0.8, 0.5), (0.5, 0.5)])).is_ok());
        let e = Opportunity::new(raw(0.9, &[(0.8, 0.5), (0.5, 0.5)])).unwrap_err();
        assert!(matches!(e, ModelError::ScoreMismatch { .. }));
        assert!(Opportunity::new(raw(0.0, &[])).is_err());
        let mut r = raw(0.65, &[(0.8, 0.5), (0.5, 0.5)]);
        r.confidence = 1.5;
        assert!(Opportunity::new(r).is_err());
    }

    #[test]
    fn opportunity_deserialisation_validates() {
        let o = Opportunity::new(raw(0.65, &[(0.8, 0.5), (0.5, 0.5)])).unwrap();
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains("\"kind\":\"BUY\""));
        assert_eq!(serde_json::from_str::<Opportunity>(&json).unwrap(), o);
        let bad = json.replace("\"score\":0.65", "\"score\":0.1");
        assert!(serde_json::from_str::<Opportunity>(&bad).is_err());
    }

    #[test]
    fn position_exits_must_be_on_the_right_side() {
        let id = "sim:BTC/USDT".parse().unwrap();
        let p = Position::new(id, PositionSide::Long, Decimal::ONE, Decimal::from(100), 0).unwrap();
        assert!(
            p.clone()
                .with_exits(Some(Decimal::from(101)), None)
                .is_err()
        );
        let p = p
            .with_exits(Some(Decimal::from(95)), Some(Decimal::from(120)))
            .unwrap();
        assert_eq!(p.unrealized_pnl(Decimal::from(110)), Decimal::from(10));
        assert!(Position::new(id, PositionSide::Short, Decimal::ZERO, Decimal::ONE, 0).is_err());
    }

    #[test]
    fn kind_parses() {
        assert_eq!(
            "strong_buy".parse::<OpportunityKind>().unwrap(),
            OpportunityKind::StrongBuy
        );
        assert!("maybe".parse::<OpportunityKind>().is_err());
    }
}
