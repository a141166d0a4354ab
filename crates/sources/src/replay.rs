//! History replay: Binance kline CSV and freqtrade JSON candle files.
//!
//! * **Binance kline CSV**: `open_time,open,high,low,close,volume[,…]`, header optional;
//!   extra columns (Binance's close time, quote volume, trade count …) are ignored, except
//!   that a ninth column is read as the number of trades when present. Open times in
//!   milliseconds, or in microseconds as Binance's spot archive writes them from 2025.
//! * **freqtrade JSON**: `[[open_ms, open, high, low, close, volume], …]`.
//!
//! Nothing is papered over. A malformed row (wrong column count, a number that does not
//! parse, prices that contradict each other, an open time off the timeframe's grid, a time
//! that does not increase) is reported with its file and line and skipped; gaps between
//! consecutive bars are reported with their size. The caller decides whether to go on.

use std::path::{Path, PathBuf};

use atalaya_model::{
    Candle, Envelope, Event, InstrumentId, Symbol, Timeframe, UnixNanos, format_utc,
};
use serde::Serialize;

use crate::SourceError;

/// At most this many malformed rows and gaps are kept per file (all are counted).
const KEEP: usize = 100;

/// Quote assets recognised at the end of a concatenated symbol (`BTCUSDT`).
const QUOTES: [&str; 10] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH", "BNB",
];

/// How to read a file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The instrument; inferred from the file name when absent.
    pub instrument: Option<InstrumentId>,
    /// The bar timeframe; inferred from the file name, else from the rows, when absent.
    pub timeframe: Option<Timeframe>,
    /// Venue for inferred instruments (default `binance`).
    pub venue: Option<String>,
}

/// A row that was skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowIssue {
    /// 1-based line number (for JSON, the entry's 1-based index).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// Missing bars between two consecutive rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Open time of the bar before the gap.
    pub after: UnixNanos,
    /// Open time of the bar after the gap.
    pub before: UnixNanos,
    /// Bars missing in between.
    pub missing_bars: u64,
}

/// What loading one file found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The file.
    pub file: PathBuf,
    /// The instrument its bars were read as.
    pub instrument: InstrumentId,
    /// Their timeframe.
    pub timeframe: Timeframe,
    /// Valid bars.
    pub rows: usize,
    /// Skipped rows (all of them).
    pub malformed_count: usize,
    /// The first skipped rows.
    pub malformed: Vec<RowIssue>,
    /// Gaps (all of them).
    pub gap_count: usize,
    /// Bars missing over all gaps.
    pub missing_bars: u64,
    /// The first gaps.
    pub gaps: Vec<Gap>,
    /// First open time.
    pub first: Option<UnixNanos>,
    /// Last open time.
    pub last: Option<UnixNanos>,
}

impl ReplayReport {
    /// A readable multi-line summary, naming the first problems with file and line.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: {} {} bars of {}",
            self.file.display(),
            self.rows,
            self.timeframe,
            self.instrument
        );
        if let (Some(a), Some(b)) = (self.first, self.last) {
            s.push_str(&format!(" from {} to {}", format_utc(a), format_utc(b)));
        }
        if self.malformed_count > 0 {
            s.push_str(&format!(
                "\n  {} malformed rows skipped",
                self.malformed_count
            ));
            for r in self.malformed.iter().take(5) {
                s.push_str(&format!(
                    "\n    {}:{}: {}",
                    self.file.display(),
                    r.line,
                    r.message
                ));
            }
        }
        if self.gap_count > 0 {
            s.push_str(&format!(
                "\n  {} gaps, {} bars missing",
                self.gap_count, self.missing_bars
            ));
            for g in self.gaps.iter().take(5) {
                s.push_str(&format!(
                    "\n    after {} until {}: {} bars",
                    format_utc(g.after),
                    format_utc(g.before),
                    g.missing_bars
                ));
            }
        }
        s
    }
}

/// A loaded file: its valid bars in time order and the report.
#[derive(Clone, Debug)]
pub struct LoadedSeries {
    /// The bars.
    pub candles: Vec<Candle>,
    /// What was found.
    pub report: ReplayReport,
}

/// One parsed row before validation.
struct RawRow {
    line: usize,
    ts: i64,
    ohlcv: [f64; 5],
    trades: u32,
}

