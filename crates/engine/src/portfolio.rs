//! The paper portfolio: opens and closes long positions from the pipeline's rule signals
//! and opportunities, through the risk manager, with fees, slippage and conservative
//! intrabar stops; keeps cash and P&L in [`Decimal`], an equity curve and an audit stream.
//!
//! It is synchronous and deterministic like the [`Pipeline`](crate::Pipeline) whose output it
//! consumes: live runs and backtests feed it the same envelopes.
//!
//! Money (cash, quantities, fill prices, fees, realised P&L) is exact decimal arithmetic,
//! done only when something is filled. Valuation (the equity curve, exposure, drawdown) is
//! `f64` computed on every bar from the decimal cash: it is a measurement, not a ledger, and
//! keeping decimal arithmetic off the per-bar path keeps a backtest fast.

use std::collections::VecDeque;

use atalaya_model::{Candle, Envelope, Event, InstrumentId, Timeframe, UnixNanos};
use atalaya_ta::Indicator;
use atalaya_ta::volatility::Atr;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::config::ConfigIssue;
use crate::risk::{
    Breaker, BreakerChange, RiskConfig, cap_quantity, correlation, kelly_fraction, raw_quantity,
};

pub use reason::Reason;

mod decimal;
mod reason;

/// When an order is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillAt {
    /// At the next bar's open (the default: the signal bar's close is already known when the
    /// signal fires, so filling there is optimistic).
    NextOpen,
    /// At the signal bar's close, as the peers' crossover benchmark does.
    Close,
}

/// Which pipeline outputs open and close positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntrySource {
    /// Rule signals when rules are configured, opportunities otherwise.
    Auto,
    /// `rule.*` signals: buy rules enter, sell rules exit.
    Rules,
    /// Opportunities: BUY and STRONG_BUY enter with their stop and target, SELL and
    /// STRONG_SELL exit.
    Opportunities,
}

/// The paper portfolio's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortfolioConfig {
    /// Starting cash in the quote currency.
    pub initial_cash: Decimal,
    /// Fee per fill, as a fraction of its value (0.001 = 0.1%).
    pub fee_rate: Decimal,
    /// Slippage per fill in basis points, always against the trader.
    pub slippage_bps: f64,
    /// When orders fill.
    pub fill: FillAt,
    /// What opens and closes positions.
    pub entries: EntrySource,
    /// The bars traded on: signals, opportunities and candles of other timeframes are
    /// ignored. Unset, the shortest decision timeframe.
    pub timeframe: Option<Timeframe>,
}

impl Default for PortfolioConfig {
    fn default() -> Self {
        Self {
            initial_cash: Decimal::from(10_000),
            fee_rate: Decimal::new(1, 3),
            slippage_bps: 2.0,
            fill: FillAt::NextOpen,
            entries: EntrySource::Auto,
            timeframe: None,
        }
    }
}

impl PortfolioConfig {
    /// Every problem, with paths relative to the portfolio section.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        if self.initial_cash <= Decimal::ZERO {
            out.push(ConfigIssue {
                path: "initial_cash".into(),
                message: format!("must be > 0, got {}", self.initial_cash),
            });
        }
        if self.fee_rate < Decimal::ZERO || self.fee_rate >= Decimal::ONE {
            out.push(ConfigIssue {
                path: "fee_rate".into(),
                message: format!("must lie in [0, 1), got {}", self.fee_rate),
            });
        }
        if !(self.slippage_bps.is_finite() && (0.0..1000.0).contains(&self.slippage_bps)) {
            out.push(ConfigIssue {
                path: "slippage_bps".into(),
                message: format!("must lie in [0, 1000), got {}", self.slippage_bps),
            });
        }
        out
    }
}

/// A closed round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedTrade {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Entry fill time.
    pub entry_time: UnixNanos,
    /// Exit fill time.
    pub exit_time: UnixNanos,
    /// Entry fill price, after slippage.
    pub entry_price: Decimal,
    /// Exit fill price, after slippage.
    pub exit_price: Decimal,
    /// Quantity.
    pub quantity: Decimal,
    /// Fees paid on both fills.
    pub fees: Decimal,
    /// Realised profit or loss after fees.
    pub pnl: Decimal,
    /// P&L over the entry's cost (value plus fee).
    pub return_pct: f64,
    /// Bars held.
    pub bars: u64,
    /// Why it was opened.
    pub entry_reason: String,
    /// Why it was closed.
    pub exit_reason: String,
}

/// One line of the audit stream: every approval, resize, refusal, fill and breaker change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Event time.
    pub ts: UnixNanos,
    /// The instrument, when there is one.
    pub instrument: Option<InstrumentId>,
    /// `approve`, `resize`, `refuse`, `buy`, `sell`, `breaker`.
    pub action: String,
    /// Why, with the numbers.
    pub reason: Reason,
}

/// One point of the equity curve, at a bar's close.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    /// The bar's close time.
    pub ts: UnixNanos,
    /// Cash plus positions at their last close.
    pub equity: f64,
    /// Value of the open positions.
    pub exposure: f64,
}

#[derive(Clone, Debug)]
struct Holding {
    qty: Decimal,
    qty_f: f64,
    entry_price: Decimal,
    entry_value: Decimal,
    entry_fee: Decimal,
    opened_at: UnixNanos,
    entry_bar: u64,
    stop: Option<f64>,
    target: Option<f64>,
    highest: f64,
    reason: String,
}

