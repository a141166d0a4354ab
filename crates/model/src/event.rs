use serde::{Deserialize, Serialize};

use crate::{
    Alert, Candle, DayStats, MarketStats, NewsItem, OnchainMetric, Opportunity, Position, Signal,
    SocialPost, Symbol, Ticker, Trade, UnixNanos,
};

/// Everything that flows through Atalaya: market data in, decisions out.
///
/// Market data (trades, candles, tickers) is stored inline; rarer, larger payloads are boxed so
/// that an event stays the size of a candle on the hot path.
///
/// Sources emit the first group (`Trade` … `Heartbeat`); the pipeline emits the second
/// (closed `Candle`s, `Signal`s, `Opportunity`s, …). A `Heartbeat` carries no data: it tells
/// the pipeline that time has reached the envelope's `ts_event`, so bars close on time even
/// when no trade arrives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// An executed trade.
    Trade(Trade),
    /// A bar (from a venue, a replay file, or the pipeline's aggregation).
    Candle(Candle),
    /// Best bid and offer.
    Ticker(Ticker),
    /// A news headline.
    News(Box<NewsItem>),
    /// A social post.
    Social(Box<SocialPost>),
    /// An on-chain measurement.
    Onchain(Box<OnchainMetric>),
    /// Market-wide statistics for an asset.
    MarketStats(MarketStats),
    /// An instrument's rolling 24-hour statistics on its venue.
    DayStats(DayStats),
    /// Time has advanced to `ts_event`.
    Heartbeat,
    /// An analyser's finding.
    Signal(Box<Signal>),
    /// A scored recommendation.
    Opportunity(Box<Opportunity>),
    /// A message for a person.
    Alert(Box<Alert>),
    /// A paper position's state.
    Position(Box<Position>),
}

/// The kind of an [`Event`], without its data: for counters, filters and routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// [`Event::Trade`]
    Trade,
    /// [`Event::Candle`]
    Candle,
    /// [`Event::Ticker`]
    Ticker,
    /// [`Event::News`]
    News,
    /// [`Event::Social`]
    Social,
    /// [`Event::Onchain`]
    Onchain,
    /// [`Event::MarketStats`]
    MarketStats,
    /// [`Event::DayStats`]
    DayStats,
    /// [`Event::Heartbeat`]
    Heartbeat,
    /// [`Event::Signal`]
    Signal,
    /// [`Event::Opportunity`]
    Opportunity,
    /// [`Event::Alert`]
    Alert,
    /// [`Event::Position`]
    Position,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 13] = [
        Self::Trade,
        Self::Candle,
        Self::Ticker,
        Self::News,
        Self::Social,
        Self::Onchain,
        Self::MarketStats,
        Self::DayStats,
        Self::Heartbeat,
        Self::Signal,
        Self::Opportunity,
        Self::Alert,
        Self::Position,
    ];

    /// The snake-case name (`market_stats`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trade => "trade",
            Self::Candle => "candle",
            Self::Ticker => "ticker",
            Self::News => "news",
            Self::Social => "social",
            Self::Onchain => "onchain",
            Self::MarketStats => "market_stats",
            Self::DayStats => "day_stats",
            Self::Heartbeat => "heartbeat",
            Self::Signal => "signal",
            Self::Opportunity => "opportunity",
            Self::Alert => "alert",
            Self::Position => "position",
        }
    }
}

impl Event {
    /// The event's kind.
    pub const fn kind(&self) -> EventKind {
        match self {
            Self::Trade(_) => EventKind::Trade,
            Self::Candle(_) => EventKind::Candle,
            Self::Ticker(_) => EventKind::Ticker,
            Self::News(_) => EventKind::News,
            Self::Social(_) => EventKind::Social,
            Self::Onchain(_) => EventKind::Onchain,
            Self::MarketStats(_) => EventKind::MarketStats,
            Self::DayStats(_) => EventKind::DayStats,
            Self::Heartbeat => EventKind::Heartbeat,
            Self::Signal(_) => EventKind::Signal,
            Self::Opportunity(_) => EventKind::Opportunity,
            Self::Alert(_) => EventKind::Alert,
            Self::Position(_) => EventKind::Position,
        }
    }
}

/// An event with its provenance and timing.
///
/// `seq` is assigned by whoever emits the envelope and increases by one per emitter;
/// `ts_event` is when the thing happened (exchange time, bar close, publication time) and
/// `ts_received` is when Atalaya learned of it — the point-in-time key that keeps backtests
/// honest. Both are nanoseconds UTC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Emitter's sequence number.
    pub seq: u64,
    /// When it happened, nanoseconds UTC.
    pub ts_event: UnixNanos,
    /// When Atalaya received it, nanoseconds UTC.
    pub ts_received: UnixNanos,
    /// Who emitted it (`sim`, `replay`, `binance`, `engine`).
    pub source: Symbol,
    /// The event.
    pub payload: T,
}

impl<T> Envelope<T> {
    /// Wraps `payload`.
    pub fn new(
        seq: u64,
        ts_event: UnixNanos,
        ts_received: UnixNanos,
        source: Symbol,
        payload: T,
    ) -> Self {
        Self {
            seq,
            ts_event,
            ts_received,
            source,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstrumentId, Side};

    #[test]
    fn events_stay_small_enough_to_copy_on_the_hot_path() {
        // Market data is stored inline; rare, large payloads are boxed. With the 8-byte
        // interned instrument id a candle, and so an event, is one cache line.
        assert_eq!(std::mem::size_of::<Candle>(), 64);
        assert_eq!(std::mem::size_of::<Event>(), std::mem::size_of::<Candle>());
    }

    #[test]
    fn envelope_json_shape_is_stable() {
        let id: InstrumentId = "sim:BTC/USDT".parse().unwrap();
        let t = Trade::new(id, 7, 100.5, 0.25, Side::Sell).unwrap();
        let env = Envelope::new(3, 10, 11, Symbol::new("sim").unwrap(), Event::Trade(t));
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(
            json,
            r#"{"seq":3,"ts_event":10,"ts_received":11,"source":"sim","payload":{"type":"trade","data":{"instrument":"sim:BTC/USDT","id":7,"price":100.5,"quantity":0.25,"side":"sell"}}}"#
        );
        let back: Envelope<Event> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.payload.kind().as_str(), "trade");
        let hb = serde_json::to_string(&Event::Heartbeat).unwrap();
        assert_eq!(
            serde_json::from_str::<Event>(&hb).unwrap(),
            Event::Heartbeat
        );
    }
}
