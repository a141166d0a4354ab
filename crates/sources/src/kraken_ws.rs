//! Kraken Spot live over WebSocket v2 (`wss://ws.kraken.com/v2`) with REST OHLC backfill: the
//! third venue, behind `live.sources = ["kraken"]`, driven by [`LiveSource`].
//!
//! Why Kraken: it is the largest regulated spot venue in the US and Europe beside Coinbase, so
//! it covers users for whom Binance is unavailable; its v2 API speaks plain JSON objects with
//! `BTC/USD` symbols and RFC 3339 times; and its documented limits (about one public REST call
//! a second, the last 720 OHLC bars only) are exactly the hard case for gap backfill.
//!
//! After connecting it sends `subscribe` for `ohlc` (each configured interval), `trade` and
//! `ticker`; Kraken acknowledges per symbol (`success: false` with an `error` is counted).
//! `ohlc` updates carry no closed flag: a candle is final when one with a later
//! `interval_begin` arrives, and only then is it published. Heartbeats keep the stream alive
//! (about one a second when nothing else flows). REST: `GET /0/public/OHLC` validates pairs
//! (`EQuery:Unknown asset pair`) and backfills (the last 720 bars at most: a longer outage
//! leaves the older part to `atalaya download`), `GET /0/public/Time` gives the clock;
//! `EAPI:Rate limit exceeded` pauses all calls.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use atalaya_model::{
    Candle, Clock, Event, InstrumentId, LiveClock, Side, Ticker, Timeframe, Trade, UnixNanos,
    parse_utc,
};
use atalaya_net::{Backoff, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::SourceError;
use crate::live::{LiveControl, LiveSource, Timing, Venue};

const VENUE: &str = "kraken";
const S: i64 = 1_000_000_000;

/// Kraken Spot: endpoints, pairs, intervals and resilience settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KrakenConfig {
    /// REST base URL.
    pub rest_url: String,
    /// WebSocket v2 URL.
    pub ws_url: String,
    /// Public REST calls per second (Kraken: about one).
    pub requests_per_second: u32,
    /// Pairs in v2 notation (`BTC/USD`).
    pub symbols: Vec<String>,
    /// OHLC intervals (1m, 5m, 15m, 30m, 1h, 4h, 1d).
    pub timeframes: Vec<Timeframe>,
    /// A connection silent this long is dead.
    pub stale_after_secs: u64,
    /// Renew the connection after this long.
    pub reconnect_after_secs: u64,
    /// How long a trade may be held to put out-of-order arrivals in exchange-time order.
    pub trade_hold_ms: u64,
}

impl Default for KrakenConfig {
    fn default() -> Self {
        Self {
            rest_url: "https://api.kraken.com".into(),
            ws_url: "wss://ws.kraken.com/v2".into(),
            requests_per_second: 1,
            symbols: ["BTC/USD", "ETH/USD", "ADA/USD", "SOL/USD", "AVAX/USD"]
                .map(String::from)
                .to_vec(),
            timeframes: vec![Timeframe::M1],
            stale_after_secs: 30,
            reconnect_after_secs: 23 * 3600 + 30 * 60,
            trade_hold_ms: 100,
        }
    }
}

fn interval_minutes(tf: Timeframe) -> Option<i64> {
    let m = tf.nanos() / (60 * S);
    [1, 5, 15, 30, 60, 240, 1440, 10080, 21600]
        .contains(&m)
        .then_some(m)
}

