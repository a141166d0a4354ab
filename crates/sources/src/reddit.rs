//! Reddit posts from subreddit listings (`hot` and `new`, public JSON): `live.sources =
//! ["reddit"]`.
//!
//! Unauthenticated clients get 10 requests a minute, so the poller spaces its calls at least
//! six seconds apart (one [`RateLimiter`] for the whole source), sends a descriptive
//! User-Agent as Reddit asks, honours `X-Ratelimit-Remaining`/`X-Ratelimit-Reset` and 429s, and
//! skips stickied posts. Posts are de-duplicated by fullname (`t3_…`), linked to assets with the
//! news [`Linker`](crate::news::Linker), and published as [`SocialPost`]s with their score and
//! comment count (for engagement weighting), stamped with the time they became known.

use std::time::Duration;

use async_trait::async_trait;
use atalaya_bus::health::SourceState;
use atalaya_model::{Clock, LiveClock, SocialPlatform, SocialPost, Symbol, UnixNanos};
use atalaya_net::RateLimiter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::news::Linker;
use crate::{Source, SourceContext, SourceError};

const S: i64 = 1_000_000_000;

/// Subreddits and polling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedditConfig {
    /// Base URL (`https://www.reddit.com`, or a test server).
    pub base_url: String,
    /// Subreddits (the original plan's four by default).
    pub subreddits: Vec<String>,
    /// Listings to read per subreddit: `hot`, `new`.
    pub listings: Vec<String>,
    /// Seconds between rounds over every listing.
    pub poll_secs: u64,
    /// Requests allowed per minute (Reddit: 10 without OAuth).
    pub requests_per_minute: u32,
    /// Names that mean an asset (as `[news].aliases`).
    pub aliases: std::collections::BTreeMap<String, Vec<String>>,
    /// OAuth: the app's client id (a "script" or "web" app at reddit.com/prefs/apps). With
    /// `client_secret` set, listings are read from `oauth_url` with a bearer token.
    pub client_id: String,
    /// OAuth secret: only from `ATALAYA_REDDIT__CLIENT_SECRET` (or `…_FILE`).
    pub client_secret: String,
    /// OAuth "script" app user (password grant); empty: application-only
    /// (`client_credentials`).
    pub username: String,
    /// That user's password: only from `ATALAYA_REDDIT__PASSWORD` (or `…_FILE`).
    pub password: String,
    /// Where tokens come from.
    pub auth_url: String,
    /// Where OAuth listings are read.
    pub oauth_url: String,
}

impl Default for RedditConfig {
    fn default() -> Self {
        Self {
            base_url: "https://www.reddit.com".into(),
            subreddits: ["cryptocurrency", "bitcoin", "ethereum", "cryptomarkets"]
                .map(String::from)
                .to_vec(),
            listings: vec!["hot".into(), "new".into()],
            poll_secs: 300,
            requests_per_minute: 10,
            aliases: crate::news::NewsConfig::default().aliases,
            client_id: String::new(),
            client_secret: String::new(),
            username: String::new(),
            password: String::new(),
            auth_url: "https://www.reddit.com/api/v1/access_token".into(),
            oauth_url: "https://oauth.reddit.com".into(),
        }
    }
}

impl RedditConfig {
    /// Problems with the settings, each with its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.subreddits.is_empty() {
            p.push("reddit.subreddits: at least one subreddit is needed".to_owned());
        }
        for s in &self.subreddits {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                p.push(format!("reddit.subreddits: {s:?} is not a subreddit name"));
            }
        }
        for l in &self.listings {
            if l != "hot" && l != "new" {
                p.push(format!("reddit.listings: {l:?} (use hot or new)"));
            }
        }
        if self.requests_per_minute == 0 || self.requests_per_minute > 100 {
            p.push("reddit.requests_per_minute: between 1 and 100 (Reddit's limits)".into());
        }
        if self.poll_secs < 10 {
            p.push("reddit.poll_secs: at least 10".into());
        }
        for (field, u) in [
            ("base_url", &self.base_url),
            ("auth_url", &self.auth_url),
            ("oauth_url", &self.oauth_url),
        ] {
            p.extend(crate::url_problem(&format!("reddit.{field}"), u));
        }
        if self.client_id.is_empty() != self.client_secret.is_empty() {
            p.push(
                "reddit.client_id: OAuth needs both client_id and client_secret \
                 (ATALAYA_REDDIT__CLIENT_SECRET)"
                    .into(),
            );
        }
        if self.username.is_empty() != self.password.is_empty() {
            p.push(
                "reddit.username: the password grant needs both username and password \
                 (ATALAYA_REDDIT__PASSWORD)"
                    .into(),
            );
        }
        p
    }

    /// Whether listings are read with OAuth.
    pub fn oauth(&self) -> bool {
        !self.client_id.is_empty() && !self.client_secret.is_empty()
    }
}

/// A bearer token and when to renew it.
#[derive(Debug)]
struct Token {
    value: String,
    renew_at: UnixNanos,
}

