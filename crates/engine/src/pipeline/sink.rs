//! [`Sink`]: where a pipeline's outputs go, and [`Bars`], the runs of closed bars it takes.

use std::ops::{Bound, RangeBounds};

use atalaya_model::{Candle, Envelope, Event, Symbol, UnixNanos};

/// Where a pipeline's outputs go, one envelope at a time, in order.
pub trait Sink {
    /// Takes one output.
    fn emit(&mut self, env: Envelope<Event>);

    /// Takes one closed bar, the output with sequence number `seq` from `source`, whose event
    /// time is the bar's close. By default it is emitted as an envelope like every other
    /// output; a sink that only reads the bar can take it without one.
    #[inline]
    fn bar(&mut self, seq: u64, ts_received: UnixNanos, source: Symbol, candle: &Candle) {
        self.emit(Envelope::new(
            seq,
            candle.close_time(),
            ts_received,
            source,
            Event::Candle(*candle),
        ));
    }

    /// Takes closed bars of one instrument and timeframe in time order, the outputs numbered
    /// from `seq` on with nothing else between them. By default each goes to
    /// [`bar`](Self::bar); a sink that can take a run at once (a backtest's trader) overrides
    /// it.
    #[inline]
    fn bars(&mut self, seq: u64, source: Symbol, bars: Bars<'_>) {
        for (k, (c, ts_received)) in bars.iter().enumerate() {
            self.bar(seq + k as u64, ts_received, source, c);
        }
    }
}

/// Closed bars in order, each with the time its input was received: the candles side by side
/// in one slice, so that a replay's loaded bars are handed over where they lie, without a copy.
#[derive(Clone, Copy, Debug)]
pub struct Bars<'a> {
    candles: &'a [Candle],
    /// `None`: each was received at its close (a replay's bars).
    received: Option<&'a [UnixNanos]>,
}

impl<'a> Bars<'a> {
    /// `candles`, each received at the time beside it in `received` (of which only as many as
    /// there are candles are read; candles beyond `received`'s end are left out).
    pub fn new(candles: &'a [Candle], received: &'a [UnixNanos]) -> Self {
        let n = candles.len().min(received.len());
        Self {
            candles: &candles[..n],
            received: Some(&received[..n]),
        }
    }

    /// `candles`, each received at its close, as a replay's bars are.
    pub fn at_close(candles: &'a [Candle]) -> Self {
        Self {
            candles,
            received: None,
        }
    }

    /// How many.
    #[inline]
    pub fn len(&self) -> usize {
        self.candles.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
    }

    /// The candles.
    #[inline]
    pub fn candles(&self) -> &'a [Candle] {
        self.candles
    }

    /// The `i`th bar and the time it was received.
    #[inline]
    pub fn get(&self, i: usize) -> Option<(&'a Candle, UnixNanos)> {
        let c = self.candles.get(i)?;
        Some((c, self.received_at(i, c)))
    }

    /// The last bar and the time it was received.
    #[inline]
    pub fn last(&self) -> Option<(&'a Candle, UnixNanos)> {
        self.get(self.len().checked_sub(1)?)
    }

    #[inline]
    fn received_at(&self, i: usize, c: &Candle) -> UnixNanos {
        match self.received {
            Some(r) => r[i],
            None => c.close_time(),
        }
    }

    /// The bars in order, each with the time it was received.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a Candle, UnixNanos)> + 'a {
        let this = *self;
        self.candles
            .iter()
            .enumerate()
            .map(move |(i, c)| (c, this.received_at(i, c)))
    }

    /// The bars in `range`, as slicing would give them (it panics, as slicing does, outside
    /// the bars).
    #[inline]
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Self {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => self.len(),
        };
        Self {
            candles: &self.candles[from..to],
            received: self.received.map(|r| &r[from..to]),
        }
    }
}

impl Sink for Vec<Envelope<Event>> {
    #[inline]
    fn emit(&mut self, env: Envelope<Event>) {
        self.push(env);
    }
}
