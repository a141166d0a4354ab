//! Any bytes as a Coinbase Advanced Trade or Kraken v2 WebSocket frame: each parser answers
//! events or an error and never panics, whatever state earlier frames left it in.
#![no_main]

use atalaya_model::Event;
use atalaya_sources::coinbase_ws::{CoinbaseConfig, CoinbaseVenue};
use atalaya_sources::kraken_ws::{KrakenConfig, KrakenVenue};
use atalaya_sources::live::Venue;
use libfuzzer_sys::fuzz_target;

thread_local! {
    // Built once: a venue holds an HTTP client, which is slow to make.
    static VENUES: std::cell::RefCell<(CoinbaseVenue, KrakenVenue)> = std::cell::RefCell::new((
        CoinbaseVenue::new(CoinbaseConfig::default())
            .expect("default settings")
            .knowing(&[("coinbase:BTC/USD".parse().expect("id"), "BTC-USD".into())]),
        KrakenVenue::new(KrakenConfig::default())
            .expect("default settings")
            .knowing(&[("kraken:BTC/USD".parse().expect("id"), "BTC/USD".into())]),
    ));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    VENUES.with(|v| {
        let (cb, kr) = &mut *v.borrow_mut();
        // A fresh connection's state for every input, so a crash reproduces from its input.
        let _ = cb.on_connect(&[]);
        let _ = kr.on_connect(&[]);
        let mut out: Vec<(i64, Event)> = Vec::new();
        // Several frames per input (split on newlines), so candle state carries over.
        for frame in text.split('\n') {
            let _ = cb.parse(frame, &mut out);
            let _ = kr.parse(frame, &mut out);
        }
    });
});
