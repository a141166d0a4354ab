//! The Binance live source against the fake Binance (WebSocket combined streams and REST) with
//! every fault the issue lists: a dropped connection, a silent (zombie) stream, holes in the
//! kline stream, repeated and out-of-order trades, malformed and truncated frames, 429 and 418
//! answers with `Retry-After`, and a shifted server clock. Ground truth is the fake's bars:
//! the candles published must be exactly those, once each, in order.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atalaya_bus::health::SourceState;
use atalaya_bus::{Bus, Topic};
use atalaya_model::{Event, Timeframe};
use atalaya_sources::SourceError;
use atalaya_sources::binance_ws::{BinanceConfig, TradeStream, source};
use atalaya_testkit::fake_binance::{FakeBinance, Listing, WsStep};
mod common;
use common::start;

const M_MS: i64 = 60_000;
const MS: i64 = 1_000_000;

fn listing(n: usize) -> Listing {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = (now_ms / M_MS - n as i64 - 10) * M_MS;
    let bars = (0..n)
        .map(|i| {
            let p = 100.0 + (i as f64 * 0.7).sin() * 5.0 + i as f64 * 0.01;
            (
                first + i as i64 * M_MS,
                p,
                p + 1.0,
                p - 1.5,
                p + 0.25,
                10.0 + i as f64,
            )
        })
        .collect();
    Listing {
        base: "BTC".into(),
        quote: "USDT".into(),
        step_ms: M_MS,
        bars,
    }
}

fn kline(i: usize) -> WsStep {
    WsStep::Kline {
        symbol: "BTCUSDT".into(),
        index: i,
    }
}

fn trade(id: u64, time_ms: i64) -> WsStep {
    WsStep::Trade {
        symbol: "BTCUSDT".into(),
        id,
        time_ms,
        price: 100.0 + id as f64,
    }
}

fn cfg(fake: &FakeBinance) -> BinanceConfig {
    BinanceConfig {
        rest_url: fake.url(),
        ws_url: fake.ws_url(),
        symbols: vec!["BTCUSDT".into()],
        timeframes: vec![Timeframe::M1],
        trades: TradeStream::Trade,
        book_ticker: false,
        stale_after_secs: 1,
        ..BinanceConfig::default()
    }
}

