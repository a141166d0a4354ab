//! Coinbase Advanced Trade live over WebSocket (`wss://advanced-trade-ws.coinbase.com`), with
//! public REST for validation, backfill and the server clock: the [`Venue`] behind
//! `live.sources = ["coinbase"]`, driven by [`LiveSource`].
//!
//! After connecting it sends one `subscribe` per channel (Coinbase takes one channel per
//! message and disconnects a client that has not subscribed within 5 seconds): `heartbeats`
//! (which keeps quiet subscriptions open), `candles`, `market_trades` and `ticker` for the
//! configured products. Every message carries `channel`, `timestamp`, `sequence_num` and
//! `events[]`:
//!
//! * `candles` are five-minute buckets updated every second with no closed flag: a bucket is
//!   final when a later `start` arrives, and only then is it published (its last update);
//! * `market_trades` become trades (`trade_id`, `BUY`/`SELL`, RFC 3339 `time`);
//! * `ticker` becomes best bid and offer with the last price;
//! * a jump in `sequence_num` means messages were lost: it is counted as an error, and the
//!   candle stream's own hole check backfills any candle it cost;
//! * `error` messages, unknown channels and malformed frames are counted, never fatal.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use atalaya_model::{
    Candle, Event, InstrumentId, Side, Ticker, Timeframe, Trade, UnixNanos, parse_utc,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::SourceError;
use crate::coinbase_rest::CoinbaseRest;
use crate::live::{LiveControl, LiveSource, Timing, Venue};

const S: i64 = 1_000_000_000;
/// The only bucket the candles channel streams.
pub const BUCKET: Timeframe = Timeframe::M5;
/// The channels subscribed for every product (heartbeats has no products).
const CHANNELS: [&str; 3] = ["candles", "market_trades", "ticker"];

/// Coinbase Advanced Trade: endpoints, products and resilience settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoinbaseConfig {
    /// REST base URL.
    pub rest_url: String,
    /// WebSocket URL (market data).
    pub ws_url: String,
    /// Requests per second (public endpoints allow about 10 per IP).
    pub requests_per_second: u32,
    /// Products to collect (`BTC-USD`).
    pub products: Vec<String>,
    /// A subscribed connection silent this long is dead (heartbeats come every second).
    pub stale_after_secs: u64,
    /// Renew the connection after this long.
    pub reconnect_after_secs: u64,
    /// How long a trade may be held to put out-of-order arrivals back in exchange-time order.
    pub trade_hold_ms: u64,
}

impl Default for CoinbaseConfig {
    fn default() -> Self {
        Self {
            rest_url: "https://api.coinbase.com/api/v3/brokerage".into(),
            ws_url: "wss://advanced-trade-ws.coinbase.com".into(),
            requests_per_second: 8,
            products: ["BTC-USD", "ETH-USD", "ADA-USD", "SOL-USD", "AVAX-USD"]
                .map(String::from)
                .to_vec(),
            stale_after_secs: 30,
            reconnect_after_secs: 23 * 3600 + 30 * 60,
            trade_hold_ms: 300,
        }
    }
}

impl CoinbaseConfig {
    /// Problems with the settings, each with its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.products.is_empty() {
            p.push("venues.coinbase.products: at least one product is needed".to_owned());
        }
        for s in &self.products {
            let ok = s.split_once('-').is_some_and(|(b, q)| {
                !b.is_empty()
                    && !q.is_empty()
                    && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            });
            if !ok {
                p.push(format!(
                    "venues.coinbase.products: {s:?} is not a Coinbase product (like BTC-USD)"
                ));
            }
        }
        p.extend(crate::live::common_problems(
            "coinbase",
            (&self.rest_url, &self.ws_url),
            self.stale_after_secs,
            self.reconnect_after_secs,
        ));
        if self.requests_per_second == 0 {
            p.push("venues.coinbase.requests_per_second: must be at least 1".into());
        }
        p
    }
}

/// The Coinbase venue.
#[derive(Debug)]
pub struct CoinbaseVenue {
    cfg: CoinbaseConfig,
    rest: Arc<CoinbaseRest>,
    products: HashMap<String, InstrumentId>,
    /// The bucket still forming per instrument (its latest update).
    forming: HashMap<InstrumentId, Candle>,
    /// The last `sequence_num` on this connection.
    last_seq: Option<u64>,
    lost: u64,
}

