//! `atalaya run` on Binance live (the fake Binance: WebSocket combined streams and REST): the
//! stored candles have no gap and no duplicate through a dropped connection, and a restart
//! backfills the time it was down.

use std::collections::BTreeMap;

use atalaya_model::Timeframe;
use atalaya_store::{CandleQuery, SqliteStore, Store};
use atalaya_testkit::fake_binance::{FakeBinance, Listing, WsStep};

const M_MS: i64 = 60_000;

fn listing(n: usize) -> Listing {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = (now_ms / M_MS - n as i64 - 5) * M_MS;
    Listing {
        base: "BTC".into(),
        quote: "USDT".into(),
        step_ms: M_MS,
        bars: (0..n)
            .map(|i| {
                let p = 60_000.0 + (i as f64 * 0.3).sin() * 300.0;
                (
                    first + i as i64 * M_MS,
                    p,
                    p + 40.0,
                    p - 60.0,
                    p + 10.0,
                    3.0,
                )
            })
            .collect(),
    }
}

fn kline(index: usize) -> WsStep {
    WsStep::Kline {
        symbol: "BTCUSDT".into(),
        index,
    }
}

async fn stored_opens(db: &std::path::Path) -> Vec<i64> {
    let store = SqliteStore::open(db).await.unwrap();
    let c = store
        .candles(&CandleQuery {
            instrument: "binance:BTC/USDT".parse().unwrap(),
            timeframe: Timeframe::M1,
            from: None,
            to: None,
            limit: u32::MAX,
        })
        .await
        .unwrap();
    store.close().await;
    c.iter().map(|c| c.open_time() / 1_000_000).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_binance_stores_every_candle_once_across_drops_and_restarts() {
    let truth = listing(160);
    let opens: Vec<i64> = truth.bars.iter().map(|b| b.0).collect();
    let fake = FakeBinance::start(BTreeMap::from([("BTCUSDT".to_owned(), truth)]))
        .await
        .unwrap();
    let mut steps: Vec<WsStep> = (0..80).map(kline).collect();
    steps.push(WsStep::Raw(
        "{\"stream\":\"btcusdt@kline_1m\",\"data\":{".into(),
    ));
    steps.push(WsStep::Advance {
        symbol: "BTCUSDT".into(),
        closed: 100,
    });
    steps.push(WsStep::Drop);
    steps.extend((100..120).map(kline));
    fake.play(steps);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(
        &cfg,
        format!(
            "[live]\nsources = [\"binance\"]\n[venues.binance]\nrest_url = \"{}\"\nws_url = \"{}\"\n\
             symbols = [\"BTCUSDT\"]\ntrades = \"none\"\nbook_ticker = false\nstale_after_secs = 2\n\
             [alerts.console]\nenabled = false\n[server]\nenabled = false\n",
            fake.url(),
            fake.ws_url()
        ),
    )
    .unwrap();
    let db = dir.path().join("live.db");
    let run = || {
        crate::atalaya()
            .arg("--config")
            .arg(&cfg)
            .args(["run", "--for", "5s", "--quiet", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.steps_left(), 0, "the script was played");
    assert_eq!(stored_opens(&db).await, opens[..120].to_vec());
    // Down for 30 bars; then the stream goes on from bar 150.
    fake.set_closed("BTCUSDT", 150);
    fake.play((150..160).map(kline));
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored_opens(&db).await, opens, "no gap, no duplicate");
    assert!(fake.connections().len() >= 3, "{:?}", fake.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_coinbase_stores_every_closed_bucket_once_across_a_drop_and_a_restart() {
    use atalaya_testkit::fake_coinbase::{CbStep, FakeCoinbase};
    const STEP: i64 = 300_000;
    let mut truth = listing(60);
    truth.quote = "USD".into();
    truth.step_ms = STEP;
    // Five-minute buckets, ending in the past.
    let base = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / STEP
        - 65)
        * STEP;
    for (i, b) in truth.bars.iter_mut().enumerate() {
        b.0 = base + i as i64 * STEP;
    }
    let opens: Vec<i64> = truth.bars.iter().map(|b| b.0).collect();
    let fake = FakeCoinbase::start(BTreeMap::from([("BTC-USD".to_owned(), truth)]))
        .await
        .unwrap();
    let candle = |index| CbStep::Candle {
        product: "BTC-USD".into(),
        index,
    };
    let mut steps: Vec<CbStep> = (0..30).map(candle).collect();
    steps.push(CbStep::Advance {
        product: "BTC-USD".into(),
        closed: 35,
    });
    steps.push(CbStep::Drop);
    steps.extend((35..41).map(candle));
    fake.play(steps);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(
        &cfg,
        format!(
            "[live]\nsources = [\"coinbase\"]\n[venues.coinbase]\nrest_url = \"{}\"\nws_url = \"{}\"\n\
             products = [\"BTC-USD\"]\nstale_after_secs = 2\n\
             [alerts.console]\nenabled = false\n[server]\nenabled = false\n",
            fake.url(),
            fake.ws_url()
        ),
    )
    .unwrap();
    let db = dir.path().join("cb.db");
    let run = || {
        crate::atalaya()
            .arg("--config")
            .arg(&cfg)
            .args(["run", "--for", "5s", "--quiet", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    };
    let stored = |db: std::path::PathBuf| async move {
        let store = SqliteStore::open(&db).await.unwrap();
        let c = store
            .candles(&CandleQuery {
                instrument: "coinbase:BTC/USD".parse().unwrap(),
                timeframe: Timeframe::M5,
                from: None,
                to: None,
                limit: u32::MAX,
            })
            .await
            .unwrap();
        store.close().await;
        c.iter()
            .map(|c| c.open_time() / 1_000_000)
            .collect::<Vec<i64>>()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bucket 40 is still forming.
    assert_eq!(stored(db.clone()).await, opens[..40].to_vec());
    fake.set_closed("BTC-USD", 55);
    fake.play((55..60).map(candle));
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stored(db.clone()).await,
        opens[..59].to_vec(),
        "no gap, no duplicate"
    );
}

/// `atalaya run` with `live.sources = ["onchain"]` against the fake mempool API and Ethereum
/// node: the metrics reach the store with the time they became known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_onchain_metrics_reach_the_store() {
    use atalaya_testkit::fake_chain::{ChainState, FakeChain};
    let mut state = ChainState::default();
    state.supplies.insert(
        "0xdac17f958d2ee523a2206206994597c13d831ec7".into(),
        1_000_000_000_000,
    );
    let chain = FakeChain::start(state).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    std::fs::write(
        &cfg,
        format!(
            "[live]\nsources = [\"onchain\"]\n[onchain]\nmempool_url = \"{}\"\nethereum_rpc_url = \"{}\"\n\
             poll_secs = 1\nrequests_per_minute = 600\n\
             [alerts.console]\nenabled = false\n[server]\nenabled = false\n",
            chain.mempool_url(),
            chain.rpc_url()
        ),
    )
    .unwrap();
    let db = dir.path().join("live.db");
    let out = crate::atalaya()
        .arg("--config")
        .arg(&cfg)
        .args(["run", "--for", "3s", "--quiet", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = SqliteStore::open(&db).await.unwrap();
    let stats = store.stats().await.unwrap();
    store.close().await;
    // A round is 5 fee, 3 mempool, 2 hash-rate, 1 gas, 3 block and 1 supply readings.
    assert!(stats.onchain_metrics >= 15, "{stats:?}");
}
