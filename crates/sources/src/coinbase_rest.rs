//! Coinbase Advanced Trade public REST for history: `GET /market/products/{id}` to validate a
//! product and learn its assets, `GET /market/products/{id}/candles` for bars (`start`/`end` in
//! UNIX seconds, a `granularity` name, at most 300 per call here although 350 is documented,
//! newest first on the wire). Public endpoints allow about 10 requests a second per IP: one
//! limiter keeps under that, 429s are waited out and server errors retried with backoff.

use std::time::Duration;

use atalaya_model::{Candle, Clock, InstrumentId, LiveClock, Timeframe, UnixNanos};
use atalaya_net::{Backoff, RateLimiter};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::SourceError;

const VENUE: &str = "coinbase";
const S: i64 = 1_000_000_000;
/// Bars per request (the API documents 350; some deployments refuse 350).
const PER_CALL: i64 = 300;

fn err(message: impl Into<String>, transient: bool) -> SourceError {
    SourceError::Venue {
        venue: VENUE,
        message: message.into(),
        transient,
    }
}

/// The API's name for a bar length.
pub fn granularity(tf: Timeframe) -> Option<&'static str> {
    Some(match tf.as_str() {
        "1m" => "ONE_MINUTE",
        "5m" => "FIVE_MINUTE",
        "15m" => "FIFTEEN_MINUTE",
        "30m" => "THIRTY_MINUTE",
        "1h" => "ONE_HOUR",
        "2h" => "TWO_HOUR",
        "6h" => "SIX_HOUR",
        "1d" => "ONE_DAY",
        _ => return None,
    })
}

/// The client.
#[derive(Debug)]
pub struct CoinbaseRest {
    client: reqwest::Client,
    base: String,
    limiter: Mutex<RateLimiter>,
    stats: Mutex<(u64, u64)>,
    /// Tries before an unreachable venue is reported to the caller.
    unreachable_tries: u32,
}

