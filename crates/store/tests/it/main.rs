//! Store integration tests against a real SQLite file.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use std::sync::Arc;

use atalaya_bus::{Bus, Delivery, InProcessBus, Topic};
use atalaya_model::{
    Alert, AlertPriority, Candle, Envelope, Event, FactorContribution, InstrumentId, NewsItem,
    Opportunity, OpportunityKind, OpportunityRaw, Symbol, Timeframe,
};
use atalaya_store::writer::{self, WriterConfig, WriterCounters};
use atalaya_store::{Batch, CandleQuery, OpportunityQuery, SqliteStore, Store, TextItem};

const MIN: i64 = 60_000_000_000;

fn id(s: &str) -> InstrumentId {
    s.parse().unwrap()
}

fn candle(inst: &str, i: i64, close: f64) -> Candle {
    Candle::new(
        id(inst),
        Timeframe::M1,
        i * MIN,
        [close, close + 1.0, close - 1.0, close],
        2.0,
        4,
    )
    .unwrap()
}

fn opp(inst: &str, t: i64, kind: OpportunityKind) -> Opportunity {
    let value = if kind.direction() > 0 { 0.7 } else { -0.7 };
    Opportunity::new(OpportunityRaw {
        id: 1,
        instrument: id(inst),
        timeframe: Timeframe::M5,
        kind,
        score: value,
        confidence: 0.8,
        expected_return: 0.01 * value,
        risk_level: 0.2,
        horizon_ns: 12 * 5 * MIN,
        price: 100.0,
        stop_loss: None,
        take_profit: None,
        generated_at: t,
        factors: vec![FactorContribution {
            name: "technical".into(),
            available: true,
            value,
            weight: 1.0,
            contribution: value,
            detail: "test".into(),
        }],
    })
    .unwrap()
}

/// A writer with small batches on a fresh bus: the bus, its counters and its task.
fn spawn_writer(
    store: &Arc<dyn Store>,
) -> (
    Arc<InProcessBus>,
    Arc<WriterCounters>,
    tokio::task::JoinHandle<Result<(), atalaya_store::StoreError>>,
) {
    let bus = Arc::new(InProcessBus::new(8));
    let sub = bus
        .subscribe(Topic::Outbound, "store", Delivery::Reliable)
        .unwrap();
    let counters = Arc::new(WriterCounters::default());
    let task = tokio::spawn(writer::run(
        store.clone(),
        sub,
        WriterConfig {
            max_batch: 16,
            max_retries: 2,
        },
        counters.clone(),
    ));
    (bus, counters, task)
}

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested/atalaya.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn candles_upsert_by_key_and_read_back_in_order() {
    let (_dir, store) = open().await;
    let mut b = Batch::default();
    for i in (0..10).rev() {
        b.candles.push(candle("sim:BTC/USDT", i, 100.0 + i as f64));
    }
    b.candles.push(candle("sim:ETH/USDT", 0, 10.0));
    store.write(&b).await.unwrap();
    // Writing a corrected bar replaces it; writing the same batch again adds nothing.
    store.write(&b).await.unwrap();
    let mut fix = Batch::default();
    fix.candles.push(candle("sim:BTC/USDT", 3, 500.0));
    store.write(&fix).await.unwrap();
    let q = CandleQuery {
        instrument: id("sim:BTC/USDT"),
        timeframe: Timeframe::M1,
        from: Some(2 * MIN),
        to: Some(5 * MIN),
        limit: 100,
    };
    let got = store.candles(&q).await.unwrap();
    assert_eq!(
        got.iter().map(|c| c.open_time() / MIN).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(got[1].close(), 500.0);
    assert_eq!(got[0], candle("sim:BTC/USDT", 2, 102.0));
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.candles, 11);
    assert_eq!(stats.series.len(), 2);
    assert_eq!(stats.migrations, vec![1, 2, 3, 4]);
    // Migrating twice is harmless.
    store.migrate().await.unwrap();
}

