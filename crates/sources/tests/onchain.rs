//! The on-chain collector against a fake mempool.space API and Ethereum node with the
//! documented shapes: fee, mempool and hash-rate metrics; block metrics once per block; exact
//! stablecoin mints and burns; a 429's `Retry-After` respected; a malformed body, an HTTP 500
//! and a JSON-RPC error counted while the poll goes on.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use atalaya_model::{Event, OnchainMetric};
use atalaya_sources::onchain::{OnchainConfig, OnchainSource};
use atalaya_testkit::fake_chain::{ChainFault, ChainState, FakeChain};

mod common;
use common::start;

const USDT: &str = "0xdac17f958d2ee523a2206206994597c13d831ec7";
const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

/// Collects metrics until `stop` holds for what was collected (or 20 s pass).
async fn collect(
    run: &mut common::Running,
    got: &mut Vec<OnchainMetric>,
    stop: impl Fn(&[OnchainMetric]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !stop(got) {
        if let Ok(Some(env)) =
            tokio::time::timeout(Duration::from_millis(200), run.sub.recv()).await
            && let Event::Onchain(m) = env.payload
        {
            got.push(*m);
        }
    }
}

fn count(got: &[OnchainMetric], name: &str) -> usize {
    got.iter().filter(|m| m.metric() == name).count()
}

fn values(got: &[OnchainMetric], name: &str) -> Vec<f64> {
    got.iter()
        .filter(|m| m.metric() == name)
        .map(OnchainMetric::value)
        .collect()
}

#[tokio::test]
async fn onchain_metrics_blocks_once_and_exact_mints_and_burns_through_faults() {
    let mut state = ChainState::default();
    state.supplies.insert(USDT.into(), 1_000_000_000_000);
    state.supplies.insert(USDC.into(), 5_000_000_000_000);
    let chain = FakeChain::start(state).await.unwrap();
    // The first fee request is rate limited for a second; the first gas price is a JSON-RPC
    // error; the first mempool read is an HTTP 500.
    chain.fault_on("GET /api/v1/fees", ChainFault::TooMany(Some(1)));
    chain.fault_on("POST /rpc eth_gasPrice", ChainFault::RpcError(-32000));
    chain.fault_on("GET /api/mempool", ChainFault::ServerError);
    let cfg = OnchainConfig {
        mempool_url: chain.mempool_url(),
        ethereum_rpc_url: chain.rpc_url(),
        poll_secs: 1,
        hashrate_every: 3,
        requests_per_minute: 600,
        ..OnchainConfig::default()
    };
    let mut run = start(OnchainSource::new(cfg).unwrap());
    let mut got = Vec::new();
    // Two rounds on the same block and supplies.
    collect(&mut run, &mut got, |g| count(g, "gas_price") >= 1).await;
    collect(&mut run, &mut got, |g| count(g, "fee_fastest") >= 1).await;
    assert_eq!(
        count(&got, "usdt_supply"),
        1,
        "published once while unchanged"
    );
    assert_eq!(count(&got, "block_number"), 1, "one block, published once");
    // A new block, a mint and a burn; a malformed fee answer on the way.
    chain.fault_on("GET /api/v1/fees", ChainFault::Malformed);
    chain.update(|s| {
        s.block.0 += 1;
        *s.supplies.get_mut(USDT).unwrap() += 250_500_000;
        *s.supplies.get_mut(USDC).unwrap() -= 1_000_001;
    });
    collect(&mut run, &mut got, |g| {
        count(g, "usdc_burn") >= 1 && count(g, "block_number") >= 2
    })
    .await;
    // One more round after the malformed answer.
    let fees_before = count(&got, "fee_fastest");
    collect(&mut run, &mut got, |g| {
        count(g, "fee_fastest") > fees_before
    })
    .await;
    let status = run.health.sources()[0].clone();
    run.cancel.cancel();
    run.task.await.unwrap().unwrap();

    assert_eq!(values(&got, "usdt_mint"), [250.5]);
    assert_eq!(values(&got, "usdc_burn"), [1.000_001]);
    assert_eq!(values(&got, "usdt_supply"), [1_000_000.0, 1_000_250.5]);
    assert!(count(&got, "usdt_burn") + count(&got, "usdc_mint") == 0);
    assert_eq!(values(&got, "block_number"), [22_186_556.0, 22_186_557.0]);
    assert_eq!(count(&got, "base_fee"), 2);
    assert!((values(&got, "base_fee")[0] - 11.821_943_325).abs() < 1e-9);
    assert_eq!(values(&got, "fee_fastest")[0], 12.0);
    assert_eq!(values(&got, "mempool_vsize")[0], 1_891_542.0);
    assert_eq!(values(&got, "gas_price")[0], 1.0);
    let m = got.iter().find(|m| m.metric() == "hashrate").unwrap();
    assert_eq!((m.chain().as_str(), m.unit()), ("bitcoin", "H/s"));
    assert!(
        status.errors >= 4,
        "429, RPC error, 500, malformed: {status:?}"
    );

    let reqs = chain.requests();
    let fees: Vec<&Instant> = reqs
        .iter()
        .filter(|r| r.what.starts_with("GET /api/v1/fees"))
        .map(|r| &r.at)
        .collect();
    // After the 429 nothing went to the mempool API for the second it asked for.
    let first = reqs
        .iter()
        .position(|r| r.what.starts_with("GET /api"))
        .unwrap();
    let next = reqs[first + 1..]
        .iter()
        .find(|r| r.what.starts_with("GET /api"))
        .unwrap();
    assert!(next.at.duration_since(*fees[0]) >= Duration::from_millis(950));
    // Hash rate only every third round.
    let hashrate = reqs.iter().filter(|r| r.what.contains("hashrate")).count();
    assert!(hashrate < fees.len(), "{hashrate} of {}", fees.len());
    // totalSupply() through eth_call with `data`, on the latest block.
    let call = reqs
        .iter()
        .find(|r| r.what == "POST /rpc eth_call")
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(body["params"][0]["data"], "0x18160ddd");
    assert_eq!(body["params"][1], "latest");
    assert_eq!(body["jsonrpc"], "2.0");
}