#[derive(Clone, Debug)]
enum Order {
    Enter {
        qty: Decimal,
        stop: Option<f64>,
        target: Option<f64>,
        reason: String,
    },
    Exit {
        reason: String,
    },
}

#[derive(Debug)]
struct Inst {
    id: InstrumentId,
    atr: Atr,
    atr_value: f64,
    last_close: f64,
    returns: VecDeque<f64>,
    bar: u64,
    cooldown_until: u64,
    holding: Option<Holding>,
    pending: Option<Order>,
}

/// Which exit a bar reached, at which level.
#[derive(Clone, Copy, Debug)]
enum Exit {
    StopGap(f64),
    TargetGap(f64),
    Stop(f64),
    Target(f64),
}

/// The paper trader: portfolio plus risk manager. Feed it every envelope the pipeline
/// emits, in order, with [`on_event`](Self::on_event).
#[derive(Debug)]
pub struct PaperTrader {
    cfg: PortfolioConfig,
    risk: RiskConfig,
    timeframe: Timeframe,
    rules: bool,
    slip: f64,
    fee_f: f64,
    cash: Decimal,
    cash_f: f64,
    insts: Vec<Inst>,
    last: usize,
    trades: Vec<ClosedTrade>,
    wins: Vec<f64>,
    losses: Vec<f64>,
    equity: Vec<EquityPoint>,
    audit: Vec<AuditEntry>,
    breaker: Breaker,
    bars: u64,
    refused: u64,
    /// Whether anything reads the ATR (stops, targets, trailing, volatility sizing).
    needs_atr: bool,
    /// Whether the correlation limit can matter (more than one position allowed).
    needs_returns: bool,
}

impl PaperTrader {
    /// A trader on `timeframe`'s bars; `rules` says whether trading rules are configured (for
    /// [`EntrySource::Auto`]).
    pub fn new(cfg: PortfolioConfig, risk: RiskConfig, timeframe: Timeframe, rules: bool) -> Self {
        let rules = match cfg.entries {
            EntrySource::Auto => rules,
            EntrySource::Rules => true,
            EntrySource::Opportunities => false,
        };
        let needs_atr = risk.stop_atr > 0.0
            || risk.target_atr > 0.0
            || risk.trailing_atr > 0.0
            || risk.sizing != crate::risk::Sizing::AllIn;
        let needs_returns = risk.max_open_positions > 1 && risk.max_correlation < 1.0;
        Self {
            needs_atr,
            needs_returns,
            slip: cfg.slippage_bps / 10_000.0,
            fee_f: cfg.fee_rate.to_f64().unwrap_or(0.0),
            cash: cfg.initial_cash,
            cash_f: cfg.initial_cash.to_f64().unwrap_or(0.0),
            cfg,
            risk,
            timeframe,
            rules,
            insts: Vec::new(),
            last: 0,
            trades: Vec::new(),
            wins: Vec::new(),
            losses: Vec::new(),
            equity: Vec::new(),
            audit: Vec::new(),
            breaker: Breaker::default(),
            bars: 0,
            refused: 0,
        }
    }

