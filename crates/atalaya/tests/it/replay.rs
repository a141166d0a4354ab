use atalaya::config::AppConfig;
use atalaya::replay::{ReplayOptions, replay};
use atalaya_store::{SqliteStore, Store, StoreConfig};
use atalaya_testkit::{walk, write_freqtrade_json, write_kline_csv};

const HOUR_MS: i64 = 3_600_000;

#[tokio::test]
async fn replays_a_fixture_and_reports_gaps_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let btc = dir.path().join("BTCUSDT_1h_fixture.csv");
    // 600 hourly bars from 2023-01-01 with bars 100 and 101 missing, plus two bad rows.
    let bars = walk(600, 1_672_531_200_000, HOUR_MS, 20_000.0, 1, &[100, 101]);
    write_kline_csv(
        &btc,
        &bars,
        &["1675000000000,1,2", "1675000000000,x,1,1,1,1"],
    )
    .unwrap();
    let eth = dir.path().join("ETH_USDT-1h.json");
    write_freqtrade_json(
        &eth,
        &walk(600, 1_672_531_200_000, HOUR_MS, 1_500.0, 2, &[]),
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let cfg = AppConfig {
        store: StoreConfig::Sqlite { path: db.clone() },
        ..AppConfig::default()
    };
    let opts = ReplayOptions {
        files: vec![btc, eth],
        venue: "binance".into(),
        save: true,
        ..Default::default()
    };
    let s = replay(&cfg, &opts).await.unwrap();
    assert_eq!(s.bars_in, 598 + 600);
    assert_eq!(s.files[0].gap_count, 1);
    assert_eq!(s.files[0].missing_bars, 2);
    assert_eq!(s.files[0].malformed_count, 2);
    assert_eq!(s.files[0].malformed[0].line, 600);
    assert_eq!(s.files[1].instrument.to_string(), "binance:ETH/USDT");
    // 1m, 5m and 15m cannot be built from hourly bars; 1h passes through.
    assert_eq!(s.timeframes, vec![atalaya_model::Timeframe::H1]);
    assert_eq!(s.pipeline.candles_out, 1198);
    let text = s.describe();
    assert!(
        text.contains("BTCUSDT_1h_fixture.csv:600: expected at least 6 columns"),
        "{text}"
    );
    assert!(text.contains("1 gaps, 2 bars missing"), "{text}");
    let store = SqliteStore::open(&db).await.unwrap();
    let st = store.stats().await.unwrap();
    assert_eq!(st.candles, 1198);
    assert_eq!(st.opportunities, s.pipeline.opportunities);
    // Replaying again is idempotent.
    replay(&cfg, &opts).await.unwrap();
    assert_eq!(store.stats().await.unwrap().candles, 1198);
}

#[tokio::test]
async fn replays_the_real_2023_hourly_data() {
    let Some(data) = atalaya_testkit::data_dir("replays_the_real_2023_hourly_data") else {
        return;
    };
    let dir = data.join("ohlcv_binance_spot_1h_2023_mit");
    let files = vec![
        dir.join("BTCUSDT_1h_2023-01-01_2024-01-10.csv"),
        dir.join("ETHUSDT_1h_2023-01-01_2024-01-10.csv"),
    ];
    let opts = ReplayOptions {
        files,
        venue: "binance".into(),
        ..Default::default()
    };
    let s = replay(&AppConfig::default(), &opts).await.unwrap();
    assert_eq!(s.bars_in, 2 * 8998);
    for f in &s.files {
        assert_eq!(f.rows, 8998, "{}", f.describe());
        assert_eq!(f.malformed_count, 0, "{}", f.describe());
        // Binance's hour missing on 2023-03-24 (13:00 UTC) is reported, not filled.
        assert_eq!((f.gap_count, f.missing_bars), (1, 1), "{}", f.describe());
        assert_eq!(
            atalaya_model::format_utc(f.gaps[0].after),
            "2023-03-24T12:00:00Z"
        );
    }
    assert_eq!(s.pipeline.candles_out, 2 * 8998);
    assert!(s.pipeline.opportunities > 0);
    assert!(s.by_instrument.contains_key("binance:BTC/USDT"));
    assert!(s.by_instrument.contains_key("binance:ETH/USDT"));
}