fn to_nanos(t: i64) -> Option<i64> {
    let abs = t.unsigned_abs();
    if abs >= 100_000_000_000_000 {
        t.checked_mul(1_000) // microseconds
    } else {
        t.checked_mul(1_000_000) // milliseconds
    }
}

fn parse_csv(text: &str, issues: &mut Vec<RowIssue>) -> Vec<RawRow> {
    let mut rows = Vec::with_capacity(text.len() / 48);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // Split without allocating: up to nine fields are read, the rest only counted.
        let mut cols = [""; 9];
        let mut n = 0;
        for field in line.split(',') {
            if n < cols.len() {
                cols[n] = field.trim();
            }
            n += 1;
        }
        if i == 0 && cols[0].parse::<f64>().is_err() {
            continue; // header
        }
        if n < 6 {
            issues.push(RowIssue {
                line: line_no,
                message: format!("expected at least 6 columns, found {n}"),
            });
            continue;
        }
        let Ok(ts) = cols[0].parse::<i64>() else {
            issues.push(RowIssue {
                line: line_no,
                message: format!("open time {:?} is not an integer", cols[0]),
            });
            continue;
        };
        let mut ohlcv = [0.0; 5];
        let mut bad = None;
        for (k, name) in ["open", "high", "low", "close", "volume"]
            .iter()
            .enumerate()
        {
            match cols[k + 1].parse::<f64>() {
                Ok(v) => ohlcv[k] = v,
                Err(_) => {
                    bad = Some(format!("{name} {:?} is not a number", cols[k + 1]));
                    break;
                }
            }
        }
        if let Some(message) = bad {
            issues.push(RowIssue {
                line: line_no,
                message,
            });
            continue;
        }
        let trades = cols[8].parse::<u32>().unwrap_or(0);
        rows.push(RawRow {
            line: line_no,
            ts,
            ohlcv,
            trades,
        });
    }
    rows
}

fn parse_freqtrade(
    path: &Path,
    text: &str,
    issues: &mut Vec<RowIssue>,
) -> Result<Vec<RawRow>, SourceError> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| SourceError::Parse {
            path: path.to_owned(),
            line: e.line(),
            message: format!("not a freqtrade candle file ([[ms, o, h, l, c, v], …]): {e}"),
        })?;
    let mut rows = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let line = i + 1;
        let Some(arr) = entry.as_array().filter(|a| a.len() >= 6) else {
            issues.push(RowIssue {
                line,
                message: "expected an array [ms, open, high, low, close, volume]".into(),
            });
            continue;
        };
        let Some(ts) = arr[0]
            .as_i64()
            .or_else(|| arr[0].as_f64().map(|f| f as i64))
        else {
            issues.push(RowIssue {
                line,
                message: format!("open time {} is not a number", arr[0]),
            });
            continue;
        };
        let mut ohlcv = [0.0; 5];
        let mut ok = true;
        for k in 0..5 {
            let v = &arr[k + 1];
            match v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(x) => ohlcv[k] = x,
                None => {
                    issues.push(RowIssue {
                        line,
                        message: format!("value {v} is not a number"),
                    });
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            rows.push(RawRow {
                line,
                ts,
                ohlcv,
                trades: 0,
            });
        }
    }
    Ok(rows)
}

/// Reads `BTCUSDT` or `BTC_USDT` from a file name such as `BTCUSDT_1h_2023.csv` or
/// `BTC_USDT-1h.json`.
pub fn infer_instrument(path: &Path, venue: &str) -> Option<InstrumentId> {
    let stem = path.file_stem()?.to_str()?.to_ascii_uppercase();
    // freqtrade: BASE_QUOTE-TF[-…]
    let alnum = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut dash = stem.split('-');
    if let (Some(pair), Some(tf)) = (dash.next(), dash.next())
        && tf.to_ascii_lowercase().parse::<Timeframe>().is_ok()
        && let Some((base, quote)) = pair.split_once('_')
        && alnum(base)
        && alnum(quote)
        && let Ok(id) = InstrumentId::new(venue, base, quote)
    {
        return Some(id);
    }
    let token = stem.split(['_', '-', '.', ' ']).next()?;
    QUOTES.iter().find_map(|q| {
        let base = token.strip_suffix(q)?;
        (!base.is_empty())
            .then(|| InstrumentId::new(venue, base, q).ok())
            .flatten()
    })
}

