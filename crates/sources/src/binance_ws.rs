//! Binance Spot live over WebSocket, with REST backfill: the [`Venue`] `atalaya run` uses for
//! `live.sources = ["binance"]`, driven by [`LiveSource`](crate::live::LiveSource).
//!
//! One combined-stream connection (`{ws_url}/stream?streams=btcusdt@aggTrade/btcusdt@kline_1m/…`)
//! carries trades (`trade` or `aggTrade`), a kline stream per configured timeframe and
//! `bookTicker` for every configured symbol; only closed klines (`"x": true`) become candles.
//! Start-up validates the symbols with `exchangeInfo`; backfill uses `klines`; the clock offset
//! comes from `GET /api/v3/time`; run-time changes use Binance's `SUBSCRIBE`/`UNSUBSCRIBE`
//! methods. Connections are renewed before Binance's 24-hour limit.

use std::sync::Arc;

use async_trait::async_trait;
use atalaya_model::{Candle, Event, InstrumentId, Timeframe, UnixNanos};
use serde::{Deserialize, Serialize};

use crate::SourceError;
use crate::binance::{SymbolMap, normalise};
use crate::binance_rest::BinanceRest;
use crate::live::{LiveControl, LiveSource, Timing, Venue};

/// Which trade stream to subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeStream {
    /// `<symbol>@trade`: every trade.
    Trade,
    /// `<symbol>@aggTrade`: trades aggregated per taker order (fewer messages).
    AggTrade,
    /// No trades.
    None,
}

/// Binance Spot: endpoints, symbols, streams and resilience settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BinanceConfig {
    /// REST base URL.
    pub rest_url: String,
    /// WebSocket base URL (the combined-stream path `/stream` is appended).
    pub ws_url: String,
    /// Request weight allowed per minute (Binance's limit is 6,000 per IP; keep a margin).
    pub weight_per_minute: u32,
    /// Exchange symbols to collect (`BTCUSDT`).
    pub symbols: Vec<String>,
    /// A kline stream per timeframe; the engine aggregates longer bars from these.
    pub timeframes: Vec<Timeframe>,
    /// The trade stream.
    pub trades: TradeStream,
    /// Subscribe to best bid and offer (`bookTicker`).
    pub book_ticker: bool,
    /// Subscribe to the rolling 24-hour statistics (`miniTicker`), fetched over REST
    /// (`ticker/24hr`) at every connect too.
    pub mini_ticker: bool,
    /// A subscribed stream silent this long is dead and is reconnected.
    pub stale_after_secs: u64,
    /// Renew the connection after this long (Binance closes connections at 24 hours).
    pub reconnect_after_secs: u64,
    /// How long a trade may be held to put out-of-order arrivals back in exchange-time order.
    pub trade_hold_ms: u64,
}

impl Default for BinanceConfig {
    fn default() -> Self {
        Self {
            rest_url: "https://api.binance.com".into(),
            ws_url: "wss://stream.binance.com:9443".into(),
            weight_per_minute: 5000,
            symbols: ["BTCUSDT", "ETHUSDT", "ADAUSDT", "SOLUSDT", "AVAXUSDT"]
                .map(String::from)
                .to_vec(),
            timeframes: vec![Timeframe::M1],
            trades: TradeStream::AggTrade,
            book_ticker: true,
            mini_ticker: true,
            stale_after_secs: 30,
            reconnect_after_secs: 23 * 3600 + 30 * 60,
            trade_hold_ms: 100,
        }
    }
}

impl BinanceConfig {
    /// Problems with the settings, each with its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.symbols.is_empty() {
            p.push("venues.binance.symbols: at least one symbol is needed".to_owned());
        }
        for s in &self.symbols {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                p.push(format!(
                    "venues.binance.symbols: {s:?} is not a Binance symbol (like BTCUSDT)"
                ));
            }
        }
        if self.timeframes.is_empty()
            && self.trades == TradeStream::None
            && !self.book_ticker
            && !self.mini_ticker
        {
            p.push(
                "venues.binance: no stream selected (timeframes, trades, book_ticker, mini_ticker)"
                    .into(),
            );
        }
        p.extend(crate::live::common_problems(
            "binance",
            (&self.rest_url, &self.ws_url),
            self.stale_after_secs,
            self.reconnect_after_secs,
        ));
        p
    }

    /// The stream names for `symbol` (`btcusdt@aggTrade`, `btcusdt@kline_1m`, …).
    pub fn streams_for(&self, symbol: &str) -> Vec<String> {
        let s = symbol.to_ascii_lowercase();
        let mut out = Vec::new();
        match self.trades {
            TradeStream::Trade => out.push(format!("{s}@trade")),
            TradeStream::AggTrade => out.push(format!("{s}@aggTrade")),
            TradeStream::None => {}
        }
        for tf in &self.timeframes {
            out.push(format!("{s}@kline_{}", tf.as_str()));
        }
        if self.book_ticker {
            out.push(format!("{s}@bookTicker"));
        }
        if self.mini_ticker {
            out.push(format!("{s}@miniTicker"));
        }
        out
    }
}

/// The instrument of a Binance symbol guessed from common quote assets (`BTCUSDT` →
/// `binance:BTC/USDT`), for what must be known before `exchangeInfo` answers (reading the
/// stored candles at a restart). The source itself maps symbols with `exchangeInfo`.
pub fn guess_instrument(symbol: &str) -> Option<InstrumentId> {
    const QUOTES: [&str; 10] = [
        "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BTC", "ETH", "BNB",
    ];
    let s = symbol.to_ascii_uppercase();
    QUOTES.iter().find_map(|q| {
        let base = s.strip_suffix(q)?;
        (!base.is_empty())
            .then(|| InstrumentId::new("binance", base, q).ok())
            .flatten()
    })
}

