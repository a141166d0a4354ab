//! Any bytes as a REST answer of Binance `klines`, Coinbase `candles` or Kraken `OHLC`: each
//! parser answers candles or an error and never panics.
#![no_main]

use atalaya_model::Timeframe;
use atalaya_sources::binance_rest::klines_from_json;
use atalaya_sources::coinbase_rest::candles_from_json;
use atalaya_sources::kraken_ws::ohlc_from_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let now = 1_700_000_000_000_000_000;
    let range = (i64::MIN, i64::MAX);
    let _ = klines_from_json(&v, "binance:BTC/USDT".parse().expect("id"), Timeframe::M1, now);
    let _ = candles_from_json(&v, "coinbase:BTC/USD".parse().expect("id"), Timeframe::M5, range, now);
    let _ = ohlc_from_json(&v, "kraken:BTC/USD".parse().expect("id"), Timeframe::H1, range);
});