impl CoinbaseRest {
    /// A client for `base_url` (`https://api.coinbase.com/api/v3/brokerage` or a test server)
    /// sending at most `per_second` requests a second.
    pub fn new(base_url: &str, per_second: u32) -> Result<Self, SourceError> {
        let client = crate::http_client(VENUE)?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            limiter: Mutex::new(RateLimiter::new(per_second.max(1), S)),
            stats: Mutex::new((0, 0)),
            unreachable_tries: 6,
        })
    }

    /// Reports an unreachable venue at the first failed try (for a caller that retries with
    /// its own backoff and wants to report each failure).
    pub fn reporting_unreachable_at_once(mut self) -> Self {
        self.unreachable_tries = 1;
        self
    }

    async fn get(&self, path: &str) -> Result<Value, SourceError> {
        let mut backoff = Backoff::new(500_000_000, 30 * S, 13);
        loop {
            crate::take_turn(&self.limiter, 1, VENUE).await;
            self.stats.lock().await.0 += 1;
            let res = match self.client.get(format!("{}{path}", self.base)).send().await {
                Ok(r) => r,
                Err(e) if backoff.attempts() + 1 < self.unreachable_tries => {
                    tracing::warn!(error = %crate::describe(e), "Coinbase unreachable; retrying");
                    let d = backoff.next_delay();
                    tokio::time::sleep(Duration::from_nanos(d.max(0) as u64)).await;
                    continue;
                }
                Err(e) => return Err(err(format!("unreachable: {}", crate::describe(e)), true)),
            };
            let status = res.status().as_u16();
            match status {
                200..=299 => {
                    return res.json().await.map_err(|e| {
                        err(format!("unreadable answer: {}", crate::describe(e)), true)
                    });
                }
                429 => {
                    self.stats.lock().await.1 += 1;
                    let after = res
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1);
                    tracing::warn!(retry_after = after, "Coinbase 429: backing off");
                    self.limiter
                        .lock()
                        .await
                        .too_many_requests(after, LiveClock.now());
                }
                500..=599 if backoff.attempts() < 5 => {
                    let d = backoff.next_delay();
                    tokio::time::sleep(Duration::from_nanos(d.max(0) as u64)).await;
                }
                _ => {
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    let msg = body["error_details"]
                        .as_str()
                        .or_else(|| body["message"].as_str())
                        .or_else(|| body["error"].as_str())
                        .unwrap_or("no message");
                    return Err(err(format!("HTTP {status}: {msg}"), status >= 500));
                }
            }
        }
    }

    /// The product's instrument (`coinbase:BTC/USD`); names the product when it is unknown.
    pub async fn product(&self, product_id: &str) -> Result<InstrumentId, SourceError> {
        let v = match self.get(&format!("/market/products/{product_id}")).await {
            Ok(v) => v,
            Err(SourceError::Venue { message, .. })
                if message.contains("HTTP 404") || message.contains("HTTP 400") =>
            {
                return Err(SourceError::Usage(format!(
                    "Coinbase does not know {product_id}: products are written BASE-QUOTE (BTC-USD)"
                )));
            }
            Err(e) => return Err(e),
        };
        let base = v["base_currency_id"]
            .as_str()
            .or_else(|| v["base_display_symbol"].as_str());
        let quote = v["quote_currency_id"]
            .as_str()
            .or_else(|| v["quote_display_symbol"].as_str());
        match (base, quote) {
            (Some(b), Some(q)) => InstrumentId::new(VENUE, b, q).map_err(SourceError::Model),
            _ => Err(err(
                format!("{product_id}: the product has no currencies"),
                false,
            )),
        }
    }

    /// Closed bars of `product_id` opening in `[start, end)`, oldest first, at most 300.
    pub async fn candles(
        &self,
        product_id: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError> {
        let g = granularity(tf).ok_or_else(|| {
            SourceError::Usage(format!(
                "Coinbase has no {tf} candles: use 1m, 5m, 15m, 30m, 1h, 2h, 6h or 1d"
            ))
        })?;
        let end = end.min(start + PER_CALL * tf.nanos());
        let v = self
            .get(&format!(
                "/market/products/{product_id}/candles?start={}&end={}&granularity={g}",
                start / S,
                end / S
            ))
            .await?;
        candles_from_json(&v, instrument, tf, (start, end), LiveClock.now())
    }

    /// Every closed bar of `product_id` opening in `[start, end)`, in windows of 300.
    pub async fn candles_range(
        &self,
        product_id: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError> {
        let mut out = Vec::new();
        let mut from = start;
        while from < end {
            let to = end.min(from + PER_CALL * tf.nanos());
            out.extend(self.candles(product_id, instrument, tf, from, to).await?);
            from = to;
        }
        Ok(out)
    }

    /// Coinbase's clock (`GET /time`): `(sent, received, server time)`.
    pub async fn server_time(&self) -> Result<(UnixNanos, UnixNanos, UnixNanos), SourceError> {
        let sent = LiveClock.now();
        let v = self.get("/time").await?;
        let received = LiveClock.now();
        let ms = match &v["epochMillis"] {
            Value::String(s) => s.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
        .ok_or_else(|| err("time: no epochMillis in the answer", false))?;
        Ok((sent, received, ms * 1_000_000))
    }

    /// Requests sent, and refused with 429 and retried.
    pub async fn counts(&self) -> (u64, u64) {
        *self.stats.lock().await
    }
}

/// The closed candles opening in `[start, end)` in a `candles` answer (string fields, newest
/// first on the wire), oldest first and once each.
pub fn candles_from_json(
    v: &Value,
    instrument: InstrumentId,
    tf: Timeframe,
    (start, end): (UnixNanos, UnixNanos),
    now: UnixNanos,
) -> Result<Vec<Candle>, SourceError> {
    let rows = v["candles"]
        .as_array()
        .ok_or_else(|| err("candles: no `candles` list in the answer", false))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let f = |k: &str| match &r[k] {
            Value::String(s) => s.parse::<f64>().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        let (Some(t), Some(o), Some(h), Some(l), Some(c), Some(vol)) = (
            f("start"),
            f("open"),
            f("high"),
            f("low"),
            f("close"),
            f("volume"),
        ) else {
            return Err(err("candles: a row with a missing or bad field", false));
        };
        let open = (t as i64)
            .checked_mul(S)
            .ok_or_else(|| err("candles: a start out of range", false))?;
        // Only closed bars inside the window.
        if open < start || open >= end || open.saturating_add(tf.nanos()) > now {
            continue;
        }
        out.push(Candle::new(instrument, tf, open, [o, h, l, c], vol, 0)?);
    }
    out.sort_by_key(Candle::open_time);
    out.dedup_by_key(|c| c.open_time());
    Ok(out)
}
