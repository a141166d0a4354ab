//! The live WebSocket collector, written once for every venue.
//!
//! [`LiveSource`] drives a [`Venue`] (Binance, Coinbase, Kraken): it validates the instruments
//! over REST, connects, sends the venue's subscriptions, and reads frames until the connection
//! ends, then reconnects. Around the venue's parser it applies `atalaya-net`'s state machines:
//!
//! * reconnect with jittered exponential backoff capped at 60 s; an unreachable network is
//!   logged and retried, never fatal; an instrument the venue does not know stops the source
//!   with an error naming it;
//! * a stream silent for `stale_after` is dead and is reconnected (the zombie-stream guard);
//!   connections are renewed after `reconnect_after` (Binance's 24-hour limit); pings are
//!   answered;
//! * after every (re)connect, and whenever a candle arrives after a hole, the missing closed
//!   candles are fetched over REST and published first, so candles go out once each, in order;
//!   if a backfill fails the connection is dropped on purpose and the reconnect backfills from
//!   the same last candle;
//! * trades are de-duplicated by id and released in exchange-time order
//!   ([`atalaya_net::TradeSequencer`]); malformed frames are counted in the health, never fatal;
//! * the clock offset against the venue's server time is measured at each connect;
//! * subscriptions change at run time through a [`LiveControl`] handle and survive reconnects.

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
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::{Source, SourceContext, SourceError};

const MS: i64 = 1_000_000;

/// Timing settings of a live connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A subscribed stream silent this long is dead.
    pub stale_after: Duration,
    /// Renew the connection after this long.
    pub reconnect_after: Duration,
    /// How long trades may wait to be put back in exchange-time order.
    pub trade_hold: Duration,
}

impl Timing {
    /// From the settings every venue has: `stale_after_secs`, `reconnect_after_secs`,
    /// `trade_hold_ms`.
    pub fn from_settings(
        stale_after_secs: u64,
        reconnect_after_secs: u64,
        trade_hold_ms: u64,
    ) -> Self {
        Self {
            stale_after: Duration::from_secs(stale_after_secs),
            reconnect_after: Duration::from_secs(reconnect_after_secs),
            trade_hold: Duration::from_millis(trade_hold_ms),
        }
    }
}

/// The settings every venue shares, checked once: REST and WebSocket URL schemes, and the
/// stale and renewal times (at least a second; at most Binance's 24 hours for the renewal).
pub fn common_problems(
    venue: &str,
    (rest_url, ws_url): (&str, &str),
    stale_after_secs: u64,
    reconnect_after_secs: u64,
) -> Vec<String> {
    let mut p = Vec::new();
    for (field, url, schemes) in [
        ("rest_url", rest_url, ["http://", "https://"]),
        ("ws_url", ws_url, ["ws://", "wss://"]),
    ] {
        if !schemes.iter().any(|s| url.starts_with(s)) {
            p.push(format!(
                "venues.{venue}.{field}: {url:?} must start with {} or {}",
                schemes[0], schemes[1]
            ));
        }
    }
    if stale_after_secs == 0 {
        p.push(format!(
            "venues.{venue}.stale_after_secs: must be at least 1"
        ));
    }
    if reconnect_after_secs == 0 || reconnect_after_secs > 24 * 3600 {
        p.push(format!(
            "venues.{venue}.reconnect_after_secs: between 1 and 86400 (24 hours)"
        ));
    }
    p
}

