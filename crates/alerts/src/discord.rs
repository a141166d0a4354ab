//! Discord webhook notifier: one embed per alert, mentions disabled.

use async_trait::async_trait;
use atalaya_model::{Alert, AlertPriority, format_utc};
use serde_json::{Value, json};

use crate::{AlertError, Notifier, deliver_with_headers, http_client};

/// Sends alerts to a Discord webhook URL, keeping to the webhook's rate-limit bucket: when an
/// answer says no request is left (`X-RateLimit-Remaining: 0`), the next send waits
/// `X-RateLimit-Reset-After` seconds instead of running into a 429.
#[derive(Debug, Clone)]
pub struct DiscordNotifier {
    client: reqwest::Client,
    url: String,
    pause_until: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How long the bucket in `headers` says to wait, when it is empty.
pub fn bucket_wait(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    if get("x-ratelimit-remaining")?.trim() != "0" {
        return None;
    }
    let secs: f64 = get("x-ratelimit-reset-after")?.trim().parse().ok()?;
    (secs.is_finite() && secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs.min(3600.0)))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

impl DiscordNotifier {
    /// A notifier for the webhook `url` (`https://discord.com/api/v10/webhooks/{id}/{token}`).
    pub fn new(url: &str) -> Result<Self, AlertError> {
        Ok(Self {
            client: http_client()?,
            url: url.to_owned(),
            pause_until: std::sync::Arc::default(),
        })
    }

    /// The request body: an embed with the title and text within Discord's limits, coloured by
    /// priority, and `allowed_mentions` set so that nothing in the text pings anyone.
    pub fn body(&self, alert: &Alert) -> Value {
        let color = match alert.priority {
            AlertPriority::Critical => 0xE7_4C_3C,
            AlertPriority::High => 0xE6_7E_22,
            AlertPriority::Medium => 0xF1_C4_0F,
            AlertPriority::Low => 0x95_A5_A6,
        };
        json!({
            "username": "Atalaya",
            "allowed_mentions": {"parse": []},
            "embeds": [{
                "title": truncate(&alert.title, 256),
                "description": truncate(&alert.body, 4000),
                "color": color,
                "timestamp": format_utc(alert.created_at),
                "footer": {"text": "atalaya"},
            }],
        })
    }
}

#[async_trait]
impl Notifier for DiscordNotifier {
    fn name(&self) -> &'static str {
        "discord"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let until = self.pause_until.lock().ok().and_then(|g| *g);
        if let Some(t) = until {
            let now = std::time::Instant::now();
            if t > now {
                tokio::time::sleep(t - now).await;
            }
        }
        let req = self.client.post(&self.url).json(&self.body(alert));
        let headers = deliver_with_headers("discord", req, |text| {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            v["message"].as_str().unwrap_or("no message").to_owned()
        })
        .await?;
        if let Ok(mut g) = self.pause_until.lock() {
            *g = bucket_wait(&headers).map(|d| std::time::Instant::now() + d);
        }
        Ok(())
    }
}
