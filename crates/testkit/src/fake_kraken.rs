//! A fake Kraken Spot on `127.0.0.1:0`.
//!
//! REST: `GET /0/public/OHLC` (`pair` in REST notation such as `XBTUSD`, `interval`, `since`;
//! at most the 720 most recent rows, the last one the bar still forming; rows
//! `[time, open, high, low, close, vwap, volume, count]` with strings for decimals; the result
//! keyed by Kraken's own pair name plus `last`; `EQuery:Unknown asset pair`), `GET
//! /0/public/Time`, and scripted `EAPI:Rate limit exceeded` answers.
//!
//! WebSocket v2 (`/v2`): acknowledges each `subscribe` per symbol, then plays a shared script of
//! [`KrStep`]s: `ohlc` updates with no closed flag (each bar half-formed, then final), trades,
//! heartbeats, raw frames, a dropped connection, a silence. Once bars are streamed, REST serves
//! only those closed so far.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::fake_binance::Listing;
use crate::fake_http::Served;

/// One step of the WebSocket script.
#[derive(Clone, Debug)]
pub enum KrStep {
    /// Bar `index` of `symbol` is forming: a half-formed update, then its final values.
    Ohlc {
        /// `BTC/USD`.
        symbol: String,
        /// Bar index.
        index: usize,
    },
    /// A trade.
    Trade {
        /// `BTC/USD`.
        symbol: String,
        /// Trade id.
        id: u64,
        /// Trade time, ms.
        time_ms: i64,
    },
    /// A heartbeat.
    Heartbeat,
    /// A frame sent as it is.
    Raw(String),
    /// Bars of `symbol` before `closed` have closed, without a message.
    Advance {
        /// `BTC/USD`.
        symbol: String,
        /// Bars closed.
        closed: usize,
    },
    /// Drops the connection without a close frame.
    Drop,
    /// Sends nothing for this long.
    Silence(Duration),
}

#[derive(Default)]
struct Inner {
    /// v2 symbol → history.
    listings: BTreeMap<String, Listing>,
    closed: HashMap<String, usize>,
    steps: VecDeque<KrStep>,
    generation: u64,
    requests: Vec<String>,
    client_frames: Vec<String>,
    refuse: u32,
    shift_s: i64,
}

type Shared = Arc<Mutex<Inner>>;

/// The running fake; stops when dropped.
pub struct FakeKraken {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Shared,
    _server: Served,
}

impl std::fmt::Debug for FakeKraken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKraken")
            .field("addr", &self.addr)
            .finish()
    }
}

