//! Batch throughput of the reference set — RSI(14), EMA(20), MACD(12,26,9),
//! Bollinger(20,2), ATR(14) — on 1,000,000 bars, and the streaming cost of updating all five
//! per bar.
//!
//! `cargo bench -p atalaya-ta --bench ta` (`ATALAYA_BENCH_CSV` = a `make_data.py` file to use
//! it instead of the built-in random walk)

use std::hint::black_box;

use atalaya_ta::ma::Ema;
use atalaya_ta::momentum::{Macd, Rsi};
use atalaya_ta::volatility::{Atr, Bbands};
use atalaya_ta::{Bar, Indicator, batch, batch_f64};
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
    let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    let mut g = c.benchmark_group("ta");
    g.throughput(Throughput::Elements(bars.len() as u64));
    g.sample_size(10);
    let (mut rsi, mut ema, mut atr) = (Vec::new(), Vec::new(), Vec::new());
    let (mut macd, mut bb) = (Vec::new(), Vec::new());
    g.bench_function("batch_rsi14_ema20_macd_bb20_atr14", |b| {
        b.iter(|| {
            batch_f64(&mut Rsi::new(14), &closes, &mut rsi);
            batch_f64(&mut Ema::new(20), &closes, &mut ema);
            batch(&mut Macd::new(12, 26, 9), &closes, &mut macd);
            batch(&mut Bbands::new(20, 2.0), &closes, &mut bb);
            batch_f64(&mut Atr::new(14), &bars, &mut atr);
            black_box((rsi.len(), ema.len(), macd.len(), bb.len(), atr.len()))
        })
    });
    g.bench_function("streaming_all_five_per_bar", |b| {
        b.iter(|| {
            let (mut r, mut e, mut m, mut bb, mut a) = (
                Rsi::new(14),
                Ema::new(20),
                Macd::new(12, 26, 9),
                Bbands::new(20, 2.0),
                Atr::new(14),
            );
            let mut acc = 0.0;
            for bar in &bars {
                acc += r.update(bar.close).unwrap_or(0.0);
                acc += e.update(bar.close).unwrap_or(0.0);
                acc += m.update(bar.close).map_or(0.0, |x| x.hist);
                acc += bb.update(bar.close).map_or(0.0, |x| x.upper);
                acc += a.update(*bar).unwrap_or(0.0);
            }
            black_box(acc)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
