//! The Coinbase live source against the fake Coinbase (Advanced Trade WebSocket and public
//! REST): five-minute buckets with no closed flag, a dropped connection, a hole, a skipped
//! sequence number, a silent stream, repeated and out-of-order trades, malformed frames, a
//! 429 and a shifted clock. The candles published must be exactly the fake's closed buckets.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atalaya_bus::health::SourceState;
use atalaya_bus::{Bus, Topic};
use atalaya_model::Event;
use atalaya_sources::coinbase_ws::{CoinbaseConfig, source};
use atalaya_testkit::fake_binance::Listing;
use atalaya_testkit::fake_coinbase::{CbStep, FakeCoinbase};

mod common;
use common::start;

const STEP_MS: i64 = 300_000;

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
                let p = 60_000.0 + (i as f64 * 0.4).sin() * 500.0;
                (
                    first + i as i64 * STEP_MS,
                    p,
                    p + 80.0,
                    p - 90.0,
                    p + 20.0,
                    5.0 + i as f64,
                )
            })
            .collect(),
    }
}

fn candle(i: usize) -> CbStep {
    CbStep::Candle {
        product: "BTC-USD".into(),
        index: i,
    }
}

fn trade(id: u64, time_ms: i64) -> CbStep {
    CbStep::Trade {
        product: "BTC-USD".into(),
        id,
        time_ms,
        price: 60_000.0 + id as f64,
    }
}

#[tokio::test]
async fn coinbase_faults_leave_no_gap_and_no_duplicate() {
    let n = 90;
    let truth = listing(n);
    let fake = FakeCoinbase::start(BTreeMap::from([("BTC-USD".to_owned(), truth.clone())]))
        .await
        .unwrap();
    fake.shift_server_time(-3_000);
    let t0 = truth.bars[0].0;
    let mut steps: Vec<CbStep> = (0..15).map(candle).collect();
    for (id, dt) in [(10, 0), (11, 5), (11, 5), (13, 20), (12, 10), (14, 30)] {
        steps.push(trade(id, t0 + dt));
    }
    steps.push(CbStep::Heartbeat);
    steps.push(CbStep::Raw("{\"channel\":\"candles\",\"events\":[".into()));
    steps.push(CbStep::Raw(
        r#"{"type":"error","message":"rate limit exceeded"}"#.into(),
    ));
    steps.push(CbStep::SkipSequence(3));
    steps.extend((15..25).map(candle));
    steps.push(candle(20));
    steps.push(CbStep::Advance {
        product: "BTC-USD".into(),
        closed: 31,
    });
    steps.push(CbStep::Drop);
    steps.extend((31..45).map(candle));
    // A hole: buckets 45..=49 never stream.
    steps.extend((50..65).map(candle));
    steps.push(CbStep::Advance {
        product: "BTC-USD".into(),
        closed: 70,
    });
    steps.push(CbStep::Silence(Duration::from_secs(4)));
    steps.extend((70..n).map(candle));
    fake.play(steps);
    let cfg = CoinbaseConfig {
        rest_url: fake.url(),
        ws_url: fake.ws_url(),
        products: vec!["BTC-USD".into()],
        stale_after_secs: 1,
        ..CoinbaseConfig::default()
    };
    let (src, _control) = source(cfg).unwrap();
    let rest = src.venue().rest();
    let mut run = start(src);
    let (mut candles, mut trades) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refused = false;
    // The last bucket is still forming: n - 1 candles are closed.
    while candles.len() < n - 1 && Instant::now() < deadline {
        let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
        else {
            continue;
        };
        match env.payload {
            Event::Candle(c) => {
                candles.push(c);
                if candles.len() == 40 && !refused {
                    fake.refuse_next(1);
                    refused = true;
                }
            }
            Event::Trade(t) => trades.push(t.id()),
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
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

    let got: Vec<(i64, f64)> = candles
        .iter()
        .map(|c| (c.open_time() / 1_000_000, c.close()))
        .collect();
    let want: Vec<(i64, f64)> = truth.bars[..n - 1].iter().map(|b| (b.0, b.4)).collect();
    assert_eq!(got.len(), want.len(), "{:?}", fake.requests());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert!(
            (g.1 - w.1).abs() < 1e-6,
            "the final update, not the half-formed one: {g:?} {w:?}"
        );
    }
    assert_eq!(
        trades,
        vec![10, 11, 12, 13, 14],
        "once each, in exchange-time order"
    );
    assert!(
        status.errors >= 3,
        "malformed, error frame, sequence gap: {status:?}"
    );
    assert!(status.reconnects >= 2, "{status:?}");
    assert_eq!(status.state, SourceState::Running);
    let skew = status.clock_skew_ms.unwrap();
    assert!((skew + 3_000).abs() < 1_000, "skew {skew}");
    assert!(rest.counts().await.1 >= 1, "the 429 was met and waited out");
    let backfills = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("candles"))
        .count();
    assert!(backfills >= 3, "{:?}", fake.requests());
    // Subscriptions: one channel per message, on every connection.
    let subs: Vec<String> = fake
        .client_frames()
        .into_iter()
        .filter(|f| f.contains("\"subscribe\""))
        .collect();
    assert_eq!(subs.len() as u64, 4 * fake.connections(), "{subs:?}");
    assert!(subs.iter().all(|f| f.matches("\"channel\"").count() == 1));
}

#[tokio::test]
async fn unknown_coinbase_products_are_named() {
    let fake = FakeCoinbase::start(BTreeMap::from([("BTC-USD".to_owned(), listing(5))]))
        .await
        .unwrap();
    let cfg = CoinbaseConfig {
        rest_url: fake.url(),
        ws_url: fake.ws_url(),
        products: vec!["BTC-USD".into(), "NOPE-USD".into()],
        ..CoinbaseConfig::default()
    };
    let (src, _control) = source(cfg).unwrap();
    let run = start(src);
    let err = tokio::time::timeout(Duration::from_secs(10), run.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("NOPE-USD"), "{err}");
    assert!(!err.to_string().contains("BTC-USD,"), "{err}");
}
