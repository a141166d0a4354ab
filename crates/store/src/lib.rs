//! Persistence for Atalaya: candles, opportunities, alerts and raw text items.
//!
//! The [`Store`] trait is the seam; [`SqliteStore`] is the embedded default (sqlx with the
//! bundled SQLite, WAL journal, migrations embedded in the binary). PostgreSQL, InfluxDB and
//! Redis backends come later behind the same trait.
//!
//! Writes go through one [`writer`] task that drains the bus's reliable outbound queue and
//! commits each batch in one transaction; candles are upserted by (instrument, timeframe,
//! open time) and opportunities are unique per (instrument, timeframe, time, type), so a
//! replay of the same data is idempotent.
//!
//! This crate depends on `atalaya-model` (types) and `atalaya-bus` only through the writer's
//! subscription.

mod config;
mod sqlite;
pub mod writer;

use async_trait::async_trait;
use atalaya_model::{
    Alert, Candle, InstrumentId, NewsItem, OnchainMetric, Opportunity, OpportunityKind, SocialPost,
    Timeframe, UnixNanos,
};
use serde::Serialize;

pub use config::StoreConfig;
pub use sqlite::SqliteStore;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened (bad path, permissions, not a database).
    #[error("cannot open the store at {location}")]
    Open {
        /// Where it was.
        location: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed: {context}")]
    Query {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored row could not be turned back into a domain value.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Serialising a value for storage failed.
    #[error("cannot encode {what}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether retrying the same operation may succeed (a busy or locked database, a pool
    /// time-out, an I/O hiccup).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Query { source, .. } | StoreError::Open { source, .. } => matches!(
                source,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Database(_)
            ),
            _ => false,
        }
    }
}

/// A raw text item (news or social post) with the time it became known.
#[derive(Clone, Debug, PartialEq)]
pub enum TextItem {
    /// A headline.
    News(NewsItem),
    /// A social post.
    Social(SocialPost),
}

/// Everything one transaction writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Closed bars (upserted).
    pub candles: Vec<Candle>,
    /// Opportunities with the time they were received by the writer's input.
    pub opportunities: Vec<(Opportunity, UnixNanos)>,
    /// Alerts.
    pub alerts: Vec<Alert>,
    /// Text items with the time they became known.
    pub text_items: Vec<(TextItem, UnixNanos)>,
    /// On-chain metrics with the time they became known.
    pub onchain: Vec<(OnchainMetric, UnixNanos)>,
    /// The paper trader's closed trades.
    pub paper_trades: Vec<PaperTradeRow>,
    /// The paper trader's audit entries.
    pub paper_audit: Vec<PaperAuditRow>,
}

/// A closed paper trade as stored: its key, its P&L and the whole trade as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaperTradeRow {
    /// The instrument (`venue:BASE/QUOTE`).
    pub instrument: String,
    /// Entry time.
    pub entry_time: UnixNanos,
    /// Exit time.
    pub exit_time: UnixNanos,
    /// Realised P&L, a decimal as text.
    pub pnl: String,
    /// The trade as JSON.
    pub body: String,
}

/// One entry of the paper trader's audit stream as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaperAuditRow {
    /// Event time.
    pub ts: UnixNanos,
    /// The instrument, or empty for portfolio-wide entries.
    pub instrument: String,
    /// `approve`, `refuse`, `buy`, …
    pub action: String,
    /// Why.
    pub reason: String,
}

impl Batch {
    /// Number of rows in the batch.
    pub fn len(&self) -> usize {
        self.candles.len()
            + self.opportunities.len()
            + self.alerts.len()
            + self.text_items.len()
            + self.onchain.len()
            + self.paper_trades.len()
            + self.paper_audit.len()
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the batch, keeping its capacity.
    pub fn clear(&mut self) {
        self.candles.clear();
        self.opportunities.clear();
        self.alerts.clear();
        self.text_items.clear();
        self.onchain.clear();
        self.paper_trades.clear();
        self.paper_audit.clear();
    }
}

/// Which candles to read.
#[derive(Clone, Debug, PartialEq)]
pub struct CandleQuery {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The timeframe.
    pub timeframe: Timeframe,
    /// Earliest open time (inclusive).
    pub from: Option<UnixNanos>,
    /// Latest open time (exclusive).
    pub to: Option<UnixNanos>,
    /// At most this many, oldest first.
    pub limit: u32,
}

/// Which opportunities to read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpportunityQuery {
    /// Only this instrument.
    pub instrument: Option<InstrumentId>,
    /// Only this type.
    pub kind: Option<OpportunityKind>,
    /// Generated at or after this time.
    pub since: Option<UnixNanos>,
    /// Page number, from 1.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
}

/// Filters for [`Store::onchain_metrics`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OnchainQuery {
    /// Only this chain (`bitcoin`, `ethereum`).
    pub chain: Option<String>,
    /// Only this metric (`fee_fastest`, `usdt_mint`, …).
    pub metric: Option<String>,
    /// Known at or after this time.
    pub since: Option<UnixNanos>,
    /// At most this many rows.
    pub limit: u32,
}

/// A stored on-chain reading.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredMetric {
    /// The chain.
    pub chain: String,
    /// The metric.
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// When it became known.
    pub ts: UnixNanos,
}

