//! Any JSON as a Kraken `OHLC` result: candles or an error, never a panic.
#![no_main]

use atalaya_model::Timeframe;
use atalaya_sources::kraken_ws::ohlc_from_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let id = "kraken:BTC/USD".parse().expect("id");
        let _ = ohlc_from_json(&v, id, Timeframe::H1, (i64::MIN, i64::MAX));
    }
});
