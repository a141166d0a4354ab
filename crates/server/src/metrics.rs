//! `GET /metrics`: the agent's health in the Prometheus text exposition format (version
//! 0.0.4): each source's state, reconnects, errors, events, last message, lag, rate and clock
//! offset; the engine's counters; the bus's queues; the paper portfolio.
//!
//! Written by hand: the format is a few lines of text per metric, and a client library would
//! add a registry beside the [`Health`](atalaya_bus::health::Health) registry we already keep.

use std::fmt::Write as _;

use atalaya_bus::health::SourceState;

use crate::AppState;

/// Escapes a label value (`\`, `"` and newlines).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        if value.is_finite() {
            let _ = writeln!(self.0, " {value}");
        } else if value.is_nan() {
            self.0.push_str(" NaN\n");
        } else if value > 0.0 {
            self.0.push_str(" +Inf\n");
        } else {
            self.0.push_str(" -Inf\n");
        }
    }
}

/// The exposition text for `state`.
pub fn render(state: &AppState) -> String {
    let mut o = Out(String::with_capacity(4096));
    let sources = state.health.sources();
    o.family(
        "atalaya_source_up",
        "gauge",
        "1 while the source is running (connected and producing), 0 otherwise.",
    );
    for s in &sources {
        let up = f64::from(u8::from(s.state == SourceState::Running));
        o.sample("atalaya_source_up", &[("source", &s.name)], up);
    }
    o.family(
        "atalaya_source_state",
        "gauge",
        "The source's state, one series per state set to 1.",
    );
    for s in &sources {
        for (st, name) in [
            (SourceState::Starting, "starting"),
            (SourceState::Running, "running"),
            (SourceState::Reconnecting, "reconnecting"),
            (SourceState::Finished, "finished"),
            (SourceState::Failed, "failed"),
        ] {
            o.sample(
                "atalaya_source_state",
                &[("source", &s.name), ("state", name)],
                f64::from(u8::from(s.state == st)),
            );
        }
    }
    type Counter = fn(&atalaya_bus::health::SourceStatus) -> Option<f64>;
    let per_source: [(&str, &str, &str, Counter); 7] = [
        (
            "atalaya_source_events_total",
            "counter",
            "Events the source produced.",
            |s| Some(s.events as f64),
        ),
        (
            "atalaya_source_errors_total",
            "counter",
            "Errors the source met (malformed frames, failed requests, lost connections).",
            |s| Some(s.errors as f64),
        ),
        (
            "atalaya_source_reconnects_total",
            "counter",
            "Reconnects.",
            |s| Some(s.reconnects as f64),
        ),
        (
            "atalaya_source_last_event_timestamp_seconds",
            "gauge",
            "Event time of the last event.",
            |s| s.last_event_ts.map(|t| t as f64 / 1e9),
        ),
        (
            "atalaya_source_last_message_timestamp_seconds",
            "gauge",
            "Wall time the last events arrived.",
            |s| s.last_received_at.map(|t| t as f64 / 1e9),
        ),
        (
            "atalaya_source_lag_seconds",
            "gauge",
            "How late the last event arrived (against the venue's clock where known).",
            |s| s.lag_ms.map(|l| l as f64 / 1e3),
        ),
        (
            "atalaya_source_clock_skew_seconds",
            "gauge",
            "The venue's clock minus ours.",
            |s| s.clock_skew_ms.map(|l| l as f64 / 1e3),
        ),
    ];
    for (name, kind, help, f) in per_source {
        o.family(name, kind, help);
        for s in &sources {
            if let Some(v) = f(s) {
                o.sample(name, &[("source", &s.name)], v);
            }
        }
    }
    o.family(
        "atalaya_source_events_per_second",
        "gauge",
        "Recent events per second (exponentially weighted).",
    );
    for s in &sources {
        o.sample(
            "atalaya_source_events_per_second",
            &[("source", &s.name)],
            s.events_per_sec,
        );
    }
    let e = state.health.engine();
    for (name, kind, help, v) in [
        (
            "atalaya_engine_events_total",
            "counter",
            "Envelopes the engine processed.",
            e.events as f64,
        ),
        (
            "atalaya_engine_candles_total",
            "counter",
            "Bars closed.",
            e.candles as f64,
        ),
        (
            "atalaya_engine_opportunities_total",
            "counter",
            "Opportunities emitted.",
            e.opportunities as f64,
        ),
        (
            "atalaya_engine_late_total",
            "counter",
            "Late or duplicate inputs skipped.",
            e.late as f64,
        ),
        (
            "atalaya_engine_events_per_second",
            "gauge",
            "Engine throughput over the last interval.",
            e.events_per_sec,
        ),
    ] {
        o.family(name, kind, help);
        o.sample(name, &[], v);
    }
    let bus = state.bus.stats();
    o.family(
        "atalaya_bus_published_total",
        "counter",
        "Messages published per topic.",
    );
    o.sample(
        "atalaya_bus_published_total",
        &[("topic", "inbound")],
        bus.inbound_published as f64,
    );
    o.sample(
        "atalaya_bus_published_total",
        &[("topic", "outbound")],
        bus.outbound_published as f64,
    );
    let queues: Vec<_> = std::iter::once(&bus.inbound).chain(&bus.outbound).collect();
    for (name, kind, help, f) in [
        (
            "atalaya_bus_queue_depth",
            "gauge",
            "Messages waiting in a subscriber's queue.",
            (|q: &atalaya_bus::QueueStats| q.depth as f64) as fn(&atalaya_bus::QueueStats) -> f64,
        ),
        (
            "atalaya_bus_queue_capacity",
            "gauge",
            "A subscriber queue's capacity.",
            |q| q.capacity as f64,
        ),
        (
            "atalaya_bus_backpressure_total",
            "counter",
            "Times a publisher waited for room.",
            |q| q.backpressure as f64,
        ),
        (
            "atalaya_bus_lagged_total",
            "counter",
            "Messages dropped for a lossy subscriber.",
            |q| q.lagged as f64,
        ),
    ] {
        o.family(name, kind, help);
        for q in &queues {
            o.sample(name, &[("queue", &q.name)], f(q));
        }
    }
    let p = state.health.portfolio();
    o.family(
        "atalaya_paper_equity",
        "gauge",
        "Paper portfolio equity at the last bar.",
    );
    o.sample("atalaya_paper_equity", &[], p.equity);
    o.family(
        "atalaya_paper_exposure",
        "gauge",
        "Value of the open paper positions.",
    );
    o.sample("atalaya_paper_exposure", &[], p.exposure);
    o.family(
        "atalaya_paper_open_positions",
        "gauge",
        "Open paper positions.",
    );
    o.sample(
        "atalaya_paper_open_positions",
        &[],
        p.positions.len() as f64,
    );
    o.family(
        "atalaya_paper_closed_trades_total",
        "counter",
        "Closed paper trades.",
    );
    o.sample(
        "atalaya_paper_closed_trades_total",
        &[],
        p.closed_trades as f64,
    );
    o.family(
        "atalaya_uptime_seconds",
        "gauge",
        "Seconds since the agent started.",
    );
    o.sample(
        "atalaya_uptime_seconds",
        &[],
        state.started.elapsed().as_secs_f64(),
    );
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut o = Out(String::new());
        o.sample("m", &[("source", "x\"y")], f64::NAN);
        o.sample("m", &[], f64::INFINITY);
        assert_eq!(o.0, "m{source=\"x\\\"y\"} NaN\nm +Inf\n");
    }
}