#[tokio::test]
async fn every_fault_leaves_no_gap_and_no_duplicate() {
    let truth = listing(100);
    let fake = FakeBinance::start(BTreeMap::from([("BTCUSDT".to_owned(), truth.clone())]))
        .await
        .unwrap();
    fake.shift_server_time(5_000);
    let t0 = truth.bars[0].0;
    let mut steps = Vec::new();
    // A clean start, with trades: a repeat (3) and one out of order (6 before 5).
    for i in 0..10 {
        steps.push(kline(i));
    }
    for (id, dt) in [
        (1, 0),
        (2, 10),
        (3, 20),
        (3, 20),
        (4, 30),
        (6, 50),
        (5, 40),
        (7, 60),
    ] {
        steps.push(trade(id, t0 + dt));
    }
    // Malformed and truncated frames, an unknown stream, a ping.
    steps.push(WsStep::Raw("{".into()));
    steps.push(WsStep::Raw(
        r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT","k":{"t":1,"#.into(),
    ));
    steps.push(WsStep::Raw(
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":99,"p":"x","q":"1","T":1,"m":true}}"#.into(),
    ));
    steps.push(WsStep::Raw(r#"{"result":null,"id":7}"#.into()));
    steps.push(WsStep::Ping(b"are-you-there".to_vec()));
    for i in 10..20 {
        steps.push(kline(i));
    }
    // A repeat kline, then the connection drops while bars 20..=25 close unseen.
    steps.push(kline(19));
    steps.push(WsStep::Advance {
        symbol: "BTCUSDT".into(),
        closed: 26,
    });
    steps.push(WsStep::Drop);
    for i in 26..40 {
        steps.push(kline(i));
    }
    // A hole in the stream itself: 40..=44 never arrive.
    for i in 45..60 {
        steps.push(kline(i));
    }
    // The zombie stream: open but silent, while 60..=65 close.
    steps.push(WsStep::Advance {
        symbol: "BTCUSDT".into(),
        closed: 66,
    });
    steps.push(WsStep::Silence(Duration::from_secs(4)));
    for i in 66..100 {
        steps.push(kline(i));
    }
    // The repeat trade again, after the reconnects.
    steps.push(trade(3, t0 + 20));
    fake.play(steps);
    // The first backfill after the hole meets a 429.
    let (src, control) = source(cfg(&fake)).unwrap();
    let rest = src.venue().rest();
    let mut run = start(src);
    let mut candles = Vec::new();
    let mut trades = Vec::new();
    let mut day_stats = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut asked_429 = false;
    while candles.len() < 100 && Instant::now() < deadline {
        let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
        else {
            continue;
        };
        match env.payload {
            Event::Candle(c) => {
                candles.push(c);
                if candles.len() == 30 && !asked_429 {
                    fake.refuse_next(429, 1);
                    asked_429 = true;
                    assert!(control.subscribe(vec!["btcusdt@bookTicker".into()]));
                }
            }
            Event::Trade(t) => trades.push((env.ts_event, t.id())),
            Event::DayStats(_) => day_stats += 1,
            _ => {}
        }
    }
    // Let the held trades out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(100), run.sub.recv()).await
    {
        if let Event::Trade(t) = env.payload {
            trades.push((env.ts_event, t.id()));
        }
    }
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    run.bus.close(Topic::Inbound);

    // Candles: exactly the ground truth, once each, in order.
    let got: Vec<(i64, f64, f64)> = candles
        .iter()
        .map(|c| (c.open_time() / MS, c.open(), c.volume()))
        .collect();
    let want: Vec<(i64, f64, f64)> = truth
        .bars
        .iter()
        .map(|b| (b.0, (b.1 * 1e8).round() / 1e8, (b.5 * 1e8).round() / 1e8))
        .collect();
    assert_eq!(got.len(), want.len(), "{:?}", fake.requests());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert!(
            (g.1 - w.1).abs() < 1e-9 && (g.2 - w.2).abs() < 1e-9,
            "{g:?} {w:?}"
        );
    }
    // Trades: each once, in exchange-time order.
    let ids: Vec<u64> = trades.iter().map(|t| t.1).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7], "{trades:?}");
    // Malformed frames counted, never fatal; two reconnects (drop, silence) at least.
    assert!(status.errors >= 3, "{status:?}");
    assert!(status.reconnects >= 2, "{status:?}");
    assert_eq!(status.state, SourceState::Running);
    let skew = status.clock_skew_ms.unwrap();
    assert!((skew - 5_000).abs() < 1_000, "skew {skew}");
    // The ping was answered.
    assert!(fake.pongs().iter().any(|p| p == b"are-you-there"));
    // The subscription went out on the open connection and into every later one.
    assert!(
        fake.client_frames()
            .iter()
            .any(|f| f.contains("SUBSCRIBE") && f.contains("btcusdt@bookTicker")),
        "{:?}",
        fake.client_frames()
    );
    let conns = fake.connections();
    assert!(
        conns[0] == "btcusdt@trade/btcusdt@kline_1m/btcusdt@miniTicker",
        "{conns:?}"
    );
    // The 24-hour statistics come over REST at every connect.
    assert!(
        day_stats as usize >= conns.len(),
        "{day_stats} for {} connections",
        conns.len()
    );
    assert!(
        conns.last().unwrap().contains("btcusdt@bookTicker"),
        "{conns:?}"
    );
    // Backfills after the drop, the hole and the silence; the 429 was met and waited out.
    let reqs = fake.requests();
    let backfills = reqs.iter().filter(|r| r.starts_with("klines")).count();
    assert!(reqs.iter().any(|r| r.starts_with("ticker24hr")), "{reqs:?}");
    assert!(backfills >= 3, "{reqs:?}");
    assert_eq!(rest.counts().await.1, 1, "one refusal");
    let times = fake.request_times();
    assert!(reqs.len() == times.len());
    // Weight per rolling minute stayed within the configured budget.
    for (i, (t, _)) in times.iter().enumerate() {
        let w: u64 = times[i..]
            .iter()
            .take_while(|(u, _)| u.duration_since(*t) < Duration::from_secs(60))
            .map(|x| x.1)
            .sum();
        assert!(w <= 5000);
    }
}