impl KrakenConfig {
    /// Problems with the settings, each with its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.symbols.is_empty() {
            p.push("venues.kraken.symbols: at least one pair is needed".to_owned());
        }
        for s in &self.symbols {
            let ok = s
                .split_once('/')
                .is_some_and(|(b, q)| !b.is_empty() && !q.is_empty() && !q.contains('/'));
            if !ok {
                p.push(format!(
                    "venues.kraken.symbols: {s:?} is not a Kraken v2 pair (like BTC/USD)"
                ));
            }
        }
        for tf in &self.timeframes {
            if interval_minutes(*tf).is_none() {
                p.push(format!(
                    "venues.kraken.timeframes: Kraken has no {tf} OHLC (1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w)"
                ));
            }
        }
        p.extend(crate::live::common_problems(
            "kraken",
            (&self.rest_url, &self.ws_url),
            self.stale_after_secs,
            self.reconnect_after_secs,
        ));
        if self.requests_per_second == 0 {
            p.push("venues.kraken.requests_per_second: must be at least 1".into());
        }
        p
    }
}

/// Kraken's REST name for a v2 pair: `BTC/USD` → `XBTUSD`.
pub fn rest_pair(symbol: &str) -> String {
    let (b, q) = symbol.split_once('/').unwrap_or((symbol, ""));
    let fix = |a: &str| {
        if a == "BTC" {
            "XBT".to_owned()
        } else {
            a.to_owned()
        }
    };
    format!("{}{}", fix(b), fix(q))
}

fn err(message: impl Into<String>, transient: bool) -> SourceError {
    SourceError::Venue {
        venue: VENUE,
        message: message.into(),
        transient,
    }
}

/// Kraken's public REST, within its rate limit.
#[derive(Debug)]
pub struct KrakenRest {
    client: reqwest::Client,
    base: String,
    limiter: Mutex<RateLimiter>,
    stats: Mutex<(u64, u64)>,
}

impl KrakenRest {
    /// A client for `base_url` sending at most `per_second` calls a second.
    pub fn new(base_url: &str, per_second: u32) -> Result<Self, SourceError> {
        Ok(Self {
            client: crate::http_client(VENUE)?,
            base: base_url.trim_end_matches('/').to_owned(),
            limiter: Mutex::new(RateLimiter::new(per_second.max(1), S)),
            stats: Mutex::new((0, 0)),
        })
    }

