//! `atalaya download`: fills the store with history from a venue's REST API, resumable (each
//! series continues after its last stored bar) and within the venue's request weights.

use anyhow::{Context as _, bail};
use atalaya_model::{Clock, InstrumentId, LiveClock, Timeframe, UnixNanos, format_utc, parse_utc};
use atalaya_sources::binance_rest::BinanceRest;
use atalaya_sources::coinbase_rest::CoinbaseRest;
use atalaya_store::Batch;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::config::AppConfig;

/// What to download.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// `binance`.
    pub venue: String,
    /// `BTCUSDT` or `BTC/USDT`.
    pub symbols: Vec<String>,
    /// The bars' timeframe.
    pub timeframe: Timeframe,
    /// First bar (open time).
    pub from: String,
    /// Up to this time (default: now).
    pub to: Option<String>,
    /// Show a progress bar.
    pub progress: bool,
}

/// One series' outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Downloaded {
    /// The venue's symbol.
    pub symbol: String,
    /// The instrument.
    pub instrument: String,
    /// Bars already stored, not asked for again.
    pub already: u64,
    /// Bars fetched and stored now.
    pub fetched: u64,
    /// Last bar stored (open time).
    pub last: Option<String>,
}

/// The whole download.
#[derive(Clone, Debug, Serialize)]
pub struct DownloadSummary {
    /// Per series.
    pub series: Vec<Downloaded>,
    /// Requests sent, and refused by the venue (429/418) and retried.
    pub requests: (u64, u64),
}

/// A venue's history endpoint.
enum Rest {
    Binance(BinanceRest),
    Coinbase(CoinbaseRest),
}

impl Rest {
    /// The venue's symbol for what the user wrote (`BTC/USDT` → `BTCUSDT` or `BTC-USDT`).
    fn symbol(&self, s: &str) -> String {
        let upper = s.trim().to_ascii_uppercase();
        match self {
            Rest::Binance(_) => upper.replace(['/', '-', '_'], ""),
            Rest::Coinbase(_) => upper.replace(['/', '_'], "-"),
        }
    }

    /// Each symbol's instrument; fails naming the unknown ones.
    async fn instruments(&self, symbols: &[String]) -> anyhow::Result<Vec<(String, InstrumentId)>> {
        match self {
            Rest::Binance(r) => r
                .exchange_info(symbols)
                .await?
                .into_iter()
                .map(|i| Ok((i.symbol.clone(), i.instrument()?)))
                .collect(),
            Rest::Coinbase(r) => {
                let mut out = Vec::new();
                for s in symbols {
                    out.push((s.clone(), r.product(s).await?));
                }
                Ok(out)
            }
        }
    }

    async fn bars(
        &self,
        symbol: &str,
        inst: InstrumentId,
        tf: Timeframe,
        start: UnixNanos,
        end: UnixNanos,
    ) -> anyhow::Result<Vec<atalaya_model::Candle>> {
        Ok(match self {
            Rest::Binance(r) => r.klines(symbol, inst, tf, start, end).await?,
            Rest::Coinbase(r) => r.candles(symbol, inst, tf, start, end).await?,
        })
    }

    async fn counts(&self) -> (u64, u64) {
        match self {
            Rest::Binance(r) => r.counts().await,
            Rest::Coinbase(r) => r.counts().await,
        }
    }
}

/// Runs the download.
pub async fn download(cfg: &AppConfig, opts: &DownloadOptions) -> anyhow::Result<DownloadSummary> {
    let rest = match opts.venue.to_ascii_lowercase().as_str() {
        "binance" => {
            let b = &cfg.venues.binance;
            Rest::Binance(BinanceRest::new(&b.rest_url, b.weight_per_minute)?)
        }
        "coinbase" => {
            let c = &cfg.venues.coinbase;
            Rest::Coinbase(CoinbaseRest::new(&c.rest_url, c.requests_per_second)?)
        }
        other => bail!("venue {other:?} cannot download yet; available: binance, coinbase"),
    };
    let tf = opts.timeframe;
    let from = parse_utc(&opts.from).context("--from")?;
    let now = LiveClock.now();
    let to = match &opts.to {
        Some(t) => parse_utc(t).context("--to")?.min(now),
        None => now,
    };
    if to <= from {
        bail!("--from {} is not before --to {}", opts.from, format_utc(to));
    }
    let symbols: Vec<String> = opts
        .symbols
        .iter()
        .map(|s| rest.symbol(s))
        .filter(|s| !s.is_empty())
        .collect();
    if symbols.is_empty() {
        bail!("--symbols is empty");
    }
    let infos = rest.instruments(&symbols).await?;
    let store = crate::run::open_store(cfg).await?;
    let stats = store.stats().await?;
    let expected = ((to - from) / tf.nanos()).max(0) as u64 * infos.len() as u64;
    let pb = if opts.progress {
        ProgressBar::new(expected)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} bars {per_sec} eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut out = Vec::new();
    for (symbol, inst) in &infos {
        let inst = *inst;
        pb.set_message(symbol.clone());
        let stored = stats
            .series
            .iter()
            .find(|s| s.instrument == inst.to_string() && s.timeframe == tf.as_str());
        // Resume after the last stored bar.
        let mut start: UnixNanos = tf.open_time(from);
        if let Some(last) = stored.map(|s| s.last) {
            start = start.max(last + tf.nanos());
        }
        let already = stored.map_or(0, |s| s.rows);
        let mut fetched = 0u64;
        let mut last_open = stored.map(|s| s.last);
        while start < to {
            let bars = rest.bars(symbol, inst, tf, start, to).await?;
            let Some(last) = bars.last().map(|c| c.open_time()) else {
                // Nothing in this window (a venue gap, or the end): step past it.
                match &rest {
                    Rest::Coinbase(_) => {
                        start += 300 * tf.nanos();
                        continue;
                    }
                    Rest::Binance(_) => break,
                }
            };
            let n = bars.len() as u64;
            store
                .write(&Batch {
                    candles: bars,
                    ..Batch::default()
                })
                .await
                .context("writing bars")?;
            fetched += n;
            pb.inc(n);
            last_open = Some(last);
            start = last + tf.nanos();
        }
        out.push(Downloaded {
            symbol: symbol.clone(),
            instrument: inst.to_string(),
            already,
            fetched,
            last: last_open.map(format_utc),
        });
    }
    pb.finish_and_clear();
    store.close().await;
    Ok(DownloadSummary {
        series: out,
        requests: rest.counts().await,
    })
}
