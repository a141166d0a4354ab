//! Any lines as Coinbase Advanced Trade WebSocket frames: the parser answers events or an error
//! and never panics, whatever state earlier frames left it in (buckets forming, sequence
//! numbers).
#![no_main]

use atalaya_model::Event;
use atalaya_sources::coinbase_ws::{CoinbaseConfig, CoinbaseVenue};
use atalaya_sources::live::Venue;
use libfuzzer_sys::fuzz_target;

thread_local! {
    // Built once: a venue holds an HTTP client, which is slow to make.
    static VENUE: std::cell::RefCell<CoinbaseVenue> = std::cell::RefCell::new(
        CoinbaseVenue::new(CoinbaseConfig::default())
            .expect("default settings")
            .knowing(&[("coinbase:BTC/USD".parse().expect("id"), "BTC-USD".into())]),
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    VENUE.with(|v| {
        let v = &mut *v.borrow_mut();
        // A fresh connection for every input, so a crash reproduces from its input.
        let _ = v.on_connect(&[]);
        let mut out: Vec<(i64, Event)> = Vec::new();
        for frame in text.split('\n') {
            let _ = v.parse(frame, &mut out);
        }
    });
});
