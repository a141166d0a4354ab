//! A fake Coinbase Advanced Trade public REST API on `127.0.0.1:0`: `GET /market/products/{id}`
//! (404 `NOT_FOUND` for an unknown one) and `GET /market/products/{id}/candles` (`start`/`end` in
//! UNIX seconds, a granularity name, more than 350 bars refused with the documented 400, rows
//! newest first with string fields), and a scripted 429.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;

use crate::fake_http::Served;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::fake_binance::Listing;

#[derive(Default)]
struct Inner {
    products: BTreeMap<String, Listing>,
    refuse: u32,
    requests: Vec<String>,
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
    let mut rows: Vec<Value> = l
        .bars
        .iter()
        .filter(|b| b.0 / 1000 >= start && b.0 / 1000 <= end)
        .map(|&(t, o, h, lo, c, v)| {
            json!({"start": (t / 1000).to_string(), "low": format!("{lo}"), "high": format!("{h}"),
                   "open": format!("{o}"), "close": format!("{c}"), "volume": format!("{v}")})
        })
        .collect();
    rows.reverse(); // newest first, as Coinbase answers
    axum::Json(json!({"candles": rows})).into_response()
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

    /// Every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|g| g.requests.clone())
            .unwrap_or_default()
    }
}
