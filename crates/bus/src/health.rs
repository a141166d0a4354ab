//! Shared, lock-light health of the running agent: one entry per source plus the engine's
//! counters. Sources and the engine task write; the status endpoint reads snapshots.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use atalaya_model::UnixNanos;
use serde::Serialize;

/// A source's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Created, not yet producing.
    Starting,
    /// Producing events.
    Running,
    /// Lost its connection; retrying with backoff.
    Reconnecting,
    /// Reached the end of its input (replays, a bounded simulation).
    Finished,
    /// Stopped on an error it cannot recover from.
    Failed,
}

#[derive(Debug)]
struct SourceInner {
    name: String,
    state: Mutex<SourceState>,
    events: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
    last_event: AtomicI64,
    last_error: Mutex<Option<String>>,
    /// Wall time of the last batch of events, the events-per-second estimate, and the lag of
    /// the last event (wall time received minus event time).
    flow: Mutex<(UnixNanos, f64, i64)>,
    /// The venue's clock minus ours in ms, `i64::MIN` while unknown.
    skew_ms: AtomicI64,
}

/// A source's write handle on its own health entry.
#[derive(Clone, Debug)]
pub struct SourceHandle(Arc<SourceInner>);

impl SourceHandle {
    /// Sets the state.
    pub fn set_state(&self, s: SourceState) {
        if let Ok(mut g) = self.0.state.lock() {
            *g = s;
        }
    }

    /// Counts `n` events, the last with event time `ts_event`.
    pub fn record_events(&self, n: u64, ts_event: UnixNanos) {
        self.0.events.fetch_add(n, Ordering::Relaxed);
        self.0.last_event.fetch_max(ts_event, Ordering::Relaxed);
        let now = atalaya_model::Clock::now(&atalaya_model::LiveClock);
        if let Ok(mut f) = self.0.flow.lock() {
            let (last, rate, _) = *f;
            // An exponentially weighted rate over the gaps between batches (about 10 batches).
            let rate = if last > 0 && now > last {
                let inst = n as f64 / ((now - last) as f64 / 1e9);
                if rate == 0.0 {
                    inst
                } else {
                    0.9 * rate + 0.1 * inst
                }
            } else {
                rate
            };
            // Lag against the venue's clock when its offset is known.
            let skew = self.0.skew_ms.load(Ordering::Relaxed);
            let skew_ns = if skew == i64::MIN {
                0
            } else {
                skew * 1_000_000
            };
            *f = (now, rate, now + skew_ns - ts_event);
        }
    }

    /// Counts an error and keeps its message as the last error.
    pub fn record_error(&self, message: impl Into<String>) {
        self.0.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut g) = self.0.last_error.lock() {
            *g = Some(message.into());
        }
    }

    /// Records the venue's clock offset (its clock minus ours) in milliseconds.
    pub fn set_clock_skew_ms(&self, ms: i64) {
        self.0
            .skew_ms
            .store(ms.max(i64::MIN + 1), Ordering::Relaxed);
    }

    /// Counts a reconnect and moves to [`SourceState::Reconnecting`].
    pub fn record_reconnect(&self) {
        self.0.reconnects.fetch_add(1, Ordering::Relaxed);
        self.set_state(SourceState::Reconnecting);
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

/// One source's health, as the status endpoint shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceStatus {
    /// Name.
    pub name: String,
    /// State.
    pub state: SourceState,
    /// Events produced.
    pub events: u64,
    /// Errors seen (malformed input, failed requests …).
    pub errors: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Event time of the last event, nanoseconds UTC.
    pub last_event_ts: Option<UnixNanos>,
    /// The last error's message.
    pub last_error: Option<String>,
    /// Wall time the last events arrived.
    pub last_received_at: Option<UnixNanos>,
    /// Events per second recently (an exponentially weighted estimate).
    pub events_per_sec: f64,
    /// How late the last event arrived: wall time received minus its event time, in ms.
    pub lag_ms: Option<i64>,
    /// The venue's clock minus ours, in ms, where the source measures it.
    pub clock_skew_ms: Option<i64>,
}

/// The engine task's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EngineStatus {
    /// Envelopes processed.
    pub events: u64,
    /// Events per second over the last measuring interval.
    pub events_per_sec: f64,
    /// Bars closed.
    pub candles: u64,
    /// Opportunities emitted.
    pub opportunities: u64,
    /// Late or duplicate inputs skipped.
    pub late: u64,
    /// Event time of the last processed envelope.
    pub last_event_ts: Option<UnixNanos>,
}

/// One open paper position.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PositionStatus {
    /// `venue:BASE/QUOTE`.
    pub instrument: String,
    /// Quantity, a decimal as text.
    pub quantity: String,
    /// Entry fill price, a decimal as text.
    pub entry_price: String,
}

