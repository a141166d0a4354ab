//! The built-in market simulator: the offline default source.
//!
//! It produces a deterministic market for a given seed, minute by minute:
//!
//! * **Regimes** — range (mean-reverting to an anchor), trend up, trend down and crash — switch
//!   as a Markov chain with per-minute probabilities, so a simulated day usually holds a few
//!   trends and a crash happens every week or two.
//! * **Volatility clustering**: GARCH(1,1) variance for a market factor and for each
//!   instrument's own shocks, with Student-t(4) innovations (fat tails).
//! * **Jumps**: rare market-wide and idiosyncratic jumps with Student-t(3) sizes, more
//!   frequent and mostly negative in a crash.
//! * **Cross-asset correlation**: every return loads on the market factor (`beta`); a crash
//!   raises the market's share of the variance, as real crashes do.
//! * **Volume rising with volatility**: the number of trades per minute is Poisson with a
//!   mean that grows with the current volatility.
//! * **Trades inside each bar**: each minute's trades follow a Brownian bridge from the
//!   previous close to the minute's close, at increasing times within the minute.
//! * **News**: jumps and regime changes produce headlines naming the asset and the move, so
//!   the sentiment work has text tied to real (simulated) shocks.
//!
//! After each minute's trades and news it emits a [`Event::Heartbeat`] at the minute's end,
//! so the pipeline closes bars exactly on time. Every envelope's `ts_received` equals its
//! `ts_event`: the simulated clock is the only clock, which makes runs reproducible byte for
//! byte.

use atalaya_model::{
    Envelope, Event, InstrumentId, NewsItem, Side, Symbol, Timeframe, Trade, UnixNanos, parse_utc,
};
use serde::{Deserialize, Serialize};

use crate::SourceError;
use crate::rng::Rng;

const MINUTE: i64 = 60_000_000_000;

/// One simulated instrument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimInstrument {
    /// Base asset (`BTC`).
    pub base: String,
    /// Human name used in headlines (`Bitcoin`).
    pub name: String,
    /// Starting price in the quote asset.
    pub price: f64,
    /// Typical daily volatility (0.03 = 3%).
    pub daily_vol: f64,
    /// Loading on the market factor (1.0 = moves with the market).
    pub beta: f64,
}

/// Simulator settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed: the same seed gives the same market.
    pub seed: u64,
    /// Simulated start time (UTC), e.g. `2025-01-01` or `2025-01-01T00:00:00Z`; aligned down to
    /// the minute.
    pub start: String,
    /// Venue name of the simulated instruments.
    pub venue: String,
    /// Quote asset of every instrument.
    pub quote: String,
    /// Mean trades per instrument per minute in calm markets.
    pub trades_per_minute: f64,
    /// Whether to emit simulated news headlines.
    pub news: bool,
    /// The instruments.
    pub instruments: Vec<SimInstrument>,
}

impl Default for SimConfig {
    fn default() -> Self {
        let i = |base: &str, name: &str, price, daily_vol, beta| SimInstrument {
            base: base.into(),
            name: name.into(),
            price,
            daily_vol,
            beta,
        };
        Self {
            seed: 42,
            start: "2025-01-01".into(),
            venue: "sim".into(),
            quote: "USDT".into(),
            trades_per_minute: 20.0,
            news: true,
            instruments: vec![
                i("BTC", "Bitcoin", 60_000.0, 0.030, 1.0),
                i("ETH", "Ethereum", 3_000.0, 0.040, 1.15),
                i("ADA", "Cardano", 0.50, 0.055, 1.3),
                i("SOL", "Solana", 150.0, 0.060, 1.35),
                i("AVAX", "Avalanche", 35.0, 0.065, 1.4),
            ],
        }
    }
}