/// One venue's protocol: REST for validation, backfill and server time; the WebSocket URL,
/// subscription messages and frame parser. Its state (a symbol map, candles still forming)
/// lives in the value; [`LiveSource`] owns it.
#[async_trait]
pub trait Venue: Send + Sync + 'static {
    /// `binance`, `coinbase`, `kraken`: the source's name and its events' source.
    fn name(&self) -> &'static str;

    /// Checks the configured instruments with the venue and learns how to map its symbols;
    /// returns each instrument with the venue's symbol for it. An unknown instrument is a
    /// [`SourceError::Usage`] naming it; an unreachable venue a transient
    /// [`SourceError::Venue`].
    async fn instruments(&mut self) -> Result<Vec<(InstrumentId, String)>, SourceError>;

    /// The subscriptions at start (venue notation, for example `btcusdt@kline_1m`).
    fn initial_subscriptions(&self) -> Vec<String>;

    /// The URL to connect to with `subs` active.
    fn ws_url(&self, subs: &[String]) -> String;

    /// Frames to send right after connecting (subscriptions for venues that subscribe by
    /// message).
    fn on_connect(&mut self, subs: &[String]) -> Vec<String>;

    /// Frames that add (`add`) or remove subscriptions on an open connection.
    fn change(&mut self, subs: &[String], add: bool) -> Vec<String>;

    /// Parses one text frame into events (appended to `out` with their event times).
    fn parse(&mut self, frame: &str, out: &mut Vec<(UnixNanos, Event)>) -> Result<(), String>;

    /// The candle series to keep complete: each instrument on these timeframes.
    fn timeframes(&self) -> Vec<Timeframe>;

    /// Closed candles of `instrument` (venue symbol `symbol`) on `tf` opening in
    /// `[from, to)`, oldest first, as many requests as it takes.
    async fn candles(
        &self,
        symbol: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError>;

    /// The venue's clock: `(sent, received, server time)`.
    async fn server_time(&self) -> Result<(UnixNanos, UnixNanos, UnixNanos), SourceError>;

    /// Events to publish after every connect, from REST (Binance's 24-hour statistics); none by
    /// default. A failure is logged and counted, not fatal.
    async fn snapshot(&self) -> Result<Vec<(UnixNanos, Event)>, SourceError> {
        Ok(Vec::new())
    }

    /// Timing settings.
    fn timing(&self) -> Timing;

    /// REST requests sent and refused (429/418) so far.
    async fn request_counts(&self) -> (u64, u64);
}

enum Control {
    Change(Vec<String>, bool),
}

/// Changes a running [`LiveSource`]'s subscriptions (venue notation). The change is sent on
/// the open connection and kept for every later one.
#[derive(Clone, Debug)]
pub struct LiveControl(mpsc::UnboundedSender<Control>);

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Control::Change(s, add) = self;
        write!(f, "Change({s:?}, {add})")
    }
}

impl LiveControl {
    /// Adds subscriptions; `false` once the source has stopped.
    pub fn subscribe(&self, subs: Vec<String>) -> bool {
        self.0.send(Control::Change(subs, true)).is_ok()
    }

    /// Removes subscriptions; `false` once the source has stopped.
    pub fn unsubscribe(&self, subs: Vec<String>) -> bool {
        self.0.send(Control::Change(subs, false)).is_ok()
    }
}

/// A venue's live collector.
pub struct LiveSource<V: Venue> {
    venue: V,
    /// `None` once every [`LiveControl`] is dropped.
    control: Option<mpsc::UnboundedReceiver<Control>>,
    resume: Vec<(InstrumentId, Timeframe, UnixNanos)>,
    seed: u64,
}

impl<V: Venue> std::fmt::Debug for LiveSource<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("venue", &self.venue.name())
            .finish()
    }
}

impl<V: Venue> LiveSource<V> {
    /// A source for `venue`, with a handle to change its subscriptions while it runs.
    pub fn new(venue: V) -> (Self, LiveControl) {
        let (tx, rx) = mpsc::unbounded_channel();
        let seed = venue
            .name()
            .bytes()
            .fold(0x5eed_u64, |h, b| h.rotate_left(7) ^ u64::from(b));
        (
            Self {
                venue,
                control: Some(rx),
                resume: Vec::new(),
                seed,
            },
            LiveControl(tx),
        )
    }

    /// Continues series after the candles already stored: `(instrument, timeframe, open time
    /// of the last stored candle)`. The gap up to now is backfilled at the first connect.
    pub fn resuming(mut self, last: Vec<(InstrumentId, Timeframe, UnixNanos)>) -> Self {
        self.resume = last;
        self
    }

    /// The venue.
    pub fn venue(&self) -> &V {
        &self.venue
    }

    /// The venue, without the source.
    pub fn into_venue(self) -> V {
        self.venue
    }
}

/// Why a connection ended.
enum End {
    Cancelled,
    Lost(String),
}

type Key = (InstrumentId, Timeframe);

