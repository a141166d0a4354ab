//! The CoinGecko client against a fake server with the documented `/coins/markets` shape.
#![allow(clippy::unwrap_used)]

use atalaya_sources::SourceError;
use atalaya_sources::coingecko::{CoinGecko, CoinGeckoConfig};
use atalaya_testkit::fake_http::{Canned, FakeHttp};
use serde_json::json;

const DAY: i64 = 86_400_000_000_000;

fn markets(volume_btc: f64) -> serde_json::Value {
    json!([
        {"id":"bitcoin","symbol":"btc","name":"Bitcoin","image":"https://x/bitcoin.png","current_price":68000.0,
         "market_cap":1340000000000u64,"market_cap_rank":1,"total_volume":volume_btc,"high_24h":68500.0,
         "low_24h":66900.0,"price_change_24h":-820.5,"price_change_percentage_24h":-1.2,
         "circulating_supply":19700000,"total_supply":21000000,"max_supply":21000000,"roi":null,
         "last_updated":"2026-11-24T10:00:00.000Z","price_change_percentage_24h_in_currency":-1.19,
         "price_change_percentage_7d_in_currency":3.4},
        {"id":"ethereum","symbol":"eth","name":"Ethereum","market_cap":null,"total_volume":1.0,
         "price_change_percentage_24h":1.0,"price_change_percentage_7d_in_currency":2.0},
        {"id":"dogecoin","symbol":"doge","name":"Dogecoin","market_cap":1.0,"total_volume":1.0,
         "price_change_percentage_24h":1.0,"price_change_percentage_7d_in_currency":2.0}
    ])
}

fn cfg(url: &str, key: &str) -> CoinGeckoConfig {
    CoinGeckoConfig {
        base_url: url.into(),
        api_key: key.into(),
        ..CoinGeckoConfig::default()
    }
}

#[tokio::test]
async fn markets_become_market_statistics_with_a_rolling_weekly_volume() {
    let server = FakeHttp::start(Canned::json(200, markets(2.0e10)))
        .await
        .unwrap();
    server.push(Canned::json(200, markets(2.0e10)));
    server.push(Canned::json(200, markets(4.0e10)));
    server.push(Canned::json(200, markets(6.0e10)));
    let mut c = CoinGecko::new(cfg(&server.url(), "demo-key")).unwrap();
    let s = c.fetch(0).await.unwrap();
    // Ethereum has a null market cap and Dogecoin is not configured: only Bitcoin.
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].asset().as_str(), "BTC");
    assert_eq!(s[0].market_cap_usd(), 1.34e12);
    assert_eq!(s[0].change_24h_pct(), -1.19, "the _in_currency field");
    assert_eq!(s[0].change_7d_pct(), 3.4);
    assert_eq!(s[0].avg_volume_7d_usd(), 2.0e10);
    let s = c.fetch(DAY).await.unwrap();
    assert_eq!(s[0].avg_volume_7d_usd(), 3.0e10, "mean of the two days");
    // Eight days later the first two samples have left the window.
    let s = c.fetch(8 * DAY + 1).await.unwrap();
    assert_eq!(s[0].avg_volume_7d_usd(), 6.0e10);
    let r = &server.requests()[0];
    assert_eq!(
        r.path,
        "/coins/markets?vs_currency=usd&ids=bitcoin,ethereum,cardano,solana,avalanche-2&price_change_percentage=24h,7d"
    );
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "x-cg-demo-api-key" && v == "demo-key")
    );
    assert!(
        !r.path.contains("demo-key"),
        "the key never goes in the URL"
    );
}

#[tokio::test]
async fn a_rate_limit_inside_an_http_200_is_a_transient_error() {
    let server = FakeHttp::start(Canned::json(
        200,
        json!({"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit."}}),
    ))
    .await
    .unwrap();
    let mut c = CoinGecko::new(cfg(&server.url(), "")).unwrap();
    match c.fetch(0).await.unwrap_err() {
        SourceError::Venue {
            message, transient, ..
        } => {
            assert!(transient);
            assert!(message.contains("429"), "{message}");
        }
        e => panic!("{e:?}"),
    }
    assert!(
        server.requests()[0]
            .headers
            .iter()
            .all(|(k, _)| !k.starts_with("x-cg"))
    );
}
