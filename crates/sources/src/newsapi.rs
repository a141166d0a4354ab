//! NewsAPI headlines (`GET /v2/everything`): `live.sources = ["newsapi"]`, when a key is
//! configured.
//!
//! The key travels in the `X-Api-Key` header, never in a URL. The free Developer plan allows
//! 100 requests a day, so the default poll is every 15 minutes (96 a day). Articles are
//! de-duplicated with the RSS feeds' rules (by URL, and of wire copies), linked to assets, and
//! published as [`NewsItem`]s stamped with the time they became known. NewsAPI's error bodies
//! (`{"status":"error","code":…}`) are reported with their code; a 429 or `rateLimited` pauses
//! the source for its `Retry-After` (an hour without one: the plan's quota is daily).

use async_trait::async_trait;
use atalaya_bus::Topic;
use atalaya_bus::health::SourceState;
use atalaya_model::{Clock, Envelope, Event, LiveClock, NewsItem, Symbol, UnixNanos, parse_utc};
use atalaya_net::RateLimiter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::news::{Dedup, Linker};
use crate::{Source, SourceContext, SourceError};

const S: i64 = 1_000_000_000;

/// The NewsAPI query and polling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewsApiConfig {
    /// API root (`https://newsapi.org/v2`, or a test server).
    pub base_url: String,
    /// Secret: only from `ATALAYA_NEWSAPI__API_KEY` (or `…_FILE`).
    pub api_key: String,
    /// The `q` search (NewsAPI syntax: `OR`, `AND`, `"phrases"`, `-exclusions`; ≤ 500 chars).
    pub query: String,
    /// Article language (`en`, `de`, …; empty for all).
    pub language: String,
    /// Seconds between requests.
    pub poll_secs: u64,
    /// Names that mean an asset (as `[news].aliases`).
    pub aliases: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for NewsApiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://newsapi.org/v2".into(),
            api_key: String::new(),
            query:
                "bitcoin OR ethereum OR cardano OR solana OR avalanche OR crypto OR cryptocurrency"
                    .into(),
            language: "en".into(),
            poll_secs: 900,
            aliases: crate::news::NewsConfig::default().aliases,
        }
    }
}

impl NewsApiConfig {
    /// Problems with the settings, each with its field (the key is checked by
    /// [`NewsApiConfig::key_problem`], only when the source is used).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.query.trim().is_empty() || self.query.chars().count() > 500 {
            p.push("newsapi.query: between 1 and 500 characters".to_owned());
        }
        let code_ok =
            self.language.len() == 2 && self.language.bytes().all(|b| b.is_ascii_lowercase());
        if !(self.language.is_empty() || code_ok) {
            p.push(format!(
                "newsapi.language: {:?} (a two-letter code such as en)",
                self.language
            ));
        }
        if self.poll_secs == 0 {
            p.push(
                "newsapi.poll_secs: at least 1 (the free plan allows 100 requests a day)".into(),
            );
        }
        p.extend(crate::url_problem("newsapi.base_url", &self.base_url));
        p
    }
}

impl NewsApiConfig {
    /// The missing key, if it is missing.
    pub fn key_problem(&self) -> Option<String> {
        self.api_key
            .trim()
            .is_empty()
            .then(|| "newsapi.api_key: no key; set ATALAYA_NEWSAPI__API_KEY".to_owned())
    }
}

fn bad(message: impl Into<String>, transient: bool) -> SourceError {
    SourceError::Venue {
        venue: "newsapi",
        message: message.into(),
        transient,
    }
}

