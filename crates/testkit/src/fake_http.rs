//! A scriptable fake HTTP server on `127.0.0.1:0` for notifier and API-client tests: it records
//! every request (method, path, headers, body) and answers with canned responses, in order, then
//! with its default. Helpers give the documented shapes of Telegram's and Discord's answers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A canned response.
#[derive(Clone, Debug)]
pub struct Canned {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// How long to wait before answering (a slow provider).
    pub delay_ms: u64,
}

impl Canned {
    /// A JSON response.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
            delay_ms: 0,
        }
    }

    /// Telegram's success envelope for `sendMessage`.
    pub fn telegram_ok() -> Self {
        Self::json(
            200,
            serde_json::json!({"ok": true, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}),
        )
    }

    /// Telegram's flood-control answer.
    pub fn telegram_429(retry_after: u64) -> Self {
        Self::json(
            429,
            serde_json::json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {retry_after}"), "parameters": {"retry_after": retry_after}}),
        )
    }

    /// Discord's answer to an executed webhook without `wait`.
    pub fn discord_ok() -> Self {
        Self {
            status: 204,
            body: String::new(),
            headers: Vec::new(),
            delay_ms: 0,
        }
    }

    /// The same answer, given after `ms` milliseconds.
    pub fn delayed(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// Discord's rate-limit answer, with its `Retry-After` header.
    pub fn discord_429(retry_after: f64) -> Self {
        let mut c = Self::json(
            429,
            serde_json::json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
        );
        c.headers
            .push(("retry-after".into(), format!("{}", retry_after.ceil())));
        c
    }
}

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Canned>>>,
    default: Canned,
}

/// The running server; stops when dropped.
pub struct FakeHttp {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Shared,
    _server: Served,
}

impl std::fmt::Debug for FakeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHttp")
            .field("addr", &self.addr)
            .finish()
    }
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Ok(mut r) = s.requests.lock() {
        r.push(Recorded {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: std::time::Instant::now(),
        });
    }
    let canned = s
        .script
        .lock()
        .ok()
        .and_then(|mut q| q.pop_front())
        .unwrap_or_else(|| s.default.clone());
    if canned.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(canned.delay_ms)).await;
    }
    let mut b = Response::builder().status(canned.status);
    for (k, v) in &canned.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Body::from(canned.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

impl FakeHttp {
    /// Starts a server answering `default` unless a response is queued.
    pub async fn start(default: Canned) -> std::io::Result<Self> {
        let shared = Shared {
            requests: Arc::default(),
            script: Arc::default(),
            default,
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = Served::start(app).await?;
        Ok(Self {
            addr: server.addr,
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a response for the next request.
    pub fn push(&self, c: Canned) {
        if let Ok(mut q) = self.shared.script.lock() {
            q.push_back(c);
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

/// A router served on `127.0.0.1:0` until dropped: the fakes' common server.
#[derive(Debug)]
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Binds a free loopback port and serves `app` on it.
    pub async fn start(app: Router) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}
