//! Market statistics from CoinGecko's public API (`GET /coins/markets`), polled within its
//! rate limit and published as [`Event::MarketStats`] for the decision's fundamental factor.
//!
//! One request per poll covers every configured coin: market capitalisation, the 24-hour and
//! 7-day price changes (`price_change_percentage=24h,7d`, read from the `_in_currency` fields),
//! and the 24-hour volume. The 7-day average volume is the mean of the 24-hour volumes this
//! source has seen over the last seven days (one sample per poll), so it starts as the latest
//! 24-hour volume and becomes a true weekly mean after a week of polling.
//!
//! CoinGecko sometimes answers a rate-limit error with HTTP 200: the body's `status.error_code`
//! is checked before the data is read. The optional API key goes in a header, never in a URL.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use atalaya_bus::Topic;
use atalaya_bus::health::SourceState;
use atalaya_model::{Clock, Envelope, Event, LiveClock, MarketStats, Symbol, UnixNanos};
use atalaya_net::Backoff;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Source, SourceContext, SourceError};

const DAY: i64 = 86_400_000_000_000;

/// Settings of the CoinGecko source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoinGeckoConfig {
    /// API root: keyless/Demo `https://api.coingecko.com/api/v3`, Pro
    /// `https://pro-api.coingecko.com/api/v3`, or a test server.
    pub base_url: String,
    /// Demo or Pro API key (secret; environment only); empty for keyless.
    pub api_key: String,
    /// Whether the key is a Pro key (`x-cg-pro-api-key`) rather than a Demo one.
    pub pro: bool,
    /// CoinGecko coin ids and the asset symbol each stands for (`bitcoin` = `BTC`).
    pub coins: Vec<(String, String)>,
    /// Seconds between polls (one request per poll; keyless callers should stay well under 30
    /// requests a minute).
    pub poll_secs: u64,
}

impl Default for CoinGeckoConfig {
    fn default() -> Self {
        let c = |id: &str, s: &str| (id.to_owned(), s.to_owned());
        Self {
            base_url: "https://api.coingecko.com/api/v3".into(),
            api_key: String::new(),
            pro: false,
            coins: vec![
                c("bitcoin", "BTC"),
                c("ethereum", "ETH"),
                c("cardano", "ADA"),
                c("solana", "SOL"),
                c("avalanche-2", "AVAX"),
            ],
            poll_secs: 600,
        }
    }
}

/// The client, with the volume samples behind the 7-day average.
#[derive(Debug)]
pub struct CoinGecko {
    cfg: CoinGeckoConfig,
    client: reqwest::Client,
    volumes: HashMap<String, VecDeque<(UnixNanos, f64)>>,
}

fn err(message: impl Into<String>, transient: bool) -> SourceError {
    SourceError::Venue {
        venue: "coingecko",
        message: message.into(),
        transient,
    }
}

impl CoinGecko {
    /// A client for `cfg`.
    pub fn new(cfg: CoinGeckoConfig) -> Result<Self, SourceError> {
        let client = crate::http_client("coingecko")?;
        Ok(Self {
            cfg,
            client,
            volumes: HashMap::new(),
        })
    }

