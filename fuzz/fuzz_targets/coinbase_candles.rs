//! Any JSON as a Coinbase `candles` answer: candles or an error, never a panic.
#![no_main]

use atalaya_model::Timeframe;
use atalaya_sources::coinbase_rest::candles_from_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let id = "coinbase:BTC/USD".parse().expect("id");
        let _ = candles_from_json(&v, id, Timeframe::M5, (i64::MIN, i64::MAX), 1_700_000_000_000_000_000);
    }
});
