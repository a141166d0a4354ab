//! The alert outbox: a run killed with SIGKILL while alerts are being delivered loses none,
//! and sends at most one of them twice (the one in flight); every routed alert ends delivered.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atalaya_store::{SqliteStore, Store};
use atalaya_testkit::fake_http::{Canned, FakeHttp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_during_delivery_loses_no_alert_and_duplicates_at_most_the_one_in_flight() {
    // A slow receiver, so that the kill lands while a delivery is in flight.
    let hook = FakeHttp::start(Canned::json(200, serde_json::json!({})).delayed(60))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(
        &cfg,
        format!(
            "[alerts.console]\nenabled = false\n[alerts.webhook]\nenabled = true\nurl = \"{}/hook\"\n\
             [alerts.routes]\ncritical = [\"webhook\"]\nhigh = [\"webhook\"]\nmedium = [\"webhook\"]\nlow = [\"webhook\"]\n\
             [alerts.budget]\nwebhook = 100000\n[server]\nenabled = false\n",
            hook.url()
        ),
    )
    .unwrap();
    let db = dir.path().join("o.db");
    let cmd = || {
        let mut c = crate::atalaya();
        c.env("ATALAYA_ALERTS__WEBHOOK__SECRET", "s3cret")
            .arg("--config")
            .arg(&cfg)
            .args([
                "run", "--demo", "--speed", "max", "--for", "1d", "--seed", "5", "--db",
            ])
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let mut child = cmd().spawn().unwrap();
    let t0 = Instant::now();
    while hook.requests().len() < 5 && t0.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.wait();
    let before = hook.requests().len();
    assert!(before >= 5, "deliveries had started: {before}");

    let out = cmd().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = SqliteStore::open(&db).await.unwrap();
    let page = store.alerts(None, 1, 1000).await.unwrap();
    let counts = store.delivery_counts().await.unwrap();
    store.close().await;
    assert!(page.total < 1000, "raise per_page");
    let routed: Vec<i64> = page
        .items
        .iter()
        .filter(|a| a.deliveries.iter().any(|d| d.state != "suppressed"))
        .map(|a| a.id)
        .collect();
    assert!(
        routed.len() > before,
        "the run went on after the restart: {}",
        routed.len()
    );
    for a in &page.items {
        for d in &a.deliveries {
            assert!(
                d.state == "delivered" || d.state == "suppressed",
                "alert {} on {}: {:?}",
                a.id,
                d.channel,
                d
            );
        }
    }
    let mut sent: BTreeMap<i64, usize> = BTreeMap::new();
    for r in hook.requests() {
        let id = r.json()["id"].as_i64().unwrap();
        *sent.entry(id).or_default() += 1;
    }
    for id in &routed {
        assert!(sent.contains_key(id), "alert {id} was never delivered");
    }
    let duplicates: usize = sent.values().map(|n| n - 1).sum();
    assert!(duplicates <= 1, "{duplicates} duplicates: {sent:?}");
    let total: u64 = counts.iter().map(|c| c.2).sum();
    assert_eq!(
        total as usize,
        page.items.iter().map(|a| a.deliveries.len()).sum::<usize>()
    );
}

/// Records every send; never fails.
struct Recorder {
    name: &'static str,
    sent: std::sync::Arc<std::sync::Mutex<Vec<(&'static str, u64)>>>,
}

#[async_trait::async_trait]
impl atalaya_alerts::Notifier for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn send(&self, alert: &atalaya_model::Alert) -> Result<(), atalaya_alerts::AlertError> {
        self.sent.lock().unwrap().push((self.name, alert.id));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_ten_thousand_opportunities_keeps_every_budget_and_loses_nothing() {
    use atalaya_alerts::routing::{Channel, Deduplicator, Routes};
    use atalaya_model::{
        AlertDelivery, DeliveryState, FactorContribution, Opportunity, OpportunityKind,
        OpportunityRaw, Timeframe,
    };
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("b.db")).await.unwrap());
    store.migrate().await.unwrap();
    let configured = [
        Channel::Discord,
        Channel::Email,
        Channel::Sms,
        Channel::Webhook,
        Channel::Console,
    ];
    let routes = Routes::default();
    let mut dedup = Deduplicator::new(30 * 60_000_000_000);
    let ids: Vec<atalaya_model::InstrumentId> = ["BTC", "ETH", "SOL", "ADA", "XRP"]
        .iter()
        .map(|b| format!("sim:{b}/USDT").parse().unwrap())
        .collect();
    let kinds = [
        OpportunityKind::Buy,
        OpportunityKind::StrongBuy,
        OpportunityKind::Sell,
    ];
    let mut batch = atalaya_store::Batch::default();
    let mut routed_rows: BTreeMap<&str, usize> = BTreeMap::new();
    let mut suppressed = 0usize;
    for i in 0..10_000u64 {
        let kind = kinds[(i / 7 % 3) as usize];
        let dir_ = f64::from(kind.direction());
        // Confidence and expected return spread the alerts over every priority.
        let conf = [0.6, 0.75, 0.85, 0.95][(i % 4) as usize];
        let er = [0.02, 0.06, 0.12, 0.2][(i % 4) as usize] * dir_;
        let o = Opportunity::new(OpportunityRaw {
            id: i + 1,
            instrument: ids[(i % 5) as usize],
            timeframe: Timeframe::M1,
            kind,
            score: 0.7 * dir_,
            confidence: conf,
            expected_return: er,
            risk_level: 0.2,
            horizon_ns: 3_600_000_000_000,
            price: 100.0,
            stop_loss: Some(100.0 - 2.0 * dir_),
            take_profit: Some(100.0 + 4.0 * dir_),
            generated_at: 1_700_000_000_000_000_000 + i as i64 * 60_000_000_000,
            factors: vec![FactorContribution {
                name: "technical".into(),
                available: true,
                value: 0.7 * dir_,
                weight: 1.0,
                contribution: 0.7 * dir_,
                detail: "test".into(),
            }],
        })
        .unwrap();
        let mut alert = atalaya_alerts::alert_for(i + 1, &o);
        let why = dedup.check(&o).err().map(|w| w.to_string());
        if why.is_some() {
            suppressed += 1;
        }
        alert.deliveries = routes
            .route(alert.priority, &configured)
            .into_iter()
            .map(|c| {
                if why.is_none() {
                    *routed_rows.entry(c.as_str()).or_default() += 1;
                }
                AlertDelivery {
                    channel: c.as_str().into(),
                    state: if why.is_some() {
                        DeliveryState::Suppressed
                    } else {
                        DeliveryState::Pending
                    },
                    reason: why.clone(),
                }
            })
            .collect();
        batch.opportunities.push((o, 0));
        batch.alerts.push(alert);
    }
    store.write(&batch).await.unwrap();
    assert!(suppressed > 1000 && suppressed < 9000, "{suppressed}");

    let sent = Arc::new(Mutex::new(Vec::new()));
    let notifiers: Vec<atalaya::deliver::ChannelSetup> = configured
        .iter()
        .map(|c| {
            let n: Arc<dyn atalaya_alerts::Notifier> = Arc::new(Recorder {
                name: c.as_str(),
                sent: sent.clone(),
            });
            (*c, n, None)
        })
        .collect();
    let budgets = atalaya::config::BudgetConfig::default().per_channel();
    let finish = tokio_util::sync::CancellationToken::new();
    finish.cancel();
    atalaya::deliver::dispatch(
        store.clone(),
        notifiers,
        budgets.clone(),
        None,
        (finish, tokio_util::sync::CancellationToken::new()),
    )
    .await;

    let sent = sent.lock().unwrap().clone();
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (c, id) in &sent {
        *per.entry(c).or_default() += 1;
        assert!(seen.insert((*c, *id)), "{c} received alert {id} twice");
    }
    // No budget exceeded (a token or two may refill during the test).
    for (c, budget) in &budgets {
        let n = per.get(c.as_str()).copied().unwrap_or(0);
        assert!(
            n <= *budget as usize + 2,
            "{c:?}: {n} sends over a budget of {budget}"
        );
        if routed_rows.get(c.as_str()).copied().unwrap_or(0) > *budget as usize {
            assert!(n >= *budget as usize, "{c:?} used its budget: {n}");
        }
    }
    // The console has no budget: everything routed to it went out.
    assert_eq!(
        per.get("console").copied(),
        routed_rows.get("console").copied()
    );
    // The states add up per channel, and what is not delivered is still pending, not lost.
    let counts = store.delivery_counts().await.unwrap();
    for (channel, rows) in &routed_rows {
        let state = |s: &str| {
            counts
                .iter()
                .find(|(c, st, _)| c == channel && st == s)
                .map_or(0, |x| x.2 as usize)
        };
        assert_eq!(
            state("delivered"),
            per.get(channel).copied().unwrap_or(0),
            "{channel}"
        );
        assert_eq!(state("delivered") + state("pending"), *rows, "{channel}");
        assert_eq!(state("dead_lettered"), 0, "{channel}");
    }
    let suppressed_rows: u64 = counts
        .iter()
        .filter(|c| c.1 == "suppressed")
        .map(|c| c.2)
        .sum();
    assert!(suppressed_rows >= suppressed as u64);
}

/// (channel, title, body) of each message sent.
type SentTexts = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, String, String)>>>;

/// Records the titles and bodies sent.
struct Texts {
    name: &'static str,
    sent: SentTexts,
}

#[async_trait::async_trait]
impl atalaya_alerts::Notifier for Texts {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn send(&self, alert: &atalaya_model::Alert) -> Result<(), atalaya_alerts::AlertError> {
        self.sent
            .lock()
            .unwrap()
            .push((self.name, alert.title.clone(), alert.body.clone()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_folds_alerts_below_critical_into_one_message() {
    use atalaya_alerts::routing::Channel;
    use atalaya_model::{Alert, AlertDelivery, AlertPriority, DeliveryState};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("d.db")).await.unwrap());
    store.migrate().await.unwrap();
    let mut batch = atalaya_store::Batch::default();
    for i in 0..12i64 {
        batch.alerts.push(Alert {
            id: i as u64,
            opportunity_id: None,
            instrument: None,
            priority: if i == 11 {
                AlertPriority::Critical
            } else {
                AlertPriority::Low
            },
            title: format!("alert {i}"),
            body: format!("line {i}\nmore"),
            created_at: i * 1_000_000_000,
            deliveries: ["webhook", "console"]
                .iter()
                .map(|c| AlertDelivery {
                    channel: (*c).into(),
                    state: DeliveryState::Pending,
                    reason: None,
                })
                .collect(),
            timeframe: None,
            short: None,
        });
    }
    store.write(&batch).await.unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let notifiers: Vec<atalaya::deliver::ChannelSetup> = [Channel::Webhook, Channel::Console]
        .iter()
        .map(|c| {
            let n: Arc<dyn atalaya_alerts::Notifier> = Arc::new(Texts {
                name: c.as_str(),
                sent: sent.clone(),
            });
            (*c, n, None)
        })
        .collect();
    let digest = atalaya::deliver::Digest {
        window: Duration::from_millis(400),
        max_items: 30,
    };
    let finish = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(atalaya::deliver::dispatch(
        store.clone(),
        notifiers,
        atalaya::config::BudgetConfig::default().per_channel(),
        Some((digest, vec![Channel::Webhook])),
        (finish.clone(), tokio_util::sync::CancellationToken::new()),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    finish.cancel();
    task.await.unwrap();
    let sent = sent.lock().unwrap().clone();
    let webhook: Vec<_> = sent.iter().filter(|s| s.0 == "webhook").collect();
    // The critical one alone, the eleven low ones in one digest.
    assert_eq!(webhook.len(), 2, "{webhook:?}");
    let digest_msg = webhook
        .iter()
        .find(|s| s.1.starts_with("Atalaya digest"))
        .unwrap();
    assert_eq!(digest_msg.1, "Atalaya digest: 11 alerts");
    assert_eq!(
        digest_msg.2.lines().filter(|l| l.starts_with('•')).count(),
        11
    );
    assert!(digest_msg.2.contains("alert 3: line 3"));
    assert!(webhook.iter().any(|s| s.1 == "alert 11"));
    assert_eq!(
        sent.iter().filter(|s| s.0 == "console").count(),
        12,
        "no digest there"
    );
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![
            ("console".to_owned(), "delivered".to_owned(), 12),
            ("webhook".to_owned(), "delivered".to_owned(), 12)
        ]
    );
}
