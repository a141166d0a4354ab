//! Runs of closed bars of one series, analysed a block at a time.
//!
//! A backtest hands the pipeline long runs of venue bars of one instrument and timeframe.
//! Bar by bar, every bar pays for the indicator set's dynamic calls and waits on each
//! indicator's arithmetic before its rules can be read. Over a block, each indicator runs
//! in one loop over the block's bars (the same updates in the same order, so the same
//! values), and rules that read only bar fields and indicators are evaluated over the block
//! before its bars are analysed; the bars are then emitted and analysed one by one exactly
//! as [`Pipeline::process_into`] would, so the outputs and counters are the same.

use atalaya_model::{Candle, InstrumentId, Timeframe};
use atalaya_ta::Bar;

use super::series::{bar_fields, bar_of, fill_row};
use super::{Bars, Pipeline, Sink};
use crate::rules::{BAR_FIELDS, FIRST_INDICATOR, Rule};

/// Blocks hold at most this many bars, so their rows of values stay in the core's caches.
const MAX_BLOCK: usize = 256;

/// Shorter runs go bar by bar: setting up a block would cost about what it saves.
const MIN_BLOCK: usize = 4;

/// What block processing knows of the configuration, and its reused buffers.
#[derive(Debug, Default)]
pub(super) struct Blocks {
    /// Per timeframe: no other configured timeframe is built from its bars, so a bar of it
    /// touches its own series only.
    solo: Vec<bool>,
    /// The rules read only bar fields and indicators, never the decision's or the
    /// anomalies' slots (written bar by bar), so they can run over a block ahead of its
    /// bars' analysis.
    rules_ahead: bool,
    rows: Vec<f64>,
    bars: Vec<Bar>,
    ts: Vec<i64>,
    /// Rule hits found ahead: (bar in the block, rule), in that order.
    hits: Vec<(u32, u32)>,
}

impl Blocks {
    pub(super) fn new(timeframes: &[Timeframe], rules: &[Rule]) -> Self {
        let solo = timeframes
            .iter()
            .enumerate()
            .map(|(k, tf)| {
                timeframes
                    .iter()
                    .enumerate()
                    .all(|(j, t)| j == k || !t.is_multiple_of(*tf))
            })
            .collect();
        let analysis = BAR_FIELDS.len() as u32..FIRST_INDICATOR as u32;
        let rules_ahead = rules
            .iter()
            .all(|r| r.names().iter().all(|(_, slot)| !analysis.contains(slot)));
        Self {
            solo,
            rules_ahead,
            ..Self::default()
        }
    }
}

impl Pipeline {
    /// Processes closed bars from a venue, each with the time it was received, exactly as
    /// [`process_into`](Self::process_into) would take them one envelope at a time: the same
    /// outputs in the same order, the same counters and the same state afterwards. Runs of
    /// consecutive bars of one instrument and timeframe (one that no other configured
    /// timeframe is built from) are analysed a block at a time, which is what makes a
    /// backtest over history fast; anything else goes bar by bar.
    pub fn process_candles_into<S: Sink>(&mut self, candles: Bars<'_>, sink: &mut S) {
        let mut i = 0;
        while let Some((c, ts_received)) = candles.get(i) {
            match self.block(&candles.candles()[i..]) {
                Some((inst, k, n)) if n >= MIN_BLOCK => {
                    self.run_block(sink, inst, k, candles.slice(i..i + n));
                    i += n;
                }
                _ => {
                    self.stats.events += 1;
                    self.stats.candles_in += 1;
                    self.on_candle(sink, c, ts_received);
                    i += 1;
                }
            }
        }
    }

    /// The series a block starting with `first` would feed: (instrument, timeframe), when
    /// its bars go straight to that series alone.
    fn block_series(&mut self, first: &Candle) -> Option<(usize, usize)> {
        let tf = first.timeframe();
        let k = self.timeframes.iter().position(|t| *t == tf)?;
        if !self.blocks.solo[k] {
            return None;
        }
        let inst = self.intern(first.instrument());
        let n_tf = self.timeframes.len();
        let series = &self.series[inst * n_tf..(inst + 1) * n_tf];
        // The venue's bars already build the series (the first one switches it over, bar by
        // bar), nothing is being built from trades, and the bar is not late.
        let ready = series[k].from_candles
            && series.iter().all(|s| s.building.is_none())
            && first.open_time() >= series[k].closed_until;
        ready.then_some((inst, k))
    }

