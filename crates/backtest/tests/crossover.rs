//! Backtests through the real pipeline and paper trader: a toy series whose result is
//! computed by hand, determinism of every report byte, and (when `ATALAYA_BENCH_CSV` names
//! the peers' 1,000,000-row file, as `.ci/run` arranges) the SMA(50/200) crossover that every
//! peer engine trades 3,165 times.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use atalaya_backtest::strategies::sma_crossover;
use atalaya_backtest::{run, write_reports};
use atalaya_model::{Candle, Envelope, Event, InstrumentId, Symbol, Timeframe};
use atalaya_sources::replay::{LoadOptions, load, merge};
use rust_decimal::prelude::ToPrimitive;

const H: i64 = 3_600_000_000_000;

fn id() -> InstrumentId {
    "sim:BTC/USDT".parse().unwrap()
}

/// The bars of `series`, each received at its close, as the walk-forward takes them.
fn received_bars(closes: &[f64]) -> Vec<Candle> {
    series(closes)
        .iter()
        .filter_map(|e| match &e.payload {
            Event::Candle(c) => {
                assert_eq!(e.ts_received, c.close_time());
                Some(*c)
            }
            _ => None,
        })
        .collect()
}

fn series(closes: &[f64]) -> Vec<Envelope<Event>> {
    closes
        .iter()
        .enumerate()
        .map(|(i, &px)| {
            let c = Candle::new(id(), Timeframe::H1, i as i64 * H, [px; 4], 1.0, 1).unwrap();
            Envelope::new(
                i as u64,
                c.close_time(),
                c.close_time(),
                Symbol::new("t").unwrap(),
                Event::Candle(c),
            )
        })
        .collect()
}

const TOY: [f64; 12] = [
    10.0, 9.0, 8.0, 7.0, 8.0, 9.0, 10.0, 11.0, 10.0, 9.0, 8.0, 7.0,
];

#[test]
fn a_toy_crossover_computed_by_hand() {
    let s = sma_crossover(Timeframe::H1, 2, 4);
    let bt = run(&s, &[id()], series(&TOY), &mut |_| {}).unwrap();
    // SMA2 crosses above SMA4 at bar 5 (close 9), below at bar 9 (close 9): one round trip
    // that loses two fees.
    assert_eq!(bt.trades.len(), 1);
    let t = &bt.trades[0];
    assert_eq!(t.entry_price.to_f64().unwrap(), 9.0);
    assert_eq!(t.exit_price.to_f64().unwrap(), 9.0);
    assert_eq!(t.bars, 4);
    let want = 100_000.0 / 1.001 * 0.999;
    assert!(
        (bt.metrics.final_equity - want).abs() < 1e-3,
        "{}",
        bt.metrics.final_equity
    );
    assert_eq!(bt.metrics.win_rate, Some(0.0));
    assert_eq!(bt.metrics.profit_factor, Some(0.0), "no gross profit");
    assert!((bt.metrics.exposure - 4.0 / 12.0).abs() < 1e-12);
    // Buy and hold: in at 10 less the fee, out at 7 less the fee.
    let hold = 100_000.0 * 0.999 * 0.7 * 0.999;
    assert!((bt.buy_and_hold.final_equity - hold).abs() < 1e-6);
    // From the peak at 11 to the final value.
    let peak = 100_000.0 * 0.999 * 1.1;
    assert!((bt.buy_and_hold.max_drawdown - (1.0 - hold / peak)).abs() < 1e-9);
    let actions: Vec<&str> = bt.audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["approve", "buy", "sell"]);
    assert!(
        bt.audit[0].reason.to_string().contains(
            "signal: rule golden_cross held: crosses_above(sma_2, sma_4) (sma_2=8.5, sma_4=8)"
        ),
        "{}",
        bt.audit[0].reason
    );
}

