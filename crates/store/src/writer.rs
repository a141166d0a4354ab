//! The store's one writer task: drains a reliable bus subscription and commits each batch
//! in one transaction. Transient failures (a locked database) are retried with exponential
//! backoff; when the subscription ends (shutdown), whatever is queued is written before the
//! task returns, so a graceful shutdown loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atalaya_bus::Subscription;
use atalaya_model::{Envelope, Event};
use serde::Serialize;

use crate::{Batch, Store, StoreError, TextItem};

/// Writer tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Most messages per transaction.
    pub max_batch: usize,
    /// Retries of a transient failure before giving up.
    pub max_retries: u32,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 4096,
            max_retries: 8,
        }
    }
}

/// Rows written so far; shared so that status pages and tests can watch progress.
#[derive(Debug, Default, Serialize)]
pub struct WriterCounters {
    /// Committed transactions.
    pub batches: AtomicU64,
    /// Candle rows written.
    pub candles: AtomicU64,
    /// Opportunity rows written.
    pub opportunities: AtomicU64,
    /// Alert rows written.
    pub alerts: AtomicU64,
    /// Text item rows written.
    pub text_items: AtomicU64,
    /// Retried transient failures.
    pub retries: AtomicU64,
}

impl WriterCounters {
    /// Candle rows written.
    pub fn candles(&self) -> u64 {
        self.candles.load(Ordering::Acquire)
    }
    /// Opportunity rows written.
    pub fn opportunities(&self) -> u64 {
        self.opportunities.load(Ordering::Acquire)
    }
}

/// Adds the storable part of `env` to `batch`; other events are ignored.
pub fn add_to_batch(batch: &mut Batch, env: Envelope<Event>) {
    match env.payload {
        Event::Candle(c) => batch.candles.push(c),
        Event::Opportunity(o) => batch.opportunities.push((*o, env.ts_received)),
        Event::Alert(a) => batch.alerts.push(*a),
        Event::News(n) => batch.text_items.push((TextItem::News(*n), env.ts_received)),
        Event::Social(p) => batch
            .text_items
            .push((TextItem::Social(*p), env.ts_received)),
        Event::Onchain(m) => batch.onchain.push((*m, env.ts_received)),
        _ => {}
    }
}

async fn write_with_retry(
    store: &dyn Store,
    batch: &Batch,
    cfg: WriterConfig,
    counters: &WriterCounters,
) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        match store.write(batch).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < cfg.max_retries => {
                attempt += 1;
                counters.retries.fetch_add(1, Ordering::Relaxed);
                let wait = Duration::from_millis(50u64 << attempt.min(7));
                tracing::warn!(error = %e, attempt, ?wait, "store write failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs until `sub` ends, writing everything it delivers.
pub async fn run(
    store: Arc<dyn Store>,
    mut sub: Box<dyn Subscription>,
    cfg: WriterConfig,
    counters: Arc<WriterCounters>,
) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    let mut buf = Vec::with_capacity(cfg.max_batch);
    while let Some(first) = sub.recv().await {
        buf.push(first);
        sub.try_recv_many(&mut buf, cfg.max_batch.saturating_sub(1));
        // An opportunity's alert follows it on the stream: never end a transaction between
        // the two, so that the opportunity, its alert and the alert's deliveries are written
        // together (the outbox's guarantee).
        while buf
            .last()
            .is_some_and(|e| matches!(e.payload, Event::Opportunity(_)))
        {
            match sub.recv().await {
                Some(next) => buf.push(next),
                None => break,
            }
        }
        for env in buf.drain(..) {
            add_to_batch(&mut batch, env);
        }
        if batch.is_empty() {
            continue;
        }
        write_with_retry(store.as_ref(), &batch, cfg, &counters).await?;
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters
            .candles
            .fetch_add(batch.candles.len() as u64, Ordering::AcqRel);
        counters
            .opportunities
            .fetch_add(batch.opportunities.len() as u64, Ordering::AcqRel);
        counters
            .alerts
            .fetch_add(batch.alerts.len() as u64, Ordering::AcqRel);
        counters
            .text_items
            .fetch_add(batch.text_items.len() as u64, Ordering::AcqRel);
        batch.clear();
    }
    Ok(())
}
