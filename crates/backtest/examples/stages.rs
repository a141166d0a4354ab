//! Times the backtest's stages on the peers' 1,000,000-row file, for machines too noisy for
//! criterion's medians: each stage runs `REPS` times (15 by default) and prints its minimum
//! and median. With `REPS=1` under `valgrind --tool=cachegrind` it gives instruction counts,
//! which do not depend on the machine's load (subtract the count of `none`, which only loads
//! the file).
//!
//! ```sh
//! cargo build --profile bench -p atalaya-backtest --example stages
//! ATALAYA_BENCH_CSV=/tmp/peers-data/ohlcv_1m.csv target/release/examples/stages [STAGE,…]
//! REPS=1 ATALAYA_BENCH_CSV=… valgrind --tool=cachegrind --cache-sim=no target/release/examples/stages crossover
//! ```
//!
//! Stages: `iterate` (read the envelopes), `pipeline` (the crossover's pipeline alone),
//! `metrics` (one curve's metrics), `crossover` (the whole SMA(50/200) backtest over a vector
//! of envelopes, as the `crossover` bench), `cli` (the same backtest fed as `atalaya backtest`
//! feeds it: the loaded file's bars where they lie, no envelopes), `merged` (the same bars
//! gathered without receive times, as several files' merged bars go), `gathered` (gathered with
//! their receive times, `run_bars`), `default` (the default
//! pipeline's backtest), `default_cli` (the same fed as `atalaya backtest` feeds one file),
//! `none`.

use std::path::Path;
use std::time::Instant;

use atalaya_backtest::strategies::sma_crossover;
use atalaya_backtest::{Settings, metrics, run, run_bars, run_candles, run_merged};
use atalaya_engine::{PaperTrader, Pipeline};
use atalaya_model::{Envelope, Event, InstrumentId, Timeframe};
use atalaya_sources::replay::{LoadOptions, load, merge};
use rust_decimal::prelude::ToPrimitive;

fn time<R>(name: &str, reps: usize, mut f: impl FnMut() -> R) {
    let mut ms: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |i: usize| ms.get(i).copied().unwrap_or(f64::NAN);
    println!(
        "{name:<10} min {:8.2} ms  median {:8.2} ms",
        at(0),
        at(reps / 2)
    );
}

fn main() {
    let id: InstrumentId = "binance:BTC/USDT".parse().expect("id");
    let path = std::env::var_os("ATALAYA_BENCH_CSV").expect("set ATALAYA_BENCH_CSV");
    let opts = LoadOptions {
        instrument: Some(id),
        timeframe: Some(Timeframe::M1),
        venue: None,
    };
    let series = [load(Path::new(&path), &opts).expect("load the CSV")];
    // As `atalaya backtest` feeds them.
    let merged = merge(&series, None, None).expect("merge");
    let envs: Vec<Envelope<Event>> = merged.envelopes().collect();
    let only = std::env::args().nth(1).unwrap_or_default();
    let on = |n: &str| only.is_empty() || only.split(',').any(|o| o == n);
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let cross = sma_crossover(Timeframe::M1, 50, 200);
    if on("iterate") {
        time("iterate", reps, || {
            envs.iter()
                .filter_map(|e| match &e.payload {
                    Event::Candle(c) => Some(c.close().to_bits() & 1),
                    _ => None,
                })
                .sum::<u64>()
        });
    }
    if on("pipeline") {
        time("pipeline", reps, || {
            let mut p = Pipeline::new(cross.engine.clone()).expect("pipeline");
            p.set_explanations(false);
            envs.iter().map(|e| p.process(e).len()).sum::<usize>()
        });
    }
    if on("metrics") {
        let mut trader = PaperTrader::new(
            cross.portfolio.clone(),
            cross.risk.clone(),
            Timeframe::M1,
            true,
        );
        let mut p = Pipeline::new(cross.engine.clone()).expect("pipeline");
        for e in &envs {
            for o in p.process(e) {
                trader.on_event(o);
            }
        }
        let (_, equity, _) = trader.into_parts();
        let cash = cross.portfolio.initial_cash.to_f64().unwrap_or(0.0);
        time("metrics", reps, || {
            metrics(&equity, |p| p.equity, cash, None, Timeframe::M1).sharpe
        });
    }
    if on("crossover") {
        time("crossover", reps, || {
            run(&cross, &[id], envs.iter(), &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        });
    }
    if on("cli") {
        // The crossover fed as `atalaya backtest` feeds it: the loaded file's bars, not a
        // vector of envelopes.
        let bars = merged.in_one_series().expect("one series");
        time("cli", reps, || {
            run_candles(&cross, &[id], bars, &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        });
    }
    if on("merged") {
        // The same bars gathered without receive times, as several files' merged bars go.
        let bars = merged.in_one_series().expect("one series");
        time("merged", reps, || {
            run_merged(&cross, &[id], bars.iter().copied(), &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        });
    }
    if on("gathered") {
        // The same bars gathered with their receive times (`run_bars`, for any receive times).
        let bars = merged.in_one_series().expect("one series");
        time("gathered", reps, || {
            run_bars(
                &cross,
                &[id],
                bars.iter().map(|c| (*c, c.close_time())),
                &mut |_| {},
            )
            .expect("backtest")
            .trades
            .len()
        });
    }
    if on("default_cli") {
        // The default pipeline fed as `atalaya backtest` feeds one file.
        let bars = merged.in_one_series().expect("one series");
        let mut d = Settings::default();
        d.portfolio.timeframe = Some(Timeframe::M1);
        time("default_cli", reps, || {
            run_candles(&d, &[id], bars, &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        });
    }
    if on("default") {
        let mut d = Settings::default();
        d.portfolio.timeframe = Some(Timeframe::M1);
        time("default", reps, || {
            run(&d, &[id], envs.iter(), &mut |_| {})
                .expect("backtest")
                .trades
                .len()
        });
    }
}
