//! Posts on X from the API v2 recent search (`GET /2/tweets/search/recent`):
//! `live.sources = ["x"]`, when a bearer token is configured.
//!
//! Each query is searched in turn with `max_results=100`, the post fields needed for weighting
//! (`created_at`, `public_metrics`, `author_id`) and the authors expanded for their user names;
//! later searches ask only for posts newer than the newest seen (`since_id`). Requests are
//! spaced evenly within `requests_per_15min` (the app's budget for this endpoint); the
//! `x-rate-limit-remaining` / `x-rate-limit-reset` headers (reset in UNIX seconds; X sends no
//! `Retry-After`) and 429s pause every query until the window resets. Posts are de-duplicated
//! by id, linked to assets, and published as [`SocialPost`]s with their likes, reposts
//! (retweets and quotes) and replies, stamped with the time they became known.

use std::collections::HashMap;

use async_trait::async_trait;
use atalaya_bus::health::SourceState;
use atalaya_model::{Clock, LiveClock, SocialPlatform, SocialPost, Symbol, parse_utc};
use atalaya_net::RateLimiter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::news::Linker;
use crate::{Source, SourceContext, SourceError};

const S: i64 = 1_000_000_000;

/// The searches and their budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XConfig {
    /// API root (`https://api.x.com/2`, or a test server).
    pub base_url: String,
    /// Secret: an app's bearer token, only from `ATALAYA_X__BEARER_TOKEN` (or `…_FILE`).
    pub bearer_token: String,
    /// Search queries (X syntax, ≤ 512 characters each); retweets are excluded by adding
    /// `-is:retweet` when a query does not say.
    pub queries: Vec<String>,
    /// Requests allowed per 15 minutes on this endpoint (450 per app on the current table;
    /// older plans: Basic 60, Free 1).
    pub requests_per_15min: u32,
    /// Names that mean an asset (as `[news].aliases`).
    pub aliases: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for XConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.x.com/2".into(),
            bearer_token: String::new(),
            queries: [
                "(bitcoin OR btc OR $BTC) lang:en",
                "(ethereum OR $ETH) lang:en",
                "(solana OR cardano OR avalanche OR $SOL OR $ADA OR $AVAX) lang:en",
            ]
            .map(String::from)
            .to_vec(),
            requests_per_15min: 60,
            aliases: crate::news::NewsConfig::default().aliases,
        }
    }
}

impl XConfig {
    /// The missing token, if it is missing.
    pub fn token_problem(&self) -> Option<String> {
        self.bearer_token
            .trim()
            .is_empty()
            .then(|| "x.bearer_token: no token; set ATALAYA_X__BEARER_TOKEN".to_owned())
    }

    /// Problems with the settings, each with its field (the token is checked by
    /// [`XConfig::token_problem`], only when the source is used).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.queries.is_empty() {
            p.push("x.queries: at least one query".to_owned());
        }
        for (i, q) in self.queries.iter().enumerate() {
            if q.trim().is_empty() || query_text(q).chars().count() > 512 {
                p.push(format!("x.queries[{i}]: between 1 and 512 characters"));
            }
        }
        if self.requests_per_15min == 0 || self.requests_per_15min > 450 {
            p.push("x.requests_per_15min: between 1 and 450".into());
        }
        p.extend(crate::url_problem("x.base_url", &self.base_url));
        p
    }
}

/// The query as sent: retweets excluded unless the query mentions `is:retweet` itself.
pub fn query_text(q: &str) -> String {
    if q.contains("is:retweet") {
        q.trim().to_owned()
    } else {
        format!("{} -is:retweet", q.trim())
    }
}

fn bad(message: impl Into<String>) -> SourceError {
    SourceError::Venue {
        venue: "x",
        message: message.into(),
        transient: true,
    }
}

/// What one search answer holds.
#[derive(Debug, Default)]
pub struct Search {
    /// The posts, linked by the linker given.
    pub posts: Vec<SocialPost>,
    /// `meta.newest_id` (for the next `since_id`).
    pub newest_id: Option<String>,
    /// Partial failures reported beside the data (`errors[]`).
    pub errors: Vec<String>,
}

