//! `atalaya calibrate`: measure what the decision's opportunities were worth on history
//! before the holdout, publish the reliability table, and write the calibration buckets the
//! engine uses for confidence, expected return and horizon.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use atalaya_backtest::calibrate::{
    Outcome, Reliability, buckets, calibrated, outcomes, reliability,
};
use atalaya_engine::CalibrationBucket;
use atalaya_model::parse_utc;
use atalaya_sources::replay;
use serde::Serialize;

use crate::config::AppConfig;
use crate::patterns::HOLDOUT;
use crate::replay::{ReplayOptions, engine_for_inputs, load_inputs};

/// The study's results.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// Opportunities measured before the split (fit) and from it (check).
    pub fit: usize,
    /// Opportunities measured from the split to `until`.
    pub check: usize,
    /// Stated (uncalibrated) confidence against hit rate, on every opportunity.
    pub uncalibrated: Vec<Reliability>,
    /// Calibrated confidence (buckets fitted before the split) against the hit rate after it.
    pub calibrated_out_of_sample: Vec<Reliability>,
    /// Buckets fitted before the split.
    pub buckets_fit: Vec<CalibrationBucket>,
    /// Buckets fitted on everything before `until`: what `--out` holds.
    pub buckets: Vec<CalibrationBucket>,
}

/// Runs the study on `opts.files` up to `opts.to` (default and maximum: the holdout), fitting
/// on bars before `split`.
pub fn calibrate(
    cfg: &AppConfig,
    opts: &ReplayOptions,
    split: &str,
    out: Option<&Path>,
) -> anyhow::Result<(Calibration, Option<PathBuf>)> {
    let holdout = parse_utc(HOLDOUT)?;
    let mut opts = opts.clone();
    let until = opts.to.clone().unwrap_or_else(|| HOLDOUT.to_owned());
    if parse_utc(&until).context("--to")? > holdout {
        bail!(
            "--to {until} reaches into the holdout (from {HOLDOUT}); calibration is measured on earlier data only"
        );
    }
    opts.to = Some(until);
    let split_ts = parse_utc(split).context("--split")?;
    let (series, from, to) = load_inputs(&opts)?;
    let engine = engine_for_inputs(&cfg.engine, &series);
    let merged = replay::merge(&series, from, to)?;
    let envs: Vec<_> = merged.envelopes().collect();
    let all: Vec<Outcome> = outcomes(&engine, envs.iter())?;
    let (before, after): (Vec<Outcome>, Vec<Outcome>) =
        all.iter().cloned().partition(|o| o.ts < split_ts);
    let start = engine.decision.buy.min(-engine.decision.sell);
    let fitted = buckets(&before, start, 0.1, 30);
    let check: Vec<Outcome> = after
        .iter()
        .filter(|o| calibrated(&fitted, o).is_some())
        .cloned()
        .collect();
    let result = Calibration {
        fit: before.len(),
        check: after.len(),
        uncalibrated: reliability(&all, |o| o.confidence),
        calibrated_out_of_sample: reliability(&check, |o| calibrated(&fitted, o).unwrap_or(0.0)),
        buckets_fit: fitted,
        buckets: buckets(&all, start, 0.1, 30),
    };
    let written = match out {
        Some(path) => {
            let mut body = String::from(
                "# Written by `atalaya calibrate`: measured outcomes of the decision per score band.\n# Include under [engine.decision] (e.g. copy into atalaya.toml).\n",
            );
            for b in &result.buckets {
                body.push_str(&format!(
                    "\n[[engine.decision.calibration]]\ndirection = {}\nmin_score = {}\nmax_score = {}\nhit_rate = {}\nexpected_return = {}\nhorizon_bars = {}\nsamples = {}\n",
                    b.direction, b.min_score, b.max_score, b.hit_rate, b.expected_return, b.horizon_bars, b.samples
                ));
            }
            std::fs::write(path, body).with_context(|| format!("write {}", path.display()))?;
            Some(path.to_owned())
        }
        None => None,
    };
    Ok((result, written))
}

fn table(rows: &[Reliability]) -> String {
    let mut s = String::from(
        "| confidence | n | stated | observed hit rate | mean return |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {:.1}–{:.1} | {} | {:.3} | {:.3} | {:+.3}% |\n",
            r.from,
            r.to,
            r.n,
            r.stated,
            r.observed,
            r.mean_return * 100.0
        ));
    }
    s
}

/// The report as Markdown.
pub fn describe(c: &Calibration, split: &str, written: Option<&Path>) -> String {
    let mut s = format!(
        "{} opportunities measured ({} before {split}, {} from it)\n\n### Stated confidence (uncalibrated) against the observed hit rate\n\n{}",
        c.fit + c.check,
        c.fit,
        c.check,
        table(&c.uncalibrated)
    );
    s.push_str(&format!(
        "\n### Calibrated confidence (fitted before {split}) against the hit rate from {split}\n\n{}",
        table(&c.calibrated_out_of_sample)
    ));
    s.push_str("\n### Buckets (all data before the holdout)\n\n| direction | score | n | hit rate | expected return | horizon (bars) |\n|---|---|---|---|---|---|\n");
    for b in &c.buckets {
        s.push_str(&format!(
            "| {} | {:.2}–{:.2} | {} | {:.3} | {:+.3}% | {} |\n",
            if b.direction > 0 { "buy" } else { "sell" },
            b.min_score,
            b.max_score.min(1.0),
            b.samples,
            b.hit_rate,
            b.expected_return * 100.0,
            b.horizon_bars
        ));
    }
    if let Some(p) = written {
        s.push_str(&format!("\nwrote {}\n", p.display()));
    }
    s
}
