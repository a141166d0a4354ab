//! On-chain metrics: Bitcoin's mempool, fee rates, hash rate and difficulty from a
//! mempool.space-compatible API, and Ethereum's gas price, base fee, block utilisation and
//! stablecoin supplies over JSON-RPC to a node: `live.sources = ["onchain"]`.
//!
//! Each reading is an [`OnchainMetric`] stamped with the time it became known. Ethereum block
//! metrics are published once per new block; a stablecoin's supply (`eth_call totalSupply`)
//! is published at every change, and the change itself as a mint or a burn
//! (`usdt_mint`, `usdc_burn`, in token units, exact: supplies are compared as integers).
//!
//! mempool.space publishes no rate limit numbers (it answers 429 and bans abuse), so requests
//! are spaced evenly at `requests_per_minute` (one [`RateLimiter`] per endpoint) and a 429
//! pauses that endpoint for its `Retry-After` (60 s without one). Bad answers — malformed
//! JSON, a JSON-RPC error, a missing field — are counted in the source's health and logged;
//! the poll goes on.

use std::time::Duration;

use async_trait::async_trait;
use atalaya_bus::Topic;
use atalaya_bus::health::SourceState;
use atalaya_model::{Clock, Envelope, Event, LiveClock, OnchainMetric, Symbol, UnixNanos};
use atalaya_net::RateLimiter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{Source, SourceContext, SourceError};

const S: i64 = 1_000_000_000;

/// An ERC-20 stablecoin whose supply is watched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stablecoin {
    /// Its symbol (`USDT`): metrics are named `<symbol>_supply`, `_mint`, `_burn` in lower case.
    pub symbol: String,
    /// The token contract (`0x` and 40 hex digits).
    pub address: String,
    /// Decimals of the token (6 for USDT and USDC).
    pub decimals: u32,
}

/// Endpoints and polling of the on-chain collector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnchainConfig {
    /// A mempool.space-compatible API base (`https://mempool.space/api`); empty: no Bitcoin.
    pub mempool_url: String,
    /// An Ethereum JSON-RPC endpoint (your node or a provider, key in the URL if it needs
    /// one); empty (the default): no Ethereum.
    pub ethereum_rpc_url: String,
    /// Seconds between rounds.
    pub poll_secs: u64,
    /// Hash rate and difficulty are read every this many rounds (they move slowly).
    pub hashrate_every: u32,
    /// Requests per minute to each endpoint.
    pub requests_per_minute: u32,
    /// Stablecoins whose supply is watched (USDT and USDC on Ethereum mainnet by default).
    pub stablecoins: Vec<Stablecoin>,
}

impl Default for OnchainConfig {
    fn default() -> Self {
        Self {
            mempool_url: "https://mempool.space/api".into(),
            ethereum_rpc_url: String::new(),
            poll_secs: 60,
            hashrate_every: 10,
            requests_per_minute: 30,
            stablecoins: vec![
                Stablecoin {
                    symbol: "USDT".into(),
                    address: "0xdAC17F958D2ee523a2206206994597C13D831ec7".into(),
                    decimals: 6,
                },
                Stablecoin {
                    symbol: "USDC".into(),
                    address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48".into(),
                    decimals: 6,
                },
            ],
        }
    }
}

impl OnchainConfig {
    /// Problems with the settings, each with its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.mempool_url.is_empty() && self.ethereum_rpc_url.is_empty() {
            p.push("onchain: set mempool_url, ethereum_rpc_url or both".to_owned());
        }
        for (field, u) in [
            ("mempool_url", &self.mempool_url),
            ("ethereum_rpc_url", &self.ethereum_rpc_url),
        ] {
            if !u.is_empty() {
                p.extend(crate::url_problem(&format!("onchain.{field}"), u));
            }
        }
        if self.poll_secs == 0 {
            p.push("onchain.poll_secs: at least 1".into());
        }
        if self.hashrate_every == 0 {
            p.push("onchain.hashrate_every: at least 1".into());
        }
        if self.requests_per_minute == 0 || self.requests_per_minute > 600 {
            p.push("onchain.requests_per_minute: between 1 and 600".into());
        }
        for (i, s) in self.stablecoins.iter().enumerate() {
            let hex = s.address.strip_prefix("0x").unwrap_or("");
            if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                p.push(format!(
                    "onchain.stablecoins[{i}].address: {:?} is not 0x and 40 hex digits",
                    s.address
                ));
            }
            if s.symbol.is_empty() || !s.symbol.bytes().all(|b| b.is_ascii_alphanumeric()) {
                p.push(format!(
                    "onchain.stablecoins[{i}].symbol: {:?} (letters and digits)",
                    s.symbol
                ));
            }
            if s.decimals > 36 {
                p.push(format!("onchain.stablecoins[{i}].decimals: at most 36"));
            }
        }
        p
    }
}

