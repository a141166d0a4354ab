//! The backtest harness: the live [`Pipeline`] and [`PaperTrader`] over history, with the
//! metrics of the strategy beside buy-and-hold of the same instruments, and the reports
//! (trade list CSV, metrics JSON, equity and drawdown SVG, audit JSON lines).
//!
//! Nothing here is specific to backtests except the driving loop: the envelopes go through
//! the same `Pipeline::process` and `PaperTrader::on_event` a live run calls, so a backtest is
//! a replay of what the agent would have done. Identical input gives identical output.

pub mod calibrate;
mod metrics;
mod report;
pub mod strategies;
pub mod walk;

use std::borrow::Borrow;

use atalaya_engine::{
    AuditEntry, Bars, ClosedTrade, EngineConfig, EngineError, EquityPoint, PaperTrader, Pipeline,
    PipelineStats, PortfolioConfig, RiskConfig, Sink,
};
use atalaya_model::{Candle, Envelope, Event, InstrumentId, Symbol, Timeframe, UnixNanos};
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use metrics::Pass;
pub use metrics::{Metrics, drawdowns, metrics};
pub use report::{equity_svg, trades_csv, write_reports};

/// Errors from a backtest.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The engine, portfolio or risk configuration is unusable.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The portfolio or risk section is invalid.
    #[error("invalid {section} configuration: {problems}")]
    Config {
        /// `portfolio` or `risk`.
        section: &'static str,
        /// Every problem, `path: message`, joined.
        problems: String,
    },
    /// The input held no bar of the traded timeframe.
    #[error(
        "no {0} bars in the input: nothing was traded (is the data's timeframe shorter than or equal to the traded one?)"
    )]
    NoBars(Timeframe),
    /// A report could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything a backtest is configured by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// The pipeline: timeframes, indicators, decision, rules.
    pub engine: EngineConfig,
    /// The paper portfolio.
    pub portfolio: PortfolioConfig,
    /// The risk manager.
    pub risk: RiskConfig,
    /// Trade only bars opening at or after this time; earlier input only warms up the
    /// pipeline's indicators (walk-forward test windows use it).
    pub trade_from: Option<UnixNanos>,
}

impl Settings {
    /// The timeframe traded: the portfolio's, or the shortest decision timeframe.
    pub fn trading_timeframe(&self) -> Timeframe {
        self.portfolio.timeframe.unwrap_or_else(|| {
            self.engine
                .decision_timeframes()
                .iter()
                .min()
                .copied()
                .unwrap_or(Timeframe::H1)
        })
    }

