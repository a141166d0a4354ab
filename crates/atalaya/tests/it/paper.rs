//! The live paper trader: its journal in the store, and a restart after SIGKILL that ends in
//! exactly the state of an uninterrupted run.

use std::path::Path;
use std::process::Command;

use atalaya_store::{SqliteStore, Store};

const CONFIG: &str = r#"
[engine]
timeframes = ["1m", "5m"]
decision_timeframes = ["1m"]
[[engine.rules]]
name = "dip"
when = "rsi_14 < 30"
action = "buy"
[[engine.rules]]
name = "rip"
when = "rsi_14 > 70"
action = "sell"
[alerts.console]
enabled = false
[server]
enabled = false
"#;

fn run_cmd(cfg: &Path, db: &Path) -> Command {
    crate::demo_run(cfg, db, "3d", 21)
}

/// (instrument, entry, exit, pnl) of every stored trade, and the number of audit rows.
async fn journal(db: &Path) -> Vec<(String, i64, i64, String)> {
    let store = SqliteStore::open(db).await.unwrap();
    let mut rows: Vec<(String, i64, i64, String)> = store
        .paper_trades(1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.instrument, r.entry_time, r.exit_time, r.pnl))
        .collect();
    store.close().await;
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_run_resumes_to_the_same_portfolio_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(&cfg, CONFIG).unwrap();

    let whole = dir.path().join("whole.db");
    let out = run_cmd(&cfg, &whole).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = journal(&whole).await;
    assert!(want.len() > 50, "the rules should trade: {}", want.len());

    // Kill the second run with SIGKILL once it has stored some trades, mid-stream.
    let cut = dir.path().join("cut.db");
    let mut seen = 0;
    crate::sigkill_when(run_cmd(&cfg, &cut), &cut, async || {
        seen = journal(&cut).await.len();
        seen >= 10
    })
    .await;
    let partial = journal(&cut).await;
    assert!(
        partial.len() >= seen && partial.len() < want.len(),
        "killed mid-run: {} of {} trades stored",
        partial.len(),
        want.len()
    );

    // The restart replays the stored bars, then continues; the journal ends identical.
    let out = run_cmd(&cfg, &cut).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stored bars replayed to restore it"), "{err}");
    assert_eq!(journal(&cut).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drawdown_breaker_raises_a_critical_system_alert() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(
        &cfg,
        format!("{CONFIG}\n[risk]\nmax_drawdown = 0.005\nbreaker_bars = 30\n"),
    )
    .unwrap();
    let db = dir.path().join("b.db");
    let out = run_cmd(&cfg, &db).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = SqliteStore::open(&db).await.unwrap();
    let alerts = store.alerts(None, 1, 1000).await.unwrap();
    store.close().await;
    let tripped: Vec<_> = alerts
        .items
        .iter()
        .filter(|a| a.title == "Paper portfolio: drawdown breaker tripped")
        .collect();
    assert!(
        !tripped.is_empty(),
        "{:?}",
        alerts.items.iter().map(|a| &a.title).collect::<Vec<_>>()
    );
    assert_eq!(tripped[0].priority, "critical");
    assert!(
        tripped[0].body.contains("new entries paused for 30 bars"),
        "{}",
        tripped[0].body
    );
    assert!(
        alerts
            .items
            .iter()
            .any(|a| a.title == "Paper portfolio: entries resume")
    );
}