fn bad(message: impl Into<String>) -> SourceError {
    SourceError::Venue {
        venue: "onchain",
        message: message.into(),
        transient: true,
    }
}

fn metric(chain: Symbol, name: &str, value: f64, unit: &str) -> Result<OnchainMetric, SourceError> {
    OnchainMetric::new(chain, name, value, unit).map_err(|e| bad(format!("{name}: {e}")))
}

/// A finite, non-negative JSON number at `key`.
fn number(v: &Value, key: &str, what: &str) -> Result<f64, SourceError> {
    v[key]
        .as_f64()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| bad(format!("{what}: no non-negative number at {key:?}")))
}

/// `GET /v1/fees/recommended`: the five fee rates in sat/vB, as metrics of chain `btc`.
pub fn parse_fees(v: &Value, btc: Symbol) -> Result<Vec<OnchainMetric>, SourceError> {
    [
        ("fastestFee", "fee_fastest"),
        ("halfHourFee", "fee_half_hour"),
        ("hourFee", "fee_hour"),
        ("economyFee", "fee_economy"),
        ("minimumFee", "fee_minimum"),
    ]
    .into_iter()
    .map(|(key, name)| metric(btc, name, number(v, key, "fees")?, "sat/vB"))
    .collect()
}

/// `GET /mempool`: transactions waiting, their virtual size and their fees.
pub fn parse_mempool(v: &Value, btc: Symbol) -> Result<Vec<OnchainMetric>, SourceError> {
    Ok(vec![
        metric(
            btc,
            "mempool_tx_count",
            number(v, "count", "mempool")?,
            "tx",
        )?,
        metric(btc, "mempool_vsize", number(v, "vsize", "mempool")?, "vB")?,
        metric(
            btc,
            "mempool_total_fee",
            number(v, "total_fee", "mempool")?,
            "sat",
        )?,
    ])
}

/// `GET /v1/mining/hashrate/3d`: the current hash rate (H/s) and difficulty.
pub fn parse_hashrate(v: &Value, btc: Symbol) -> Result<Vec<OnchainMetric>, SourceError> {
    Ok(vec![
        metric(
            btc,
            "hashrate",
            number(v, "currentHashrate", "hashrate")?,
            "H/s",
        )?,
        metric(
            btc,
            "difficulty",
            number(v, "currentDifficulty", "hashrate")?,
            "",
        )?,
    ])
}

/// A JSON-RPC quantity (`0x` and hex digits, no more than 128 bits).
pub fn quantity(v: &Value, what: &str) -> Result<u128, SourceError> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{what}: not a hex string")))?;
    let hex = s
        .strip_prefix("0x")
        .ok_or_else(|| bad(format!("{what}: {s:?} lacks 0x")))?;
    let digits = hex.trim_start_matches('0');
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("{what}: {s:?} is not hex")));
    }
    if digits.len() > 32 {
        return Err(bad(format!("{what}: {s:?} exceeds 128 bits")));
    }
    u128::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16)
        .map_err(|e| bad(format!("{what}: {e}")))
}

