//! [`Pipeline`]: the one synchronous entry point for live runs, replays and backtests.

mod block;
mod series;
mod sink;

use series::{Building, Series, anomaly_slot, bar_of};
pub use sink::{Bars, Sink};

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use atalaya_model::{
    Candle, Envelope, Event, InstrumentId, Opportunity, OpportunityKind, Signal, Symbol, Timeframe,
    UnixNanos,
};
use serde::Serialize;

use crate::EngineError;
use crate::config::EngineConfig;
use crate::decision::{BarKey, Periods, Snapshot, decide, plan};
use atalaya_ta::anomaly::{Anomaly, AnomalyKind};
use atalaya_ta::set::Spec;

use crate::rules::{BAR_FIELDS, DECISION_FIELDS, FIRST_INDICATOR, Rule};

/// FxHash (as in rustc): a fast, deterministic hasher for the instrument interner.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Counters describing what the pipeline has done; cheap to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PipelineStats {
    /// Envelopes processed.
    pub events: u64,
    /// Trades aggregated.
    pub trades: u64,
    /// Candles received from sources.
    pub candles_in: u64,
    /// Bars closed and emitted.
    pub candles_out: u64,
    /// Trades or candles older than the bar they belong to, or duplicates: not aggregated.
    pub late: u64,
    /// Candles whose timeframe cannot build any configured timeframe.
    pub unusable_candles: u64,
    /// Opportunities emitted.
    pub opportunities: u64,
    /// Anomaly signals emitted.
    pub anomalies: u64,
    /// Rule signals emitted.
    pub rule_hits: u64,
    /// Instruments seen.
    pub instruments: u64,
}

/// Market statistics older than this (two days) no longer count.
const STATS_MAX_AGE_NS: i64 = 2 * 86_400_000_000_000;

/// The deterministic core: aggregates trades and candles into bars on the configured
/// timeframes, closes bars on time (on a later trade, a later candle or a
/// [`Event::Heartbeat`]), updates the indicators of each closed bar and scores it.
///
/// It never reads the wall clock and never allocates per event on the hot path: instruments
/// are interned to dense indices, series state lives in one flat vector, and the outputs of
/// each call are written into a buffer that is reused. The same input always yields the same
/// output, byte for byte.
///
/// ```
/// use atalaya_engine::{EngineConfig, Pipeline};
/// use atalaya_model::{Candle, Envelope, Event, Symbol, Timeframe};
///
/// let mut p = Pipeline::new(EngineConfig::default()).unwrap();
/// let id = "sim:BTC/USDT".parse().unwrap();
/// let c = Candle::new(id, Timeframe::M1, 0, [1.0, 1.0, 1.0, 1.0], 1.0, 1).unwrap();
/// let env = Envelope::new(0, c.close_time(), c.close_time(), Symbol::new("test").unwrap(), Event::Candle(c));
/// let out = p.process(&env);
/// assert!(matches!(out[0].payload, Event::Candle(_)));
/// ```
#[derive(Debug)]
pub struct Pipeline {
    cfg: EngineConfig,
    timeframes: Vec<Timeframe>,
    decide_on: Vec<bool>,
    periods: Periods,
    specs: Vec<Spec>,
    rules: Vec<Rule>,
    /// Where each rule's state starts in a series' `rule_state`.
    rule_offsets: Vec<usize>,
    rule_state: usize,
    index: HashMap<InstrumentId, u32, BuildHasherDefault<FxHasher>>,
    instruments: Vec<InstrumentId>,
    last_hit: Option<(InstrumentId, u32)>,
    series: Vec<Series>,
    out: Vec<Envelope<Event>>,
    anomalies: Vec<Anomaly>,
    out_seq: u64,
    stats: PipelineStats,
    /// The latest market statistics per asset, with their event time.
    market_stats: HashMap<atalaya_model::Symbol, (atalaya_model::MarketStats, UnixNanos)>,
    /// Scores headlines and posts.
    sentiment_model: atalaya_ml::ensemble::Ensemble,
    /// The per-asset sentiment index.
    sentiment: atalaya_ml::index::SentimentIndex,
    source: Symbol,
    now: UnixNanos,
    /// Block processing's view of the configuration and its buffers.
    blocks: block::Blocks,
    /// Whether opportunities carry their factors' sentences (see `set_explanations`).
    explain: bool,
}

/// The sentiment ensemble `[engine.sentiment]` describes: the lexicon (VADER's, FinVADER's and
/// the crypto slang, as far as the directories are given), the transformer in `model_dir` when
/// set, and the keyword signal.
pub fn sentiment_model(
    cfg: &crate::config::SentimentConfig,
) -> Result<atalaya_ml::ensemble::Ensemble, EngineError> {
    let lexicon = match &cfg.lexicon_dir {
        Some(dir) => {
            atalaya_ml::sentiment::LexiconModel::load(dir, cfg.finance_lexicon_dir.as_deref())?
        }
        None => atalaya_ml::sentiment::LexiconModel::crypto_only(),
    };
    let transformer = cfg
        .model_dir
        .as_deref()
        .map(atalaya_ml::transformer::TransformerModel::shared)
        .transpose()?;
    Ok(atalaya_ml::ensemble::Ensemble::new(
        lexicon,
        transformer,
        atalaya_ml::ensemble::EnsembleWeights {
            lexicon: cfg.lexicon_weight,
            transformer: cfg.transformer_weight,
            keywords: cfg.keyword_weight,
        },
    )
    .with_neutral_band(cfg.neutral_band))
}

