//! A fake news publisher on `127.0.0.1:0`: an RSS 2.0 feed at `/rss` and an Atom feed at
//! `/atom`, with `ETag` and `Last-Modified` validators and RFC 9110 conditional GET (a weak
//! `If-None-Match` match, or an `If-Modified-Since` equal to the current `Last-Modified`, gives
//! `304 Not Modified` with no body), `Cache-Control: max-age`, and scripted faults: a 429 with
//! `Retry-After`, a malformed body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::fake_http::Served;

/// One headline.
#[derive(Clone, Debug)]
pub struct FeedItem {
    /// RSS `guid` / Atom `id`.
    pub id: String,
    /// Headline.
    pub title: String,
    /// Article URL.
    pub link: String,
    /// Publication time, seconds since the epoch.
    pub published_s: i64,
    /// Summary text.
    pub summary: String,
}

/// A scripted fault for the next request.
#[derive(Clone, Copy, Debug)]
pub enum FeedFault {
    /// 429 with `Retry-After: secs`.
    TooMany(u64),
    /// A 200 whose body is not a feed.
    Malformed,
}

#[derive(Default)]
struct Inner {
    rss: Vec<FeedItem>,
    atom: Vec<FeedItem>,
    version: u64,
    modified_s: i64,
    max_age: Option<u64>,
    faults: Vec<FeedFault>,
    /// (path, If-None-Match, If-Modified-Since, status) of every request.
    log: Vec<(String, Option<String>, Option<String>, u16)>,
}

type Shared = Arc<Mutex<Inner>>;

/// The running fake; stops when dropped.
pub struct FakeFeed {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Shared,
    _server: Served,
}

impl std::fmt::Debug for FakeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeFeed")
            .field("addr", &self.addr)
            .finish()
    }
}

/// RFC 9110 IMF-fixdate: `Mon, 24 Nov 2026 09:30:00 GMT`.
pub fn imf_fixdate(s: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = crate::rfc3339(s * 1000, 3);
    // 2026-11-24T09:30:00.000Z
    let (y, m, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    let month = m.parse::<usize>().unwrap_or(1).clamp(1, 12);
    let dow = DAYS[s.div_euclid(86_400).rem_euclid(7) as usize];
    format!("{dow}, {d} {} {y} {} GMT", MONTHS[month - 1], &iso[11..19])
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn rss(items: &[FeedItem]) -> String {
    let mut x = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Fake Coin News</title><link>https://fake.example/</link><description>Headlines</description>"#,
    );
    for i in items {
        x.push_str(&format!(
            r#"<item><title>{}</title><link>{}</link><guid isPermaLink="false">{}</guid><pubDate>{}</pubDate><description><![CDATA[<p>{}</p>]]></description></item>"#,
            escape(&i.title),
            escape(&i.link),
            escape(&i.id),
            imf_fixdate(i.published_s).replace(" GMT", " +0000"),
            i.summary
        ));
    }
    x.push_str("</channel></rss>");
    x
}

fn atom(items: &[FeedItem]) -> String {
    let mut x = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Fake Chain Wire</title><id>urn:fake:wire</id><updated>2026-11-24T09:30:00Z</updated><author><name>Wire</name></author>"#,
    );
    for i in items {
        x.push_str(&format!(
            r#"<entry><id>{}</id><title>{}</title><updated>{}</updated><link rel="alternate" href="{}"/><summary>{}</summary></entry>"#,
            escape(&i.id),
            escape(&i.title),
            &crate::rfc3339(i.published_s * 1000, 3).replace(".000", ""),
            escape(&i.link),
            escape(&i.summary)
        ));
    }
    x.push_str("</feed>");
    x
}

fn serve(inner: &Shared, path: &str, headers: &HeaderMap) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (inm, ims) = (h("if-none-match"), h("if-modified-since"));
    let Ok(mut g) = inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = format!("W/\"v{}\"", g.version);
    let last_modified = imf_fixdate(g.modified_s);
    let fault = if g.faults.is_empty() {
        None
    } else {
        Some(g.faults.remove(0))
    };
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let status = match fault {
        Some(FeedFault::TooMany(_)) => 429,
        Some(FeedFault::Malformed) => 200,
        None => match (&inm, &ims) {
            (Some(t), _) if t.split(',').any(|t| weak(t) == weak(&etag)) => 304,
            (None, Some(d)) if *d == last_modified => 304,
            _ => 200,
        },
    };
    g.log.push((path.to_owned(), inm, ims, status));
    let mut res = match (status, fault) {
        (429, Some(FeedFault::TooMany(after))) => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
            if let Ok(v) = HeaderValue::from_str(&after.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        (_, Some(FeedFault::Malformed)) => {
            return (StatusCode::OK, "<rss><channel><item><title>cut off").into_response();
        }
        (304, _) => StatusCode::NOT_MODIFIED.into_response(),
        _ => {
            let (body, ct) = if path == "/rss" {
                (rss(&g.rss), "application/rss+xml")
            } else {
                (atom(&g.atom), "application/atom+xml")
            };
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static(ct));
            r
        }
    };
    for (k, v) in [("etag", etag), ("last-modified", last_modified)] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            res.headers_mut().insert(k, v);
        }
    }
    if let Some(age) = g.max_age
        && let Ok(v) = HeaderValue::from_str(&format!("max-age={age}"))
    {
        res.headers_mut().insert("cache-control", v);
    }
    res
}

async fn rss_route(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    serve(&inner, "/rss", &headers)
}

async fn atom_route(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    serve(&inner, "/atom", &headers)
}

impl FakeFeed {
    /// Starts a publisher with these RSS and Atom items.
    pub async fn start(rss: Vec<FeedItem>, atom: Vec<FeedItem>) -> std::io::Result<Self> {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            rss,
            atom,
            version: 1,
            modified_s: 1_795_000_000,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/rss", get(rss_route))
            .route("/atom", get(atom_route))
            .with_state(inner.clone());
        let server = Served::start(app).await?;
        Ok(Self {
            addr: server.addr,
            inner,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT/rss`.
    pub fn rss_url(&self) -> String {
        format!("http://{}/rss", self.addr)
    }

    /// `http://127.0.0.1:PORT/atom`.
    pub fn atom_url(&self) -> String {
        format!("http://{}/atom", self.addr)
    }

    /// Publishes `item` on the RSS feed (new validators).
    pub fn publish_rss(&self, item: FeedItem) {
        if let Ok(mut g) = self.inner.lock() {
            g.rss.insert(0, item);
            g.version += 1;
            g.modified_s += 60;
        }
    }

    /// Answers `Cache-Control: max-age=secs` from now on.
    pub fn max_age(&self, secs: u64) {
        if let Ok(mut g) = self.inner.lock() {
            g.max_age = Some(secs);
        }
    }

    /// Queues a fault for the next request.
    pub fn fault(&self, f: FeedFault) {
        if let Ok(mut g) = self.inner.lock() {
            g.faults.push(f);
        }
    }

    /// Every request: (path, If-None-Match, If-Modified-Since, status).
    pub fn log(&self) -> Vec<(String, Option<String>, Option<String>, u16)> {
        self.inner.lock().map(|g| g.log.clone()).unwrap_or_default()
    }
}
