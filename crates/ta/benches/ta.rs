//! Batch throughput of the reference set — RSI(14), EMA(20), MACD(12,26,9),
//! Bollinger(20,2), ATR(14) — on 1,000,000 bars, and the streaming cost of updating all five
//! per bar, and the default anomaly detector's cost per bar.
//!
//! `cargo bench -p atalaya-ta --bench ta` (`ATALAYA_BENCH_CSV` = a `make_data.py` file to use
//! it instead of the built-in random walk)

use std::hint::black_box;

use atalaya_ta::{Bar, reference};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bars() -> Vec<Bar> {
    let rows: Vec<(f64, f64, f64, f64, f64)> = match std::env::var_os("ATALAYA_BENCH_CSV") {
        Some(p) => std::fs::read_to_string(p)
            .expect("read the bench CSV")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let v: Vec<f64> = l
                    .split(',')
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (v.len() >= 5).then(|| (v[0], v[1], v[2], v[3], v[4]))
            })
            .collect(),
        None => atalaya_testkit::walk(1_000_000, 0, 60_000, 100.0, 42, &[])
            .into_iter()
            .map(|(_, o, h, l, c, v)| (o, h, l, c, v))
            .collect(),
    };
    rows.into_iter()
        .map(|(o, h, l, c, v)| Bar::new(o, h, l, c, v))
        .collect()
}

fn bench(c: &mut Criterion) {
    let bars = bars();
    let input = reference::Inputs::from_bars(&bars);
    let mut g = c.benchmark_group("ta");
    g.throughput(Throughput::Elements(bars.len() as u64));
    g.sample_size(10);
    let mut out = reference::Outputs::default();
    g.bench_function("batch_rsi14_ema20_macd_bb20_atr14", |b| {
        b.iter(|| {
            reference::run_batch(&input, &mut out);
            black_box(out.rsi.len())
        })
    });
    // Each kernel alone, to see where the set's time goes.
    let c = &input.close;
    let mut col = Vec::new();
    g.bench_function("batch_rsi14", |b| {
        b.iter(|| atalaya_ta::momentum::Rsi::new(14).batch_into(c, &mut col))
    });
    g.bench_function("batch_ema20", |b| {
        b.iter(|| atalaya_ta::ma::Ema::new(20).batch_into(c, &mut col))
    });
    g.bench_function("batch_macd", |b| {
        b.iter(|| atalaya_ta::momentum::Macd::new(12, 26, 9).batch_columns(c, &mut out.macd))
    });
    g.bench_function("batch_bbands20", |b| {
        b.iter(|| atalaya_ta::volatility::Bbands::new(20, 2.0).batch_columns(c, &mut out.bands))
    });
    g.bench_function("batch_atr14", |b| {
        b.iter(|| {
            atalaya_ta::volatility::Atr::new(14).batch_hlc(&input.high, &input.low, c, &mut col)
        })
    });
    g.bench_function("streaming_all_five_per_bar", |b| {
        b.iter(|| black_box(reference::run_streaming(&bars)))
    });
    // The pipeline's default anomaly detection (robust return and volume z-scores over 100
    // bars, gaps, volatility regime), one bar at a time.
    g.bench_function("anomaly_detector_default", |b| {
        let mut found = Vec::new();
        b.iter(|| {
            let mut det = atalaya_ta::anomaly::AnomalyDetector::new(Default::default());
            let mut n = 0usize;
            for bar in &bars {
                det.update(bar, &mut found);
                n += found.len();
                found.clear();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
