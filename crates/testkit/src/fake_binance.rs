//! A fake Binance Spot REST API on `127.0.0.1:0` with the documented shapes: `exchangeInfo`
//! (`symbol` or a JSON-array `symbols`; -1121 "Invalid symbol." for an unknown one) and
//! `klines` (12-element rows, strings for prices, `startTime`/`endTime`/`limit` ≤ 1000, the
//! still-forming candle last), `X-MBX-USED-WEIGHT-1M` on every answer, and scripted 429/418
//! answers with `Retry-After`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;

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

#[derive(Default)]
struct Inner {
    listings: BTreeMap<String, Listing>,
    script: VecDeque<(u16, u64)>,
    requests: Vec<String>,
    weight: u64,
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
        g.requests.push(what);
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
    let rows: Vec<Value> = listing
        .bars
        .iter()
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

    /// Every request so far (`klines {params}`), in order.
    pub fn requests(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.requests.clone())
            .unwrap_or_default()
    }
}
