//! A fake mempool.space API (`/api/...`) and Ethereum JSON-RPC node (`POST /rpc`) on one
//! loopback port, answering with the documented shapes (`../shared/PROTOCOLS.md` §9) from a
//! state the test changes between polls, with faults queued for the next request: 429 (with or
//! without `Retry-After`), 500, a malformed body, a JSON-RPC error.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Response, Uri};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::fake_http::Served;

/// What the fake chain reports.
#[derive(Clone, Debug)]
pub struct ChainState {
    /// fastest, half-hour, hour, economy, minimum fee rates (sat/vB).
    pub fees: [u64; 5],
    /// Mempool transaction count, virtual size (vB) and total fees (sat).
    pub mempool: [u64; 3],
    /// Current hash rate (H/s) and difficulty.
    pub hashrate: (f64, f64),
    /// Gas price in wei.
    pub gas_price_wei: u128,
    /// Latest block: number, base fee (wei), gas used, gas limit.
    pub block: (u64, u128, u64, u64),
    /// `totalSupply()` per contract address (lower case).
    pub supplies: BTreeMap<String, u128>,
}

impl Default for ChainState {
    fn default() -> Self {
        Self {
            fees: [12, 9, 7, 3, 1],
            mempool: [3169, 1_891_542, 20_317_481],
            hashrate: (2.520_332_473_552_123e20, 31_251_101_365_711.12),
            gas_price_wei: 1_000_000_000,
            block: (
                22_186_556,
                11_821_943_325,
                30_001_618,
                30_000_000 + 6_000_000,
            ),
            supplies: BTreeMap::new(),
        }
    }
}

/// A fault for the next request.
#[derive(Clone, Debug)]
pub enum ChainFault {
    /// HTTP 429, with `Retry-After` seconds when given.
    TooMany(Option<u64>),
    /// HTTP 500.
    ServerError,
    /// A 200 whose body is not JSON.
    Malformed,
    /// A JSON-RPC error object (for `/rpc`; a 500 elsewhere).
    RpcError(i64),
}

/// One request the fake saw.
#[derive(Clone, Debug)]
pub struct ChainRequest {
    /// When.
    pub at: Instant,
    /// `GET /api/mempool` or `POST /rpc eth_call`.
    pub what: String,
    /// The body (JSON-RPC requests).
    pub body: String,
}

#[derive(Clone, Default)]
struct Shared {
    state: Arc<Mutex<ChainState>>,
    faults: Arc<Mutex<VecDeque<(String, ChainFault)>>>,
    requests: Arc<Mutex<Vec<ChainRequest>>>,
}

impl Shared {
    fn record(&self, what: String, body: String) -> Option<ChainFault> {
        if let Ok(mut r) = self.requests.lock() {
            r.push(ChainRequest {
                at: Instant::now(),
                what: what.clone(),
                body,
            });
        }
        let mut faults = self.faults.lock().ok()?;
        let at = faults
            .iter()
            .position(|(p, _)| what.starts_with(p.as_str()))?;
        faults.remove(at).map(|(_, f)| f)
    }

