//! A fake Coinbase Advanced Trade on `127.0.0.1:0`.
//!
//! Public REST: `GET /market/products/{id}` (404 `NOT_FOUND` for an unknown one),
//! `GET /market/products/{id}/candles` (`start`/`end` in UNIX seconds, a granularity name, more
//! than 350 bars refused with the documented 400, rows newest first with string fields),
//! `GET /time`, and a scripted 429.
//!
//! WebSocket (`/ws`): records each `subscribe` (one channel per message, as Coinbase requires)
//! and answers with a `subscriptions` message, then plays a shared script of [`CbStep`]s in the
//! documented envelope (`channel`, `client_id`, `timestamp`, `sequence_num`, `events[]`):
//! five-minute `candles` updates (each bucket first half-formed, then final; no closed flag),
//! `market_trades`, `heartbeats`, raw frames, a skipped sequence number, a dropped connection,
//! a silence. Once candles are streamed, REST serves only the buckets closed so far.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};

use crate::fake_http::Served;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::fake_binance::Listing;

/// One step of the WebSocket script.
#[derive(Clone, Debug)]
pub enum CbStep {
    /// Bucket `index` of `product` is forming: a half-formed update, then its final values
    /// (every bucket before it has closed).
    Candle {
        /// `BTC-USD`.
        product: String,
        /// Bar index in the listing.
        index: usize,
    },
    /// A `market_trades` message with one trade.
    Trade {
        /// `BTC-USD`.
        product: String,
        /// Trade id.
        id: u64,
        /// Trade time, ms.
        time_ms: i64,
        /// Price.
        price: f64,
    },
    /// A `heartbeats` message.
    Heartbeat,
    /// A frame sent as it is.
    Raw(String),
    /// The next message's `sequence_num` skips this many.
    SkipSequence(u64),
    /// Buckets of `product` before `closed` have closed, without a message.
    Advance {
        /// `BTC-USD`.
        product: String,
        /// Buckets closed.
        closed: usize,
    },
    /// Drops the connection without a close frame.
    Drop,
    /// Sends nothing for this long.
    Silence(Duration),
}

#[derive(Default)]
struct Inner {
    products: BTreeMap<String, Listing>,
    refuse: u32,
    requests: Vec<String>,
    closed: HashMap<String, usize>,
    steps: VecDeque<CbStep>,
    generation: u64,
    client_frames: Vec<String>,
    server_shift_ms: i64,
}

type Shared = Arc<Mutex<Inner>>;

/// The running fake; stops when dropped.
pub struct FakeCoinbase {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Shared,
    _server: Served,
}

impl std::fmt::Debug for FakeCoinbase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCoinbase")
            .field("addr", &self.addr)
            .finish()
    }
}

fn refused(inner: &Shared) -> Option<Response> {
    let mut g = inner.lock().ok()?;
    if g.refuse == 0 {
        return None;
    }
    g.refuse -= 1;
    Some(
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"})),
        )
            .into_response(),
    )
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "NOT_FOUND", "error_details": "ProductID is invalid", "message": "ProductID is invalid"})),
    )
        .into_response()
}

async fn product(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    if let Ok(mut g) = inner.lock() {
        g.requests.push(format!("product {id}"));
    }
    if let Some(r) = refused(&inner) {
        return r;
    }
    let Some(l) = inner.lock().ok().and_then(|g| g.products.get(&id).cloned()) else {
        return not_found();
    };
    axum::Json(json!({"product_id": id, "price": "1", "base_currency_id": l.base, "quote_currency_id": l.quote,
        "base_display_symbol": l.base, "quote_display_symbol": l.quote, "status": "online", "product_type": "SPOT",
        "trading_disabled": false}))
        .into_response()
}

async fn candles(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Ok(mut g) = inner.lock() {
        g.requests.push(format!("candles {id} {q:?}"));
    }
    if let Some(r) = refused(&inner) {
        return r;
    }
    let Some(l) = inner.lock().ok().and_then(|g| g.products.get(&id).cloned()) else {
        return not_found();
    };
    let n = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(start), Some(end)) = (n("start"), n("end")) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": "INVALID_ARGUMENT", "message": "start and end are required"}),
            ),
        )
            .into_response();
    };
    let step_s = l.step_ms / 1000;
    if (end - start) / step_s.max(1) >= 350 {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "INVALID_ARGUMENT", "error_details": "start and end argument is invalid - number of candles requested should be less than 350", "message": "start and end argument is invalid - number of candles requested should be less than 350"})),
        )
            .into_response();
    }
    let closed = inner
        .lock()
        .ok()
        .and_then(|g| g.closed.get(&id).copied())
        .unwrap_or(usize::MAX);
    let mut rows: Vec<Value> = l
        .bars
        .iter()
        .take(closed)
        .filter(|b| b.0 / 1000 >= start && b.0 / 1000 <= end)
        .map(|&(t, o, h, lo, c, v)| {
            json!({"start": (t / 1000).to_string(), "low": format!("{lo}"), "high": format!("{h}"),
                   "open": format!("{o}"), "close": format!("{c}"), "volume": format!("{v}")})
        })
        .collect();
    rows.reverse(); // newest first, as Coinbase answers
    axum::Json(json!({"candles": rows})).into_response()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn time(State(inner): State<Shared>) -> Response {
    let shift = inner.lock().map_or(0, |mut g| {
        g.requests.push("time".into());
        g.server_shift_ms
    });
    if let Some(r) = refused(&inner) {
        return r;
    }
    let ms = now_ms() + shift;
    axum::Json(json!({"iso": crate::rfc3339(ms, 6), "epochSeconds": (ms / 1000).to_string(), "epochMillis": ms.to_string()}))
        .into_response()
}