/// The `result` of a JSON-RPC 2.0 answer to request `id`, or its error.
pub fn rpc_result(v: &Value, id: u64) -> Result<&Value, SourceError> {
    if v["jsonrpc"] != "2.0" {
        return Err(bad("ethereum: not a JSON-RPC 2.0 answer"));
    }
    if let Some(e) = v.get("error") {
        return Err(bad(format!(
            "ethereum: JSON-RPC error {}: {}",
            e["code"],
            e["message"].as_str().unwrap_or("(no message)")
        )));
    }
    if v["id"].as_u64() != Some(id) {
        return Err(bad(format!(
            "ethereum: answer for id {} to request {id}",
            v["id"]
        )));
    }
    match v.get("result") {
        Some(Value::Null) | None => Err(bad("ethereum: empty result")),
        Some(r) => Ok(r),
    }
}

/// One Ethereum block's numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    /// Height.
    pub number: u64,
    /// Base fee per gas in gwei (`None` before London).
    pub base_fee_gwei: Option<f64>,
    /// Gas used over the gas limit.
    pub utilisation: f64,
}

/// `eth_getBlockByNumber("latest", false)`'s result.
pub fn parse_block(r: &Value) -> Result<Block, SourceError> {
    let number = u64::try_from(quantity(&r["number"], "block number")?)
        .map_err(|_| bad("block number beyond 64 bits"))?;
    let used = quantity(&r["gasUsed"], "gasUsed")? as f64;
    let limit = quantity(&r["gasLimit"], "gasLimit")? as f64;
    if limit <= 0.0 || used > limit {
        return Err(bad(format!(
            "block {number}: gas used {used} of limit {limit}"
        )));
    }
    let base_fee_gwei = match r.get("baseFeePerGas") {
        None | Some(Value::Null) => None,
        Some(b) => Some(quantity(b, "baseFeePerGas")? as f64 / 1e9),
    };
    Ok(Block {
        number,
        base_fee_gwei,
        utilisation: used / limit,
    })
}

/// Token units of an integer amount with `decimals` (exact for the amounts tokens use).
fn units(raw: u128, decimals: u32) -> f64 {
    let scale = 10u128.checked_pow(decimals).unwrap_or(u128::MAX);
    (raw / scale) as f64 + (raw % scale) as f64 / scale as f64
}

/// What a supply reading means against the previous one: the supply metric, and a mint or a
/// burn of the difference when it changed.
pub fn supply_metrics(
    coin: &Stablecoin,
    eth: Symbol,
    previous: Option<u128>,
    now: u128,
) -> Result<Vec<OnchainMetric>, SourceError> {
    let sym = coin.symbol.to_ascii_lowercase();
    let mut out = vec![metric(
        eth,
        &format!("{sym}_supply"),
        units(now, coin.decimals),
        &coin.symbol,
    )?];
    match previous {
        Some(p) if now > p => out.push(metric(
            eth,
            &format!("{sym}_mint"),
            units(now - p, coin.decimals),
            &coin.symbol,
        )?),
        Some(p) if now < p => out.push(metric(
            eth,
            &format!("{sym}_burn"),
            units(p - now, coin.decimals),
            &coin.symbol,
        )?),
        _ => {}
    }
    Ok(out)
}

/// The on-chain source.
#[derive(Debug)]
pub struct OnchainSource {
    cfg: OnchainConfig,
}

impl OnchainSource {
    /// A source for `cfg` (checked).
    pub fn new(cfg: OnchainConfig) -> Result<Self, SourceError> {
        crate::refuse_problems(cfg.problems())?;
        Ok(Self { cfg })
    }
}

/// One endpoint: its client, its spacing and what it is called in messages.
struct Endpoint {
    url: String,
    limiter: RateLimiter,
}

