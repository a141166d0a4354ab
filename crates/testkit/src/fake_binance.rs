//! A fake Binance Spot on `127.0.0.1:0` with the documented shapes.
//!
//! REST: `exchangeInfo` (`symbol` or a JSON-array `symbols`; -1121 "Invalid symbol." for an
//! unknown one), `klines` (12-element rows, strings for prices, `startTime`/`endTime`/`limit`
//! ≤ 1000, the still-forming candle last), `time` (a server clock that can be shifted),
//! `X-MBX-USED-WEIGHT-1M` on every answer, and scripted 429/418 answers with `Retry-After`.
//!
//! WebSocket: the combined-stream endpoint `/stream?streams=…`, which plays a shared script
//! of [`WsStep`]s: closed klines of the ground-truth bars, trades (repeats and disorder as
//! the test writes them), raw frames (malformed, truncated), pings, a dropped connection, a
//! silence. It answers `SUBSCRIBE`/`UNSUBSCRIBE` with `{"result":null,"id":…}` and records
//! every client frame and pong. A newer connection takes the script over from an older one.
//! Once a symbol's klines are streamed, REST serves only its bars closed so far.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};

use crate::fake_http::Served;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// One symbol's history: assets and `(open_ms, open, high, low, close, volume)` rows.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Base asset (`BTC`).
    pub base: String,
    /// Quote asset (`USDT`).
    pub quote: String,
    /// Bar length in milliseconds.
    pub step_ms: i64,
    /// The bars, oldest first.
    pub bars: Vec<(i64, f64, f64, f64, f64, f64)>,
}

/// One step of the WebSocket script.
#[derive(Clone, Debug)]
pub enum WsStep {
    /// The closed kline of bar `index` of `symbol` (it and every bar before it have closed).
    Kline {
        /// `BTCUSDT`.
        symbol: String,
        /// Bar index in the listing.
        index: usize,
    },
    /// A `trade` message.
    Trade {
        /// `BTCUSDT`.
        symbol: String,
        /// Trade id.
        id: u64,
        /// Trade time, ms.
        time_ms: i64,
        /// Price.
        price: f64,
    },
    /// A frame sent as it is (malformed, truncated, unknown …).
    Raw(String),
    /// Bars of `symbol` before `closed` have closed, without a message (time passing while
    /// no client listens).
    Advance {
        /// `BTCUSDT`.
        symbol: String,
        /// Bars closed.
        closed: usize,
    },
    /// Drops the connection without a close frame.
    Drop,
    /// Sends nothing for this long, keeping the connection open.
    Silence(Duration),
    /// A ping with this payload.
    Ping(Vec<u8>),
}

#[derive(Default)]
struct Inner {
    listings: BTreeMap<String, Listing>,
    script: VecDeque<(u16, u64)>,
    requests: Vec<String>,
    /// When each request arrived, with its weight.
    request_times: Vec<(Instant, u64)>,
    weight: u64,
    /// Bars closed so far per symbol, once its klines are streamed.
    closed: HashMap<String, usize>,
    server_shift_ms: i64,
    steps: VecDeque<WsStep>,
    generation: u64,
    connections: Vec<String>,
    client_frames: Vec<String>,
    pongs: Vec<Vec<u8>>,
    steps_sent: u64,
}

type Shared = Arc<Mutex<Inner>>;

/// The running fake; stops when dropped.
pub struct FakeBinance {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Shared,
    _server: Served,
}

impl std::fmt::Debug for FakeBinance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBinance")
            .field("addr", &self.addr)
            .finish()
    }
}

fn with_weight(inner: &Shared, cost: u64, status: StatusCode, body: Value) -> Response {
    let used = inner.lock().map_or(0, |mut g| {
        g.weight += cost;
        g.weight
    });
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&used.to_string()) {
        r.headers_mut().insert("x-mbx-used-weight-1m", v);
    }
    r
}

/// A scripted refusal, if one is queued.
fn scripted(inner: &Shared) -> Option<Response> {
    let (status, retry_after) = inner.lock().ok()?.script.pop_front()?;
    let body = if status == 429 {
        json!({"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."})
    } else {
        json!({"code": -1003, "msg": "Way too much request weight used; IP banned until later."})
    };
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
        axum::Json(body),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    Some(r)
}