/// The Coinbase live source.
pub type CoinbaseSource = LiveSource<CoinbaseVenue>;

/// A Coinbase live source for `cfg`, with a handle to change its subscriptions while it runs
/// (`channel:PRODUCT`, for example `ticker:BTC-USD`).
pub fn source(cfg: CoinbaseConfig) -> Result<(CoinbaseSource, LiveControl), SourceError> {
    Ok(LiveSource::new(CoinbaseVenue::new(cfg)?))
}

fn f(v: &Value, k: &'static str) -> Result<f64, String> {
    match &v[k] {
        Value::String(s) => s.parse().map_err(|_| format!("{k}: {s:?} is not a number")),
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{k}: out of range")),
        _ => Err(format!("{k}: missing")),
    }
}

fn text<'a>(v: &'a Value, k: &'static str) -> Result<&'a str, String> {
    v[k].as_str().ok_or_else(|| format!("{k}: missing"))
}

/// Subscribe or unsubscribe frames for `subs` (`channel:PRODUCT`), one per channel.
fn frames(subs: &[String], kind: &str) -> Vec<String> {
    let mut by_channel: Vec<(String, Vec<String>)> = Vec::new();
    for s in subs {
        let (ch, product) = s.split_once(':').unwrap_or((s.as_str(), ""));
        let entry = match by_channel.iter_mut().find(|(c, _)| c == ch) {
            Some(e) => e,
            None => {
                by_channel.push((ch.to_owned(), Vec::new()));
                let last = by_channel.len() - 1;
                &mut by_channel[last]
            }
        };
        if !product.is_empty() {
            entry.1.push(product.to_owned());
        }
    }
    by_channel
        .into_iter()
        .map(|(ch, products)| {
            if products.is_empty() {
                serde_json::json!({"type": kind, "channel": ch}).to_string()
            } else {
                serde_json::json!({"type": kind, "product_ids": products, "channel": ch})
                    .to_string()
            }
        })
        .collect()
}