/// A stored opportunity with its row id.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredOpportunity {
    /// Row id, stable within one database.
    pub id: i64,
    /// When the pipeline's input that produced it was received.
    pub received_at: UnixNanos,
    /// The opportunity.
    pub opportunity: Opportunity,
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Page number, from 1.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// Rows matching the filters, over all pages.
    pub total: u64,
}

/// A stored alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredAlert {
    /// Row id.
    pub id: i64,
    /// Event time of creation, nanoseconds UTC.
    pub created_at: UnixNanos,
    /// `low`, `medium`, `high` or `critical`.
    pub priority: String,
    /// The instrument, when the alert is about one.
    pub instrument: Option<String>,
    /// One-line title.
    pub title: String,
    /// Full text.
    pub body: String,
    /// Its state on each channel.
    pub deliveries: Vec<StoredDelivery>,
}

/// One alert's state on one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredDelivery {
    /// The channel.
    pub channel: String,
    /// `pending`, `delivered`, `suppressed` or `dead_lettered`.
    pub state: String,
    /// Why it was suppressed.
    pub reason: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// A pending delivery whose time has come, with its alert.
#[derive(Clone, Debug, PartialEq)]
pub struct DueDelivery {
    /// The alert's row id (with `channel`, the idempotency key).
    pub alert_id: i64,
    /// The channel.
    pub channel: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The alert (its `id` is the row id).
    pub alert: atalaya_model::Alert,
}

/// The outcome of a delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryUpdate {
    /// The alert's row id.
    pub alert_id: i64,
    /// The channel.
    pub channel: String,
    /// The new state.
    pub state: atalaya_model::DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When to try again (wall clock, nanoseconds), for a pending delivery.
    pub next_attempt_at: UnixNanos,
    /// The failure, if any.
    pub last_error: Option<String>,
    /// A reason to record (dead-lettering), if any.
    pub reason: Option<String>,
    /// Wall-clock time of the update.
    pub updated_at: UnixNanos,
}

/// Row counts and sizes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// The backend (`sqlite`).
    pub backend: &'static str,
    /// Where it lives.
    pub location: String,
    /// Candle rows.
    pub candles: u64,
    /// Opportunity rows.
    pub opportunities: u64,
    /// Alert rows.
    pub alerts: u64,
    /// Text item rows.
    pub text_items: u64,
    /// On-chain metric rows.
    pub onchain_metrics: u64,
    /// Size on disk in bytes (main database file).
    pub size_bytes: u64,
    /// Candle rows per (instrument, timeframe).
    pub series: Vec<SeriesStats>,
    /// Applied migration versions.
    pub migrations: Vec<i64>,
}

/// Candle coverage of one series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeriesStats {
    /// Instrument id.
    pub instrument: String,
    /// Timeframe.
    pub timeframe: String,
    /// Rows.
    pub rows: u64,
    /// First open time.
    pub first: UnixNanos,
    /// Last open time.
    pub last: UnixNanos,
}

/// The persistence seam. One implementation per backend, chosen by configuration.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Brings the schema up to date.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Writes a batch in one transaction: all of it or none of it.
    async fn write(&self, batch: &Batch) -> Result<(), StoreError>;
    /// Reads candles, oldest first.
    async fn candles(&self, q: &CandleQuery) -> Result<Vec<Candle>, StoreError>;
    /// Reads opportunities, newest first.
    async fn opportunities(
        &self,
        q: &OpportunityQuery,
    ) -> Result<Page<StoredOpportunity>, StoreError>;
    /// Alerts created at or after `since`, newest first, one page.
    async fn alerts(
        &self,
        since: Option<UnixNanos>,
        page: u32,
        per_page: u32,
    ) -> Result<Page<StoredAlert>, StoreError>;
    /// Pending deliveries on `channel` due at `now` (wall clock), oldest first.
    async fn due_deliveries(
        &self,
        now: UnixNanos,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// Dead-letters the pending deliveries of every channel not in `configured`; returns how
    /// many.
    async fn dead_letter_unrouted(
        &self,
        configured: &[&str],
        now: UnixNanos,
    ) -> Result<u64, StoreError>;
    /// Records the outcome of a delivery attempt.
    async fn update_delivery(&self, u: &DeliveryUpdate) -> Result<(), StoreError>;
    /// Deliveries per (channel, state).
    async fn delivery_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError>;
    /// The latest closed paper trades, newest exit first.
    async fn paper_trades(&self, limit: u32) -> Result<Vec<PaperTradeRow>, StoreError>;
    /// Stored on-chain metrics matching `q`, newest first.
    async fn onchain_metrics(&self, q: &OnchainQuery) -> Result<Vec<StoredMetric>, StoreError>;
    /// Text items that became known at or after `from`, with that time, in the order they
    /// became known (for rebuilding the sentiment index on restart). A row whose body cannot
    /// be read back is skipped with a warning rather than failing the whole read.
    async fn text_items(&self, from: UnixNanos) -> Result<Vec<(TextItem, UnixNanos)>, StoreError>;
    /// Row counts and sizes.
    async fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Flushes and closes connections.
    async fn close(&self);
}

/// Opens the store described by `cfg`.
pub async fn open(cfg: &StoreConfig) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match cfg {
        StoreConfig::Sqlite { path } => Ok(std::sync::Arc::new(SqliteStore::open(path).await?)),
    }
}
