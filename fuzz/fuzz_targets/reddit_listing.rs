//! Any JSON as a Reddit listing: posts or an error, never a panic; every post has an id.
#![no_main]

use atalaya_sources::news::{Linker, NewsConfig};
use atalaya_sources::reddit::parse_listing;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static LINKER: Linker = Linker::new(&NewsConfig::default().aliases);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        LINKER.with(|l| {
            if let Ok(posts) = parse_listing(&v, l) {
                assert!(posts.iter().all(|p| !p.id().trim().is_empty()));
            }
        });
    }
});