impl CoinbaseVenue {
    /// The venue for `cfg` (checked).
    pub fn new(cfg: CoinbaseConfig) -> Result<Self, SourceError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(SourceError::Config(problems));
        }
        let rest = Arc::new(
            CoinbaseRest::new(&cfg.rest_url, cfg.requests_per_second)?
                .reporting_unreachable_at_once(),
        );
        Ok(Self {
            cfg,
            rest,
            products: HashMap::new(),
            forming: HashMap::new(),
            last_seq: None,
            lost: 0,
        })
    }

    /// The venue knowing `instruments` (with their product ids) without asking Coinbase: for
    /// tests and fuzzing of the parser.
    pub fn knowing(mut self, instruments: &[(InstrumentId, String)]) -> Self {
        self.products = instruments.iter().map(|(i, p)| (p.clone(), *i)).collect();
        self
    }

    /// The REST client (its request counters).
    pub fn rest(&self) -> Arc<CoinbaseRest> {
        self.rest.clone()
    }

    /// Messages lost according to `sequence_num` so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    fn instrument(&self, product: &str) -> Result<InstrumentId, String> {
        self.products
            .get(product)
            .copied()
            .ok_or_else(|| format!("unknown product {product}"))
    }

    fn on_candles(
        &mut self,
        event: &Value,
        out: &mut Vec<(UnixNanos, Event)>,
    ) -> Result<(), String> {
        let Some(list) = event["candles"].as_array() else {
            return Err("candles: no candles list".into());
        };
        for c in list {
            let inst = self.instrument(text(c, "product_id")?)?;
            let start = text(c, "start")?
                .parse::<i64>()
                .map_err(|_| "start: not UNIX seconds".to_owned())?;
            let candle = Candle::new(
                inst,
                BUCKET,
                start * S,
                [f(c, "open")?, f(c, "high")?, f(c, "low")?, f(c, "close")?],
                f(c, "volume")?,
                0,
            )
            .map_err(|e| e.to_string())?;
            match self.forming.get(&inst) {
                Some(prev) if prev.open_time() > candle.open_time() => {}
                Some(prev) if prev.open_time() < candle.open_time() => {
                    // A later bucket: the previous one is final.
                    out.push((prev.close_time(), Event::Candle(*prev)));
                    self.forming.insert(inst, candle);
                }
                _ => {
                    self.forming.insert(inst, candle);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Venue for CoinbaseVenue {
    fn name(&self) -> &'static str {
        "coinbase"
    }

    async fn instruments(&mut self) -> Result<Vec<(InstrumentId, String)>, SourceError> {
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        for p in &self.cfg.products {
            match self.rest.product(p).await {
                Ok(i) => out.push((i, p.clone())),
                Err(SourceError::Usage(_)) => unknown.push(p.clone()),
                Err(e) => return Err(e),
            }
        }
        if !unknown.is_empty() {
            return Err(SourceError::Usage(format!(
                "Coinbase does not know {}: products are written BASE-QUOTE (BTC-USD)",
                unknown.join(", ")
            )));
        }
        self.products = out.iter().map(|(i, p)| (p.clone(), *i)).collect();
        Ok(out)
    }

    fn initial_subscriptions(&self) -> Vec<String> {
        let mut subs = vec!["heartbeats".to_owned()];
        for ch in CHANNELS {
            for p in &self.cfg.products {
                subs.push(format!("{ch}:{p}"));
            }
        }
        subs
    }

    fn ws_url(&self, _subs: &[String]) -> String {
        self.cfg.ws_url.clone()
    }

    fn on_connect(&mut self, subs: &[String]) -> Vec<String> {
        // A new connection: its own sequence, and buckets seen on the old one may have moved
        // on meanwhile (closed ones are backfilled over REST).
        self.last_seq = None;
        self.forming.clear();
        frames(subs, "subscribe")
    }

    fn change(&mut self, subs: &[String], add: bool) -> Vec<String> {
        frames(subs, if add { "subscribe" } else { "unsubscribe" })
    }

    fn parse(&mut self, frame: &str, out: &mut Vec<(UnixNanos, Event)>) -> Result<(), String> {
        let v: Value = serde_json::from_str(frame).map_err(|e| format!("not JSON: {e}"))?;
        if v["type"].as_str() == Some("error") {
            return Err(format!(
                "Coinbase error: {}",
                v["message"].as_str().unwrap_or("no message")
            ));
        }
        let channel = text(&v, "channel")?;
        let mut gap = None;
        if let Some(seq) = v["sequence_num"].as_u64() {
            if let Some(last) = self.last_seq
                && seq > last + 1
            {
                self.lost += seq - last - 1;
                gap = Some(seq - last - 1);
            }
            self.last_seq = Some(self.last_seq.map_or(seq, |l| l.max(seq)));
        }
        let ts = parse_utc(text(&v, "timestamp")?).map_err(|e| e.to_string())?;
        let events = v["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for e in events {
            match channel {
                "candles" => self.on_candles(e, out)?,
                "market_trades" => {
                    for t in e["trades"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                        let inst = self.instrument(text(t, "product_id")?)?;
                        let id = text(t, "trade_id")?
                            .parse::<u64>()
                            .map_err(|_| "trade_id: not a number".to_owned())?;
                        let side = match text(t, "side")? {
                            "BUY" => Side::Buy,
                            "SELL" => Side::Sell,
                            s => return Err(format!("side: {s:?}")),
                        };
                        let time = parse_utc(text(t, "time")?).map_err(|e| e.to_string())?;
                        let trade = Trade::new(inst, id, f(t, "price")?, f(t, "size")?, side)
                            .map_err(|e| e.to_string())?;
                        out.push((time, Event::Trade(trade)));
                    }
                }
                "ticker" | "ticker_batch" => {
                    for t in e["tickers"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                        let inst = self.instrument(text(t, "product_id")?)?;
                        // ticker_batch omits the book.
                        let (Ok(b), Ok(bq), Ok(a), Ok(aq)) = (
                            f(t, "best_bid"),
                            f(t, "best_bid_quantity"),
                            f(t, "best_ask"),
                            f(t, "best_ask_quantity"),
                        ) else {
                            continue;
                        };
                        let tk = Ticker::new(inst, (b, bq), (a, aq), f(t, "price").ok())
                            .map_err(|e| e.to_string())?;
                        out.push((ts, Event::Ticker(tk)));
                    }
                }
                // heartbeats, subscriptions, status and whatever Coinbase adds later.
                _ => {}
            }
        }
        match gap {
            Some(n) => Err(format!("sequence_num jumped: {n} message(s) lost")),
            None => Ok(()),
        }
    }

    fn timeframes(&self) -> Vec<Timeframe> {
        vec![BUCKET]
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
            .candles_range(symbol, instrument, tf, from, to)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn venue() -> CoinbaseVenue {
        let mut v = CoinbaseVenue::new(CoinbaseConfig::default()).unwrap();
        v.products
            .insert("BTC-USD".into(), "coinbase:BTC/USD".parse().unwrap());
        v
    }

    #[test]
    fn subscriptions_go_one_channel_per_message() {
        let v = venue();
        let subs = v.initial_subscriptions();
        let f = frames(&subs, "subscribe");
        assert_eq!(f.len(), 4);
        assert_eq!(f[0], r#"{"channel":"heartbeats","type":"subscribe"}"#);
        assert!(f[1].contains(r#""channel":"candles""#) && f[1].contains("AVAX-USD"));
    }

    #[test]
    fn a_bucket_is_published_when_a_later_one_starts() {
        let mut v = venue();
        let msg = |seq: u64, start: i64, close: &str| {
            format!(
                r#"{{"channel":"candles","client_id":"","timestamp":"2026-04-07T14:30:05.000000Z","sequence_num":{seq},"events":[{{"type":"update","candles":[{{"start":"{start}","high":"10","low":"1","open":"5","close":"{close}","volume":"2","product_id":"BTC-USD"}}]}}]}}"#
            )
        };
        let mut out = Vec::new();
        v.parse(&msg(1, 300, "6"), &mut out).unwrap();
        v.parse(&msg(2, 300, "7"), &mut out).unwrap();
        assert!(out.is_empty(), "still forming");
        v.parse(&msg(3, 600, "8"), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let (ts, Event::Candle(c)) = out[0] else {
            panic!()
        };
        assert_eq!((ts, c.open_time(), c.close()), (600 * S, 300 * S, 7.0));
        // An old bucket's late update changes nothing; a lost message is reported.
        out.clear();
        v.parse(&msg(4, 300, "9"), &mut out).unwrap();
        let err = v.parse(&msg(9, 600, "8"), &mut out).unwrap_err();
        assert!(err.contains("4 message(s) lost"), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn trades_tickers_and_errors() {
        let mut v = venue();
        let mut out = Vec::new();
        v.parse(r#"{"channel":"market_trades","client_id":"","timestamp":"2026-04-07T14:30:02.789012Z","sequence_num":5,"events":[{"type":"update","trades":[{"trade_id":"995098700","product_id":"BTC-USD","price":"68900.50","size":"0.00150000","side":"BUY","time":"2026-04-07T14:30:02.789012Z"}]}]}"#, &mut out).unwrap();
        v.parse(r#"{"channel":"ticker","client_id":"","timestamp":"2026-04-07T14:30:03.000000Z","sequence_num":6,"events":[{"type":"snapshot","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"68900.50","best_bid":"68900.00","best_bid_quantity":"1.5","best_ask":"68901.00","best_ask_quantity":"0.5"}]}]}"#, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let Event::Trade(t) = out[0].1 else { panic!() };
        assert_eq!(
            (t.id(), t.side(), t.price()),
            (995_098_700, Side::Buy, 68_900.5)
        );
        let Event::Ticker(k) = out[1].1 else { panic!() };
        assert_eq!(
            (k.bid(), k.ask(), k.last()),
            (68_900.0, 68_901.0, Some(68_900.5))
        );
        for bad in [
            "",
            "[1]",
            r#"{"type":"error","message":"failure to subscribe"}"#,
            r#"{"channel":"market_trades","timestamp":"2026-04-07T14:30:02Z","events":[{"trades":[{"trade_id":"x","product_id":"BTC-USD","price":"1","size":"1","side":"BUY","time":"2026-04-07T14:30:02Z"}]}]}"#,
            r#"{"channel":"candles","timestamp":"2026-04-07T14:30:02Z","events":[{"candles":[{"start":"1","product_id":"DOGE-USD"}]}]}"#,
        ] {
            assert!(v.parse(bad, &mut out).is_err(), "{bad}");
        }
    }
}
