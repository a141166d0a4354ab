//! API tests: in-process with `oneshot`, plus one over a real socket.

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use std::sync::Arc;
use std::time::Instant;

use atalaya_bus::InProcessBus;
use atalaya_bus::health::{Health, SourceState};
use atalaya_model::{
    Candle, FactorContribution, Opportunity, OpportunityKind, OpportunityRaw, Timeframe,
};
use atalaya_server::{AppState, router, serve};
use atalaya_store::{Batch, SqliteStore, Store};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const HOUR: i64 = 3_600_000_000_000;

fn opp(i: i64, kind: OpportunityKind) -> Opportunity {
    let v = if kind.direction() > 0 { 0.7 } else { -0.7 };
    Opportunity::new(OpportunityRaw {
        id: i as u64,
        instrument: "sim:BTC/USDT".parse().unwrap(),
        timeframe: Timeframe::H1,
        kind,
        score: v,
        confidence: 0.8,
        expected_return: v / 100.0,
        risk_level: 0.3,
        horizon_ns: HOUR,
        price: 100.0,
        stop_loss: None,
        take_profit: None,
        generated_at: i * HOUR,
        factors: vec![FactorContribution {
            name: "technical".into(),
            available: true,
            value: v,
            weight: 1.0,
            contribution: v,
            detail: "d".into(),
        }],
    })
    .unwrap()
}

async fn state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    let mut b = Batch::default();
    let id = "sim:BTC/USDT".parse().unwrap();
    for i in 0..48 {
        b.candles.push(
            Candle::new(id, Timeframe::H1, i * HOUR, [10.0, 12.0, 9.0, 11.0], 1.0, 2).unwrap(),
        );
    }
    for i in 0..30 {
        let kind = if i % 3 == 0 {
            OpportunityKind::Sell
        } else {
            OpportunityKind::Buy
        };
        b.opportunities.push((opp(i, kind), i * HOUR));
    }
    for i in 0..3 {
        b.alerts.push(atalaya_model::Alert {
            id: i as u64,
            opportunity_id: None,
            instrument: None,
            priority: atalaya_model::AlertPriority::High,
            title: format!("alert {i}"),
            body: "body".into(),
            created_at: i * HOUR,
            deliveries: Vec::new(),
            timeframe: None,
            short: None,
        });
    }
    let (btc, eth) = (
        atalaya_model::Symbol::new("bitcoin").unwrap(),
        atalaya_model::Symbol::new("ethereum").unwrap(),
    );
    for i in 0..4 {
        let m = atalaya_model::OnchainMetric::new(btc, "fee_fastest", 10.0 + i as f64, "sat/vB");
        b.onchain.push((m.unwrap(), i * HOUR));
    }
    let mint = atalaya_model::OnchainMetric::new(eth, "usdt_mint", 250.5, "USDT").unwrap();
    b.onchain.push((mint, 2 * HOUR));
    store.write(&b).await.unwrap();
    let health = Health::new();
    let src = health.register("sim");
    src.set_state(SourceState::Running);
    src.record_events(5, 7 * HOUR);
    let st = AppState {
        store: Arc::new(store),
        health,
        bus: Arc::new(InProcessBus::new(16)),
        started: Instant::now(),
        started_at: 0,
    };
    (dir, st)
}

