//! The NewsAPI collector against a fake server with the documented `/v2/everything` shape:
//! articles once each across polls, the key in a header and never in the URL, a rate-limit
//! answer waited out and counted, an error body reported with its code.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use atalaya_model::Event;
use atalaya_sources::newsapi::{NewsApiConfig, NewsApiSource};
use atalaya_testkit::fake_http::{Canned, FakeHttp};
use serde_json::json;

mod common;
use common::{receive_until, start};

#[tokio::test]
async fn newsapi_articles_once_each_key_in_a_header_and_limits_respected() {
    let answer = json!({"status": "ok", "totalResults": 2, "articles": [
        {"source": {"id": null, "name": "CoinDesk"}, "author": "A", "title": "Bitcoin ETF inflows hit a record",
         "description": "Ether ETFs too.", "url": "https://example.com/1", "urlToImage": null,
         "publishedAt": "2026-11-24T08:00:00Z", "content": "… [+100 chars]"},
        {"source": {"id": "reuters", "name": "Reuters"}, "author": null, "title": "Solana validators vote on fees",
         "description": null, "url": "https://example.com/2", "urlToImage": null,
         "publishedAt": "2026-11-24T08:30:00Z", "content": null}
    ]});
    let server = FakeHttp::start(Canned::json(200, answer)).await.unwrap();
    let mut limited = Canned::json(
        429,
        json!({"status": "error", "code": "rateLimited", "message": "You have made too many requests recently."}),
    );
    limited.headers.push(("retry-after".into(), "2".into()));
    server.push(limited);
    server.push(Canned::json(
        401,
        json!({"status": "error", "code": "apiKeyInvalid", "message": "Your API key is invalid."}),
    ));
    let cfg = NewsApiConfig {
        base_url: server.url(),
        api_key: "canary-key-123".into(),
        poll_secs: 1,
        ..NewsApiConfig::default()
    };
    let mut run = start(NewsApiSource::new(cfg).unwrap());
    let events = receive_until(&mut run, 15, |_| server.requests().len() >= 4).await;
    let items: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::News(n) => Some(*n),
            _ => None,
        })
        .collect();
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    let ids: Vec<&str> = items.iter().map(|n| n.id()).collect();
    assert_eq!(
        ids,
        ["https://example.com/1", "https://example.com/2"],
        "once each"
    );
    assert_eq!(items[0].publisher(), "CoinDesk");
    assert_eq!(items[0].assets()[0].as_str(), "BTC");
    assert!(status.errors >= 2, "429 and 401 counted: {status:?}");
    let err = status.last_error.clone().unwrap_or_default();
    assert!(err.contains("apiKeyInvalid"), "{err}");
    assert!(!err.contains("canary-key-123"));
    let reqs = server.requests();
    for r in &reqs {
        assert!(r.path.starts_with("/everything?q=bitcoin"), "{}", r.path);
        assert!(r.path.contains("sortBy=publishedAt") && r.path.contains("pageSize=100"));
        assert!(
            !r.path.contains("canary-key-123"),
            "the key never goes in the URL"
        );
        let key = r
            .headers
            .iter()
            .find(|(k, _)| k == "x-api-key")
            .map(|(_, v)| v.as_str());
        assert_eq!(key, Some("canary-key-123"));
    }
    // The rate-limit answer asked for 2 s: the next request waited for them.
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(1900));
}
