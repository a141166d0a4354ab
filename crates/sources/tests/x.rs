//! The X collector against a fake API with the documented recent-search shape: posts once
//! each, the bearer token in the Authorization header, retweets excluded, `since_id` after the
//! first answer, a 429 waited out until `x-rate-limit-reset` (X sends no `Retry-After`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atalaya_sources::x::{XConfig, XSource};
use atalaya_testkit::fake_http::{Canned, FakeHttp};
use serde_json::json;

mod common;
use common::{posts, receive_until, start};

#[tokio::test]
async fn x_posts_once_each_with_since_id_and_the_rate_limit_reset_respected() {
    let answer = json!({
        "data": [
            {"id": "1860000000000000002", "text": "Ethereum gas is cheap today", "created_at": "2026-11-24T10:00:00.000Z",
             "author_id": "7", "lang": "en", "edit_history_tweet_ids": ["1860000000000000002"],
             "public_metrics": {"retweet_count": 1, "reply_count": 0, "like_count": 4, "quote_count": 0, "bookmark_count": 0, "impression_count": 90}},
            {"id": "1860000000000000001", "text": "$BTC to the moon", "created_at": "2026-11-24T09:58:01.000Z",
             "author_id": "12", "lang": "en", "edit_history_tweet_ids": ["1860000000000000001"],
             "public_metrics": {"retweet_count": 3, "reply_count": 1, "like_count": 20, "quote_count": 2, "bookmark_count": 2, "impression_count": 1500}}
        ],
        "includes": {"users": [{"id": "12", "name": "A", "username": "alice"}, {"id": "7", "name": "B", "username": "bob"}]},
        "meta": {"newest_id": "1860000000000000002", "oldest_id": "1860000000000000001", "result_count": 2}
    });
    // Later searches find nothing new.
    let server = FakeHttp::start(Canned::json(200, json!({"meta": {"result_count": 0}})))
        .await
        .unwrap();
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 5;
    let mut limited = Canned::json(
        429,
        json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
    );
    limited
        .headers
        .push(("x-rate-limit-remaining".into(), "0".into()));
    limited
        .headers
        .push(("x-rate-limit-reset".into(), reset.to_string()));
    server.push(Canned::json(200, answer.clone()));
    server.push(limited);
    server.push(Canned::json(200, answer));
    let cfg = XConfig {
        base_url: server.url(),
        bearer_token: "canary-token".into(),
        queries: vec!["bitcoin".into(), "ethereum is:retweet".into()],
        requests_per_15min: 450,
        ..XConfig::default()
    };
    let mut run = start(XSource::new(cfg).unwrap());
    let posts = posts(receive_until(&mut run, 20, |_| server.requests().len() >= 4).await);
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    let ids: Vec<&str> = posts.iter().map(|p| p.id()).collect();
    assert_eq!(
        ids,
        ["1860000000000000001", "1860000000000000002"],
        "once each, oldest first"
    );
    assert_eq!(posts[0].author(), "alice");
    assert_eq!(posts[0].engagement(), (20, 5, 1, 20));
    assert!(status.errors >= 1, "the 429 is counted: {status:?}");
    let reqs = server.requests();
    assert!(reqs.len() >= 4, "{reqs:?}");
    for r in &reqs {
        let auth = r
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str());
        assert_eq!(auth, Some("Bearer canary-token"));
        assert!(
            r.path.starts_with("/tweets/search/recent?query="),
            "{}",
            r.path
        );
        assert!(r.path.contains("max_results=100") && r.path.contains("public_metrics"));
    }
    // Query 0 excludes retweets; query 1 said is:retweet itself.
    assert!(
        reqs[0].path.contains("bitcoin+-is%3Aretweet"),
        "{}",
        reqs[0].path
    );
    assert!(reqs[1].path.contains("ethereum+is%3Aretweet") && !reqs[1].path.contains("-is"));
    // Request 1 was rate limited until the window's reset, 5 s away (the spacing alone is 2 s).
    assert!(reqs[2].at.duration_since(reqs[1].at) >= Duration::from_millis(3500));
    // Query 0's second search asks only for newer posts; query 1 has had no answer yet.
    assert!(
        reqs[2].path.contains("since_id=1860000000000000002"),
        "{}",
        reqs[2].path
    );
    assert!(!reqs[3].path.contains("since_id"), "{}", reqs[3].path);
}