#[tokio::test]
async fn opportunities_filter_page_and_deduplicate() {
    let (_dir, store) = open().await;
    let mut b = Batch::default();
    for i in 0..25 {
        let kind = if i % 2 == 0 {
            OpportunityKind::Buy
        } else {
            OpportunityKind::Sell
        };
        let inst = if i % 5 == 0 {
            "sim:ETH/USDT"
        } else {
            "sim:BTC/USDT"
        };
        b.opportunities
            .push((opp(inst, i * MIN, kind), i * MIN + 1));
    }
    store.write(&b).await.unwrap();
    store.write(&b).await.unwrap();
    let all = store
        .opportunities(&OpportunityQuery {
            page: 1,
            per_page: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.total, 25);
    assert_eq!(all.items.len(), 10);
    assert_eq!(
        all.items[0].opportunity.generated_at(),
        24 * MIN,
        "newest first"
    );
    let page3 = store
        .opportunities(&OpportunityQuery {
            page: 3,
            per_page: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page3.items.len(), 5);
    let eth_buys = store
        .opportunities(&OpportunityQuery {
            instrument: Some(id("sim:ETH/USDT")),
            kind: Some(OpportunityKind::Buy),
            since: Some(5 * MIN),
            page: 1,
            per_page: 100,
        })
        .await
        .unwrap();
    // ETH at i = 0, 5, 10, 15, 20; buys are even i; since 5 min: 10 and 20.
    assert_eq!(eth_buys.total, 2);
    assert!(
        eth_buys
            .items
            .iter()
            .all(|s| s.opportunity.instrument() == id("sim:ETH/USDT"))
    );
}

#[tokio::test]
async fn alerts_text_items_and_onchain_metrics_are_stored_once() {
    let (_dir, store) = open().await;
    let mut b = Batch::default();
    b.alerts.push(Alert {
        id: 1,
        opportunity_id: Some(1),
        instrument: Some(id("sim:BTC/USDT")),
        priority: AlertPriority::High,
        title: "BUY sim:BTC/USDT".into(),
        body: "body".into(),
        created_at: 5,
        deliveries: Vec::new(),
        timeframe: None,
        short: None,
    });
    let news = NewsItem::new("n1", "sim", "Bitcoin jumps", 3).unwrap();
    b.text_items.push((TextItem::News(news), 4));
    let btc = Symbol::new("bitcoin").unwrap();
    for (metric, at) in [("fee_fastest", 4), ("fee_fastest", 5), ("mempool_vsize", 5)] {
        let m = atalaya_model::OnchainMetric::new(btc, metric, 12.0, "sat/vB").unwrap();
        b.onchain.push((m, at));
    }
    store.write(&b).await.unwrap();
    store.write(&b).await.unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!((s.alerts, s.text_items, s.onchain_metrics), (1, 1, 3));
}

#[tokio::test]
async fn writer_drains_everything_queued_before_returning() {
    let (_dir, store) = open().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let (bus, counters, task) = spawn_writer(&store);
    let src = Symbol::new("t").unwrap();
    for i in 0..1000 {
        let c = candle("sim:BTC/USDT", i, 100.0);
        bus.publish(
            Topic::Outbound,
            Envelope::new(i as u64, i, i, src, Event::Candle(c)),
        )
        .await
        .unwrap();
    }
    bus.publish(
        Topic::Outbound,
        Envelope::new(0, 0, 0, src, Event::Heartbeat),
    )
    .await
    .unwrap();
    bus.close(Topic::Outbound);
    task.await.unwrap().unwrap();
    assert_eq!(counters.candles(), 1000);
    assert_eq!(store.stats().await.unwrap().candles, 1000);
}

#[tokio::test]
async fn opening_a_path_that_is_a_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(err.to_string().contains("cannot open the store"), "{err}");
}

#[tokio::test]
async fn paper_journal_rows_are_written_once_and_read_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
    store.migrate().await.unwrap();
    let trade = |entry: i64, exit: i64| atalaya_store::PaperTradeRow {
        instrument: "sim:BTC/USDT".into(),
        entry_time: entry,
        exit_time: exit,
        pnl: "-1.5".into(),
        body: "{}".into(),
    };
    let audit = atalaya_store::PaperAuditRow {
        ts: 5,
        instrument: "sim:BTC/USDT".into(),
        action: "refuse".into(),
        reason: "cooling down".into(),
    };
    let batch = atalaya_store::Batch {
        paper_trades: vec![trade(1, 2), trade(3, 9)],
        paper_audit: vec![audit.clone(), audit],
        ..Default::default()
    };
    // A replay after a restart writes the same rows again: nothing doubles.
    store.write(&batch).await.unwrap();
    store.write(&batch).await.unwrap();
    let rows = store.paper_trades(10).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.exit_time).collect::<Vec<_>>(),
        vec![9, 2]
    );
    assert_eq!(store.paper_trades(1).await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn the_outbox_keeps_delivery_states_across_rewrites() {
    use atalaya_model::{AlertDelivery, AlertPriority, DeliveryState};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("o.db")).await.unwrap();
    store.migrate().await.unwrap();
    let alert = Alert {
        id: 1,
        opportunity_id: None,
        instrument: Some("sim:BTC/USDT".parse().unwrap()),
        priority: AlertPriority::High,
        title: "BUY sim:BTC/USDT (1h)".into(),
        body: "body".into(),
        created_at: 100,
        deliveries: vec![
            AlertDelivery {
                channel: "telegram".into(),
                state: DeliveryState::Pending,
                reason: None,
            },
            AlertDelivery {
                channel: "email".into(),
                state: DeliveryState::Suppressed,
                reason: Some("duplicate".into()),
            },
        ],
        timeframe: None,
        short: None,
    };
    let batch = Batch {
        alerts: vec![alert.clone()],
        ..Default::default()
    };
    store.write(&batch).await.unwrap();
    let due = store.due_deliveries(0, "telegram", 10).await.unwrap();
    assert_eq!(due.len(), 1, "only the pending one is due");
    assert!(
        store
            .due_deliveries(0, "email", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(due[0].channel, "telegram");
    assert_eq!(due[0].alert.title, alert.title);
    store
        .update_delivery(&atalaya_store::DeliveryUpdate {
            alert_id: due[0].alert_id,
            channel: "telegram".into(),
            state: DeliveryState::Pending,
            attempts: 1,
            next_attempt_at: 50,
            last_error: Some("HTTP 502".into()),
            reason: None,
            updated_at: 1,
        })
        .await
        .unwrap();
    assert!(
        store
            .due_deliveries(49, "telegram", 10)
            .await
            .unwrap()
            .is_empty(),
        "backing off"
    );
    assert_eq!(
        store.due_deliveries(50, "telegram", 10).await.unwrap()[0].attempts,
        1
    );
    // A replay writes the same alert again: its states are kept.
    store.write(&batch).await.unwrap();
    let page = store.alerts(None, 1, 10).await.unwrap();
    assert_eq!(page.total, 1);
    let d = &page.items[0].deliveries;
    assert_eq!(
        (d[0].channel.as_str(), d[0].state.as_str()),
        ("email", "suppressed")
    );
    assert_eq!(d[0].reason.as_deref(), Some("duplicate"));
    assert_eq!((d[1].state.as_str(), d[1].attempts), ("pending", 1));
    assert_eq!(d[1].last_error.as_deref(), Some("HTTP 502"));
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![
            ("email".to_owned(), "suppressed".to_owned(), 1),
            ("telegram".to_owned(), "pending".to_owned(), 1)
        ]
    );
    store.close().await;
}

#[tokio::test]
async fn an_opportunity_and_its_alert_are_written_in_one_transaction() {
    let (_dir, store) = open().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let (bus, counters, task) = spawn_writer(&store);
    let src = Symbol::new("t").unwrap();
    let o = opp("sim:BTC/USDT", 60, OpportunityKind::Buy);
    bus.publish(
        Topic::Outbound,
        Envelope::new(0, 60, 60, src, Event::Opportunity(Box::new(o))),
    )
    .await
    .unwrap();
    // The alert comes a little later: the writer must wait for it, not commit the
    // opportunity alone.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let alert = Alert {
        id: 1,
        opportunity_id: Some(1),
        instrument: Some(id("sim:BTC/USDT")),
        priority: AlertPriority::High,
        title: "BUY sim:BTC/USDT (1m)".into(),
        body: "body".into(),
        created_at: 60,
        deliveries: vec![atalaya_model::AlertDelivery {
            channel: "telegram".into(),
            state: atalaya_model::DeliveryState::Pending,
            reason: None,
        }],
        timeframe: None,
        short: None,
    };
    bus.publish(
        Topic::Outbound,
        Envelope::new(1, 60, 60, src, Event::Alert(Box::new(alert))),
    )
    .await
    .unwrap();
    bus.close(Topic::Outbound);
    task.await.unwrap().unwrap();
    assert_eq!(
        counters.batches.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let s = store.stats().await.unwrap();
    assert_eq!((s.opportunities, s.alerts), (1, 1));
    assert_eq!(
        store.due_deliveries(0, "telegram", 10).await.unwrap().len(),
        1
    );
}