    fn state(&self) -> ChainState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn respond(status: u16, body: String, headers: &[(&str, String)]) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn faulted(f: ChainFault) -> Response<Body> {
    match f {
        ChainFault::TooMany(after) => {
            let h: Vec<(&str, String)> = after
                .map(|s| ("retry-after", s.to_string()))
                .into_iter()
                .collect();
            respond(429, r#"{"error":"Too Many Requests"}"#.into(), &h)
        }
        ChainFault::ServerError | ChainFault::RpcError(_) => {
            respond(500, "Internal Server Error".into(), &[])
        }
        ChainFault::Malformed => respond(200, r#"{"fastestFee": 1, "half"#.into(), &[]),
    }
}

async fn mempool_api(State(s): State<Shared>, uri: Uri) -> Response<Body> {
    let path = uri.path().to_owned();
    if let Some(f) = s.record(format!("GET {path}"), String::new()) {
        return faulted(f);
    }
    let st = s.state();
    let body = match path.as_str() {
        "/api/v1/fees/recommended" => json!({
            "fastestFee": st.fees[0], "halfHourFee": st.fees[1], "hourFee": st.fees[2],
            "economyFee": st.fees[3], "minimumFee": st.fees[4]
        }),
        "/api/mempool" => json!({
            "count": st.mempool[0], "vsize": st.mempool[1], "total_fee": st.mempool[2],
            "fee_histogram": [[1.0071429, 2692]]
        }),
        p if p.starts_with("/api/v1/mining/hashrate") => json!({
            "hashrates": [{"timestamp": 1_652_486_400, "avgHashrate": st.hashrate.0}],
            "difficulty": [{"timestamp": 1_652_468_330, "difficulty": st.hashrate.1, "height": 736_249}],
            "currentHashrate": st.hashrate.0, "currentDifficulty": st.hashrate.1
        }),
        _ => return respond(404, "Not Found".into(), &[]),
    };
    respond(200, body.to_string(), &[])
}

fn hex(q: u128) -> String {
    format!("{q:#x}")
}

async fn rpc(State(s): State<Shared>, body: Bytes) -> Response<Body> {
    let text = String::from_utf8_lossy(&body).into_owned();
    let req: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let method = req["method"].as_str().unwrap_or("").to_owned();
    let id = req["id"].clone();
    let fault = s.record(format!("POST /rpc {method}"), text);
    let error = |code: i64, message: &str| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let answer = match fault {
        Some(ChainFault::RpcError(code)) => error(code, "fake failure"),
        Some(f) => return faulted(f),
        None if req["jsonrpc"] != "2.0" || id.is_null() => error(-32600, "invalid request"),
        None => {
            let st = s.state();
            let ok = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
            match method.as_str() {
                "eth_gasPrice" => ok(json!(hex(st.gas_price_wei))),
                "eth_getBlockByNumber" if req["params"][0] == "latest" => {
                    let (n, base, used, limit) = st.block;
                    ok(json!({
                        "number": hex(u128::from(n)), "hash": format!("0x{n:064x}"),
                        "timestamp": "0x6b055fa9", "baseFeePerGas": hex(base),
                        "gasUsed": hex(u128::from(used)), "gasLimit": hex(u128::from(limit)),
                        "transactions": []
                    }))
                }
                "eth_getBlockByNumber" => error(-32602, "invalid params"),
                "eth_call" => {
                    let call = &req["params"][0];
                    let to = call["to"].as_str().unwrap_or("").to_ascii_lowercase();
                    // The spec's `input`, or the `data` most clients send.
                    let data = call["input"].as_str().or(call["data"].as_str());
                    match (data, st.supplies.get(&to)) {
                        (Some("0x18160ddd"), Some(supply)) => ok(json!(format!("0x{supply:064x}"))),
                        (Some(_), Some(_)) => error(3, "execution reverted"),
                        // Not a contract: empty return data.
                        _ => ok(json!("0x")),
                    }
                }
                _ => error(-32601, "the method does not exist/is not available"),
            }
        }
    };
    respond(200, answer.to_string(), &[])
}

/// The running fake; stops when dropped.
pub struct FakeChain {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Shared,
    _server: Served,
}

impl std::fmt::Debug for FakeChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeChain")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeChain {
    /// Starts the fake reporting `state`.
    pub async fn start(state: ChainState) -> std::io::Result<Self> {
        let shared = Shared {
            state: Arc::new(Mutex::new(state)),
            ..Shared::default()
        };
        let app = Router::new()
            .route("/rpc", post(rpc))
            .route("/api/{*rest}", get(mempool_api))
            .with_state(shared.clone());
        let server = Served::start(app).await?;
        Ok(Self {
            addr: server.addr,
            shared,
            _server: server,
        })
    }

    /// The mempool.space-style API base (`http://127.0.0.1:PORT/api`).
    pub fn mempool_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The JSON-RPC endpoint (`http://127.0.0.1:PORT/rpc`).
    pub fn rpc_url(&self) -> String {
        format!("http://{}/rpc", self.addr)
    }

    /// Changes what the chain reports from now on.
    pub fn update(&self, f: impl FnOnce(&mut ChainState)) {
        if let Ok(mut s) = self.shared.state.lock() {
            f(&mut s);
        }
    }

    /// Queues a fault for the next request (of either API).
    pub fn fault(&self, f: ChainFault) {
        self.fault_on("", f);
    }

    /// Queues a fault for the next request whose description starts with `what`
    /// (`GET /api/mempool`, `POST /rpc eth_call`).
    pub fn fault_on(&self, what: &str, f: ChainFault) {
        if let Ok(mut q) = self.shared.faults.lock() {
            q.push_back((what.to_owned(), f));
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ChainRequest> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}
