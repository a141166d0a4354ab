use serde::{Deserialize, Serialize};

use crate::error::finite;
use crate::{ModelError, Symbol, UnixNanos};

/// A news headline (RSS, Atom, NewsAPI or the simulator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NewsItemRaw")]
pub struct NewsItem {
    id: String,
    publisher: String,
    title: String,
    summary: Option<String>,
    url: Option<String>,
    published_at: UnixNanos,
    assets: Vec<Symbol>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewsItemRaw {
    id: String,
    publisher: String,
    title: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    url: Option<String>,
    published_at: UnixNanos,
    #[serde(default)]
    assets: Vec<Symbol>,
}

impl TryFrom<NewsItemRaw> for NewsItem {
    type Error = ModelError;
    fn try_from(r: NewsItemRaw) -> Result<Self, Self::Error> {
        NewsItem::new(r.id, r.publisher, r.title, r.published_at).map(|n| {
            n.with_summary(r.summary)
                .with_url(r.url)
                .with_assets(r.assets)
        })
    }
}

fn non_empty(what: &'static str, field: &'static str, s: &str) -> Result<(), ModelError> {
    if s.trim().is_empty() {
        Err(ModelError::EmptyField { what, field })
    } else {
        Ok(())
    }
}

impl NewsItem {
    /// A headline with its stable id (feed guid or URL), publisher and publication time.
    pub fn new(
        id: impl Into<String>,
        publisher: impl Into<String>,
        title: impl Into<String>,
        published_at: UnixNanos,
    ) -> Result<Self, ModelError> {
        let (id, publisher, title) = (id.into(), publisher.into(), title.into());
        non_empty("news item", "id", &id)?;
        non_empty("news item", "publisher", &publisher)?;
        non_empty("news item", "title", &title)?;
        Ok(Self {
            id,
            publisher,
            title,
            summary: None,
            url: None,
            published_at,
            assets: Vec::new(),
        })
    }
    /// Adds a summary (empty strings are dropped).
    pub fn with_summary(mut self, summary: Option<String>) -> Self {
        self.summary = summary.filter(|s| !s.trim().is_empty());
        self
    }
    /// Adds a link (empty strings are dropped).
    pub fn with_url(mut self, url: Option<String>) -> Self {
        self.url = url.filter(|s| !s.trim().is_empty());
        self
    }
    /// Sets the assets the headline is about (normalised to upper case, de-duplicated).
    pub fn with_assets(mut self, assets: Vec<Symbol>) -> Self {
        let mut a: Vec<Symbol> = assets.into_iter().map(Symbol::to_upper).collect();
        a.sort();
        a.dedup();
        self.assets = a;
        self
    }
    /// Stable id (guid or URL).
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Who published it.
    pub fn publisher(&self) -> &str {
        &self.publisher
    }
    /// The headline.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// The summary, if any.
    pub fn summary(&self) -> Option<&str> {
        self.summary.as_deref()
    }
    /// The link, if any.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
    /// Publication time, nanoseconds UTC.
    pub fn published_at(&self) -> UnixNanos {
        self.published_at
    }
    /// Assets the headline is linked to.
    pub fn assets(&self) -> &[Symbol] {
        &self.assets
    }
}

/// Where a social post came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocialPlatform {
    /// reddit.com
    Reddit,
    /// X (formerly Twitter).
    X,
}