    /// GETs `path`; returns `result`, or Kraken's `error[]` joined.
    async fn get(&self, path: &str) -> Result<Value, SourceError> {
        let mut backoff = Backoff::new(500_000_000, 30 * S, 17);
        loop {
            crate::take_turn(&self.limiter, 1, VENUE).await;
            self.stats.lock().await.0 += 1;
            let res = self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .map_err(|e| err(format!("unreachable: {}", crate::describe(e)), true))?;
            let status = res.status().as_u16();
            if (500..=599).contains(&status) {
                if backoff.attempts() >= 4 {
                    return Err(err(format!("server error {status}"), true));
                }
                tokio::time::sleep(Duration::from_nanos(backoff.next_delay().max(0) as u64)).await;
                continue;
            }
            let v: Value = res
                .json()
                .await
                .map_err(|e| err(format!("unreadable answer: {}", crate::describe(e)), true))?;
            let errors: Vec<&str> = v["error"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if errors.iter().any(|e| e.contains("Rate limit exceeded")) {
                self.stats.lock().await.1 += 1;
                tracing::warn!("Kraken: rate limit exceeded; pausing calls");
                self.limiter
                    .lock()
                    .await
                    .too_many_requests(5, LiveClock.now());
                continue;
            }
            if !errors.is_empty() {
                return Err(err(errors.join("; "), false));
            }
            if status >= 400 {
                return Err(err(format!("HTTP {status}"), false));
            }
            return Ok(v["result"].clone());
        }
    }

    /// Committed OHLC bars of `pair` on `tf` opening in `[from, to)` (Kraken keeps only the
    /// last 720; the last row, still forming, is dropped).
    pub async fn ohlc(
        &self,
        pair: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError> {
        let m = interval_minutes(tf).ok_or_else(|| err(format!("no {tf} OHLC"), false))?;
        let r = self
            .get(&format!(
                "/0/public/OHLC?pair={pair}&interval={m}&since={}",
                from / S - 1
            ))
            .await?;
        ohlc_from_json(&r, instrument, tf, (from, to))
    }

    /// Kraken's clock (`GET /0/public/Time`).
    pub async fn server_time(&self) -> Result<(UnixNanos, UnixNanos, UnixNanos), SourceError> {
        let sent = LiveClock.now();
        let r = self.get("/0/public/Time").await?;
        let received = LiveClock.now();
        let t = r["unixtime"]
            .as_i64()
            .ok_or_else(|| err("Time: no unixtime", false))?;
        Ok((sent, received, t * S))
    }

    /// Requests sent, and rate-limit refusals.
    pub async fn counts(&self) -> (u64, u64) {
        *self.stats.lock().await
    }
}

/// The Kraken venue.
#[derive(Debug)]
pub struct KrakenVenue {
    cfg: KrakenConfig,
    rest: KrakenRest,
    symbols: HashMap<String, InstrumentId>,
    forming: HashMap<(InstrumentId, i64), Candle>,
    req_id: u64,
}

/// The Kraken live source.
pub type KrakenSource = LiveSource<KrakenVenue>;

/// A Kraken live source for `cfg`, with a handle to change its subscriptions while it runs
/// (`trade:BTC/USD`, `ticker:BTC/USD`, `ohlc:BTC/USD:1`).
pub fn source(cfg: KrakenConfig) -> Result<(KrakenSource, LiveControl), SourceError> {
    Ok(LiveSource::new(KrakenVenue::new(cfg)?))
}

fn num(v: &Value, k: &'static str) -> Result<f64, String> {
    v[k].as_f64()
        .ok_or_else(|| format!("{k}: missing or not a number"))
}

fn text<'a>(v: &'a Value, k: &'static str) -> Result<&'a str, String> {
    v[k].as_str().ok_or_else(|| format!("{k}: missing"))
}

impl KrakenVenue {
    /// The venue for `cfg` (checked).
    pub fn new(cfg: KrakenConfig) -> Result<Self, SourceError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(SourceError::Config(problems));
        }
        let rest = KrakenRest::new(&cfg.rest_url, cfg.requests_per_second)?;
        Ok(Self {
            cfg,
            rest,
            symbols: HashMap::new(),
            forming: HashMap::new(),
            req_id: 0,
        })
    }

    /// The venue knowing `instruments` (with their v2 symbols) without asking Kraken: for
    /// tests and fuzzing of the parser.
    pub fn knowing(mut self, instruments: &[(InstrumentId, String)]) -> Self {
        self.symbols = instruments.iter().map(|(i, s)| (s.clone(), *i)).collect();
        self
    }

    /// The REST client.
    pub fn rest(&self) -> &KrakenRest {
        &self.rest
    }

    fn instrument(&self, symbol: &str) -> Result<InstrumentId, String> {
        self.symbols
            .get(symbol)
            .copied()
            .ok_or_else(|| format!("unknown symbol {symbol}"))
    }

    /// Subscribe or unsubscribe requests for `subs`, one per channel (and interval).
    fn requests(&mut self, subs: &[String], method: &str) -> Vec<String> {
        // (channel, interval) → symbols, in first-seen order.
        type Group = ((String, Option<i64>), Vec<String>);
        let mut groups: Vec<Group> = Vec::new();
        for s in subs {
            let mut parts = s.split(':');
            let ch = parts.next().unwrap_or("").to_owned();
            let sym = parts.next().unwrap_or("").to_owned();
            let interval = parts.next().and_then(|i| i.parse::<i64>().ok());
            match groups
                .iter_mut()
                .find(|(k, _)| *k == (ch.clone(), interval))
            {
                Some((_, v)) => v.push(sym),
                None => groups.push(((ch, interval), vec![sym])),
            }
        }
        groups
            .into_iter()
            .map(|((ch, interval), symbols)| {
                self.req_id += 1;
                let mut params = serde_json::json!({"channel": ch, "symbol": symbols});
                if let Some(i) = interval {
                    params["interval"] = i.into();
                }
                if ch != "ticker" {
                    params["snapshot"] = false.into();
                }
                serde_json::json!({"method": method, "params": params, "req_id": self.req_id})
                    .to_string()
            })
            .collect()
    }
}