/// Reads a timeframe token (`1h`, `5m`) from a file name.
pub fn infer_timeframe_from_name(path: &Path) -> Option<Timeframe> {
    let stem = path.file_stem()?.to_str()?;
    stem.split(['_', '-', '.', ' '])
        .find_map(|t| t.parse::<Timeframe>().ok())
}

/// The most common spacing of the first rows, if it is a timeframe.
fn infer_timeframe_from_rows(rows: &[RawRow]) -> Option<Timeframe> {
    let mut diffs: Vec<i64> = rows
        .windows(2)
        .take(2000)
        .filter_map(|w| Some(to_nanos(w[1].ts)? - to_nanos(w[0].ts)?))
        .filter(|d| *d > 0)
        .collect();
    diffs.sort_unstable();
    let mut best = (0usize, 0i64);
    let mut i = 0;
    while i < diffs.len() {
        let j = diffs[i..].iter().take_while(|d| **d == diffs[i]).count();
        if j > best.0 {
            best = (j, diffs[i]);
        }
        i += j;
    }
    Timeframe::from_nanos(best.1)
}

/// Loads one file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<LoadedSeries, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceError::Io {
        path: path.to_owned(),
        source,
    })?;
    let venue = opts.venue.as_deref().unwrap_or("binance");
    let instrument = match opts.instrument {
        Some(i) => i,
        None => infer_instrument(path, venue).ok_or_else(|| SourceError::Usage(format!(
            "cannot tell the instrument from the file name {}; pass --instrument venue:BASE/QUOTE",
            path.display()
        )))?,
    };
    let mut issues = Vec::new();
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    let rows = if is_json {
        parse_freqtrade(path, &text, &mut issues)?
    } else {
        parse_csv(&text, &mut issues)
    };
    let timeframe = opts
        .timeframe
        .or_else(|| infer_timeframe_from_name(path))
        .or_else(|| infer_timeframe_from_rows(&rows))
        .ok_or_else(|| {
            SourceError::Usage(format!(
                "cannot tell the timeframe of {}; pass --timeframe",
                path.display()
            ))
        })?;
    let mut candles: Vec<Candle> = Vec::with_capacity(rows.len());
    let mut gaps = Vec::new();
    let (mut gap_count, mut missing_bars) = (0usize, 0u64);
    for r in rows {
        let Some(ts) = to_nanos(r.ts) else {
            issues.push(RowIssue {
                line: r.line,
                message: format!("open time {} is out of range", r.ts),
            });
            continue;
        };
        let [o, h, l, c, v] = r.ohlcv;
        let candle = match Candle::new(instrument, timeframe, ts, [o, h, l, c], v, r.trades) {
            Ok(c) => c,
            Err(e) => {
                issues.push(RowIssue {
                    line: r.line,
                    message: e.to_string(),
                });
                continue;
            }
        };
        if let Some(prev) = candles.last() {
            if ts <= prev.open_time() {
                issues.push(RowIssue {
                    line: r.line,
                    message: format!(
                        "open time {} does not increase (previous bar opened at {})",
                        format_utc(ts),
                        format_utc(prev.open_time())
                    ),
                });
                continue;
            }
            let step = timeframe.nanos();
            let missing = (ts - prev.open_time()) / step - 1;
            if missing > 0 {
                gap_count += 1;
                missing_bars += missing as u64;
                if gaps.len() < KEEP {
                    gaps.push(Gap {
                        after: prev.open_time(),
                        before: ts,
                        missing_bars: missing as u64,
                    });
                }
            }
        }
        candles.push(candle);
    }
    let malformed_count = issues.len();
    issues.sort_by_key(|i| i.line);
    issues.truncate(KEEP);
    let report = ReplayReport {
        file: path.to_owned(),
        instrument,
        timeframe,
        rows: candles.len(),
        malformed_count,
        malformed: issues,
        gap_count,
        missing_bars,
        gaps,
        first: candles.first().map(Candle::open_time),
        last: candles.last().map(Candle::open_time),
    };
    Ok(LoadedSeries { candles, report })
}

/// Several series merged into one stream ordered by close time (ties keep file order),
/// without copying the bars: only a 16-byte key per bar is sorted.
#[derive(Debug)]
pub struct Merged<'a> {
    series: &'a [LoadedSeries],
    keys: Vec<(UnixNanos, u32, u32)>,
    source: Symbol,
}