#[tokio::test]
async fn a_418_ban_stops_every_call_until_it_ends() {
    let fake = FakeBinance::start(BTreeMap::from([("BTCUSDT".to_owned(), listing(5))]))
        .await
        .unwrap();
    fake.refuse_next(418, 2);
    fake.play((0..5).map(kline));
    let (src, _control) = source(cfg(&fake)).unwrap();
    let mut run = start(src);
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while n < 5 && Instant::now() < deadline {
        if let Ok(Some(env)) =
            tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
            && matches!(env.payload, Event::Candle(_))
        {
            n += 1;
        }
    }
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    assert_eq!(n, 5);
    let times = fake.request_times();
    assert!(
        times[1].0.duration_since(times[0].0) >= Duration::from_millis(1_900),
        "no request during the ban: {:?}",
        fake.requests()
    );
}

#[tokio::test]
async fn an_unknown_symbol_is_a_clear_error() {
    let fake = FakeBinance::start(BTreeMap::from([("BTCUSDT".to_owned(), listing(5))]))
        .await
        .unwrap();
    let mut c = cfg(&fake);
    c.symbols = vec!["BTCUSDT".into(), "NOPEUSDT".into()];
    let (src, _control) = source(c).unwrap();
    let run = start(src);
    let err = tokio::time::timeout(Duration::from_secs(10), run.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("NOPEUSDT"), "{err}");
    assert!(!err.to_string().contains("BTCUSDT,"), "{err}");
    assert_eq!(run.health.sources()[0].state, SourceState::Failed);
}

#[tokio::test]
async fn an_unreachable_network_is_retried_not_fatal() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = BinanceConfig {
        rest_url: format!("http://127.0.0.1:{port}"),
        ws_url: format!("ws://127.0.0.1:{port}"),
        ..BinanceConfig::default()
    };
    let (src, _control) = source(c).unwrap();
    let run = start(src);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!run.task.is_finished(), "still retrying");
    let s = run.health.sources()[0].clone();
    assert_eq!(s.state, SourceState::Reconnecting, "{s:?}");
    run.cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), run.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connections_are_renewed_without_losing_a_candle() {
    let truth = listing(30);
    let fake = FakeBinance::start(BTreeMap::from([("BTCUSDT".to_owned(), truth)]))
        .await
        .unwrap();
    let mut steps = Vec::new();
    for i in 0..30 {
        steps.push(kline(i));
        steps.push(WsStep::Silence(Duration::from_millis(100)));
    }
    fake.play(steps);
    let mut c = cfg(&fake);
    c.reconnect_after_secs = 1;
    let (src, _control) = source(c).unwrap();
    let mut run = start(src);
    let mut opens = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while opens.len() < 30 && Instant::now() < deadline {
        if let Ok(Some(env)) =
            tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
            && let Event::Candle(c) = env.payload
        {
            opens.push(c.open_time());
        }
    }
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();
    assert!(fake.connections().len() >= 2, "renewed");
    assert_eq!(opens.len(), 30);
    assert!(opens.windows(2).all(|w| w[1] - w[0] == M_MS * MS));
}

#[test]
fn bad_settings_are_listed_with_their_fields() {
    let c = BinanceConfig {
        symbols: vec!["BTC/USDT".into()],
        ws_url: "http://x".into(),
        stale_after_secs: 0,
        ..BinanceConfig::default()
    };
    let Err(SourceError::Config(p)) = source(c) else {
        panic!()
    };
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p.iter().any(|m| m.contains("venues.binance.ws_url")));
}
