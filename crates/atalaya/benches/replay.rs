//! End-to-end replay of a 1,000,000-row 1-minute OHLCV CSV: read and validate the file, then
//! run every bar through the pipeline (1m, 5m, 15m and 1h bars, indicators, decision).
//!
//! The file is `$ATALAYA_BENCH_CSV` when set (use `../shared/bench/make_data.py`'s
//! `/tmp/peers-data/ohlcv_1m.csv` to compare with the peers), else a deterministic random walk
//! of the same size written to a temporary folder.
//!
//! `cargo bench -p atalaya --bench replay`

use std::path::PathBuf;

use atalaya::config::AppConfig;
use atalaya::replay::{ReplayOptions, replay};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn input() -> (Option<tempfile::TempDir>, PathBuf) {
    if let Some(p) = std::env::var_os("ATALAYA_BENCH_CSV") {
        return (None, PathBuf::from(p));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ohlcv_1m.csv");
    let bars = atalaya_testkit::walk(1_000_000, 1_577_836_800_000, 60_000, 100.0, 42, &[]);
    atalaya_testkit::write_kline_csv(&path, &bars, &[]).expect("write the bench CSV");
    (Some(dir), path)
}

fn bench(c: &mut Criterion) {
    let (_keep, path) = input();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cfg = AppConfig::default();
    let opts = ReplayOptions {
        files: vec![path],
        instrument: Some("binance:BTC/USDT".parse().expect("valid id")),
        timeframe: Some(atalaya_model::Timeframe::M1),
        venue: "binance".into(),
        ..ReplayOptions::default()
    };
    let rows = rt.block_on(replay(&cfg, &opts)).expect("replay").bars_in;
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);
    g.bench_function("csv_1m_rows_end_to_end", |b| {
        b.iter(|| {
            rt.block_on(replay(&cfg, &opts))
                .expect("replay")
                .pipeline
                .opportunities
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
