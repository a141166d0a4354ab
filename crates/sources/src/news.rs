//! News from RSS 2.0 and Atom feeds: `live.sources = ["news"]`.
//!
//! Each feed is polled with conditional GET (the stored `ETag` goes back as `If-None-Match`,
//! `Last-Modified` as `If-Modified-Since`; a `304 Not Modified` costs the publisher nothing),
//! no faster than the feed's `Cache-Control: max-age` or `<ttl>` allow. Items are parsed with
//! feed-rs, de-duplicated by id (RSS `guid`, else `link`; Atom `id`) and by near-identical
//! headline across feeds, linked to assets ([`Linker`]: names, tickers, `$cashtags`,
//! configurable aliases), and published as [`NewsItem`] events stamped with the time they
//! became known (the envelope's event time), so a replay sees only what was known then. A
//! malformed feed, a 429 (with `Retry-After`) or a dead server is counted and retried; the
//! other feeds go on.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use atalaya_bus::Topic;
use atalaya_bus::health::SourceState;
use atalaya_model::{Clock, Envelope, Event, LiveClock, NewsItem, Symbol, UnixNanos};
use serde::{Deserialize, Serialize};

use crate::{Source, SourceContext, SourceError};

const S: i64 = 1_000_000_000;

/// News feeds and entity linking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewsConfig {
    /// RSS 2.0 or Atom feed URLs.
    pub feeds: Vec<String>,
    /// Seconds between polls of a feed (a feed's own `max-age` or `ttl` may make it longer).
    pub poll_secs: u64,
    /// Names that mean an asset, beside its ticker and `$cashtag` (`BTC = ["bitcoin"]`).
    pub aliases: BTreeMap<String, Vec<String>>,
}

impl Default for NewsConfig {
    fn default() -> Self {
        let aliases = [
            ("BTC", &["bitcoin", "xbt"][..]),
            ("ETH", &["ethereum", "ether"][..]),
            ("ADA", &["cardano"][..]),
            ("SOL", &["solana"][..]),
            ("AVAX", &["avalanche"][..]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
        .collect();
        Self {
            feeds: vec![
                "https://www.coindesk.com/arc/outboundfeeds/rss/".into(),
                "https://cointelegraph.com/rss".into(),
                "https://decrypt.co/feed".into(),
            ],
            poll_secs: 300,
            aliases,
        }
    }
}

impl NewsConfig {
    /// Problems with the settings, each with its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.feeds.is_empty() {
            p.push("news.feeds: at least one feed URL is needed".to_owned());
        }
        for f in &self.feeds {
            p.extend(crate::url_problem("news.feeds", f));
        }
        if self.poll_secs < 10 {
            p.push("news.poll_secs: at least 10 (be kind to publishers)".into());
        }
        for k in self.aliases.keys() {
            if Symbol::new(k).is_err() {
                p.push(format!("news.aliases: {k:?} is not an asset symbol"));
            }
        }
        p
    }
}

/// Finds the assets a text is about: `$cashtags` (any case), tickers written in capitals as
/// whole words, and names or aliases in any case as whole words.
#[derive(Clone, Debug, Default)]
pub struct Linker {
    /// Lower-case word (or `$ticker`) → asset.
    words: HashMap<String, Symbol>,
    /// Upper-case ticker → asset.
    tickers: HashMap<String, Symbol>,
    /// Multi-word aliases (lower case) → asset.
    phrases: Vec<(Vec<String>, Symbol)>,
}

impl Linker {
    /// A linker for `aliases` (asset → names); each asset's ticker and cashtag are implied.
    pub fn new(aliases: &BTreeMap<String, Vec<String>>) -> Self {
        let mut l = Self::default();
        for (asset, names) in aliases {
            let Ok(sym) = Symbol::new(&asset.to_ascii_uppercase()) else {
                continue;
            };
            l.tickers.insert(asset.to_ascii_uppercase(), sym);
            l.words
                .insert(format!("${}", asset.to_ascii_lowercase()), sym);
            for n in names {
                let parts: Vec<String> = n.split_whitespace().map(str::to_lowercase).collect();
                match parts.len() {
                    0 => {}
                    1 => {
                        l.words.insert(parts[0].clone(), sym);
                    }
                    _ => l.phrases.push((parts, sym)),
                }
            }
        }
        l
    }

