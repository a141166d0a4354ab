//! Bytes to normalised event for Binance messages.
//!
//! `cargo bench -p atalaya-sources --bench binance`

use std::hint::black_box;

use atalaya_sources::binance::{SymbolMap, normalise};
use criterion::{Criterion, criterion_group, criterion_main};

const TRADE: &str = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":705291099,"p":"4149.74000000","q":"0.43870000","b":7038593583,"a":7038593613,"T":1639351062243,"m":true,"M":true}}"#;
const BOOK: &str = r#"{"stream":"ethusdt@bookTicker","data":{"u":12711621188,"s":"ETHUSDT","b":"4507.24000000","B":"2.35950000","a":"4507.25000000","A":"2.84570000","T":1646199228121,"E":1646199228123}}"#;
const KLINE: &str = r#"{"stream":"ethusdt@kline_1m","data":{"e":"kline","E":1638747660000,"s":"ETHUSDT","k":{"t":1638747660000,"T":1638747719999,"s":"ETHUSDT","i":"1m","f":100,"L":200,"o":"4100.10","c":"4120.20","h":"4125.00","l":"4099.00","v":"1000","n":100,"x":true,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}}"#;

fn bench(c: &mut Criterion) {
    let symbols = SymbolMap::new(&["binance:ETH/USDT".parse().expect("valid id")]);
    let mut g = c.benchmark_group("binance");
    for (name, frame) in [
        ("trade", TRADE),
        ("book_ticker", BOOK),
        ("kline_closed", KLINE),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(normalise(black_box(frame), &symbols).ok()))
        });
    }
    g.finish();
}

/// The ingest path a live trade takes, per message: frame → normalised trade → de-duplication
/// and ordering (`TradeSequencer`) → envelope → the in-process bus → the engine's queue (drained
/// in the same loop, so the consumer's side is counted too).
fn ingest(c: &mut Criterion) {
    use atalaya_bus::{Bus, Delivery, InProcessBus, Topic};
    use atalaya_model::{Envelope, Event, Symbol};
    use atalaya_net::TradeSequencer;

    const N: usize = 10_000;
    let symbols = SymbolMap::new(&["binance:ETH/USDT".parse().expect("valid id")]);
    let frames: Vec<String> = (0..N)
        .map(|i| {
            format!(
                r#"{{"stream":"ethusdt@trade","data":{{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":{},"p":"4149.{:02}000000","q":"0.43870000","b":7038593583,"a":7038593613,"T":{},"m":{},"M":true}}}}"#,
                705_291_099 + i,
                i % 100,
                1_639_351_062_243u64 + i as u64,
                i % 2 == 0
            )
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let bus = InProcessBus::new(N * 2);
    let mut sub = bus
        .subscribe(Topic::Inbound, "engine", Delivery::Reliable)
        .expect("subscribe");
    let src = Symbol::new("binance").expect("symbol");
    let mut g = c.benchmark_group("ingest");
    g.throughput(criterion::Throughput::Elements(N as u64));
    g.bench_function("binance_trade_to_engine_queue", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut seq: TradeSequencer<atalaya_model::InstrumentId, (i64, Event)> =
                    TradeSequencer::new(0, 100_000);
                for (n, f) in frames.iter().enumerate() {
                    if let Ok(Some((ts, Event::Trade(t)))) = normalise(f, &symbols) {
                        seq.push(t.instrument(), t.id(), ts, ts, (ts, Event::Trade(t)));
                    }
                    while let Some((ts, ev)) = seq.pop_ready(0) {
                        let env = Envelope::new(n as u64, ts, ts, src, ev);
                        let _ = bus.publish(Topic::Inbound, env).await;
                    }
                }
                for _ in 0..N {
                    black_box(sub.recv().await);
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench, ingest);
criterion_main!(benches);
