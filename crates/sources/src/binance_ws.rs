//! Binance Spot live over WebSocket, with REST backfill: the collector `atalaya run` uses for
//! `live.sources = ["binance"]`.
//!
//! One combined-stream connection (`{ws_url}/stream?streams=btcusdt@aggTrade/btcusdt@kline_1m/…`)
//! carries trades (`trade` or `aggTrade`), a kline stream per configured timeframe and
//! `bookTicker` for every configured symbol. Around it, the plumbing of `atalaya-net`:
//!
//! * start-up validates the symbols with `exchangeInfo` and stops with an error naming any
//!   symbol Binance does not know; an unreachable network is reported and retried, never fatal;
//! * reconnects with jittered exponential backoff capped at 60 s; a stream silent for
//!   `stale_after_secs` is dead and is reconnected (the zombie-stream guard); connections are
//!   renewed before Binance's 24-hour limit; pings are answered;
//! * after every (re)connect, and whenever a kline arrives after a hole, the missing closed
//!   candles are fetched over REST and published first, so candles go out once each, in order;
//! * trades are de-duplicated by id and released in exchange-time order
//!   ([`atalaya_net::TradeSequencer`]); malformed frames are counted in the source's health,
//!   never fatal;
//! * the clock offset against `GET /api/v3/time` is measured at each connect;
//! * subscribe and unsubscribe at run time through a [`BinanceControl`] handle (Binance's
//!   `SUBSCRIBE`/`UNSUBSCRIBE` methods); the streams survive reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atalaya_bus::Topic;
use atalaya_bus::health::SourceState;
use atalaya_model::{
    Candle, Clock, Envelope, Event, InstrumentId, LiveClock, Symbol, Timeframe, UnixNanos,
};
use atalaya_net::{Backoff, CandleCheck, CandleGaps, ClockSkew, TradeSequencer, Watchdog};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::binance::{SymbolMap, normalise};
use crate::binance_rest::BinanceRest;
use crate::{Source, SourceContext, SourceError};

const MS: i64 = 1_000_000;

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
        if self.timeframes.is_empty() && self.trades == TradeStream::None && !self.book_ticker {
            p.push("venues.binance: no stream selected (timeframes, trades, book_ticker)".into());
        }
        for (field, url, schemes) in [
            ("rest_url", &self.rest_url, ["http://", "https://"]),
            ("ws_url", &self.ws_url, ["ws://", "wss://"]),
        ] {
            if !schemes.iter().any(|s| url.starts_with(s)) {
                p.push(format!(
                    "venues.binance.{field}: {url:?} must start with {} or {}",
                    schemes[0], schemes[1]
                ));
            }
        }
        if self.stale_after_secs == 0 {
            p.push("venues.binance.stale_after_secs: must be at least 1".into());
        }
        if self.reconnect_after_secs == 0 || self.reconnect_after_secs > 24 * 3600 {
            p.push(
                "venues.binance.reconnect_after_secs: between 1 and 86400 (Binance's limit)".into(),
            );
        }
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

enum Control {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

/// Changes a running [`BinanceSource`]'s streams (`btcusdt@bookTicker`, …). The change is
/// sent on the open connection and kept for every later one.
#[derive(Clone, Debug)]
pub struct BinanceControl(mpsc::UnboundedSender<Control>);

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::Subscribe(s) => write!(f, "Subscribe({s:?})"),
            Control::Unsubscribe(s) => write!(f, "Unsubscribe({s:?})"),
        }
    }
}

impl BinanceControl {
    /// Adds streams; `false` once the source has stopped.
    pub fn subscribe(&self, streams: Vec<String>) -> bool {
        self.0.send(Control::Subscribe(streams)).is_ok()
    }

    /// Removes streams; `false` once the source has stopped.
    pub fn unsubscribe(&self, streams: Vec<String>) -> bool {
        self.0.send(Control::Unsubscribe(streams)).is_ok()
    }
}

/// The Binance Spot live source.
#[derive(Debug)]
pub struct BinanceSource {
    cfg: BinanceConfig,
    rest: Arc<BinanceRest>,
    /// `None` once every [`BinanceControl`] is dropped.
    control: Option<mpsc::UnboundedReceiver<Control>>,
    resume: Vec<(InstrumentId, Timeframe, UnixNanos)>,
    seed: u64,
}

/// Why a connection ended.
enum End {
    Cancelled,
    Lost(String),
}

type Key = (InstrumentId, Timeframe);

/// What one source keeps across connections.
struct State {
    symbols: SymbolMap,
    /// Instrument → exchange symbol, for REST.
    rest_symbol: HashMap<InstrumentId, String>,
    gaps: CandleGaps<Key>,
    trades: TradeSequencer<InstrumentId, (UnixNanos, Event)>,
    seq: u64,
    src: Symbol,
    skew: ClockSkew,
    malformed: u64,
}

