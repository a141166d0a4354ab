//! Any JSON as a Binance `klines` answer: candles or an error, never a panic.
#![no_main]

use atalaya_model::Timeframe;
use atalaya_sources::binance_rest::klines_from_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let id = "binance:BTC/USDT".parse().expect("id");
        let _ = klines_from_json(&v, id, Timeframe::M1, 1_700_000_000_000_000_000);
    }
});
