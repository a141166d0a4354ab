//! Any JSON as each on-chain answer (mempool fees, mempool, hash rate, a JSON-RPC envelope, a
//! block, a quantity): metrics or an error, never a panic; every metric is finite and
//! non-negative where the parser promises it.
#![no_main]

use atalaya_model::Symbol;
use atalaya_sources::onchain::{
    OnchainConfig, parse_block, parse_fees, parse_hashrate, parse_mempool, quantity, rpc_result,
    supply_metrics,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let (Ok(btc), Ok(eth)) = (Symbol::new("bitcoin"), Symbol::new("ethereum")) else {
        return;
    };
    for parse in [parse_fees, parse_mempool, parse_hashrate] {
        if let Ok(ms) = parse(&v, btc) {
            assert!(ms.iter().all(|m| m.value().is_finite() && m.value() >= 0.0));
        }
    }
    if let Ok(r) = rpc_result(&v, 1) {
        if let Ok(b) = parse_block(r) {
            assert!((0.0..=1.0).contains(&b.utilisation));
        }
        if let Ok(q) = quantity(r, "q") {
            let coin = &OnchainConfig::default().stablecoins[0];
            for prev in [None, Some(0), Some(u128::MAX), Some(q / 2)] {
                if let Ok(ms) = supply_metrics(coin, eth, prev, q) {
                    assert!(ms.iter().all(|m| m.value().is_finite() && m.value() >= 0.0));
                }
            }
        }
    }
});