impl Endpoint {
    fn new(url: &str, per_minute: u32) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            limiter: RateLimiter::new(1, 60 * S / i64::from(per_minute.max(1))),
        }
    }

    /// Waits for this endpoint's turn; `false` when cancelled.
    async fn turn(&mut self, cancel: &CancellationToken) -> bool {
        crate::wait_turn(&mut self.limiter, cancel).await
    }

    /// Sends `req` and reads a JSON answer; a 429 pauses the endpoint.
    async fn json(
        &mut self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Value, SourceError> {
        let res = req
            .send()
            .await
            .map_err(|e| bad(format!("{what}: unreachable: {}", crate::describe(e))))?;
        let status = res.status().as_u16();
        if status == 429 {
            let wait = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(60.0)
                .clamp(1.0, 600.0);
            tracing::warn!(what, wait_s = wait, "on-chain endpoint rate limit: pausing");
            self.limiter
                .too_many_requests(wait.ceil() as u64, LiveClock.now());
            return Err(bad(format!("{what}: HTTP 429")));
        }
        if !res.status().is_success() {
            return Err(bad(format!("{what}: HTTP {status}")));
        }
        res.json::<Value>()
            .await
            .map_err(|e| bad(format!("{what}: unreadable answer: {}", crate::describe(e))))
    }
}

/// Everything one run remembers between rounds.
#[derive(Default)]
struct Memory {
    round: u64,
    last_block: Option<u64>,
    supplies: Vec<Option<u128>>,
    rpc_id: u64,
}

#[async_trait]
impl Source for OnchainSource {
    fn name(&self) -> &str {
        "onchain"
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let client =
            crate::http_client_as("onchain", concat!("atalaya/", env!("CARGO_PKG_VERSION")))?;
        let src = Symbol::new("onchain").map_err(SourceError::Model)?;
        let btc = Symbol::new("bitcoin").map_err(SourceError::Model)?;
        let eth_chain = Symbol::new("ethereum").map_err(SourceError::Model)?;
        let cfg = &self.cfg;
        let mut mempool = (!cfg.mempool_url.is_empty())
            .then(|| Endpoint::new(&cfg.mempool_url, cfg.requests_per_minute));
        let mut eth = (!cfg.ethereum_rpc_url.is_empty())
            .then(|| Endpoint::new(&cfg.ethereum_rpc_url, cfg.requests_per_minute));
        let mut mem = Memory {
            supplies: vec![None; cfg.stablecoins.len()],
            ..Memory::default()
        };
        let mut seq = 0u64;
        ctx.health.set_state(SourceState::Running);
        loop {
            let mut found: Vec<OnchainMetric> = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            if let Some(ep) = &mut mempool {
                let hashrate = mem.round.is_multiple_of(u64::from(cfg.hashrate_every));
                type Parse = fn(&Value, Symbol) -> Result<Vec<OnchainMetric>, SourceError>;
                let calls: &[(&str, Parse)] = &[
                    ("/v1/fees/recommended", parse_fees),
                    ("/mempool", parse_mempool),
                    ("/v1/mining/hashrate/3d", parse_hashrate),
                ];
                for (path, parse) in calls {
                    if path.contains("hashrate") && !hashrate {
                        continue;
                    }
                    if !ep.turn(&ctx.cancel).await {
                        break;
                    }
                    let what = format!("mempool {path}");
                    let url = format!("{}{path}", ep.url);
                    match ep
                        .json(client.get(&url), &what)
                        .await
                        .and_then(|v| parse(&v, btc))
                    {
                        Ok(m) => found.extend(m),
                        Err(e) => errors.push(e.to_string()),
                    }
                }
            }
            if let Some(ep) = &mut eth {
                let out = (&mut found, &mut errors);
                ethereum_round(ep, &client, cfg, eth_chain, &mut mem, &ctx.cancel, out).await;
            }
            mem.round += 1;
            for e in errors {
                tracing::warn!(error = %e, "on-chain poll failed");
                ctx.health.record_error(e);
            }
            let known: UnixNanos = LiveClock.now();
            let n = found.len() as u64;
            for m in found {
                seq += 1;
                let env = Envelope::new(seq, known, known, src, Event::Onchain(Box::new(m)));
                ctx.bus.publish(Topic::Inbound, env).await?;
            }
            if n > 0 {
                ctx.health.record_events(n, known);
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(cfg.poll_secs)) => {}
                () = ctx.cancel.cancelled() => break,
            }
        }
        ctx.health.set_state(SourceState::Finished);
        Ok(())
    }
}

