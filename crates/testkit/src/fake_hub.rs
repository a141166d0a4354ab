//! A fake Hugging Face Hub on `127.0.0.1:0`: `GET /{owner}/{name}/resolve/{revision}/{file}`
//! as the Hub answers it — small files directly, weight files (`*.safetensors`, `*.bin`) with
//! a 302 redirect to a CDN path, a missing file as 404 with `X-Error-Code: EntryNotFound`, an
//! unknown repository as 401 with `X-Error-Code: RepoNotFound`. It records the paths and
//! `Authorization` headers it saw, and can cut a file's body short (a dropped connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::get;

#[derive(Default)]
struct Inner {
    repos: HashMap<String, HashMap<String, Vec<u8>>>,
    seen: Vec<(String, Option<String>)>,
    cut_short: Option<String>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeHub {
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeHub {
    /// Starts it on the current Tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/{owner}/{name}/resolve/{rev}/{*file}", get(resolve))
            .route("/cdn/{owner}/{name}/{*file}", get(cdn))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            endpoint: format!("http://{addr}"),
            inner,
        })
    }

    /// Adds (or replaces) a file of repository `repo` (`owner/name`).
    pub fn put(&self, repo: &str, file: &str, bytes: Vec<u8>) {
        if let Ok(mut g) = self.inner.lock() {
            g.repos
                .entry(repo.to_owned())
                .or_default()
                .insert(file.to_owned(), bytes);
        }
    }

    /// Sends only half of `file`'s body (with the full `Content-Length`) from now on.
    pub fn cut_short(&self, file: Option<&str>) {
        if let Ok(mut g) = self.inner.lock() {
            g.cut_short = file.map(str::to_owned);
        }
    }

    /// The request paths seen, with their `Authorization` headers.
    pub fn seen(&self) -> Vec<(String, Option<String>)> {
        self.inner
            .lock()
            .map(|g| g.seen.clone())
            .unwrap_or_default()
    }
}

fn error(status: StatusCode, code: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("x-error-code", code)
        .header("content-type", "application/json")
        .body(Body::from(format!("{{\"error\":\"{code}\"}}")))
        .unwrap_or_default()
}

async fn resolve(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((owner, name, _rev, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response<Body> {
    let repo = format!("{owner}/{name}");
    let Ok(mut g) = inner.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Poisoned");
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    g.seen
        .push((format!("/{repo}/resolve/{_rev}/{file}"), auth));
    let Some(files) = g.repos.get(&repo) else {
        return error(StatusCode::UNAUTHORIZED, "RepoNotFound");
    };
    let Some(bytes) = files.get(&file) else {
        return error(StatusCode::NOT_FOUND, "EntryNotFound");
    };
    if file.ends_with(".safetensors") || file.ends_with(".bin") {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header("location", format!("/cdn/{repo}/{file}"))
            .header("x-linked-size", bytes.len().to_string())
            .body(Body::empty())
            .unwrap_or_default();
    }
    Response::new(Body::from(bytes.clone()))
}

async fn cdn(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((owner, name, file)): Path<(String, String, String)>,
) -> Response<Body> {
    let repo = format!("{owner}/{name}");
    let Ok(g) = inner.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Poisoned");
    };
    let Some(bytes) = g.repos.get(&repo).and_then(|f| f.get(&file)).cloned() else {
        return error(StatusCode::NOT_FOUND, "NoSuchKey");
    };
    let len = bytes.len();
    if g.cut_short.as_deref() == Some(file.as_str()) {
        // Half the body under the full length: the client sees the connection end early.
        let half = bytes[..len / 2].to_vec();
        let stream = futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(axum::body::Bytes::from(half)),
            Err(std::io::Error::other("connection dropped")),
        ]);
        return Response::builder()
            .header("content-length", len.to_string())
            .body(Body::from_stream(stream))
            .unwrap_or_default();
    }
    Response::builder()
        .header("content-length", len.to_string())
        .body(Body::from(bytes))
        .unwrap_or_default()
}
