use serde::{Deserialize, Serialize};

use crate::error::{finite, non_negative, positive};
use crate::{InstrumentId, ModelError, Symbol, Timeframe, UnixNanos};

/// One OHLCV bar of an instrument on a timeframe.
///
/// Invariants, checked by [`Candle::new`] and on deserialisation: prices are finite and
/// positive, `low <= min(open, close)`, `high >= max(open, close)`, volume is finite and not
/// negative, and `open_time` lies on the timeframe's grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CandleRaw")]
pub struct Candle {
    instrument: InstrumentId,
    timeframe: Timeframe,
    open_time: UnixNanos,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    trades: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CandleRaw {
    instrument: InstrumentId,
    timeframe: Timeframe,
    open_time: UnixNanos,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    #[serde(default)]
    trades: u32,
}

impl TryFrom<CandleRaw> for Candle {
    type Error = ModelError;
    fn try_from(r: CandleRaw) -> Result<Self, Self::Error> {
        Candle::new(
            r.instrument,
            r.timeframe,
            r.open_time,
            [r.open, r.high, r.low, r.close],
            r.volume,
            r.trades,
        )
    }
}

impl Candle {
    /// Builds a validated candle from `[open, high, low, close]`, volume (base asset) and
    /// the number of trades in the bar (0 when unknown).
    pub fn new(
        instrument: InstrumentId,
        timeframe: Timeframe,
        open_time: UnixNanos,
        ohlc: [f64; 4],
        volume: f64,
        trades: u32,
    ) -> Result<Self, ModelError> {
        const W: &str = "candle";
        let [open, high, low, close] = ohlc;
        positive(W, "open", open)?;
        positive(W, "high", high)?;
        positive(W, "low", low)?;
        positive(W, "close", close)?;
        non_negative(W, "volume", volume)?;
        if !timeframe.is_aligned(open_time) {
            return Err(ModelError::Misaligned {
                open_time,
                timeframe: timeframe.as_str(),
            });
        }
        if low > open.min(close) {
            return Err(ModelError::InconsistentCandle {
                open_time,
                reason: "low is above open or close",
            });
        }
        if high < open.max(close) {
            return Err(ModelError::InconsistentCandle {
                open_time,
                reason: "high is below open or close",
            });
        }
        Ok(Self {
            instrument,
            timeframe,
            open_time,
            open,
            high,
            low,
            close,
            volume,
            trades,
        })
    }

    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }
    /// The timeframe.
    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }
    /// Open time, nanoseconds UTC.
    pub fn open_time(&self) -> UnixNanos {
        self.open_time
    }
    /// Close time (exclusive end of the bar), nanoseconds UTC.
    pub fn close_time(&self) -> UnixNanos {
        self.open_time + self.timeframe.nanos()
    }
    /// Opening price.
    pub fn open(&self) -> f64 {
        self.open
    }
    /// Highest price.
    pub fn high(&self) -> f64 {
        self.high
    }
    /// Lowest price.
    pub fn low(&self) -> f64 {
        self.low
    }
    /// Closing price.
    pub fn close(&self) -> f64 {
        self.close
    }
    /// Traded volume in the base asset.
    pub fn volume(&self) -> f64 {
        self.volume
    }
    /// Number of trades in the bar (0 when the source does not say).
    pub fn trades(&self) -> u32 {
        self.trades
    }
}

/// The aggressor side of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The buyer took liquidity.
    Buy,
    /// The seller took liquidity.
    Sell,
}

/// One executed trade.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TradeRaw")]
pub struct Trade {
    instrument: InstrumentId,
    id: u64,
    price: f64,
    quantity: f64,
    side: Side,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TradeRaw {
    instrument: InstrumentId,
    id: u64,
    price: f64,
    quantity: f64,
    side: Side,
}

impl TryFrom<TradeRaw> for Trade {
    type Error = ModelError;
    fn try_from(r: TradeRaw) -> Result<Self, Self::Error> {
        Trade::new(r.instrument, r.id, r.price, r.quantity, r.side)
    }
}

impl Trade {
    /// A validated trade: price and quantity finite and positive. Its time is the
    /// envelope's `ts_event`.
    pub fn new(
        instrument: InstrumentId,
        id: u64,
        price: f64,
        quantity: f64,
        side: Side,
    ) -> Result<Self, ModelError> {
        positive("trade", "price", price)?;
        positive("trade", "quantity", quantity)?;
        Ok(Self {
            instrument,
            id,
            price,
            quantity,
            side,
        })
    }
    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }
    /// The venue's trade id (unique per instrument).
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Execution price.
    pub fn price(&self) -> f64 {
        self.price
    }
    /// Executed quantity in the base asset.
    pub fn quantity(&self) -> f64 {
        self.quantity
    }
    /// The aggressor side.
    pub fn side(&self) -> Side {
        self.side
    }
}

