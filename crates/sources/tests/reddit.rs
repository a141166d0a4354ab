//! The Reddit collector against a fake server with the documented listing shape: posts once
//! each (across subreddits and polls), stickied ones skipped, engagement kept, assets linked, a
//! descriptive User-Agent, a 429 waited out and counted.
#![allow(clippy::unwrap_used)]

use atalaya_model::Event;
use atalaya_sources::reddit::{RedditConfig, RedditSource};
use atalaya_testkit::fake_http::{Canned, FakeHttp};
use serde_json::json;

mod common;
use common::{posts, receive_until, start};

fn listing() -> serde_json::Value {
    json!({"kind": "Listing", "data": {"after": null, "before": null, "dist": 3, "modhash": "", "geo_filter": "",
    "children": [
        {"kind": "t3", "data": {"id": "a1", "name": "t3_a1", "subreddit": "CryptoCurrency",
            "title": "Solana outage halts the network again", "selftext": "", "author": "x",
            "created_utc": 1795514400.0, "score": 950, "ups": 950, "num_comments": 310,
            "permalink": "/r/CryptoCurrency/comments/a1/x/", "stickied": false}},
        {"kind": "t3", "data": {"id": "a2", "name": "t3_a2", "title": "Bitcoin to the moon", "selftext": "hodl",
            "author": "y", "created_utc": 1795514500.0, "score": 12, "num_comments": 3,
            "permalink": "/r/Bitcoin/comments/a2/y/", "stickied": false}},
        {"kind": "t3", "data": {"id": "s", "name": "t3_s", "title": "Daily Discussion", "stickied": true,
            "author": "AutoModerator", "created_utc": 1795514000.0}}
    ]}})
}

#[tokio::test]
async fn reddit_posts_once_each_with_engagement_and_a_429_waited_out() {
    let server = FakeHttp::start(Canned::json(200, listing())).await.unwrap();
    let mut limited = Canned::json(429, json!({"message": "Too Many Requests", "error": 429}));
    limited.headers.push(("retry-after".into(), "1".into()));
    server.push(limited);
    let cfg = RedditConfig {
        base_url: server.url(),
        subreddits: vec!["cryptocurrency".into(), "bitcoin".into()],
        listings: vec!["hot".into(), "new".into()],
        requests_per_minute: 100,
        poll_secs: 10,
        ..RedditConfig::default()
    };
    let mut run = start(RedditSource::new(cfg).unwrap());
    let posts = posts(receive_until(&mut run, 15, |_| server.requests().len() >= 4).await);
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    let ids: Vec<&str> = posts.iter().map(|p| p.id()).collect();
    assert_eq!(ids, ["t3_a1", "t3_a2"], "once each, stickied skipped");
    assert_eq!(posts[0].engagement(), (950, 0, 310, 950));
    assert_eq!(posts[0].assets()[0].as_str(), "SOL");
    assert_eq!(posts[1].assets()[0].as_str(), "BTC");
    assert!(status.errors >= 1, "the 429 is counted: {status:?}");
    let reqs = server.requests();
    assert!(reqs.len() >= 4, "{reqs:?}");
    assert!(
        reqs[0]
            .path
            .starts_with("/r/cryptocurrency/hot.json?limit=100")
    );
    let ua = reqs[0]
        .headers
        .iter()
        .find(|(k, _)| k == "user-agent")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(ua.starts_with("rust:atalaya:v"), "{ua}");
}

/// OAuth: a token from the token endpoint (HTTP Basic with the app's id and secret, the
/// password grant for a script app's user), listings from the OAuth host with the bearer
/// token, and a new token after a 401.
#[tokio::test]
async fn reddit_oauth_token_bearer_listings_and_a_new_token_after_a_401() {
    let server = FakeHttp::start(Canned::json(200, listing())).await.unwrap();
    let token = |t: &str| {
        Canned::json(
            200,
            json!({"access_token": t, "token_type": "bearer", "expires_in": 3600, "scope": "*"}),
        )
    };
    server.push(token("tok-1"));
    server.push(Canned::json(
        401,
        json!({"message": "Unauthorized", "error": 401}),
    ));
    server.push(token("tok-2"));
    let cfg = RedditConfig {
        base_url: "http://127.0.0.1:9".into(),
        oauth_url: server.url(),
        auth_url: format!("{}/api/v1/access_token", server.url()),
        client_id: "cid".into(),
        client_secret: "csecret".into(),
        username: "bot".into(),
        password: "pw".into(),
        subreddits: vec!["bitcoin".into()],
        listings: vec!["hot".into()],
        requests_per_minute: 100,
        poll_secs: 10,
        ..RedditConfig::default()
    };
    let mut run = start(RedditSource::new(cfg).unwrap());
    let done = |e: &[Event]| e.iter().filter(|e| matches!(e, Event::Social(_))).count() >= 2;
    let posts = posts(receive_until(&mut run, 15, done).await);
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    assert_eq!(posts.len(), 2, "the listing's two posts");
    assert!(status.errors >= 1, "the 401 is counted: {status:?}");
    let reqs = server.requests();
    let header = |i: usize, k: &str| {
        reqs[i]
            .headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("POST", "/api/v1/access_token")
    );
    assert_eq!(header(0, "authorization"), "Basic Y2lkOmNzZWNyZXQ=");
    assert_eq!(reqs[0].body, "grant_type=password&username=bot&password=pw");
    assert!(header(0, "user-agent").starts_with("rust:atalaya:v"));
    assert_eq!(reqs[1].path, "/r/bitcoin/hot?limit=100&raw_json=1");
    assert_eq!(header(1, "authorization"), "Bearer tok-1");
    assert_eq!(
        reqs[2].path, "/api/v1/access_token",
        "a new token after the 401"
    );
    assert_eq!(header(3, "authorization"), "Bearer tok-2");
}
