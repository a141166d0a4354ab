//! Any bytes as an RSS, Atom or JSON feed: the news parser answers items or an error and never
//! panics; every item it answers has an id, a publisher and a title.
#![no_main]

use atalaya_sources::news::{Linker, NewsConfig, parse_feed};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static LINKER: Linker = Linker::new(&NewsConfig::default().aliases);
}

fuzz_target!(|data: &[u8]| {
    LINKER.with(|l| {
        if let Ok((items, _)) = parse_feed(data, "fuzz", l, 0) {
            for i in items {
                assert!(!i.id().trim().is_empty() && !i.title().trim().is_empty());
            }
        }
    });
});
