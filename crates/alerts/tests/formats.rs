//! Snapshots of every message format: the full and short texts, Telegram's `sendMessage`
//! body, Discord's embed, the SMS text, the webhook's JSON and the email's text and HTML parts,
//! for one fixed opportunity. A change shows as a diff against `tests/snapshots/formats.txt`;
//! accept an intended one with `ATALAYA_UPDATE_SNAPSHOTS=1 cargo test -p atalaya-alerts --test
//! formats`.
#![allow(clippy::unwrap_used)]

use atalaya_alerts::discord::DiscordNotifier;
use atalaya_alerts::email::{EmailNotifier, Security, SmtpSettings};
use atalaya_alerts::sms::SmsNotifier;
use atalaya_alerts::telegram::TelegramNotifier;
use atalaya_alerts::{alert_for, full_text, short_text};
use atalaya_model::{FactorContribution, Opportunity, OpportunityKind, OpportunityRaw, Timeframe};

fn opportunity() -> Opportunity {
    let f =
        |name: &str, available: bool, value: f64, weight: f64, detail: &str| FactorContribution {
            name: name.into(),
            available,
            value,
            weight,
            contribution: value * weight,
            detail: detail.into(),
        };
    Opportunity::new(OpportunityRaw {
        id: 7,
        instrument: "binance:BTC/USDT".parse().unwrap(),
        timeframe: Timeframe::H1,
        kind: OpportunityKind::StrongBuy,
        score: 0.81,
        confidence: 0.91,
        expected_return: 0.162,
        risk_level: 0.28,
        horizon_ns: 12 * Timeframe::H1.nanos(),
        price: 60_123.456,
        stop_loss: Some(58_900.0),
        take_profit: Some(63_800.0),
        generated_at: 1_735_689_600_000_000_000,
        factors: vec![
            f(
                "technical",
                true,
                0.9,
                0.45,
                "EMA12 > EMA26 (+1.8 ATR); RSI14 61 < 70 & rising",
            ),
            f(
                "momentum",
                true,
                0.8,
                0.3,
                "10-bar return +2.1% = +1.6x the ATR-implied move",
            ),
            f("volume", true, 0.7, 0.15, "volume 2.4x its average"),
            f(
                "volatility",
                true,
                0.6,
                0.1,
                "ATR 1.3x its average (up trend)",
            ),
            f(
                "sentiment",
                false,
                0.0,
                0.0,
                "absent: no sentiment input yet",
            ),
        ],
    })
    .unwrap()
}

#[test]
fn every_message_format_is_unchanged() {
    let o = opportunity();
    let alert = alert_for(1, &o);
    let telegram = TelegramNotifier::new("http://127.0.0.1:9", "1:t", "-100123").unwrap();
    let discord = DiscordNotifier::new("http://127.0.0.1:9/api/webhooks/1/t").unwrap();
    let email = EmailNotifier::new(&SmtpSettings {
        host: "localhost".into(),
        port: 25,
        security: Security::None,
        username: String::new(),
        password: String::new(),
        ca_file: None,
        from: "Atalaya <agent@example.com>".into(),
        to: vec!["trader@example.com".into()],
        timeout: std::time::Duration::from_secs(5),
    })
    .unwrap();
    let eml = String::from_utf8(email.message(&alert, None).unwrap().formatted()).unwrap();
    // Headers that change per message (date, ids, boundaries) are not part of the format.
    let eml: String = eml
        .lines()
        .filter(|l| {
            !(l.starts_with("Date:")
                || l.starts_with("Message-ID:")
                || l.contains("boundary")
                || l.starts_with("--"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let got = format!(
        "== full text\n{}\n== short text\n{}\n== priority\n{:?}\n== telegram sendMessage\n{}\n== discord\n{}\n== sms\n{}\n== webhook\n{}\n== email\n{}",
        full_text(&o),
        short_text(&o),
        alert.priority,
        serde_json::to_string_pretty(&telegram.body(&alert)).unwrap(),
        serde_json::to_string_pretty(&discord.body(&alert)).unwrap(),
        SmsNotifier::text(&alert),
        serde_json::to_string_pretty(&alert).unwrap(),
        eml.replace("\r\n", "\n")
    );
    atalaya_testkit::assert_snapshot(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/formats.txt"),
        &got,
    );
}