    /// The assets `text` mentions, in order of first mention, each once.
    pub fn link(&self, text: &str) -> Vec<Symbol> {
        let mut out: Vec<Symbol> = Vec::new();
        let mut push = |s: Symbol| {
            if !out.contains(&s) {
                out.push(s);
            }
        };
        let tokens: Vec<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '$'))
            .filter(|t| !t.is_empty())
            .collect();
        let lower: Vec<String> = tokens.iter().map(|t| t.to_lowercase()).collect();
        for (i, t) in tokens.iter().enumerate() {
            if let Some(s) = self.tickers.get(*t) {
                push(*s);
            } else if let Some(s) = self.words.get(&lower[i]) {
                push(*s);
            } else if let Some(rest) = lower[i].strip_prefix('$')
                && let Some(s) = self.tickers.get(&rest.to_ascii_uppercase())
            {
                push(*s);
            }
            for (phrase, s) in &self.phrases {
                if lower.len() >= i + phrase.len() && lower[i..i + phrase.len()] == phrase[..] {
                    push(*s);
                }
            }
        }
        out
    }
}

/// Drops repeats: the same id, or a headline whose words are nearly all those of a recent one
/// (Jaccard similarity ≥ 0.8 over lower-case words), as when two outlets run one wire story.
#[derive(Debug, Default)]
pub struct Dedup {
    ids: HashSet<String>,
    order: VecDeque<String>,
    titles: VecDeque<HashSet<String>>,
}

impl Dedup {
    const IDS: usize = 20_000;
    const TITLES: usize = 500;

    fn words(title: &str) -> HashSet<String> {
        title
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    /// Whether an item with `id` and `title` is new; records it when it is.
    pub fn is_new(&mut self, id: &str, title: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        let words = Self::words(title);
        let near = self.titles.iter().any(|t| {
            let inter = t.intersection(&words).count();
            let union = t.len() + words.len() - inter;
            union > 0 && inter as f64 / union as f64 >= 0.8
        });
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        if self.order.len() > Self::IDS
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        if near {
            return false;
        }
        self.titles.push_back(words);
        if self.titles.len() > Self::TITLES {
            self.titles.pop_front();
        }
        true
    }
}

/// What a poll of one feed gave.
#[derive(Debug, Default)]
pub struct Poll {
    /// Parsed items (before de-duplication).
    pub items: Vec<NewsItem>,
    /// The server answered 304 Not Modified.
    pub not_modified: bool,
    /// The earliest next poll the feed asks for (`max-age`, `ttl`, `Retry-After`), if any.
    pub min_interval: Option<Duration>,
}

/// One feed's conditional-GET state.
#[derive(Debug, Default, Clone)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Polls feeds with conditional GET.
#[derive(Debug)]
pub struct FeedClient {
    client: reqwest::Client,
    validators: HashMap<String, Validators>,
    linker: Linker,
}

fn err(message: impl Into<String>, transient: bool) -> SourceError {
    SourceError::Venue {
        venue: "news",
        message: message.into(),
        transient,
    }
}

/// Parses a feed body (RSS 2.0, Atom, RSS 1.0 or JSON Feed) into items linked by `linker`;
/// `publisher` names the feed when it has no title.
pub fn parse_feed(
    body: &[u8],
    publisher: &str,
    linker: &Linker,
    now: UnixNanos,
) -> Result<(Vec<NewsItem>, Option<Duration>), SourceError> {
    // Items without a guid / id get the RSS rule's next key: their link, else their title
    // (feed-rs would fall back to a random UUID, which defeats de-duplication across polls).
    let parser = feed_rs::parser::Builder::new()
        .id_generator(|links, title, _uri| {
            links
                .first()
                .map(|l| l.href.clone())
                .or_else(|| title.as_ref().map(|t| t.content.trim().to_owned()))
                .unwrap_or_default()
        })
        .build();
    let feed = parser
        .parse(body)
        .map_err(|e| err(format!("malformed feed: {e}"), true))?;
    let source = feed
        .title
        .as_ref()
        .map(|t| t.content.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| publisher.to_owned());
    let ttl = feed.ttl.map(|m| Duration::from_secs(u64::from(m) * 60));
    let mut items = Vec::new();
    for e in feed.entries {
        let Some(title) = e
            .title
            .as_ref()
            .map(|t| t.content.trim().to_owned())
            .filter(|t| !t.is_empty())
        else {
            continue;
        };
        let url = e
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .map(|l| l.href.clone());
        // feed-rs gives the guid / Atom id, or a hash of the entry when there is none.
        let id = if e.id.trim().is_empty() {
            url.clone().unwrap_or_else(|| title.clone())
        } else {
            e.id.clone()
        };
        let published = e
            .published
            .or(e.updated)
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(now);
        let summary = e
            .summary
            .as_ref()
            .map(|s| strip_tags(&s.content))
            .filter(|s| !s.is_empty());
        let text = format!("{title} {}", summary.as_deref().unwrap_or(""));
        let Ok(item) = NewsItem::new(id, source.clone(), title, published) else {
            continue;
        };
        items.push(
            item.with_summary(summary)
                .with_url(url)
                .with_assets(linker.link(&text)),
        );
    }
    Ok((items, ttl))
}

/// Text without HTML tags, whitespace collapsed.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn seconds_header(res: &reqwest::Response, name: &str) -> Option<u64> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn max_age(res: &reqwest::Response) -> Option<u64> {
    let cc = res.headers().get("cache-control")?.to_str().ok()?;
    cc.split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse().ok())
}

