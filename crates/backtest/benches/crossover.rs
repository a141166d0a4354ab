//! Backtest throughput on the peers' 1,000,000-row 1-minute file, already in memory:
//!
//! * `sma_50_200_rules`: the SMA(50/200) crossover written as two trading rules, through the
//!   pipeline and the paper trader (the peers' numpy floor is 42 ms on this machine kind), fed
//!   as envelopes, and `sma_50_200_rules_bars`, fed as `atalaya backtest` feeds one file (its
//!   loaded bars where they lie, `run_candles`);
//! * `default_pipeline`: the default engine (1m, 5m, 15m and 1h bars, indicators, decision,
//!   anomaly detection) with the paper trader taking its opportunities.
//!
//! The file is `$ATALAYA_BENCH_CSV` (`python3 ../shared/bench/make_data.py` writes
//! `/tmp/peers-data/ohlcv_1m.csv`); without it, a deterministic random walk of the same size.
//!
//! `ATALAYA_BENCH_CSV=/tmp/peers-data/ohlcv_1m.csv cargo bench -p atalaya-backtest --bench crossover`

use std::path::Path;

use atalaya_backtest::strategies::sma_crossover;
use atalaya_backtest::{Settings, run, run_candles};
use atalaya_model::{Candle, Envelope, Event, InstrumentId, Symbol, Timeframe};
use atalaya_sources::replay::{LoadOptions, load};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn candles(id: InstrumentId) -> Vec<Candle> {
    if let Some(p) = std::env::var_os("ATALAYA_BENCH_CSV") {
        let opts = LoadOptions {
            instrument: Some(id),
            timeframe: Some(Timeframe::M1),
            venue: None,
        };
        return load(Path::new(&p), &opts)
            .expect("load the bench CSV")
            .candles;
    }
    let mut px = 100.0f64;
    let mut state = 42u64;
    (0..1_000_000i64)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let r = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.002;
            let open = px;
            px *= 1.0 + r;
            let (hi, lo) = (open.max(px) * 1.0005, open.min(px) * 0.9995);
            Candle::new(
                id,
                Timeframe::M1,
                1_577_836_800_000_000_000 + i * 60_000_000_000,
                [open, hi, lo, px],
                10.0,
                1,
            )
            .expect("valid bar")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let id: InstrumentId = "binance:BTC/USDT".parse().expect("id");
    let src = Symbol::new("bench").expect("symbol");
    let bars = candles(id);
    let envs: Vec<Envelope<Event>> = bars
        .iter()
        .copied()
        .enumerate()
        .map(|(i, c)| {
            Envelope::new(
                i as u64,
                c.close_time(),
                c.close_time(),
                src,
                Event::Candle(c),
            )
        })
        .collect();
    let rows = envs.len() as u64;
    let mut g = c.benchmark_group("backtest");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);
    let cross = sma_crossover(Timeframe::M1, 50, 200);
    g.bench_function("sma_50_200_rules", |b| {
        b.iter(|| {
            run(&cross, &[id], envs.iter(), &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        })
    });
    // As `atalaya backtest` feeds one file: its loaded bars, no envelopes.
    g.bench_function("sma_50_200_rules_bars", |b| {
        b.iter(|| {
            run_candles(&cross, &[id], &bars, &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        })
    });
    let mut default = Settings::default();
    default.portfolio.timeframe = Some(Timeframe::M1);
    g.bench_function("default_pipeline", |b| {
        b.iter(|| {
            run(&default, &[id], envs.iter(), &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