    /// The block `candles` start with: the series it feeds (instrument, timeframe) and how
    /// many of them, from the first, are consecutive bars of it in time order; `None` when the
    /// first cannot start a block.
    fn block(&mut self, candles: &[Candle]) -> Option<(usize, usize, usize)> {
        let first = candles.first()?;
        let (inst, k) = self.block_series(first)?;
        let (id, tf) = (first.instrument(), first.timeframe());
        let mut end = first.close_time();
        let mut n = 1;
        for c in &candles[1..candles.len().min(MAX_BLOCK)] {
            if c.instrument() != id || c.timeframe() != tf || c.open_time() < end {
                break;
            }
            end = c.close_time();
            n += 1;
        }
        Some((inst, k, n))
    }

    /// Hands a run of closed bars to the sink, numbered in order.
    #[inline]
    fn emit_bars<S: Sink>(&mut self, sink: &mut S, bars: Bars<'_>) {
        if !bars.is_empty() {
            sink.bars(self.out_seq, self.source, bars);
            self.out_seq += bars.len() as u64;
        }
    }

    /// Analyses a block that [`block`](Self::block) found, of series (`inst`, `k`).
    fn run_block<S: Sink>(&mut self, sink: &mut S, inst: usize, k: usize, bars: Bars<'_>) {
        let candles = bars.candles();
        let s = inst * self.timeframes.len() + k;
        let (id, tf): (InstrumentId, Timeframe) = (self.instruments[inst], self.timeframes[k]);
        let mut b = std::mem::take(&mut self.blocks);
        // Rules run only on the decision's timeframes, as bar by bar.
        let ahead = b.rules_ahead && self.decide_on[k];
        // Bars with nothing left to analyse (no anomaly detector, no decision, rules done
        // ahead) are only emitted; then nothing reads the decision's and the anomalies' slots
        // of their rows either.
        let analyse = self.series[s].anomaly.is_some()
            || self.cfg.decision.enabled
            || (!ahead && self.decide_on[k] && !self.rules.is_empty());
        let w = self.series[s].values.len();
        let n = candles.len() * w;
        // Every value read from the block's rows is written below: grow the buffer, never
        // clear it.
        if b.rows.len() < n {
            b.rows.resize(n, 0.0);
        }
        let rows = &mut b.rows[..n];
        b.bars.clear();
        b.ts.clear();
        for (c, row) in candles.iter().zip(rows.chunks_exact_mut(w)) {
            if analyse {
                fill_row(c, row);
            } else {
                row[..BAR_FIELDS.len()].copy_from_slice(&bar_fields(c));
            }
            b.bars.push(bar_of(c));
            b.ts.push(c.open_time());
        }
        if let Some(set) = &mut self.series[s].set {
            set.update_block(&b.ts, &b.bars, &mut rows[FIRST_INDICATOR..], w);
        }
        b.hits.clear();
        if ahead {
            for (r, rule) in self.rules.iter().enumerate() {
                let at = self.rule_offsets[r];
                let state = &mut self.series[s].rule_state[at..at + rule.state_len()];
                let hits = &mut b.hits;
                rule.eval_rows(rows, w, state, |i| hits.push((i as u32, r as u32)));
            }
            b.hits.sort_unstable();
        }
        // What bar by bar counts per bar, counted once: nothing reads it in between.
        let count = candles.len() as u64;
        self.stats.events += count;
        self.stats.candles_in += count;
        self.stats.candles_out += count;
        if analyse {
            let mut hits = b.hits.iter().peekable();
            for (i, (((c, ts_received), row), bar)) in bars
                .iter()
                .zip(rows.chunks_exact_mut(w))
                .zip(&b.bars)
                .enumerate()
            {
                sink.bar(self.out_seq, ts_received, self.source, c);
                self.out_seq += 1;
                self.analyse(sink, inst, k, c, *bar, row, ts_received, !ahead);
                while let Some(&(_, r)) = hits.next_if(|(at, _)| *at as usize == i) {
                    self.rule_hit(sink, r as usize, row, id, tf, c.close_time(), ts_received);
                }
            }
        } else {
            // Nothing to analyse per bar: the bars go out in runs, each ended by a bar with
            // rule hits, whose signals follow it.
            let mut from = 0;
            let mut hits = b.hits.iter().peekable();
            while let Some(&&(at, _)) = hits.peek() {
                let at = at as usize;
                self.emit_bars(sink, bars.slice(from..=at));
                let Some((c, ts_received)) = bars.get(at) else {
                    break;
                };
                let row = &rows[at * w..(at + 1) * w];
                while let Some(&(_, r)) = hits.next_if(|(h, _)| *h as usize == at) {
                    self.rule_hit(sink, r as usize, row, id, tf, c.close_time(), ts_received);
                }
                from = at + 1;
            }
            self.emit_bars(sink, bars.slice(from..));
        }
        // The block's bars are in time order: the last one closes it.
        if let Some(last) = candles.last() {
            self.series[s].closed_until = last.close_time();
            self.now = self.now.max(last.close_time());
        }
        if let Some(last) = rows.chunks_exact(w).last() {
            let values = &mut self.series[s].values;
            values.copy_from_slice(last);
            if !analyse {
                values[5..FIRST_INDICATOR].fill(f64::NAN);
            }
        }
        self.blocks = b;
    }
}

