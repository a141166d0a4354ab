//! Atalaya's data sources.
//!
//! A [`Source`] runs as an async task and publishes [`Envelope`]s of
//! [`Event`](atalaya_model::Event)s to the bus's inbound topic, reporting its health as it
//! goes. This crate holds the offline sources that need no network:
//!
//! * [`sim`]: the deterministic market simulator, the default when no venue is configured
//!   (`atalaya run --demo`), wrapped for live use by [`SimulatorSource`] with real-time,
//!   accelerated or unthrottled pacing;
//! * [`replay`]: Binance kline CSV and freqtrade JSON history, with malformed rows and gaps
//!   reported by file and line.
//!
//! Live venue collectors (Binance, Coinbase, …), news, social and on-chain feeds join here
//! on top of `atalaya-net`'s reconnect, backoff and rate-limit plumbing.

pub mod binance;
pub mod binance_rest;
pub mod binance_ws;
pub mod coinbase_rest;
pub mod coinbase_ws;
pub mod coingecko;
pub mod hub;
pub mod kraken_ws;
pub mod live;
pub mod news;
pub mod newsapi;
pub mod onchain;
pub mod reddit;
pub mod replay;
mod rng;
pub mod sim;
pub mod x;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use atalaya_bus::health::{SourceHandle, SourceState};
use atalaya_bus::{Bus, BusError, Topic};
use atalaya_model::{Envelope, Event, ModelError, UnixNanos};
use tokio_util::sync::CancellationToken;

pub use sim::{MarketSim, SimConfig};

/// Source failures.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source's configuration has problems; each is listed with its field path.
    #[error("invalid source configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A domain value was rejected.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be parsed at all.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// The caller must say something the source cannot infer.
    #[error("{0}")]
    Usage(String),
    /// Publishing failed because the bus closed.
    #[error("publishing failed")]
    Bus(#[from] BusError),
    /// A venue's API could not be reached or answered with an error.
    #[error("{venue}: {message}")]
    Venue {
        /// The venue.
        venue: &'static str,
        /// What happened (never the URL with its query).
        message: String,
        /// Whether trying again later may succeed.
        transient: bool,
    },
}

/// The HTTP client of the REST collectors: rustls with the ring provider, a 20-second time-out
/// and an identifying User-Agent.
pub(crate) fn http_client(venue: &'static str) -> Result<reqwest::Client, SourceError> {
    http_client_as(venue, concat!("atalaya/", env!("CARGO_PKG_VERSION")))
}

/// [`http_client`] with the User-Agent a venue asks for (Reddit's `platform:app:version`).
pub(crate) fn http_client_as(
    venue: &'static str,
    user_agent: &str,
) -> Result<reqwest::Client, SourceError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .user_agent(user_agent)
        .build()
        .map_err(|e| SourceError::Venue {
            venue,
            message: format!("cannot build the HTTP client: {e}"),
            transient: false,
        })
}

/// Waits until `limiter` grants `weight` (the window's budget, a 429's pause, a ban), logging
/// a ban once per wait so the operator sees why nothing is sent.
pub(crate) async fn take_turn(
    limiter: &tokio::sync::Mutex<atalaya_net::RateLimiter>,
    weight: u32,
    venue: &'static str,
) {
    loop {
        let now = atalaya_model::Clock::now(&atalaya_model::LiveClock);
        let wait = limiter.lock().await.acquire(weight, now);
        match wait {
            Ok(()) => return,
            Err(w) => {
                let until = w.until();
                if let atalaya_net::Wait::Banned { .. } = w {
                    tracing::warn!(venue, until = %atalaya_model::format_utc(until), "IP ban in force: no request until it ends");
                }
                let ns = (until - now).max(1);
                tokio::time::sleep(std::time::Duration::from_nanos(ns as u64)).await;
            }
        }
    }
}

/// `"{path}: \"…\" is not an http(s) URL"` unless `url` is one (the collectors' endpoints).
pub(crate) fn url_problem(path: &str, url: &str) -> Option<String> {
    (!(url.starts_with("http://") || url.starts_with("https://")))
        .then(|| format!("{path}: {url:?} is not an http(s) URL"))
}

/// A configuration error listing every problem, unless there are none (the collectors'
/// constructors).
pub(crate) fn refuse_problems(problems: Vec<String>) -> Result<(), SourceError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SourceError::Config(problems))
    }
}

/// Waits until `limiter` grants one request (its spacing, a 429's pause); `false` when
/// `cancel` fires first. The pollers (Reddit, NewsAPI, X, on-chain) share it.
pub(crate) async fn wait_turn(
    limiter: &mut atalaya_net::RateLimiter,
    cancel: &tokio_util::sync::CancellationToken,
) -> bool {
    loop {
        let now = atalaya_model::Clock::now(&atalaya_model::LiveClock);
        match limiter.acquire(1, now) {
            Ok(()) => return true,
            Err(w) => {
                let d = std::time::Duration::from_nanos((w.until() - now).max(1) as u64);
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = cancel.cancelled() => return false,
                }
            }
        }
    }
}

