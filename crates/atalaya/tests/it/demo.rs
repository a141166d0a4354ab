use std::path::Path;
use std::time::Duration;

use atalaya::config::AppConfig;
use atalaya::run::{RunOptions, run};
use atalaya_model::{Opportunity, Timeframe};
use atalaya_sources::Speed;
use atalaya_store::{OpportunityQuery, SqliteStore, Store, StoreConfig};
use tokio_util::sync::CancellationToken;

fn config(db: &Path, seed: u64) -> AppConfig {
    let mut cfg = AppConfig {
        store: StoreConfig::Sqlite {
            path: db.to_owned(),
        },
        ..AppConfig::default()
    };
    cfg.server.enabled = false;
    cfg.alerts.console.enabled = false;
    cfg.sim.seed = seed;
    cfg
}

async fn run_sim(db: &Path, seed: u64, span: Duration) -> atalaya::run::RunSummary {
    let opts = RunOptions {
        demo: true,
        speed: Speed::Max,
        for_: Some(span),
        progress: false,
    };
    run(config(db, seed), opts, CancellationToken::new())
        .await
        .unwrap()
}

async fn all_opportunities(db: &Path) -> Vec<Opportunity> {
    let store = SqliteStore::open(db).await.unwrap();
    let page = store
        .opportunities(&OpportunityQuery {
            page: 1,
            per_page: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.total <= 1000, "raise per_page");
    store.close().await;
    let mut v: Vec<Opportunity> = page.items.into_iter().map(|s| s.opportunity).collect();
    v.sort_by_key(|o| o.id());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_simulated_day_stores_every_bar_and_finds_explained_opportunities() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("day.db");
    let s = run_sim(&db, 42, Duration::from_secs(86_400)).await;
    let store = SqliteStore::open(&db).await.unwrap();
    let stats = store.stats().await.unwrap();
    // Five instruments, each with every bar of the day on every timeframe.
    let expected = |tf: Timeframe| (86_400_000_000_000 / tf.nanos()) as u64;
    assert_eq!(stats.series.len(), 5 * 4);
    for series in &stats.series {
        let tf: Timeframe = series.timeframe.parse().unwrap();
        assert_eq!(series.rows, expected(tf), "{series:?}");
    }
    assert_eq!(stats.candles, 5 * (1440 + 288 + 96 + 24));
    assert_eq!(s.pipeline.candles_out, stats.candles);
    assert_eq!(s.stored_candles, stats.candles);
    assert_eq!(s.pipeline.late, 0);
    // Opportunities: found, stored, and explained.
    assert!(s.pipeline.opportunities > 0);
    assert_eq!(stats.opportunities, s.pipeline.opportunities);
    // Every opportunity has its alert stored: routed, or suppressed as a repeat.
    assert_eq!(stats.alerts, s.alerts + s.alerts_suppressed);
    let opps = all_opportunities(&db).await;
    assert!(opps.iter().any(|o| o.kind().direction() > 0));
    assert!(opps.iter().any(|o| o.kind().direction() < 0));
    for o in &opps {
        let sum: f64 = o.factors().iter().map(|f| f.contribution).sum();
        assert!((sum - o.score()).abs() < 1e-9, "{o:?}");
        assert!(o.factors().iter().filter(|f| f.available).count() >= 4);
        assert!(o.confidence() >= 0.5);
        assert!(o.expected_return().signum() == f64::from(o.kind().direction()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_a_byte_identical_opportunity_stream() {
    let dir = tempfile::tempdir().unwrap();
    let span = Duration::from_secs(8 * 3600);
    let (a, b, c) = (
        dir.path().join("a.db"),
        dir.path().join("b.db"),
        dir.path().join("c.db"),
    );
    run_sim(&a, 7, span).await;
    run_sim(&b, 7, span).await;
    run_sim(&c, 8, span).await;
    let (oa, ob, oc) = (
        all_opportunities(&a).await,
        all_opportunities(&b).await,
        all_opportunities(&c).await,
    );
    assert!(!oa.is_empty());
    let bytes = |v: &Vec<Opportunity>| serde_json::to_vec(v).unwrap();
    assert_eq!(bytes(&oa), bytes(&ob));
    assert_ne!(bytes(&oa), bytes(&oc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_telegram_and_repeats_are_suppressed() {
    use atalaya_testkit::fake_http::{Canned, FakeHttp};
    let telegram = FakeHttp::start(Canned::telegram_ok()).await.unwrap();
    // The first answer is flood control: the alert must be retried, not lost.
    telegram.push(Canned::telegram_429(1));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("t.db"), 11);
    cfg.alerts.telegram.enabled = true;
    cfg.alerts.telegram.base_url = telegram.url();
    cfg.alerts.telegram.chat_id = "42".into();
    cfg.alerts.telegram.bot_token = "123:test".into();
    let opts = RunOptions {
        demo: true,
        speed: Speed::Max,
        for_: Some(Duration::from_secs(3 * 3600)),
        progress: false,
    };
    let s = run(cfg, opts, CancellationToken::new()).await.unwrap();
    assert!(s.alerts > 0, "{s:?}");
    assert!(
        s.alerts < 50,
        "the test must stay inside Telegram's hourly budget: {}",
        s.alerts
    );
    let reqs = telegram.requests();
    // Every alert was delivered once, plus the one retry after the 429.
    assert_eq!(reqs.len() as u64, s.alerts + 1);
    // Each alert is a chart (sendPhoto, multipart) with the message as its caption.
    for r in &reqs {
        assert_eq!(r.path, "/bot123:test/sendPhoto");
        let ct = r
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        assert!(ct.starts_with("multipart/form-data"), "{ct}");
        assert!(
            r.body.contains("name=\"chat_id\"\r\n\r\n42"),
            "{}",
            &r.body[..200.min(r.body.len())]
        );
        assert!(r.body.contains("name=\"photo\"; filename=\"chart.png\""));
        assert!(r.body.contains("PNG"));
        assert!(r.body.contains("name=\"parse_mode\"\r\n\r\nHTML"));
        assert!(r.body.contains("Not financial advice."));
    }
    assert_eq!(s.pipeline.opportunities, s.alerts + s.alerts_suppressed);
}
