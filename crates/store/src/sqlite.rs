//! The SQLite backend.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use atalaya_model::{
    Alert, AlertPriority, Candle, InstrumentId, Opportunity, Timeframe, UnixNanos,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};

use crate::{
    Batch, CandleQuery, DeliveryUpdate, DueDelivery, OnchainQuery, OpportunityQuery, Page,
    PaperTradeRow, SeriesStats, Store, StoreError, StoreStats, StoredAlert, StoredDelivery,
    StoredMetric, StoredOpportunity, TextItem,
};

/// The migrations, embedded so the binary needs no files at run time.
fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0001_init.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("paper"),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0002_paper.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("outbox"),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0003_outbox.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            Cow::Borrowed("onchain"),
            MigrationType::Simple,
            include_str!("../migrations/sqlite/0004_onchain.sql").into_sql_str(),
            false,
        ),
    ])
}

fn q(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

/// SQLite through sqlx: WAL journal, `synchronous = NORMAL` (durable at each checkpoint,
/// never corrupt), a busy timeout so readers and the writer share the file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path`, and its parent folder.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                location: location.clone(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open { location, source })?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
    }
}

fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: e.to_string(),
    }
}

fn candle_from_row(r: &SqliteRow) -> Result<Candle, StoreError> {
    let get_f = |c: &str| r.try_get::<f64, _>(c).map_err(|e| corrupt("candles", e));
    let instrument: String = r.try_get("instrument").map_err(|e| corrupt("candles", e))?;
    let timeframe: String = r.try_get("timeframe").map_err(|e| corrupt("candles", e))?;
    let open_time: i64 = r.try_get("open_time").map_err(|e| corrupt("candles", e))?;
    let trades: i64 = r.try_get("trades").map_err(|e| corrupt("candles", e))?;
    Candle::new(
        InstrumentId::from_str(&instrument).map_err(|e| corrupt("candles", e))?,
        Timeframe::from_str(&timeframe).map_err(|e| corrupt("candles", e))?,
        open_time,
        [
            get_f("open")?,
            get_f("high")?,
            get_f("low")?,
            get_f("close")?,
        ],
        get_f("volume")?,
        u32::try_from(trades).unwrap_or(u32::MAX),
    )
    .map_err(|e| corrupt("candles", e))
}