async fn get(st: &AppState, uri: &str) -> (StatusCode, Value) {
    let res = router(st.clone())
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn health_and_status() {
    let (_d, st) = state().await;
    let (s, v) = get(&st, "/health").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v) = get(&st, "/api/v1/status").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["sources"][0]["name"], "sim");
    assert_eq!(v["sources"][0]["state"], "running");
    assert_eq!(v["sources"][0]["last_event_ts"], 7 * HOUR);
    assert!(v["uptime_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["bus_lag"], 0);
    assert!(v["engine"]["events"].is_u64());
    assert!(v["events_per_sec"].is_number());
}

#[tokio::test]
async fn opportunities_page_and_filter() {
    let (_d, st) = state().await;
    let (s, v) = get(&st, "/api/v1/opportunities?per_page=7&page=2").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["total"], 30);
    assert_eq!(v["items"].as_array().unwrap().len(), 7);
    assert_eq!(v["items"][0]["opportunity"]["generated_at"], 22 * HOUR);
    let (_, v) = get(
        &st,
        "/api/v1/opportunities?type=SELL&since=1970-01-01T10:00:00Z",
    )
    .await;
    // Sells at hours 0, 3, …, 27; since hour 10: 12, 15, 18, 21, 24, 27.
    assert_eq!(v["total"], 6);
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["opportunity"]["kind"] == "SELL")
    );
    let (_, v) = get(&st, "/api/v1/opportunities?instrument=sim:ETH/USDT").await;
    assert_eq!(v["total"], 0);
}

#[tokio::test]
async fn candles_by_range() {
    let (_d, st) = state().await;
    let (s, v) = get(
        &st,
        "/api/v1/candles?instrument=sim:BTC/USDT&timeframe=1h&from=3600&to=1970-01-01T05:00:00Z",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["count"], 4);
    assert_eq!(v["candles"][0]["open_time"], HOUR);
    let (_, v) = get(
        &st,
        "/api/v1/candles?instrument=sim:BTC/USDT&timeframe=1h&limit=10",
    )
    .await;
    assert_eq!(v["count"], 10);
}