impl<'a> Merged<'a> {
    /// Number of bars.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The bar at position `i` of the merged order.
    pub fn candle(&self, i: usize) -> Option<&'a Candle> {
        let &(_, k, j) = self.keys.get(i)?;
        self.series.get(k as usize)?.candles.get(j as usize)
    }

    /// The bars in order, each with the time it is received (its close), as
    /// [`envelopes`](Self::envelopes) carries them.
    pub fn bars(&self) -> impl Iterator<Item = (Candle, UnixNanos)> + '_ {
        self.keys.iter().filter_map(move |&(ts, k, j)| {
            Some((*self.series.get(k as usize)?.candles.get(j as usize)?, ts))
        })
    }

    /// The bars in order as one slice of a single series, when that is what the merge holds
    /// (one series, its bars in the order it keeps them): a replay of them needs no merge
    /// keys. Each is received at its close.
    pub fn in_one_series(&self) -> Option<&'a [Candle]> {
        let (&(_, k, first), &(_, _, last)) = (self.keys.first()?, self.keys.last()?);
        let series = self.series.get(k as usize)?;
        let run = series.candles.get(first as usize..=last as usize)?;
        let in_order = run.len() == self.keys.len()
            && self
                .keys
                .iter()
                .zip(run)
                .enumerate()
                .all(|(i, (&(ts, kk, j), c))| {
                    kk == k && j as usize == first as usize + i && ts == c.close_time()
                });
        in_order.then_some(run)
    }

    /// The bars as envelopes stamped as received at their close, `seq` counting from 0.
    pub fn envelopes(&self) -> impl Iterator<Item = Envelope<Event>> + '_ {
        self.keys
            .iter()
            .enumerate()
            .filter_map(move |(seq, &(ts, k, j))| {
                let c = *self.series.get(k as usize)?.candles.get(j as usize)?;
                Some(Envelope::new(
                    seq as u64,
                    ts,
                    ts,
                    self.source,
                    Event::Candle(c),
                ))
            })
    }
}