/// Best bid and offer, with the last trade price when the venue sends it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TickerRaw")]
pub struct Ticker {
    instrument: InstrumentId,
    bid: f64,
    bid_size: f64,
    ask: f64,
    ask_size: f64,
    last: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TickerRaw {
    instrument: InstrumentId,
    bid: f64,
    bid_size: f64,
    ask: f64,
    ask_size: f64,
    #[serde(default)]
    last: Option<f64>,
}

impl TryFrom<TickerRaw> for Ticker {
    type Error = ModelError;
    fn try_from(r: TickerRaw) -> Result<Self, Self::Error> {
        Ticker::new(
            r.instrument,
            (r.bid, r.bid_size),
            (r.ask, r.ask_size),
            r.last,
        )
    }
}

impl Ticker {
    /// A validated ticker: positive prices, non-negative sizes, and a book that is not
    /// crossed (`bid <= ask`).
    pub fn new(
        instrument: InstrumentId,
        (bid, bid_size): (f64, f64),
        (ask, ask_size): (f64, f64),
        last: Option<f64>,
    ) -> Result<Self, ModelError> {
        positive("ticker", "bid", bid)?;
        positive("ticker", "ask", ask)?;
        non_negative("ticker", "bid_size", bid_size)?;
        non_negative("ticker", "ask_size", ask_size)?;
        if let Some(l) = last {
            positive("ticker", "last", l)?;
        }
        if bid > ask {
            return Err(ModelError::InvalidValue {
                what: "ticker",
                field: "bid",
                value: bid,
                reason: "crossed book: bid above ask",
            });
        }
        Ok(Self {
            instrument,
            bid,
            bid_size,
            ask,
            ask_size,
            last,
        })
    }
    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }
    /// Best bid price.
    pub fn bid(&self) -> f64 {
        self.bid
    }
    /// Size at the best bid.
    pub fn bid_size(&self) -> f64 {
        self.bid_size
    }
    /// Best ask price.
    pub fn ask(&self) -> f64 {
        self.ask
    }
    /// Size at the best ask.
    pub fn ask_size(&self) -> f64 {
        self.ask_size
    }
    /// Last trade price, when known.
    pub fn last(&self) -> Option<f64> {
        self.last
    }
    /// Mid price.
    pub fn mid(&self) -> f64 {
        (self.bid + self.ask) / 2.0
    }
}

/// Rolling 24-hour statistics of one instrument on its venue (Binance's `24hrMiniTicker` stream
/// and `GET /api/v3/ticker/24hr`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DayStatsRaw")]
pub struct DayStats {
    instrument: InstrumentId,
    open: f64,
    high: f64,
    low: f64,
    last: f64,
    volume: f64,
    quote_volume: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DayStatsRaw {
    instrument: InstrumentId,
    open: f64,
    high: f64,
    low: f64,
    last: f64,
    volume: f64,
    quote_volume: f64,
}

impl TryFrom<DayStatsRaw> for DayStats {
    type Error = ModelError;
    fn try_from(r: DayStatsRaw) -> Result<Self, Self::Error> {
        DayStats::new(
            r.instrument,
            [r.open, r.high, r.low, r.last],
            r.volume,
            r.quote_volume,
        )
    }
}

impl DayStats {
    /// Validated statistics: prices finite and positive with the low at or below every other
    /// price and the high at or above; volumes finite and non-negative.
    pub fn new(
        instrument: InstrumentId,
        [open, high, low, last]: [f64; 4],
        volume: f64,
        quote_volume: f64,
    ) -> Result<Self, ModelError> {
        const W: &str = "24h statistics";
        for (field, v) in [("open", open), ("high", high), ("low", low), ("last", last)] {
            positive(W, field, v)?;
        }
        non_negative(W, "volume", volume)?;
        non_negative(W, "quote_volume", quote_volume)?;
        if low > open.min(last) || high < open.max(last) {
            return Err(ModelError::InvalidValue {
                what: W,
                field: "high/low",
                value: high,
                reason: "the range does not contain open and last",
            });
        }
        Ok(Self {
            instrument,
            open,
            high,
            low,
            last,
            volume,
            quote_volume,
        })
    }
    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }
    /// Price 24 hours ago.
    pub fn open(&self) -> f64 {
        self.open
    }
    /// Highest price over 24 hours.
    pub fn high(&self) -> f64 {
        self.high
    }
    /// Lowest price over 24 hours.
    pub fn low(&self) -> f64 {
        self.low
    }
    /// Last price.
    pub fn last(&self) -> f64 {
        self.last
    }
    /// Base-asset volume over 24 hours.
    pub fn volume(&self) -> f64 {
        self.volume
    }
    /// Quote-asset volume over 24 hours.
    pub fn quote_volume(&self) -> f64 {
        self.quote_volume
    }
    /// Price change over 24 hours, in percent.
    pub fn change_pct(&self) -> f64 {
        (self.last / self.open - 1.0) * 100.0
    }
}

