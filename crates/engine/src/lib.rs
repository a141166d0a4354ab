//! The synchronous, deterministic core of Atalaya.
//!
//! Sources push [`Envelope`](atalaya_model::Envelope)s of market data in; [`Pipeline::process`]
//! aggregates trades and candles into bars on the configured timeframes, closes bars on time,
//! updates streaming indicators (EMA, Wilder RSI, ATR, Bollinger Bands, from `atalaya-ta`,
//! exact to TA-Lib) and scores each closed
//! bar with a weighted multi-factor decision whose every factor is listed with its value,
//! weight and contribution.
//!
//! This crate does not depend on tokio and never reads the wall clock: time comes from the
//! events. Live runs, replays and backtests call the same `process`, so a replay of a recorded
//! session reproduces its decisions byte for byte.
//!
//! It depends on `atalaya-model` and `atalaya-ta`. Later issues add the technical-analysis crate's
//! indicator set, trading rules, the risk manager and the paper portfolio here.

mod config;
pub mod decision;
mod error;
mod pipeline;
pub mod portfolio;
pub mod risk;
pub mod rules;

pub use config::{
    AnomalyConfig, CalibrationBucket, ConfigIssue, DecisionConfig, EngineConfig, IndicatorConfig,
    SentimentConfig, Weights,
};
pub use error::EngineError;
pub use pipeline::{Bars, Pipeline, PipelineStats, Sink, sentiment_model};
pub use portfolio::{
    AuditEntry, ClosedTrade, EntrySource, EquityPoint, FillAt, PaperTrader, PortfolioConfig, Reason,
};
pub use risk::{RiskConfig, Sizing};
pub use rules::{Rule, RuleAction, RuleConfig, RuleError};
