//! Alerts: how an opportunity becomes a message for a person, and where it goes.
//!
//! [`alert_for`] turns an [`Opportunity`] into an [`Alert`] with the full message the
//! original plan describes — type, instrument and price, a confidence bar, expected return
//! over the horizon, risk level, stop and target, the top five reasons with each factor's
//! value, weight and contribution, the supporting scores, the generation time and the
//! "not financial advice" line — and a [`priority`] from confidence and expected return.
//! [`short_text`] is the one-line form for SMS.
//!
//! [`Notifier`] is the delivery seam; [`ConsoleNotifier`] writes each alert as one readable
//! block, [`telegram::TelegramNotifier`] sends it through the Bot API (HTML, escaped) and
//! [`discord::DiscordNotifier`] to a webhook (an embed, mentions disabled); both report rate
//! limits with the provider's retry delay. [`routing`] holds the policy: channels per priority,
//! de-duplication on event time, token buckets per channel. Email, SMS, the signed webhook and
//! the persisted outbox are still to come.
//!
//! Everything here except the notifiers' I/O is synchronous and deterministic: the same
//! opportunity always gives the same text.

use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;
use atalaya_model::{Alert, AlertPriority, Opportunity, format_utc};
use serde::{Deserialize, Serialize};

pub mod chart;
pub mod discord;
pub mod email;
pub mod routing;
pub mod sms;
pub mod telegram;
pub mod webhook;

/// Delivery failures. [`AlertError::is_transient`] says whether a retry may succeed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Writing to the channel failed.
    #[error("cannot deliver to {channel}")]
    Io {
        /// The channel.
        channel: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP request failed (connection refused, time-out, unreadable answer).
    #[error("{channel}: request failed")]
    Http {
        /// The channel.
        channel: &'static str,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The provider asked us to slow down; retry after the given delay.
    #[error("{channel}: rate limited, retry after {retry_after_ms} ms")]
    RateLimited {
        /// The channel.
        channel: &'static str,
        /// How long to wait, in milliseconds.
        retry_after_ms: u64,
    },
    /// The provider refused the message (bad token, unknown chat, invalid body).
    #[error("{channel}: rejected with HTTP {status}: {message}")]
    Rejected {
        /// The channel.
        channel: &'static str,
        /// HTTP status.
        status: u16,
        /// The provider's explanation.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The SMTP server answered with an error: 5xx replies are permanent, 4xx transient.
    #[error("email: SMTP {code}: {message}")]
    Smtp {
        /// The reply code (0 when there was none).
        code: u16,
        /// The server's text.
        message: String,
        /// A 5xx reply: retrying will not help.
        permanent: bool,
    },
}

impl AlertError {
    /// Whether retrying later may succeed: network failures, rate limits and server errors.
    pub fn is_transient(&self) -> bool {
        match self {
            AlertError::Http { .. } | AlertError::RateLimited { .. } | AlertError::Io { .. } => {
                true
            }
            AlertError::Rejected { status, .. } => *status >= 500,
            AlertError::Client(_) => false,
            AlertError::Smtp { permanent, .. } => !permanent,
        }
    }
}

/// Sends `req` and classifies the answer, as every plain-HTTP notifier needs: a 2xx is
/// delivered; a 429 is [`AlertError::RateLimited`] with the delay from the JSON body's
/// `retry_after` (Discord) or else the `Retry-After` header, else one second; anything else is
/// [`AlertError::Rejected`] with the message `describe` reads from the body text.
pub(crate) async fn deliver(
    channel: &'static str,
    req: reqwest::RequestBuilder,
    describe: impl FnOnce(&str) -> String,
) -> Result<(), AlertError> {
    deliver_with_headers(channel, req, describe)
        .await
        .map(|_| ())
}

/// [`deliver`], returning the answer's headers on success (Discord's rate-limit bucket).
pub(crate) async fn deliver_with_headers(
    channel: &'static str,
    req: reqwest::RequestBuilder,
    describe: impl FnOnce(&str) -> String,
) -> Result<reqwest::header::HeaderMap, AlertError> {
    let res = req
        .send()
        .await
        // Webhook URLs (Discord's) are secrets: errors never carry the URL.
        .map_err(|source| AlertError::Http {
            channel,
            source: source.without_url(),
        })?;
    let status = res.status();
    if status.is_success() {
        return Ok(res.headers().clone());
    }
    let header = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok());
    let text = res.text().await.unwrap_or_default();
    if status.as_u16() == 429 {
        let body = serde_json::from_str::<serde_json::Value>(&text).ok();
        let secs = body
            .and_then(|v| v["retry_after"].as_f64())
            .or(header)
            .unwrap_or(1.0);
        return Err(AlertError::RateLimited {
            channel,
            retry_after_ms: (secs * 1000.0).ceil() as u64,
        });
    }
    Err(AlertError::Rejected {
        channel,
        status: status.as_u16(),
        message: describe(&text),
    })
}

/// The shared HTTP client: rustls with the ring provider (a lean build; no aws-lc), a
/// 10-second timeout, and an identifying User-Agent.
pub(crate) fn http_client() -> Result<reqwest::Client, AlertError> {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("atalaya/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(AlertError::Client)
}

/// The original plan's priority rule: critical at confidence ≥ 0.9 and expected return
/// ≥ 15%; high at ≥ 0.8 and ≥ 10%; medium at ≥ 0.7 and ≥ 5%; low otherwise. Expected
/// return is compared in absolute value, so sells rank like buys.
pub fn priority(o: &Opportunity) -> AlertPriority {
    let (c, r) = (o.confidence(), o.expected_return().abs());
    if c >= 0.9 && r >= 0.15 {
        AlertPriority::Critical
    } else if c >= 0.8 && r >= 0.10 {
        AlertPriority::High
    } else if c >= 0.7 && r >= 0.05 {
        AlertPriority::Medium
    } else {
        AlertPriority::Low
    }
}

fn bar(fraction: f64) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * 10.0).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(10 - filled))
}