/// What one source keeps across connections.
struct State {
    /// Instrument → venue symbol, for REST.
    rest_symbol: HashMap<InstrumentId, String>,
    gaps: CandleGaps<Key>,
    trades: TradeSequencer<InstrumentId, (UnixNanos, Event)>,
    seq: u64,
    src: Symbol,
    skew: ClockSkew,
    malformed: u64,
    parsed: Vec<(UnixNanos, Event)>,
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
    async fn backfill<V: Venue>(
        &mut self,
        ctx: &SourceContext,
        venue: &V,
        key: Key,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<usize, SourceError> {
        let (inst, tf) = key;
        let Some(symbol) = self.rest_symbol.get(&inst).cloned() else {
            return Ok(0);
        };
        let candles = venue.candles(&symbol, inst, tf, from, to).await?;
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
            tracing::info!(venue = venue.name(), instrument = %inst, timeframe = %tf, candles = n, "backfilled missing candles over REST");
        }
        Ok(n)
    }

    /// After a (re)connect: backfills every series from its last candle to now.
    async fn backfill_all<V: Venue>(
        &mut self,
        ctx: &SourceContext,
        venue: &V,
    ) -> Result<(), SourceError> {
        let now = LiveClock.now() + self.skew.offset().unwrap_or(0);
        let tfs = venue.timeframes();
        let keys: Vec<Key> = self
            .rest_symbol
            .keys()
            .flat_map(|i| tfs.iter().map(move |tf| (*i, *tf)))
            .collect();
        for key in keys {
            if let Some((from, to)) = self.gaps.missing(key, now, key.1.nanos()) {
                self.backfill(ctx, venue, key, from, to).await?;
            }
        }
        Ok(())
    }

    /// Handles one text frame.
    async fn on_frame<V: Venue>(
        &mut self,
        ctx: &SourceContext,
        venue: &mut V,
        frame: &str,
    ) -> Result<(), SourceError> {
        let mut parsed = std::mem::take(&mut self.parsed);
        parsed.clear();
        if let Err(e) = venue.parse(frame, &mut parsed) {
            self.malformed += 1;
            if self.malformed <= 10 || self.malformed.is_power_of_two() {
                tracing::warn!(venue = venue.name(), error = %e, malformed = self.malformed, "malformed frame skipped");
            }
            ctx.health.record_error(format!("malformed frame: {e}"));
        }
        let mut result = Ok(());
        for (ts, ev) in parsed.drain(..) {
            result = match ev {
                Event::Trade(t) => {
                    self.trades.push(
                        t.instrument(),
                        t.id(),
                        ts,
                        LiveClock.now(),
                        (ts, Event::Trade(t)),
                    );
                    self.release_trades(ctx).await
                }
                Event::Candle(c) => self.on_candle(ctx, venue, ts, c).await,
                ev => self.publish(ctx, ts, ev).await,
            };
            if result.is_err() {
                break;
            }
        }
        self.parsed = parsed;
        result
    }

    async fn on_candle<V: Venue>(
        &mut self,
        ctx: &SourceContext,
        venue: &V,
        ts: UnixNanos,
        c: Candle,
    ) -> Result<(), SourceError> {
        let key = (c.instrument(), c.timeframe());
        match self.gaps.check(key, c.open_time(), c.timeframe().nanos()) {
            CandleCheck::Next => self.publish(ctx, ts, Event::Candle(c)).await,
            CandleCheck::Duplicate => Ok(()),
            CandleCheck::Gap { from, to } => {
                tracing::warn!(venue = venue.name(), instrument = %key.0, timeframe = %key.1, missing = (to - from) / key.1.nanos(), "a hole in the candle stream; backfilling");
                // On failure the session ends; the reconnect backfills from the last candle
                // published, this one included.
                self.backfill(ctx, venue, key, from, to).await?;
                self.gaps.filled(key, c.open_time());
                self.publish(ctx, ts, Event::Candle(c)).await
            }
        }
    }
}

#[async_trait]
impl<V: Venue> Source for LiveSource<V> {
    fn name(&self) -> &str {
        self.venue.name()
    }