/// Parses a recent-search answer (no `data` means no match).
pub fn parse_search(v: &Value, linker: &Linker) -> Result<Search, SourceError> {
    let meta = v
        .get("meta")
        .filter(|m| m.is_object())
        .ok_or_else(|| bad("answer without meta"))?;
    let users: HashMap<&str, &str> = v["includes"]["users"]
        .as_array()
        .map(|us| {
            us.iter()
                .filter_map(|u| Some((u["id"].as_str()?, u["username"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Search {
        newest_id: meta["newest_id"].as_str().map(str::to_owned),
        errors: v["errors"]
            .as_array()
            .map(|es| {
                es.iter()
                    .map(|e| {
                        e["detail"]
                            .as_str()
                            .or(e["message"].as_str())
                            .unwrap_or("unspecified error")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ..Search::default()
    };
    let Some(data) = v.get("data") else {
        return Ok(out);
    };
    let data = data.as_array().ok_or_else(|| bad("data is not an array"))?;
    for t in data {
        let (Some(id), Some(text)) = (t["id"].as_str(), t["text"].as_str()) else {
            continue;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let created = t["created_at"]
            .as_str()
            .and_then(|c| parse_utc(c).ok())
            .unwrap_or(0);
        let author_id = t["author_id"].as_str().unwrap_or("");
        let author = users.get(author_id).copied().unwrap_or(author_id);
        let Ok(post) = SocialPost::new(SocialPlatform::X, id, author, text, created) else {
            continue;
        };
        let m = &t["public_metrics"];
        let n = |k: &str| m[k].as_u64().unwrap_or(0);
        let likes = n("like_count");
        let url = if author.is_empty() {
            format!("https://x.com/i/web/status/{id}")
        } else {
            format!("https://x.com/{author}/status/{id}")
        };
        out.posts.push(
            post.with_engagement(
                likes,
                n("retweet_count") + n("quote_count"),
                n("reply_count"),
                i64::try_from(likes).unwrap_or(i64::MAX),
            )
            .with_url(Some(url))
            .with_assets(linker.link(text)),
        );
    }
    Ok(out)
}

/// The X source.
#[derive(Debug)]
pub struct XSource {
    cfg: XConfig,
}

impl XSource {
    /// A source for `cfg` (checked: it needs a token).
    pub fn new(cfg: XConfig) -> Result<Self, SourceError> {
        let mut p = cfg.problems();
        p.extend(cfg.token_problem());
        crate::refuse_problems(p)?;
        Ok(Self { cfg })
    }
}

#[async_trait]
impl Source for XSource {
    fn name(&self) -> &str {
        "x"
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let cfg = &self.cfg;
        let client = crate::http_client("x")?;
        let linker = Linker::new(&cfg.aliases);
        let spacing = 15 * 60 * S / i64::from(cfg.requests_per_15min.max(1));
        let mut limiter = RateLimiter::new(1, spacing);
        let src = Symbol::new("x").map_err(SourceError::Model)?;
        let url = format!(
            "{}/tweets/search/recent",
            cfg.base_url.trim_end_matches('/')
        );
        let mut since: Vec<Option<String>> = vec![None; cfg.queries.len()];
        let mut seen = crate::SeenPosts::default();
        ctx.health.set_state(SourceState::Running);
        'outer: loop {
            for (i, q) in cfg.queries.iter().enumerate() {
                if !crate::wait_turn(&mut limiter, &ctx.cancel).await {
                    break 'outer;
                }
                let text = query_text(q);
                let mut params: Vec<(&str, &str)> = vec![
                    ("query", text.as_str()),
                    ("max_results", "100"),
                    ("tweet.fields", "created_at,public_metrics,author_id,lang"),
                    ("expansions", "author_id"),
                    ("user.fields", "username"),
                ];
                if let Some(s) = &since[i] {
                    params.push(("since_id", s.as_str()));
                }
                let Ok(u) = reqwest::Url::parse_with_params(&url, &params) else {
                    ctx.health
                        .record_error(format!("x.base_url: {url:?} is not a URL"));
                    break 'outer;
                };
                let res = match client.get(u).bearer_auth(&cfg.bearer_token).send().await {
                    Ok(r) => r,
                    Err(e) => {
                        let msg = format!("unreachable: {}", crate::describe(e));
                        tracing::warn!(error = %msg, "X search failed");
                        ctx.health.record_error(msg);
                        continue;
                    }
                };
                let now = LiveClock.now();
                let header = |k: &str| {
                    res.headers()
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<i64>().ok())
                };
                let (remaining, reset) = (
                    header("x-rate-limit-remaining"),
                    header("x-rate-limit-reset"),
                );
                let status = res.status().as_u16();
                if status == 429 || remaining == Some(0) {
                    // `reset` is the window's end in UNIX seconds; 15 minutes without it.
                    let wait = reset
                        .map_or(15 * 60, |r| r.saturating_sub(now / S) + 1)
                        .clamp(1, 15 * 60 + 60);
                    tracing::warn!(status, wait_s = wait, "X rate limit: pausing");
                    limiter.too_many_requests(u64::try_from(wait).unwrap_or(900), now);
                }
                if !res.status().is_success() {
                    let body = res.text().await.unwrap_or_default();
                    let detail: String = body.chars().take(200).collect();
                    ctx.health
                        .record_error(format!("query {i}: HTTP {status}: {detail}"));
                    continue;
                }
                let found = match res.json::<Value>().await {
                    Ok(v) => parse_search(&v, &linker),
                    Err(e) => Err(bad(format!("unreadable answer: {}", crate::describe(e)))),
                };
                let found = match found {
                    Ok(f) => f,
                    Err(e) => {
                        ctx.health.record_error(format!("query {i}: {e}"));
                        continue;
                    }
                };
                for e in &found.errors {
                    ctx.health
                        .record_error(format!("query {i}: partial error: {e}"));
                }
                if found.newest_id.is_some() {
                    since[i] = found.newest_id;
                }
                // Oldest first, as they were posted.
                let posts = found.posts.into_iter().rev();
                seen.publish_new(&ctx, src, LiveClock.now(), posts).await?;
            }
        }
        ctx.health.set_state(SourceState::Finished);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_answer_no_match_and_partial_errors() {
        let l = Linker::new(&XConfig::default().aliases);
        let v = json!({"data":[{"id":"1860000000000000000","text":"$BTC breaking out, ethereum next","edit_history_tweet_ids":["1860000000000000000"],"created_at":"2026-11-24T09:58:01.000Z","author_id":"12","lang":"en","public_metrics":{"retweet_count":3,"reply_count":1,"like_count":20,"quote_count":2,"bookmark_count":2,"impression_count":1500}}],
            "includes":{"users":[{"id":"12","name":"Someone","username":"someone"}]},
            "meta":{"newest_id":"1860000000000000000","oldest_id":"1859999999999999999","result_count":1,"next_token":"b26v89c19zqg8o3f"},
            "errors":[{"title":"Not Found Error","detail":"Could not find user with id: [13]."}]});
        let s = parse_search(&v, &l).unwrap();
        assert_eq!(s.posts.len(), 1);
        let p = &s.posts[0];
        assert_eq!((p.id(), p.author()), ("1860000000000000000", "someone"));
        assert_eq!(p.engagement(), (20, 5, 1, 20));
        assert_eq!(p.created_at(), parse_utc("2026-11-24T09:58:01Z").unwrap());
        assert_eq!(
            p.url(),
            Some("https://x.com/someone/status/1860000000000000000")
        );
        let a: Vec<&str> = p.assets().iter().map(|s| s.as_str()).collect();
        assert_eq!(a, ["BTC", "ETH"]);
        assert_eq!(s.newest_id.as_deref(), Some("1860000000000000000"));
        assert_eq!(s.errors, ["Could not find user with id: [13]."]);
        let none = parse_search(&json!({"meta":{"result_count":0}}), &l).unwrap();
        assert!(none.posts.is_empty() && none.newest_id.is_none());
        assert!(parse_search(&json!({"title":"Unauthorized","status":401}), &l).is_err());
        assert!(parse_search(&json!({"meta":{},"data":{}}), &l).is_err());
    }

    #[test]
    fn retweets_are_excluded_and_settings_checked() {
        assert_eq!(query_text(" bitcoin "), "bitcoin -is:retweet");
        assert_eq!(query_text("bitcoin is:retweet"), "bitcoin is:retweet");
        assert!(XConfig::default().problems().is_empty());
        assert!(
            XConfig::default().token_problem().is_some(),
            "a token is needed"
        );
        assert!(XSource::new(XConfig::default()).is_err());
        let bad = XConfig {
            bearer_token: "t".into(),
            queries: vec![String::new(), "x".repeat(600)],
            requests_per_15min: 0,
            base_url: "api.x.com".into(),
            ..XConfig::default()
        };
        assert_eq!(bad.problems().len(), 4, "{:?}", bad.problems());
    }
}
