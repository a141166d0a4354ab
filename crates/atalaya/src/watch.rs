//! System alerts: the agent watching itself. A source that fails, starts reconnecting, or goes
//! silent while it should be producing raises an alert (critical, high and high), and its
//! recovery raises a low one. Each condition is reported once, when it starts and when it ends.

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

/// Per-source memory between checks.
#[derive(Debug, Default)]
pub struct Watcher {
    last: HashMap<String, (Condition, u64, UnixNanos)>,
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
}