impl SimConfig {
    /// Every problem with these settings, as `(field path, message)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Err(e) = parse_utc(&self.start) {
            out.push(("start".into(), e.to_string()));
        }
        if let Err(e) = Symbol::new(&self.venue) {
            out.push(("venue".into(), e.to_string()));
        }
        if !(self.trades_per_minute.is_finite()
            && self.trades_per_minute >= 1.0
            && self.trades_per_minute <= 10_000.0)
        {
            out.push((
                "trades_per_minute".into(),
                format!(
                    "must be between 1 and 10000, got {}",
                    self.trades_per_minute
                ),
            ));
        }
        if self.instruments.is_empty() {
            out.push((
                "instruments".into(),
                "at least one instrument is required".into(),
            ));
        }
        for (k, i) in self.instruments.iter().enumerate() {
            if let Err(e) = InstrumentId::new(&self.venue, &i.base, &self.quote) {
                out.push((format!("instruments[{k}].base"), e.to_string()));
            }
            if !(i.price.is_finite() && i.price > 0.0) {
                out.push((
                    format!("instruments[{k}].price"),
                    format!("must be > 0, got {}", i.price),
                ));
            }
            if !(i.daily_vol.is_finite() && i.daily_vol > 0.0 && i.daily_vol < 1.0) {
                out.push((
                    format!("instruments[{k}].daily_vol"),
                    format!("must be in (0, 1), got {}", i.daily_vol),
                ));
            }
            if !(i.beta.is_finite() && (0.0..=5.0).contains(&i.beta)) {
                out.push((
                    format!("instruments[{k}].beta"),
                    format!("must be in [0, 5], got {}", i.beta),
                ));
            }
        }
        out
    }
}

/// The market's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Sideways, mean-reverting.
    Range,
    /// Persistent upward drift.
    TrendUp,
    /// Persistent downward drift.
    TrendDown,
    /// Sharp fall with high volatility and correlation.
    Crash,
}

impl Regime {
    /// Per-minute transition probabilities to the other regimes.
    fn transitions(self) -> [(Regime, f64); 3] {
        use Regime::*;
        match self {
            Range => [
                (TrendUp, 1.0 / 480.0),
                (TrendDown, 1.0 / 480.0),
                (Crash, 1.0 / 15_000.0),
            ],
            TrendUp => [
                (Range, 1.0 / 360.0),
                (TrendDown, 1.0 / 2_000.0),
                (Crash, 1.0 / 15_000.0),
            ],
            TrendDown => [
                (Range, 1.0 / 360.0),
                (TrendUp, 1.0 / 2_000.0),
                (Crash, 1.0 / 8_000.0),
            ],
            Crash => [
                (Range, 1.0 / 45.0),
                (TrendDown, 1.0 / 400.0),
                (TrendUp, 1.0 / 4_000.0),
            ],
        }
    }

    /// (drift in units of the per-minute volatility, volatility multiplier, market share of
    /// variance).
    fn dynamics(self) -> (f64, f64, f64) {
        match self {
            Regime::Range => (0.0, 0.8, 0.6),
            Regime::TrendUp => (0.12, 1.0, 0.6),
            Regime::TrendDown => (-0.12, 1.0, 0.6),
            Regime::Crash => (-0.6, 2.5, 0.9),
        }
    }
}

#[derive(Clone, Debug)]
struct InstState {
    id: InstrumentId,
    name: String,
    base: Symbol,
    price: f64,
    anchor: f64,
    sigma: f64,
    beta: f64,
    h: f64,
    next_trade_id: u64,
}

/// A pending trade while a minute is assembled.
#[derive(Clone, Copy, Debug)]
struct Pending {
    ts: UnixNanos,
    inst: usize,
    price: f64,
    qty: f64,
    side: Side,
}

/// The synchronous simulator: call [`MarketSim::next_minute`] for each simulated minute.
#[derive(Clone, Debug)]
pub struct MarketSim {
    rng: Rng,
    cfg: SimConfig,
    source: Symbol,
    insts: Vec<InstState>,
    regime: Regime,
    h_market: f64,
    minute: i64,
    start: UnixNanos,
    seq: u64,
    news_seq: u64,
    pending: Vec<Pending>,
}

/// GARCH(1,1) parameters on unit-variance shocks: long-run variance 1.
const GARCH_ALPHA: f64 = 0.06;
const GARCH_BETA: f64 = 0.92;