impl Pipeline {
    /// A pipeline for `cfg`; fails with every configuration problem listed.
    pub fn new(cfg: EngineConfig) -> Result<Self, EngineError> {
        let issues = cfg.validate();
        if !issues.is_empty() {
            return Err(EngineError::Config(issues));
        }
        let (rules, specs) = cfg.compile_rules().map_err(EngineError::Config)?;
        let sentiment_model = sentiment_model(&cfg.sentiment)?;
        let mut rule_offsets = Vec::with_capacity(rules.len());
        let mut rule_state = 0;
        for r in &rules {
            rule_offsets.push(rule_state);
            rule_state += r.state_len();
        }
        let mut timeframes = cfg.timeframes.clone();
        timeframes.sort();
        let decide_on = timeframes
            .iter()
            .map(|tf| cfg.decision_timeframes().contains(tf))
            .collect();
        let i = &cfg.indicators;
        let periods = Periods {
            ema_fast: i.ema_fast,
            ema_slow: i.ema_slow,
            rsi: i.rsi,
            momentum: i.momentum,
        };
        Ok(Self {
            blocks: block::Blocks::new(&timeframes, &rules),
            timeframes,
            decide_on,
            periods,
            specs,
            rules,
            rule_offsets,
            rule_state,
            index: HashMap::default(),
            instruments: Vec::new(),
            last_hit: None,
            series: Vec::new(),
            out: Vec::with_capacity(16),
            anomalies: Vec::new(),
            out_seq: 0,
            stats: PipelineStats::default(),
            market_stats: HashMap::new(),
            sentiment_model,
            sentiment: atalaya_ml::index::SentimentIndex::new(atalaya_ml::index::IndexConfig {
                half_life_s: cfg.sentiment.half_life_hours * 3600.0,
                max_age_s: cfg.sentiment.max_age_hours * 3600.0,
                news_weight: cfg.sentiment.news_weight,
                social_weight: cfg.sentiment.social_weight,
                buzz_ratio: cfg.sentiment.buzz_ratio,
                buzz_min: cfg.sentiment.buzz_min_items,
            }),
            source: Symbol::new("engine").map_err(EngineError::Model)?,
            now: UnixNanos::MIN,
            explain: true,
            cfg,
        })
    }