    /// The timeframe traded.
    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }

    /// Cash.
    pub fn cash(&self) -> Decimal {
        self.cash
    }

    /// Closed trades, in exit order.
    pub fn trades(&self) -> &[ClosedTrade] {
        &self.trades
    }

    /// The equity curve.
    pub fn equity(&self) -> &[EquityPoint] {
        &self.equity
    }

    /// The audit stream.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// Reserves room for `bars` more equity points.
    pub fn reserve(&mut self, bars: usize) {
        self.equity.reserve(bars);
    }

    /// The closed trades, equity curve and audit stream, taken out of the trader.
    pub fn into_parts(self) -> (Vec<ClosedTrade>, Vec<EquityPoint>, Vec<AuditEntry>) {
        (self.trades, self.equity, self.audit)
    }

    /// Entries refused by the risk manager.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Open positions: instrument, quantity, entry price.
    pub fn positions(&self) -> Vec<(InstrumentId, Decimal, Decimal)> {
        self.insts
            .iter()
            .filter_map(|i| i.holding.as_ref().map(|h| (i.id, h.qty, h.entry_price)))
            .collect()
    }

    #[inline]
    fn index(&mut self, id: InstrumentId) -> usize {
        if self.insts.get(self.last).is_some_and(|i| i.id == id) {
            return self.last;
        }
        self.index_slow(id)
    }

    /// [`index`](Self::index) of an instrument other than the last one.
    #[cold]
    #[inline(never)]
    fn index_slow(&mut self, id: InstrumentId) -> usize {
        let i = match self.insts.iter().position(|i| i.id == id) {
            Some(i) => i,
            None => {
                self.insts.push(Inst {
                    id,
                    atr: Atr::new(self.risk.atr_period),
                    atr_value: f64::NAN,
                    last_close: f64::NAN,
                    returns: VecDeque::with_capacity(self.risk.correlation_window + 1),
                    bar: 0,
                    cooldown_until: 0,
                    holding: None,
                    pending: None,
                });
                self.insts.len() - 1
            }
        };
        self.last = i;
        i
    }

    fn note(
        &mut self,
        ts: UnixNanos,
        id: Option<InstrumentId>,
        action: &str,
        reason: impl Into<Reason>,
    ) {
        self.audit.push(AuditEntry {
            ts,
            instrument: id,
            action: action.to_owned(),
            reason: reason.into(),
        });
    }

    /// Consumes one pipeline output.
    pub fn on_event(&mut self, env: &Envelope<Event>) {
        match &env.payload {
            Event::Candle(c) => self.on_candle(c),
            Event::Signal(s)
                if self.rules
                    && s.timeframe() == self.timeframe
                    && s.name().starts_with("rule.") =>
            {
                let i = self.index(s.instrument());
                if s.direction() > 0.0 {
                    self.enter(i, env.ts_event, None, None, 0.0, s.reason());
                } else if s.direction() < 0.0 {
                    self.exit_signal(i, env.ts_event, s.reason());
                }
            }
            Event::Opportunity(o) if !self.rules && o.timeframe() == self.timeframe => {
                let i = self.index(o.instrument());
                let why = format!(
                    "{} score {:+.2} confidence {:.2}",
                    o.kind(),
                    o.score(),
                    o.confidence()
                );
                match o.kind().direction() {
                    1 => self.enter(
                        i,
                        env.ts_event,
                        o.stop_loss(),
                        o.take_profit(),
                        o.risk_level(),
                        &why,
                    ),
                    -1 => self.exit_signal(i, env.ts_event, &why),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Takes one closed bar (bars of other timeframes than the traded one are ignored):
    /// fills the pending order at its open, checks stops and targets within it, marks the
    /// positions to its close. The same as [`on_event`](Self::on_event) with the bar.
    #[inline]
    pub fn on_candle(&mut self, c: &Candle) {
        if c.timeframe() == self.timeframe {
            let i = self.index(c.instrument());
            self.on_bar(i, c.close_time(), [c.open(), c.high(), c.low(), c.close()]);
        }
    }

    /// Takes closed bars in order with no other output between them: the same as
    /// [`on_candle`](Self::on_candle) with each in turn. Consecutive bars of one instrument on
    /// which nothing is due but marking the positions to their closes (no order pending, no
    /// stop or target to check, no ATR or returns kept) are marked in one loop, without the
    /// general bar's work.
    pub fn on_candles(&mut self, candles: &[Candle]) {
        let mut rest = candles;
        while let Some((c, tail)) = rest.split_first() {
            if c.timeframe() != self.timeframe {
                rest = tail;
                continue;
            }
            let id = c.instrument();
            let i = self.index(id);
            let inst = &self.insts[i];
            let quiet = !self.needs_atr
                && !self.needs_returns
                && inst.pending.is_none()
                && inst
                    .holding
                    .as_ref()
                    .is_none_or(|h| h.stop.is_none() && h.target.is_none());
            if !quiet {
                self.on_bar(i, c.close_time(), [c.open(), c.high(), c.low(), c.close()]);
                rest = tail;
                continue;
            }
            // Marking changes none of what made these bars quiet: the run lasts while the
            // instrument does. Its bars close at distinct times unless two follow with the same
            // open (one timeframe).
            let (tf, mut prev, mut distinct) = (self.timeframe, c.open_time(), true);
            let n = 1 + tail
                .iter()
                .position(|d| {
                    if d.instrument() != id || d.timeframe() != tf {
                        return true;
                    }
                    distinct &= d.open_time() != prev;
                    prev = d.open_time();
                    false
                })
                .unwrap_or(tail.len());
            self.mark_run(i, &rest[..n], distinct);
            rest = &rest[n..];
        }
    }

    /// What [`on_bar`](Self::on_bar) does over `run`, bars of instrument `i` with nothing
    /// pending, nothing that can exit and no trailing stop to move (a trailing stop needs the
    /// ATR): each bar is counted, raises the position's highest price and marks the
    /// portfolio to its close. `distinct`: no two bars of the run close at the same time.
    fn mark_run(&mut self, i: usize, run: &[Candle], distinct: bool) {
        let Some(last) = run.last() else {
            return;
        };
        let alone = self
            .insts
            .iter()
            .enumerate()
            .all(|(j, inst)| j == i || inst.holding.is_none());
        let inst = &mut self.insts[i];
        inst.bar += run.len() as u64;
        inst.last_close = last.close();
        let qty = inst.holding.as_ref().map(|h| h.qty_f);
        if let Some(h) = &mut inst.holding {
            h.highest = run.iter().fold(h.highest, |m, c| m.max(c.high()));
        }
        if !alone {
            // Other positions are marked too: the exposure is their sum, in the instruments'
            // order, at every bar.
            for c in run {
                self.insts[i].last_close = c.close();
                self.mark(c.close_time());
            }
            return;
        }
        // This instrument's position (if any) is the whole exposure, as `exposure` sums it.
        let cash = self.cash_f;
        let point = |c: &Candle| {
            let exposure = qty.map_or(0.0, |q| 0.0 + q * c.close());
            EquityPoint {
                ts: c.close_time(),
                equity: cash + exposure,
                exposure,
            }
        };
        if !distinct {
            // Bars repeating a close time replace each other's points: one at a time.
            for c in run {
                self.mark_at(point(c));
            }
            return;
        }
        let mut rest = run;
        // A bar closing with the last point (another instrument's) replaces it.
        while let Some((c, tail)) = rest.split_first()
            && self.equity.last().is_some_and(|p| p.ts == c.close_time())
        {
            self.mark_at(point(c));
            rest = tail;
        }
        // Every bar makes a new point: they go in at once, then the breaker sees them, at once
        // when they cannot move it but for its peak, else each in turn as `mark_at` counts
        // each (nothing else reads either in between).
        let from = self.equity.len();
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        self.equity.extend(rest.iter().map(|c| {
            let p = point(c);
            // Comparisons, not `f64::min`/`max`: a NaN equity is skipped either way.
            if p.equity < low {
                low = p.equity;
            }
            if p.equity > high {
                high = p.equity;
            }
            p
        }));
        if self.breaker.skip_run(&self.risk, low, high) {
            self.bars += rest.len() as u64;
            return;
        }
        for k in from..self.equity.len() {
            self.counted(self.equity[k]);
        }
    }

    fn on_bar(&mut self, i: usize, ts: UnixNanos, [open, high, low, close]: [f64; 4]) {
        let inst = &mut self.insts[i];
        inst.bar += 1;
        if let Some(order) = inst.pending.take() {
            self.fill(i, ts, order, open);
        }
        self.check_exits(i, ts, open, high, low);
        let inst = &mut self.insts[i];
        if self.needs_atr
            && let Some(a) = inst
                .atr
                .update(atalaya_ta::Bar::new(open, high, low, close, 0.0))
        {
            inst.atr_value = a;
        }
        if self.needs_returns && inst.last_close > 0.0 {
            if inst.returns.len() == self.risk.correlation_window {
                inst.returns.pop_front();
            }
            inst.returns.push_back(close / inst.last_close - 1.0);
        }
        inst.last_close = close;
        if let Some(h) = &mut inst.holding {
            h.highest = h.highest.max(high);
            if self.risk.trailing_atr > 0.0 && inst.atr_value.is_finite() {
                let trail = h.highest - self.risk.trailing_atr * inst.atr_value;
                h.stop = Some(h.stop.map_or(trail, |s| s.max(trail)));
            }
        }
        self.mark(ts);
    }

    fn exposure(&self) -> f64 {
        self.insts
            .iter()
            .filter_map(|i| i.holding.as_ref().map(|h| h.qty_f * i.last_close))
            .fold(0.0, |a, x| a + x)
    }

    #[inline]
    fn mark(&mut self, ts: UnixNanos) {
        let exposure = self.exposure();
        self.mark_at(EquityPoint {
            ts,
            equity: self.cash_f + exposure,
            exposure,
        });
    }

    /// Marks the portfolio with `point`: a new point, or the last one replaced when it has
    /// the same time (another instrument's bar).
    #[inline]
    fn mark_at(&mut self, point: EquityPoint) {
        match self.equity.last_mut() {
            Some(last) if last.ts == point.ts => *last = point,
            _ => {
                self.equity.push(point);
                self.counted(point);
            }
        }
    }

    /// A new point of the equity curve: the bar is counted and the breaker sees it.
    #[inline]
    fn counted(&mut self, point: EquityPoint) {
        self.bars += 1;
        if let Some(change) = self.breaker.update(&self.risk, self.bars, point.equity) {
            self.breaker_note(point.ts, change, point.equity);
        }
    }

    /// Writes the breaker's trip or resumption into the audit stream.
    #[cold]
    fn breaker_note(&mut self, ts: UnixNanos, change: BreakerChange, equity: f64) {
        let reason = match change {
            BreakerChange::Tripped(drawdown) => Reason::Tripped {
                drawdown,
                limit: self.risk.max_drawdown,
                bars: self.risk.breaker_bars,
            },
            BreakerChange::Resumed => Reason::Resumed { peak: equity },
        };
        self.note(ts, None, "breaker", reason);
    }

    fn equity_now(&self) -> f64 {
        self.cash_f + self.exposure()
    }

    /// Applies the risk rules to an entry request and queues or fills it.
    fn enter(
        &mut self,
        i: usize,
        ts: UnixNanos,
        stop: Option<f64>,
        target: Option<f64>,
        risk_level: f64,
        why: &str,
    ) {
        let inst = &self.insts[i];
        let id = inst.id;
        if inst.holding.is_some() || matches!(inst.pending, Some(Order::Enter { .. })) {
            return;
        }
        let price = inst.last_close;
        let atr = inst.atr_value;
        let refuse = |t: &mut Self, reason: String| {
            t.refused += 1;
            t.note(ts, Some(id), "refuse", format!("{reason}; signal: {why}"));
        };
        if self.breaker.paused() {
            return refuse(self, "the drawdown breaker is pausing new entries".into());
        }
        if inst.bar < inst.cooldown_until {
            return refuse(
                self,
                format!(
                    "cooling down after a loss for {} more bar(s)",
                    inst.cooldown_until - inst.bar
                ),
            );
        }
        let open = self
            .insts
            .iter()
            .filter(|x| x.holding.is_some() || matches!(x.pending, Some(Order::Enter { .. })))
            .count();
        if open >= self.risk.max_open_positions {
            return refuse(
                self,
                format!(
                    "{open} positions open, the maximum is {}",
                    self.risk.max_open_positions
                ),
            );
        }
        if risk_level > self.risk.max_risk_level {
            return refuse(
                self,
                format!(
                    "risk level {risk_level:.2} is above the maximum {:.2}",
                    self.risk.max_risk_level
                ),
            );
        }
        for other in self
            .insts
            .iter()
            .filter(|x| x.id != id && x.holding.is_some())
        {
            let n = self.risk.correlation_window;
            if inst.returns.len() < n || other.returns.len() < n {
                continue;
            }
            let (a, b): (Vec<f64>, Vec<f64>) = (
                inst.returns.iter().copied().collect(),
                other.returns.iter().copied().collect(),
            );
            if let Some(r) = correlation(&a, &b)
                && r > self.risk.max_correlation
            {
                let other = other.id;
                return refuse(
                    self,
                    format!(
                        "returns correlate {r:.2} with open {other} over {n} bars, above {:.2}",
                        self.risk.max_correlation
                    ),
                );
            }
        }
        if price.is_nan() || price <= 0.0 {
            return refuse(self, "no price yet".into());
        }
        let stop_dist = match stop {
            Some(s) if s < price => price - s,
            _ if self.risk.stop_atr > 0.0 && atr.is_finite() => self.risk.stop_atr * atr,
            _ => 0.0,
        };
        let equity = self.equity_now();
        let bars_per_day = 86_400e9 / self.timeframe.nanos() as f64;
        let atr_daily = atr * bars_per_day.sqrt();
        let kelly = if self.risk.sizing == crate::risk::Sizing::Kelly {
            kelly_fraction(&self.risk, &self.wins, &self.losses)
        } else {
            None
        };
        let Some(raw) = raw_quantity(&self.risk, equity, price, stop_dist, atr_daily, kelly) else {
            return refuse(
                self,
                format!(
                    "{:?} sizing needs a stop distance or an ATR (ATR warming up, or stop_atr = 0)",
                    self.risk.sizing
                )
                .to_lowercase(),
            );
        };
        let cap = cap_quantity(
            &self.risk,
            equity,
            self.exposure(),
            self.cash_f,
            price * (1.0 + self.slip),
            self.fee_f,
        );
        let qty = raw.min(cap);
        let Some(qty_d) =
            decimal::from_f64(qty).map(|q| q.round_dp_with_strategy(8, RoundingStrategy::ToZero))
        else {
            return refuse(self, format!("size {qty} is not representable"));
        };
        if qty_d <= Decimal::ZERO {
            return refuse(
                self,
                format!(
                    "size rounds to zero (sized {raw:.8}, caps allow {cap:.8}: cash {:.2}, equity {equity:.2})",
                    self.cash_f
                ),
            );
        }
        if cap < raw && self.risk.sizing != crate::risk::Sizing::AllIn {
            self.note(
                ts,
                Some(id),
                "resize",
                format!(
                    "sized {raw:.8} reduced to {cap:.8} by the exposure caps ({:.0}% per asset, {:.0}% in total) or cash",
                    self.risk.max_position_fraction * 100.0,
                    self.risk.max_total_exposure * 100.0
                ),
            );
        }
        let reason = Reason::Approve {
            sizing: self.risk.sizing,
            qty,
            price,
            equity,
            signal: why.to_owned(),
        };
        self.note(ts, Some(id), "approve", reason);
        let target = target.or_else(|| {
            (self.risk.target_atr > 0.0 && atr.is_finite())
                .then_some(price + self.risk.target_atr * atr)
        });
        let stop = stop.or_else(|| (stop_dist > 0.0).then_some(price - stop_dist));
        let order = Order::Enter {
            qty: qty_d,
            stop,
            target,
            reason: why.to_owned(),
        };
        match self.cfg.fill {
            FillAt::Close => self.fill(i, ts, order, price),
            FillAt::NextOpen => self.insts[i].pending = Some(order),
        }
    }

    fn exit_signal(&mut self, i: usize, ts: UnixNanos, why: &str) {
        let inst = &mut self.insts[i];
        if matches!(inst.pending, Some(Order::Enter { .. })) {
            // Not filled yet: cancel.
            inst.pending = None;
            let id = inst.id;
            self.note(
                ts,
                Some(id),
                "cancel",
                format!("entry cancelled before its fill: {why}"),
            );
            return;
        }
        if inst.holding.is_none() {
            return;
        }
        let order = Order::Exit {
            reason: why.to_owned(),
        };
        match self.cfg.fill {
            FillAt::Close => {
                let px = inst.last_close;
                self.fill(i, ts, order, px);
            }
            FillAt::NextOpen => inst.pending = Some(order),
        }
    }

    /// Fills `order` at `price` before slippage.
    fn fill(&mut self, i: usize, ts: UnixNanos, order: Order, price: f64) {
        match order {
            Order::Enter {
                qty,
                stop,
                target,
                reason,
            } => {
                let id = self.insts[i].id;
                let px = price * (1.0 + self.slip);
                let Some(px_d) = decimal::from_f64(px) else {
                    return self.note(
                        ts,
                        Some(id),
                        "refuse",
                        format!("price {px} is not representable"),
                    );
                };
                // A gap may make the queued size unaffordable: buy what the cash allows.
                let afford = self.cash / (px_d * (Decimal::ONE + self.cfg.fee_rate));
                let afford = afford.round_dp_with_strategy(8, RoundingStrategy::ToZero);
                if afford < qty {
                    self.note(
                        ts,
                        Some(id),
                        "resize",
                        format!("{qty} reduced to {afford}: the cash buys no more at the fill price {px_d}"),
                    );
                }
                let qty = qty.min(afford);
                if qty <= Decimal::ZERO {
                    return self.note(ts, Some(id), "refuse", "no cash left at the fill");
                }
                let value = qty * px_d;
                let fee = value * self.cfg.fee_rate;
                self.cash -= value + fee;
                self.cash_f = self.cash.to_f64().unwrap_or(0.0);
                // Stops and targets keep their distance from the actual fill.
                let shift = px - self.insts[i].last_close;
                let inst = &mut self.insts[i];
                let (stop, target) = if self.cfg.fill == FillAt::NextOpen && shift.is_finite() {
                    (stop.map(|s| s + shift), target.map(|t| t + shift))
                } else {
                    (stop, target)
                };
                inst.holding = Some(Holding {
                    qty,
                    qty_f: qty.to_f64().unwrap_or(0.0),
                    entry_price: px_d,
                    entry_value: value,
                    entry_fee: fee,
                    opened_at: ts,
                    entry_bar: inst.bar,
                    stop,
                    target,
                    highest: px,
                    reason,
                });
                let reason = Reason::Buy {
                    qty,
                    price: px_d,
                    fee,
                };
                self.note(ts, Some(id), "buy", reason);
            }
            Order::Exit { reason } => self.close(i, ts, price, &reason),
        }
    }

    /// Stop-loss and take-profit within a bar, assuming the worse when both could have hit.
    fn check_exits(&mut self, i: usize, ts: UnixNanos, open: f64, high: f64, low: f64) {
        let Some(h) = &self.insts[i].holding else {
            return;
        };
        let (stop, target) = (h.stop, h.target);
        let hit = match (stop, target) {
            (Some(s), _) if open <= s => Some(Exit::StopGap(s)),
            (_, Some(t)) if open >= t => Some(Exit::TargetGap(t)),
            (Some(s), _) if low <= s => Some(Exit::Stop(s)),
            (_, Some(t)) if high >= t => Some(Exit::Target(t)),
            _ => None,
        };
        if let Some(exit) = hit {
            self.exit_at(i, ts, exit, open, high, low);
        }
    }

    /// Closes a position whose stop or target the bar reached, at the price the rule gives.
    #[cold]
    fn exit_at(&mut self, i: usize, ts: UnixNanos, exit: Exit, open: f64, high: f64, low: f64) {
        let (px, why) = match exit {
            Exit::StopGap(s) => (open, format!("stop {s} gapped through at the open")),
            Exit::TargetGap(t) => (open, format!("target {t} gapped through at the open")),
            Exit::Stop(s) => (s, format!("stop-loss {s} hit (low {low})")),
            Exit::Target(t) => (t, format!("take-profit {t} hit (high {high})")),
        };
        self.insts[i].pending = None;
        self.close(i, ts, px, &why);
    }

    fn close(&mut self, i: usize, ts: UnixNanos, price: f64, why: &str) {
        let inst = &mut self.insts[i];
        let Some(h) = inst.holding.take() else {
            return;
        };
        let id = inst.id;
        let px = price * (1.0 - self.slip);
        let px_d = decimal::from_f64(px).unwrap_or(h.entry_price);
        let value = h.qty * px_d;
        let fee = value * self.cfg.fee_rate;
        self.cash += value - fee;
        self.cash_f = self.cash.to_f64().unwrap_or(0.0);
        let cost = h.entry_value + h.entry_fee;
        let pnl = value - fee - cost;
        let return_pct = if cost > Decimal::ZERO {
            (pnl / cost).to_f64().unwrap_or(0.0)
        } else {
            0.0
        };
        if pnl < Decimal::ZERO {
            inst.cooldown_until = inst.bar + self.risk.cooldown_bars;
            self.losses.push(return_pct);
        } else {
            self.wins.push(return_pct);
        }
        let bars = inst.bar.saturating_sub(h.entry_bar);
        self.trades.push(ClosedTrade {
            instrument: id,
            entry_time: h.opened_at,
            exit_time: ts,
            entry_price: h.entry_price,
            exit_price: px_d,
            quantity: h.qty,
            fees: h.entry_fee + fee,
            pnl,
            return_pct,
            bars,
            entry_reason: h.reason,
            exit_reason: why.to_owned(),
        });
        let reason = Reason::Sell {
            qty: h.qty,
            price: px_d,
            pnl,
            return_pct,
            why: why.to_owned(),
        };
        self.note(ts, Some(id), "sell", reason);
    }

    /// Closes every open position at its last close (the end of a backtest).
    pub fn close_all(&mut self, ts: UnixNanos, why: &str) {
        for i in 0..self.insts.len() {
            self.insts[i].pending = None;
            let px = self.insts[i].last_close;
            if self.insts[i].holding.is_some() && px > 0.0 {
                self.close(i, ts, px, why);
            }
        }
        if let Some(last) = self.equity.last_mut() {
            last.equity = self.cash_f;
            last.exposure = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::Sizing;
    use atalaya_model::{Candle, Signal, Symbol};
    use proptest::prelude::*;

    const H: i64 = 3_600_000_000_000;

    fn id() -> InstrumentId {
        "sim:BTC/USDT".parse().unwrap()
    }

    fn env(ts: i64, e: Event) -> Envelope<Event> {
        Envelope::new(0, ts, ts, Symbol::new("t").unwrap(), e)
    }

    fn bar(i: i64, ohlc: [f64; 4]) -> Envelope<Event> {
        let c = Candle::new(id(), Timeframe::H1, i * H, ohlc, 1.0, 1).unwrap();
        env(c.close_time(), Event::Candle(c))
    }

    fn signal(i: i64, dir: f64) -> Envelope<Event> {
        let s = Signal::new(id(), Timeframe::H1, "rule.t", dir, "test").unwrap();
        env((i + 1) * H, Event::Signal(Box::new(s)))
    }

    fn all_in(fill: FillAt) -> PaperTrader {
        PaperTrader::new(
            PortfolioConfig {
                slippage_bps: 0.0,
                fill,
                ..PortfolioConfig::default()
            },
            RiskConfig {
                sizing: Sizing::AllIn,
                max_position_fraction: 1.0,
                stop_atr: 0.0,
                target_atr: 0.0,
                ..RiskConfig::default()
            },
            Timeframe::H1,
            true,
        )
    }

    #[test]
    fn an_all_in_round_trip_computed_by_hand() {
        let mut t = all_in(FillAt::Close);
        for (i, c) in [100.0, 110.0, 121.0, 110.0].into_iter().enumerate() {
            let i = i as i64;
            t.on_event(&bar(i, [c, c, c, c]));
            match i {
                0 => t.on_event(&signal(i, 1.0)),
                2 => t.on_event(&signal(i, -1.0)),
                _ => {}
            }
        }
        // 10,000 / (100 × 1.001) units, sold at 121 less 0.1%.
        let want = 10_000.0 / 1.001 * 1.21 * 0.999;
        let cash = t.cash().to_f64().unwrap();
        assert!((cash - want).abs() < 1e-4, "{cash} vs {want}");
        assert_eq!(t.trades().len(), 1);
        let tr = &t.trades()[0];
        assert_eq!(tr.quantity, Decimal::new(9_990_009_990, 8));
        assert_eq!(tr.bars, 2);
        assert!((tr.pnl.to_f64().unwrap() - (want - 10_000.0)).abs() < 1e-4);
        let eq: Vec<f64> = t.equity().iter().map(|p| p.equity).collect();
        assert_eq!(eq.len(), 4);
        assert!((eq[1] - 10_000.0 / 1.001 * 1.1).abs() < 1e-3, "{eq:?}");
        assert!((eq[3] - want).abs() < 1e-4, "flat after the exit: {eq:?}");
    }

    #[test]
    fn next_open_fills_and_the_worse_exit_within_a_bar() {
        let mut t = PaperTrader::new(
            PortfolioConfig {
                slippage_bps: 0.0,
                fee_rate: Decimal::ZERO,
                ..PortfolioConfig::default()
            },
            RiskConfig {
                atr_period: 2,
                stop_atr: 1.0,
                target_atr: 1.0,
                max_position_fraction: 1.0,
                ..RiskConfig::default()
            },
            Timeframe::H1,
            true,
        );
        // ATR(2) of bars with range 2 and no gaps is 2 (ready on the third bar).
        t.on_event(&bar(0, [100.0, 101.0, 99.0, 100.0]));
        t.on_event(&signal(0, 1.0));
        t.on_event(&bar(1, [100.0, 101.0, 99.0, 100.0]));
        t.on_event(&bar(1, [100.0, 101.0, 99.0, 100.0]));
        t.on_event(&signal(1, 1.0));
        assert!(t.positions().is_empty(), "waits for the next open");
        // Opens at 102: stop 100, target 104; this bar reaches both: the stop is assumed.
        t.on_event(&bar(2, [102.0, 104.5, 99.5, 103.0]));
        assert!(t.positions().is_empty());
        let tr = &t.trades()[0];
        assert_eq!(tr.entry_price, Decimal::from(102));
        assert_eq!(tr.exit_price, Decimal::from(100));
        assert!(
            tr.exit_reason.starts_with("stop-loss 100 hit"),
            "{}",
            tr.exit_reason
        );
        // Fixed fraction: 2% of 10,000 over a stop 2 away = 100 units, capped by cash at 98.
        assert_eq!(tr.quantity, Decimal::new(9_803_921_568, 8));
        let actions: Vec<&str> = t.audit().iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["refuse", "approve", "resize", "buy", "sell"]);
        assert!(
            t.audit()[0]
                .reason
                .to_string()
                .starts_with("fixedfraction sizing needs a stop distance"),
            "{}",
            t.audit()[0].reason
        );
    }

    #[test]
    fn cooldown_after_a_loss_refuses_with_its_reason() {
        let mut t = all_in(FillAt::Close);
        t.risk.cooldown_bars = 3;
        t.on_event(&bar(0, [100.0; 4]));
        t.on_event(&signal(0, 1.0));
        t.on_event(&bar(1, [90.0; 4]));
        t.on_event(&signal(1, -1.0));
        let mut entered = Vec::new();
        for i in 2..8 {
            t.on_event(&bar(i, [90.0; 4]));
            t.on_event(&signal(i, 1.0));
            entered.push(!t.positions().is_empty());
            t.on_event(&signal(i, -1.0));
        }
        // The loss closed on the trader's bar 2: no entry on bars 3 and 4; the round trip on
        // bar 5 loses its fees, so bars 6 and 7 cool down again.
        assert_eq!(entered, [false, false, true, false, false, true]);
        let refusals: Vec<&AuditEntry> =
            t.audit().iter().filter(|a| a.action == "refuse").collect();
        assert_eq!(refusals.len(), 4);
        assert!(
            refusals[0]
                .reason
                .to_string()
                .starts_with("cooling down after a loss for 2 more bar(s)")
        );
    }

    #[test]
    fn the_breaker_pauses_entries() {
        let mut t = all_in(FillAt::Close);
        t.risk.max_drawdown = 0.1;
        t.risk.breaker_bars = 2;
        t.on_event(&bar(0, [100.0; 4]));
        t.on_event(&signal(0, 1.0));
        t.on_event(&bar(1, [80.0; 4]));
        t.on_event(&signal(1, -1.0));
        t.on_event(&bar(2, [80.0; 4]));
        t.on_event(&signal(2, 1.0));
        assert!(t.positions().is_empty());
        assert!(
            t.audit()
                .iter()
                .any(|a| a.action == "breaker" && a.reason.to_string().starts_with("drawdown 20."))
        );
        assert!(
            t.audit()
                .iter()
                .any(|a| a.action == "refuse" && a.reason.to_string().contains("breaker"))
        );
    }

    /// One step of a generated feed: an instrument (0 or 1), a run of that many bars with
    /// their moves, whether the run's first bar repeats the last bar's close time (as
    /// another instrument's bar at the same time does) and whether a bar inside the run is
    /// repeated, and the signal after the run (-1, 0 or 1).
    type Step = (usize, Vec<f64>, bool, bool, i8);

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            (
                0usize..2,
                prop::collection::vec(-0.06f64..0.06, 1..12),
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.1),
                -1i8..=1,
            ),
            1..40,
        )
    }

    /// A run of bars and the signal after it.
    type Fed = (Vec<Candle>, Option<Envelope<Event>>);

    /// The runs and signals of `steps`, two instruments' bars on one clock.
    fn feed(steps: &[Step]) -> Vec<Fed> {
        let ids: [InstrumentId; 2] = [id(), "sim:ETH/USDT".parse().unwrap()];
        let mut price = [100.0f64, 20.0];
        let mut next = 0i64;
        steps
            .iter()
            .map(|(k, moves, same_time, repeat, sig)| {
                if *same_time {
                    next = (next - 1).max(0);
                }
                let mut run = Vec::new();
                for (j, m) in moves.iter().enumerate() {
                    let o = price[*k];
                    price[*k] *= 1.0 + m;
                    let p = price[*k];
                    let ohlc = [o, o.max(p) * 1.02, o.min(p) * 0.97, p];
                    let c = Candle::new(ids[*k], Timeframe::H1, next * H, ohlc, 1.0, 1).unwrap();
                    run.push(c);
                    if *repeat && j == moves.len() / 2 {
                        run.push(c);
                    }
                    next += 1;
                }
                let at = run.last().map(|c| c.close_time()).unwrap_or(0);
                let signal = (*sig != 0).then(|| {
                    let s = Signal::new(ids[*k], Timeframe::H1, "rule.t", f64::from(*sig), "test")
                        .unwrap();
                    env(at, Event::Signal(Box::new(s)))
                });
                (run, signal)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Runs of bars give the trader the state of the same bars one at a time: quiet runs
        /// (marked in one loop, alone or beside another position, with the breaker watching)
        /// and guarded ones (stops, targets and a trailing stop: bar by bar).
        #[test]
        fn runs_of_bars_give_what_bars_one_at_a_time_give(steps in steps(), guarded in any::<bool>()) {
            let mut one = PaperTrader::new(
                PortfolioConfig { slippage_bps: 5.0, fill: FillAt::Close, ..PortfolioConfig::default() },
                RiskConfig {
                    // Quiet unless guarded: all-in sizing reads no ATR.
                    sizing: if guarded { Sizing::FixedFraction } else { Sizing::AllIn },
                    max_position_fraction: 0.5,
                    max_open_positions: 2,
                    max_correlation: 1.0,
                    stop_atr: if guarded { 1.0 } else { 0.0 },
                    target_atr: if guarded { 2.0 } else { 0.0 },
                    trailing_atr: if guarded { 1.5 } else { 0.0 },
                    max_drawdown: 0.04,
                    breaker_bars: 3,
                    cooldown_bars: 2,
                    ..RiskConfig::default()
                },
                Timeframe::H1,
                true,
            );
            let mut runs = PaperTrader::new(one.cfg.clone(), one.risk.clone(), Timeframe::H1, true);
            for (run, signal) in feed(&steps) {
                for c in &run {
                    one.on_candle(c);
                }
                runs.on_candles(&run);
                if let Some(s) = &signal {
                    one.on_event(s);
                    runs.on_event(s);
                }
            }
            prop_assert_eq!(format!("{:?}", one.equity()), format!("{:?}", runs.equity()));
            prop_assert_eq!(format!("{:?}", one.trades()), format!("{:?}", runs.trades()));
            prop_assert_eq!(format!("{:?}", one.audit()), format!("{:?}", runs.audit()));
            prop_assert_eq!(format!("{:?}", one.insts), format!("{:?}", runs.insts));
            prop_assert_eq!((one.bars, one.cash), (runs.bars, runs.cash));
        }
    }
}