#[tokio::test]
async fn bad_parameters_are_400_and_name_the_parameter() {
    let (_d, st) = state().await;
    for (uri, needle) in [
        ("/api/v1/candles?timeframe=1h", "instrument: required"),
        (
            "/api/v1/candles?instrument=BTCUSDT&timeframe=1h",
            "instrument: invalid instrument",
        ),
        (
            "/api/v1/candles?instrument=sim:BTC/USDT&timeframe=7m",
            "timeframe: invalid timeframe",
        ),
        (
            "/api/v1/candles?instrument=sim:BTC/USDT&timeframe=1h&from=soon",
            "from: invalid time",
        ),
        (
            "/api/v1/candles?instrument=sim:BTC/USDT&timeframe=1h&from=10&to=5",
            "earlier than to",
        ),
        (
            "/api/v1/candles?instrument=sim:BTC/USDT&timeframe=1h&limit=999999",
            "limit: must be between",
        ),
        (
            "/api/v1/opportunities?type=MAYBE",
            "type: invalid opportunity type",
        ),
        (
            "/api/v1/opportunities?page=-1",
            "page: expected a whole number",
        ),
        (
            "/api/v1/opportunities?per_page=0",
            "per_page: must be between",
        ),
        ("/api/v1/opportunities?pge=2", "bad query string"),
    ] {
        let (s, v) = get(&st, uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{uri}: {msg}");
    }
    let (s, v) = get(&st, "/api/v1/nothing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("/api/v1/nothing"));
}

#[tokio::test]
async fn internal_failures_are_500_with_a_generic_body() {
    let (_d, st) = state().await;
    st.store.close().await;
    let (s, v) = get(&st, "/api/v1/opportunities").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(v["error"], "internal error; see the server log");
}

#[tokio::test]
async fn serves_on_a_real_socket_and_shuts_down() {
    let (_d, st) = state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(serve(listener, st, cancel.clone()));
    let r = atalaya_testkit::http_get(addr, "/health").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"ok\""), "{}", r.body);
    let r = atalaya_testkit::http_get(
        addr,
        "/api/v1/candles?instrument=sim:BTC/USDT&timeframe=1h&limit=3",
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["count"], 3);
    cancel.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn alerts_newest_first() {
    let (_d, st) = state().await;
    let (s, v) = get(&st, "/api/v1/alerts?per_page=2").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["total"], 3);
    assert_eq!(v["items"][0]["title"], "alert 2");
    assert_eq!(v["items"][0]["priority"], "high");
    let (_, v) = get(&st, "/api/v1/alerts?since=3600").await;
    assert_eq!(v["total"], 2);
    let (s, _) = get(&st, "/api/v1/alerts?since=never").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn onchain_metrics_newest_first_with_filters() {
    let (_d, st) = state().await;
    let (s, v) = get(&st, "/api/v1/onchain").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["count"], 5);
    assert_eq!(v["metrics"][0]["value"], 13.0, "newest first: {v}");
    let (_, v) = get(&st, "/api/v1/onchain?chain=ethereum").await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["metrics"][0]["metric"], "usdt_mint");
    assert_eq!(v["metrics"][0]["unit"], "USDT");
    let (_, v) = get(&st, "/api/v1/onchain?metric=fee_fastest&since=7200&limit=1").await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["metrics"][0]["ts"], 3 * HOUR);
    for bad in [
        "/api/v1/onchain?chain=bit%20coin",
        "/api/v1/onchain?limit=5000",
        "/api/v1/onchain?since=never",
        "/api/v1/onchain?colour=red",
    ] {
        let (s, v) = get(&st, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

#[tokio::test]
async fn portfolio_shows_the_live_status_and_the_latest_trades() {
    let (_d, st) = state().await;
    let trade = |entry: i64, exit: i64| atalaya_store::PaperTradeRow {
        instrument: "sim:BTC/USDT".into(),
        entry_time: entry,
        exit_time: exit,
        pnl: "2.5".into(),
        body: format!(r#"{{"entry_time":{entry},"exit_time":{exit},"pnl":"2.5"}}"#),
    };
    st.store
        .write(&atalaya_store::Batch {
            paper_trades: vec![trade(1, 5), trade(6, 9)],
            ..Default::default()
        })
        .await
        .unwrap();
    st.health
        .set_portfolio(atalaya_bus::health::PortfolioStatus {
            cash: "9000".into(),
            equity: 10_050.0,
            exposure: 1050.0,
            closed_trades: 2,
            refused: 1,
            positions: vec![atalaya_bus::health::PositionStatus {
                instrument: "sim:ETH/USDT".into(),
                quantity: "0.5".into(),
                entry_price: "2000".into(),
            }],
            as_of: Some(9),
        });
    let (s, v) = get(&st, "/api/v1/portfolio?limit=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["portfolio"]["equity"], 10_050.0);
    assert_eq!(v["portfolio"]["positions"][0]["instrument"], "sim:ETH/USDT");
    assert_eq!(v["trades"].as_array().unwrap().len(), 1);
    assert_eq!(v["trades"][0]["exit_time"], 9, "newest exit first");
    let (s, v) = get(&st, "/api/v1/portfolio?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (_d, st) = state().await;
    let h = st.health.register("binance");
    h.set_state(atalaya_bus::health::SourceState::Reconnecting);
    h.record_error("read error");
    h.set_clock_skew_ms(-1500);
    let res = router(st.clone())
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "atalaya_source_up{source=\"sim\"} 1",
        "atalaya_source_up{source=\"binance\"} 0",
        "atalaya_source_state{source=\"binance\",state=\"reconnecting\"} 1",
        "atalaya_source_errors_total{source=\"binance\"} 1",
        "atalaya_source_clock_skew_seconds{source=\"binance\"} -1.5",
        "atalaya_source_last_event_timestamp_seconds{source=\"sim\"} 25200",
        "atalaya_bus_queue_capacity{queue=\"engine\"}",
        "# TYPE atalaya_source_reconnects_total counter",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    // Every sample line is `name{labels} value` with a parseable value, after its TYPE line.
    let mut typed = std::collections::HashSet::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        let (name, value) = l.rsplit_once(' ').unwrap();
        let family = name.split('{').next().unwrap();
        assert!(typed.contains(family), "{l}");
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "{l}"
        );
    }
}