/// The live paper portfolio.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PortfolioStatus {
    /// Cash, a decimal as text.
    pub cash: String,
    /// Cash plus positions at their last close.
    pub equity: f64,
    /// Value of the open positions.
    pub exposure: f64,
    /// Closed trades so far.
    pub closed_trades: u64,
    /// Entries the risk manager refused.
    pub refused: u64,
    /// Open positions.
    pub positions: Vec<PositionStatus>,
    /// Event time of the last valuation.
    pub as_of: Option<UnixNanos>,
}

/// The registry: every source's entry, the engine's counters and the paper portfolio.
#[derive(Debug, Default)]
pub struct Health {
    sources: RwLock<BTreeMap<String, SourceHandle>>,
    engine: Mutex<EngineStatus>,
    portfolio: Mutex<PortfolioStatus>,
}

impl Health {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers (or returns the existing) entry for `name`.
    pub fn register(&self, name: &str) -> SourceHandle {
        let mk = || {
            SourceHandle(Arc::new(SourceInner {
                name: name.to_owned(),
                state: Mutex::new(SourceState::Starting),
                events: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                reconnects: AtomicU64::new(0),
                last_event: AtomicI64::new(i64::MIN),
                last_error: Mutex::new(None),
                flow: Mutex::new((0, 0.0, 0)),
                skew_ms: AtomicI64::new(i64::MIN),
            }))
        };
        match self.sources.write() {
            Ok(mut g) => g.entry(name.to_owned()).or_insert_with(mk).clone(),
            Err(_) => mk(),
        }
    }

    /// Replaces the engine's counters.
    pub fn set_engine(&self, s: EngineStatus) {
        if let Ok(mut g) = self.engine.lock() {
            *g = s;
        }
    }

    /// Replaces the paper portfolio's status.
    pub fn set_portfolio(&self, p: PortfolioStatus) {
        if let Ok(mut g) = self.portfolio.lock() {
            *g = p;
        }
    }

    /// The paper portfolio's status.
    pub fn portfolio(&self) -> PortfolioStatus {
        self.portfolio.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The engine's counters.
    pub fn engine(&self) -> EngineStatus {
        self.engine.lock().map(|g| *g).unwrap_or_default()
    }

    /// Every source's status, by name.
    pub fn sources(&self) -> Vec<SourceStatus> {
        let Ok(g) = self.sources.read() else {
            return Vec::new();
        };
        g.values()
            .map(|h| {
                let i = &h.0;
                let last = i.last_event.load(Ordering::Relaxed);
                let flow = i.flow.lock().ok().map(|f| *f);
                SourceStatus {
                    name: i.name.clone(),
                    state: i.state.lock().map(|s| *s).unwrap_or(SourceState::Failed),
                    events: i.events.load(Ordering::Relaxed),
                    errors: i.errors.load(Ordering::Relaxed),
                    reconnects: i.reconnects.load(Ordering::Relaxed),
                    last_event_ts: (last != i64::MIN).then_some(last),
                    last_error: i.last_error.lock().ok().and_then(|e| e.clone()),
                    last_received_at: flow.map(|f| f.0).filter(|t| *t > 0),
                    events_per_sec: flow.map_or(0.0, |f| f.1),
                    lag_ms: flow.filter(|f| f.0 > 0).map(|f| f.2 / 1_000_000),
                    clock_skew_ms: Some(i.skew_ms.load(Ordering::Relaxed))
                        .filter(|s| *s != i64::MIN),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_report_what_they_recorded() {
        let h = Health::new();
        let s = h.register("sim");
        s.set_state(SourceState::Running);
        s.record_events(3, 42);
        s.record_error("bad row");
        s.record_reconnect();
        let snap = &h.sources()[0];
        assert_eq!(snap.name, "sim");
        assert_eq!((snap.events, snap.errors, snap.reconnects), (3, 1, 1));
        assert_eq!(snap.state, SourceState::Reconnecting);
        assert_eq!(snap.last_event_ts, Some(42));
        assert_eq!(snap.last_error.as_deref(), Some("bad row"));
        assert_eq!(h.register("sim").name(), "sim");
        assert_eq!(h.sources().len(), 1);
    }
}

#[cfg(test)]
mod flow_tests {
    use super::*;

    #[test]
    fn rate_and_lag_of_a_source() {
        let h = Health::new();
        let s = h.register("binance");
        assert_eq!(h.sources()[0].lag_ms, None);
        assert_eq!(h.sources()[0].events_per_sec, 0.0);
        let now = atalaya_model::Clock::now(&atalaya_model::LiveClock);
        s.record_events(10, now - 250_000_000);
        std::thread::sleep(std::time::Duration::from_millis(100));
        s.record_events(10, now);
        let st = &h.sources()[0];
        // Ten events about 0.1 s after the first batch: of the order of 100 per second.
        assert!(
            st.events_per_sec > 20.0 && st.events_per_sec < 200.0,
            "{}",
            st.events_per_sec
        );
        // The last event was stamped at `now` and recorded about 100 ms later.
        let lag = st.lag_ms.unwrap();
        assert!((90..2_000).contains(&lag), "{lag}");
        assert!(st.last_received_at.is_some());
    }
}
