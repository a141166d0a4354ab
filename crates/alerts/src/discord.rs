//! Discord webhook notifier: one embed per alert, mentions disabled.

use async_trait::async_trait;
use atalaya_model::{Alert, AlertPriority, format_utc};
use serde_json::{Value, json};

use crate::{AlertError, Notifier, deliver, http_client};

/// Sends alerts to a Discord webhook URL.
#[derive(Debug, Clone)]
pub struct DiscordNotifier {
    client: reqwest::Client,
    url: String,
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
        let req = self.client.post(&self.url).json(&self.body(alert));
        deliver("discord", req, |text| {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            v["message"].as_str().unwrap_or("no message").to_owned()
        })
        .await
    }
}