/// Gas price, the latest block (once per block) and every stablecoin's supply.
async fn ethereum_round(
    ep: &mut Endpoint,
    client: &reqwest::Client,
    cfg: &OnchainConfig,
    eth: Symbol,
    mem: &mut Memory,
    cancel: &CancellationToken,
    (found, errors): (&mut Vec<OnchainMetric>, &mut Vec<String>),
) {
    let mut call = async |ep: &mut Endpoint, method: &str, params: Value| {
        mem.rpc_id += 1;
        let id = mem.rpc_id;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let v = ep
            .json(
                client.post(&ep.url).json(&body),
                &format!("ethereum {method}"),
            )
            .await?;
        rpc_result(&v, id).cloned()
    };
    if !ep.turn(cancel).await {
        return;
    }
    match call(ep, "eth_gasPrice", json!([])).await.and_then(|r| {
        let wei = quantity(&r, "gas price")?;
        metric(eth, "gas_price", wei as f64 / 1e9, "gwei")
    }) {
        Ok(m) => found.push(m),
        Err(e) => errors.push(e.to_string()),
    }
    if !ep.turn(cancel).await {
        return;
    }
    match call(ep, "eth_getBlockByNumber", json!(["latest", false]))
        .await
        .and_then(|r| parse_block(&r))
    {
        Ok(b) if mem.last_block.is_none_or(|last| b.number > last) => {
            mem.last_block = Some(b.number);
            let mut push = |name: &str, v: f64, unit: &str| match metric(eth, name, v, unit) {
                Ok(m) => found.push(m),
                Err(e) => errors.push(e.to_string()),
            };
            push("block_number", b.number as f64, "");
            if let Some(fee) = b.base_fee_gwei {
                push("base_fee", fee, "gwei");
            }
            push("block_utilisation", b.utilisation, "ratio");
        }
        Ok(_) => {}
        Err(e) => errors.push(e.to_string()),
    }
    for (i, coin) in cfg.stablecoins.iter().enumerate() {
        if !ep.turn(cancel).await {
            return;
        }
        // totalSupply(): selector 0x18160ddd; `data` has the widest support.
        let params = json!([{"to": coin.address, "data": "0x18160ddd"}, "latest"]);
        let read = call(ep, "eth_call", params)
            .await
            .and_then(|r| quantity(&r, &format!("{} totalSupply", coin.symbol)));
        match read {
            Ok(now) if mem.supplies[i] != Some(now) => {
                match supply_metrics(coin, eth, mem.supplies[i], now) {
                    Ok(m) => found.extend(m),
                    Err(e) => errors.push(e.to_string()),
                }
                mem.supplies[i] = Some(now);
            }
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> Symbol {
        Symbol::new("bitcoin").unwrap()
    }

    #[test]
    fn documented_mempool_answers() {
        let fees = parse_fees(
            &json!({"fastestFee":12,"halfHourFee":9,"hourFee":7,"economyFee":3,"minimumFee":1}),
            btc(),
        )
        .unwrap();
        let got: Vec<(&str, f64)> = fees.iter().map(|m| (m.metric(), m.value())).collect();
        assert_eq!(
            got,
            [
                ("fee_fastest", 12.0),
                ("fee_half_hour", 9.0),
                ("fee_hour", 7.0),
                ("fee_economy", 3.0),
                ("fee_minimum", 1.0)
            ]
        );
        assert_eq!(fees[0].unit(), "sat/vB");
        assert_eq!(fees[0].chain().as_str(), "bitcoin");
        let m = parse_mempool(&json!({"count":3169,"vsize":1891542,"total_fee":20317481,"fee_histogram":[[1.0071429,2692]]}), btc()).unwrap();
        assert_eq!(m[1].value(), 1_891_542.0);
        let h = parse_hashrate(&json!({"hashrates":[{"timestamp":1652486400,"avgHashrate":2.364997621087718e20}],"difficulty":[{"timestamp":1652468330,"difficulty":31251101365711.12,"height":736249}],"currentHashrate":2.520332473552123e20,"currentDifficulty":31251101365711.12}), btc()).unwrap();
        assert_eq!(h[0].value(), 2.520332473552123e20);
        assert_eq!(h[1].value(), 31251101365711.12);
        for broken in [
            json!({}),
            json!({"fastestFee":"12"}),
            json!({"fastestFee":-1,"halfHourFee":1,"hourFee":1,"economyFee":1,"minimumFee":1}),
        ] {
            assert!(parse_fees(&broken, btc()).is_err(), "{broken}");
        }
    }

    #[test]
    fn documented_json_rpc_answers() {
        let v = json!({"jsonrpc":"2.0","id":2,"result":{"number":"0x1528a3c","hash":"0x1","timestamp":"0x6b055fa9","baseFeePerGas":"0x2c0a48a1d","gasUsed":"0x1c9c1d2","gasLimit":"0x1c9c380","transactions":["0x2"]}});
        let b = parse_block(rpc_result(&v, 2).unwrap()).unwrap();
        assert_eq!(b.number, 0x1528a3c);
        assert!((b.base_fee_gwei.unwrap() - 11.821_943_325).abs() < 1e-9);
        assert_eq!(b.utilisation, 0x1c9c1d2 as f64 / 0x1c9c380 as f64);
        let supply = json!({"jsonrpc":"2.0","id":3,"result":"0x000000000000000000000000000000000000000000000000013fbe85edc90000"});
        let raw = quantity(rpc_result(&supply, 3).unwrap(), "supply").unwrap();
        assert_eq!(raw, 90_000_000_000 * 1_000_000);
        // Errors, a wrong id, null results and oversized or malformed quantities are refused.
        let err =
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"invalid params"}});
        assert!(
            rpc_result(&err, 1)
                .unwrap_err()
                .to_string()
                .contains("-32602")
        );
        assert!(rpc_result(&json!({"jsonrpc":"2.0","id":9,"result":"0x1"}), 1).is_err());
        assert!(rpc_result(&json!({"jsonrpc":"2.0","id":1,"result":null}), 1).is_err());
        assert!(rpc_result(&json!({"id":1,"result":"0x1"}), 1).is_err());
        for q in ["0x", "12", "0xzz", "0x1ffffffffffffffffffffffffffffffff"] {
            assert!(quantity(&json!(q), "q").is_err(), "{q}");
        }
        assert_eq!(quantity(&json!("0x0"), "q").unwrap(), 0);
        assert!(parse_block(&json!({"number":"0x1","gasUsed":"0x2","gasLimit":"0x1"})).is_err());
        // Before London there is no base fee.
        let old = parse_block(&json!({"number":"0x1","gasUsed":"0x1","gasLimit":"0x2"})).unwrap();
        assert_eq!(old.base_fee_gwei, None);
    }

    #[test]
    fn supply_changes_are_mints_and_burns_in_token_units() {
        let usdt = &OnchainConfig::default().stablecoins[0];
        let eth = Symbol::new("ethereum").unwrap();
        let first = supply_metrics(usdt, eth, None, 1_000_000_000_000).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].metric(), first[0].value()),
            ("usdt_supply", 1_000_000.0)
        );
        let mint = supply_metrics(usdt, eth, Some(1_000_000_000_000), 1_000_250_500_000).unwrap();
        assert_eq!((mint[1].metric(), mint[1].value()), ("usdt_mint", 250.5));
        let burn = supply_metrics(usdt, eth, Some(1_000_250_500_000), 1_000_000_000_001).unwrap();
        assert_eq!(
            (burn[1].metric(), burn[1].value()),
            ("usdt_burn", 250.499_999)
        );
        assert_eq!(burn[1].unit(), "USDT");
    }

    #[test]
    fn settings_are_checked() {
        assert!(OnchainConfig::default().problems().is_empty());
        let bad = OnchainConfig {
            mempool_url: String::new(),
            ethereum_rpc_url: "ftp://node".into(),
            poll_secs: 0,
            hashrate_every: 0,
            requests_per_minute: 0,
            stablecoins: vec![Stablecoin {
                symbol: "US DT".into(),
                address: "0x12".into(),
                decimals: 99,
            }],
        };
        assert_eq!(bad.problems().len(), 7, "{:?}", bad.problems());
    }
}
