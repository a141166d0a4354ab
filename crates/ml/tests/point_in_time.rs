//! The sentiment index is point in time: a reading at `t` is either refused or exactly what an
//! index that only ever saw the items known by `t` reads — never anything from after `t`.
#![allow(clippy::unwrap_used)]

use atalaya_ml::index::{IndexConfig, Origin, SentimentIndex};
use proptest::prelude::*;

const H: i64 = 3_600_000_000_000;

fn items() -> impl Strategy<Value = Vec<(i64, f64, u8, u64)>> {
    // (gap since the previous item, score, asset, likes); sorted by time by construction.
    prop::collection::vec((0i64..6 * H, -1.0f64..1.0, 0u8..2, 0u64..500), 1..80).prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .map(|(gap, s, a, l)| {
                t += gap;
                (t, s, a, l)
            })
            .collect()
    })
}

fn add(ix: &mut SentimentIndex, (ts, score, asset, likes): (i64, f64, u8, u64)) {
    let asset = if asset == 0 { "BTC" } else { "ETH" };
    let origin = if likes % 2 == 0 {
        Origin::News
    } else {
        Origin::Social(likes, likes / 3, 1)
    };
    ix.add_and_check(asset, ts, score, origin, "item");
}

proptest! {
    #[test]
    fn a_reading_never_uses_an_item_from_after_it(items in items(), probes in prop::collection::vec(0i64..400 * H, 1..20)) {
        let cfg = IndexConfig::default();
        let mut all = SentimentIndex::new(cfg);
        for &it in &items {
            add(&mut all, it);
        }
        for t in probes {
            let mut known = SentimentIndex::new(cfg);
            for &it in items.iter().filter(|it| it.0 <= t) {
                add(&mut known, it);
            }
            for asset in ["BTC", "ETH"] {
                match all.read(asset, t) {
                    // Refused: the asset's newest item is after t (or too old, or none).
                    None => {}
                    Some(r) => prop_assert_eq!(Some(r), known.read(asset, t), "asset {} at {}", asset, t),
                }
            }
        }
    }
}
