//! Atalaya's HTTP API, built on axum.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness: `{"status":"ok"}` |
//! | `GET /api/v1/status` | uptime, the engine's counters and event rate, each source's state and last event time, the bus's queues and lag |
//! | `GET /api/v1/opportunities` | stored opportunities, newest first; filters `instrument`, `type`, `since`; paging `page`, `per_page` (≤ 1000) |
//! | `GET /api/v1/alerts` | stored alerts, newest first; `since`, `page`, `per_page` |
//! | `GET /api/v1/candles` | stored bars: `instrument` and `timeframe` required, `from`, `to` (open time), `limit` (≤ 5000) |
//!
//! Times in parameters are ISO-8601 UTC (`2024-01-31T12:00:00Z`, `2024-01-31`) or epoch
//! seconds, milliseconds or nanoseconds; times in responses are nanoseconds UTC. Errors are
//! JSON `{"error": "…"}`: a bad or unknown parameter is a 400 that names it; a failure inside
//! is a 500 with a generic message, its cause logged.
//!
//! The server reads only the store and the shared health registry: it never reaches into the
//! engine's state.

mod error;
pub mod metrics;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use atalaya_bus::Bus;
use atalaya_bus::health::Health;
use atalaya_store::Store;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use routes::router;

/// Server settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Whether to serve the API at all.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// What the handlers read.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Stored candles and opportunities.
    pub store: Arc<dyn Store>,
    /// Sources' and the engine's health.
    pub health: Arc<Health>,
    /// The bus, for queue and lag counters.
    pub bus: Arc<dyn Bus>,
    /// When the process started (wall clock, for uptime only).
    pub started: Instant,
    /// When the process started, nanoseconds UTC.
    pub started_at: i64,
}

/// Server failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Serves the API on `listener` until `cancel` fires, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    cancel: CancellationToken,
) -> Result<(), ServerError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
        .map_err(ServerError::Serve)
}
