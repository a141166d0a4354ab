//! [`Sink`]: where a pipeline's outputs go.

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
    fn bars(&mut self, seq: u64, source: Symbol, bars: &Bars) {
        for (k, (c, ts_received)) in bars.iter().enumerate() {
            self.bar(seq + k as u64, *ts_received, source, c);
        }
    }
}

/// Closed bars in a run handed to [`Sink::bars`], each with the time its input was received.
pub type Bars = [(Candle, UnixNanos)];

impl Sink for Vec<Envelope<Event>> {
    #[inline]
    fn emit(&mut self, env: Envelope<Event>) {
        self.push(env);
    }
}