    /// One poll: the statistics of every configured coin that CoinGecko returned.
    pub async fn fetch(&mut self, now: UnixNanos) -> Result<Vec<MarketStats>, SourceError> {
        let ids: Vec<&str> = self.cfg.coins.iter().map(|(id, _)| id.as_str()).collect();
        let url = format!(
            "{}/coins/markets?vs_currency=usd&ids={}&price_change_percentage=24h,7d",
            self.cfg.base_url.trim_end_matches('/'),
            ids.join(",")
        );
        let mut req = self.client.get(url);
        if !self.cfg.api_key.is_empty() {
            let header = if self.cfg.pro {
                "x-cg-pro-api-key"
            } else {
                "x-cg-demo-api-key"
            };
            req = req.header(header, &self.cfg.api_key);
        }
        let res = req
            .send()
            .await
            .map_err(|e| err(format!("unreachable: {}", crate::describe(e)), true))?;
        let status = res.status().as_u16();
        let body: Value = res.json().await.map_err(|e| {
            err(
                format!("unreadable answer (HTTP {status}): {}", crate::describe(e)),
                true,
            )
        })?;
        // Errors may come with HTTP 200: check the envelope first.
        if let Some(code) = body["status"]["error_code"].as_u64() {
            let msg = body["status"]["error_message"]
                .as_str()
                .unwrap_or("no message");
            return Err(err(
                format!("error {code}: {msg}"),
                code == 429 || code >= 500,
            ));
        }
        if !(200..300).contains(&status) {
            return Err(err(
                format!("HTTP {status}"),
                status == 429 || status >= 500,
            ));
        }
        let items = body
            .as_array()
            .ok_or_else(|| err("the answer is not a list of coins", false))?;
        let mut out = Vec::new();
        for item in items {
            let Some(id) = item["id"].as_str() else {
                continue;
            };
            let Some((_, symbol)) = self.cfg.coins.iter().find(|(i, _)| i == id) else {
                continue;
            };
            let f = |k: &str| item[k].as_f64();
            let (Some(cap), Some(volume)) = (f("market_cap"), f("total_volume")) else {
                continue; // nulls: nothing to say about this coin now
            };
            let d24 = f("price_change_percentage_24h_in_currency")
                .or_else(|| f("price_change_percentage_24h"));
            let d7 = f("price_change_percentage_7d_in_currency");
            let (Some(d24), Some(d7)) = (d24, d7) else {
                continue;
            };
            let samples = self.volumes.entry(id.to_owned()).or_default();
            samples.push_back((now, volume));
            while samples.front().is_some_and(|(t, _)| now - t > 7 * DAY) {
                samples.pop_front();
            }
            let avg = samples.iter().map(|(_, v)| v).sum::<f64>() / samples.len() as f64;
            let asset = Symbol::new(symbol).map_err(SourceError::Model)?;
            out.push(MarketStats::new(asset, cap, d24, d7, avg)?);
        }
        Ok(out)
    }
}

/// CoinGecko as a live source: polls every `poll_secs`, publishes each coin's statistics,
/// backs off (up to the poll interval) on failures and never stops for them.
#[derive(Debug)]
pub struct CoinGeckoSource {
    client: CoinGecko,
}

impl CoinGeckoSource {
    /// A source for `cfg`.
    pub fn new(cfg: CoinGeckoConfig) -> Result<Self, SourceError> {
        Ok(Self {
            client: CoinGecko::new(cfg)?,
        })
    }
}

#[async_trait]
impl Source for CoinGeckoSource {
    fn name(&self) -> &str {
        "coingecko"
    }

    async fn run(mut self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let src = Symbol::new("coingecko").map_err(SourceError::Model)?;
        let every = Duration::from_secs(self.client.cfg.poll_secs.max(1));
        let mut backoff = Backoff::new(5_000_000_000, every.as_nanos() as i64, 11);
        let mut seq = 0u64;
        ctx.health.set_state(SourceState::Running);
        loop {
            let now = LiveClock.now();
            let wait = match self.client.fetch(now).await {
                Ok(stats) => {
                    backoff.reset();
                    let n = stats.len() as u64;
                    for m in stats {
                        seq += 1;
                        let env = Envelope::new(seq, now, now, src, Event::MarketStats(m));
                        ctx.bus.publish(Topic::Inbound, env).await?;
                    }
                    ctx.health.record_events(n, now);
                    ctx.health.set_state(SourceState::Running);
                    every
                }
                Err(e) => {
                    tracing::warn!(error = %e, "CoinGecko poll failed; retrying");
                    ctx.health.record_error(e.to_string());
                    Duration::from_nanos(backoff.next_delay().max(0) as u64)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = ctx.cancel.cancelled() => break,
            }
        }
        ctx.health.set_state(SourceState::Finished);
        Ok(())
    }
}
