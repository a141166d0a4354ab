//! System alerts: the agent watching itself. A source that fails, starts reconnecting, or goes
//! silent while it should be producing raises an alert (critical, high and high), and its
//! recovery raises a low one. Each condition is reported once, when it starts and when it ends.
//! A source that keeps recording errors while it runs (at least [`REPEATED_ERRORS`] within
//! [`ERROR_WINDOW_NS`]) raises a medium alert, at most once per window.

use std::collections::HashMap;

use atalaya_bus::health::{Health, SourceState};
use atalaya_model::{Alert, AlertPriority, UnixNanos};

/// A source's condition as the watcher last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition {
    Ok,
    Failed,
    Reconnecting,
    Silent,
}

/// Errors within [`ERROR_WINDOW_NS`] that make a "repeated errors" alert.
pub const REPEATED_ERRORS: u64 = 5;
/// The window over which errors are counted (10 minutes).
pub const ERROR_WINDOW_NS: i64 = 600 * 1_000_000_000;

/// Per-source memory between checks.
#[derive(Debug, Default)]
pub struct Watcher {
    last: HashMap<String, (Condition, u64, UnixNanos)>,
    /// Per source: the error count at the start of the current window, the window's start,
    /// and when the last "repeated errors" alert went out.
    errors: HashMap<String, (u64, UnixNanos, Option<UnixNanos>)>,
    next_id: u64,
}

impl Watcher {
    /// A watcher that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks every source at wall time `now`; a running source whose event count has not moved
    /// for `silent_after_ns` is silent. Returns the alerts for conditions that started or ended.
    pub fn check(&mut self, health: &Health, now: UnixNanos, silent_after_ns: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for s in health.sources() {
            let (base, start, alerted) = self
                .errors
                .get(&s.name)
                .copied()
                .unwrap_or((s.errors, now, None));
            let (base, start) = if now - start > ERROR_WINDOW_NS {
                (s.errors, now)
            } else {
                (base, start)
            };
            let recent = s.errors.saturating_sub(base);
            let quiet = alerted.is_some_and(|t| now - t < ERROR_WINDOW_NS);
            let mut alerted = alerted;
            if recent >= REPEATED_ERRORS && !quiet {
                alerted = Some(now);
                self.next_id += 1;
                out.push(Alert {
                    id: self.next_id,
                    opportunity_id: None,
                    instrument: None,
                    priority: AlertPriority::Medium,
                    title: format!("Source {}: repeated errors", s.name),
                    body: format!(
                        "The {} source recorded {recent} errors in the last {} min ({} in all). Last error: {}.\nSystem alert from Atalaya.",
                        s.name,
                        (now - start).max(0) / 60_000_000_000 + 1,
                        s.errors,
                        s.last_error.clone().unwrap_or_else(|| "no error recorded".into())
                    ),
                    created_at: now,
                    deliveries: Vec::new(),
                    timeframe: None,
                    short: None,
                });
            }
            self.errors.insert(s.name.clone(), (base, start, alerted));
            let (prev, prev_events, since) =
                self.last
                    .get(&s.name)
                    .copied()
                    .unwrap_or((Condition::Ok, s.events, now));
            let moved_at = if s.events != prev_events { now } else { since };
            let cond = match s.state {
                SourceState::Failed => Condition::Failed,
                SourceState::Reconnecting => Condition::Reconnecting,
                SourceState::Running if now - moved_at > silent_after_ns => Condition::Silent,
                _ => Condition::Ok,
            };
            if cond != prev {
                let error = s
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no error recorded".into());
                let (priority, title, body) = match cond {
                    Condition::Failed => (
                        AlertPriority::Critical,
                        format!("Source {} stopped", s.name),
                        format!(
                            "The {} source failed and is not producing data. Last error: {error}.",
                            s.name
                        ),
                    ),
                    Condition::Reconnecting => (
                        AlertPriority::High,
                        format!("Source {} reconnecting", s.name),
                        format!(
                            "The {} source lost its connection ({} reconnects so far). Last error: {error}.",
                            s.name, s.reconnects
                        ),
                    ),
                    Condition::Silent => (
                        AlertPriority::High,
                        format!("Source {} silent", s.name),
                        format!(
                            "The {} source has produced no event for {} s while running.",
                            s.name,
                            (now - moved_at) / 1_000_000_000
                        ),
                    ),
                    Condition::Ok => (
                        AlertPriority::Low,
                        format!("Source {} recovered", s.name),
                        format!(
                            "The {} source is producing data again ({} events so far).",
                            s.name, s.events
                        ),
                    ),
                };
                self.next_id += 1;
                out.push(Alert {
                    id: self.next_id,
                    opportunity_id: None,
                    instrument: None,
                    priority,
                    title,
                    body: format!("{body}\nSystem alert from Atalaya."),
                    created_at: now,
                    deliveries: Vec::new(),
                    timeframe: None,
                    short: None,
                });
            }
            self.last.insert(s.name.clone(), (cond, s.events, moved_at));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn conditions_are_reported_when_they_start_and_end() {
        let h = Health::new();
        let src = h.register("binance");
        src.set_state(SourceState::Running);
        src.record_events(10, 0);
        let mut w = Watcher::new();
        assert!(w.check(&h, 0, 60 * S).is_empty());
        // No new event for over a minute: silent, once.
        let a = w.check(&h, 61 * S, 60 * S);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].priority, a[0].title.as_str()),
            (AlertPriority::High, "Source binance silent")
        );
        assert!(w.check(&h, 90 * S, 60 * S).is_empty());
        // Data again: recovered.
        src.record_events(1, 0);
        assert_eq!(
            w.check(&h, 91 * S, 60 * S)[0].title,
            "Source binance recovered"
        );
        // A failure is critical and names the last error.
        src.record_error("connection refused");
        src.set_state(SourceState::Failed);
        let a = w.check(&h, 92 * S, 60 * S);
        assert_eq!(a[0].priority, AlertPriority::Critical);
        assert!(a[0].body.contains("connection refused"));
        // A finished replay is fine.
        let r = h.register("replay");
        r.set_state(SourceState::Finished);
        assert!(w.check(&h, 200 * S, 60 * S).is_empty());
    }

    #[test]
    fn repeated_errors_are_reported_once_per_window() {
        let h = Health::new();
        let src = h.register("coinbase");
        src.set_state(SourceState::Running);
        let mut w = Watcher::new();
        assert!(w.check(&h, 0, 3600 * S).is_empty());
        for _ in 0..4 {
            src.record_error("HTTP 502");
        }
        src.record_events(1, 0);
        assert!(
            w.check(&h, 10 * S, 3600 * S).is_empty(),
            "four is not yet repeated"
        );
        src.record_error("HTTP 503");
        let a = w.check(&h, 20 * S, 3600 * S);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].priority, AlertPriority::Medium);
        assert_eq!(a[0].title, "Source coinbase: repeated errors");
        assert!(a[0].body.contains("5 errors") && a[0].body.contains("HTTP 503"));
        for _ in 0..10 {
            src.record_error("HTTP 503");
        }
        assert!(w.check(&h, 30 * S, 3600 * S).is_empty(), "once per window");
        // A new window with new errors alerts again.
        assert!(
            w.check(&h, 700 * S, 3600 * S).is_empty(),
            "the window restarts"
        );
        for _ in 0..5 {
            src.record_error("timeout");
        }
        assert_eq!(w.check(&h, 710 * S, 3600 * S).len(), 1);
    }
}
