//! Binance Spot REST for market data: `exchangeInfo` to validate symbols and learn their
//! assets, and `klines` for history and gap backfill, within Binance's documented request
//! weights (exchangeInfo 20, klines 2; 6,000 per minute per IP).
//!
//! One [`RateLimiter`] per venue counts the weight of every request before it is sent, adopts
//! the venue's own count from `X-MBX-USED-WEIGHT-1M`, waits `Retry-After` on a 429 and sends
//! nothing at all during a 418 ban. Server errors are retried with backoff; the still-forming
//! last kline is dropped (a row counts only once its close time has passed).

use std::time::Duration;

use atalaya_model::{Candle, Clock, InstrumentId, LiveClock, Timeframe, UnixNanos};
use atalaya_net::{Backoff, RateLimiter};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::SourceError;

const VENUE: &str = "binance";
const MS: i64 = 1_000_000;

/// A symbol as `exchangeInfo` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolInfo {
    /// `BTCUSDT`.
    pub symbol: String,
    /// `TRADING`, `HALT`, `BREAK`, …
    pub status: String,
    /// `BTC`.
    pub base: String,
    /// `USDT`.
    pub quote: String,
}

impl SymbolInfo {
    /// `binance:BTC/USDT`.
    pub fn instrument(&self) -> Result<InstrumentId, SourceError> {
        InstrumentId::new(VENUE, &self.base, &self.quote).map_err(SourceError::Model)
    }
}

/// The REST client.
#[derive(Debug)]
pub struct BinanceRest {
    client: reqwest::Client,
    base: String,
    limiter: Mutex<RateLimiter>,
    /// Tries before an unreachable venue is reported to the caller.
    unreachable_tries: u32,
    /// Requests sent, and those refused by the venue (429 or 418).
    pub stats: Mutex<(u64, u64)>,
}

