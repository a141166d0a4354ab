//! Any bytes as a Binance WebSocket frame: the parser answers an event, nothing, or an error,
//! and never panics.
#![no_main]

use atalaya_sources::binance::{SymbolMap, normalise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = std::str::from_utf8(data) else {
        return;
    };
    let ids = ["binance:BTC/USDT".parse().expect("id"), "binance:ETH/USDT".parse().expect("id")];
    let map = SymbolMap::new(&ids);
    let _ = normalise(frame, &map);
});