#[cfg(test)]
mod tests {
    use atalaya_model::{Envelope, Event, NANOS_PER_SECOND, Side, Symbol, Trade};
    use proptest::prelude::*;

    use super::*;
    use crate::{EngineConfig, RuleAction, RuleConfig};

    const MIN: i64 = 60 * NANOS_PER_SECOND;

    fn rule(name: &str, when: &str, action: RuleAction) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            when: when.into(),
            action,
        }
    }

    /// The configurations compared: rules over indicators alone (ahead of the bars), rules
    /// reading the decision (bar by bar), several timeframes, anomalies and the decision on.
    fn configs() -> Vec<EngineConfig> {
        let mut crossover = EngineConfig {
            timeframes: vec![Timeframe::M1],
            rules: vec![
                rule("up", "crosses_above(sma_3, sma_8)", RuleAction::Buy),
                rule("down", "crosses_below(sma_3, sma_8)", RuleAction::Sell),
                rule("dip", "close > sma_8 and rsi_5 < 45", RuleAction::Buy),
            ],
            ..EngineConfig::default()
        };
        crossover.decision.enabled = false;
        crossover.anomaly.enabled = false;
        let mut reads_score = EngineConfig {
            rules: vec![
                rule(
                    "score",
                    "score > 0 and close > prev(close)",
                    RuleAction::Buy,
                ),
                rule("cross", "crosses_below(ema_4, sma_6)", RuleAction::Sell),
            ],
            ..EngineConfig::default()
        };
        reads_score.indicators.extra = vec!["atr:5".into(), "macd:3:6:2".into()];
        let ahead_with_analysis = EngineConfig {
            timeframes: vec![Timeframe::M5, Timeframe::H1],
            rules: vec![rule(
                "cross",
                "crosses_above(ema_4, sma_6)",
                RuleAction::Buy,
            )],
            ..EngineConfig::default()
        };
        vec![crossover, reads_score, ahead_with_analysis]
    }

    /// One step of a generated input: which instrument, which timeframe, how the time moves
    /// (0 next bar, 1 a gap, 2 a repeat of the last bar, 3 a bar from the past), the price
    /// move, and whether a trade or a heartbeat comes between candles.
    type Step = (usize, usize, u8, f64, u8);

    /// The envelopes of `steps`, each candle received `late` nanoseconds after its close.
    fn input(steps: &[Step], late: i64) -> Vec<Envelope<Event>> {
        let ids: [InstrumentId; 2] = [
            "sim:BTC/USDT".parse().unwrap(),
            "sim:ETH/USDT".parse().unwrap(),
        ];
        let tfs = [Timeframe::M1, Timeframe::M5, Timeframe::H1];
        let src = Symbol::new("test").unwrap();
        let mut next = [[0i64; 3]; 2];
        let mut price = [100.0f64, 50.0];
        let mut out = Vec::new();
        for (i, &(inst, tf, time, mv, extra)) in steps.iter().enumerate() {
            let t = tfs[tf];
            let at = &mut next[inst][tf];
            let open = match time {
                0 => *at,
                1 => *at + 3 * t.nanos(),
                2 => (*at - t.nanos()).max(0),
                _ => (*at - 5 * t.nanos()).max(0),
            };
            *at = (*at).max(open + t.nanos());
            price[inst] = (price[inst] * (1.0 + mv)).max(1.0);
            let p = price[inst];
            let c = Candle::new(
                ids[inst],
                t,
                open,
                [p, p * 1.01, p * 0.99, p * (1.0 + mv / 2.0)],
                1.0 + (i % 5) as f64,
                3,
            )
            .unwrap();
            out.push(Envelope::new(
                i as u64,
                c.close_time(),
                c.close_time() + late,
                src,
                Event::Candle(c),
            ));
            let ts = c.close_time();
            match extra {
                1 => out.push(Envelope::new(
                    i as u64,
                    ts,
                    ts,
                    src,
                    Event::Trade(Trade::new(ids[inst], i as u64, p, 0.5, Side::Buy).unwrap()),
                )),
                2 => out.push(Envelope::new(
                    i as u64,
                    ts + MIN,
                    ts + MIN,
                    src,
                    Event::Heartbeat,
                )),
                _ => {}
            }
        }
        out
    }

    /// Runs `input` through `process_into` one envelope at a time, or with candles gathered
    /// into chunks of `chunk` handed to `process_candles_into` with the times they were
    /// received, or, `at_close`, as bars received at their close (which the input's must be).
    fn run(
        cfg: &EngineConfig,
        input: &[Envelope<Event>],
        chunk: Option<usize>,
        at_close: bool,
    ) -> (Vec<Envelope<Event>>, Pipeline) {
        let mut p = Pipeline::new(cfg.clone()).unwrap();
        let mut out = Vec::new();
        let mut candles: Vec<Candle> = Vec::new();
        let mut received: Vec<i64> = Vec::new();
        let flush = |p: &mut Pipeline,
                     out: &mut Vec<Envelope<Event>>,
                     candles: &mut Vec<Candle>,
                     received: &mut Vec<i64>| {
            let bars = if at_close {
                assert!(
                    candles
                        .iter()
                        .zip(received.iter())
                        .all(|(c, r)| c.close_time() == *r)
                );
                Bars::at_close(candles)
            } else {
                Bars::new(candles, received)
            };
            p.process_candles_into(bars, out);
            candles.clear();
            received.clear();
        };
        for env in input {
            match (&env.payload, chunk) {
                (Event::Candle(c), Some(n)) => {
                    candles.push(*c);
                    received.push(env.ts_received);
                    if candles.len() == n {
                        flush(&mut p, &mut out, &mut candles, &mut received);
                    }
                }
                _ => {
                    flush(&mut p, &mut out, &mut candles, &mut received);
                    p.process_into(env, &mut out);
                }
            }
        }
        flush(&mut p, &mut out, &mut candles, &mut received);
        (out, p)
    }

    fn same_state(a: &Pipeline, b: &Pipeline) {
        assert_eq!(a.stats(), b.stats());
        assert_eq!(a.now(), b.now());
        assert_eq!(a.series.len(), b.series.len());
        for (x, y) in a.series.iter().zip(&b.series) {
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&x.values), bits(&y.values));
            assert_eq!(bits(&x.rule_state), bits(&y.rule_state));
            assert_eq!(x.closed_until, y.closed_until);
        }
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = (
            0usize..2,
            prop_oneof![6 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)],
            prop_oneof![20 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
            -0.02f64..0.02,
            prop_oneof![30 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        );
        // Long runs of one instrument and timeframe, as history comes, with switches.
        prop::collection::vec((step, 1usize..60), 1..12).prop_map(|runs| {
            runs.into_iter()
                .flat_map(|((inst, tf, time, mv, extra), len)| {
                    (0..len).map(move |j| {
                        let wobble = if j % 7 == 3 { -mv } else { mv };
                        (
                            inst,
                            tf,
                            if j == 0 { time } else { 0 },
                            wobble,
                            if j + 1 == len { extra } else { 0 },
                        )
                    })
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn blocks_give_what_bar_by_bar_processing_gives(steps in steps(), chunk in 1usize..300) {
            for (late, at_close) in [(7, false), (0, true)] {
                let input = input(&steps, late);
                for cfg in configs() {
                    let (want, one) = run(&cfg, &input, None, false);
                    let (got, blocks) = run(&cfg, &input, Some(chunk), at_close);
                    prop_assert_eq!(&want, &got);
                    same_state(&one, &blocks);
                }
            }
        }
    }

    #[test]
    fn a_long_run_of_one_series_is_analysed_in_blocks_with_the_same_signals() {
        let cfg = configs().remove(0);
        let steps: Vec<Step> = (0..2_000)
            .map(|i| (0, 0, 0, ((i as f64) * 0.05).sin() * 0.01, 0))
            .collect();
        let input = input(&steps, 7);
        let (want, one) = run(&cfg, &input, None, false);
        let (got, blocks) = run(&cfg, &input, Some(1_000), false);
        assert!(
            want.iter()
                .filter(|e| matches!(e.payload, Event::Signal(_)))
                .count()
                > 20
        );
        assert_eq!(want, got);
        same_state(&one, &blocks);
        // The blocks really ran: their buffer grew to the longest block.
        assert_eq!(
            blocks.blocks.rows.len(),
            MAX_BLOCK * blocks.series[0].values.len()
        );
    }
}