/// A social-media post with its engagement counts, kept for weighting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SocialPostRaw")]
pub struct SocialPost {
    platform: SocialPlatform,
    id: String,
    author: String,
    text: String,
    url: Option<String>,
    created_at: UnixNanos,
    likes: u64,
    reposts: u64,
    replies: u64,
    score: i64,
    assets: Vec<Symbol>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SocialPostRaw {
    platform: SocialPlatform,
    id: String,
    author: String,
    text: String,
    #[serde(default)]
    url: Option<String>,
    created_at: UnixNanos,
    #[serde(default)]
    likes: u64,
    #[serde(default)]
    reposts: u64,
    #[serde(default)]
    replies: u64,
    #[serde(default)]
    score: i64,
    #[serde(default)]
    assets: Vec<Symbol>,
}

impl TryFrom<SocialPostRaw> for SocialPost {
    type Error = ModelError;
    fn try_from(r: SocialPostRaw) -> Result<Self, Self::Error> {
        let mut p = SocialPost::new(r.platform, r.id, r.author, r.text, r.created_at)?;
        p.url = r.url;
        p.likes = r.likes;
        p.reposts = r.reposts;
        p.replies = r.replies;
        p.score = r.score;
        p.assets = r.assets;
        Ok(p)
    }
}

impl SocialPost {
    /// A post with id, author and non-empty text; engagement counts start at zero.
    pub fn new(
        platform: SocialPlatform,
        id: impl Into<String>,
        author: impl Into<String>,
        text: impl Into<String>,
        created_at: UnixNanos,
    ) -> Result<Self, ModelError> {
        let (id, author, text) = (id.into(), author.into(), text.into());
        non_empty("social post", "id", &id)?;
        non_empty("social post", "text", &text)?;
        Ok(Self {
            platform,
            id,
            author,
            text,
            url: None,
            created_at,
            likes: 0,
            reposts: 0,
            replies: 0,
            score: 0,
            assets: Vec::new(),
        })
    }
    /// Sets the link to the post.
    pub fn with_url(mut self, url: Option<String>) -> Self {
        self.url = url;
        self
    }
    /// Sets the assets the post is about.
    pub fn with_assets(mut self, assets: Vec<Symbol>) -> Self {
        self.assets = assets;
        self
    }
    /// The assets the post is about.
    pub fn assets(&self) -> &[Symbol] {
        &self.assets
    }
    /// Sets the engagement counts: likes, reposts (retweets), replies (comments) and score
    /// (Reddit's net votes).
    pub fn with_engagement(mut self, likes: u64, reposts: u64, replies: u64, score: i64) -> Self {
        (self.likes, self.reposts, self.replies, self.score) = (likes, reposts, replies, score);
        self
    }
    /// The platform.
    pub fn platform(&self) -> SocialPlatform {
        self.platform
    }
    /// The platform's post id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The author's handle.
    pub fn author(&self) -> &str {
        &self.author
    }
    /// The post's text.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// Link to the post.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
    /// Creation time, nanoseconds UTC.
    pub fn created_at(&self) -> UnixNanos {
        self.created_at
    }
    /// Engagement as (likes, reposts, replies, score).
    pub fn engagement(&self) -> (u64, u64, u64, i64) {
        (self.likes, self.reposts, self.replies, self.score)
    }
}

/// One on-chain measurement (mempool size, fee rate, gas price, stablecoin supply change …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "OnchainMetricRaw")]
pub struct OnchainMetric {
    chain: Symbol,
    metric: String,
    value: f64,
    unit: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnchainMetricRaw {
    chain: Symbol,
    metric: String,
    value: f64,
    unit: String,
}

impl TryFrom<OnchainMetricRaw> for OnchainMetric {
    type Error = ModelError;
    fn try_from(r: OnchainMetricRaw) -> Result<Self, Self::Error> {
        OnchainMetric::new(r.chain, r.metric, r.value, r.unit)
    }
}

impl OnchainMetric {
    /// A named, finite measurement on a chain, with its unit.
    pub fn new(
        chain: Symbol,
        metric: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let metric = metric.into();
        non_empty("on-chain metric", "metric", &metric)?;
        finite("on-chain metric", "value", value)?;
        Ok(Self {
            chain,
            metric,
            value,
            unit: unit.into(),
        })
    }
    /// The chain (`bitcoin`, `ethereum`).
    pub fn chain(&self) -> Symbol {
        self.chain
    }
    /// The metric's name (`mempool_vsize`, `base_fee_gwei` …).
    pub fn metric(&self) -> &str {
        &self.metric
    }
    /// The value.
    pub fn value(&self) -> f64 {
        self.value
    }
    /// The unit (`vbytes`, `sat/vB`, `gwei` …).
    pub fn unit(&self) -> &str {
        &self.unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_rejects_empty_title_and_normalises_assets() {
        assert!(NewsItem::new("1", "sim", "  ", 0).is_err());
        let n = NewsItem::new("1", "sim", "BTC up", 0)
            .unwrap()
            .with_assets(vec![
                Symbol::new("btc").unwrap(),
                Symbol::new("BTC").unwrap(),
            ]);
        assert_eq!(n.assets().len(), 1);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<NewsItem>(&json).unwrap(), n);
        assert!(serde_json::from_str::<NewsItem>(&json.replace("BTC up", "")).is_err());
    }

    #[test]
    fn social_and_onchain_validate() {
        assert!(SocialPost::new(SocialPlatform::X, "1", "a", "", 0).is_err());
        let p = SocialPost::new(SocialPlatform::Reddit, "1", "a", "hodl", 0)
            .unwrap()
            .with_engagement(1, 2, 3, -4);
        assert_eq!(p.engagement(), (1, 2, 3, -4));
        let chain = Symbol::new("bitcoin").unwrap();
        assert!(OnchainMetric::new(chain, "fee", f64::INFINITY, "sat/vB").is_err());
    }
}
