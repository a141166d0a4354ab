//! `atalaya backtest` and `atalaya optimize`: the live pipeline and paper trader over history
//! files, with metrics beside buy-and-hold and the reports written to a folder; and the
//! walk-forward optimisation with its out-of-sample report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use atalaya_backtest::{Backtest, Metrics, Settings, run_candles, run_merged, write_reports};
use atalaya_model::InstrumentId;
use atalaya_sources::replay;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::AppConfig;
use crate::replay::{ReplayOptions, engine_for_inputs, load_inputs};

/// What `atalaya backtest` produced.
#[derive(Debug)]
pub struct Outcome {
    /// The backtest.
    pub backtest: Backtest,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
    /// Bars fed in.
    pub bars: u64,
    /// The fee rate charged per fill.
    pub fee_rate: rust_decimal::Decimal,
    /// The slippage per fill, in basis points.
    pub slippage_bps: f64,
}

/// Loads the files, runs the backtest and writes its reports into `out`.
pub fn backtest(
    cfg: &AppConfig,
    opts: &ReplayOptions,
    out: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let (series, from, to) = load_inputs(opts)?;
    let mut instruments: Vec<InstrumentId> = Vec::new();
    for s in &series {
        if !instruments.contains(&s.report.instrument) {
            instruments.push(s.report.instrument);
        }
    }
    let mut settings = Settings {
        engine: engine_for_inputs(&cfg.engine, &series),
        portfolio: cfg.portfolio.clone(),
        risk: cfg.risk.clone(),
        trade_from: from,
    };
    // With --from, the bars before it (optimize.warmup_bars of them) warm the indicators up
    // without trading, as in the walk-forward's test windows.
    let warm = settings.trading_timeframe().nanos() * i64::from(cfg.optimize.warmup_bars);
    let merged = replay::merge(&series, from.map(|f| f - warm), to)?;
    if from.is_none() {
        settings.trade_from = None;
    }
    let bars = merged.len() as u64;
    let pb = if opts.progress {
        ProgressBar::new(bars)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} bars {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let mut progress = |n| pb.set_position(n);
    // One file's bars go straight from the loaded series; several are read in merged order.
    let bt = match merged.in_one_series() {
        Some(bars) => run_candles(&settings, &instruments, bars, &mut progress),
        // A merge's bars are received at their close: only the candles are gathered.
        None => run_merged(
            &settings,
            &instruments,
            merged.bars().map(|(c, _)| c),
            &mut progress,
        ),
    }
    .context("backtest")?;
    let seconds = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let files = write_reports(&bt, out)?;
    Ok(Outcome {
        backtest: bt,
        files,
        seconds,
        bars,
        fee_rate: cfg.portfolio.fee_rate,
        slippage_bps: cfg.portfolio.slippage_bps,
    })
}

fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".to_owned(), f)
}

/// The side-by-side table printed after a backtest.
pub fn describe(o: &Outcome) -> String {
    let bt = &o.backtest;
    let (s, h): (&Metrics, &Metrics) = (&bt.metrics, &bt.buy_and_hold);
    let ids: Vec<String> = bt.instruments.iter().map(ToString::to_string).collect();
    let mut out = format!(
        "backtest of {} on {} bars, {} to {} ({} bars in {:.2}s)\n",
        ids.join(", "),
        bt.timeframe,
        s.start,
        s.end,
        o.bars,
        o.seconds
    );
    out.push_str(&format!(
        "{:<18} {:>14} {:>14}\n",
        "", "strategy", "buy and hold"
    ));
    let rows: [(&str, String, String); 13] = [
        (
            "final equity",
            format!("{:.2}", s.final_equity),
            format!("{:.2}", h.final_equity),
        ),
        ("total return", pct(s.total_return), pct(h.total_return)),
        ("CAGR", pct(s.cagr), pct(h.cagr)),
        (
            "Sharpe",
            format!("{:.2}", s.sharpe),
            format!("{:.2}", h.sharpe),
        ),
        (
            "Sortino",
            format!("{:.2}", s.sortino),
            format!("{:.2}", h.sortino),
        ),
        ("max drawdown", pct(-s.max_drawdown), pct(-h.max_drawdown)),
        (
            "Calmar",
            format!("{:.2}", s.calmar),
            format!("{:.2}", h.calmar),
        ),
        ("trades", s.trades.to_string(), h.trades.to_string()),
        (
            "win rate",
            opt(s.win_rate, |w| format!("{:.1}%", w * 100.0)),
            "-".into(),
        ),
        (
            "profit factor",
            opt(s.profit_factor, |p| format!("{p:.2}")),
            "-".into(),
        ),
        (
            "average trade",
            opt(s.avg_trade, |a| format!("{a:.2}")),
            "-".into(),
        ),
        ("average return", opt(s.avg_trade_return, pct), "-".into()),
        (
            "exposure",
            format!("{:.1}%", s.exposure * 100.0),
            "100.0%".into(),
        ),
    ];
    for (name, a, b) in rows {
        out.push_str(&format!("{name:<18} {a:>14} {b:>14}\n"));
    }
    if bt.refused > 0 {
        out.push_str(&format!(
            "the risk manager refused {} entries (see audit.jsonl)\n",
            bt.refused
        ));
    }
    let verdict = if s.total_return > h.total_return {
        "beat"
    } else {
        "lost to"
    };
    out.push_str(&format!(
        "the strategy {verdict} buy-and-hold on total return (fee rate {} per fill and {} bps of slippage included)\n",
        o.fee_rate, o.slippage_bps
    ));
    for f in &o.files {
        out.push_str(&format!("wrote {}\n", f.display()));
    }
    out
}