fn risk_word(r: f64) -> &'static str {
    match r {
        r if r < 0.2 => "low",
        r if r < 0.4 => "moderate",
        r if r < 0.7 => "high",
        _ => "very high",
    }
}

fn horizon(ns: i64) -> String {
    let mins = ns / 60_000_000_000;
    match mins {
        m if m % 1440 == 0 => format!("{}d", m / 1440),
        m if m % 60 == 0 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

/// Formats a price with a sensible number of significant digits.
fn price(p: f64) -> String {
    let digits = if p >= 1000.0 {
        2
    } else if p >= 1.0 {
        4
    } else {
        6
    };
    format!("{p:.digits$}")
}

/// The full, explained message for an opportunity.
pub fn full_text(o: &Opportunity) -> String {
    let mut s = format!(
        "{} {} ({}) @ {}\n",
        o.kind(),
        o.instrument(),
        o.timeframe(),
        price(o.price())
    );
    s.push_str(&format!(
        "Confidence: {} {:.0}%\n",
        bar(o.confidence()),
        o.confidence() * 100.0
    ));
    s.push_str(&format!(
        "Expected return: {:+.2}% over {}   Risk: {:.2} ({})\n",
        o.expected_return() * 100.0,
        horizon(o.horizon_ns()),
        o.risk_level(),
        risk_word(o.risk_level())
    ));
    if let (Some(sl), Some(tp)) = (o.stop_loss(), o.take_profit()) {
        s.push_str(&format!("Stop: {}   Target: {}\n", price(sl), price(tp)));
    }
    let mut reasons: Vec<_> = o.factors().iter().filter(|f| f.available).collect();
    reasons.sort_by(|a, b| {
        b.contribution
            .abs()
            .total_cmp(&a.contribution.abs())
            .then(a.name.cmp(&b.name))
    });
    s.push_str("Why:\n");
    for (i, f) in reasons.iter().take(5).enumerate() {
        s.push_str(&format!(
            "  {}. {} {:+.2} x {:.2} = {:+.3}: {}\n",
            i + 1,
            f.name,
            f.value,
            f.weight,
            f.contribution,
            f.detail
        ));
    }
    let scores: Vec<String> = o
        .factors()
        .iter()
        .filter(|f| f.available)
        .map(|f| format!("{} {:+.2}", f.name, f.value))
        .collect();
    let absent: Vec<&str> = o
        .factors()
        .iter()
        .filter(|f| !f.available)
        .map(|f| f.name.as_str())
        .collect();
    s.push_str(&format!(
        "Scores: total {:+.3}; {}",
        o.score(),
        scores.join(", ")
    ));
    if !absent.is_empty() {
        s.push_str(&format!(" (no input yet: {})", absent.join(", ")));
    }
    s.push('\n');
    s.push_str(&format!("Generated: {}\n", format_utc(o.generated_at())));
    s.push_str("Not financial advice.");
    s
}

/// The short form: `BUY binance:BTC/USDT @ 60123.45 conf 82% exp +1.2%/1h risk 0.31`.
pub fn short_text(o: &Opportunity) -> String {
    format!(
        "{} {} @ {} conf {:.0}% exp {:+.1}%/{} risk {:.2}",
        o.kind(),
        o.instrument(),
        price(o.price()),
        o.confidence() * 100.0,
        o.expected_return() * 100.0,
        horizon(o.horizon_ns()),
        o.risk_level()
    )
}

/// The alert for an opportunity, created at the opportunity's own (event) time so replays
/// give identical alerts.
pub fn alert_for(id: u64, o: &Opportunity) -> Alert {
    Alert {
        id,
        opportunity_id: Some(o.id()),
        instrument: Some(o.instrument()),
        priority: priority(o),
        title: format!("{} {} ({})", o.kind(), o.instrument(), o.timeframe()),
        body: full_text(o),
        created_at: o.generated_at(),
        deliveries: Vec::new(),
        timeframe: Some(o.timeframe()),
        short: Some(short_text(o)),
    }
}

/// A delivery channel.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The channel's name (`console`, `telegram`, …).
    fn name(&self) -> &'static str;
    /// Delivers one alert.
    async fn send(&self, alert: &Alert) -> Result<(), AlertError>;
    /// Delivers one alert with a chart (a PNG) where the channel can show one (Telegram's
    /// `sendPhoto`, an inline image in email); the others send the text alone.
    async fn send_with_chart(&self, alert: &Alert, chart: Option<&[u8]>) -> Result<(), AlertError> {
        let _ = chart;
        self.send(alert).await
    }
}

/// Console settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Whether to print alerts.
    pub enabled: bool,
    /// Alerts below this priority are not printed.
    pub min_priority: AlertPriority,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_priority: AlertPriority::Low,
        }
    }
}