impl MarketSim {
    /// A simulator for `cfg`; fails with every configuration problem listed.
    pub fn new(cfg: SimConfig) -> Result<Self, SourceError> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(SourceError::Config(
                problems
                    .into_iter()
                    .map(|(p, m)| format!("sim.{p}: {m}"))
                    .collect(),
            ));
        }
        let start = Timeframe::M1.open_time(parse_utc(&cfg.start).map_err(SourceError::Model)?);
        let insts = cfg
            .instruments
            .iter()
            .map(|i| {
                let id = InstrumentId::new(&cfg.venue, &i.base, &cfg.quote)?;
                Ok(InstState {
                    id,
                    name: i.name.clone(),
                    base: id.base(),
                    price: i.price,
                    anchor: i.price,
                    sigma: i.daily_vol / 1440f64.sqrt(),
                    beta: i.beta,
                    h: 1.0,
                    next_trade_id: 1,
                })
            })
            .collect::<Result<Vec<_>, atalaya_model::ModelError>>()
            .map_err(SourceError::Model)?;
        Ok(Self {
            rng: Rng::new(cfg.seed),
            source: Symbol::new("sim").map_err(SourceError::Model)?,
            insts,
            regime: Regime::Range,
            h_market: 1.0,
            minute: 0,
            start,
            seq: 0,
            news_seq: 0,
            pending: Vec::new(),
            cfg,
        })
    }

    /// The instruments simulated.
    pub fn instruments(&self) -> Vec<InstrumentId> {
        self.insts.iter().map(|i| i.id).collect()
    }

    /// Start of the next minute to simulate.
    pub fn now(&self) -> UnixNanos {
        self.start + self.minute * MINUTE
    }

    /// The current regime.
    pub fn regime(&self) -> Regime {
        self.regime
    }

    fn push(&mut self, out: &mut Vec<Envelope<Event>>, ts: UnixNanos, ev: Event) {
        out.push(Envelope::new(self.seq, ts, ts, self.source, ev));
        self.seq += 1;
    }

    fn headline(
        &mut self,
        out: &mut Vec<Envelope<Event>>,
        ts: UnixNanos,
        title: String,
        summary: String,
        assets: Vec<Symbol>,
    ) {
        if !self.cfg.news {
            return;
        }
        self.news_seq += 1;
        let id = format!("sim-{}-{}", self.cfg.seed, self.news_seq);
        if let Ok(n) = NewsItem::new(id, "Atalaya Simulated Wire", title, ts) {
            let n = n.with_summary(Some(summary)).with_assets(assets);
            self.push(out, ts, Event::News(Box::new(n)));
        }
    }

    /// Simulates one minute, appending its trades (in time order), any headlines and the
    /// closing heartbeat to `out`.
    pub fn next_minute(&mut self, out: &mut Vec<Envelope<Event>>) {
        let t0 = self.now();
        let t1 = t0 + MINUTE;
        // Regime switch.
        let before = self.regime;
        let mut u = self.rng.uniform();
        for (next, p) in self.regime.transitions() {
            if u < p {
                self.regime = next;
                break;
            }
            u -= p;
        }
        let mut news: Vec<(String, String, Vec<Symbol>)> = Vec::new();
        if self.regime != before {
            for i in &mut self.insts {
                i.anchor = i.price;
            }
            let all: Vec<Symbol> = self.insts.iter().map(|i| i.base).collect();
            match self.regime {
                Regime::Crash => news.push((
                    "Crypto market tumbles as liquidations cascade across exchanges".into(),
                    "Simulated: the market entered a crash regime (high volatility, high correlation).".into(),
                    all,
                )),
                Regime::TrendUp if self.rng.chance(0.5) => news.push((
                    "Crypto rally gathers pace as inflows return".into(),
                    "Simulated: the market entered an up-trend regime.".into(),
                    all,
                )),
                Regime::TrendDown if self.rng.chance(0.5) => news.push((
                    "Crypto prices slip as risk appetite fades".into(),
                    "Simulated: the market entered a down-trend regime.".into(),
                    all,
                )),
                _ => {}
            }
        }
        let (drift_k, vol_mult, market_share) = self.regime.dynamics();
        let crash = self.regime == Regime::Crash;

        // Market factor with GARCH variance and fat tails.
        let z_m = self.rng.student_t(4);
        let m = self.h_market.sqrt() * z_m;
        let mut market_jump = 0.0;
        if self
            .rng
            .chance(if crash { 1.0 / 300.0 } else { 1.0 / 2_880.0 })
        {
            let size = 6.0 * self.rng.student_t(3).abs() + 4.0;
            let down = crash || self.rng.chance(0.5);
            market_jump = if down { -size } else { size };
        }
        self.h_market = (1.0 - GARCH_ALPHA - GARCH_BETA)
            + GARCH_ALPHA * (z_m * z_m + market_jump * market_jump / 4.0) * self.h_market
            + GARCH_BETA * self.h_market;
        self.h_market = self.h_market.min(50.0);

        self.pending.clear();
        for k in 0..self.insts.len() {
            let z_i = self.rng.student_t(4);
            let mut jump = market_jump * self.insts[k].beta;
            if self.rng.chance(1.0 / 2_880.0) {
                let size = 6.0 * self.rng.student_t(3).abs() + 4.0;
                jump += if self.rng.chance(0.5) { size } else { -size };
            }
            let inst = &mut self.insts[k];
            let sigma = inst.sigma * vol_mult;
            let beta_share = (market_share * inst.beta.min(1.5) / 1.5).min(0.95);
            let mut r = sigma
                * (beta_share.sqrt() * m + (1.0 - beta_share).sqrt() * inst.h.sqrt() * z_i)
                + drift_k * inst.sigma
                + jump * inst.sigma;
            if self.regime == Regime::Range {
                r -= 0.02 * (inst.price / inst.anchor).ln();
            }
            // Keep a simulated minute within ±30%.
            r = r.clamp(-0.35, 0.25);
            inst.h = ((1.0 - GARCH_ALPHA - GARCH_BETA)
                + GARCH_ALPHA * (z_i * z_i + jump * jump / 4.0) * inst.h
                + GARCH_BETA * inst.h)
                .min(50.0);
            let big = jump.abs() >= 6.0;
            // Activity follows volatility.
            let vol_ratio =
                (r.abs() / inst.sigma).max(inst.h.sqrt() * vol_mult * self.h_market.sqrt());
            let lambda = (self.cfg.trades_per_minute * vol_ratio.powf(1.5)).clamp(
                0.5 * self.cfg.trades_per_minute,
                8.0 * self.cfg.trades_per_minute,
            );
            let n = self.rng.poisson(lambda).max(1) as usize;
            // Brownian bridge from the last price to the minute's close.
            let step = sigma / (n as f64).sqrt();
            let mut incs: Vec<f64> = (0..n).map(|_| step * self.rng.normal()).collect();
            let adj = (r - incs.iter().sum::<f64>()) / n as f64;
            let p0 = self.insts[k].price;
            let mut logp = 0.0;
            for (j, d) in incs.iter_mut().enumerate() {
                *d += adj;
                logp += *d;
                let offset = ((j as f64 + self.rng.uniform()) / n as f64 * MINUTE as f64) as i64;
                let notional = 2_000.0 * (0.9 * self.rng.normal() - 0.405).exp();
                let price = p0 * logp.exp();
                self.pending.push(Pending {
                    ts: t0 + offset.clamp(0, MINUTE - 1),
                    inst: k,
                    price,
                    qty: notional / price,
                    side: if *d >= 0.0 { Side::Buy } else { Side::Sell },
                });
            }
            let inst = &mut self.insts[k];
            inst.price = p0 * r.exp();
            if big {
                let pct = (r.exp() - 1.0) * 100.0;
                let (name, base) = (inst.name.clone(), inst.base);
                let title = if pct >= 0.0 {
                    format!("{name} surges {pct:.1}% in minutes as buyers pile in")
                } else {
                    format!("{name} plunges {:.1}% in minutes amid heavy selling", -pct)
                };
                news.push((
                    title,
                    format!("Simulated: a {pct:+.2}% jump in {base}."),
                    vec![base],
                ));
            }
        }
        self.pending
            .sort_by(|a, b| a.ts.cmp(&b.ts).then(a.inst.cmp(&b.inst)));
        for j in 0..self.pending.len() {
            let p = self.pending[j];
            let inst = &mut self.insts[p.inst];
            let id = inst.next_trade_id;
            inst.next_trade_id += 1;
            if let Ok(t) = Trade::new(inst.id, id, p.price, p.qty, p.side) {
                self.push(out, p.ts, Event::Trade(t));
            }
        }
        for (title, summary, assets) in news {
            self.headline(out, t1 - 1, title, summary, assets);
        }
        self.push(out, t1, Event::Heartbeat);
        self.minute += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_time_ordered() {
        let run = |seed| {
            let mut s = MarketSim::new(SimConfig {
                seed,
                ..SimConfig::default()
            })
            .unwrap();
            let mut out = Vec::new();
            for _ in 0..120 {
                s.next_minute(&mut out);
            }
            out
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert!(a.windows(2).all(|w| w[0].ts_event <= w[1].ts_event));
        assert!(a.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        let heartbeats = a.iter().filter(|e| e.payload == Event::Heartbeat).count();
        assert_eq!(heartbeats, 120);
    }

    #[test]
    fn every_instrument_trades_every_minute() {
        let mut s = MarketSim::new(SimConfig::default()).unwrap();
        let mut out = Vec::new();
        for _ in 0..300 {
            out.clear();
            s.next_minute(&mut out);
            for id in s.instruments() {
                assert!(
                    out.iter()
                        .any(|e| matches!(&e.payload, Event::Trade(t) if t.instrument() == id))
                );
            }
        }
    }

    #[test]
    fn returns_are_fat_tailed_and_volatility_clusters() {
        let mut s = MarketSim::new(SimConfig {
            news: false,
            ..SimConfig::default()
        })
        .unwrap();
        let btc = s.instruments()[0];
        let mut closes = Vec::new();
        let mut out = Vec::new();
        for _ in 0..20_000 {
            out.clear();
            s.next_minute(&mut out);
            let last = out.iter().rev().find_map(|e| match &e.payload {
                Event::Trade(t) if t.instrument() == btc => Some(t.price()),
                _ => None,
            });
            closes.push(last.unwrap());
        }
        let r: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let n = r.len() as f64;
        let mean = r.iter().sum::<f64>() / n;
        let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let kurt = r.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(kurt > 4.0, "excess kurtosis expected, got {kurt}");
        // Volatility clustering: |r| is autocorrelated.
        let a: Vec<f64> = r.iter().map(|x| x.abs()).collect();
        let am = a.iter().sum::<f64>() / n;
        let cov = a.windows(2).map(|w| (w[0] - am) * (w[1] - am)).sum::<f64>() / n;
        let va = a.iter().map(|x| (x - am).powi(2)).sum::<f64>() / n;
        assert!(cov / va > 0.05, "autocorrelation of |r| = {}", cov / va);
    }

    #[test]
    fn assets_are_correlated_and_news_follows_shocks() {
        let mut s = MarketSim::new(SimConfig {
            seed: 3,
            ..SimConfig::default()
        })
        .unwrap();
        let ids = s.instruments();
        let mut last = vec![Vec::new(); ids.len()];
        let mut out = Vec::new();
        let mut news = 0;
        for _ in 0..10_000 {
            out.clear();
            s.next_minute(&mut out);
            for (k, id) in ids.iter().enumerate() {
                let p = out.iter().rev().find_map(|e| match &e.payload {
                    Event::Trade(t) if t.instrument() == *id => Some(t.price()),
                    _ => None,
                });
                last[k].push(p.unwrap());
            }
            news += out
                .iter()
                .filter(|e| matches!(e.payload, Event::News(_)))
                .count();
        }
        let rets = |v: &Vec<f64>| v.windows(2).map(|w| (w[1] / w[0]).ln()).collect::<Vec<_>>();
        let (a, b) = (rets(&last[0]), rets(&last[1]));
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
            / n;
        let sa = (a.iter().map(|x| (x - ma).powi(2)).sum::<f64>() / n).sqrt();
        let sb = (b.iter().map(|y| (y - mb).powi(2)).sum::<f64>() / n).sqrt();
        let corr = cov / (sa * sb);
        assert!(corr > 0.3 && corr < 0.95, "BTC/ETH correlation {corr}");
        assert!(news > 0, "a week of simulation produced no headline");
    }

    #[test]
    fn bad_config_lists_every_problem() {
        let mut cfg = SimConfig {
            start: "someday".into(),
            ..SimConfig::default()
        };
        cfg.instruments[1].price = -1.0;
        cfg.instruments[2].daily_vol = 3.0;
        let err = MarketSim::new(cfg).unwrap_err().to_string();
        for needle in [
            "sim.start",
            "sim.instruments[1].price",
            "sim.instruments[2].daily_vol",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
    }
}
