//! The sentiment index after a restart: the stored headlines go back into the index with the
//! stored bars, so a run killed with SIGKILL and restarted stores exactly the opportunities —
//! every factor, sentiment included — that an uninterrupted run stores.

use std::path::Path;
use std::process::Command;

use atalaya_store::{OpportunityQuery, SqliteStore, Store};

const CONFIG: &str = r#"
[engine]
timeframes = ["1m", "15m"]
decision_timeframes = ["15m"]
[alerts.console]
enabled = false
[server]
enabled = false
"#;

fn run_cmd(cfg: &Path, db: &Path) -> Command {
    crate::demo_run(cfg, db, "4d", 5)
}

/// Every stored opportunity as text: time, instrument, kind, score and each factor.
async fn opportunities(db: &Path) -> (Vec<String>, u64) {
    let store = SqliteStore::open(db).await.unwrap();
    let page = store
        .opportunities(&OpportunityQuery {
            page: 1,
            per_page: 1_000_000,
            ..OpportunityQuery::default()
        })
        .await
        .unwrap();
    let texts = store.stats().await.unwrap().text_items;
    store.close().await;
    let mut rows: Vec<String> = page
        .items
        .iter()
        .map(|s| {
            let o = &s.opportunity;
            let factors: Vec<String> = o
                .factors()
                .iter()
                .map(|f| format!("{}={}:{:.12}", f.name, f.available, f.value))
                .collect();
            format!(
                "{} {} {} {:.12} {}",
                o.generated_at(),
                o.instrument(),
                o.kind(),
                o.score(),
                factors.join(",")
            )
        })
        .collect();
    rows.sort();
    (rows, texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rebuilds_the_sentiment_index_from_the_stored_headlines() {
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
    let (want, texts) = opportunities(&whole).await;
    assert!(texts > 0, "the demo's headlines are stored");
    let with_sentiment = want.iter().filter(|o| o.contains("sentiment=true")).count();
    assert!(
        with_sentiment > 0,
        "some decisions read the sentiment index: {want:?}"
    );

    let cut = dir.path().join("cut.db");
    let enough = want.len() / 5;
    crate::sigkill_when(run_cmd(&cfg, &cut), &cut, async || {
        opportunities(&cut).await.0.len() >= enough
    })
    .await;
    let partial = opportunities(&cut).await.0.len();
    assert!(
        partial < want.len(),
        "killed mid-run: {partial} of {}",
        want.len()
    );

    let out = run_cmd(&cfg, &cut).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("sentiment index rebuilt"), "{err}");
    assert_eq!(opportunities(&cut).await.0, want);
}