    async fn run(mut self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let name = self.venue.name();
        ctx.health.set_state(SourceState::Starting);
        let mut backoff = Backoff::default_with_seed(self.seed);
        // Validate the instruments; an unknown one is fatal, an unreachable venue is not.
        let instruments = loop {
            match self.venue.instruments().await {
                Ok(i) => break i,
                Err(
                    e @ SourceError::Venue {
                        transient: true, ..
                    },
                ) => {
                    let d = Duration::from_nanos(backoff.next_delay().max(0) as u64);
                    tracing::warn!(venue = name, error = %e, retry_in = ?d, "venue unreachable; will keep retrying");
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
        let timing = self.venue.timing();
        let mut state = State {
            rest_symbol: instruments.into_iter().collect(),
            gaps: CandleGaps::new(),
            trades: TradeSequencer::new(timing.trade_hold.as_nanos() as i64, 100_000),
            seq: 0,
            src: Symbol::new(name).map_err(SourceError::Model)?,
            skew: ClockSkew::default(),
            malformed: 0,
            parsed: Vec::new(),
        };
        for (i, tf, t) in std::mem::take(&mut self.resume) {
            if state.rest_symbol.contains_key(&i) {
                state.gaps.resume((i, tf), t);
            }
        }
        let mut subs = self.venue.initial_subscriptions();
        let tls = tls_config();
        loop {
            // The venue's clock, for lag and for which candles have closed.
            match self.venue.server_time().await {
                Ok((sent, received, server)) => {
                    state.skew.record(sent, received, server);
                    if let Some(o) = state.skew.offset() {
                        ctx.health.set_clock_skew_ms(o / MS);
                    }
                }
                Err(e) => tracing::debug!(venue = name, error = %e, "server time unavailable"),
            }
            let url = self.venue.ws_url(&subs);
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
                    tracing::info!(venue = name, subscriptions = subs.len(), "connected");
                    let started = Instant::now();
                    let mut end = None;
                    for f in self.venue.on_connect(&subs) {
                        if let Err(e) = ws.send(Message::Text(f.into())).await {
                            end = Some(End::Lost(format!("subscribing: {e}")));
                            break;
                        }
                    }
                    // Backfill while the live frames queue up behind it.
                    let end = match end {
                        Some(e) => e,
                        None => match state.backfill_all(&ctx, &self.venue).await {
                            Err(SourceError::Bus(e)) => return Err(SourceError::Bus(e)),
                            Err(e) => End::Lost(format!("backfill failed: {e}")),
                            Ok(()) => {
                                match self.venue.snapshot().await {
                                    Ok(events) => {
                                        for (ts, ev) in events {
                                            state.publish(&ctx, ts, ev).await?;
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(venue = name, error = %e, "snapshot over REST failed");
                                        ctx.health.record_error(format!("snapshot: {e}"));
                                    }
                                }
                                ctx.health.set_state(SourceState::Running);
                                self.session(&ctx, &mut state, &mut ws, &mut subs, timing)
                                    .await?
                            }
                        },
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
                    tracing::warn!(venue = name, reason = %why, retry_in = ?d, "connection lost; reconnecting");
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

impl<V: Venue> LiveSource<V> {
    /// Reads one connection until it ends. Errors only when the bus closed.
    async fn session<S>(
        &mut self,
        ctx: &SourceContext,
        state: &mut State,
        ws: &mut tokio_tungstenite::WebSocketStream<S>,
        subs: &mut Vec<String>,
        timing: Timing,
    ) -> Result<End, SourceError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let stale_ns = i64::try_from(timing.stale_after.as_nanos()).unwrap_or(i64::MAX);
        let mut watchdog = Watchdog::new(stale_ns, LiveClock.now());
        let mut tick = tokio::time::interval(
            (timing.trade_hold / 2).clamp(Duration::from_millis(20), Duration::from_secs(1)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew = tokio::time::sleep(timing.reconnect_after);
        tokio::pin!(renew);
        loop {
            tokio::select! {
                () = ctx.cancel.cancelled() => return Ok(End::Cancelled),
                () = &mut renew => {
                    tracing::info!(venue = self.venue.name(), "renewing the connection before the venue's time limit");
                    return Ok(End::Lost("renewed before the connection time limit".into()));
                }
                cmd = async {
                    match self.control.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let Some(Control::Change(list, add)) = cmd else {
                        self.control = None;
                        continue;
                    };
                    if add {
                        for s in &list {
                            if !subs.contains(s) {
                                subs.push(s.clone());
                            }
                        }
                    } else {
                        subs.retain(|s| !list.contains(s));
                    }
                    for f in self.venue.change(&list, add) {
                        if let Err(e) = ws.send(Message::Text(f.into())).await {
                            return Ok(End::Lost(format!("changing subscriptions: {e}")));
                        }
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
                            match state.on_frame(ctx, &mut self.venue, t.as_str()).await {
                                Ok(()) => {}
                                Err(SourceError::Bus(e)) => return Err(SourceError::Bus(e)),
                                Err(e) => return Ok(End::Lost(e.to_string())),
                            }
                        }
                        Some(Ok(Message::Ping(p))) => {
                            watchdog.feed(now);
                            // Venues drop a connection whose pongs stop.
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
