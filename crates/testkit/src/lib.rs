//! Test helpers shared by Atalaya's crates.
//!
//! * [`wait_until`]: poll a condition with a deadline instead of sleeping a guessed time;
//! * [`write_kline_csv`] and [`write_freqtrade_json`]: small replay fixtures written from
//!   a deterministic generator, with optional gaps and malformed rows;
//! * [`http_get`]: a minimal HTTP/1.1 client for tests that must go through a real socket;
//! * [`data_dir`]: the real-data folder named by `ATALAYA_DATA_DIR`, with the skip rule the
//!   project uses (unset: skip and say so; set but missing: fail loudly).
//!
//! * [`fake_http::FakeHttp`]: a scriptable HTTP server on `127.0.0.1:0` that records requests
//!   and answers in the documented shapes of Telegram and Discord.
//!
//! Fake exchange servers join here as the collectors land.

pub mod fake_binance;
pub mod fake_chain;
pub mod fake_coinbase;
pub mod fake_feed;
pub mod fake_http;
pub mod fake_hub;
pub mod fake_kraken;
pub mod tiny_bert;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `cond` every 10 ms until it returns true or `timeout` passes; returns whether it
/// became true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One fixture bar: `(open_time_ms, open, high, low, close, volume)`.
pub type Bar = (i64, f64, f64, f64, f64, f64);

/// `n` bars of a deterministic random walk starting at `start_ms`, `step_ms` apart, price
/// starting at `price`. Bars listed in `skip` (by index) are left out, making gaps.
pub fn walk(
    n: usize,
    start_ms: i64,
    step_ms: i64,
    price: f64,
    seed: u64,
    skip: &[usize],
) -> Vec<Bar> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut p = price;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let open = p;
        let close = open * (1.0 + 0.02 * (next() - 0.5));
        let high = open.max(close) * (1.0 + 0.005 * next());
        let low = open.min(close) * (1.0 - 0.005 * next());
        let volume = 10.0 + 100.0 * next();
        p = close;
        if !skip.contains(&i) {
            out.push((
                start_ms + i as i64 * step_ms,
                open,
                high,
                low,
                close,
                volume,
            ));
        }
    }
    out
}

/// Writes bars as a Binance kline CSV with a header, appending `extra_lines` verbatim (for
/// malformed-row tests).
pub fn write_kline_csv(path: &Path, bars: &[Bar], extra_lines: &[&str]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "open_time_ms,open,high,low,close,volume")?;
    for (t, o, h, l, c, v) in bars {
        writeln!(f, "{t},{o},{h},{l},{c},{v}")?;
    }
    for line in extra_lines {
        writeln!(f, "{line}")?;
    }
    f.flush()
}

/// Writes bars as a freqtrade JSON candle file.
pub fn write_freqtrade_json(path: &Path, bars: &[Bar]) -> std::io::Result<()> {
    let rows: Vec<String> = bars
        .iter()
        .map(|(t, o, h, l, c, v)| format!("[{t},{o},{h},{l},{c},{v}]"))
        .collect();
    std::fs::write(path, format!("[{}]", rows.join(",")))
}

/// A response from [`http_get`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body as text.
    pub body: String,
}

/// `GET path` over a fresh TCP connection with `Connection: close`; reads to the end.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The real-data folder for tests, from `ATALAYA_DATA_DIR`.
///
/// Unset: prints that the test was skipped and returns `None` (a user's fresh clone).
/// Set but missing: panics, because CI promised the data and a silent skip would hide it.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os("ATALAYA_DATA_DIR") {
        None => {
            eprintln!("skipped {test}: ATALAYA_DATA_DIR is not set");
            None
        }
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_dir(),
                "ATALAYA_DATA_DIR={} is not a directory",
                p.display()
            );
            Some(p)
        }
    }
}

/// Compares `got` with the snapshot file at `path`, panicking at the first differing line;
/// with `ATALAYA_UPDATE_SNAPSHOTS` set, writes `got` there first (to accept a change that was
/// checked to be intended).
#[allow(clippy::panic)]
pub fn assert_snapshot(path: &Path, got: &str) {
    if std::env::var_os("ATALAYA_UPDATE_SNAPSHOTS").is_some()
        && let Err(e) = std::fs::write(path, got)
    {
        panic!("cannot write the snapshot {}: {e}", path.display());
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{} changed at line {} (ATALAYA_UPDATE_SNAPSHOTS=1 to accept):\n- {}\n+ {}",
            path.display(),
            line + 1,
            want.lines().nth(line).unwrap_or("<end>"),
            got.lines().nth(line).unwrap_or("<end>")
        );
    }
}

/// RFC 3339 in UTC from milliseconds, with `digits` (3, 6 or 9) of fractional seconds, as the
/// venues write it: `2026-04-07T14:30:02.789000Z`.
pub(crate) fn rfc3339(ms: i64, digits: usize) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let frac = format!(
        "{:03}{}",
        ms.rem_euclid(1000),
        "0".repeat(digits.saturating_sub(3))
    );
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_deterministic_and_skips() {
        let a = walk(10, 0, 60_000, 100.0, 1, &[3]);
        assert_eq!(a.len(), 9);
        assert_eq!(a, walk(10, 0, 60_000, 100.0, 1, &[3]));
        assert!(a.iter().all(|b| b.2 >= b.1.max(b.4) && b.3 <= b.1.min(b.4)));
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }

    #[tokio::test]
    async fn wait_until_times_out() {
        assert!(!wait_until(Duration::from_millis(30), || async { false }).await);
        assert!(wait_until(Duration::from_millis(30), || async { true }).await);
    }
}
