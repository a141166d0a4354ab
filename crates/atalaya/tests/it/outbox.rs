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
        let mut c = Command::new(env!("CARGO_BIN_EXE_atalaya"));
        c.env_remove("ATALAYA_LOG")
            .env("ATALAYA_ALERTS__WEBHOOK__SECRET", "s3cret")
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
