//! Any JSON as a NewsAPI `/everything` answer and as an X recent-search answer: items or an
//! error, never a panic; every item has an id and a title or text.
#![no_main]

use atalaya_sources::news::{Linker, NewsConfig};
use atalaya_sources::newsapi::parse_everything;
use atalaya_sources::x::parse_search;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static LINKER: Linker = Linker::new(&NewsConfig::default().aliases);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        LINKER.with(|l| {
            if let Ok(items) = parse_everything(&v, l) {
                assert!(items.iter().all(|n| !n.id().is_empty() && !n.title().trim().is_empty()));
            }
            if let Ok(s) = parse_search(&v, l) {
                assert!(s.posts.iter().all(|p| !p.id().is_empty() && !p.text().is_empty()));
            }
        });
    }
});
