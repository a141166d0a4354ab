//! SMS through Twilio's Programmable Messaging REST API, in the short format.
//!
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic auth
//! (`AccountSid:AuthToken`), **form-encoded** `To`, `From`, `Body` (Twilio ignores JSON bodies).
//! The body is the one-line short alert, kept to two GSM-7 segments (306 characters) — or two
//! UCS-2 segments (134) when it contains a character outside GSM-7 — because SMS is billed per
//! segment.

use async_trait::async_trait;
use atalaya_model::Alert;
use serde_json::Value;

use crate::{AlertError, Notifier, deliver, http_client};

/// GSM 03.38 basic characters (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Extension characters (two septets each).
const GSM7_EXT: &str = "^{}\\[~]|€\x0c";

/// How a text is encoded on the air and how many segments it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    /// Whether it fits GSM-7 (else UCS-2).
    pub gsm7: bool,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) used.
    pub units: usize,
    /// Segments billed.
    pub count: usize,
}

/// Counts segments: GSM-7 holds 160 septets in one segment or 153 per segment when split;
/// UCS-2 holds 70 or 67 UTF-16 units.
pub fn segments(text: &str) -> Segments {
    let gsm7 = text
        .chars()
        .all(|c| GSM7_BASIC.contains(c) || GSM7_EXT.contains(c));
    let (units, single, multi) = if gsm7 {
        (
            text.chars()
                .map(|c| if GSM7_EXT.contains(c) { 2 } else { 1 })
                .sum(),
            160,
            153,
        )
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    let count = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    Segments { gsm7, units, count }
}

/// Shortens `text` to at most `segments` segments, ending with `…` (or `...` in GSM-7) when cut.
pub fn fit(text: &str, max_segments: usize) -> String {
    if segments(text).count <= max_segments {
        return text.to_owned();
    }
    let mut out: String = text.to_owned();
    let ellipsis = if segments(text).gsm7 { "..." } else { "…" };
    while !out.is_empty() && segments(&format!("{out}{ellipsis}")).count > max_segments {
        out.pop();
    }
    out.push_str(ellipsis);
    out
}

/// Sends alerts by SMS through Twilio.
#[derive(Debug, Clone)]
pub struct SmsNotifier {
    client: reqwest::Client,
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    to: String,
}

impl SmsNotifier {
    /// A notifier sending from `from` to `to` (E.164 numbers); `base_url` is
    /// `https://api.twilio.com` (or a test server).
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from: &str,
        to: &str,
    ) -> Result<Self, AlertError> {
        Ok(Self {
            client: http_client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    /// The SMS text, fitted to two segments: the short form of an opportunity alert
    /// (`Atalaya: BUY binance:BTC/USDT @ 60123.46 conf 82% exp +1.2%/12h risk 0.31`), or
    /// the title and first line of any other.
    pub fn text(alert: &Alert) -> String {
        match &alert.short {
            Some(short) => fit(&format!("Atalaya: {short}"), 2),
            None => {
                let first = alert.body.lines().next().unwrap_or("");
                fit(&format!("Atalaya {}: {first}", alert.title), 2)
            }
        }
    }
}

#[async_trait]
impl Notifier for SmsNotifier {
    fn name(&self) -> &'static str {
        "sms"
    }

    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, self.account_sid
        );
        let body = Self::text(alert);
        let req = self
            .client
            .post(&url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&[
                ("To", self.to.as_str()),
                ("From", self.from.as_str()),
                ("Body", body.as_str()),
            ]);
        deliver("sms", req, |text| {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            format!(
                "{} (code {})",
                v["message"].as_str().unwrap_or("no message"),
                v["code"]
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_and_ucs2_segments() {
        assert_eq!(
            segments(&"a".repeat(160)),
            Segments {
                gsm7: true,
                units: 160,
                count: 1
            }
        );
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        assert_eq!(segments(&"a".repeat(307)).count, 3);
        // Extension characters take two septets.
        assert_eq!(
            segments(&"€".repeat(80)),
            Segments {
                gsm7: true,
                units: 160,
                count: 1
            }
        );
        // One emoji switches everything to UCS-2 (an emoji is two UTF-16 units).
        let s = segments(&format!("{}🚀", "a".repeat(68)));
        assert_eq!((s.gsm7, s.units, s.count), (false, 70, 1));
        assert_eq!(segments(&"ü".repeat(70)).count, 1, "ü is in GSM-7");
    }

    #[test]
    fn fitting_keeps_to_the_segment_budget() {
        let long = "x".repeat(1000);
        let f = fit(&long, 2);
        assert!(
            f.ends_with("...") && segments(&f).count == 2 && f.len() == 306,
            "{}",
            f.len()
        );
        assert_eq!(fit("short", 1), "short");
    }
}
