//! Telegram and Discord notifiers against protocol-faithful fake servers.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use atalaya_alerts::discord::DiscordNotifier;
use atalaya_alerts::telegram::{TelegramNotifier, escape_html};
use atalaya_alerts::{AlertError, Notifier};
use atalaya_model::{Alert, AlertPriority};
use atalaya_testkit::fake_http::{Canned, FakeHttp};

fn alert() -> Alert {
    Alert {
        id: 1,
        opportunity_id: Some(1),
        instrument: Some("binance:BTC/USDT".parse().unwrap()),
        priority: AlertPriority::High,
        title: "BUY binance:BTC/USDT (1h)".into(),
        body: "Confidence 82% <strong> & rising > 80 @everyone".into(),
        created_at: 1_735_689_600_000_000_000,
        deliveries: Vec::new(),
        timeframe: None,
        short: None,
    }
}

#[tokio::test]
async fn telegram_sends_escaped_html_to_the_bot_endpoint() {
    let server = FakeHttp::start(Canned::telegram_ok()).await.unwrap();
    let n = TelegramNotifier::new(&server.url(), "123:ABC", "-1001234567890").unwrap();
    n.send(&alert()).await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/bot123:ABC/sendMessage");
    let body = reqs[0].json();
    assert_eq!(body["chat_id"], -1_001_234_567_890i64);
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["link_preview_options"]["is_disabled"], true);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("<b>BUY binance:BTC/USDT (1h)</b>\n"),
        "{text}"
    );
    assert!(
        text.contains("&lt;strong&gt; &amp; rising &gt; 80"),
        "{text}"
    );
    assert_eq!(escape_html("a<b>&c"), "a&lt;b&gt;&amp;c");
}