/// Parses an `/everything` answer into items linked by `linker` (articles NewsAPI reports
/// as `[Removed]`, or without a URL, title or valid time, are skipped), or its error.
pub fn parse_everything(v: &Value, linker: &Linker) -> Result<Vec<NewsItem>, SourceError> {
    if v["status"] == "error" {
        let code = v["code"].as_str().unwrap_or("unknown");
        let transient = matches!(code, "rateLimited" | "unexpectedError");
        return Err(bad(
            format!(
                "{code}: {}",
                v["message"].as_str().unwrap_or("(no message)")
            ),
            transient,
        ));
    }
    let articles = v["articles"]
        .as_array()
        .filter(|_| v["status"] == "ok")
        .ok_or_else(|| bad("answer without status ok and articles", true))?;
    let mut out = Vec::new();
    for a in articles {
        let (Some(url), Some(title)) = (a["url"].as_str(), a["title"].as_str()) else {
            continue;
        };
        if title.trim() == "[Removed]" || url.trim().is_empty() {
            continue;
        }
        let Some(at) = a["publishedAt"].as_str().and_then(|t| parse_utc(t).ok()) else {
            continue;
        };
        let publisher = a["source"]["name"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("newsapi");
        let summary = a["description"].as_str().map(str::to_owned);
        let Ok(item) = NewsItem::new(url, publisher, title.trim(), at) else {
            continue;
        };
        let text = format!("{title} {}", summary.as_deref().unwrap_or(""));
        out.push(
            item.with_summary(summary)
                .with_url(Some(url.to_owned()))
                .with_assets(linker.link(&text)),
        );
    }
    Ok(out)
}

/// The NewsAPI source.
#[derive(Debug)]
pub struct NewsApiSource {
    cfg: NewsApiConfig,
}

impl NewsApiSource {
    /// A source for `cfg` (checked: it needs a key).
    pub fn new(cfg: NewsApiConfig) -> Result<Self, SourceError> {
        let mut p = cfg.problems();
        p.extend(cfg.key_problem());
        crate::refuse_problems(p)?;
        Ok(Self { cfg })
    }
}

#[async_trait]
impl Source for NewsApiSource {
    fn name(&self) -> &str {
        "newsapi"
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let cfg = &self.cfg;
        let client =
            crate::http_client_as("newsapi", concat!("atalaya/", env!("CARGO_PKG_VERSION")))?;
        let linker = Linker::new(&cfg.aliases);
        let mut dedup = Dedup::default();
        let mut limiter = RateLimiter::new(1, i64::try_from(cfg.poll_secs).unwrap_or(900) * S);
        let src = Symbol::new("newsapi").map_err(SourceError::Model)?;
        let url = format!("{}/everything", cfg.base_url.trim_end_matches('/'));
        let mut query: Vec<(&str, &str)> = vec![
            ("q", cfg.query.as_str()),
            ("sortBy", "publishedAt"),
            ("pageSize", "100"),
        ];
        if !cfg.language.is_empty() {
            query.push(("language", cfg.language.as_str()));
        }
        let url = reqwest::Url::parse_with_params(&url, &query)
            .map_err(|e| SourceError::Config(vec![format!("newsapi.base_url: {e}")]))?;
        let mut seq = 0u64;
        ctx.health.set_state(SourceState::Running);
        while crate::wait_turn(&mut limiter, &ctx.cancel).await {
            let req = client.get(url.clone()).header("X-Api-Key", &cfg.api_key);
            let res = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let msg = format!("unreachable: {}", crate::describe(e));
                    tracing::warn!(error = %msg, "NewsAPI poll failed");
                    ctx.health.record_error(msg);
                    continue;
                }
            };
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = res.json::<Value>().await;
            let items = match body {
                Ok(v) => parse_everything(&v, &linker).map_err(|e| (e, v["code"] == "rateLimited")),
                Err(e) => Err((
                    bad(
                        format!("HTTP {status}: unreadable answer: {}", crate::describe(e)),
                        true,
                    ),
                    false,
                )),
            };
            let items = match items {
                Ok(items) if status == 200 => items,
                Ok(_) => {
                    ctx.health.record_error(format!("HTTP {status}"));
                    continue;
                }
                Err((e, limited)) => {
                    if status == 429 || limited {
                        let wait = retry_after.unwrap_or(3600).clamp(1, 86_400);
                        tracing::warn!(wait_s = wait, "NewsAPI rate limit: pausing");
                        limiter.too_many_requests(wait, LiveClock.now());
                    }
                    tracing::warn!(status, error = %e, "NewsAPI answered an error");
                    ctx.health.record_error(format!("HTTP {status}: {e}"));
                    continue;
                }
            };
            let known: UnixNanos = LiveClock.now();
            let mut n = 0;
            for item in items {
                if !dedup.is_new(item.id(), item.title()) {
                    continue;
                }
                seq += 1;
                let env = Envelope::new(seq, known, known, src, Event::News(Box::new(item)));
                ctx.bus.publish(Topic::Inbound, env).await?;
                n += 1;
            }
            if n > 0 {
                ctx.health.record_events(n, known);
                tracing::info!(new = n, "NewsAPI articles");
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
    fn documented_answer_and_errors() {
        let l = Linker::new(&NewsApiConfig::default().aliases);
        let v = json!({"status":"ok","totalResults":3,"articles":[
            {"source":{"id":null,"name":"CoinDesk"},"author":"Jane Doe","title":"Bitcoin tops $100k as ETF inflows surge","description":"Ether follows.","url":"https://example.com/a","urlToImage":null,"publishedAt":"2026-11-23T18:04:00Z","content":"… [+2101 chars]"},
            {"source":{"id":null,"name":""},"author":null,"title":"[Removed]","description":null,"url":"https://removed.com","urlToImage":null,"publishedAt":"1970-01-01T00:00:00Z","content":null},
            {"source":{"id":"x","name":"Wire"},"author":null,"title":"Solana upgrade ships","description":null,"url":"https://example.com/b","urlToImage":null,"publishedAt":"2026-11-23T19:00:00.000Z","content":null}
        ]});
        let items = parse_everything(&v, &l).unwrap();
        assert_eq!(items.len(), 2, "the removed article is skipped");
        let a = &items[0];
        assert_eq!(
            (a.id(), a.publisher()),
            ("https://example.com/a", "CoinDesk")
        );
        assert_eq!(a.summary(), Some("Ether follows."));
        assert_eq!(a.published_at(), parse_utc("2026-11-23T18:04:00Z").unwrap());
        let assets: Vec<&str> = a.assets().iter().map(|s| s.as_str()).collect();
        assert_eq!(assets, ["BTC", "ETH"]);
        assert_eq!(items[1].summary(), None);
        let e = json!({"status":"error","code":"apiKeyInvalid","message":"Your API key is invalid or incorrect."});
        let err = parse_everything(&e, &l).unwrap_err().to_string();
        assert!(
            err.contains("apiKeyInvalid") && err.contains("invalid"),
            "{err}"
        );
        assert!(parse_everything(&json!({"status":"ok"}), &l).is_err());
        assert!(parse_everything(&json!([]), &l).is_err());
    }

    #[test]
    fn a_key_is_required_and_settings_checked() {
        assert!(NewsApiConfig::default().problems().is_empty());
        assert!(NewsApiConfig::default().key_problem().is_some());
        let ok = NewsApiConfig {
            api_key: "k".into(),
            ..NewsApiConfig::default()
        };
        assert!(ok.problems().is_empty());
        let bad = NewsApiConfig {
            api_key: "k".into(),
            query: String::new(),
            language: "english".into(),
            poll_secs: 0,
            base_url: "newsapi.org".into(),
            ..NewsApiConfig::default()
        };
        assert_eq!(bad.problems().len(), 4, "{:?}", bad.problems());
        assert!(NewsApiSource::new(NewsApiConfig::default()).is_err());
    }
}
