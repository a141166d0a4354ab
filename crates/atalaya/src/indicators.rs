//! `atalaya indicators`: TA-Lib-exact indicators over a history file, one column per output,
//! aligned with the file's valid rows.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use atalaya_model::{InstrumentId, Timeframe};
use atalaya_sources::replay::{self, LoadOptions};
use atalaya_ta::Bar;
use atalaya_ta::set::{IndicatorSet, Spec};

use crate::cli::Format;

/// Reads `file`, computes `specs` on every valid bar and writes the table to `out`.
/// Returns the number of rows written. Malformed rows and gaps are reported on standard
/// error and left out (the table says which bars it has through `open_time_ms`).
pub fn write_table(
    file: &Path,
    specs: Vec<Spec>,
    timeframe: Option<Timeframe>,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    // The instrument does not matter here; use the file name's when it has one.
    let instrument = replay::infer_instrument(file, "file")
        .or_else(|| InstrumentId::new("file", "BASE", "QUOTE").ok());
    let series = replay::load(
        file,
        &LoadOptions {
            instrument,
            timeframe,
            venue: Some("file".into()),
        },
    )?;
    if series.report.malformed_count > 0 || series.report.gap_count > 0 {
        eprintln!("{}", series.report.describe());
    }
    let mut set = IndicatorSet::new(specs);
    let columns = set.columns().to_vec();
    let mut row = vec![f64::NAN; columns.len()];
    let n = series.candles.len();
    match format {
        Format::Csv => {
            write!(out, "open_time_ms,open,high,low,close,volume")?;
            for c in &columns {
                write!(out, ",{c}")?;
            }
            writeln!(out)?;
            for c in &series.candles {
                let bar = Bar::new(c.open(), c.high(), c.low(), c.close(), c.volume());
                set.update(c.open_time(), &bar, &mut row);
                write!(
                    out,
                    "{},{},{},{},{},{}",
                    c.open_time() / 1_000_000,
                    c.open(),
                    c.high(),
                    c.low(),
                    c.close(),
                    c.volume()
                )?;
                for v in &row {
                    if v.is_nan() {
                        write!(out, ",")?;
                    } else {
                        write!(out, ",{v}")?;
                    }
                }
                writeln!(out)?;
            }
        }
        Format::Json => {
            let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(n); columns.len()];
            let mut times = Vec::with_capacity(n);
            let mut closes = Vec::with_capacity(n);
            for c in &series.candles {
                let bar = Bar::new(c.open(), c.high(), c.low(), c.close(), c.volume());
                set.update(c.open_time(), &bar, &mut row);
                times.push(c.open_time() / 1_000_000);
                closes.push(c.close());
                for (col, v) in cols.iter_mut().zip(&row) {
                    col.push((!v.is_nan()).then_some(*v));
                }
            }
            let mut doc = serde_json::Map::new();
            doc.insert("open_time_ms".into(), serde_json::to_value(&times)?);
            doc.insert("close".into(), serde_json::to_value(&closes)?);
            for (name, col) in columns.iter().zip(cols) {
                doc.insert(name.clone(), serde_json::to_value(col)?);
            }
            serde_json::to_writer(&mut *out, &doc).context("writing JSON")?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(n)
}