/// The Binance venue: REST client, symbol map and settings.
#[derive(Debug)]
pub struct BinanceVenue {
    cfg: BinanceConfig,
    rest: Arc<BinanceRest>,
    symbols: SymbolMap,
    request_id: u64,
}

/// The Binance live source.
pub type BinanceSource = LiveSource<BinanceVenue>;

/// A Binance live source for `cfg`, with a handle to change its streams while it runs
/// (`btcusdt@bookTicker`, …).
pub fn source(cfg: BinanceConfig) -> Result<(BinanceSource, LiveControl), SourceError> {
    Ok(LiveSource::new(BinanceVenue::new(cfg)?))
}

impl BinanceVenue {
    /// The venue for `cfg` (checked).
    pub fn new(cfg: BinanceConfig) -> Result<Self, SourceError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(SourceError::Config(problems));
        }
        let rest = Arc::new(
            BinanceRest::new(&cfg.rest_url, cfg.weight_per_minute)?.reporting_unreachable_at_once(),
        );
        Ok(Self {
            cfg,
            rest,
            symbols: SymbolMap::default(),
            request_id: 0,
        })
    }

    /// The REST client (its request counters).
    pub fn rest(&self) -> Arc<BinanceRest> {
        self.rest.clone()
    }
}

#[async_trait]
impl Venue for BinanceVenue {
    fn name(&self) -> &'static str {
        "binance"
    }

    async fn instruments(&mut self) -> Result<Vec<(InstrumentId, String)>, SourceError> {
        let infos = self.rest.exchange_info(&self.cfg.symbols).await?;
        let mut out = Vec::new();
        for i in &infos {
            if i.status != "TRADING" {
                tracing::warn!(symbol = %i.symbol, status = %i.status, "Binance: symbol is not trading now");
            }
            out.push((i.instrument()?, i.symbol.clone()));
        }
        self.symbols = SymbolMap::new(&out.iter().map(|(i, _)| *i).collect::<Vec<_>>());
        Ok(out)
    }

    fn initial_subscriptions(&self) -> Vec<String> {
        self.cfg
            .symbols
            .iter()
            .flat_map(|s| self.cfg.streams_for(s))
            .collect()
    }

    fn ws_url(&self, subs: &[String]) -> String {
        format!(
            "{}/stream?streams={}",
            self.cfg.ws_url.trim_end_matches('/'),
            subs.join("/")
        )
    }

    fn on_connect(&mut self, _subs: &[String]) -> Vec<String> {
        // The streams are in the URL.
        Vec::new()
    }

    fn change(&mut self, subs: &[String], add: bool) -> Vec<String> {
        self.request_id += 1;
        let method = if add { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
        vec![
            serde_json::json!({"method": method, "params": subs, "id": self.request_id})
                .to_string(),
        ]
    }

    fn parse(&mut self, frame: &str, out: &mut Vec<(UnixNanos, Event)>) -> Result<(), String> {
        match normalise(frame, &self.symbols) {
            Ok(Some(e)) => {
                out.push(e);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn timeframes(&self) -> Vec<Timeframe> {
        self.cfg.timeframes.clone()
    }

    async fn candles(
        &self,
        symbol: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError> {
        self.rest
            .klines_range(symbol, instrument, tf, from, to)
            .await
    }

    async fn server_time(&self) -> Result<(UnixNanos, UnixNanos, UnixNanos), SourceError> {
        self.rest.server_time().await
    }

    async fn snapshot(&self) -> Result<Vec<(UnixNanos, Event)>, SourceError> {
        if !self.cfg.mini_ticker {
            return Ok(Vec::new());
        }
        let stats = self
            .rest
            .ticker_24h(&self.cfg.symbols, &self.symbols)
            .await?;
        Ok(stats
            .into_iter()
            .map(|(ts, d)| (ts, Event::DayStats(d)))
            .collect())
    }

    fn timing(&self) -> Timing {
        Timing::from_settings(
            self.cfg.stale_after_secs,
            self.cfg.reconnect_after_secs,
            self.cfg.trade_hold_ms,
        )
    }

    async fn request_counts(&self) -> (u64, u64) {
        self.rest.counts().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruments_are_guessed_from_the_quote_asset() {
        let g = |s: &str| guess_instrument(s).map(|i| i.to_string());
        assert_eq!(g("BTCUSDT").as_deref(), Some("binance:BTC/USDT"));
        assert_eq!(g("ethbtc").as_deref(), Some("binance:ETH/BTC"));
        assert_eq!(g("BTCFDUSD").as_deref(), Some("binance:BTC/FDUSD"));
        assert_eq!(g("USDT"), None);
        assert_eq!(g("XYZ"), None);
    }

    #[test]
    fn streams_follow_the_settings() {
        let c = BinanceConfig {
            timeframes: vec![Timeframe::M1, Timeframe::H1],
            ..BinanceConfig::default()
        };
        assert_eq!(
            c.streams_for("BTCUSDT"),
            [
                "btcusdt@aggTrade",
                "btcusdt@kline_1m",
                "btcusdt@kline_1h",
                "btcusdt@bookTicker",
                "btcusdt@miniTicker"
            ]
        );
        assert!(c.problems().is_empty());
    }
}