/// Asks `cfg.auth_url` for a token (HTTP Basic with the app's id and secret; the password
/// grant for a script app's user, else application-only), renewed five minutes before it
/// expires.
async fn fetch_token(client: &reqwest::Client, cfg: &RedditConfig) -> Result<Token, SourceError> {
    let form: Vec<(&str, &str)> = if cfg.username.is_empty() {
        vec![("grant_type", "client_credentials")]
    } else {
        vec![
            ("grant_type", "password"),
            ("username", cfg.username.as_str()),
            ("password", cfg.password.as_str()),
        ]
    };
    let fail = |message: String, transient: bool| SourceError::Venue {
        venue: "reddit",
        message,
        transient,
    };
    let res = client
        .post(&cfg.auth_url)
        .basic_auth(&cfg.client_id, Some(&cfg.client_secret))
        .form(&form)
        .send()
        .await
        .map_err(|e| fail(format!("token: unreachable: {}", crate::describe(e)), true))?;
    let status = res.status().as_u16();
    let v: Value = res.json().await.map_err(|e| {
        fail(
            format!("token: HTTP {status}: {}", crate::describe(e)),
            true,
        )
    })?;
    let token = v["access_token"].as_str().filter(|t| !t.is_empty());
    match token {
        Some(t) if status == 200 => {
            let secs = v["expires_in"].as_i64().unwrap_or(3600).clamp(60, 86_400);
            Ok(Token {
                value: t.to_owned(),
                renew_at: LiveClock.now() + (secs - 300).max(30) * S,
            })
        }
        _ => Err(fail(
            format!(
                "token: HTTP {status}: {}",
                v["error"].as_str().unwrap_or("no access_token")
            ),
            status != 401 && status != 400,
        )),
    }
}

/// Parses a listing answer into posts (stickied ones skipped), linked by `linker`.
pub fn parse_listing(v: &Value, linker: &Linker) -> Result<Vec<SocialPost>, SourceError> {
    let children = v["data"]["children"]
        .as_array()
        .ok_or_else(|| SourceError::Venue {
            venue: "reddit",
            message: "listing: no data.children".into(),
            transient: true,
        })?;
    let mut out = Vec::new();
    for c in children {
        let d = &c["data"];
        if c["kind"] != "t3" || d["stickied"].as_bool() == Some(true) {
            continue;
        }
        let (Some(name), Some(title)) = (d["name"].as_str(), d["title"].as_str()) else {
            continue;
        };
        let body = d["selftext"].as_str().unwrap_or("");
        let text = if body.is_empty() {
            title.to_owned()
        } else {
            format!("{title}\n{body}")
        };
        let created = d["created_utc"]
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0 && *t < 1e11)
            .map_or(0, |t| (t * 1e9) as i64);
        let Ok(post) = SocialPost::new(
            SocialPlatform::Reddit,
            name,
            d["author"].as_str().unwrap_or("[deleted]"),
            text.clone(),
            created,
        ) else {
            continue;
        };
        let score = d["score"].as_i64().unwrap_or(0);
        let comments = d["num_comments"].as_u64().unwrap_or(0);
        let url = d["permalink"]
            .as_str()
            .map(|p| format!("https://www.reddit.com{p}"));
        out.push(
            post.with_engagement(u64::try_from(score.max(0)).unwrap_or(0), 0, comments, score)
                .with_url(url)
                .with_assets(linker.link(&text)),
        );
    }
    Ok(out)
}

/// The Reddit source.
#[derive(Debug)]
pub struct RedditSource {
    cfg: RedditConfig,
}

impl RedditSource {
    /// A source for `cfg` (checked).
    pub fn new(cfg: RedditConfig) -> Result<Self, SourceError> {
        crate::refuse_problems(cfg.problems())?;
        Ok(Self { cfg })
    }
}