impl FeedClient {
    /// A client linking items with `linker`.
    pub fn new(linker: Linker) -> Result<Self, SourceError> {
        Ok(Self {
            client: crate::http_client("news")?,
            validators: HashMap::new(),
            linker,
        })
    }

    /// Polls `url` once (conditionally after the first time).
    pub async fn poll(&mut self, url: &str) -> Result<Poll, SourceError> {
        let v = self.validators.get(url).cloned().unwrap_or_default();
        let mut req = self.client.get(url).header(
            "accept",
            "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
        );
        if let Some(e) = &v.etag {
            req = req.header("if-none-match", e);
        }
        if let Some(l) = &v.last_modified {
            req = req.header("if-modified-since", l);
        }
        let res = req
            .send()
            .await
            .map_err(|e| err(format!("{url}: unreachable: {}", crate::describe(e)), true))?;
        let status = res.status().as_u16();
        let age = max_age(&res).map(Duration::from_secs);
        match status {
            304 => Ok(Poll {
                not_modified: true,
                min_interval: age,
                ..Poll::default()
            }),
            200..=299 => {
                let header = |k: &str| {
                    res.headers()
                        .get(k)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned)
                };
                let validators = Validators {
                    etag: header("etag"),
                    last_modified: header("last-modified"),
                };
                let body = res
                    .bytes()
                    .await
                    .map_err(|e| err(format!("{url}: {}", crate::describe(e)), true))?;
                let host = url.split('/').nth(2).unwrap_or(url);
                let (items, ttl) = parse_feed(&body, host, &self.linker, LiveClock.now())?;
                // Keep the validators only once the body was good.
                self.validators.insert(url.to_owned(), validators);
                Ok(Poll {
                    items,
                    not_modified: false,
                    min_interval: age.max(ttl),
                })
            }
            429 | 503 => {
                let after = seconds_header(&res, "retry-after").unwrap_or(60);
                Err(SourceError::Venue {
                    venue: "news",
                    message: format!("{url}: HTTP {status}, retry after {after} s"),
                    transient: true,
                })
            }
            _ => Err(err(format!("{url}: HTTP {status}"), status >= 500)),
        }
    }
}

/// The news source: polls every feed in turn, forever.
#[derive(Debug)]
pub struct NewsSource {
    cfg: NewsConfig,
}

impl NewsSource {
    /// A source for `cfg` (checked).
    pub fn new(cfg: NewsConfig) -> Result<Self, SourceError> {
        crate::refuse_problems(cfg.problems())?;
        Ok(Self { cfg })
    }
}

