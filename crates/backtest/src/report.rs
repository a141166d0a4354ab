//! The backtest's files: `trades.csv`, `metrics.json`, `equity.svg`, `audit.jsonl`. Every
//! file is a pure function of the backtest, so identical runs write identical bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use atalaya_engine::ClosedTrade;
use atalaya_model::format_utc;

use crate::{Backtest, BacktestError, drawdowns};

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The trade list as CSV, one closed trade per line, with a header.
pub fn trades_csv(trades: &[ClosedTrade]) -> String {
    let mut s = String::from(
        "instrument,entry_time,exit_time,quantity,entry_price,exit_price,fees,pnl,return_pct,bars,entry_reason,exit_reason\n",
    );
    for t in trades {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.6},{},{},{}",
            t.instrument,
            format_utc(t.entry_time),
            format_utc(t.exit_time),
            t.quantity,
            t.entry_price,
            t.exit_price,
            t.fees.round_dp(8),
            t.pnl.round_dp(8),
            t.return_pct * 100.0,
            t.bars,
            csv_field(&t.entry_reason),
            csv_field(&t.exit_reason)
        );
    }
    s
}

/// An SVG with the equity of the strategy and of buy-and-hold (top) and the strategy's
/// drawdown (bottom). Long curves are drawn from at most 2,000 points per line, keeping
/// each bucket's lowest and highest value so that drawdowns are not smoothed away.
pub fn equity_svg(bt: &Backtest) -> String {
    const W: f64 = 960.0;
    const TOP: f64 = 300.0;
    const BOTTOM: f64 = 120.0;
    const PAD: f64 = 50.0;
    let eq: Vec<f64> = bt.equity.iter().map(|p| p.equity).collect();
    let dd = drawdowns(eq.iter().copied());
    let n = eq.len().max(2);
    let lo = eq
        .iter()
        .chain(&bt.benchmark)
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = eq
        .iter()
        .chain(&bt.benchmark)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let max_dd = dd.iter().copied().fold(0.0, f64::max).max(1e-9);
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64;
    let y_eq = |v: f64| 20.0 + TOP * (1.0 - (v - lo) / (hi - lo));
    let y_dd = |d: f64| 40.0 + TOP + BOTTOM * d / max_dd;
    let line = |vals: &[f64], y: &dyn Fn(f64) -> f64| -> String {
        let bucket = vals.len().div_ceil(1000).max(1);
        let mut pts = String::new();
        for (b, chunk) in vals.chunks(bucket).enumerate() {
            let i0 = b * bucket;
            let (mut imin, mut imax) = (0, 0);
            for (j, v) in chunk.iter().enumerate() {
                if *v < chunk[imin] {
                    imin = j;
                }
                if *v > chunk[imax] {
                    imax = j;
                }
            }
            let (a, c) = if imin <= imax {
                (imin, imax)
            } else {
                (imax, imin)
            };
            for j in if a == c { vec![a] } else { vec![a, c] } {
                let _ = write!(pts, "{:.1},{:.1} ", x(i0 + j), y(chunk[j]));
            }
        }
        pts.trim_end().to_owned()
    };
    let (start, end) = match (bt.equity.first(), bt.equity.last()) {
        (Some(a), Some(b)) => (format_utc(a.ts), format_utc(b.ts)),
        _ => (String::new(), String::new()),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#,
        h = TOP + BOTTOM + 80.0
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{PAD}" y="14">equity: strategy {:.2} (blue) vs buy-and-hold {:.2} (grey), {start} to {end}</text>"##,
        bt.metrics.final_equity, bt.buy_and_hold.final_equity
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" text-anchor="end">{hi:.2}</text><text x="{}" y="{:.1}" text-anchor="end">{lo:.2}</text>"##,
        PAD - 4.0,
        y_eq(hi) + 4.0,
        PAD - 4.0,
        y_eq(lo)
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#9e9e9e" stroke-width="1" points="{}"/>"##,
        line(&bt.benchmark, &y_eq)
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{}"/>"##,
        line(&eq, &y_eq)
    );
    let _ = writeln!(
        s,
        r##"<text x="{PAD}" y="{:.1}">drawdown (max {:.2}%)</text>"##,
        TOP + 34.0,
        bt.metrics.max_drawdown * 100.0
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#c62828" stroke-width="1" points="{}"/>"##,
        line(&dd, &y_dd)
    );
    s.push_str("</svg>\n");
    s
}

/// Writes `trades.csv`, `metrics.json`, `equity.svg` and `audit.jsonl` into `dir` (created
/// if missing); returns their paths.
pub fn write_reports(bt: &Backtest, dir: &Path) -> Result<Vec<PathBuf>, BacktestError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| BacktestError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut audit = String::new();
    for a in &bt.audit {
        if let Ok(line) = serde_json::to_string(a) {
            audit.push_str(&line);
            audit.push('\n');
        }
    }
    let metrics = serde_json::to_string_pretty(bt).unwrap_or_default() + "\n";
    let files = [
        ("trades.csv", trades_csv(&bt.trades)),
        ("metrics.json", metrics),
        ("equity.svg", equity_svg(bt)),
        ("audit.jsonl", audit),
    ];
    let mut out = Vec::new();
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(io(&p))?;
        out.push(p);
    }
    Ok(out)
}
