//! `atalaya replay`: the live pipeline over history, as fast as possible.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use atalaya_engine::{EngineConfig, Pipeline, PipelineStats};
use atalaya_model::{Event, InstrumentId, Timeframe, UnixNanos, parse_utc};
use atalaya_sources::replay::{self, LoadOptions, LoadedSeries, ReplayReport};
use atalaya_store::Batch;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::config::AppConfig;

/// What to replay.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// The files.
    pub files: Vec<PathBuf>,
    /// Their timeframe, when not inferable.
    pub timeframe: Option<Timeframe>,
    /// Their instrument, when not inferable.
    pub instrument: Option<InstrumentId>,
    /// Venue for inferred instruments.
    pub venue: String,
    /// Earliest open time.
    pub from: Option<String>,
    /// Latest open time (exclusive).
    pub to: Option<String>,
    /// Write bars and opportunities to the store.
    pub save: bool,
    /// Show a progress bar (when standard error is a terminal).
    pub progress: bool,
}

/// What the replay found.
#[derive(Clone, Debug, Serialize)]
pub struct ReplaySummary {
    /// One report per file.
    pub files: Vec<ReplayReport>,
    /// The timeframes built.
    pub timeframes: Vec<Timeframe>,
    /// Bars fed to the pipeline.
    pub bars_in: u64,
    /// The pipeline's counters.
    pub pipeline: PipelineStats,
    /// Opportunities by type.
    pub by_kind: BTreeMap<String, u64>,
    /// Opportunities by instrument.
    pub by_instrument: BTreeMap<String, u64>,
    /// First and last bar open time replayed.
    pub span: Option<(UnixNanos, UnixNanos)>,
    /// Wall time of the pipeline pass.
    pub pipeline_s: f64,
    /// Bars per second through the pipeline.
    pub bars_per_sec: f64,
    /// Rows written with --save (candles, opportunities).
    pub saved: Option<(u64, u64)>,
}

impl ReplaySummary {
    /// A readable summary.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for f in &self.files {
            s.push_str(&f.describe());
            s.push('\n');
        }
        let tfs: Vec<&str> = self.timeframes.iter().map(|t| t.as_str()).collect();
        s.push_str(&format!(
            "replayed {} bars through timeframes {} in {:.3}s ({:.0} bars/s)\n",
            self.bars_in,
            tfs.join(", "),
            self.pipeline_s,
            self.bars_per_sec
        ));
        s.push_str(&format!(
            "bars closed: {}, late or duplicate: {}, opportunities: {}\n",
            self.pipeline.candles_out, self.pipeline.late, self.pipeline.opportunities
        ));
        for (k, n) in &self.by_kind {
            s.push_str(&format!("  {k:<12} {n}\n"));
        }
        for (i, n) in &self.by_instrument {
            s.push_str(&format!("  {i:<24} {n}\n"));
        }
        if let Some((c, o)) = self.saved {
            s.push_str(&format!("saved {c} bars and {o} opportunities\n"));
        }
        s
    }
}

/// The files of `opts` loaded (gaps and malformed rows logged), and the `--from`/`--to`
/// bounds parsed.
pub fn load_inputs(
    opts: &ReplayOptions,
) -> anyhow::Result<(Vec<LoadedSeries>, Option<UnixNanos>, Option<UnixNanos>)> {
    let load = LoadOptions {
        instrument: opts.instrument,
        timeframe: opts.timeframe,
        venue: Some(opts.venue.clone()),
    };
    let mut series = Vec::with_capacity(opts.files.len());
    for f in &opts.files {
        let s = replay::load(f, &load)?;
        if s.report.malformed_count > 0 || s.report.gap_count > 0 {
            tracing::warn!("{}", s.report.describe());
        }
        series.push(s);
    }
    let from = opts
        .from
        .as_deref()
        .map(parse_utc)
        .transpose()
        .context("--from")?;
    let to = opts
        .to
        .as_deref()
        .map(parse_utc)
        .transpose()
        .context("--to")?;
    Ok((series, from, to))
}