#[async_trait]
impl Venue for KrakenVenue {
    fn name(&self) -> &'static str {
        VENUE
    }

    async fn instruments(&mut self) -> Result<Vec<(InstrumentId, String)>, SourceError> {
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        let now = LiveClock.now();
        for s in &self.cfg.symbols {
            let (b, q) = s.split_once('/').unwrap_or((s, ""));
            let inst = InstrumentId::new(VENUE, b, q)?;
            match self
                .rest
                .ohlc(&rest_pair(s), inst, Timeframe::M1, now - 120 * S, now)
                .await
            {
                Ok(_) => out.push((inst, s.clone())),
                Err(SourceError::Venue { message, .. })
                    if message.contains("Unknown asset pair") =>
                {
                    unknown.push(s.clone());
                }
                Err(e) => return Err(e),
            }
        }
        if !unknown.is_empty() {
            return Err(SourceError::Usage(format!(
                "Kraken does not know {}: pairs are written BASE/QUOTE (BTC/USD)",
                unknown.join(", ")
            )));
        }
        self.symbols = out.iter().map(|(i, s)| (s.clone(), *i)).collect();
        Ok(out)
    }

    fn initial_subscriptions(&self) -> Vec<String> {
        let mut subs = Vec::new();
        for tf in &self.cfg.timeframes {
            let m = interval_minutes(*tf).unwrap_or(1);
            subs.extend(self.cfg.symbols.iter().map(|s| format!("ohlc:{s}:{m}")));
        }
        subs.extend(self.cfg.symbols.iter().map(|s| format!("trade:{s}")));
        subs.extend(self.cfg.symbols.iter().map(|s| format!("ticker:{s}")));
        subs
    }

    fn ws_url(&self, _subs: &[String]) -> String {
        self.cfg.ws_url.clone()
    }

    fn on_connect(&mut self, subs: &[String]) -> Vec<String> {
        self.forming.clear();
        self.requests(subs, "subscribe")
    }

    fn change(&mut self, subs: &[String], add: bool) -> Vec<String> {
        self.requests(subs, if add { "subscribe" } else { "unsubscribe" })
    }

    fn parse(&mut self, frame: &str, out: &mut Vec<(UnixNanos, Event)>) -> Result<(), String> {
        let v: Value = serde_json::from_str(frame).map_err(|e| format!("not JSON: {e}"))?;
        if let Some(method) = v["method"].as_str() {
            // Acknowledgements and pongs.
            if v["success"] == Value::Bool(false) {
                return Err(format!(
                    "Kraken refused {method}: {}",
                    v["error"].as_str().unwrap_or("no reason")
                ));
            }
            return Ok(());
        }
        let channel = text(&v, "channel")?;
        let data = v["data"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        match channel {
            "ohlc" => {
                for d in data {
                    let inst = self.instrument(text(d, "symbol")?)?;
                    let minutes = d["interval"].as_i64().ok_or("interval: missing")?;
                    let tf = Timeframe::from_nanos(minutes * 60 * S)
                        .ok_or_else(|| format!("interval {minutes}: not modelled"))?;
                    let begin = parse_utc(text(d, "interval_begin")?).map_err(|e| e.to_string())?;
                    let trades = d["trades"].as_u64().unwrap_or(0);
                    let c = Candle::new(
                        inst,
                        tf,
                        begin,
                        [
                            num(d, "open")?,
                            num(d, "high")?,
                            num(d, "low")?,
                            num(d, "close")?,
                        ],
                        num(d, "volume")?,
                        u32::try_from(trades).unwrap_or(u32::MAX),
                    )
                    .map_err(|e| e.to_string())?;
                    let key = (inst, minutes);
                    match self.forming.get(&key) {
                        Some(prev) if prev.open_time() > begin => {}
                        Some(prev) if prev.open_time() < begin => {
                            out.push((prev.close_time(), Event::Candle(*prev)));
                            self.forming.insert(key, c);
                        }
                        _ => {
                            self.forming.insert(key, c);
                        }
                    }
                }
            }
            "trade" => {
                for d in data {
                    let inst = self.instrument(text(d, "symbol")?)?;
                    let side = match text(d, "side")? {
                        "buy" => Side::Buy,
                        "sell" => Side::Sell,
                        s => return Err(format!("side: {s:?}")),
                    };
                    let id = d["trade_id"].as_u64().ok_or("trade_id: missing")?;
                    let ts = parse_utc(text(d, "timestamp")?).map_err(|e| e.to_string())?;
                    let t = Trade::new(inst, id, num(d, "price")?, num(d, "qty")?, side)
                        .map_err(|e| e.to_string())?;
                    out.push((ts, Event::Trade(t)));
                }
            }
            "ticker" => {
                for d in data {
                    let inst = self.instrument(text(d, "symbol")?)?;
                    let t = Ticker::new(
                        inst,
                        (num(d, "bid")?, num(d, "bid_qty")?),
                        (num(d, "ask")?, num(d, "ask_qty")?),
                        d["last"].as_f64(),
                    )
                    .map_err(|e| e.to_string())?;
                    out.push((LiveClock.now(), Event::Ticker(t)));
                }
            }
            // heartbeat, status, and channels Kraken may add.
            _ => {}
        }
        Ok(())
    }

    fn timeframes(&self) -> Vec<Timeframe> {
        self.cfg.timeframes.clone()
    }

    async fn candles(
        &self,
        symbol: &str,
        instrument: InstrumentId,
        tf: Timeframe,
        from: UnixNanos,
        to: UnixNanos,
    ) -> Result<Vec<Candle>, SourceError> {
        self.rest
            .ohlc(&rest_pair(symbol), instrument, tf, from, to)
            .await
    }

    async fn server_time(&self) -> Result<(UnixNanos, UnixNanos, UnixNanos), SourceError> {
        self.rest.server_time().await
    }

    fn timing(&self) -> Timing {
        Timing::from_settings(
            self.cfg.stale_after_secs,
            self.cfg.reconnect_after_secs,
            self.cfg.trade_hold_ms,
        )
    }

    async fn request_counts(&self) -> (u64, u64) {
        self.rest.counts().await
    }
}

