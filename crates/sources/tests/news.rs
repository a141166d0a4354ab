//! The news collector against a fake publisher (RSS 2.0 and Atom): conditional GET with
//! validators and 304s, `max-age`, new items only, wire copies across feeds dropped, assets
//! linked, 429 and malformed bodies reported without losing the validators.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use atalaya_bus::health::SourceState;
use atalaya_model::Event;
use atalaya_sources::news::{FeedClient, Linker, NewsConfig, NewsSource};
use atalaya_testkit::fake_feed::{FakeFeed, FeedFault, FeedItem};

mod common;
use common::start;

fn item(id: &str, title: &str, minute: i64) -> FeedItem {
    FeedItem {
        id: id.into(),
        title: title.into(),
        link: format!("https://fake.example/{id}"),
        published_s: 1_795_000_000 + minute * 60,
        summary: format!("About {title}."),
    }
}

async fn fake() -> FakeFeed {
    FakeFeed::start(
        vec![
            item("r1", "Bitcoin ETF inflows hit a record", 1),
            item("r2", "Solana validators vote on fee change", 2),
            item("r3", "Cardano founder outlines roadmap", 3),
        ],
        vec![
            item("tag:wire,2026:1", "Bitcoin ETF inflows hit a new record", 1),
            item("tag:wire,2026:2", "$AVAX rallies after upgrade", 4),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn conditional_get_sends_validators_and_keeps_them_through_faults() {
    let f = fake().await;
    f.max_age(900);
    let mut c = FeedClient::new(Linker::new(&NewsConfig::default().aliases)).unwrap();
    let p = c.poll(&f.rss_url()).await.unwrap();
    assert_eq!(p.items.len(), 3);
    assert_eq!(p.min_interval, Some(Duration::from_secs(900)));
    // Unchanged: 304 and no items.
    let p = c.poll(&f.rss_url()).await.unwrap();
    assert!(p.not_modified && p.items.is_empty());
    // A 429 and a malformed body are errors that keep the validators.
    f.fault(FeedFault::TooMany(42));
    let e = c.poll(&f.rss_url()).await.unwrap_err().to_string();
    assert!(e.contains("429") && e.contains("retry after 42 s"), "{e}");
    f.fault(FeedFault::Malformed);
    let e = c.poll(&f.rss_url()).await.unwrap_err().to_string();
    assert!(e.contains("malformed feed"), "{e}");
    assert!(c.poll(&f.rss_url()).await.unwrap().not_modified);
    // Something new: 200 with the whole feed (de-duplication is the source's job).
    f.publish_rss(item("r4", "Ethereum gas fees fall to a year low", 5));
    let p = c.poll(&f.rss_url()).await.unwrap();
    assert_eq!(p.items.len(), 4);
    assert_eq!(p.items[0].assets()[0].as_str(), "ETH");
    let log = f.log();
    assert_eq!(log[0].1, None, "the first poll is unconditional");
    assert!(
        log[1..].iter().all(|l| l.1.as_deref() == Some("W/\"v1\"")),
        "{log:?}"
    );
    assert_eq!(
        log.iter().map(|l| l.3).collect::<Vec<_>>(),
        [200, 304, 429, 200, 304, 200]
    );
}

#[tokio::test]
async fn the_source_publishes_each_story_once_with_its_assets() {
    let f = fake().await;
    let cfg = NewsConfig {
        feeds: vec![f.rss_url(), f.atom_url()],
        poll_secs: 10,
        ..NewsConfig::default()
    };
    let t0 = atalaya_model::Clock::now(&atalaya_model::LiveClock);
    let mut run = start(NewsSource::new(cfg).unwrap());
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 4 && Instant::now() < deadline {
        if let Ok(Some(env)) =
            tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
            && let Event::News(n) = env.payload
        {
            assert!(env.ts_event >= t0, "stamped with the time it became known");
            got.push(*n);
        }
    }
    // Nothing more arrives: the wire copy of the ETF story was dropped.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), run.sub.recv())
            .await
            .is_err()
    );
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    let titles: Vec<&str> = got.iter().map(|n| n.title()).collect();
    assert_eq!(
        titles,
        [
            "Bitcoin ETF inflows hit a record",
            "Solana validators vote on fee change",
            "Cardano founder outlines roadmap",
            "$AVAX rallies after upgrade"
        ]
    );
    let assets: Vec<Vec<&str>> = got
        .iter()
        .map(|n| n.assets().iter().map(|s| s.as_str()).collect())
        .collect();
    assert_eq!(
        assets,
        [vec!["BTC"], vec!["SOL"], vec!["ADA"], vec!["AVAX"]]
    );
    assert_eq!(got[3].publisher(), "Fake Chain Wire");
    assert_eq!(status.events, 4);
    assert_eq!(status.state, SourceState::Running);
}

#[test]
fn bad_settings_are_named() {
    let cfg = NewsConfig {
        feeds: vec!["ftp://x".into()],
        poll_secs: 1,
        ..NewsConfig::default()
    };
    let Err(atalaya_sources::SourceError::Config(p)) = NewsSource::new(cfg) else {
        panic!()
    };
    assert_eq!(p.len(), 2, "{p:?}");
}
