use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, UTC. The one time representation inside Atalaya.
pub type UnixNanos = i64;

/// Nanoseconds in one millisecond.
pub const NANOS_PER_MILLI: i64 = 1_000_000;
/// Nanoseconds in one second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The source of "now". Nothing in Atalaya reads the wall clock except [`LiveClock`].
///
/// Live runs hand a [`LiveClock`] to the components that need the time; replays and
/// backtests hand a [`ReplayClock`] that the replay driver advances with event time, so that
/// the same events always produce the same decisions.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in nanoseconds since the Unix epoch.
    fn now(&self) -> UnixNanos;
}

/// The wall clock (UTC).
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveClock;

impl Clock for LiveClock {
    fn now(&self) -> UnixNanos {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            // A system clock set before 1970 is not something to crash over.
            Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock driven by event time: it reads whatever the replay driver last set, and never
/// moves backwards.
#[derive(Debug, Default)]
pub struct ReplayClock {
    now: AtomicI64,
}

impl ReplayClock {
    /// A replay clock starting at `start`.
    pub fn new(start: UnixNanos) -> Self {
        Self {
            now: AtomicI64::new(start),
        }
    }

    /// Moves the clock forward to `ts`; an earlier `ts` is ignored (time never runs back).
    pub fn advance_to(&self, ts: UnixNanos) {
        self.now.fetch_max(ts, Ordering::AcqRel);
    }
}

impl Clock for ReplayClock {
    fn now(&self) -> UnixNanos {
        self.now.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_clock_never_moves_back() {
        let c = ReplayClock::new(10);
        c.advance_to(20);
        c.advance_to(15);
        assert_eq!(c.now(), 20);
    }

    #[test]
    fn live_clock_is_after_2020() {
        assert!(LiveClock.now() > 1_577_836_800 * NANOS_PER_SECOND);
    }
}
