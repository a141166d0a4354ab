//! Any bytes as a Binance WebSocket frame: the parser answers an event, nothing, or an error,
//! never panics, and its fast path agrees with the serde path wherever it answers an event.
#![no_main]

use atalaya_sources::binance::{SymbolMap, normalise, normalise_slow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = std::str::from_utf8(data) else {
        return;
    };
    let ids = ["binance:BTC/USDT".parse().expect("id"), "binance:ETH/USDT".parse().expect("id")];
    let map = SymbolMap::new(&ids);
    if let Ok(Some(fast)) = normalise(frame, &map) {
        let slow = normalise_slow(frame, &map);
        assert_eq!(format!("{:?}", Ok::<_, ()>(Some(fast))), format!("{:?}", slow.map_err(|_| ())), "{frame}");
    }
});