    /// Whether opportunities carry the sentences that explain each factor (on by default).
    /// Off, every decision, score, factor value, weight and contribution is the same and only
    /// the `detail` texts are left empty: backtests and optimisations, which read the numbers
    /// and never the words, turn them off (formatting them is about a tenth of a default
    /// backtest's time).
    pub fn set_explanations(&mut self, on: bool) {
        self.explain = on;
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The timeframes built, shortest first.
    pub fn timeframes(&self) -> &[Timeframe] {
        &self.timeframes
    }

    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// The indicators of one series (`engine.indicators.extra`, then those the rules name):
    /// their column names and latest values (NaN while warming up). `None` for an unknown
    /// series or when there is no such indicator.
    pub fn indicators(
        &self,
        instrument: InstrumentId,
        timeframe: Timeframe,
    ) -> Option<(&[String], &[f64])> {
        let inst = *self.index.get(&instrument)? as usize;
        let k = self.timeframes.iter().position(|t| *t == timeframe)?;
        let series = self.series.get(inst * self.timeframes.len() + k)?;
        let set = series.set.as_ref()?;
        Some((set.columns(), &series.values[FIRST_INDICATOR..]))
    }

    /// Interns `instruments` in this order before any event arrives, so that bars closing
    /// at the same time are emitted in this order whether they come from trades or from
    /// stored candles (a restart that replays history then reproduces the live order).
    pub fn register(&mut self, instruments: &[InstrumentId]) {
        for id in instruments {
            self.intern(*id);
        }
    }

    /// Lets trades build bars again on every series that candles fed so far: after a restart
    /// has replayed stored bars, the live source decides again what builds them.
    pub fn forget_bar_sources(&mut self) {
        for s in &mut self.series {
            s.from_candles = false;
        }
    }

    /// The compiled trading rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The latest event time seen.
    pub fn now(&self) -> UnixNanos {
        self.now
    }

    /// Processes one envelope and returns what it produced: closed bars
    /// ([`Event::Candle`]) and opportunities ([`Event::Opportunity`]), each in an envelope
    /// from source `engine` whose `ts_event` is the bar's close time. The slice is valid
    /// until the next call.
    pub fn process(&mut self, env: &Envelope<Event>) -> &[Envelope<Event>] {
        self.collect(|p, out| p.process_into(env, out))
    }

    /// Runs `f` with the reused output buffer, emptied, as its sink; returns what it holds.
    fn collect(
        &mut self,
        f: impl FnOnce(&mut Self, &mut Vec<Envelope<Event>>),
    ) -> &[Envelope<Event>] {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        f(self, &mut out);
        self.out = out;
        &self.out
    }

    /// Processes one envelope like [`process`](Self::process), handing each output to `sink`
    /// as it is made instead of collecting them: a backtest feeds its paper trader this way,
    /// with no buffer between the two.
    pub fn process_into<S: Sink>(&mut self, env: &Envelope<Event>, sink: &mut S) {
        self.stats.events += 1;
        let ts_received = env.ts_received;
        match &env.payload {
            Event::Trade(t) => {
                self.advance(sink, env.ts_event, ts_received);
                self.on_trade(t.instrument(), env.ts_event, t.price(), t.quantity());
            }
            Event::Candle(c) => {
                self.stats.candles_in += 1;
                self.on_candle(sink, c, ts_received);
            }
            Event::Heartbeat => self.advance(sink, env.ts_event, ts_received),
            // Market statistics feed the fundamental factor of the asset's instruments.
            Event::MarketStats(m) => {
                self.market_stats.insert(m.asset(), (*m, env.ts_event));
            }
            // Posts feed it too, weighted by their engagement.
            Event::Social(post) => {
                let score = self.sentiment_model.score(post.text()).compound;
                let (likes, reposts, replies, _) = post.engagement();
                let title: String = post
                    .text()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect();
                for a in post.assets() {
                    let buzz = self.sentiment.add_and_check(
                        a.as_str(),
                        env.ts_event,
                        score,
                        atalaya_ml::index::Origin::Social(likes, reposts, replies),
                        &title,
                    );
                    if let Some(b) = buzz {
                        self.emit_buzz(sink, &b, ts_received);
                    }
                }
            }
            // Headlines feed the sentiment index of the assets they name, at the time they
            // became known (the envelope's event time).
            Event::News(n) => {
                let text = match n.summary() {
                    Some(s) => format!("{} {s}", n.title()),
                    None => n.title().to_owned(),
                };
                let score = self.sentiment_model.score(&text).compound;
                for a in n.assets() {
                    let buzz = self.sentiment.add_and_check(
                        a.as_str(),
                        env.ts_event,
                        score,
                        atalaya_ml::index::Origin::News,
                        n.title(),
                    );
                    if let Some(b) = buzz {
                        self.emit_buzz(sink, &b, ts_received);
                    }
                }
            }
            // Text, on-chain and derived events are consumed by later analysers.
            _ => {}
        }
    }

    /// A `sentiment.buzz` signal for every instrument of the asset (on the first timeframe
    /// the decision runs on), leaning with the index.
    fn emit_buzz<S: Sink>(
        &mut self,
        sink: &mut S,
        b: &atalaya_ml::index::BuzzAnomaly,
        ts_received: UnixNanos,
    ) {
        let Some(k) = self.decide_on.iter().position(|d| *d) else {
            return;
        };
        let tf = self.timeframes[k];
        let reason = format!(
            "{} is mentioned {:.1}× its usual rate ({:.0} mentions over the last {:.0} h); \
             sentiment index {:+.2}",
            b.asset, b.ratio, b.buzz, self.cfg.sentiment.half_life_hours, b.value
        );
        let ids: Vec<InstrumentId> = self
            .instruments
            .iter()
            .filter(|id| id.base().as_str() == b.asset)
            .copied()
            .collect();
        for id in ids {
            if let Ok(sig) = Signal::new(id, tf, "sentiment.buzz", b.value, reason.clone()) {
                self.stats.anomalies += 1;
                self.emit(sink, b.ts, ts_received, Event::Signal(Box::new(sig)));
            }
        }
    }

    /// Closes every bar that ends at or before `ts`, in (time, instrument, timeframe) order.
    pub fn flush_until(&mut self, ts: UnixNanos) -> &[Envelope<Event>] {
        self.collect(|p, out| p.advance(out, ts, ts))
    }

    #[inline]
    fn intern(&mut self, id: InstrumentId) -> usize {
        if let Some((last, idx)) = self.last_hit
            && last == id
        {
            return idx as usize;
        }
        self.intern_slow(id)
    }

    /// [`intern`](Self::intern) of an instrument other than the last one.
    #[cold]
    #[inline(never)]
    fn intern_slow(&mut self, id: InstrumentId) -> usize {
        let n_tf = self.timeframes.len();
        let idx = match self.index.get(&id) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.instruments.len()).unwrap_or(u32::MAX);
                self.index.insert(id, i);
                self.instruments.push(id);
                for _ in 0..n_tf {
                    self.series
                        .push(Series::new(&self.cfg, &self.specs, self.rule_state));
                }
                self.stats.instruments += 1;
                i
            }
        };
        self.last_hit = Some((id, idx));
        idx as usize
    }

    /// Closes bars whose end is at or before `ts`.
    fn advance<S: Sink>(&mut self, sink: &mut S, ts: UnixNanos, ts_received: UnixNanos) {
        if ts > self.now {
            self.now = ts;
        }
        let n_tf = self.timeframes.len();
        for s in 0..self.series.len() {
            let tf = self.timeframes[s % n_tf];
            if let Some(b) = self.series[s].building
                && b.open_time + tf.nanos() <= ts
            {
                self.close_bar(sink, s / n_tf, s % n_tf, ts_received);
            }
        }
    }

    fn on_trade(&mut self, id: InstrumentId, ts: UnixNanos, price: f64, qty: f64) {
        let inst = self.intern(id);
        self.stats.trades += 1;
        let n_tf = self.timeframes.len();
        let range = inst * n_tf..(inst + 1) * n_tf;
        // A trade older than any bar already emitted would make the timeframes disagree:
        // count it and leave every bar as it is.
        let late = self.series[range]
            .iter()
            .zip(&self.timeframes)
            .filter(|(s, _)| !s.from_candles)
            .any(|(s, tf)| {
                ts < s.closed_until || s.building.is_some_and(|b| b.open_time != tf.open_time(ts))
            });
        if late {
            self.stats.late += 1;
            return;
        }
        for k in 0..n_tf {
            let open_time = self.timeframes[k].open_time(ts);
            let s = inst * n_tf + k;
            let series = &mut self.series[s];
            if series.from_candles {
                continue;
            }
            match &mut series.building {
                Some(b) => {
                    b.ohlc[1] = b.ohlc[1].max(price);
                    b.ohlc[2] = b.ohlc[2].min(price);
                    b.ohlc[3] = price;
                    b.volume += qty;
                    b.trades += 1;
                }
                None => {
                    series.building = Some(Building {
                        open_time,
                        ohlc: [price; 4],
                        volume: qty,
                        trades: 1,
                    });
                }
            }
        }
    }

    fn on_candle<S: Sink>(&mut self, sink: &mut S, c: &Candle, ts_received: UnixNanos) {
        let inst = self.intern(c.instrument());
        let n_tf = self.timeframes.len();
        let tf_in = c.timeframe();
        // Bars of this instrument that ended by this candle's open are complete (the input
        // skipped ahead over a gap): close them first, so outputs stay in time order.
        for k in 0..n_tf {
            let end = self.series[inst * n_tf + k]
                .building
                .map(|b| b.open_time + self.timeframes[k].nanos());
            if end.is_some_and(|end| end <= c.open_time()) {
                self.close_bar(sink, inst, k, ts_received);
            }
        }
        let mut used = false;
        for k in 0..n_tf {
            let tf = self.timeframes[k];
            if !tf.is_multiple_of(tf_in) {
                continue;
            }
            used = true;
            let s = inst * n_tf + k;
            if !self.series[s].from_candles {
                // From now on the venue's bars build this series; a bar begun from trades
                // (finished bars were closed above) gives way to them.
                self.series[s].from_candles = true;
                self.series[s].building = None;
            }
            if c.open_time() < self.series[s].closed_until {
                if tf == tf_in {
                    self.stats.late += 1;
                }
                continue;
            }
            if tf == tf_in {
                // The input is the bar: it was validated on the way in, pass it through.
                self.series[s].building = None;
                self.finish_bar(sink, inst, k, *c, ts_received);
                continue;
            }
            // Inside the bar in progress its open time is known; only a new bar needs the
            // division that finds it.
            let open_time = match self.series[s].building {
                Some(b)
                    if b.open_time <= c.open_time() && c.open_time() < b.open_time + tf.nanos() =>
                {
                    b.open_time
                }
                _ => tf.open_time(c.open_time()),
            };
            if let Some(b) = self.series[s].building
                && b.open_time != open_time
            {
                // The bar in progress is over: the input skipped ahead (a gap).
                self.close_bar(sink, inst, k, ts_received);
            }
            let series = &mut self.series[s];
            match &mut series.building {
                Some(b) => {
                    b.ohlc[1] = b.ohlc[1].max(c.high());
                    b.ohlc[2] = b.ohlc[2].min(c.low());
                    b.ohlc[3] = c.close();
                    b.volume += c.volume();
                    b.trades = b.trades.saturating_add(c.trades());
                }
                None => {
                    series.building = Some(Building {
                        open_time,
                        ohlc: [c.open(), c.high(), c.low(), c.close()],
                        volume: c.volume(),
                        trades: c.trades(),
                    });
                }
            }
            if c.close_time() == open_time + tf.nanos() {
                self.close_bar(sink, inst, k, ts_received);
            }
        }
        if !used {
            self.stats.unusable_candles += 1;
        }
        if c.close_time() > self.now {
            self.now = c.close_time();
        }
    }

    #[inline]
    fn emit<S: Sink>(
        &mut self,
        sink: &mut S,
        ts_event: UnixNanos,
        ts_received: UnixNanos,
        payload: Event,
    ) {
        sink.emit(Envelope::new(
            self.out_seq,
            ts_event,
            ts_received,
            self.source,
            payload,
        ));
        self.out_seq += 1;
    }

    fn close_bar<S: Sink>(&mut self, sink: &mut S, inst: usize, k: usize, ts_received: UnixNanos) {
        let n_tf = self.timeframes.len();
        let s = inst * n_tf + k;
        let Some(b) = self.series[s].building.take() else {
            return;
        };
        let tf = self.timeframes[k];
        let id = self.instruments[inst];
        // The parts were validated on the way in, so this only fails on float pathologies
        // (an overflowing volume sum); such a bar is dropped and counted as late.
        let Ok(candle) = Candle::new(id, tf, b.open_time, b.ohlc, b.volume, b.trades) else {
            self.stats.late += 1;
            return;
        };
        self.finish_bar(sink, inst, k, candle, ts_received);
    }

    /// Emits a closed bar and runs the analysis of its series on it.
    fn finish_bar<S: Sink>(
        &mut self,
        sink: &mut S,
        inst: usize,
        k: usize,
        candle: Candle,
        ts_received: UnixNanos,
    ) {
        let s = inst * self.timeframes.len() + k;
        let bar = self.emit_bar(sink, s, &candle, ts_received);
        let mut row = std::mem::take(&mut self.series[s].values);
        self.series[s].update_values(&candle, &bar, &mut row);
        self.analyse(sink, inst, k, &candle, bar, &mut row, ts_received, true);
        self.series[s].values = row;
    }

    /// Marks series `s` closed to the end of `candle` and hands the bar to the sink; returns
    /// it as the indicators read it.
    #[inline]
    fn emit_bar<S: Sink>(
        &mut self,
        sink: &mut S,
        s: usize,
        candle: &Candle,
        ts_received: UnixNanos,
    ) -> atalaya_ta::Bar {
        self.series[s].closed_until = candle.close_time();
        self.stats.candles_out += 1;
        sink.bar(self.out_seq, ts_received, self.source, candle);
        self.out_seq += 1;
        bar_of(candle)
    }

    /// Runs the analysis of a closed bar whose `row` of values holds its fields and its
    /// indicators: anomalies, the decision and (when `rules`) the trading rules, each emitting
    /// what it finds.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn analyse<S: Sink>(
        &mut self,
        sink: &mut S,
        inst: usize,
        k: usize,
        candle: &Candle,
        bar: atalaya_ta::Bar,
        row: &mut [f64],
        ts_received: UnixNanos,
        rules: bool,
    ) {
        let s = inst * self.timeframes.len() + k;
        let tf = self.timeframes[k];
        let id = self.instruments[inst];
        let close_time = candle.close_time();
        if let Some(det) = &mut self.series[s].anomaly {
            det.update(&bar, &mut self.anomalies);
            let found = std::mem::take(&mut self.anomalies);
            row[anomaly_slot(AnomalyKind::Return)..FIRST_INDICATOR].fill(0.0);
            for a in &found {
                row[anomaly_slot(a.kind)] = if a.direction != 0.0 { a.direction } else { 1.0 };
                let name = format!("anomaly.{}", a.kind.as_str());
                if let Ok(sig) = Signal::new(id, tf, name, a.direction, a.explanation.clone()) {
                    self.stats.anomalies += 1;
                    self.emit(sink, close_time, ts_received, Event::Signal(Box::new(sig)));
                }
            }
            self.anomalies = found;
            self.anomalies.clear();
        }
        let snapshot = if self.cfg.decision.enabled {
            self.series[s].update(candle, bar)
        } else {
            None
        };
        if !self.decide_on[k] {
            return;
        }
        if let Some(snapshot) = snapshot {
            self.decide(sink, s, &snapshot, row, id, tf, close_time, ts_received);
        }
        if rules {
            self.apply_rules(sink, s, row, id, tf, close_time, ts_received);
        }
    }

    /// Scores a bar whose indicators are ready; emits an opportunity when it is one.
    #[allow(clippy::too_many_arguments)]
    fn decide<S: Sink>(
        &mut self,
        sink: &mut S,
        s: usize,
        snapshot: &Snapshot,
        row: &mut [f64],
        id: InstrumentId,
        tf: Timeframe,
        close_time: UnixNanos,
        ts_received: UnixNanos,
    ) {
        // Statistics older than two days are stale: the factor is absent, not made up.
        let stats = self
            .market_stats
            .get(&id.base())
            .filter(|(_, at)| *at <= close_time && close_time - *at <= STATS_MAX_AGE_NS)
            .map(|(m, _)| m);
        // Without news or posts (a backtest of bars alone) there is nothing to read: the
        // asset's name is not even spelt out.
        let mood = if self.sentiment.is_empty() {
            None
        } else {
            self.sentiment.read(id.base().as_str(), close_time)
        };
        let d = decide(
            snapshot,
            self.periods,
            &self.cfg.decision,
            stats,
            mood.as_ref(),
        );
        let v = d.values();
        row[BAR_FIELDS.len()..BAR_FIELDS.len() + DECISION_FIELDS.len()].copy_from_slice(&[
            d.score,
            d.confidence,
            v[0],
            v[1],
            v[2],
            v[3],
        ]);
        let series = &mut self.series[s];
        if d.kind == OpportunityKind::Hold {
            series.last_kind = OpportunityKind::Hold;
            return;
        }
        if d.confidence < self.cfg.decision.min_confidence || d.kind == series.last_kind {
            return;
        }
        series.last_kind = d.kind;
        let key = BarKey {
            id: self.stats.opportunities + 1,
            instrument: id,
            timeframe: tf,
            close_time,
        };
        let Some(raw) = plan(
            &d,
            snapshot,
            key,
            self.periods,
            &self.cfg.decision,
            self.explain,
        ) else {
            return;
        };
        if let Ok(opp) = Opportunity::new(raw) {
            self.stats.opportunities += 1;
            self.emit(
                sink,
                close_time,
                ts_received,
                Event::Opportunity(Box::new(opp)),
            );
        }
    }

    /// Evaluates every rule on the bar's `row` of values; each hit is a `rule.<name>` signal.
    #[allow(clippy::too_many_arguments)]
    fn apply_rules<S: Sink>(
        &mut self,
        sink: &mut S,
        s: usize,
        row: &[f64],
        id: InstrumentId,
        tf: Timeframe,
        close_time: UnixNanos,
        ts_received: UnixNanos,
    ) {
        for r in 0..self.rules.len() {
            let at = self.rule_offsets[r];
            let rule = &self.rules[r];
            let state = &mut self.series[s].rule_state[at..at + rule.state_len()];
            if rule.eval(row, state) {
                self.rule_hit(sink, r, row, id, tf, close_time, ts_received);
            }
        }
    }

    /// Emits the signal of rule `r`'s hit on the bar whose values are `row`.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    fn rule_hit<S: Sink>(
        &mut self,
        sink: &mut S,
        r: usize,
        row: &[f64],
        id: InstrumentId,
        tf: Timeframe,
        close_time: UnixNanos,
        ts_received: UnixNanos,
    ) {
        let rule = &self.rules[r];
        let reason = rule.explain(row);
        let direction = rule.action().direction();
        if let Ok(sig) = Signal::new(id, tf, rule.signal_name(), direction, reason) {
            self.stats.rule_hits += 1;
            self.emit(sink, close_time, ts_received, Event::Signal(Box::new(sig)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atalaya_model::{NANOS_PER_SECOND, Side, Trade};

    const MIN: i64 = 60 * NANOS_PER_SECOND;

    fn id() -> InstrumentId {
        "sim:BTC/USDT".parse().unwrap()
    }

    fn env(ts: i64, payload: Event) -> Envelope<Event> {
        Envelope::new(0, ts, ts, Symbol::new("t").unwrap(), payload)
    }

    fn trade(ts: i64, price: f64) -> Envelope<Event> {
        env(
            ts,
            Event::Trade(Trade::new(id(), ts as u64, price, 1.0, Side::Buy).unwrap()),
        )
    }

    fn candles(out: &[Envelope<Event>]) -> Vec<Candle> {
        out.iter()
            .filter_map(|e| match &e.payload {
                Event::Candle(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    fn cfg(tfs: &[Timeframe]) -> EngineConfig {
        EngineConfig {
            timeframes: tfs.to_vec(),
            ..EngineConfig::default()
        }
    }

    #[test]
    fn a_model_dir_that_cannot_be_loaded_stops_the_pipeline_with_the_reason() {
        let mut cfg = EngineConfig::default();
        cfg.sentiment.model_dir = Some(std::path::PathBuf::from("/nonexistent/model"));
        let err = Pipeline::new(cfg).unwrap_err().to_string();
        assert!(
            err.contains("sentiment") && err.contains("/nonexistent/model/config.json"),
            "{err}"
        );
    }

    #[test]
    fn a_burst_of_headlines_about_an_asset_is_a_buzz_signal_for_its_instruments() {
        let mut p = Pipeline::new(cfg(&[Timeframe::M1, Timeframe::M5])).unwrap();
        p.process(&trade(1, 10.0));
        let news = |i: u64, ts: i64, asset: &str, title: &str| {
            let n = atalaya_model::NewsItem::new(format!("n{i}"), "wire", title, ts)
                .unwrap()
                .with_assets(vec![Symbol::new(asset).unwrap()]);
            env(ts, Event::News(Box::new(n)))
        };
        let signals = |p: &mut Pipeline, e: &Envelope<Event>| -> Vec<Signal> {
            p.process(e)
                .iter()
                .filter_map(|o| match &o.payload {
                    Event::Signal(s) if s.name() == "sentiment.buzz" => Some((**s).clone()),
                    _ => None,
                })
                .collect()
        };
        let h = 60 * MIN;
        let mut found = Vec::new();
        // Thirty hours at one headline an hour, about BTC and ETH: no anomaly.
        for k in 0..30 {
            found.extend(signals(
                &mut p,
                &news(k, k as i64 * h, "BTC", "Bitcoin steady"),
            ));
            found.extend(signals(
                &mut p,
                &news(1000 + k, k as i64 * h, "ETH", "Ether steady"),
            ));
        }
        assert!(found.is_empty(), "{found:?}");
        // Then a burst about ETH (no ETH instrument here: nothing to signal) and one about BTC.
        for k in 0..30 {
            let ts = 30 * h + k as i64 * 2 * MIN;
            found.extend(signals(&mut p, &news(2000 + k, ts, "ETH", "Ether exploit")));
            found.extend(signals(
                &mut p,
                &news(3000 + k, ts, "BTC", "Bitcoin exchange hacked"),
            ));
        }
        assert_eq!(found.len(), 1, "{found:?}");
        let s = &found[0];
        assert_eq!((s.instrument(), s.timeframe()), (id(), Timeframe::M1));
        assert!(s.reason().contains("BTC is mentioned") && s.reason().contains("usual rate"));
        assert!(
            s.direction() < 0.0,
            "leaning with the (negative) index: {s:?}"
        );
    }

    #[test]
    fn trades_build_bars_that_close_on_heartbeat() {
        let mut p = Pipeline::new(cfg(&[Timeframe::M1, Timeframe::M5])).unwrap();
        assert!(p.process(&trade(1, 10.0)).is_empty());
        assert!(p.process(&trade(2, 12.0)).is_empty());
        assert!(p.process(&trade(3, 9.0)).is_empty());
        assert!(p.process(&trade(MIN - 1, 11.0)).is_empty());
        let out = candles(p.process(&env(MIN, Event::Heartbeat)));
        assert_eq!(out.len(), 1);
        let c = out[0];
        assert_eq!(
            (c.open(), c.high(), c.low(), c.close()),
            (10.0, 12.0, 9.0, 11.0)
        );
        assert_eq!(
            (c.volume(), c.trades(), c.timeframe()),
            (4.0, 4, Timeframe::M1)
        );
        // A late trade for the closed minute is counted, not merged.
        assert!(p.process(&trade(MIN - 2, 50.0)).is_empty());
        assert_eq!(p.stats().late, 1);
        p.process(&trade(2 * MIN + 5, 13.0));
        let out = candles(p.process(&env(5 * MIN, Event::Heartbeat)));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].timeframe(), Timeframe::M1);
        assert_eq!(out[1].timeframe(), Timeframe::M5);
        assert_eq!(
            (out[1].open(), out[1].high(), out[1].low(), out[1].close()),
            (10.0, 13.0, 9.0, 13.0)
        );
    }

    #[test]
    fn candles_aggregate_to_higher_timeframes_and_close_with_the_last_constituent() {
        let mut p = Pipeline::new(cfg(&[Timeframe::M1, Timeframe::M5])).unwrap();
        let mut closed = Vec::new();
        for i in 0..5 {
            let px = 100.0 + f64::from(i);
            let c = Candle::new(
                id(),
                Timeframe::M1,
                i64::from(i) * MIN,
                [px, px + 2.0, px - 1.0, px + 1.0],
                2.0,
                3,
            )
            .unwrap();
            closed.extend(candles(p.process(&env(c.close_time(), Event::Candle(c)))));
        }
        assert_eq!(closed.len(), 6);
        let m5 = closed[5];
        assert_eq!(m5.timeframe(), Timeframe::M5);
        assert_eq!(
            (m5.open(), m5.high(), m5.low(), m5.close()),
            (100.0, 106.0, 99.0, 105.0)
        );
        assert_eq!((m5.volume(), m5.trades()), (10.0, 15));
        // A duplicate 1m candle is late.
        let dup = Candle::new(id(), Timeframe::M1, 0, [1.0, 1.0, 1.0, 1.0], 1.0, 0).unwrap();
        assert!(p.process(&env(MIN, Event::Candle(dup))).is_empty());
        assert_eq!(p.stats().late, 1);
    }

    #[test]
    fn a_venues_bars_win_over_bars_built_from_its_trades() {
        // A live venue streams trades and its own 1m klines: each minute comes out once, as
        // the venue's kline, and the trades are still counted.
        let mut p = Pipeline::new(cfg(&[Timeframe::M1, Timeframe::M5])).unwrap();
        let mut closed = Vec::new();
        for i in 0..10i64 {
            closed.extend(candles(p.process(&trade(i * MIN + 5, 1.0))));
            closed.extend(candles(
                p.process(&trade(i * MIN + 30 * NANOS_PER_SECOND, 2.0)),
            ));
            let px = 100.0 + i as f64;
            let c = Candle::new(
                id(),
                Timeframe::M1,
                i * MIN,
                [px, px + 1.0, px - 1.0, px],
                7.0,
                9,
            )
            .unwrap();
            closed.extend(candles(p.process(&env(c.close_time(), Event::Candle(c)))));
        }
        let m1: Vec<&Candle> = closed
            .iter()
            .filter(|c| c.timeframe() == Timeframe::M1)
            .collect();
        assert_eq!(m1.len(), 10, "{closed:?}");
        assert!(
            m1.iter().all(|c| c.volume() == 7.0),
            "the venue's bars: {m1:?}"
        );
        let m5: Vec<&Candle> = closed
            .iter()
            .filter(|c| c.timeframe() == Timeframe::M5)
            .collect();
        assert_eq!(m5.len(), 2);
        assert_eq!(
            (m5[1].open(), m5[1].close(), m5[1].volume()),
            (105.0, 109.0, 35.0)
        );
        assert_eq!(p.stats().trades, 20);
    }

    #[test]
    fn a_gap_closes_the_partial_higher_bar() {
        let mut p = Pipeline::new(cfg(&[Timeframe::M1, Timeframe::M5])).unwrap();
        let c0 = Candle::new(id(), Timeframe::M1, 0, [1.0, 1.0, 1.0, 1.0], 1.0, 0).unwrap();
        p.process(&env(MIN, Event::Candle(c0)));
        let c7 = Candle::new(id(), Timeframe::M1, 7 * MIN, [2.0, 2.0, 2.0, 2.0], 1.0, 0).unwrap();
        let out = candles(p.process(&env(8 * MIN, Event::Candle(c7))));
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].timeframe(), out[0].open_time()), (Timeframe::M5, 0));
        assert_eq!(out[1].timeframe(), Timeframe::M1);
    }

    #[test]
    fn same_input_same_output_and_contributions_add_up() {
        let run = |explain: bool| {
            let mut p = Pipeline::new(EngineConfig::default()).unwrap();
            p.set_explanations(explain);
            let mut all = Vec::new();
            let mut px = 100.0_f64;
            for i in 0..3000i64 {
                // A zig-zag trend: 300 bars up, 300 bars down.
                let dir = if (i / 300) % 2 == 0 { 1.0 } else { -1.0 };
                let wiggle = ((i * 7919) % 13) as f64 / 13.0 - 0.5;
                let next = px * (1.0 + dir * 0.002 + 0.001 * wiggle);
                let c = Candle::new(
                    id(),
                    Timeframe::M1,
                    i * MIN,
                    [px, px.max(next) * 1.0005, px.min(next) * 0.9995, next],
                    1.0 + ((i * 31) % 7) as f64,
                    5,
                )
                .unwrap();
                px = next;
                all.extend(
                    p.process(&env(c.close_time(), Event::Candle(c)))
                        .iter()
                        .cloned(),
                );
            }
            all
        };
        let a = run(true);
        let b = run(true);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        // Without the sentences everything else is the same, byte for byte.
        fn clear_details(v: &mut serde_json::Value) -> usize {
            match v {
                serde_json::Value::Object(m) => {
                    let mut n = 0;
                    for (k, child) in m.iter_mut() {
                        if k == "detail" {
                            n += usize::from(child.as_str().is_some_and(|d| !d.is_empty()));
                            *child = serde_json::Value::String(String::new());
                        } else {
                            n += clear_details(child);
                        }
                    }
                    n
                }
                serde_json::Value::Array(a) => a.iter_mut().map(clear_details).sum(),
                _ => 0,
            }
        }
        let mut with = serde_json::to_value(&a).unwrap();
        let mut without = serde_json::to_value(run(false)).unwrap();
        assert!(clear_details(&mut with) > 0, "explained by default");
        assert_eq!(clear_details(&mut without), 0, "no sentences when off");
        assert_eq!(with, without);
        let opps: Vec<_> = a
            .iter()
            .filter_map(|e| match &e.payload {
                Event::Opportunity(o) => Some(o.clone()),
                _ => None,
            })
            .collect();
        assert!(!opps.is_empty());
        for o in &opps {
            let sum: f64 = o.factors().iter().map(|f| f.contribution).sum();
            assert!((sum - o.score()).abs() < 1e-9);
        }
        assert!(opps.iter().any(|o| o.kind().direction() > 0));
        assert!(opps.iter().any(|o| o.kind().direction() < 0));
    }
}

#[cfg(test)]
mod anomaly_tests {
    use super::*;

    #[test]
    fn a_crash_bar_is_reported_as_explained_anomaly_signals() {
        let id: InstrumentId = "sim:BTC/USDT".parse().unwrap();
        let cfg = EngineConfig {
            timeframes: vec![Timeframe::M1],
            ..EngineConfig::default()
        };
        let mut p = Pipeline::new(cfg).unwrap();
        let src = Symbol::new("t").unwrap();
        let mut px = 100.0_f64;
        let min = 60_000_000_000i64;
        let mut signals = Vec::new();
        for i in 0..400i64 {
            let wiggle = ((i * 7919) % 13) as f64 / 13.0 - 0.5;
            let next = px * (1.0 + 0.001 * wiggle);
            let (o, c) = if i == 399 { (px, px * 0.9) } else { (px, next) };
            let v = if i == 399 {
                500.0
            } else {
                10.0 + ((i * 31) % 7) as f64
            };
            let candle = Candle::new(
                id,
                Timeframe::M1,
                i * min,
                [o, o.max(c) * 1.0002, o.min(c) * 0.9998, c],
                v,
                5,
            )
            .unwrap();
            px = c;
            for out in p.process(&Envelope::new(
                0,
                candle.close_time(),
                candle.close_time(),
                src,
                Event::Candle(candle),
            )) {
                if let Event::Signal(s) = &out.payload {
                    signals.push((i, s.name().to_owned(), s.direction(), s.reason().to_owned()));
                }
            }
        }
        let last: Vec<_> = signals.iter().filter(|s| s.0 == 399).collect();
        assert!(
            last.iter().any(|s| s.1 == "anomaly.return" && s.2 == -1.0),
            "{signals:#?}"
        );
        assert!(
            last.iter().any(|s| s.1 == "anomaly.volume_spike"),
            "{signals:#?}"
        );
        assert!(last.iter().all(|s| !s.3.is_empty()));
        assert_eq!(p.stats().anomalies, signals.len() as u64);
    }
}

#[cfg(test)]
mod extra_indicator_tests {
    use super::*;
    use crate::IndicatorConfig;
    use crate::rules::{RuleAction, RuleConfig};
    use atalaya_model::NANOS_PER_SECOND;

    const MIN: i64 = 60 * NANOS_PER_SECOND;

    fn id() -> InstrumentId {
        "sim:BTC/USDT".parse().unwrap()
    }

    fn env(ts: i64, payload: Event) -> Envelope<Event> {
        Envelope::new(0, ts, ts, Symbol::new("t").unwrap(), payload)
    }

    #[test]
    fn configured_indicators_are_kept_per_series_and_readable_by_name() {
        let id: InstrumentId = "sim:ETH/USDT".parse().unwrap();
        let cfg = EngineConfig {
            timeframes: vec![Timeframe::M1, Timeframe::M5],
            indicators: IndicatorConfig {
                extra: vec!["sma:3".into(), "adx:14".into(), "cdlengulfing".into()],
                ..IndicatorConfig::default()
            },
            ..EngineConfig::default()
        };
        let mut p = Pipeline::new(cfg).unwrap();
        let src = Symbol::new("t").unwrap();
        let min = 60_000_000_000i64;
        for i in 0..10i64 {
            let px = 100.0 + i as f64;
            let c = Candle::new(
                id,
                Timeframe::M1,
                i * min,
                [px, px + 1.0, px - 1.0, px + 0.5],
                1.0,
                1,
            )
            .unwrap();
            p.process(&Envelope::new(
                0,
                c.close_time(),
                c.close_time(),
                src,
                Event::Candle(c),
            ));
        }
        let (names, values) = p.indicators(id, Timeframe::M1).unwrap();
        assert_eq!(
            names,
            &[
                "sma_3".to_owned(),
                "adx_14".to_owned(),
                "cdlengulfing".to_owned()
            ]
        );
        // Closes 107.5, 108.5, 109.5.
        assert_eq!(values[0], 108.5);
        assert!(values[1].is_nan(), "ADX 14 is still warming up");
        assert!(p.indicators(id, Timeframe::H1).is_none());
        let (_, m5) = p.indicators(id, Timeframe::M5).unwrap();
        assert!(m5[0].is_nan(), "only one 5m bar has closed");
    }

    #[test]
    fn bad_extra_indicators_are_configuration_errors() {
        let cfg = EngineConfig {
            indicators: IndicatorConfig {
                extra: vec!["rsi:0".into(), "nope".into()],
                ..IndicatorConfig::default()
            },
            ..EngineConfig::default()
        };
        let issues = cfg.validate();
        assert_eq!(
            issues
                .iter()
                .filter(|i| i.path == "indicators.extra")
                .count(),
            2,
            "{issues:?}"
        );
        assert!(Pipeline::new(cfg).is_err());
    }

    fn rule(name: &str, when: &str, action: RuleAction) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            when: when.into(),
            action,
        }
    }

    #[test]
    fn rules_fire_as_signals_with_their_reason_and_add_their_indicators() {
        let cfg = EngineConfig {
            timeframes: vec![Timeframe::M1],
            decision: crate::DecisionConfig {
                enabled: false,
                ..Default::default()
            },
            rules: vec![
                rule("up", "crosses_above(sma_2, sma_4)", RuleAction::Buy),
                rule("down", "crosses_below(sma_2, sma_4)", RuleAction::Sell),
                rule("no_score", "score > -2 or confidence >= 0", RuleAction::Buy),
            ],
            ..EngineConfig::default()
        };
        let mut p = Pipeline::new(cfg).unwrap();
        // Falls, rises, falls: closes 10 9 8 7 8 9 10 11 10 9 8 7.
        let closes = [
            10.0, 9.0, 8.0, 7.0, 8.0, 9.0, 10.0, 11.0, 10.0, 9.0, 8.0, 7.0,
        ];
        let mut hits = Vec::new();
        for (i, px) in closes.into_iter().enumerate() {
            let c = Candle::new(id(), Timeframe::M1, i as i64 * MIN, [px; 4], 1.0, 1).unwrap();
            let out = p.process(&env(c.close_time(), Event::Candle(c)));
            for e in out {
                if let Event::Signal(sig) = &e.payload {
                    hits.push((
                        i,
                        sig.name().to_owned(),
                        sig.direction(),
                        sig.reason().to_owned(),
                    ));
                }
            }
        }
        let when: Vec<(usize, &str)> = hits.iter().map(|h| (h.0, h.1.as_str())).collect();
        // sma_2 > sma_4 first at bar 5 (8.5 vs 8), below again at bar 9 (9.5 vs 10).
        assert_eq!(when, vec![(5, "rule.up"), (9, "rule.down")], "{hits:?}");
        assert_eq!(hits[0].2, 1.0);
        assert_eq!(hits[1].2, -1.0);
        assert_eq!(
            hits[0].3,
            "rule up held: crosses_above(sma_2, sma_4) (sma_2=8.5, sma_4=8)"
        );
        assert_eq!(p.stats().rule_hits, 2);
        assert_eq!(p.stats().opportunities, 0, "the decision is off");
        let (names, _) = p.indicators(id(), Timeframe::M1).unwrap();
        assert_eq!(names, &["sma_2".to_owned(), "sma_4".to_owned()]);
    }

    #[test]
    fn bad_rules_are_configuration_errors_pointing_into_the_text() {
        let cfg = EngineConfig {
            rules: vec![
                rule("ok", "rsi_14 < 30 and close > ema_200", RuleAction::Buy),
                rule("ok", "rsi_14 > 70", RuleAction::Sell),
                rule("typo", "rsi_14 < 30 and clsoe > 1", RuleAction::Buy),
                rule("", "close > 1", RuleAction::Buy),
            ],
            ..EngineConfig::default()
        };
        let issues = cfg.validate();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            ["rules[1].name", "rules[3].name", "rules[2].when"],
            "{issues:?}"
        );
        assert!(
            issues[2]
                .message
                .starts_with("at column 17: unknown name `clsoe`"),
            "{}",
            issues[2].message
        );
        assert!(Pipeline::new(cfg).is_err());
    }

    fn opportunities_with_stats(stats_age_ns: i64) -> Vec<atalaya_model::Opportunity> {
        let cfg = EngineConfig {
            timeframes: vec![Timeframe::M1],
            ..EngineConfig::default()
        };
        let mut p = Pipeline::new(cfg).unwrap();
        let start = 10 * 86_400_000_000_000i64;
        let m = atalaya_model::MarketStats::new(Symbol::new("BTC").unwrap(), 1e12, 3.0, 15.0, 2e10)
            .unwrap();
        p.process(&env(start - stats_age_ns, Event::MarketStats(m)));
        let mut out = Vec::new();
        for i in 0..300i64 {
            // A steady climb with growing volume, then a sharp leg up.
            let base = 100.0
                * (1.0
                    + 0.001 * i as f64
                    + if i > 250 {
                        0.004 * (i - 250) as f64
                    } else {
                        0.0
                    });
            let c = Candle::new(
                id(),
                Timeframe::M1,
                start + i * MIN,
                [base * 0.999, base * 1.002, base * 0.998, base],
                10.0 + i as f64,
                1,
            )
            .unwrap();
            for e in p.process(&env(c.close_time(), Event::Candle(c))) {
                if let Event::Opportunity(o) = &e.payload {
                    out.push((**o).clone());
                }
            }
        }
        out
    }

    #[test]
    fn fresh_market_statistics_feed_the_fundamental_factor_and_stale_ones_do_not() {
        let fresh = opportunities_with_stats(3_600_000_000_000);
        assert!(!fresh.is_empty(), "the climb should make an opportunity");
        for o in &fresh {
            let f = o
                .factors()
                .iter()
                .find(|f| f.name == "fundamental")
                .unwrap();
            assert!(f.available && f.value > 0.5, "{f:?}");
        }
        let stale = opportunities_with_stats(3 * 86_400_000_000_000);
        for o in &stale {
            let f = o
                .factors()
                .iter()
                .find(|f| f.name == "fundamental")
                .unwrap();
            assert!(!f.available, "{f:?}");
        }
    }
}