/// Runs the walk-forward optimisation of the configured strategy over the files; writes
/// `walk_forward.json` and `oos_equity.csv` into `out`.
pub fn optimize(
    cfg: &AppConfig,
    opts: &ReplayOptions,
    out: &std::path::Path,
) -> anyhow::Result<(atalaya_backtest::walk::WalkForward, Vec<PathBuf>)> {
    let (series, from, to) = load_inputs(opts)?;
    let mut instruments: Vec<InstrumentId> = Vec::new();
    for s in &series {
        if !instruments.contains(&s.report.instrument) {
            instruments.push(s.report.instrument);
        }
    }
    let settings = Settings {
        engine: engine_for_inputs(&cfg.engine, &series),
        portfolio: cfg.portfolio.clone(),
        risk: cfg.risk.clone(),
        trade_from: None,
    };
    let merged = replay::merge(&series, from, to)?;
    // A replay's bars are received at their close: the walk needs only the candles.
    let bars: Vec<_> = merged.bars().map(|(c, _)| c).collect();
    let pb = if opts.progress {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} window {pos}/{len} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let wf = atalaya_backtest::walk::walk_forward(
        &settings,
        &cfg.optimize,
        &instruments,
        &bars,
        &mut |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        },
    )?;
    pb.finish_and_clear();
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let json = out.join("walk_forward.json");
    std::fs::write(&json, serde_json::to_string_pretty(&wf)? + "\n")
        .with_context(|| format!("write {}", json.display()))?;
    let csv = out.join("oos_equity.csv");
    let mut body = String::from("time,equity\n");
    for (t, v) in &wf.equity {
        body.push_str(&format!("{},{v:.6}\n", atalaya_model::format_utc(*t)));
    }
    std::fs::write(&csv, body).with_context(|| format!("write {}", csv.display()))?;
    Ok((wf, vec![json, csv]))
}

/// The walk-forward report printed by `atalaya optimize`.
pub fn describe_walk(wf: &atalaya_backtest::walk::WalkForward, files: &[PathBuf]) -> String {
    let mut out = format!(
        "walk-forward: {} windows, objective {:?}\n",
        wf.windows.len(),
        wf.objective
    );
    out.push_str(&format!(
        "{:<22} {:<22} {:>10} {:>10} {:>9} {:>7}  parameters\n",
        "test from", "test to", "in-sample", "out", "return", "trades"
    ));
    for w in &wf.windows {
        let params: Vec<String> = w
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v:.4}"))
            .collect();
        out.push_str(&format!(
            "{:<22} {:<22} {:>10.2} {:>10.2} {:>9} {:>7}  {}\n",
            w.test_from,
            w.test_to,
            w.in_sample,
            w.out_of_sample,
            pct(w.test.total_return),
            w.test.trades,
            params.join(" ")
        ));
    }
    let (s, h) = (&wf.out_of_sample, &wf.buy_and_hold);
    out.push_str(&format!(
        "stitched out of sample: return {} (buy and hold {}), Sharpe {:.2} ({:.2}), max drawdown {} ({}), {} trades\n",
        pct(s.total_return),
        pct(h.total_return),
        s.sharpe,
        h.sharpe,
        pct(-s.max_drawdown),
        pct(-h.max_drawdown),
        wf.trades
    ));
    out.push_str(&format!(
        "in-sample mean {:.2} vs out-of-sample mean {:.2}: the search's optimism is {:.2}\n",
        wf.in_sample_mean,
        wf.out_of_sample_mean,
        wf.in_sample_mean - wf.out_of_sample_mean
    ));
    if let (Some(r), Some(d)) = (&wf.mc_total_return, &wf.mc_max_drawdown) {
        out.push_str(&format!(
            "Monte Carlo over the out-of-sample trades: return {} / {} / {} (5/50/95%), max drawdown {} / {} / {}\n",
            pct(r.p5),
            pct(r.p50),
            pct(r.p95),
            pct(-d.p5),
            pct(-d.p50),
            pct(-d.p95)
        ));
    }
    if let Some(d) = &wf.deploy {
        out.push_str(&format!(
            "parameters to deploy (best on {} to {}, in-sample {:?} {:.2}):\n",
            d.train_from, d.train_to, wf.objective, d.in_sample
        ));
        for (k, v) in &d.params {
            out.push_str(&format!("  {k} = {v}\n"));
        }
    }
    for f in files {
        out.push_str(&format!("wrote {}\n", f.display()));
    }
    out
}
