//! `atalaya patterns`: the forward-return distribution after each chart pattern against the
//! unconditional distribution, so we know which patterns carry information.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use atalaya_model::{format_utc, parse_utc};
use atalaya_sources::replay::{self, LoadOptions};
use atalaya_ta::Bar;
use atalaya_ta::chart::{ChartConfig, ChartDetector, ChartKind};

/// The holdout starts here: nothing on or after it is used for measuring or tuning.
pub const HOLDOUT: &str = "2024-01-01";

/// Summary statistics of forward returns (in percent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Observations.
    pub n: usize,
    /// Mean forward return, %.
    pub mean: f64,
    /// Median forward return, %.
    pub median: f64,
    /// Standard deviation, %.
    pub sd: f64,
    /// Share of observations moving in the pattern's direction (up for neutral ones).
    pub hit: f64,
}

fn stats(v: &mut [f64], bias: i8) -> Stats {
    let n = v.len();
    if n == 0 {
        return Stats::default();
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64).sqrt();
    v.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let dir = if bias < 0 { -1.0 } else { 1.0 };
    let hit = v.iter().filter(|x| **x * dir > 0.0).count() as f64 / n as f64;
    Stats {
        n,
        mean,
        median,
        sd,
        hit,
    }
}

/// The study's result: per horizon, the unconditional statistics (with the up-rate as "hit")
/// and each pattern's.
#[derive(Clone, Debug, Default)]
pub struct Study {
    /// Horizons in bars.
    pub horizons: Vec<usize>,
    /// Files and their span.
    pub files: Vec<(PathBuf, String)>,
    /// Unconditional statistics per horizon.
    pub all: Vec<Stats>,
    /// Per pattern, statistics per horizon.
    pub patterns: BTreeMap<ChartKind, Vec<Stats>>,
}

/// Runs the study.
pub fn study(
    files: &[PathBuf],
    until: &str,
    horizons: &[usize],
    zigzag_atr: f64,
) -> anyhow::Result<Study> {
    let until_ts = parse_utc(until).context("--until")?;
    if until_ts > parse_utc(HOLDOUT)? {
        bail!(
            "--until {until} reaches into the holdout (from {HOLDOUT}); pattern statistics are measured on earlier data only"
        );
    }
    let mut all: Vec<Vec<f64>> = vec![Vec::new(); horizons.len()];
    let mut per: BTreeMap<ChartKind, Vec<Vec<f64>>> = BTreeMap::new();
    let mut out = Study {
        horizons: horizons.to_vec(),
        ..Study::default()
    };
    for f in files {
        let s = replay::load(
            f,
            &LoadOptions {
                venue: Some("binance".into()),
                ..LoadOptions::default()
            },
        )?;
        let candles: Vec<_> = s
            .candles
            .iter()
            .filter(|c| c.open_time() < until_ts)
            .collect();
        let (Some(first), Some(last)) = (candles.first(), candles.last()) else {
            continue;
        };
        out.files.push((
            f.clone(),
            format!(
                "{} bars, {} to {}",
                candles.len(),
                format_utc(first.open_time()),
                format_utc(last.open_time())
            ),
        ));
        let closes: Vec<f64> = candles.iter().map(|c| c.close()).collect();
        let fwd = |i: usize, h: usize| closes.get(i + h).map(|c| (c / closes[i] - 1.0) * 100.0);
        for (k, &h) in horizons.iter().enumerate() {
            all[k].extend((0..closes.len()).filter_map(|i| fwd(i, h)));
        }
        let mut det = ChartDetector::new(ChartConfig {
            zigzag_atr,
            ..ChartConfig::default()
        });
        let mut found = Vec::new();
        for c in &candles {
            det.update(
                &Bar::new(c.open(), c.high(), c.low(), c.close(), c.volume()),
                &mut found,
            );
        }
        for p in &found {
            let slot = per
                .entry(p.kind)
                .or_insert_with(|| vec![Vec::new(); horizons.len()]);
            for (k, &h) in horizons.iter().enumerate() {
                if let Some(r) = fwd(p.index, h) {
                    slot[k].push(r);
                }
            }
        }
    }
    out.all = all.iter_mut().map(|v| stats(v, 1)).collect();
    for (kind, mut v) in per {
        out.patterns
            .insert(kind, v.iter_mut().map(|x| stats(x, kind.bias())).collect());
    }
    Ok(out)
}

impl Study {
    /// The result as Markdown: one table per horizon.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        for (f, span) in &self.files {
            let _ = writeln!(
                s,
                "* `{}`: {span}",
                f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            );
        }
        for (k, h) in self.horizons.iter().enumerate() {
            let a = &self.all[k];
            let _ = writeln!(s, "\n#### Forward return over {h} bars\n");
            let _ = writeln!(
                s,
                "| pattern | bias | n | mean % | median % | sd % | hit rate | mean − all (t) |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
            let _ = writeln!(
                s,
                "| all bars | — | {} | {:+.3} | {:+.3} | {:.2} | {:.3} (up) | — |",
                a.n, a.mean, a.median, a.sd, a.hit
            );
            for kind in ChartKind::ALL {
                let Some(st) = self.patterns.get(&kind).map(|v| &v[k]) else {
                    continue;
                };
                if st.n == 0 {
                    continue;
                }
                let t = if st.n > 1 && st.sd > 0.0 {
                    (st.mean - a.mean) / (st.sd / (st.n as f64).sqrt())
                } else {
                    0.0
                };
                let bias = match kind.bias() {
                    1 => "up",
                    -1 => "down",
                    _ => "either",
                };
                let _ = writeln!(
                    s,
                    "| {} | {bias} | {} | {:+.3} | {:+.3} | {:.2} | {:.3} | {:+.3} ({t:+.1}) |",
                    kind.as_str(),
                    st.n,
                    st.mean,
                    st.median,
                    st.sd,
                    st.hit,
                    st.mean - a.mean
                );
            }
        }
        s
    }
}