/// Social posts already published (by id), forgetting the oldest beyond 50,000.
#[derive(Debug, Default)]
pub(crate) struct SeenPosts {
    ids: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
    seq: u64,
}

impl SeenPosts {
    /// Publishes the posts not seen before, in the order given, as social events known at
    /// `known` from `src`; records them in the source's health; returns how many.
    pub(crate) async fn publish_new(
        &mut self,
        ctx: &SourceContext,
        src: atalaya_model::Symbol,
        known: atalaya_model::UnixNanos,
        posts: impl IntoIterator<Item = atalaya_model::SocialPost>,
    ) -> Result<u64, SourceError> {
        let mut n = 0;
        for p in posts {
            if !self.ids.insert(p.id().to_owned()) {
                continue;
            }
            self.order.push_back(p.id().to_owned());
            if self.order.len() > 50_000
                && let Some(old) = self.order.pop_front()
            {
                self.ids.remove(&old);
            }
            self.seq += 1;
            let env = atalaya_model::Envelope::new(
                self.seq,
                known,
                known,
                src,
                atalaya_model::Event::Social(Box::new(p)),
            );
            ctx.bus.publish(atalaya_bus::Topic::Inbound, env).await?;
            n += 1;
        }
        if n > 0 {
            ctx.health.record_events(n, known);
        }
        Ok(n)
    }
}

/// A request error without its URL (which may carry keys in the query), with its causes
/// (`error sending request: … Connection refused`).
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// What a source needs at run time.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// Where to publish.
    pub bus: Arc<dyn Bus>,
    /// This source's health entry.
    pub health: SourceHandle,
    /// Cancelled at shutdown.
    pub cancel: CancellationToken,
}

/// A producer of events. Runs until its input ends, it is cancelled, or it fails.
#[async_trait]
pub trait Source: Send {
    /// A short name for logs and the status page.
    fn name(&self) -> &str;
    /// Produces events until done.
    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError>;
}

/// How fast a simulation runs against the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// `factor` simulated seconds per wall second (1 = real time).
    Factor(f64),
    /// As fast as the consumers allow (backpressure is the only brake).
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let t = s
            .trim()
            .trim_start_matches(['x', 'X'])
            .trim_end_matches(['x', 'X']);
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!(
                "invalid speed {s:?}: use a positive number (1 = real time, 60 = a minute per second) or `max`"
            )),
        }
    }
}

/// The simulator as a live source.
#[derive(Debug)]
pub struct SimulatorSource {
    sim: MarketSim,
    speed: Speed,
    until: Option<UnixNanos>,
    resume_at: Option<UnixNanos>,
}

impl SimulatorSource {
    /// Runs `sim` at `speed`, stopping when simulated time reaches `until` (if given).
    pub fn new(sim: MarketSim, speed: Speed, until: Option<UnixNanos>) -> Self {
        Self {
            sim,
            speed,
            until,
            resume_at: None,
        }
    }

    /// Generates, without publishing or pacing, every minute that ends before `ts` (what an
    /// earlier run already processed), so that the same seed continues the same market.
    pub fn resuming_at(mut self, ts: UnixNanos) -> Self {
        self.resume_at = Some(ts);
        self
    }
}

#[async_trait]
impl Source for SimulatorSource {
    fn name(&self) -> &str {
        "sim"
    }

    async fn run(mut self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        ctx.health.set_state(SourceState::Running);
        let mut wall0 = Instant::now();
        let mut sim0 = self.sim.now();
        let mut buf: Vec<Envelope<Event>> = Vec::with_capacity(4096);
        while self.until.is_none_or(|u| self.sim.now() < u) {
            if ctx.cancel.is_cancelled() {
                break;
            }
            self.sim.next_minute(&mut buf);
            let n = buf.len() as u64;
            let last = buf.last().map_or(self.sim.now(), |e| e.ts_event);
            if let Some(r) = self.resume_at
                && last < r
            {
                buf.clear();
                sim0 = r;
                wall0 = Instant::now();
                continue;
            }
            for env in buf.drain(..) {
                if let Speed::Factor(f) = self.speed {
                    let target =
                        Duration::from_secs_f64((env.ts_event - sim0).max(0) as f64 / 1e9 / f);
                    let elapsed = wall0.elapsed();
                    if target > elapsed + Duration::from_millis(1) {
                        tokio::select! {
                            () = tokio::time::sleep(target - elapsed) => {}
                            () = ctx.cancel.cancelled() => break,
                        }
                    }
                }
                if let Err(e) = ctx.bus.publish(Topic::Inbound, env).await {
                    ctx.health.record_error(e.to_string());
                    ctx.health.set_state(SourceState::Failed);
                    return Err(e.into());
                }
            }
            ctx.health.record_events(n, last);
        }
        ctx.health.set_state(SourceState::Finished);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_parses() {
        assert_eq!("max".parse::<Speed>().unwrap(), Speed::Max);
        assert_eq!("60".parse::<Speed>().unwrap(), Speed::Factor(60.0));
        assert_eq!("x10".parse::<Speed>().unwrap(), Speed::Factor(10.0));
        assert!("0".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().unwrap_err().contains("max"));
    }
}