#[async_trait]
impl Source for RedditSource {
    fn name(&self) -> &str {
        "reddit"
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        // Reddit asks for `<platform>:<app ID>:<version> (by /u/<user>)`.
        let client = crate::http_client_as(
            "reddit",
            concat!(
                "rust:atalaya:v",
                env!("CARGO_PKG_VERSION"),
                " (market-sentiment agent; +https://github.com/atalaya-agent/atalaya)"
            ),
        )?;
        let linker = Linker::new(&self.cfg.aliases);
        // Evenly spaced: `requests_per_minute` per minute means one per 60/n seconds.
        let spacing_ns = 60 * S / i64::from(self.cfg.requests_per_minute.max(1));
        let mut limiter = RateLimiter::new(1, spacing_ns);
        let src = Symbol::new("reddit").map_err(SourceError::Model)?;
        let mut seen = crate::SeenPosts::default();
        ctx.health.set_state(SourceState::Running);
        let oauth = self.cfg.oauth();
        let base = if oauth {
            self.cfg.oauth_url.trim_end_matches('/').to_owned()
        } else {
            self.cfg.base_url.trim_end_matches('/').to_owned()
        };
        let mut token: Option<Token> = None;
        'outer: loop {
            for sub in &self.cfg.subreddits {
                for listing in &self.cfg.listings {
                    // Wait for the limiter (spacing, a 429's pause).
                    if !crate::wait_turn(&mut limiter, &ctx.cancel).await {
                        break 'outer;
                    }
                    let mut req = if oauth {
                        if token.as_ref().is_none_or(|t| LiveClock.now() >= t.renew_at) {
                            match fetch_token(&client, &self.cfg).await {
                                Ok(t) => token = Some(t),
                                Err(e) => {
                                    tracing::warn!(error = %e, "Reddit OAuth token refused");
                                    ctx.health.record_error(e.to_string());
                                    token = None;
                                    continue;
                                }
                            }
                        }
                        client.get(format!("{base}/r/{sub}/{listing}?limit=100&raw_json=1"))
                    } else {
                        client.get(format!(
                            "{base}/r/{sub}/{listing}.json?limit=100&raw_json=1"
                        ))
                    };
                    if let Some(t) = &token {
                        req = req.bearer_auth(&t.value);
                    }
                    let res = match req.send().await {
                        Ok(r) => r,
                        Err(e) => {
                            let msg =
                                format!("r/{sub}/{listing}: unreachable: {}", crate::describe(e));
                            tracing::warn!(error = %msg, "Reddit poll failed");
                            ctx.health.record_error(msg);
                            continue;
                        }
                    };
                    let now = LiveClock.now();
                    let header = |k: &str| {
                        res.headers()
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<f64>().ok())
                    };
                    let (remaining, reset) =
                        (header("x-ratelimit-remaining"), header("x-ratelimit-reset"));
                    let status = res.status().as_u16();
                    if status == 429 || remaining.is_some_and(|r| r < 1.0) {
                        let wait = reset
                            .or(header("retry-after"))
                            .unwrap_or(60.0)
                            .clamp(1.0, 600.0);
                        tracing::warn!(status, wait_s = wait, "Reddit rate limit: pausing");
                        limiter.too_many_requests(wait.ceil() as u64, now);
                        if status == 429 {
                            ctx.health
                                .record_error(format!("r/{sub}/{listing}: HTTP 429"));
                            continue;
                        }
                    }
                    if status == 401 && oauth {
                        // Revoked or expired early: the next call asks for a new token.
                        token = None;
                    }
                    if !res.status().is_success() {
                        ctx.health
                            .record_error(format!("r/{sub}/{listing}: HTTP {status}"));
                        continue;
                    }
                    let posts = match res.json::<Value>().await {
                        Ok(v) => parse_listing(&v, &linker),
                        Err(e) => Err(SourceError::Venue {
                            venue: "reddit",
                            message: format!("unreadable answer: {}", crate::describe(e)),
                            transient: true,
                        }),
                    };
                    let posts = match posts {
                        Ok(p) => p,
                        Err(e) => {
                            ctx.health.record_error(format!("r/{sub}/{listing}: {e}"));
                            continue;
                        }
                    };
                    seen.publish_new(&ctx, src, LiveClock.now(), posts).await?;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(self.cfg.poll_secs)) => {}
                () = ctx.cancel.cancelled() => break,
            }
        }
        ctx.health.set_state(SourceState::Finished);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_listing() {
        let v: Value = serde_json::from_str(r#"{"kind":"Listing","data":{"after":"t3_1gxyz9","before":null,"dist":2,"modhash":"","geo_filter":"",
 "children":[{"kind":"t3","data":{"id":"1gxyz9","name":"t3_1gxyz9","subreddit":"CryptoCurrency","title":"Bitcoin breaks out, ETH follows","selftext":"to the moon","author":"someone","created_utc":1795514400.0,"score":412,"ups":412,"upvote_ratio":0.93,"num_comments":87,"permalink":"/r/CryptoCurrency/comments/1gxyz9/x/","url":"https://x","domain":"self.CryptoCurrency","is_self":true,"over_18":false,"stickied":false}},
 {"kind":"t3","data":{"id":"s","name":"t3_s","title":"Daily discussion","stickied":true}}]}}"#).unwrap();
        let l = Linker::new(&RedditConfig::default().aliases);
        let posts = parse_listing(&v, &l).unwrap();
        assert_eq!(posts.len(), 1, "the stickied post is skipped");
        let p = &posts[0];
        assert_eq!((p.id(), p.author()), ("t3_1gxyz9", "someone"));
        assert_eq!(p.engagement(), (412, 0, 87, 412));
        assert_eq!(p.created_at(), 1_795_514_400 * S);
        let a: Vec<&str> = p.assets().iter().map(|s| s.as_str()).collect();
        assert_eq!(a, ["BTC", "ETH"]);
        assert!(p.url().unwrap().starts_with("https://www.reddit.com/r/"));
        assert!(parse_listing(&serde_json::json!({"error": 404}), &l).is_err());
    }
}