#[tokio::test]
async fn telegram_flood_control_reports_retry_after_and_errors_are_clear() {
    let server = FakeHttp::start(Canned::telegram_ok()).await.unwrap();
    server.push(Canned::telegram_429(35));
    server.push(Canned::json(400, serde_json::json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"})));
    let n = TelegramNotifier::new(&server.url(), "t", "@channel").unwrap();
    match n.send(&alert()).await {
        Err(
            e @ AlertError::RateLimited {
                retry_after_ms: 35_000,
                ..
            },
        ) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
    let e = n.send(&alert()).await.unwrap_err();
    assert!(!e.is_transient());
    assert!(e.to_string().contains("chat not found"), "{e}");
    assert!(n.send(&alert()).await.is_ok());
    assert_eq!(server.requests()[0].json()["chat_id"], "@channel");
}

#[tokio::test]
async fn discord_sends_an_embed_without_mentions() {
    let server = FakeHttp::start(Canned::discord_ok()).await.unwrap();
    let url = format!("{}/api/v10/webhooks/42/secret", server.url());
    let n = DiscordNotifier::new(&url).unwrap();
    n.send(&alert()).await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs[0].path, "/api/v10/webhooks/42/secret");
    let body = reqs[0].json();
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    let embed = &body["embeds"][0];
    assert_eq!(embed["title"], "BUY binance:BTC/USDT (1h)");
    assert_eq!(embed["timestamp"], "2025-01-01T00:00:00Z");
    assert_eq!(embed["color"], 0xE67E22);
    assert!(embed["description"].as_str().unwrap().contains("@everyone"));
}

#[tokio::test]
async fn discord_rate_limit_and_unknown_webhook() {
    let server = FakeHttp::start(Canned::discord_ok()).await.unwrap();
    server.push(Canned::discord_429(64.57));
    server.push(Canned::json(
        404,
        serde_json::json!({"code": 10015, "message": "Unknown Webhook"}),
    ));
    let n = DiscordNotifier::new(&format!("{}/api/v10/webhooks/1/x", server.url())).unwrap();
    assert!(matches!(
        n.send(&alert()).await,
        Err(AlertError::RateLimited {
            retry_after_ms: 64_570,
            ..
        })
    ));
    let e = n.send(&alert()).await.unwrap_err();
    assert!(matches!(e, AlertError::Rejected { status: 404, .. }));
    assert!(e.to_string().contains("Unknown Webhook"));
}

#[tokio::test]
async fn a_dead_endpoint_is_a_transient_error_not_a_panic() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let n = TelegramNotifier::new(&format!("http://127.0.0.1:{port}"), "t", "1").unwrap();
    let e = n.send(&alert()).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
}

#[tokio::test]
async fn webhook_posts_the_alert_signed_over_timestamp_and_body() {
    use atalaya_alerts::webhook::{WebhookNotifier, signature};
    let server = FakeHttp::start(Canned {
        status: 200,
        body: String::new(),
        headers: Vec::new(),
        delay_ms: 0,
    })
    .await
    .unwrap();
    let n = WebhookNotifier::new(&format!("{}/hook", server.url()), "s3cret").unwrap();
    n.send(&alert()).await.unwrap();
    let r = &server.requests()[0];
    let header = |k: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let ts: i64 = header("x-atalaya-timestamp").parse().unwrap();
    assert_eq!(
        header("x-atalaya-signature"),
        signature(b"s3cret", ts, r.body.as_bytes())
    );
    assert_eq!(header("idempotency-key"), "alert-1-1735689600000000000");
    assert_eq!(r.json()["title"], "BUY binance:BTC/USDT (1h)");
    assert_eq!(r.json()["priority"], "high");
}

#[tokio::test]
async fn sms_posts_a_form_with_basic_auth_and_reads_twilio_errors() {
    use atalaya_alerts::sms::SmsNotifier;
    let ok = Canned::json(
        201,
        serde_json::json!({"sid": "SM1", "status": "queued", "num_segments": "1"}),
    );
    let server = FakeHttp::start(ok).await.unwrap();
    server.push(Canned::json(400, serde_json::json!({"code": 21211, "message": "The 'To' number +1 is not a valid phone number.", "status": 400})));
    let n = SmsNotifier::new(
        &server.url(),
        "AC123",
        "tok",
        "+15017122661",
        "+15558675310",
    )
    .unwrap();
    let e = n.send(&alert()).await.unwrap_err();
    assert!(!e.is_transient() && e.to_string().contains("21211"), "{e}");
    n.send(&alert()).await.unwrap();
    let r = &server.requests()[1];
    assert_eq!(r.path, "/2010-04-01/Accounts/AC123/Messages.json");
    let header = |k: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(header("content-type").starts_with("application/x-www-form-urlencoded"));
    // "AC123:tok" in base64.
    assert_eq!(header("authorization"), "Basic QUMxMjM6dG9r");
    assert!(
        r.body
            .starts_with("To=%2B15558675310&From=%2B15017122661&Body=Atalaya+BUY+binance"),
        "{}",
        r.body
    );
}

/// Every HTTP notifier pointed at `url`.
fn all_http(url: &str) -> Vec<std::sync::Arc<dyn Notifier>> {
    vec![
        std::sync::Arc::new(TelegramNotifier::new(url, "123:ABC", "42").unwrap()),
        std::sync::Arc::new(DiscordNotifier::new(&format!("{url}/api/webhooks/1/t")).unwrap()),
        std::sync::Arc::new(
            atalaya_alerts::sms::SmsNotifier::new(url, "AC1", "tok", "+15550001", "+15550002")
                .unwrap(),
        ),
        std::sync::Arc::new(
            atalaya_alerts::webhook::WebhookNotifier::new(&format!("{url}/hook"), "s").unwrap(),
        ),
    ]
}

#[tokio::test]
async fn server_errors_are_transient_on_every_provider() {
    let server = FakeHttp::start(Canned::json(
        503,
        serde_json::json!({"ok": false, "error_code": 503, "description": "Service Unavailable", "message": "unavailable", "code": 20503}),
    ))
    .await
    .unwrap();
    for n in all_http(&server.url()) {
        let e = n.send(&alert()).await.unwrap_err();
        assert!(e.is_transient(), "{}: {e:?}", n.name());
        assert!(
            matches!(e, AlertError::Rejected { status: 503, .. }),
            "{}: {e:?}",
            n.name()
        );
    }
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out_as_a_transient_error() {
    // Longer than the client's 10-second time-out.
    let server = FakeHttp::start(Canned::telegram_ok().delayed(12_000))
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    let handles: Vec<_> = all_http(&server.url())
        .into_iter()
        .map(|n| tokio::spawn(async move { (n.name(), n.send(&alert()).await) }))
        .collect();
    for h in handles {
        let (name, r) = h.await.unwrap();
        let e = r.unwrap_err();
        assert!(e.is_transient(), "{name}: {e:?}");
    }
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(12),
        "all four in one time-out"
    );
}

#[tokio::test]
async fn discord_waits_for_its_bucket_when_the_headers_say_it_is_empty() {
    let mut empty = Canned::discord_ok();
    empty
        .headers
        .push(("x-ratelimit-remaining".into(), "0".into()));
    empty
        .headers
        .push(("x-ratelimit-reset-after".into(), "0.8".into()));
    let server = FakeHttp::start(Canned::discord_ok()).await.unwrap();
    server.push(empty);
    let n = DiscordNotifier::new(&format!("{}/api/webhooks/1/t", server.url())).unwrap();
    let t0 = std::time::Instant::now();
    n.send(&alert()).await.unwrap();
    let first = t0.elapsed();
    n.send(&alert()).await.unwrap();
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(800),
        "the second send waited for the bucket: {:?} after {first:?}",
        t0.elapsed()
    );
    // A bucket with requests left does not slow anything down.
    let t1 = std::time::Instant::now();
    n.send(&alert()).await.unwrap();
    assert!(t1.elapsed() < std::time::Duration::from_millis(500));
    assert_eq!(server.requests().len(), 3);
}