fn venue_error(message: impl Into<String>, transient: bool) -> SourceError {
    SourceError::Venue {
        venue: VENUE,
        message: message.into(),
        transient,
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

impl BinanceRest {
    /// A client for `base_url` (`https://api.binance.com`, a testnet or a test server),
    /// allowing `weight_per_minute` (Binance's default is 6,000).
    pub fn new(base_url: &str, weight_per_minute: u32) -> Result<Self, SourceError> {
        let client = crate::http_client(VENUE)?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            limiter: Mutex::new(RateLimiter::new(weight_per_minute, 60_000 * MS)),
            unreachable_tries: 5,
            stats: Mutex::new((0, 0)),
        })
    }

    /// Reports an unreachable venue at the first failed try (for a caller that retries with
    /// its own backoff and wants to report each failure).
    pub fn reporting_unreachable_at_once(mut self) -> Self {
        self.unreachable_tries = 1;
        self
    }

    /// GETs `path` (with its query) costing `weight`, within the limits; retries 429s, bans
    /// and server errors; returns the JSON body.
    async fn get(&self, path: &str, weight: u32) -> Result<Value, SourceError> {
        let mut backoff = Backoff::new(500 * MS, 60_000 * MS, 7);
        loop {
            // Wait for the limiter (weight budget, a 429's Retry-After, a 418 ban).
            crate::take_turn(&self.limiter, weight, VENUE).await;
            self.stats.lock().await.0 += 1;
            let res = self.client.get(format!("{}{path}", self.base)).send().await;
            let res = match res {
                Ok(r) => r,
                Err(e) => {
                    if backoff.attempts() + 1 >= self.unreachable_tries {
                        return Err(venue_error(
                            format!("unreachable: {}", crate::describe(e)),
                            true,
                        ));
                    }
                    let d = backoff.next_delay();
                    tracing::warn!(error = %crate::describe(e), "Binance unreachable; retrying");
                    tokio::time::sleep(Duration::from_nanos(d.max(0) as u64)).await;
                    continue;
                }
            };
            let now = LiveClock.now();
            let status = res.status().as_u16();
            let header = |k: &str| {
                res.headers()
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let used = header("x-mbx-used-weight-1m");
            let retry_after = header("retry-after").unwrap_or(60);
            if let Some(u) = used {
                self.limiter
                    .lock()
                    .await
                    .observe_used(u32::try_from(u).unwrap_or(u32::MAX), now);
            }
            match status {
                200..=299 => {
                    return res.json::<Value>().await.map_err(|e| {
                        venue_error(format!("unreadable answer: {}", crate::describe(e)), true)
                    });
                }
                429 => {
                    self.stats.lock().await.1 += 1;
                    tracing::warn!(retry_after, "Binance 429: backing off as asked");
                    self.limiter
                        .lock()
                        .await
                        .too_many_requests(retry_after, now);
                }
                418 => {
                    self.stats.lock().await.1 += 1;
                    tracing::error!(
                        retry_after,
                        "Binance 418: IP banned; waiting for the ban to end"
                    );
                    self.limiter.lock().await.banned(retry_after, now);
                }
                500..=599 => {
                    if backoff.attempts() >= 5 {
                        return Err(venue_error(format!("server error {status}"), true));
                    }
                    let d = backoff.next_delay();
                    tokio::time::sleep(Duration::from_nanos(d.max(0) as u64)).await;
                }
                _ => {
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    return Err(venue_error(
                        format!(
                            "HTTP {status}: {} (code {})",
                            body["msg"].as_str().unwrap_or("no message"),
                            body["code"]
                        ),
                        false,
                    ));
                }
            }
        }
    }

    /// Describes `symbols`; fails naming every symbol Binance does not know.
    pub async fn exchange_info(&self, symbols: &[String]) -> Result<Vec<SymbolInfo>, SourceError> {
        let q = symbols_param(symbols);
        match self
            .get(&format!("/api/v3/exchangeInfo?symbols={q}"), 20)
            .await
        {
            Ok(v) => {
                let infos: Vec<SymbolInfo> = v["symbols"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| {
                                Some(SymbolInfo {
                                    symbol: s["symbol"].as_str()?.to_owned(),
                                    status: s["status"].as_str().unwrap_or("").to_owned(),
                                    base: s["baseAsset"].as_str()?.to_owned(),
                                    quote: s["quoteAsset"].as_str()?.to_owned(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let missing: Vec<&String> = symbols
                    .iter()
                    .filter(|s| !infos.iter().any(|i| &i.symbol == *s))
                    .collect();
                if missing.is_empty() {
                    Ok(infos)
                } else {
                    Err(unknown(&missing))
                }
            }
            // -1121 for the whole list: ask one by one to name the unknown ones.
            Err(SourceError::Venue { message, .. }) if message.contains("-1121") => {
                let mut missing = Vec::new();
                for s in symbols {
                    if let Err(SourceError::Venue { message, .. }) = self
                        .get(&format!("/api/v3/exchangeInfo?symbol={s}"), 20)
                        .await
                        && message.contains("-1121")
                    {
                        missing.push(s);
                    }
                }
                Err(unknown(&missing))
            }
            Err(e) => Err(e),
        }
    }

    /// Closed klines of `symbol` on `tf` opening in `[start, end)`, at most 1,000 per call.
    pub async fn klines(
        &self,
        symbol: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError> {
        let v = self
            .get(
                &format!(
                    "/api/v3/klines?symbol={symbol}&interval={}&startTime={}&endTime={}&limit=1000",
                    tf.as_str(),
                    start / MS,
                    (end / MS) - 1
                ),
                2,
            )
            .await?;
        klines_from_json(&v, instrument, tf, LiveClock.now())
    }

    /// Every closed kline of `symbol` on `tf` opening in `[start, end)`, page by page.
    pub async fn klines_range(
        &self,
        symbol: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError> {
        let mut out: Vec<Candle> = Vec::new();
        let mut from = start;
        while from < end {
            let page = self.klines(symbol, instrument, tf, from, end).await?;
            let Some(last) = page.last() else { break };
            from = last.open_time() + tf.nanos();
            let full = page.len() >= 1000;
            out.extend(page);
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Binance's clock (`GET /api/v3/time`, weight 1) with the local send and receive times,
    /// for [`atalaya_net::ClockSkew`].
    pub async fn server_time(&self) -> Result<(UnixNanos, UnixNanos, UnixNanos), SourceError> {
        let sent = LiveClock.now();
        let v = self.get("/api/v3/time", 1).await?;
        let received = LiveClock.now();
        let t = v["serverTime"]
            .as_i64()
            .ok_or_else(|| venue_error("time: no serverTime in the answer", false))?;
        Ok((sent, received, t * MS))
    }

    /// Rolling 24-hour statistics of `symbols` (`GET /api/v3/ticker/24hr?type=MINI`, weight 2
    /// per call of up to 20 symbols), each with its close time.
    pub async fn ticker_24h(
        &self,
        symbols: &[String],
        map: &crate::binance::SymbolMap,
    ) -> Result<Vec<(UnixNanos, atalaya_model::DayStats)>, SourceError> {
        let mut out = Vec::new();
        for chunk in symbols.chunks(20) {
            let q = symbols_param(chunk);
            let v = self
                .get(&format!("/api/v3/ticker/24hr?type=MINI&symbols={q}"), 2)
                .await?;
            let rows = v
                .as_array()
                .ok_or_else(|| venue_error("ticker/24hr: the answer is not an array", false))?;
            for r in rows {
                let f = |k: &str| num(&r[k]);
                let (Some(sym), Some(o), Some(h), Some(l), Some(c), Some(vol), Some(qv), Some(t)) = (
                    r["symbol"].as_str(),
                    f("openPrice"),
                    f("highPrice"),
                    f("lowPrice"),
                    f("lastPrice"),
                    f("volume"),
                    f("quoteVolume"),
                    r["closeTime"].as_i64(),
                ) else {
                    return Err(venue_error(
                        "ticker/24hr: a row with a missing field",
                        false,
                    ));
                };
                let inst = map
                    .lookup(sym)
                    .ok_or_else(|| venue_error(format!("ticker/24hr: unknown {sym}"), false))?;
                let d = atalaya_model::DayStats::new(inst, [o, h, l, c], vol, qv)?;
                let ts = t
                    .checked_mul(MS)
                    .ok_or_else(|| venue_error("ticker/24hr: a time out of range", false))?;
                out.push((ts, d));
            }
        }
        Ok(out)
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Requests sent and requests the venue refused (429/418) so far.
    pub async fn counts(&self) -> (u64, u64) {
        *self.stats.lock().await
    }
}

/// A `symbols` parameter: the JSON array, URL-encoded (`%5B%22BTCUSDT%22,%22ETHUSDT%22%5D`).
fn symbols_param(symbols: &[String]) -> String {
    serde_json::to_string(symbols)
        .unwrap_or_default()
        .bytes()
        .map(|b| match b {
            b'[' => "%5B".to_owned(),
            b']' => "%5D".to_owned(),
            b'"' => "%22".to_owned(),
            b => (b as char).to_string(),
        })
        .collect()
}

fn unknown(missing: &[&String]) -> SourceError {
    SourceError::Usage(format!(
        "Binance does not know {}: check the spelling (BTCUSDT), or that the pair is listed on Binance Spot",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The closed candles in a `klines` answer (12-element rows, strings for decimals); rows still
/// forming at `now` are dropped.
pub fn klines_from_json(
    v: &Value,
    instrument: InstrumentId,
    tf: Timeframe,
    now: UnixNanos,
) -> Result<Vec<Candle>, SourceError> {
    let rows = v
        .as_array()
        .ok_or_else(|| venue_error("klines: the answer is not an array", false))?;
    let now_ms = now / MS;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let f = |i: usize| r.get(i).and_then(num);
        let (Some(open_ms), Some(close_ms)) = (f(0), f(6)) else {
            return Err(venue_error("klines: a row without times", false));
        };
        // The last row of a recent query is still forming.
        if close_ms as i64 >= now_ms {
            continue;
        }
        let ohlc = [f(1), f(2), f(3), f(4)];
        let (Some(o), Some(h), Some(l), Some(c), Some(vol)) =
            (ohlc[0], ohlc[1], ohlc[2], ohlc[3], f(5))
        else {
            return Err(venue_error("klines: a row with a bad number", false));
        };
        let trades = f(8).map_or(0, |t| t as u32);
        let open = (open_ms as i64)
            .checked_mul(MS)
            .ok_or_else(|| venue_error("klines: an open time out of range", false))?;
        out.push(Candle::new(
            instrument,
            tf,
            open,
            [o, h, l, c],
            vol,
            trades,
        )?);
    }
    Ok(out)
}
