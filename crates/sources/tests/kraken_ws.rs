//! The Kraken live source against the fake Kraken (WebSocket v2 and REST OHLC): one-minute bars
//! with no closed flag, a dropped connection, a hole, a silent stream, repeated and
//! out-of-order trades, malformed frames, a refused subscription, a rate-limit answer and a
//! shifted clock. The candles published must be exactly the fake's closed bars.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atalaya_bus::health::SourceState;
use atalaya_bus::{Bus, Topic};
use atalaya_model::Event;
use atalaya_sources::kraken_ws::{KrakenConfig, source};
use atalaya_testkit::fake_binance::Listing;
use atalaya_testkit::fake_kraken::{FakeKraken, KrStep};

mod common;
use common::start;

const STEP_MS: i64 = 60_000;

fn listing(n: usize) -> Listing {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = (now_ms / STEP_MS - n as i64 - 10) * STEP_MS;
    Listing {
        base: "BTC".into(),
        quote: "USD".into(),
        step_ms: STEP_MS,
        bars: (0..n)
            .map(|i| {
                let p = 60_000.0 + (i as f64 * 0.5).cos() * 400.0;
                (
                    first + i as i64 * STEP_MS,
                    p,
                    p + 70.0,
                    p - 80.0,
                    p + 15.0,
                    3.0 + i as f64,
                )
            })
            .collect(),
    }
}

fn ohlc(i: usize) -> KrStep {
    KrStep::Ohlc {
        symbol: "BTC/USD".into(),
        index: i,
    }
}

fn trade(id: u64, time_ms: i64) -> KrStep {
    KrStep::Trade {
        symbol: "BTC/USD".into(),
        id,
        time_ms,
    }
}

#[tokio::test]
async fn kraken_faults_leave_no_gap_and_no_duplicate() {
    let n = 80;
    let truth = listing(n);
    let fake = FakeKraken::start(BTreeMap::from([("BTC/USD".to_owned(), truth.clone())]))
        .await
        .unwrap();
    fake.shift_server_time(7);
    let t0 = truth.bars[0].0;
    let mut steps: Vec<KrStep> = (0..12).map(ohlc).collect();
    for (id, dt) in [(1, 0), (2, 5), (2, 5), (4, 20), (3, 10), (5, 30)] {
        steps.push(trade(id, t0 + dt));
    }
    steps.push(KrStep::Heartbeat);
    steps.push(KrStep::Raw("{\"channel\":\"ohlc\",\"data\":[{".into()));
    steps.push(KrStep::Raw(
        r#"{"method":"subscribe","success":false,"error":"Currency pair not supported","req_id":9}"#
            .into(),
    ));
    steps.extend((12..25).map(ohlc));
    steps.push(KrStep::Advance {
        symbol: "BTC/USD".into(),
        closed: 30,
    });
    steps.push(KrStep::Drop);
    steps.extend((30..45).map(ohlc));
    steps.extend((50..60).map(ohlc));
    steps.push(KrStep::Advance {
        symbol: "BTC/USD".into(),
        closed: 65,
    });
    // Longer than the 5 s pause a rate-limit answer costs (it may fall just before), so the
    // silence is still seen.
    steps.push(KrStep::Silence(Duration::from_secs(9)));
    steps.extend((65..n).map(ohlc));
    fake.play(steps);
    let cfg = KrakenConfig {
        rest_url: fake.url(),
        ws_url: fake.ws_url(),
        symbols: vec!["BTC/USD".into()],
        requests_per_second: 20,
        stale_after_secs: 1,
        ..KrakenConfig::default()
    };
    let (src, _control) = source(cfg).unwrap();
    let mut run = start(src);
    let (mut candles, mut trades) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refused = false;
    while candles.len() < n - 1 && Instant::now() < deadline {
        let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
        else {
            continue;
        };
        match env.payload {
            Event::Candle(c) => {
                candles.push(c);
                if candles.len() == 35 && !refused {
                    fake.refuse_next(1);
                    refused = true;
                }
            }
            Event::Trade(t) => trades.push(t.id()),
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(100), run.sub.recv()).await
    {
        match env.payload {
            Event::Trade(t) => trades.push(t.id()),
            Event::Candle(c) => candles.push(c),
            _ => {}
        }
    }
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    run.bus.close(Topic::Inbound);

    let got: Vec<(i64, f64, u32)> = candles
        .iter()
        .map(|c| (c.open_time() / 1_000_000, c.close(), c.trades()))
        .collect();
    let want: Vec<(i64, f64)> = truth.bars[..n - 1].iter().map(|b| (b.0, b.4)).collect();
    assert_eq!(got.len(), want.len(), "{:?}", fake.requests());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert!((g.1 - w.1).abs() < 1e-6, "{g:?} {w:?}");
        assert_eq!(g.2, 7);
    }
    assert_eq!(trades, vec![1, 2, 3, 4, 5]);
    assert!(status.errors >= 2, "{status:?}");
    assert!(status.reconnects >= 2, "{status:?}");
    assert_eq!(status.state, SourceState::Running);
    let skew = status.clock_skew_ms.unwrap();
    assert!((skew - 7_000).abs() < 1_500, "skew {skew}");
    let ohlc_calls = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("OHLC"))
        .count();
    assert!(
        ohlc_calls >= 4,
        "validation and three backfills: {:?}",
        fake.requests()
    );
    // One request per channel on every connection.
    let subs = fake
        .client_frames()
        .iter()
        .filter(|f| f.contains("\"subscribe\""))
        .count();
    assert_eq!(subs as u64, 3 * fake.connections());
}

#[tokio::test]
async fn unknown_kraken_pairs_are_named() {
    let fake = FakeKraken::start(BTreeMap::from([("BTC/USD".to_owned(), listing(5))]))
        .await
        .unwrap();
    let cfg = KrakenConfig {
        rest_url: fake.url(),
        ws_url: fake.ws_url(),
        symbols: vec!["BTC/USD".into(), "NOPE/USD".into()],
        requests_per_second: 20,
        ..KrakenConfig::default()
    };
    let (src, _control) = source(cfg).unwrap();
    let run = start(src);
    let err = tokio::time::timeout(Duration::from_secs(10), run.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("NOPE/USD"), "{err}");
}
