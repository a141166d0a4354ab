//! The replay loader on arbitrary bytes: malformed input is reported, never a panic.
//! `cargo fuzz run replay_csv --sanitizer none` (stable toolchain).
#![no_main]

use atalaya_sources::replay::{LoadOptions, load};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("atalaya-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    for name in ["BTCUSDT_1h.csv", "BTC_USDT-1h.json"] {
        let path = dir.join(name);
        if std::fs::write(&path, data).is_ok() {
            let _ = load(&path, &LoadOptions::default());
        }
    }
});