impl BinanceSource {
    /// A source for `cfg`, with a handle to change its streams while it runs.
    pub fn new(cfg: BinanceConfig) -> Result<(Self, BinanceControl), SourceError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(SourceError::Config(problems));
        }
        let rest = Arc::new(
            BinanceRest::new(&cfg.rest_url, cfg.weight_per_minute)?.reporting_unreachable_at_once(),
        );
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((
            Self {
                cfg,
                rest,
                control: Some(rx),
                resume: Vec::new(),
                seed: 0x5eed_b1a7,
            },
            BinanceControl(tx),
        ))
    }

    /// Continues series after the candles already stored: `(instrument, timeframe, open time
    /// of the last stored candle)`. The gap up to now is backfilled at the first connect.
    pub fn resuming(mut self, last: Vec<(InstrumentId, Timeframe, UnixNanos)>) -> Self {
        self.resume = last;
        self
    }

    /// The REST client (its request counters).
    pub fn rest(&self) -> Arc<BinanceRest> {
        self.rest.clone()
    }

    fn ws_url(&self, streams: &[String]) -> String {
        format!(
            "{}/stream?streams={}",
            self.cfg.ws_url.trim_end_matches('/'),
            streams.join("/")
        )
    }
}

/// Sleeps `d` unless cancelled first; `false` when cancelled.
async fn pause(ctx: &SourceContext, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = ctx.cancel.cancelled() => false,
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl State {
    async fn publish(
        &mut self,
        ctx: &SourceContext,
        ts: UnixNanos,
        event: Event,
    ) -> Result<(), SourceError> {
        self.seq += 1;
        let now = LiveClock.now();
        ctx.bus
            .publish(
                Topic::Inbound,
                Envelope::new(self.seq, ts, now, self.src, event),
            )
            .await?;
        ctx.health.record_events(1, ts);
        Ok(())
    }

    /// Publishes the trades whose hold is over.
    async fn release_trades(&mut self, ctx: &SourceContext) -> Result<(), SourceError> {
        let now = LiveClock.now();
        while let Some((ts, ev)) = self.trades.pop_ready(now) {
            self.publish(ctx, ts, ev).await?;
        }
        Ok(())
    }

    /// Fetches and publishes the closed candles of `key` opening in `[from, to)`.
    async fn backfill(
        &mut self,
        ctx: &SourceContext,
        rest: &BinanceRest,
        key: Key,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<usize, SourceError> {
        let (inst, tf) = key;
        let Some(symbol) = self.rest_symbol.get(&inst).cloned() else {
            return Ok(0);
        };
        let candles = rest.klines_range(&symbol, inst, tf, from, to).await?;
        let mut n = 0;
        for c in candles {
            if c.open_time() < from || c.open_time() >= to {
                continue;
            }
            if self.gaps.last(key).is_some_and(|l| c.open_time() <= l) {
                continue;
            }
            self.gaps.filled(key, c.open_time());
            let close = c.close_time();
            self.publish(ctx, close, Event::Candle(c)).await?;
            n += 1;
        }
        if n > 0 {
            tracing::info!(instrument = %inst, timeframe = %tf, candles = n, "Binance: backfilled missing candles over REST");
        }
        Ok(n)
    }

    /// After a (re)connect: backfills every series from its last candle to now.
    async fn backfill_all(
        &mut self,
        ctx: &SourceContext,
        rest: &BinanceRest,
        timeframes: &[Timeframe],
    ) -> Result<(), SourceError> {
        let now = LiveClock.now() + self.skew.offset().unwrap_or(0);
        let keys: Vec<Key> = self
            .rest_symbol
            .keys()
            .flat_map(|i| timeframes.iter().map(move |tf| (*i, *tf)))
            .collect();
        for key in keys {
            if let Some((from, to)) = self.gaps.missing(key, now, key.1.nanos()) {
                self.backfill(ctx, rest, key, from, to).await?;
            }
        }
        Ok(())
    }

    /// Handles one text frame.
    async fn on_frame(
        &mut self,
        ctx: &SourceContext,
        rest: &BinanceRest,
        frame: &str,
    ) -> Result<(), SourceError> {
        match normalise(frame, &self.symbols) {
            Ok(None) => Ok(()),
            Ok(Some((ts, Event::Trade(t)))) => {
                self.trades.push(
                    t.instrument(),
                    t.id(),
                    ts,
                    LiveClock.now(),
                    (ts, Event::Trade(t)),
                );
                self.release_trades(ctx).await
            }
            Ok(Some((ts, Event::Candle(c)))) => self.on_candle(ctx, rest, ts, c).await,
            Ok(Some((ts, ev))) => self.publish(ctx, ts, ev).await,
            Err(e) => {
                self.malformed += 1;
                if self.malformed <= 10 || self.malformed.is_power_of_two() {
                    tracing::warn!(error = %e, malformed = self.malformed, "Binance: malformed frame skipped");
                }
                ctx.health.record_error(format!("malformed frame: {e}"));
                Ok(())
            }
        }
    }

    async fn on_candle(
        &mut self,
        ctx: &SourceContext,
        rest: &BinanceRest,
        ts: UnixNanos,
        c: Candle,
    ) -> Result<(), SourceError> {
        let key = (c.instrument(), c.timeframe());
        match self.gaps.check(key, c.open_time(), c.timeframe().nanos()) {
            CandleCheck::Next => self.publish(ctx, ts, Event::Candle(c)).await,
            CandleCheck::Duplicate => Ok(()),
            CandleCheck::Gap { from, to } => {
                tracing::warn!(instrument = %key.0, timeframe = %key.1, missing = (to - from) / key.1.nanos(), "Binance: a hole in the kline stream; backfilling");
                // On failure the session ends; the reconnect backfills from the last candle
                // published, this one included.
                self.backfill(ctx, rest, key, from, to).await?;
                self.gaps.filled(key, c.open_time());
                self.publish(ctx, ts, Event::Candle(c)).await
            }
        }
    }
}

#[async_trait]
impl Source for BinanceSource {
    fn name(&self) -> &str {
        "binance"
    }

    async fn run(mut self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        ctx.health.set_state(SourceState::Starting);
        let mut backoff = Backoff::default_with_seed(self.seed);
        // Validate the symbols; an unknown one is fatal, an unreachable venue is not.
        let infos = loop {
            match self.rest.exchange_info(&self.cfg.symbols).await {
                Ok(i) => break i,
                Err(
                    e @ SourceError::Venue {
                        transient: true, ..
                    },
                ) => {
                    let d = Duration::from_nanos(backoff.next_delay().max(0) as u64);
                    tracing::warn!(error = %e, url = %self.rest.base_url(), retry_in = ?d, "Binance REST unreachable; will keep retrying");
                    ctx.health.record_error(e.to_string());
                    ctx.health.set_state(SourceState::Reconnecting);
                    if !pause(&ctx, d).await {
                        ctx.health.set_state(SourceState::Finished);
                        return Ok(());
                    }
                }
                Err(e) => {
                    ctx.health.record_error(e.to_string());
                    ctx.health.set_state(SourceState::Failed);
                    return Err(e);
                }
            }
        };
        let mut instruments = Vec::new();
        let mut rest_symbol = HashMap::new();
        for i in &infos {
            let id = i.instrument()?;
            if i.status != "TRADING" {
                tracing::warn!(symbol = %i.symbol, status = %i.status, "Binance: symbol is not trading now");
            }
            instruments.push(id);
            rest_symbol.insert(id, i.symbol.clone());
        }
        let mut state = State {
            symbols: SymbolMap::new(&instruments),
            rest_symbol,
            gaps: CandleGaps::new(),
            trades: TradeSequencer::new(self.cfg.trade_hold_ms as i64 * MS, 100_000),
            seq: 0,
            src: Symbol::new("binance").map_err(SourceError::Model)?,
            skew: ClockSkew::default(),
            malformed: 0,
        };
        for (i, tf, t) in std::mem::take(&mut self.resume) {
            if state.rest_symbol.contains_key(&i) {
                state.gaps.resume((i, tf), t);
            }
        }
        let mut streams: Vec<String> = self
            .cfg
            .symbols
            .iter()
            .flat_map(|s| self.cfg.streams_for(s))
            .collect();
        let tls = tls_config();
        let stale_ns = self.cfg.stale_after_secs as i64 * 1_000 * MS;
        loop {
            // The venue's clock, for lag and for which candles have closed.
            match self.rest.server_time().await {
                Ok((sent, received, server)) => {
                    state.skew.record(sent, received, server);
                    if let Some(o) = state.skew.offset() {
                        ctx.health.set_clock_skew_ms(o / MS);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "Binance: server time unavailable"),
            }
            let url = self.ws_url(&streams);
            let connect = tokio_tungstenite::connect_async_tls_with_config(
                url.as_str(),
                None,
                false,
                Some(tokio_tungstenite::Connector::Rustls(tls.clone())),
            );
            let connected = tokio::select! {
                r = tokio::time::timeout(Duration::from_secs(15), connect) => Some(r),
                () = ctx.cancel.cancelled() => None,
            };
            let end = match connected {
                None => End::Cancelled,
                Some(Err(_)) => End::Lost("connecting timed out after 15 s".into()),
                Some(Ok(Err(e))) => End::Lost(format!("cannot connect: {e}")),
                Some(Ok(Ok((mut ws, _)))) => {
                    tracing::info!(streams = streams.len(), "Binance: connected");
                    let started = Instant::now();
                    // Backfill while the live frames queue up behind it.
                    let end = match state
                        .backfill_all(&ctx, &self.rest, &self.cfg.timeframes)
                        .await
                    {
                        Err(SourceError::Bus(e)) => return Err(SourceError::Bus(e)),
                        Err(e) => End::Lost(format!("backfill failed: {e}")),
                        Ok(()) => {
                            ctx.health.set_state(SourceState::Running);
                            self.session(&ctx, &mut state, &mut ws, &mut streams, stale_ns)
                                .await?
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    if started.elapsed() > Duration::from_secs(60) {
                        backoff.reset();
                    }
                    end
                }
            };
            match end {
                End::Cancelled => break,
                End::Lost(why) => {
                    let d = Duration::from_nanos(backoff.next_delay().max(0) as u64);
                    tracing::warn!(reason = %why, retry_in = ?d, "Binance: connection lost; reconnecting");
                    ctx.health.record_error(why);
                    ctx.health.record_reconnect();
                    if !pause(&ctx, d).await {
                        break;
                    }
                }
            }
        }
        let held: Vec<(UnixNanos, Event)> = state.trades.drain().collect();
        for (ts, ev) in held {
            state.publish(&ctx, ts, ev).await?;
        }
        ctx.health.set_state(SourceState::Finished);
        Ok(())
    }
}

impl BinanceSource {
    /// Reads one connection until it ends. Errors only when the bus closed.
    async fn session<S>(
        &mut self,
        ctx: &SourceContext,
        state: &mut State,
        ws: &mut tokio_tungstenite::WebSocketStream<S>,
        streams: &mut Vec<String>,
        stale_ns: i64,
    ) -> Result<End, SourceError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut watchdog = Watchdog::new(stale_ns, LiveClock.now());
        let mut tick = tokio::time::interval(Duration::from_millis(
            (self.cfg.trade_hold_ms / 2).clamp(20, 1000),
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew = tokio::time::sleep(Duration::from_secs(self.cfg.reconnect_after_secs));
        tokio::pin!(renew);
        let mut request_id = 0u64;
        loop {
            tokio::select! {
                () = ctx.cancel.cancelled() => return Ok(End::Cancelled),
                () = &mut renew => {
                    tracing::info!("Binance: renewing the connection before the 24-hour limit");
                    return Ok(End::Lost("renewed before the 24-hour limit".into()));
                }
                cmd = async {
                    match self.control.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let Some(cmd) = cmd else {
                        self.control = None;
                        continue;
                    };
                    let (method, list) = match cmd {
                        Control::Subscribe(l) => {
                            for s in &l {
                                if !streams.contains(s) {
                                    streams.push(s.clone());
                                }
                            }
                            ("SUBSCRIBE", l)
                        }
                        Control::Unsubscribe(l) => {
                            streams.retain(|s| !l.contains(s));
                            ("UNSUBSCRIBE", l)
                        }
                    };
                    request_id += 1;
                    let body = serde_json::json!({"method": method, "params": list, "id": request_id});
                    if let Err(e) = ws.send(Message::Text(body.to_string().into())).await {
                        return Ok(End::Lost(format!("sending {method}: {e}")));
                    }
                }
                _ = tick.tick() => {
                    let now = LiveClock.now();
                    if watchdog.is_stale(now) {
                        return Ok(End::Lost(format!(
                            "no message for {} s: the stream is dead",
                            watchdog.silence(now) / 1_000_000_000
                        )));
                    }
                    state.release_trades(ctx).await?;
                }
                msg = ws.next() => {
                    let now = LiveClock.now();
                    match msg {
                        None => return Ok(End::Lost("the server closed the connection".into())),
                        Some(Err(e)) => return Ok(End::Lost(format!("read error: {e}"))),
                        Some(Ok(Message::Text(t))) => {
                            watchdog.feed(now);
                            match state.on_frame(ctx, &self.rest, t.as_str()).await {
                                Ok(()) => {}
                                Err(SourceError::Bus(e)) => return Err(SourceError::Bus(e)),
                                Err(e) => return Ok(End::Lost(e.to_string())),
                            }
                        }
                        Some(Ok(Message::Ping(p))) => {
                            watchdog.feed(now);
                            // Binance drops a connection whose pongs stop.
                            if let Err(e) = ws.send(Message::Pong(p)).await {
                                return Ok(End::Lost(format!("answering a ping: {e}")));
                            }
                        }
                        Some(Ok(Message::Close(f))) => {
                            return Ok(End::Lost(format!(
                                "the server closed the connection ({})",
                                f.map(|f| f.reason.to_string()).unwrap_or_default()
                            )));
                        }
                        Some(Ok(_)) => watchdog.feed(now),
                    }
                }
            }
        }
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
                "btcusdt@bookTicker"
            ]
        );
        assert!(c.problems().is_empty());
    }
}