/// Writes each alert as one block, separated by a blank line.
pub struct ConsoleNotifier {
    out: Mutex<Box<dyn Write + Send>>,
    min_priority: AlertPriority,
}

impl std::fmt::Debug for ConsoleNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleNotifier")
            .field("min_priority", &self.min_priority)
            .finish()
    }
}

impl ConsoleNotifier {
    /// Writes to standard output.
    pub fn stdout(min_priority: AlertPriority) -> Self {
        Self::new(Box::new(std::io::stdout()), min_priority)
    }

    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>, min_priority: AlertPriority) -> Self {
        Self {
            out: Mutex::new(out),
            min_priority,
        }
    }
}

#[async_trait]
impl Notifier for ConsoleNotifier {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        if alert.priority < self.min_priority {
            return Ok(());
        }
        let io = |source| AlertError::Io {
            channel: "console",
            source,
        };
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tag = match alert.priority {
            AlertPriority::Low => "low",
            AlertPriority::Medium => "medium",
            AlertPriority::High => "HIGH",
            AlertPriority::Critical => "CRITICAL",
        };
        writeln!(out, "[{tag}] {}\n", alert.body).map_err(io)?;
        out.flush().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atalaya_model::{FactorContribution, OpportunityKind, OpportunityRaw, Timeframe};
    use std::sync::Arc;

    fn opp(confidence: f64, er: f64) -> Opportunity {
        let f = |name: &str, value: f64, weight: f64, available| FactorContribution {
            name: name.into(),
            available,
            value,
            weight,
            contribution: value * weight,
            detail: format!("{name} detail"),
        };
        let factors = vec![
            f("technical", 0.9, 0.5, true),
            f("momentum", 0.8, 0.3, true),
            f("volume", -0.2, 0.2, true),
            f("sentiment", 0.0, 0.0, false),
        ];
        let score = factors.iter().map(|x| x.contribution).sum();
        Opportunity::new(OpportunityRaw {
            id: 7,
            instrument: "binance:BTC/USDT".parse().unwrap(),
            timeframe: Timeframe::H1,
            kind: OpportunityKind::Buy,
            score,
            confidence,
            expected_return: er,
            risk_level: 0.31,
            horizon_ns: 12 * 3_600_000_000_000,
            price: 60123.456,
            stop_loss: Some(59000.0),
            take_profit: Some(62000.0),
            generated_at: 1_735_689_600_000_000_000,
            factors,
        })
        .unwrap()
    }

    #[test]
    fn priorities_follow_the_plan() {
        assert_eq!(priority(&opp(0.95, 0.2)), AlertPriority::Critical);
        assert_eq!(priority(&opp(0.95, 0.12)), AlertPriority::High);
        assert_eq!(priority(&opp(0.75, -0.06)), AlertPriority::Medium);
        assert_eq!(priority(&opp(0.6, 0.5)), AlertPriority::Low);
    }

    #[test]
    fn full_text_explains_everything() {
        let t = full_text(&opp(0.82, 0.0123));
        let expected = "BUY binance:BTC/USDT (1h) @ 60123.46\n\
Confidence: ████████░░ 82%\n\
Expected return: +1.23% over 12h   Risk: 0.31 (moderate)\n\
Stop: 59000.00   Target: 62000.00\n\
Why:\n  1. technical +0.90 x 0.50 = +0.450: technical detail\n  2. momentum +0.80 x 0.30 = +0.240: momentum detail\n  3. volume -0.20 x 0.20 = -0.040: volume detail\n\
Scores: total +0.650; technical +0.90, momentum +0.80, volume -0.20 (no input yet: sentiment)\n\
Generated: 2025-01-01T00:00:00Z\n\
Not financial advice.";
        assert_eq!(t, expected);
        assert_eq!(
            short_text(&opp(0.82, 0.0123)),
            "BUY binance:BTC/USDT @ 60123.46 conf 82% exp +1.2%/12h risk 0.31"
        );
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn console_prints_blocks_above_its_threshold() {
        let sink = Sink::default();
        let n = ConsoleNotifier::new(Box::new(sink.clone()), AlertPriority::Medium);
        n.send(&alert_for(1, &opp(0.6, 0.01))).await.unwrap();
        assert!(sink.0.lock().unwrap().is_empty());
        n.send(&alert_for(2, &opp(0.85, 0.11))).await.unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.starts_with("[HIGH] BUY binance:BTC/USDT (1h)"),
            "{text}"
        );
        assert!(text.ends_with("Not financial advice.\n\n"));
    }
}
