//! `atalaya download` against a fake Binance REST API: every closed bar stored once, the
//! forming one left out, a second run resumes, an unknown symbol is named, and a 429 with
//! Retry-After is waited out.

use std::collections::BTreeMap;

use atalaya_store::{SqliteStore, Store};
use atalaya_testkit::fake_binance::{FakeBinance, Listing};

const H_MS: i64 = 3_600_000;

fn listing(base: &str, n: i64, price: f64) -> Listing {
    // Hourly bars ending with the one forming now.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let last_open = now_ms / H_MS * H_MS;
    let bars = (0..n)
        .map(|i| {
            let t = last_open - (n - 1 - i) * H_MS;
            let c = price + (i as f64 / 10.0).sin();
            (t, c - 0.2, c + 0.5, c - 0.5, c, 10.0 + i as f64)
        })
        .collect();
    Listing {
        base: base.into(),
        quote: "USDT".into(),
        step_ms: H_MS,
        bars,
    }
}

fn download(url: &str, db: &std::path::Path, symbols: &str, from: &str) -> std::process::Output {
    crate::atalaya()
        .env("ATALAYA_VENUES__BINANCE__REST_URL", url)
        .args([
            "download",
            "--venue",
            "binance",
            "--symbols",
            symbols,
            "--timeframe",
            "1h",
            "--from",
            from,
            "--db",
        ])
        .arg(db)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_fills_the_store_resumes_and_names_unknown_symbols() {
    let mut l = BTreeMap::new();
    l.insert("BTCUSDT".to_owned(), listing("BTC", 2_500, 60_000.0));
    l.insert("ETHUSDT".to_owned(), listing("ETH", 2_500, 3_000.0));
    let first_ms = l["BTCUSDT"].bars[0].0;
    let fake = FakeBinance::start(l).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let from = atalaya_model::format_utc(first_ms * 1_000_000);
    let out = download(&fake.url(), &db, "BTCUSDT,ETH/USDT", &from);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("BTCUSDT (binance:BTC/USDT): 2499 bars fetched"),
        "{stdout}"
    );
    let store = SqliteStore::open(&db).await.unwrap();
    let stats = store.stats().await.unwrap();
    store.close().await;
    let rows: Vec<(String, u64)> = stats
        .series
        .iter()
        .map(|s| (s.instrument.clone(), s.rows))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("binance:BTC/USDT".to_owned(), 2_499),
            ("binance:ETH/USDT".to_owned(), 2_499)
        ],
        "every closed bar, not the forming one"
    );
    // At most 1,000 klines per request: 3 per symbol.
    let klines = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("klines"))
        .count();
    assert!(klines <= 8, "{klines}");

    // Again: nothing new to fetch.
    let before = fake.requests().len();
    let out = download(&fake.url(), &db, "BTCUSDT,ETHUSDT", &from);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("0 bars fetched, 2499 already stored"),
        "{stdout}"
    );
    assert!(
        fake.requests().len() - before <= 3,
        "resumed from the last bar"
    );

    // A 429 is waited out (Retry-After 1 s), then the download goes on.
    let db2 = dir.path().join("h2.db");
    fake.refuse_next(429, 1);
    let t0 = std::time::Instant::now();
    let out = download(&fake.url(), &db2, "BTCUSDT", &from);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t0.elapsed() >= std::time::Duration::from_secs(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(1 refused by the venue and retried)"));

    // An unknown symbol is named.
    let out = download(&fake.url(), &db, "BTCUSDT,NOPEUSDT", &from);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Binance does not know NOPEUSDT"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coingecko_statistics_feed_the_fundamental_factor_of_a_live_run() {
    use atalaya_store::OpportunityQuery;
    use atalaya_testkit::fake_http::{Canned, FakeHttp};
    let coin = |id: &str, sym: &str| {
        serde_json::json!({"id": id, "symbol": sym, "name": id, "market_cap": 1.0e12, "total_volume": 2.0e10,
            "price_change_percentage_24h": 2.0, "price_change_percentage_24h_in_currency": 2.0,
            "price_change_percentage_7d_in_currency": 9.0})
    };
    let cg = FakeHttp::start(Canned::json(
        200,
        serde_json::json!([
            coin("bitcoin", "btc"),
            coin("ethereum", "eth"),
            coin("solana", "sol")
        ]),
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("atalaya.toml");
    // The simulated market starts now, so that the statistics (stamped with the wall clock)
    // are current for its bars.
    let start = atalaya_model::format_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64
            / 60_000_000_000
            * 60_000_000_000,
    );
    std::fs::write(
        &cfg,
        format!(
            "[live]\nsources = [\"sim\", \"coingecko\"]\n[sim]\nstart = \"{start}\"\n[coingecko]\nbase_url = \"{}\"\n\
             [alerts.console]\nenabled = false\n[server]\nenabled = false\n",
            cg.url()
        ),
    )
    .unwrap();
    let db = dir.path().join("cg.db");
    let out = crate::atalaya()
        .arg("--config")
        .arg(&cfg)
        .args(["run", "--demo", "--speed", "max", "--for", "12h", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!cg.requests().is_empty(), "CoinGecko was polled");
    let store = SqliteStore::open(&db).await.unwrap();
    let page = store
        .opportunities(&OpportunityQuery {
            page: 1,
            per_page: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    let with: Vec<_> = page
        .items
        .iter()
        .filter(|o| {
            o.opportunity
                .factors()
                .iter()
                .any(|f| f.name == "fundamental" && f.available)
        })
        .collect();
    assert!(!with.is_empty(), "some opportunity used the statistics");
    for o in &with {
        let base = o.opportunity.instrument().base().as_str().to_owned();
        assert!(["BTC", "ETH", "SOL"].contains(&base.as_str()), "{base}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_history_comes_in_windows_of_300_and_unknown_products_are_named() {
    use atalaya_testkit::fake_coinbase::FakeCoinbase;
    let mut l = BTreeMap::new();
    let mut btc = listing("BTC", 1_000, 60_000.0);
    btc.quote = "USD".into();
    l.insert("BTC-USD".to_owned(), btc);
    let first_ms = l["BTC-USD"].bars[0].0;
    let fake = FakeCoinbase::start(l).await.unwrap();
    fake.refuse_next(1);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cb.db");
    let from = atalaya_model::format_utc(first_ms * 1_000_000);
    let run = |symbols: &str| {
        crate::atalaya()
            .env("ATALAYA_VENUES__COINBASE__REST_URL", fake.url())
            .args([
                "download",
                "--venue",
                "coinbase",
                "--symbols",
                symbols,
                "--timeframe",
                "1h",
                "--from",
                &from,
                "--db",
            ])
            .arg(&db)
            .output()
            .unwrap()
    };
    let out = run("BTC/USD");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("BTC-USD (coinbase:BTC/USD): 999 bars fetched"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(1 refused by the venue and retried)"),
        "{stdout}"
    );
    let store = SqliteStore::open(&db).await.unwrap();
    let stats = store.stats().await.unwrap();
    store.close().await;
    assert_eq!(stats.series[0].rows, 999, "every closed bar once, in order");
    // No window asked for 350 bars or more (the fake refuses those as the API does).
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.starts_with("candles"))
            .count()
            >= 4
    );
    let out = run("BTC-USD,NOPE-USD");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Coinbase does not know NOPE-USD"));
}