/// The committed bars opening in `[from, to)` in an OHLC `result` (rows keyed by Kraken's pair
/// name beside `last`; the last row, still forming, dropped).
pub fn ohlc_from_json(
    r: &Value,
    instrument: InstrumentId,
    tf: Timeframe,
    (from, to): (UnixNanos, UnixNanos),
) -> Result<Vec<Candle>, SourceError> {
    let rows = r
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| *k != "last"))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(|| err("OHLC: no rows in the answer", false))?;
    let mut out = Vec::with_capacity(rows.len());
    let n = |v: &Value| match v {
        Value::String(s) => s.parse::<f64>().ok(),
        Value::Number(x) => x.as_f64(),
        _ => None,
    };
    // The last entry is the current, uncommitted bar.
    for row in rows.iter().take(rows.len().saturating_sub(1)) {
        let f = |i: usize| row.get(i).and_then(n);
        let (Some(t), Some(o), Some(h), Some(l), Some(c), Some(v)) =
            (f(0), f(1), f(2), f(3), f(4), f(6))
        else {
            return Err(err("OHLC: a row with a bad number", false));
        };
        let open = (t as i64)
            .checked_mul(S)
            .ok_or_else(|| err("OHLC: a time out of range", false))?;
        if open < from || open >= to {
            continue;
        }
        let trades = f(7).map_or(0, |x| x as u32);
        out.push(Candle::new(instrument, tf, open, [o, h, l, c], v, trades)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn venue() -> KrakenVenue {
        let (s, _) = source(KrakenConfig::default()).unwrap();
        let mut v = s.into_venue();
        v.symbols
            .insert("BTC/USD".into(), "kraken:BTC/USD".parse().unwrap());
        v
    }

    #[test]
    fn pairs_and_requests() {
        assert_eq!(rest_pair("BTC/USD"), "XBTUSD");
        assert_eq!(rest_pair("ETH/BTC"), "ETHXBT");
        let mut v = venue();
        let subs = v.initial_subscriptions();
        let reqs = v.requests(&subs, "subscribe");
        assert_eq!(reqs.len(), 3);
        assert!(reqs[0].contains(r#""channel":"ohlc""#) && reqs[0].contains(r#""interval":1"#));
        assert!(reqs[1].contains(r#""snapshot":false"#));
        assert!(KrakenConfig::default().problems().is_empty());
        let bad = KrakenConfig {
            symbols: vec!["XBTUSD".into()],
            timeframes: vec![Timeframe::M3],
            ..KrakenConfig::default()
        };
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    }

    #[test]
    fn documented_messages() {
        let mut v = venue();
        let mut out = Vec::new();
        v.parse(r#"{"channel":"ohlc","type":"update","timestamp":"2023-10-04T16:26:01.806315597Z","data":[{"symbol":"BTC/USD","open":100.0,"high":101.0,"low":99.0,"close":100.5,"trades":13,"volume":2.5,"vwap":100.2,"interval_begin":"2023-10-04T15:30:00.000000000Z","interval":1,"timestamp":"2023-10-04T15:31:00.000000Z"}]}"#, &mut out).unwrap();
        assert!(out.is_empty(), "still forming");
        v.parse(r#"{"channel":"ohlc","type":"update","timestamp":"2023-10-04T16:26:01Z","data":[{"symbol":"BTC/USD","open":100.5,"high":101.0,"low":99.0,"close":100.7,"trades":1,"volume":0.5,"vwap":100.2,"interval_begin":"2023-10-04T15:31:00.000000000Z","interval":1,"timestamp":"2023-10-04T15:32:00.000000Z"}]}"#, &mut out).unwrap();
        let Event::Candle(c) = out[0].1 else { panic!() };
        assert_eq!(
            (c.close(), c.trades(), c.timeframe()),
            (100.5, 13, Timeframe::M1)
        );
        v.parse(r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":0.5147,"qty":6423.46326,"ord_type":"limit","trade_id":4665846,"timestamp":"2023-09-25T07:48:36.925533Z"}]}"#, &mut out).unwrap();
        let Event::Trade(t) = out[1].1 else { panic!() };
        assert_eq!((t.id(), t.side()), (4_665_846, Side::Sell));
        v.parse(r#"{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":64000.1,"bid_qty":0.5,"ask":64000.2,"ask_qty":1.2,"last":64000.1,"volume":1234.5,"vwap":63500.0,"low":62000.0,"high":65000.0,"change":800.0,"change_pct":1.27}]}"#, &mut out).unwrap();
        assert!(matches!(out[2].1, Event::Ticker(_)));
        v.parse(r#"{"channel":"heartbeat"}"#, &mut out).unwrap();
        v.parse(r#"{"method":"subscribe","result":{"channel":"ticker","symbol":"BTC/USD","snapshot":true},"success":true,"time_in":"2022-12-25T09:30:59.123456Z","time_out":"2022-12-25T09:30:59.143456Z","req_id":1}"#, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        for bad in [
            "{",
            r#"{"method":"subscribe","success":false,"error":"Currency pair not supported"}"#,
            r#"{"channel":"trade","data":[{"symbol":"DOGE/USD","side":"buy","price":1,"qty":1,"trade_id":1,"timestamp":"2023-09-25T07:48:36Z"}]}"#,
            r#"{"channel":"trade","data":[{"symbol":"BTC/USD","side":"buy","price":"1","qty":1,"trade_id":1,"timestamp":"2023-09-25T07:48:36Z"}]}"#,
        ] {
            assert!(v.parse(bad, &mut out).is_err(), "{bad}");
        }
    }
}