async fn ws(ws: WebSocketUpgrade, State(inner): State<Shared>) -> Response {
    let generation = inner.lock().map_or(0, |mut g| {
        g.generation += 1;
        g.generation
    });
    ws.on_upgrade(move |socket| play(socket, inner, generation))
}

fn envelope(channel: &str, seq: u64, events: Value) -> String {
    json!({"channel": channel, "client_id": "", "timestamp": crate::rfc3339(now_ms(), 6), "sequence_num": seq, "events": events})
        .to_string()
}

/// Plays the shared script on one connection.
async fn play(mut socket: WebSocket, inner: Shared, generation: u64) {
    let mut quiet_until: Option<Instant> = None;
    let mut seq = 0u64;
    let mut subscribed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    let text = t.to_string();
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if let Ok(mut g) = inner.lock() {
                        g.client_frames.push(text);
                    }
                    let ch = v["channel"].as_str().unwrap_or("").to_owned();
                    let products: Vec<String> = v["product_ids"].as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(String::from)).collect()).unwrap_or_default();
                    if v["type"] == "subscribe" {
                        subscribed.entry(ch).or_default().extend(products);
                    } else if v["type"] == "unsubscribe" {
                        subscribed.remove(&ch);
                    }
                    let msg = envelope("subscriptions", seq, json!([{"subscriptions": subscribed}]));
                    seq += 1;
                    if socket.send(Message::Text(msg.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            () = tokio::time::sleep(Duration::from_millis(2)) => {
                if quiet_until.is_some_and(|q| Instant::now() < q) {
                    continue;
                }
                let (step, frames) = {
                    let Ok(mut g) = inner.lock() else { return };
                    if g.generation != generation {
                        return;
                    }
                    let Some(step) = g.steps.pop_front() else { continue };
                    let mut frames = Vec::new();
                    match &step {
                        CbStep::Candle { product, index } => {
                            let e = g.closed.entry(product.clone()).or_insert(0);
                            *e = (*e).max(*index);
                            if let Some(&(t, o, h, lo, c, v)) = g.products.get(product).and_then(|l| l.bars.get(*index)) {
                                for (hh, ll, cc, vv) in [(o.max(c), o.min(c), (o + c) / 2.0, v / 2.0), (h, lo, c, v)] {
                                    frames.push(envelope("candles", seq, json!([{"type": "update", "candles": [{
                                        "start": (t / 1000).to_string(), "high": format!("{hh}"), "low": format!("{ll}"),
                                        "open": format!("{o}"), "close": format!("{cc}"), "volume": format!("{vv}"),
                                        "product_id": product}]}])));
                                    seq += 1;
                                }
                            }
                        }
                        CbStep::Trade { product, id, time_ms, price } => {
                            frames.push(envelope("market_trades", seq, json!([{"type": "update", "trades": [{
                                "trade_id": id.to_string(), "product_id": product, "price": format!("{price:.2}"),
                                "size": "0.50000000", "side": if id % 2 == 0 { "SELL" } else { "BUY" },
                                "time": crate::rfc3339(*time_ms, 6)}]}])));
                            seq += 1;
                        }
                        CbStep::Heartbeat => {
                            frames.push(envelope("heartbeats", seq, json!([{"current_time": crate::rfc3339(now_ms(), 6), "heartbeat_counter": seq}])));
                            seq += 1;
                        }
                        CbStep::Raw(r) => frames.push(r.clone()),
                        CbStep::SkipSequence(n) => seq += n,
                        CbStep::Advance { product, closed } => {
                            let e = g.closed.entry(product.clone()).or_insert(0);
                            *e = (*e).max(*closed);
                        }
                        CbStep::Drop | CbStep::Silence(_) => {}
                    }
                    (step, frames)
                };
                match step {
                    CbStep::Drop => return,
                    CbStep::Silence(d) => quiet_until = Some(Instant::now() + d),
                    _ => {
                        for f in frames {
                            if socket.send(Message::Text(f.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl FakeCoinbase {
    /// Starts a fake listing `products` (product id → history).
    pub async fn start(products: BTreeMap<String, Listing>) -> std::io::Result<Self> {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            products,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/market/products/{id}", get(product))
            .route("/market/products/{id}/candles", get(candles))
            .route("/time", get(time))
            .route("/ws", get(ws))
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

    /// The next `n` answers are 429.
    pub fn refuse_next(&self, n: u32) {
        if let Ok(mut g) = self.inner.lock() {
            g.refuse += n;
        }
    }

    /// `ws://127.0.0.1:PORT/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Appends steps to the WebSocket script.
    pub fn play(&self, steps: impl IntoIterator<Item = CbStep>) {
        if let Ok(mut g) = self.inner.lock() {
            g.steps.extend(steps);
        }
    }

    /// Steps not yet played.
    pub fn steps_left(&self) -> usize {
        self.inner.lock().map_or(0, |g| g.steps.len())
    }

    /// WebSocket connections so far.
    pub fn connections(&self) -> u64 {
        self.inner.lock().map_or(0, |g| g.generation)
    }

    /// Every text frame clients sent.
    pub fn client_frames(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.client_frames.clone())
            .unwrap_or_default()
    }

    /// Shifts the server clock (`GET /time`) by `ms`.
    pub fn shift_server_time(&self, ms: i64) {
        if let Ok(mut g) = self.inner.lock() {
            g.server_shift_ms = ms;
        }
    }

    /// Buckets of `product` before `closed` have closed (what REST serves).
    pub fn set_closed(&self, product: &str, closed: usize) {
        if let Ok(mut g) = self.inner.lock() {
            g.closed.insert(product.to_owned(), closed);
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.requests.clone())
            .unwrap_or_default()
    }
}
