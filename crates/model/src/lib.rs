//! Domain types shared by every Atalaya crate.
//!
//! `atalaya-model` sits at the bottom of the dependency graph: it knows nothing of I/O, async
//! runtimes or storage. It defines what flows through the pipeline — instruments, candles,
//! trades, tickers, text items, on-chain metrics, signals, opportunities, alerts and positions —
//! wrapped in one [`Event`] enum and carried in an [`Envelope`] that stamps each event with a
//! sequence number, its event time and the time Atalaya received it.
//!
//! Time is always `i64` nanoseconds since the Unix epoch, UTC ([`UnixNanos`]). Prices, volumes
//! and indicator values are `f64` (the analysis domain); money in a [`Position`] is
//! [`rust_decimal::Decimal`]. Every type with an invariant validates it on construction and on
//! deserialisation, so a value of these types is always well formed.
//!
//! ```
//! use atalaya_model::{InstrumentId, Timeframe};
//!
//! let id: InstrumentId = "binance:BTC/USDT".parse().unwrap();
//! assert_eq!(id.venue().as_str(), "binance");
//! assert_eq!(id.to_string(), "binance:BTC/USDT");
//! let tf: Timeframe = "1h".parse().unwrap();
//! assert_eq!(tf.open_time(3_600_000_000_000 + 5), 3_600_000_000_000);
//! ```

mod clock;
mod decision;
mod error;
mod event;
mod instrument;
mod market;
mod text;
mod time;
mod timeframe;

pub use clock::{Clock, LiveClock, NANOS_PER_MILLI, NANOS_PER_SECOND, ReplayClock, UnixNanos};
pub use decision::{
    Alert, AlertDelivery, AlertPriority, DeliveryState, FactorContribution, Opportunity,
    OpportunityKind, OpportunityRaw, Position, PositionSide, Signal,
};
pub use error::ModelError;
pub use event::{Envelope, Event, EventKind};
pub use instrument::{InstrumentId, MAX_INSTRUMENTS, RESERVED_INSTRUMENTS, Symbol};
pub use market::{Candle, DayStats, MarketStats, Side, Ticker, Trade};
pub use rust_decimal::Decimal;
pub use text::{NewsItem, OnchainMetric, SocialPlatform, SocialPost};
pub use time::{format_utc, parse_utc};
pub use timeframe::Timeframe;