fn record(inner: &Shared, what: String) {
    if let Ok(mut g) = inner.lock() {
        let w = if what.starts_with("klines") || what.starts_with("ticker24hr") {
            2
        } else if what.starts_with("time") {
            1
        } else {
            20
        };
        g.requests.push(what);
        g.request_times.push((Instant::now(), w));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn time(State(inner): State<Shared>) -> Response {
    record(&inner, "time".into());
    if let Some(r) = scripted(&inner) {
        return r;
    }
    let shift = inner.lock().map_or(0, |g| g.server_shift_ms);
    with_weight(
        &inner,
        1,
        StatusCode::OK,
        json!({"serverTime": now_ms() + shift}),
    )
}

/// `GET /api/v3/ticker/24hr?type=MINI&symbols=[…]`: rolling statistics over the last 1,440
/// closed bars of each listing.
async fn ticker_24h(
    State(inner): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    record(&inner, format!("ticker24hr {q:?}"));
    if let Some(r) = scripted(&inner) {
        return r;
    }
    let wanted: Vec<String> = q
        .get("symbols")
        .and_then(|l| serde_json::from_str(l).ok())
        .or_else(|| q.get("symbol").map(|s| vec![s.clone()]))
        .unwrap_or_default();
    let (listings, closed) = inner
        .lock()
        .map(|g| (g.listings.clone(), g.closed.clone()))
        .unwrap_or_default();
    let mut rows = Vec::new();
    for s in &wanted {
        let Some(l) = listings.get(s) else {
            return invalid_symbol(&inner);
        };
        let n = closed
            .get(s)
            .copied()
            .unwrap_or(l.bars.len())
            .min(l.bars.len());
        let bars = &l.bars[n.saturating_sub(1440)..n];
        let (Some(first), Some(last)) = (bars.first(), bars.last()) else {
            continue;
        };
        let high = bars.iter().map(|b| b.2).fold(f64::MIN, f64::max);
        let low = bars.iter().map(|b| b.3).fold(f64::MAX, f64::min);
        let vol: f64 = bars.iter().map(|b| b.5).sum();
        let quote: f64 = bars.iter().map(|b| b.5 * b.4).sum();
        rows.push(json!({"symbol": s, "openPrice": format!("{:.8}", first.1), "highPrice": format!("{high:.8}"),
            "lowPrice": format!("{low:.8}"), "lastPrice": format!("{:.8}", last.4), "volume": format!("{vol:.8}"),
            "quoteVolume": format!("{quote:.8}"), "openTime": first.0, "closeTime": last.0 + l.step_ms - 1,
            "firstId": 1, "lastId": 2, "count": 2}));
    }
    with_weight(&inner, 2, StatusCode::OK, Value::Array(rows))
}

async fn stream(
    ws: WebSocketUpgrade,
    State(inner): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let generation = inner.lock().map_or(0, |mut g| {
        g.generation += 1;
        g.connections
            .push(q.get("streams").cloned().unwrap_or_default());
        g.generation
    });
    ws.on_upgrade(move |socket| play(socket, inner, generation))
}

fn kline_frame(symbol: &str, l: &Listing, index: usize) -> Option<String> {
    let &(t, o, h, lo, c, v) = l.bars.get(index)?;
    let tf = match l.step_ms {
        60_000 => "1m",
        300_000 => "5m",
        900_000 => "15m",
        3_600_000 => "1h",
        14_400_000 => "4h",
        _ => "1d",
    };
    let lower = symbol.to_ascii_lowercase();
    Some(
        json!({
            "stream": format!("{lower}@kline_{tf}"),
            "data": {"e": "kline", "E": t + l.step_ms, "s": symbol, "k": {
                "t": t, "T": t + l.step_ms - 1, "s": symbol, "i": tf, "f": 100, "L": 200,
                "o": format!("{o:.8}"), "c": format!("{c:.8}"), "h": format!("{h:.8}"),
                "l": format!("{lo:.8}"), "v": format!("{v:.8}"), "n": 42, "x": true,
                "q": format!("{:.8}", v * c), "V": "0", "Q": "0", "B": "0"
            }}
        })
        .to_string(),
    )
}

/// Plays the shared script on one connection until it drops, the client leaves, or a newer
/// connection takes over.
async fn play(mut socket: WebSocket, inner: Shared, generation: u64) {
    let mut quiet_until: Option<Instant> = None;
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    let text = t.to_string();
                    let id = serde_json::from_str::<Value>(&text).ok().and_then(|v| v.get("id").cloned());
                    if let Ok(mut g) = inner.lock() {
                        g.client_frames.push(text);
                    }
                    if let Some(id) = id {
                        let ack = json!({"result": null, "id": id}).to_string();
                        if socket.send(Message::Text(ack.into())).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Pong(p))) => {
                    if let Ok(mut g) = inner.lock() {
                        g.pongs.push(p.to_vec());
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            () = tokio::time::sleep(Duration::from_millis(2)) => {
                if quiet_until.is_some_and(|q| Instant::now() < q) {
                    continue;
                }
                let (step, frame) = {
                    let Ok(mut g) = inner.lock() else { return };
                    if g.generation != generation {
                        return;
                    }
                    let Some(step) = g.steps.pop_front() else { continue };
                    g.steps_sent += 1;
                    let frame = match &step {
                        WsStep::Kline { symbol, index } => {
                            let e = g.closed.entry(symbol.clone()).or_insert(0);
                            *e = (*e).max(index + 1);
                            g.listings.get(symbol).and_then(|l| kline_frame(symbol, l, *index))
                        }
                        WsStep::Advance { symbol, closed } => {
                            let e = g.closed.entry(symbol.clone()).or_insert(0);
                            *e = (*e).max(*closed);
                            None
                        }
                        WsStep::Trade { symbol, id, time_ms, price } => Some(
                            json!({
                                "stream": format!("{}@trade", symbol.to_ascii_lowercase()),
                                "data": {"e": "trade", "E": time_ms + 1, "s": symbol, "t": id,
                                    "p": format!("{price:.8}"), "q": "0.50000000",
                                    "T": time_ms, "m": id % 2 == 0, "M": true}
                            })
                            .to_string(),
                        ),
                        WsStep::Raw(r) => Some(r.clone()),
                        _ => None,
                    };
                    (step, frame)
                };
                match step {
                    WsStep::Drop => return,
                    WsStep::Silence(d) => quiet_until = Some(Instant::now() + d),
                    WsStep::Ping(p) => {
                        if socket.send(Message::Ping(p.into())).await.is_err() {
                            return;
                        }
                    }
                    _ => {
                        if let Some(f) = frame
                            && socket.send(Message::Text(f.into())).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }
    }
}

fn invalid_symbol(inner: &Shared) -> Response {
    with_weight(
        inner,
        20,
        StatusCode::BAD_REQUEST,
        json!({"code": -1121, "msg": "Invalid symbol."}),
    )
}

async fn exchange_info(
    State(inner): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    record(&inner, format!("exchangeInfo {q:?}"));
    if let Some(r) = scripted(&inner) {
        return r;
    }
    let wanted: Vec<String> = match (q.get("symbol"), q.get("symbols")) {
        (Some(s), _) => vec![s.clone()],
        (None, Some(list)) => serde_json::from_str(list).unwrap_or_default(),
        (None, None) => inner
            .lock()
            .map(|g| g.listings.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let listings = inner.lock().map(|g| g.listings.clone()).unwrap_or_default();
    let mut symbols = Vec::new();
    for s in &wanted {
        let Some(l) = listings.get(s) else {
            return invalid_symbol(&inner);
        };
        symbols.push(json!({
            "symbol": s, "status": "TRADING", "baseAsset": l.base, "baseAssetPrecision": 8,
            "quoteAsset": l.quote, "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": true, "permissionSets": [["SPOT"]],
            "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"}]
        }));
    }
    with_weight(
        &inner,
        20,
        StatusCode::OK,
        json!({
            "timezone": "UTC", "serverTime": 0,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [], "symbols": symbols
        }),
    )
}

async fn klines(State(inner): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    record(&inner, format!("klines {q:?}"));
    if let Some(r) = scripted(&inner) {
        return r;
    }
    let Some(listing) = q
        .get("symbol")
        .and_then(|s| inner.lock().ok()?.listings.get(s).cloned())
    else {
        return invalid_symbol(&inner);
    };
    let n = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let start = n("startTime").unwrap_or(i64::MIN);
    let end = n("endTime").unwrap_or(i64::MAX);
    let limit = n("limit").unwrap_or(500).clamp(1, 1000) as usize;
    let closed = q
        .get("symbol")
        .and_then(|s| inner.lock().ok()?.closed.get(s).copied())
        .unwrap_or(usize::MAX);
    let rows: Vec<Value> = listing
        .bars
        .iter()
        .take(closed)
        .filter(|b| b.0 >= start && b.0 <= end)
        .take(limit)
        .map(|&(t, o, h, l, c, v)| {
            json!([
                t,
                format!("{o:.8}"),
                format!("{h:.8}"),
                format!("{l:.8}"),
                format!("{c:.8}"),
                format!("{v:.8}"),
                t + listing.step_ms - 1,
                format!("{:.8}", v * c),
                42,
                format!("{:.8}", v / 2.0),
                format!("{:.8}", v * c / 2.0),
                "0"
            ])
        })
        .collect();
    with_weight(&inner, 2, StatusCode::OK, Value::Array(rows))
}

impl FakeBinance {
    /// Starts a fake listing `listings` (symbol → history).
    pub async fn start(listings: BTreeMap<String, Listing>) -> std::io::Result<Self> {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            listings,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/v3/exchangeInfo", get(exchange_info))
            .route("/api/v3/klines", get(klines))
            .route("/api/v3/time", get(time))
            .route("/api/v3/ticker/24hr", get(ticker_24h))
            .route("/stream", get(stream))
            .with_state(inner.clone());
        let server = Served::start(app).await?;
        Ok(Self {
            addr: server.addr,
            inner,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next answer is `status` (429 or 418) with `Retry-After: retry_after_s`.
    pub fn refuse_next(&self, status: u16, retry_after_s: u64) {
        if let Ok(mut g) = self.inner.lock() {
            g.script.push_back((status, retry_after_s));
        }
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Appends steps to the WebSocket script.
    pub fn play(&self, steps: impl IntoIterator<Item = WsStep>) {
        if let Ok(mut g) = self.inner.lock() {
            g.steps.extend(steps);
        }
    }

    /// Steps of the script not yet played.
    pub fn steps_left(&self) -> usize {
        self.inner.lock().map_or(0, |g| g.steps.len())
    }

    /// Bars of `symbol` before `closed` have closed (what REST serves), as if time passed
    /// while no client was connected.
    pub fn set_closed(&self, symbol: &str, closed: usize) {
        if let Ok(mut g) = self.inner.lock() {
            g.closed.insert(symbol.to_owned(), closed);
        }
    }

    /// Shifts the server clock (`GET /api/v3/time`) by `ms`.
    pub fn shift_server_time(&self, ms: i64) {
        if let Ok(mut g) = self.inner.lock() {
            g.server_shift_ms = ms;
        }
    }

    /// The `streams` of every WebSocket connection so far, in order.
    pub fn connections(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.connections.clone())
            .unwrap_or_default()
    }

    /// Every text frame clients sent.
    pub fn client_frames(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.client_frames.clone())
            .unwrap_or_default()
    }

    /// Payloads of the pongs received.
    pub fn pongs(&self) -> Vec<Vec<u8>> {
        self.inner
            .lock()
            .map(|g| g.pongs.clone())
            .unwrap_or_default()
    }

    /// When each REST request arrived, with the weight Binance documents for it.
    pub fn request_times(&self) -> Vec<(Instant, u64)> {
        self.inner
            .lock()
            .map(|g| g.request_times.clone())
            .unwrap_or_default()
    }

    /// Every request so far (`klines {params}`), in order.
    pub fn requests(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.requests.clone())
            .unwrap_or_default()
    }
}