/// Market-wide statistics for one asset (the fundamental factor's input), such as
/// CoinGecko publishes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MarketStatsRaw")]
pub struct MarketStats {
    asset: Symbol,
    market_cap_usd: f64,
    change_24h_pct: f64,
    change_7d_pct: f64,
    avg_volume_7d_usd: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarketStatsRaw {
    asset: Symbol,
    market_cap_usd: f64,
    change_24h_pct: f64,
    change_7d_pct: f64,
    avg_volume_7d_usd: f64,
}

impl TryFrom<MarketStatsRaw> for MarketStats {
    type Error = ModelError;
    fn try_from(r: MarketStatsRaw) -> Result<Self, Self::Error> {
        MarketStats::new(
            r.asset,
            r.market_cap_usd,
            r.change_24h_pct,
            r.change_7d_pct,
            r.avg_volume_7d_usd,
        )
    }
}

impl MarketStats {
    /// Validated statistics: capitalisation and volume finite and non-negative; changes
    /// finite and not below -100%.
    pub fn new(
        asset: Symbol,
        market_cap_usd: f64,
        change_24h_pct: f64,
        change_7d_pct: f64,
        avg_volume_7d_usd: f64,
    ) -> Result<Self, ModelError> {
        const W: &str = "market stats";
        non_negative(W, "market_cap_usd", market_cap_usd)?;
        non_negative(W, "avg_volume_7d_usd", avg_volume_7d_usd)?;
        for (field, v) in [
            ("change_24h_pct", change_24h_pct),
            ("change_7d_pct", change_7d_pct),
        ] {
            finite(W, field, v)?;
            if v < -100.0 {
                return Err(ModelError::InvalidValue {
                    what: W,
                    field,
                    value: v,
                    reason: "below -100%",
                });
            }
        }
        Ok(Self {
            asset: asset.to_upper(),
            market_cap_usd,
            change_24h_pct,
            change_7d_pct,
            avg_volume_7d_usd,
        })
    }
    /// The asset (`BTC`).
    pub fn asset(&self) -> Symbol {
        self.asset
    }
    /// Market capitalisation in US dollars.
    pub fn market_cap_usd(&self) -> f64 {
        self.market_cap_usd
    }
    /// Price change over 24 hours, in percent.
    pub fn change_24h_pct(&self) -> f64 {
        self.change_24h_pct
    }
    /// Price change over 7 days, in percent.
    pub fn change_7d_pct(&self) -> f64 {
        self.change_7d_pct
    }
    /// Average daily traded volume over 7 days, in US dollars.
    pub fn avg_volume_7d_usd(&self) -> f64 {
        self.avg_volume_7d_usd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> InstrumentId {
        "sim:BTC/USDT".parse().unwrap()
    }

    #[test]
    fn candle_rejects_inconsistent_prices() {
        let ok = Candle::new(id(), Timeframe::M1, 0, [10.0, 12.0, 9.0, 11.0], 5.0, 3).unwrap();
        assert_eq!(ok.close_time(), 60_000_000_000);
        let e = Candle::new(id(), Timeframe::M1, 0, [10.0, 10.5, 9.0, 11.0], 5.0, 3).unwrap_err();
        assert!(e.to_string().contains("high is below"), "{e}");
        let e = Candle::new(id(), Timeframe::M1, 0, [10.0, 12.0, 10.5, 11.0], 5.0, 3).unwrap_err();
        assert!(e.to_string().contains("low is above"), "{e}");
        assert!(Candle::new(id(), Timeframe::M1, 0, [f64::NAN, 12.0, 9.0, 11.0], 5.0, 0).is_err());
        assert!(Candle::new(id(), Timeframe::M1, 0, [10.0, 12.0, 9.0, 11.0], -1.0, 0).is_err());
        let e = Candle::new(id(), Timeframe::H1, 5, [10.0, 12.0, 9.0, 11.0], 1.0, 0).unwrap_err();
        assert!(e.to_string().contains("not aligned"), "{e}");
    }

    #[test]
    fn candle_deserialisation_validates() {
        let c = Candle::new(id(), Timeframe::M1, 0, [10.0, 12.0, 9.0, 11.0], 5.0, 3).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Candle>(&json).unwrap(), c);
        let bad = json.replace("\"high\":12.0", "\"high\":1.0");
        assert!(serde_json::from_str::<Candle>(&bad).is_err());
    }

    #[test]
    fn ticker_rejects_crossed_book() {
        assert!(Ticker::new(id(), (101.0, 1.0), (100.0, 1.0), None).is_err());
        let t = Ticker::new(id(), (100.0, 1.0), (101.0, 1.0), Some(100.5)).unwrap();
        assert_eq!(t.mid(), 100.5);
    }

    #[test]
    fn trade_and_stats_validate() {
        assert!(Trade::new(id(), 1, 0.0, 1.0, Side::Buy).is_err());
        assert!(Trade::new(id(), 1, 1.0, 1.0, Side::Buy).is_ok());
        let btc = Symbol::new("btc").unwrap();
        assert!(MarketStats::new(btc, 1e12, -120.0, 0.0, 1e9).is_err());
        assert_eq!(
            MarketStats::new(btc, 1e12, -5.0, 3.0, 1e9)
                .unwrap()
                .asset()
                .as_str(),
            "BTC"
        );
    }
}