    fn check(&self) -> Result<(), BacktestError> {
        for (section, problems) in [
            ("portfolio", self.portfolio.validate()),
            ("risk", self.risk.validate()),
        ] {
            if !problems.is_empty() {
                return Err(BacktestError::Config {
                    section,
                    problems: problems
                        .iter()
                        .map(|p| format!("{}: {}", p.path, p.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
        }
        Ok(())
    }
}

/// What a backtest produced.
#[derive(Clone, Debug, Serialize)]
pub struct Backtest {
    /// The timeframe traded.
    pub timeframe: Timeframe,
    /// The instruments, as given.
    pub instruments: Vec<InstrumentId>,
    /// The pipeline's counters.
    pub pipeline: PipelineStats,
    /// The strategy's metrics.
    pub metrics: Metrics,
    /// Buy-and-hold of the same instruments, equal weights, same fees.
    pub buy_and_hold: Metrics,
    /// Entries the risk manager refused.
    pub refused: u64,
    /// Closed trades.
    #[serde(skip)]
    pub trades: Vec<ClosedTrade>,
    /// The strategy's equity curve.
    #[serde(skip)]
    pub equity: Vec<EquityPoint>,
    /// Buy-and-hold equity at the same points.
    #[serde(skip)]
    pub benchmark: Vec<f64>,
    /// The audit stream.
    #[serde(skip)]
    pub audit: Vec<AuditEntry>,
}

/// Buy-and-hold: the initial cash split equally, each part bought at its instrument's first
/// bar close (less the fee) and held.
struct Hold {
    fee: f64,
    idle: f64,
    per: f64,
    legs: Vec<(InstrumentId, f64, f64)>,
    /// The leg of the last bar's instrument.
    last: usize,
}

impl Hold {
    fn value(&self) -> f64 {
        self.idle + self.legs.iter().fold(0.0, |a, (_, u, px)| a + u * px)
    }

    /// [`on_close`](Self::on_close) with each bar of `run` in turn, the value after each
    /// pushed to `out`, except that the first `replaced` bars' values replace its last one.
    fn on_run(&mut self, run: &[Candle], replaced: usize, out: &mut Vec<f64>) {
        let mut k = 0;
        while let Some(c) = run.get(k) {
            self.on_close(c.instrument(), c.close());
            let v = self.value();
            match out.last_mut() {
                Some(slot) if k < replaced => *slot = v,
                _ => out.push(v),
            }
            k += 1;
            if k >= replaced
                && let [leg] = self.legs.as_mut_slice()
                && leg.0 == c.instrument()
            {
                // The only leg: its instrument's next closes give the value alone, as
                // `value` sums it.
                let (id, units, idle) = (leg.0, leg.1, self.idle);
                let n = run[k..]
                    .iter()
                    .position(|d| d.instrument() != id)
                    .unwrap_or(run.len() - k);
                let same = &run[k..k + n];
                out.extend(same.iter().map(|d| idle + (0.0 + units * d.close())));
                if let Some(d) = same.last() {
                    leg.2 = d.close();
                }
                k += n;
            }
        }
    }

    #[inline]
    fn on_close(&mut self, id: InstrumentId, close: f64) {
        match self.legs.get_mut(self.last) {
            Some(leg) if leg.0 == id => leg.2 = close,
            _ => self.on_close_other(id, close),
        }
    }
    /// [`on_close`](Self::on_close) of an instrument other than the last one.
    #[cold]
    fn on_close_other(&mut self, id: InstrumentId, close: f64) {
        match self.legs.iter().position(|l| l.0 == id) {
            Some(i) => {
                self.legs[i].2 = close;
                self.last = i;
            }
            None if self.idle >= self.per * 0.999_999 && close > 0.0 => {
                self.idle -= self.per;
                self.legs
                    .push((id, self.per * (1.0 - self.fee) / close, close));
                self.last = self.legs.len() - 1;
            }
            None => {}
        }
    }
}

/// The pipeline's outputs go straight to the paper trader and the buy-and-hold benchmark.
struct Feed {
    trader: PaperTrader,
    hold: Hold,
    benchmark: Vec<f64>,
    tf: Timeframe,
    trade_from: Option<UnixNanos>,
    last_ts: UnixNanos,
    /// The curves' metrics, taken while their points are fresh.
    measured: Measured,
}

/// The metrics passes over both curves, taken as their points come: every point but the
/// last is final (a bar closing at the same time replaces the last, and the end of the
/// backtest revalues it).
struct Measured {
    equity: Pass,
    exposed: usize,
    /// Points of the equity curve and the benchmark taken.
    points: usize,
    benchmark: Pass,
    values: usize,
}

impl Measured {
    /// Takes the points of `equity` and `benchmark` from those taken up to `keep` before
    /// their ends.
    #[inline]
    fn take(&mut self, equity: &[EquityPoint], benchmark: &[f64], keep: usize) {
        let upto = equity.len().saturating_sub(keep);
        if let Some(new) = equity.get(self.points..upto) {
            for p in new {
                self.equity.push(p.equity);
                self.exposed += usize::from(p.exposure > 0.0);
            }
            self.points = upto;
        }
        let upto = benchmark.len().saturating_sub(keep);
        if let Some(new) = benchmark.get(self.values..upto) {
            new.iter().for_each(|v| self.benchmark.push(*v));
            self.values = upto;
        }
    }
}

impl Feed {
    /// Whether outputs at `ts` are traded (not warm-up before `trade_from`).
    #[inline]
    fn trades_at(&self, ts: UnixNanos) -> bool {
        self.trade_from.is_none_or(|t| ts > t)
    }

    #[inline]
    fn on_bar(&mut self, c: &Candle) {
        self.trader.on_candle(c);
        if c.timeframe() == self.tf {
            self.last_ts = self.last_ts.max(c.close_time());
            self.hold.on_close(c.instrument(), c.close());
            let v = self.hold.value();
            if self.benchmark.len() < self.trader.equity().len() {
                self.benchmark.push(v);
            } else if let Some(last) = self.benchmark.last_mut() {
                *last = v;
            }
        }
    }
}

impl Sink for Feed {
    #[inline]
    fn emit(&mut self, out: Envelope<Event>) {
        if !self.trades_at(out.ts_event) {
            return;
        }
        match &out.payload {
            Event::Candle(c) => self.on_bar(c),
            _ => self.trader.on_event(&out),
        }
    }

    #[inline]
    fn bar(&mut self, _seq: u64, _ts_received: UnixNanos, _source: Symbol, candle: &Candle) {
        if self.trades_at(candle.close_time()) {
            self.on_bar(candle);
        }
    }

    /// A run of bars of one instrument and timeframe in time order: the trader takes them at
    /// once, then the benchmark follows. The trader marks one equity point per traded bar,
    /// appended, except that the run's first bar replaces the last point when it closes at the
    /// same time (another instrument's bar); the benchmark keeps one value per point, as bar by
    /// bar.
    fn bars(&mut self, _seq: u64, _source: Symbol, bars: Bars<'_>) {
        let bars = bars.candles();
        let start = bars
            .iter()
            .position(|c| self.trades_at(c.close_time()))
            .unwrap_or(bars.len());
        let run = &bars[start..];
        let Some(last) = run.last() else {
            return;
        };
        if last.timeframe() != self.tf {
            // Neither the trader nor the benchmark reads other timeframes.
            return;
        }
        let before = self.trader.equity().len();
        self.trader.on_candles(run);
        let replaced = run.len() - (self.trader.equity().len() - before);
        self.hold.on_run(run, replaced, &mut self.benchmark);
        self.measured.take(self.trader.equity(), &self.benchmark, 1);
        self.last_ts = self.last_ts.max(last.close_time());
    }
}

/// How many venue bars the backtest gathers before handing them to the pipeline.
const BARS_PER_CALL: usize = 1024;

/// Runs `input` (time-ordered market envelopes of `instruments`) through the pipeline and
/// the paper trader; `progress` is called with the number of envelopes done every 65,536.
pub fn run<I>(
    settings: &Settings,
    instruments: &[InstrumentId],
    input: I,
    progress: &mut dyn FnMut(u64),
) -> Result<Backtest, BacktestError>
where
    I: IntoIterator,
    I::Item: Borrow<Envelope<Event>>,
{
    run_with(settings, instruments, input, progress, true)
}

/// [`run`] over venue bars alone, each with the time it was received (a replay's bars,
/// received at their close): the same backtest as their envelopes give, without making
/// them. `progress` is called with the number of bars done about every 65,536.
pub fn run_bars<I>(
    settings: &Settings,
    instruments: &[InstrumentId],
    bars: I,
    progress: &mut dyn FnMut(u64),
) -> Result<Backtest, BacktestError>
where
    I: IntoIterator<Item = (Candle, UnixNanos)>,
{
    let mut bars = bars.into_iter();
    let mut d = Driver::new(settings, instruments, bars.size_hint().0)?;
    let mut done = 0u64;
    loop {
        d.gathered.extend(bars.by_ref().take(BARS_PER_CALL));
        let n = d.gathered.0.len() as u64;
        if n == 0 {
            break;
        }
        d.flush();
        advance(&mut done, n, progress);
    }
    d.finish(settings, instruments)
}

/// [`run_candles`] over bars received at their close that do not lie in one slice (several
/// files' bars in merged time order): gathered a run at a time, without receive times to keep.
/// `progress` is called with the number of bars done about every 65,536.
pub fn run_merged<I>(
    settings: &Settings,
    instruments: &[InstrumentId],
    candles: I,
    progress: &mut dyn FnMut(u64),
) -> Result<Backtest, BacktestError>
where
    I: IntoIterator<Item = Candle>,
{
    let mut candles = candles.into_iter();
    let mut d = Driver::new(settings, instruments, candles.size_hint().0)?;
    let mut done = 0u64;
    loop {
        let gathered = &mut d.gathered.0;
        gathered.extend(candles.by_ref().take(BARS_PER_CALL));
        let n = gathered.len() as u64;
        if n == 0 {
            break;
        }
        d.pipeline
            .process_candles_into(Bars::at_close(gathered), &mut d.feed);
        gathered.clear();
        advance(&mut done, n, progress);
    }
    d.finish(settings, instruments)
}

/// [`run_bars`] over bars received at their close (a replay's, such as one loaded file's):
/// they go to the pipeline where they lie, without being gathered. `progress` is called with
/// the number of bars done about every 65,536.
pub fn run_candles(
    settings: &Settings,
    instruments: &[InstrumentId],
    candles: &[Candle],
    progress: &mut dyn FnMut(u64),
) -> Result<Backtest, BacktestError> {
    let mut d = Driver::new(settings, instruments, candles.len())?;
    let mut done = 0u64;
    for chunk in candles.chunks(BARS_PER_CALL) {
        d.pipeline
            .process_candles_into(Bars::at_close(chunk), &mut d.feed);
        let n = chunk.len() as u64;
        advance(&mut done, n, progress);
    }
    d.finish(settings, instruments)
}

/// Counts `n` more bars `done`, calling `progress` with the count each time it passes a
/// multiple of 65,536.
#[inline]
fn advance(done: &mut u64, n: u64, progress: &mut dyn FnMut(u64)) {
    if (*done + n) >> 16 > *done >> 16 {
        progress(*done + n);
    }
    *done += n;
}

/// [`run`], handing the pipeline venue bars in runs (`runs`, as `run` does) or every envelope
/// on its own (the reference the runs are tested against).
fn run_with<I>(
    settings: &Settings,
    instruments: &[InstrumentId],
    input: I,
    progress: &mut dyn FnMut(u64),
    runs: bool,
) -> Result<Backtest, BacktestError>
where
    I: IntoIterator,
    I::Item: Borrow<Envelope<Event>>,
{
    let input = input.into_iter();
    let mut d = Driver::new(settings, instruments, input.size_hint().0)?;
    for (k, env) in input.enumerate() {
        let env = env.borrow();
        match &env.payload {
            Event::Candle(c) if runs => d.bar(*c, env.ts_received),
            _ => d.other(env),
        }
        if k & 0xFFFF == 0xFFFF {
            progress(k as u64 + 1);
        }
    }
    d.finish(settings, instruments)
}

/// The backtest's driving loop: the pipeline, the sink it feeds and the venue bars gathered
/// for it, with the times they were received.
struct Driver {
    pipeline: Pipeline,
    feed: Feed,
    gathered: (Vec<Candle>, Vec<UnixNanos>),
}

impl Driver {
    /// A backtest of `settings` about to take about `hint` inputs.
    fn new(
        settings: &Settings,
        instruments: &[InstrumentId],
        hint: usize,
    ) -> Result<Self, BacktestError> {
        settings.check()?;
        let tf = settings.trading_timeframe();
        let mut pipeline = Pipeline::new(settings.engine.clone())?;
        // The trader reads the opportunities' numbers, never their factor sentences.
        pipeline.set_explanations(false);
        let mut trader = PaperTrader::new(
            settings.portfolio.clone(),
            settings.risk.clone(),
            tf,
            !settings.engine.rules.is_empty(),
        );
        let cash = settings.portfolio.initial_cash.to_f64().unwrap_or(0.0);
        let n = instruments.len().max(1) as f64;
        let hold = Hold {
            fee: settings.portfolio.fee_rate.to_f64().unwrap_or(0.0),
            idle: cash,
            per: cash / n,
            legs: Vec::with_capacity(instruments.len()),
            last: 0,
        };
        trader.reserve(hint);
        Ok(Self {
            pipeline,
            feed: Feed {
                trader,
                hold,
                benchmark: Vec::with_capacity(hint),
                tf,
                trade_from: settings.trade_from,
                last_ts: UnixNanos::MIN,
                measured: Measured {
                    equity: Pass::new(cash),
                    exposed: 0,
                    points: 0,
                    benchmark: Pass::new(cash),
                    values: 0,
                },
            },
            gathered: (
                Vec::with_capacity(BARS_PER_CALL),
                Vec::with_capacity(BARS_PER_CALL),
            ),
        })
    }

    /// Takes a venue bar. Bars go to the pipeline in runs, which it analyses a block at a
    /// time (the same outputs as one by one).
    #[inline]
    fn bar(&mut self, c: Candle, ts_received: UnixNanos) {
        self.gathered.0.push(c);
        self.gathered.1.push(ts_received);
        if self.gathered.0.len() == BARS_PER_CALL {
            self.flush();
        }
    }

    /// Takes any other input: it ends the run of bars and goes on its own.
    fn other(&mut self, env: &Envelope<Event>) {
        self.flush();
        self.pipeline.process_into(env, &mut self.feed);
    }

    fn flush(&mut self) {
        let (candles, received) = &mut self.gathered;
        self.pipeline
            .process_candles_into(Bars::new(candles, received), &mut self.feed);
        candles.clear();
        received.clear();
    }

    /// Closes the positions at the end and measures both curves.
    fn finish(
        mut self,
        settings: &Settings,
        instruments: &[InstrumentId],
    ) -> Result<Backtest, BacktestError> {
        self.flush();
        let Self { pipeline, feed, .. } = self;
        let Feed {
            mut trader,
            hold,
            mut benchmark,
            last_ts,
            tf,
            mut measured,
            ..
        } = feed;
        if trader.equity().is_empty() {
            return Err(BacktestError::NoBars(tf));
        }
        trader.close_all(last_ts, "end of the backtest");
        if let Some(last) = benchmark.last_mut() {
            *last = hold.idle + (*last - hold.idle) * (1.0 - hold.fee);
        }
        let refused = trader.refused();
        let (trades, equity, audit) = trader.into_parts();
        measured.take(&equity, &benchmark, 0);
        let cash = settings.portfolio.initial_cash.to_f64().unwrap_or(0.0);
        let span = equity.first().zip(equity.last()).map(|(a, b)| (a.ts, b.ts));
        let Measured {
            equity: curve,
            exposed,
            benchmark: held,
            ..
        } = measured;
        let mut m = metrics::pass_metrics(curve, span, cash, Some(&trades), tf);
        m.exposure = exposed as f64 / equity.len() as f64;
        let bh = metrics::pass_metrics(held, span, cash, None, tf);
        Ok(Backtest {
            timeframe: tf,
            instruments: instruments.to_vec(),
            pipeline: pipeline.stats(),
            metrics: m,
            buy_and_hold: bh,
            refused,
            trades,
            equity,
            benchmark,
            audit,
        })
    }
}

/// Points with a time, for [`metrics`].
pub trait Timed {
    /// The point's time.
    fn ts(&self) -> UnixNanos;
}

impl Timed for EquityPoint {
    fn ts(&self) -> UnixNanos {
        self.ts
    }
}

impl Timed for (UnixNanos, f64) {
    fn ts(&self) -> UnixNanos {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::strategies::sma_crossover;
    use atalaya_engine::{FillAt, RuleAction, RuleConfig};

    const H: i64 = 3_600_000_000_000;

    /// `n` hourly bars of the test kit's random walk, as envelopes.
    fn walk(seed: u64, n: usize) -> Vec<Envelope<Event>> {
        let id: InstrumentId = "sim:BTC/USDT".parse().unwrap();
        let src = Symbol::new("t").unwrap();
        atalaya_testkit::walk(n, 0, H / 1_000_000, 100.0, seed, &[])
            .into_iter()
            .map(|(t, o, h, l, c, v)| {
                let c = Candle::new(id, Timeframe::H1, t * 1_000_000, [o, h, l, c], v, 1).unwrap();
                Envelope::new(0, c.close_time(), c.close_time(), src, Event::Candle(c))
            })
            .collect()
    }

    /// Everything a backtest produced, exactly (floats by their shortest exact form).
    fn fingerprint(b: &Backtest) -> String {
        format!(
            "{}\n{:?}\n{:?}\n{:?}\n{:?}",
            serde_json::to_string(b).unwrap(),
            b.trades,
            b.equity,
            b.benchmark,
            b.audit
        )
    }

    #[test]
    fn runs_of_bars_give_the_backtest_of_one_envelope_at_a_time() {
        let id: InstrumentId = "sim:BTC/USDT".parse().unwrap();
        let quiet = sma_crossover(Timeframe::H1, 5, 20);
        // Stops, targets, a trailing stop and ATR sizing: bars the trader cannot only mark.
        let mut guarded = sma_crossover(Timeframe::H1, 5, 20);
        guarded.risk.stop_atr = 1.5;
        guarded.risk.target_atr = 4.0;
        guarded.risk.trailing_atr = 2.0;
        guarded.risk.max_drawdown = 0.1;
        guarded.portfolio.fill = FillAt::NextOpen;
        let mut warm = quiet.clone();
        warm.trade_from = Some(700 * H);
        warm.engine.rules.push(RuleConfig {
            name: "dip".into(),
            when: "close < sma_20 and rsi_14 < 35".into(),
            action: RuleAction::Buy,
        });
        let mut analysed = quiet.clone();
        analysed.engine.anomaly.enabled = true;
        analysed.engine.decision.enabled = true;
        for (name, settings) in [
            ("quiet", quiet),
            ("guarded", guarded),
            ("warm-up", warm),
            ("analysed", analysed),
        ] {
            for seed in [1u64, 7, 42] {
                let input = walk(seed, 3_000);
                let one = run_with(&settings, &[id], input.iter(), &mut |_| {}, false).unwrap();
                let runs = run_with(&settings, &[id], input.iter(), &mut |_| {}, true).unwrap();
                assert!(
                    one.trades.len() > 5,
                    "{name} {seed}: {} trades",
                    one.trades.len()
                );
                assert_eq!(fingerprint(&one), fingerprint(&runs), "{name} seed {seed}");
                let bars = input.iter().filter_map(|e| match &e.payload {
                    Event::Candle(c) => Some((*c, e.ts_received)),
                    _ => None,
                });
                let direct = run_bars(&settings, &[id], bars, &mut |_| {}).unwrap();
                assert_eq!(
                    fingerprint(&one),
                    fingerprint(&direct),
                    "{name} seed {seed}"
                );
                // The walk's bars are received at their close: they can go where they lie.
                let candles: Vec<Candle> = input
                    .iter()
                    .filter_map(|e| match &e.payload {
                        Event::Candle(c) => {
                            assert_eq!(e.ts_received, c.close_time());
                            Some(*c)
                        }
                        _ => None,
                    })
                    .collect();
                let lying = run_candles(&settings, &[id], &candles, &mut |_| {}).unwrap();
                assert_eq!(fingerprint(&one), fingerprint(&lying), "{name} seed {seed}");
                let merged =
                    run_merged(&settings, &[id], candles.iter().copied(), &mut |_| {}).unwrap();
                assert_eq!(
                    fingerprint(&one),
                    fingerprint(&merged),
                    "{name} seed {seed}"
                );
            }
        }
    }
}