/// The engine configuration adapted to the inputs: it builds the input timeframes and every
/// configured timeframe they can make, and decides only on those.
pub fn engine_for_inputs(engine: &EngineConfig, series: &[LoadedSeries]) -> EngineConfig {
    let input: Vec<Timeframe> = {
        let mut v: Vec<Timeframe> = series.iter().map(|s| s.report.timeframe).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut out = engine.clone();
    let mut tfs = input.clone();
    tfs.extend(
        engine
            .timeframes
            .iter()
            .filter(|tf| input.iter().any(|i| tf.is_multiple_of(*i))),
    );
    tfs.sort();
    tfs.dedup();
    out.decision_timeframes.retain(|tf| tfs.contains(tf));
    out.timeframes = tfs;
    out
}

/// Loads, merges and replays; writes to the store when asked.
pub async fn replay(cfg: &AppConfig, opts: &ReplayOptions) -> anyhow::Result<ReplaySummary> {
    let (series, from, to) = load_inputs(opts)?;
    let engine = engine_for_inputs(&cfg.engine, &series);
    let tfs = engine.timeframes.clone();
    let mut pipeline = Pipeline::new(engine)?;
    let merged = replay::merge(&series, from, to)?;
    let span = match (
        merged.candle(0),
        merged.len().checked_sub(1).and_then(|i| merged.candle(i)),
    ) {
        (Some(a), Some(b)) => Some((a.open_time(), b.open_time())),
        _ => None,
    };
    let bars_in = merged.len() as u64;
    let pb = if opts.progress {
        ProgressBar::new(bars_in)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} bars {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let store = if opts.save {
        Some(crate::run::open_store(cfg).await?)
    } else {
        None
    };
    let mut batch = Batch::default();
    let mut saved = (0u64, 0u64);
    let mut by_kind = BTreeMap::new();
    let mut by_instrument = BTreeMap::new();
    let t0 = Instant::now();
    let mut store_time = std::time::Duration::ZERO;
    for (i, env) in merged.envelopes().enumerate() {
        for out in pipeline.process(&env) {
            match &out.payload {
                Event::Opportunity(o) => {
                    *by_kind.entry(o.kind().to_string()).or_insert(0) += 1;
                    *by_instrument.entry(o.instrument().to_string()).or_insert(0) += 1;
                    if store.is_some() {
                        batch.opportunities.push(((**o).clone(), out.ts_received));
                    }
                }
                Event::Candle(c) if store.is_some() => batch.candles.push(*c),
                _ => {}
            }
        }
        if let Some(st) = &store
            && batch.len() >= 20_000
        {
            let w = Instant::now();
            st.write(&batch).await?;
            store_time += w.elapsed();
            saved.0 += batch.candles.len() as u64;
            saved.1 += batch.opportunities.len() as u64;
            batch.clear();
        }
        if i % 8192 == 0 {
            pb.set_position(i as u64);
        }
    }
    if let Some(st) = &store {
        let w = Instant::now();
        st.write(&batch).await?;
        store_time += w.elapsed();
        saved.0 += batch.candles.len() as u64;
        saved.1 += batch.opportunities.len() as u64;
        st.close().await;
    }
    pb.finish_and_clear();
    let pipeline_s = (t0.elapsed() - store_time).as_secs_f64();
    Ok(ReplaySummary {
        files: series.into_iter().map(|s| s.report).collect(),
        timeframes: tfs,
        bars_in,
        pipeline: pipeline.stats(),
        by_kind,
        by_instrument,
        span,
        pipeline_s,
        bars_per_sec: if pipeline_s > 0.0 {
            bars_in as f64 / pipeline_s
        } else {
            0.0
        },
        saved: store.map(|_| saved),
    })
}