fn count(r: &SqliteRow) -> u64 {
    r.try_get::<i64, _>(0)
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        migrator()
            .run(&self.pool)
            .await
            .map_err(StoreError::Migrate)
    }

    async fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        for c in &batch.candles {
            sqlx::query(
                "INSERT INTO candles (instrument, timeframe, open_time, open, high, low, close, volume, trades)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (instrument, timeframe, open_time) DO UPDATE SET
                   open = excluded.open, high = excluded.high, low = excluded.low,
                   close = excluded.close, volume = excluded.volume, trades = excluded.trades",
            )
            .bind(c.instrument().to_string())
            .bind(c.timeframe().as_str())
            .bind(c.open_time())
            .bind(c.open())
            .bind(c.high())
            .bind(c.low())
            .bind(c.close())
            .bind(c.volume())
            .bind(i64::from(c.trades()))
            .execute(&mut *tx)
            .await
            .map_err(q("insert candle"))?;
        }
        for (o, received_at) in &batch.opportunities {
            let body = serde_json::to_string(o).map_err(|source| StoreError::Encode {
                what: "opportunity",
                source,
            })?;
            sqlx::query(
                "INSERT INTO opportunities (instrument, timeframe, kind, generated_at, received_at,
                   score, confidence, expected_return, risk_level, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (instrument, timeframe, generated_at, kind) DO NOTHING",
            )
            .bind(o.instrument().to_string())
            .bind(o.timeframe().as_str())
            .bind(o.kind().as_str())
            .bind(o.generated_at())
            .bind(*received_at)
            .bind(o.score())
            .bind(o.confidence())
            .bind(o.expected_return())
            .bind(o.risk_level())
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(q("insert opportunity"))?;
        }
        for a in &batch.alerts {
            let priority = serde_json::to_value(a.priority)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            sqlx::query(
                "INSERT INTO alerts (created_at, priority, instrument, title, body, timeframe, short)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (created_at, instrument, title) DO NOTHING",
            )
            .bind(a.created_at)
            .bind(priority)
            .bind(a.instrument.map(|i| i.to_string()))
            .bind(&a.title)
            .bind(&a.body)
            .bind(a.timeframe.map(|t| t.as_str()))
            .bind(&a.short)
            .execute(&mut *tx)
            .await
            .map_err(q("insert alert"))?;
            if !a.deliveries.is_empty() {
                // The alert's row (new, or already there when a replay writes it again).
                let row = sqlx::query(
                    "SELECT id FROM alerts WHERE created_at = ?1 AND instrument IS ?2 AND title = ?3",
                )
                .bind(a.created_at)
                .bind(a.instrument.map(|i| i.to_string()))
                .bind(&a.title)
                .fetch_one(&mut *tx)
                .await
                .map_err(q("find alert"))?;
                let id: i64 = row.try_get(0).map_err(|e| corrupt("alerts", e))?;
                for d in &a.deliveries {
                    sqlx::query(
                        "INSERT INTO alert_deliveries (alert_id, channel, state, reason)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (alert_id, channel) DO NOTHING",
                    )
                    .bind(id)
                    .bind(&d.channel)
                    .bind(d.state.as_str())
                    .bind(&d.reason)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("insert delivery"))?;
                }
            }
        }
        for (item, received_at) in &batch.text_items {
            let (kind, source, id, ts_event, title, url, body) = match item {
                TextItem::News(n) => (
                    "news",
                    n.publisher().to_owned(),
                    n.id().to_owned(),
                    n.published_at(),
                    n.title().to_owned(),
                    n.url().map(str::to_owned),
                    serde_json::to_string(n),
                ),
                TextItem::Social(p) => (
                    "social",
                    format!("{:?}", p.platform()).to_lowercase(),
                    p.id().to_owned(),
                    p.created_at(),
                    p.text().chars().take(200).collect(),
                    p.url().map(str::to_owned),
                    serde_json::to_string(p),
                ),
            };
            let body = body.map_err(|source| StoreError::Encode {
                what: "text item",
                source,
            })?;
            sqlx::query(
                "INSERT INTO text_items (kind, source, item_id, ts_event, ts_received, title, url, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (kind, source, item_id) DO NOTHING",
            )
            .bind(kind)
            .bind(source)
            .bind(id)
            .bind(ts_event)
            .bind(*received_at)
            .bind(title)
            .bind(url)
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(q("insert text item"))?;
        }
        for (m, received_at) in &batch.onchain {
            sqlx::query(
                "INSERT INTO onchain_metrics (chain, metric, ts_received, value, unit)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (chain, metric, ts_received) DO NOTHING",
            )
            .bind(m.chain().as_str())
            .bind(m.metric())
            .bind(*received_at)
            .bind(m.value())
            .bind(m.unit())
            .execute(&mut *tx)
            .await
            .map_err(q("insert on-chain metric"))?;
        }
        for t in &batch.paper_trades {
            sqlx::query(
                "INSERT INTO paper_trades (instrument, entry_time, exit_time, pnl, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (instrument, entry_time) DO NOTHING",
            )
            .bind(&t.instrument)
            .bind(t.entry_time)
            .bind(t.exit_time)
            .bind(&t.pnl)
            .bind(&t.body)
            .execute(&mut *tx)
            .await
            .map_err(q("insert paper trade"))?;
        }
        for a in &batch.paper_audit {
            sqlx::query(
                "INSERT INTO paper_audit (ts, instrument, action, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (ts, instrument, action, reason) DO NOTHING",
            )
            .bind(a.ts)
            .bind(&a.instrument)
            .bind(&a.action)
            .bind(&a.reason)
            .execute(&mut *tx)
            .await
            .map_err(q("insert paper audit"))?;
        }
        tx.commit().await.map_err(q("commit"))
    }

    async fn dead_letter_unrouted(
        &self,
        configured: &[&str],
        now: UnixNanos,
    ) -> Result<u64, StoreError> {
        let list = serde_json::to_string(configured).map_err(|source| StoreError::Encode {
            what: "channel list",
            source,
        })?;
        let r = sqlx::query(
            "UPDATE alert_deliveries SET state = 'dead_lettered',
                    reason = 'the channel is not configured any more', updated_at = ?2
             WHERE state = 'pending' AND channel NOT IN (SELECT value FROM json_each(?1))",
        )
        .bind(list)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(q("dead-letter unrouted deliveries"))?;
        Ok(r.rows_affected())
    }

    async fn due_deliveries(
        &self,
        now: UnixNanos,
        channel: &str,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.alert_id, d.channel, d.attempts, a.created_at, a.priority, a.instrument,
                    a.title, a.body, a.timeframe, a.short
             FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
             WHERE d.state = 'pending' AND d.channel = ?3 AND d.next_attempt_at <= ?1
             ORDER BY d.next_attempt_at, a.created_at, d.alert_id LIMIT ?2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(channel)
        .fetch_all(&self.pool)
        .await
        .map_err(q("select due deliveries"))?;
        rows.iter()
            .map(|r| {
                let c = |e| corrupt("alert_deliveries", e);
                let priority: String = r.try_get("priority").map_err(c)?;
                let instrument: Option<String> = r.try_get("instrument").map_err(c)?;
                let alert_id: i64 = r.try_get("alert_id").map_err(c)?;
                Ok(DueDelivery {
                    alert_id,
                    channel: r.try_get("channel").map_err(c)?,
                    attempts: u32::try_from(r.try_get::<i64, _>("attempts").map_err(c)?)
                        .unwrap_or(0),
                    alert: Alert {
                        id: u64::try_from(alert_id).unwrap_or(0),
                        opportunity_id: None,
                        instrument: instrument.and_then(|i| i.parse().ok()),
                        priority: serde_json::from_value(serde_json::Value::String(priority))
                            .unwrap_or(AlertPriority::Low),
                        title: r.try_get("title").map_err(c)?,
                        body: r.try_get("body").map_err(c)?,
                        created_at: r.try_get("created_at").map_err(c)?,
                        deliveries: Vec::new(),
                        timeframe: r
                            .try_get::<Option<String>, _>("timeframe")
                            .map_err(c)?
                            .and_then(|t| t.parse().ok()),
                        short: r.try_get("short").map_err(c)?,
                    },
                })
            })
            .collect()
    }

    async fn update_delivery(&self, u: &DeliveryUpdate) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_deliveries SET state = ?3, attempts = ?4, next_attempt_at = ?5,
                    last_error = ?6, reason = COALESCE(?7, reason), updated_at = ?8
             WHERE alert_id = ?1 AND channel = ?2",
        )
        .bind(u.alert_id)
        .bind(&u.channel)
        .bind(u.state.as_str())
        .bind(i64::from(u.attempts))
        .bind(u.next_attempt_at)
        .bind(&u.last_error)
        .bind(&u.reason)
        .bind(u.updated_at)
        .execute(&self.pool)
        .await
        .map_err(q("update delivery"))?;
        Ok(())
    }

    async fn delivery_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, state, COUNT(*) AS n FROM alert_deliveries
             GROUP BY channel, state ORDER BY channel, state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("count deliveries"))?;
        rows.iter()
            .map(|r| {
                let c = |e| corrupt("alert_deliveries", e);
                Ok((
                    r.try_get("channel").map_err(c)?,
                    r.try_get("state").map_err(c)?,
                    u64::try_from(r.try_get::<i64, _>("n").map_err(c)?).unwrap_or(0),
                ))
            })
            .collect()
    }

    async fn paper_trades(&self, limit: u32) -> Result<Vec<PaperTradeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT instrument, entry_time, exit_time, pnl, body FROM paper_trades
             ORDER BY exit_time DESC, instrument LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("select paper trades"))?;
        Ok(rows
            .iter()
            .map(|r| PaperTradeRow {
                instrument: r.get(0),
                entry_time: r.get(1),
                exit_time: r.get(2),
                pnl: r.get(3),
                body: r.get(4),
            })
            .collect())
    }

    async fn onchain_metrics(&self, oq: &OnchainQuery) -> Result<Vec<StoredMetric>, StoreError> {
        let rows = sqlx::query(
            "SELECT chain, metric, value, unit, ts_received FROM onchain_metrics
             WHERE (?1 IS NULL OR chain = ?1) AND (?2 IS NULL OR metric = ?2)
               AND ts_received >= ?3
             ORDER BY ts_received DESC, chain, metric LIMIT ?4",
        )
        .bind(oq.chain.as_deref())
        .bind(oq.metric.as_deref())
        .bind(oq.since.unwrap_or(UnixNanos::MIN))
        .bind(i64::from(oq.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("select on-chain metrics"))?;
        Ok(rows
            .iter()
            .map(|r| StoredMetric {
                chain: r.get(0),
                metric: r.get(1),
                value: r.get(2),
                unit: r.get(3),
                ts: r.get(4),
            })
            .collect())
    }

    async fn text_items(&self, from: UnixNanos) -> Result<Vec<(TextItem, UnixNanos)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, source, item_id, ts_received, body FROM text_items
             WHERE ts_received >= ?1 ORDER BY ts_received, rowid",
        )
        .bind(from)
        .fetch_all(&self.pool)
        .await
        .map_err(q("select text items"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (kind, body): (String, String) = (r.get(0), r.get(4));
            let item = match kind.as_str() {
                "news" => serde_json::from_str(&body).map(TextItem::News),
                _ => serde_json::from_str(&body).map(TextItem::Social),
            };
            match item {
                Ok(item) => out.push((item, r.get::<i64, _>(3))),
                Err(e) => tracing::warn!(
                    kind,
                    source = r.get::<String, _>(1),
                    id = r.get::<String, _>(2),
                    error = %e,
                    "a stored text item cannot be read back; skipped"
                ),
            }
        }
        Ok(out)
    }

    async fn candles(&self, cq: &CandleQuery) -> Result<Vec<Candle>, StoreError> {
        let rows = sqlx::query(
            "SELECT instrument, timeframe, open_time, open, high, low, close, volume, trades
             FROM candles
             WHERE instrument = ?1 AND timeframe = ?2
               AND open_time >= ?3 AND open_time < ?4
             ORDER BY open_time LIMIT ?5",
        )
        .bind(cq.instrument.to_string())
        .bind(cq.timeframe.as_str())
        .bind(cq.from.unwrap_or(i64::MIN))
        .bind(cq.to.unwrap_or(i64::MAX))
        .bind(i64::from(cq.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("select candles"))?;
        rows.iter().map(candle_from_row).collect()
    }

    async fn opportunities(
        &self,
        oq: &OpportunityQuery,
    ) -> Result<Page<StoredOpportunity>, StoreError> {
        let page = oq.page.max(1);
        let per_page = oq.per_page.clamp(1, 1000);
        let instrument = oq.instrument.map(|i| i.to_string());
        let kind = oq.kind.map(|k| k.as_str());
        let since = oq.since.unwrap_or(i64::MIN);
        const FILTER: &str =
            "(?1 IS NULL OR instrument = ?1) AND (?2 IS NULL OR kind = ?2) AND generated_at >= ?3";
        let total = sqlx::query(AssertFilter::count(FILTER))
            .bind(&instrument)
            .bind(kind)
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(q("count opportunities"))?;
        let rows = sqlx::query(AssertFilter::select(FILTER))
            .bind(&instrument)
            .bind(kind)
            .bind(since)
            .bind(i64::from(per_page))
            .bind(i64::from(page - 1) * i64::from(per_page))
            .fetch_all(&self.pool)
            .await
            .map_err(q("select opportunities"))?;
        let items = rows
            .iter()
            .map(|r| {
                let id: i64 = r.try_get("id").map_err(|e| corrupt("opportunities", e))?;
                let received_at: i64 = r
                    .try_get("received_at")
                    .map_err(|e| corrupt("opportunities", e))?;
                let body: String = r.try_get("body").map_err(|e| corrupt("opportunities", e))?;
                let opportunity: Opportunity =
                    serde_json::from_str(&body).map_err(|e| corrupt("opportunities", e))?;
                Ok(StoredOpportunity {
                    id,
                    received_at,
                    opportunity,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page {
            items,
            page,
            per_page,
            total: count(&total),
        })
    }

    async fn alerts(
        &self,
        since: Option<i64>,
        page: u32,
        per_page: u32,
    ) -> Result<Page<StoredAlert>, StoreError> {
        let page = page.max(1);
        let per_page = per_page.clamp(1, 1000);
        let since = since.unwrap_or(i64::MIN);
        let total = sqlx::query("SELECT COUNT(*) FROM alerts WHERE created_at >= ?1")
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(q("count alerts"))?;
        let rows = sqlx::query(
            "SELECT id, created_at, priority, instrument, title, body FROM alerts
             WHERE created_at >= ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
        )
        .bind(since)
        .bind(i64::from(per_page))
        .bind(i64::from(page - 1) * i64::from(per_page))
        .fetch_all(&self.pool)
        .await
        .map_err(q("select alerts"))?;
        let mut items = rows
            .iter()
            .map(|r| {
                let c = |e| corrupt("alerts", e);
                Ok(StoredAlert {
                    id: r.try_get("id").map_err(c)?,
                    created_at: r.try_get("created_at").map_err(c)?,
                    priority: r.try_get("priority").map_err(c)?,
                    instrument: r.try_get("instrument").map_err(c)?,
                    title: r.try_get("title").map_err(c)?,
                    body: r.try_get("body").map_err(c)?,
                    deliveries: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for a in &mut items {
            let rows = sqlx::query(
                "SELECT channel, state, reason, attempts, last_error FROM alert_deliveries
                 WHERE alert_id = ?1 ORDER BY channel",
            )
            .bind(a.id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("select deliveries"))?;
            for r in &rows {
                let c = |e| corrupt("alert_deliveries", e);
                a.deliveries.push(StoredDelivery {
                    channel: r.try_get("channel").map_err(c)?,
                    state: r.try_get("state").map_err(c)?,
                    reason: r.try_get("reason").map_err(c)?,
                    attempts: u32::try_from(r.try_get::<i64, _>("attempts").map_err(c)?)
                        .unwrap_or(0),
                    last_error: r.try_get("last_error").map_err(c)?,
                });
            }
        }
        Ok(Page {
            items,
            page,
            per_page,
            total: count(&total),
        })
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut s = StoreStats {
            backend: "sqlite",
            location: self.path.display().to_string(),
            ..StoreStats::default()
        };
        for (table, slot) in [
            ("SELECT COUNT(*) FROM candles", &mut s.candles),
            ("SELECT COUNT(*) FROM opportunities", &mut s.opportunities),
            ("SELECT COUNT(*) FROM alerts", &mut s.alerts),
            ("SELECT COUNT(*) FROM text_items", &mut s.text_items),
            (
                "SELECT COUNT(*) FROM onchain_metrics",
                &mut s.onchain_metrics,
            ),
        ] {
            let row = sqlx::query(table)
                .fetch_one(&self.pool)
                .await
                .map_err(q("count rows"))?;
            *slot = count(&row);
        }
        let row = sqlx::query(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(q("database size"))?;
        s.size_bytes = count(&row);
        let rows = sqlx::query(
            "SELECT instrument, timeframe, COUNT(*) AS n, MIN(open_time) AS first, MAX(open_time) AS last
             FROM candles GROUP BY instrument, timeframe ORDER BY instrument, timeframe",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("series stats"))?;
        for r in rows {
            s.series.push(SeriesStats {
                instrument: r.try_get("instrument").map_err(|e| corrupt("candles", e))?,
                timeframe: r.try_get("timeframe").map_err(|e| corrupt("candles", e))?,
                rows: r
                    .try_get::<i64, _>("n")
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                first: r.try_get("first").map_err(|e| corrupt("candles", e))?,
                last: r.try_get("last").map_err(|e| corrupt("candles", e))?,
            });
        }
        let rows =
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .map_err(q("migrations"))?;
        s.migrations = rows
            .iter()
            .filter_map(|r| r.try_get::<i64, _>(0).ok())
            .collect();
        Ok(s)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The opportunity queries, built from one filter so count and select cannot disagree.
struct AssertFilter;

impl AssertFilter {
    fn count(filter: &'static str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM opportunities WHERE {filter}"))
    }

    fn select(filter: &'static str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(format!(
            "SELECT id, received_at, body FROM opportunities WHERE {filter}
             ORDER BY generated_at DESC, id DESC LIMIT ?4 OFFSET ?5"
        ))
    }
}