/// Merges `series`, keeping bars whose open time lies in `[from, to)`.
pub fn merge(
    series: &[LoadedSeries],
    from: Option<UnixNanos>,
    to: Option<UnixNanos>,
) -> Result<Merged<'_>, SourceError> {
    let keep = |c: &Candle| {
        from.is_none_or(|f| c.open_time() >= f) && to.is_none_or(|t| c.open_time() < t)
    };
    let too_many = || SourceError::Usage("more than 4 billion bars or files in one replay".into());
    let mut keys = Vec::with_capacity(series.iter().map(|s| s.candles.len()).sum());
    for (k, s) in series.iter().enumerate() {
        let k = u32::try_from(k).map_err(|_| too_many())?;
        for (j, c) in s.candles.iter().enumerate() {
            if keep(c) {
                keys.push((c.close_time(), k, u32::try_from(j).map_err(|_| too_many())?));
            }
        }
    }
    keys.sort_unstable();
    Ok(Merged {
        series,
        keys,
        source: Symbol::new("replay")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    #[test]
    fn csv_with_header_gap_and_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "BTCUSDT_1h_test.csv",
            "open_time_ms,open,high,low,close,volume\n\
             1672531200000,100,110,90,105,1\n\
             1672534800000,105,106,104,105.5,2\n\
             1672538400000,abc,1,1,1,1\n\
             1672545600000,105,107,103,106,3\n\
             1672549200000,105,100,103,106,3\n\
             1672549200000,1,2\n\
             1672545600000,105,107,103,106,3\n\
             1672549200001,105,107,103,106,3\n",
        );
        let s = load(&p, &LoadOptions::default()).unwrap();
        let r = &s.report;
        assert_eq!(r.instrument.to_string(), "binance:BTC/USDT");
        assert_eq!(r.timeframe, Timeframe::H1);
        assert_eq!(r.rows, 3);
        assert_eq!(r.gap_count, 1);
        assert_eq!(r.missing_bars, 2);
        let lines: Vec<usize> = r.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, vec![4, 6, 7, 8, 9]);
        let text = r.describe();
        assert!(
            text.contains("BTCUSDT_1h_test.csv:4: open \"abc\" is not a number"),
            "{text}"
        );
        assert!(text.contains("high is below"), "{text}");
        assert!(text.contains("does not increase"), "{text}");
        assert!(text.contains("not aligned"), "{text}");
    }

    #[test]
    fn freqtrade_json_and_microsecond_csv() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "ETH_USDT-5m.json",
            "[[1672531200000,1,2,0.5,1.5,10],[1672531500000,1.5,2,1,1.8,5],[1672531800000,\"x\",1,1,1,1]]",
        );
        let s = load(&p, &LoadOptions::default()).unwrap();
        assert_eq!(s.report.instrument.to_string(), "binance:ETH/USDT");
        assert_eq!(s.report.timeframe, Timeframe::M5);
        assert_eq!(s.report.rows, 2);
        assert_eq!(s.report.malformed[0].line, 3);
        let p = write(
            dir.path(),
            "x.csv",
            "1735689600000000,1,1,1,1,1\n1735689660000000,1,1,1,1,1\n",
        );
        let opts = LoadOptions {
            instrument: Some("binance:SOL/USDT".parse().unwrap()),
            ..Default::default()
        };
        let s = load(&p, &opts).unwrap();
        assert_eq!(
            s.report.timeframe,
            Timeframe::M1,
            "inferred from row spacing"
        );
        assert_eq!(s.candles[0].open_time(), 1_735_689_600_000_000_000);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.csv");
        let e = load(&missing, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.csv"), "{e}");
        let p = write(dir.path(), "mystery.csv", "1,1,1,1,1,1\n");
        let e = load(&p, &LoadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("--instrument"), "{e}");
        let p = write(dir.path(), "BTC_USDT-1h.json", "{not json");
        let e = load(&p, &LoadOptions::default()).unwrap_err().to_string();
        assert!(
            e.contains("BTC_USDT-1h.json") && e.contains("line 1"),
            "{e}"
        );
    }

    #[test]
    fn infers_instruments_from_common_file_names() {
        for (name, want) in [
            ("BTCUSDT_1h_2023-01-01_2024-01-10.csv", "binance:BTC/USDT"),
            ("ETH_USDT-1h.json", "binance:ETH/USDT"),
            ("SOL_USDT-5m-futures.json", "binance:SOL/USDT"),
            ("ethbtc-1m-2024-01.csv", "binance:ETH/BTC"),
        ] {
            let got = infer_instrument(Path::new(name), "binance").map(|i| i.to_string());
            assert_eq!(got.as_deref(), Some(want), "{name}");
        }
        assert_eq!(infer_instrument(Path::new("prices.csv"), "binance"), None);
    }

    #[test]
    fn merge_orders_by_close_time() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "BTCUSDT_1h.csv",
            "0,1,1,1,1,1\n3600000,1,1,1,1,1\n",
        );
        let b = write(
            dir.path(),
            "ETHUSDT_1h.csv",
            "0,1,1,1,1,1\n7200000,1,1,1,1,1\n",
        );
        let sa = load(&a, &LoadOptions::default()).unwrap();
        let sb = load(&b, &LoadOptions::default()).unwrap();
        let series = [sa, sb];
        let m = merge(&series, None, None).unwrap();
        let envs: Vec<_> = m.envelopes().collect();
        // The bars as the envelopes carry them; two series are not one.
        let bars: Vec<_> = m.bars().collect();
        assert_eq!(bars.len(), envs.len());
        for ((c, ts), e) in bars.iter().zip(&envs) {
            assert_eq!((Event::Candle(*c), *ts), (e.payload.clone(), e.ts_received));
        }
        assert!(m.in_one_series().is_none());
        let one = merge(&series[..1], None, None).unwrap();
        assert_eq!(one.in_one_series(), Some(&series[0].candles[..]));
        let late = merge(&series[..1], Some(3_600_000_000_000), None).unwrap();
        assert_eq!(late.in_one_series(), Some(&series[0].candles[1..]));
        let got: Vec<(i64, String)> = envs
            .iter()
            .map(|e| match &e.payload {
                Event::Candle(c) => (e.ts_event / 1_000_000, c.instrument().base().to_string()),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (3_600_000, "BTC".into()),
                (3_600_000, "ETH".into()),
                (7_200_000, "BTC".into()),
                (10_800_000, "ETH".into())
            ]
        );
        assert_eq!(
            envs.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(m.len(), 4);
        assert_eq!(m.candle(3).unwrap().instrument().base().as_str(), "ETH");
    }
}
