//! Any lines as Kraken v2 WebSocket frames: the parser answers events or an error and never
//! panics, whatever state earlier frames left it in (bars forming).
#![no_main]

use atalaya_model::Event;
use atalaya_sources::kraken_ws::{KrakenConfig, KrakenVenue};
use atalaya_sources::live::Venue;
use libfuzzer_sys::fuzz_target;

thread_local! {
    // Built once: a venue holds an HTTP client, which is slow to make.
    static VENUE: std::cell::RefCell<KrakenVenue> = std::cell::RefCell::new(
        KrakenVenue::new(KrakenConfig::default())
            .expect("default settings")
            .knowing(&[("kraken:BTC/USD".parse().expect("id"), "BTC/USD".into())]),
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    VENUE.with(|v| {
        let v = &mut *v.borrow_mut();
        let _ = v.on_connect(&[]);
        let mut out: Vec<(i64, Event)> = Vec::new();
        for frame in text.split('\n') {
            let _ = v.parse(frame, &mut out);
        }
    });
});
