//! Telegram Bot API notifier: `sendMessage` with HTML formatting.

use async_trait::async_trait;
use atalaya_model::Alert;
use serde_json::{Value, json};

use crate::{AlertError, Notifier, http_client};

/// Escapes text for Telegram's HTML parse mode: `&`, `<` and `>` (the only characters that
/// must be replaced outside tags).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Telegram allows 4096 characters per message; keep well inside it (UTF-16 units are not
/// stated, so count conservatively by chars and leave room).
const MAX_CHARS: usize = 4000;

/// A photo's caption holds at most 1024 characters.
const CAPTION_CHARS: usize = 1000;

/// Sends alerts to one chat through a bot.
#[derive(Debug, Clone)]
pub struct TelegramNotifier {
    client: reqwest::Client,
    base_url: String,
    token: String,
    chat_id: String,
}

impl TelegramNotifier {
    /// A notifier for `chat_id` through the bot `token`; `base_url` is
    /// `https://api.telegram.org` (or a test server).
    pub fn new(base_url: &str, token: &str, chat_id: &str) -> Result<Self, AlertError> {
        Ok(Self {
            client: http_client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            chat_id: chat_id.to_owned(),
        })
    }

    /// The request body for `alert`: the title in bold, then the full text, escaped.
    pub fn body(&self, alert: &Alert) -> Value {
        let mut text = format!(
            "<b>{}</b>\n{}",
            escape_html(&alert.title),
            escape_html(&alert.body)
        );
        if text.chars().count() > MAX_CHARS {
            text = text.chars().take(MAX_CHARS - 1).collect::<String>() + "…";
        }
        let chat: Value = self
            .chat_id
            .parse::<i64>()
            .map_or_else(|_| json!(self.chat_id), |id| json!(id));
        json!({
            "chat_id": chat,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        })
    }
}

#[async_trait]
impl Notifier for TelegramNotifier {
    fn name(&self) -> &'static str {
        "telegram"
    }

    async fn send_with_chart(&self, alert: &Alert, chart: Option<&[u8]>) -> Result<(), AlertError> {
        let Some(png) = chart else {
            return self.send(alert).await;
        };
        // sendPhoto: the chart with the message as its caption (at most 1024 characters).
        let url = format!("{}/bot{}/sendPhoto", self.base_url, self.token);
        let body = self.body(alert);
        let mut caption = body["text"].as_str().unwrap_or("").to_owned();
        if caption.chars().count() > CAPTION_CHARS {
            caption = format!(
                "<b>{}</b>\n{}…",
                escape_html(&alert.title),
                escape_html(
                    &alert
                        .body
                        .chars()
                        .take(CAPTION_CHARS.saturating_sub(alert.title.chars().count() + 40))
                        .collect::<String>()
                )
            );
        }
        let part = reqwest::multipart::Part::bytes(png.to_vec())
            .file_name("chart.png")
            .mime_str("image/png")
            .map_err(|e| AlertError::Http {
                channel: "telegram",
                source: e.without_url(),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("chat_id", self.chat_id.clone())
            .text("caption", caption)
            .text("parse_mode", "HTML")
            .part("photo", part);
        let res = self
            .client
            .post(&url)
            .multipart(form)
            .send()
            .await
            .map_err(|e| AlertError::Http {
                channel: "telegram",
                source: e.without_url(),
            })?;
        Self::answer(res).await
    }

    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let url = format!("{}/bot{}/sendMessage", self.base_url, self.token);
        let res = self
            .client
            .post(&url)
            .json(&self.body(alert))
            .send()
            .await
            .map_err(|e| AlertError::Http {
                channel: "telegram",
                // The URL holds the bot token: never let it into an error message.
                source: e.without_url(),
            })?;
        Self::answer(res).await
    }
}

impl TelegramNotifier {
    /// Reads the Bot API's answer envelope.
    async fn answer(res: reqwest::Response) -> Result<(), AlertError> {
        let status = res.status().as_u16();
        let v: Value = res.json().await.map_err(|e| AlertError::Http {
            channel: "telegram",
            source: e.without_url(),
        })?;
        if v["ok"].as_bool() == Some(true) {
            return Ok(());
        }
        let description = v["description"]
            .as_str()
            .unwrap_or("no description")
            .to_owned();
        match v["parameters"]["retry_after"].as_f64() {
            Some(secs) => Err(AlertError::RateLimited {
                channel: "telegram",
                retry_after_ms: (secs * 1000.0) as u64,
            }),
            None => Err(AlertError::Rejected {
                channel: "telegram",
                status,
                message: description,
            }),
        }
    }
}