fn rest_name(symbol: &str) -> String {
    let (b, q) = symbol.split_once('/').unwrap_or((symbol, ""));
    let fix = |a: &str| {
        if a == "BTC" {
            "XBT".to_owned()
        } else {
            a.to_owned()
        }
    };
    format!("{}{}", fix(b), fix(q))
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn answer(inner: &Shared, what: String) -> Option<Response> {
    let mut g = inner.lock().ok()?;
    g.requests.push(what);
    if g.refuse > 0 {
        g.refuse -= 1;
        return Some(axum::Json(json!({"error": ["EAPI:Rate limit exceeded"]})).into_response());
    }
    None
}

async fn ohlc(State(inner): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = answer(&inner, format!("OHLC {q:?}")) {
        return r;
    }
    let pair = q.get("pair").cloned().unwrap_or_default();
    let since = q
        .get("since")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let (listing, closed) = {
        let Ok(g) = inner.lock() else {
            return axum::Json(json!({"error": ["EGeneral:Internal error"]})).into_response();
        };
        let found = g
            .listings
            .iter()
            .find(|(s, _)| rest_name(s) == pair)
            .map(|(s, l)| (l.clone(), g.closed.get(s).copied()));
        match found {
            Some(x) => x,
            None => {
                return axum::Json(json!({"error": ["EQuery:Unknown asset pair"]})).into_response();
            }
        }
    };
    // Closed bars, then the one forming (always present).
    let end = closed.map_or(listing.bars.len(), |c| (c + 1).min(listing.bars.len()));
    let rows: Vec<Value> = listing.bars[..end]
        .iter()
        .filter(|b| b.0 / 1000 > since)
        .map(|&(t, o, h, l, c, v)| {
            json!([
                t / 1000,
                format!("{o}"),
                format!("{h}"),
                format!("{l}"),
                format!("{c}"),
                format!("{}", (h + l + c) / 3.0),
                format!("{v}"),
                7
            ])
        })
        .collect();
    let rows = rows[rows.len().saturating_sub(720)..].to_vec();
    let last = rows.last().and_then(|r| r[0].as_i64()).unwrap_or(since);
    let mut result = serde_json::Map::new();
    result.insert(format!("X{pair}"), Value::Array(rows));
    result.insert("last".into(), last.into());
    axum::Json(json!({"error": [], "result": result})).into_response()
}

async fn time(State(inner): State<Shared>) -> Response {
    if let Some(r) = answer(&inner, "Time".into()) {
        return r;
    }
    let shift = inner.lock().map_or(0, |g| g.shift_s);
    axum::Json(json!({"error": [], "result": {"unixtime": now_s() + shift, "rfc1123": ""}}))
        .into_response()
}

async fn ws(ws: WebSocketUpgrade, State(inner): State<Shared>) -> Response {
    let generation = inner.lock().map_or(0, |mut g| {
        g.generation += 1;
        g.generation
    });
    ws.on_upgrade(move |socket| play(socket, inner, generation))
}

async fn play(mut socket: WebSocket, inner: Shared, generation: u64) {
    let mut quiet_until: Option<Instant> = None;
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    let text = t.to_string();
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if let Ok(mut g) = inner.lock() {
                        g.client_frames.push(text);
                    }
                    let symbols: Vec<Value> = v["params"]["symbol"].as_array().cloned().unwrap_or_default();
                    for s in symbols {
                        let ack = json!({"method": v["method"], "result": {"channel": v["params"]["channel"], "symbol": s},
                            "success": true, "time_in": "2026-11-24T00:00:00.000000Z", "time_out": "2026-11-24T00:00:00.000100Z",
                            "req_id": v["req_id"]});
                        if socket.send(Message::Text(ack.to_string().into())).await.is_err() {
                            return;
                        }
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
                        KrStep::Ohlc { symbol, index } => {
                            let e = g.closed.entry(symbol.clone()).or_insert(0);
                            *e = (*e).max(*index);
                            if let Some(l) = g.listings.get(symbol)
                                && let Some(&(t, o, h, lo, c, v)) = l.bars.get(*index)
                            {
                                let minutes = l.step_ms / 60_000;
                                for (hh, ll, cc, vv) in [(o.max(c), o.min(c), (o + c) / 2.0, v / 2.0), (h, lo, c, v)] {
                                    frames.push(json!({"channel": "ohlc", "type": "update", "timestamp": crate::rfc3339(t + l.step_ms / 2, 9),
                                        "data": [{"symbol": symbol, "open": o, "high": hh, "low": ll, "close": cc, "trades": 7,
                                        "volume": vv, "vwap": cc, "interval_begin": crate::rfc3339(t, 9), "interval": minutes,
                                        "timestamp": crate::rfc3339(t + l.step_ms, 9)}]}).to_string());
                                }
                            }
                        }
                        KrStep::Trade { symbol, id, time_ms } => frames.push(json!({"channel": "trade", "type": "update",
                            "data": [{"symbol": symbol, "side": if id % 2 == 0 { "sell" } else { "buy" }, "price": 100.0 + *id as f64,
                            "qty": 0.5, "ord_type": "limit", "trade_id": id, "timestamp": crate::rfc3339(*time_ms, 9)}]}).to_string()),
                        KrStep::Heartbeat => frames.push(json!({"channel": "heartbeat"}).to_string()),
                        KrStep::Raw(r) => frames.push(r.clone()),
                        KrStep::Advance { symbol, closed } => {
                            let e = g.closed.entry(symbol.clone()).or_insert(0);
                            *e = (*e).max(*closed);
                        }
                        KrStep::Drop | KrStep::Silence(_) => {}
                    }
                    (step, frames)
                };
                match step {
                    KrStep::Drop => return,
                    KrStep::Silence(d) => quiet_until = Some(Instant::now() + d),
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

impl FakeKraken {
    /// Starts a fake listing `listings` (v2 symbol such as `BTC/USD` → history).
    pub async fn start(listings: BTreeMap<String, Listing>) -> std::io::Result<Self> {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            listings,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/0/public/OHLC", get(ohlc))
            .route("/0/public/Time", get(time))
            .route("/v2", get(ws))
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

    /// `ws://127.0.0.1:PORT/v2`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v2", self.addr)
    }

    /// Appends steps to the WebSocket script.
    pub fn play(&self, steps: impl IntoIterator<Item = KrStep>) {
        if let Ok(mut g) = self.inner.lock() {
            g.steps.extend(steps);
        }
    }

    /// The next `n` REST answers are `EAPI:Rate limit exceeded`.
    pub fn refuse_next(&self, n: u32) {
        if let Ok(mut g) = self.inner.lock() {
            g.refuse += n;
        }
    }

    /// Shifts the server clock by `s` seconds.
    pub fn shift_server_time(&self, s: i64) {
        if let Ok(mut g) = self.inner.lock() {
            g.shift_s = s;
        }
    }

    /// WebSocket connections so far.
    pub fn connections(&self) -> u64 {
        self.inner.lock().map_or(0, |g| g.generation)
    }

    /// Every REST request so far.
    pub fn requests(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.requests.clone())
            .unwrap_or_default()
    }

    /// Every text frame clients sent.
    pub fn client_frames(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.client_frames.clone())
            .unwrap_or_default()
    }
}