#[test]
fn identical_input_writes_identical_reports() {
    let s = sma_crossover(Timeframe::H1, 3, 7);
    let closes: Vec<f64> = (0..2_000)
        .map(|i| 100.0 + 10.0 * (f64::from(i) / 37.0).sin() + f64::from(i % 13) * 0.1)
        .collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut bodies = Vec::new();
    for d in &dirs {
        let bt = run(&s, &[id()], series(&closes), &mut |_| {}).unwrap();
        assert!(bt.trades.len() > 20, "{}", bt.trades.len());
        let files = write_reports(&bt, d.path()).unwrap();
        bodies.push(
            files
                .iter()
                .map(|f| std::fs::read(f).unwrap())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(bodies[0], bodies[1]);
    let csv = String::from_utf8(bodies[0][0].clone()).unwrap();
    assert!(csv.starts_with("instrument,entry_time,exit_time,quantity,"));
    let svg = String::from_utf8(bodies[0][2].clone()).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
}

/// numpy's vectorised reference (`bt_numpy` in `../shared/bench/run_peers.py`), in f64.
fn numpy_reference(c: &[f64]) -> (usize, f64) {
    let sma = |n: usize| {
        let mut cs = vec![0.0; c.len() + 1];
        for i in 0..c.len() {
            cs[i + 1] = cs[i] + c[i];
        }
        let mut out = vec![f64::NAN; c.len()];
        for i in n - 1..c.len() {
            out[i] = (cs[i + 1] - cs[i + 1 - n]) / n as f64;
        }
        out
    };
    let (f, s) = (sma(50), sma(200));
    let above: Vec<bool> = (0..c.len()).map(|i| f[i] > s[i]).collect();
    let mut pos = vec![0i8; c.len()];
    let (mut inpos, mut start, mut trades) = (false, 0, 0);
    for i in 1..c.len() {
        let valid = !s[i].is_nan();
        let entry = above[i] && !above[i - 1] && valid && !s[i - 1].is_nan();
        let exit = !above[i] && above[i - 1] && valid;
        if entry && !inpos {
            inpos = true;
            start = i;
            trades += 1;
        } else if exit && inpos {
            pos[start..i].fill(1);
            inpos = false;
        }
    }
    if inpos {
        pos[start..].fill(1);
    }
    let mut equity = 100_000.0;
    let mut prev = 0i8;
    for i in 0..c.len() {
        if i > 0 && pos[i - 1] == 1 {
            equity *= c[i] / c[i - 1];
        }
        if pos[i] != prev {
            equity *= 1.0 - 0.001;
        }
        prev = pos[i];
    }
    (trades, equity)
}

#[test]
fn the_peers_crossover_on_the_million_row_file() {
    let Some(path) = std::env::var_os("ATALAYA_BENCH_CSV") else {
        eprintln!("skipped: ATALAYA_BENCH_CSV is not set (.ci/run writes the peers' 1M-row file)");
        return;
    };
    let path = Path::new(&path);
    assert!(
        path.exists(),
        "ATALAYA_BENCH_CSV={} does not exist",
        path.display()
    );
    let opts = LoadOptions {
        instrument: Some("binance:BTC/USDT".parse().unwrap()),
        timeframe: Some(Timeframe::M1),
        venue: None,
    };
    let loaded = vec![load(path, &opts).unwrap()];
    assert_eq!(loaded[0].candles.len(), 1_000_000);
    let merged = merge(&loaded, None, None).unwrap();
    let s = sma_crossover(Timeframe::M1, 50, 200);
    let bt = run(
        &s,
        &[opts.instrument.unwrap()],
        merged.envelopes(),
        &mut |_| {},
    )
    .unwrap();
    let closes: Vec<f64> = loaded[0].candles.iter().map(|c| c.close()).collect();
    let (trades, equity) = numpy_reference(&closes);
    assert_eq!(trades, 3_165, "the peers' count");
    assert_eq!(bt.trades.len(), trades);
    let rel = bt.metrics.final_equity / equity - 1.0;
    assert!(
        rel.abs() < 0.004,
        "ours {} vs numpy {equity}",
        bt.metrics.final_equity
    );
}

#[test]
fn walk_forward_is_deterministic_and_reports_every_window() {
    use atalaya_backtest::walk::{OptimizeConfig, Param, walk_forward};
    let mut s = sma_crossover(Timeframe::H1, 5, 20);
    s.engine.rules[0].when = "crosses_above(sma_{fast}, sma_{slow})".into();
    s.engine.rules[1].when = "crosses_below(sma_{fast}, sma_{slow})".into();
    // 400 days of hourly bars: a noisy wave whose period drifts.
    let closes: Vec<f64> = (0..400 * 24)
        .map(|i| {
            let x = f64::from(i);
            100.0 + 15.0 * (x / (90.0 + x / 200.0)).sin() + 3.0 * (x * 1.7).sin()
        })
        .collect();
    let bars = received_bars(&closes);
    let cfg = OptimizeConfig {
        train_days: 60,
        test_days: 20,
        trials: 12,
        warmup_bars: 50,
        min_trades: 1,
        resamples: 200,
        params: vec![
            Param {
                path: "rules.fast".into(),
                min: 2.0,
                max: 20.0,
                integer: true,
            },
            Param {
                path: "rules.slow".into(),
                min: 25.0,
                max: 120.0,
                integer: true,
            },
        ],
        ..OptimizeConfig::default()
    };
    let a = walk_forward(&s, &cfg, &[id()], &bars, &mut |_, _| {}).unwrap();
    let b = walk_forward(&s, &cfg, &[id()], &bars, &mut |_, _| {}).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    // Windows start every 20 days while a 60-day train and half a test window fit in 400 days.
    assert_eq!(a.windows.len(), 17, "{:#?}", a.windows.len());
    assert!(a.trades > 0);
    assert!(a.mc_total_return.is_some());
    let test_bars: usize = a.windows.iter().map(|w| w.test.bars).sum();
    assert_eq!(
        a.equity.len(),
        test_bars,
        "the stitched curve is the test windows"
    );
    for w in &a.windows {
        let fast = w.params["rules.fast"];
        assert!((2.0..=20.0).contains(&fast) && fast.fract() == 0.0);
    }
    // A path that does not exist is named.
    let mut bad = cfg.clone();
    bad.params[0].path = "risk.stop_atrr".into();
    let e = walk_forward(&s, &bad, &[id()], &bars, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("no field `stop_atrr`"), "{e}");
    // Too little data for one window.
    let short = received_bars(&closes[..24 * 30]);
    let e = walk_forward(&s, &cfg, &[id()], &short, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("too short"), "{e}");
}