#[async_trait]
impl Source for NewsSource {
    fn name(&self) -> &str {
        "news"
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let mut client = FeedClient::new(Linker::new(&self.cfg.aliases))?;
        let mut dedup = Dedup::default();
        let src = Symbol::new("news").map_err(SourceError::Model)?;
        let every = Duration::from_secs(self.cfg.poll_secs);
        let mut next_at: Vec<UnixNanos> = vec![0; self.cfg.feeds.len()];
        let mut failures: Vec<u32> = vec![0; self.cfg.feeds.len()];
        let mut seq = 0u64;
        ctx.health.set_state(SourceState::Running);
        loop {
            let now = LiveClock.now();
            for (i, url) in self.cfg.feeds.iter().enumerate() {
                if now < next_at[i] {
                    continue;
                }
                let wait = match client.poll(url).await {
                    Ok(p) => {
                        failures[i] = 0;
                        let known = LiveClock.now();
                        let mut n = 0;
                        for item in p.items {
                            if !dedup.is_new(item.id(), item.title()) {
                                continue;
                            }
                            seq += 1;
                            let env =
                                Envelope::new(seq, known, known, src, Event::News(Box::new(item)));
                            ctx.bus.publish(Topic::Inbound, env).await?;
                            n += 1;
                        }
                        if n > 0 {
                            ctx.health.record_events(n, known);
                            tracing::info!(feed = %url, new = n, "news items");
                        }
                        p.min_interval.unwrap_or(every).max(every)
                    }
                    Err(e) => {
                        failures[i] = failures[i].saturating_add(1);
                        tracing::warn!(feed = %url, error = %e, "news feed poll failed");
                        ctx.health.record_error(e.to_string());
                        // Back off per feed: 30 s doubling, capped at the poll interval × 4.
                        let secs = 30u64.saturating_mul(1 << failures[i].min(8));
                        let retry_after = match &e {
                            SourceError::Venue { message, .. } => message
                                .rsplit("retry after ")
                                .next()
                                .and_then(|t| t.trim_end_matches(" s").parse::<u64>().ok()),
                            _ => None,
                        };
                        Duration::from_secs(
                            retry_after
                                .unwrap_or(secs)
                                .min(self.cfg.poll_secs.saturating_mul(4)),
                        )
                    }
                };
                next_at[i] = LiveClock.now() + i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX);
            }
            let soonest = next_at.iter().min().copied().unwrap_or(0);
            let sleep =
                Duration::from_nanos((soonest - LiveClock.now()).clamp(S / 10, 60 * S) as u64);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
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
    fn linking_finds_names_tickers_and_cashtags() {
        let mut aliases = NewsConfig::default().aliases;
        aliases.insert("LINK".into(), vec!["chainlink".into()]);
        aliases.insert("BNB".into(), vec!["binance coin".into()]);
        let l = Linker::new(&aliases);
        let s = |v: Vec<Symbol>| v.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            s(l.link("Bitcoin tops $100k as $eth lags; SOL and Cardano rally")),
            ["BTC", "ETH", "SOL", "ADA"]
        );
        assert_eq!(
            s(l.link("Ada Lovelace, a link to the past")),
            Vec::<String>::new()
        );
        assert_eq!(
            s(l.link("Binance Coin (BNB) and Chainlink")),
            ["BNB", "LINK"]
        );
    }

    #[test]
    fn repeats_and_wire_copies_are_dropped() {
        let mut d = Dedup::default();
        assert!(d.is_new("a", "SEC approves spot Ether ETFs in landmark decision"));
        assert!(!d.is_new("a", "anything"));
        assert!(!d.is_new("b", "SEC approves spot Ether ETFs in a landmark decision"));
        assert!(d.is_new("c", "Solana outage halts block production"));
    }

    #[test]
    fn rss_and_atom_parse_with_ids_times_and_links() {
        let rss = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>CoinDesk</title><link>https://x</link><description>d</description><ttl>10</ttl>
<item><title>ETF inflows hit record for Bitcoin</title><link>https://example.com/a/123</link><guid isPermaLink="false">example-123</guid><pubDate>Mon, 24 Nov 2026 09:30:00 +0000</pubDate><description><![CDATA[<p>Spot <b>ETH</b> funds too.</p>]]></description></item>
<item><title>No guid here</title><link>https://example.com/a/124</link></item>
</channel></rss>"#;
        let l = Linker::new(&NewsConfig::default().aliases);
        let (items, ttl) = parse_feed(rss, "x", &l, 7).unwrap();
        assert_eq!(ttl, Some(Duration::from_secs(600)));
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id(), "example-123");
        assert_eq!(items[0].publisher(), "CoinDesk");
        assert_eq!(
            items[0].published_at(),
            atalaya_model::parse_utc("2026-11-24T09:30:00Z").unwrap()
        );
        assert_eq!(items[0].summary(), Some("Spot ETH funds too."));
        let assets: Vec<&str> = items[0].assets().iter().map(|s| s.as_str()).collect();
        assert_eq!(assets, ["BTC", "ETH"]);
        assert_eq!(
            items[1].published_at(),
            7,
            "no date: the time it became known"
        );
        assert_eq!(
            items[1].id(),
            "https://example.com/a/124",
            "no guid: the link"
        );
        let atom = br#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Decrypt</title><id>urn:x</id><updated>2026-11-24T09:30:00Z</updated><author><name>D</name></author>
<entry><id>tag:example.com,2026:123</id><title>Avalanche upgrade goes live</title><updated>2026-11-24T09:30:00Z</updated><link rel="alternate" href="https://example.com/a/9"/><summary>AVAX fees fall.</summary></entry></feed>"#;
        let (items, _) = parse_feed(atom, "x", &l, 0).unwrap();
        assert_eq!(items[0].id(), "tag:example.com,2026:123");
        assert_eq!(items[0].url(), Some("https://example.com/a/9"));
        assert_eq!(items[0].assets()[0].as_str(), "AVAX");
        assert!(parse_feed(b"<rss><channel><item>", "x", &l, 0).is_err());
        assert!(parse_feed(b"", "x", &l, 0).is_err());
    }
}
