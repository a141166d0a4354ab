//! Binance's and Coinbase's recorded and documented payloads (../shared/data, via ATALAYA_DATA_DIR).

#![allow(clippy::unwrap_used)] // Test helpers panic on failure by design.

use atalaya_model::{Event, NANOS_PER_MILLI, Side, Timeframe};
use atalaya_sources::binance::{SymbolMap, normalise};

#[test]
fn recorded_binance_payloads_normalise() {
    let Some(data) = atalaya_testkit::data_dir("recorded_binance_payloads_normalise") else {
        return;
    };
    let dir = data.join("exchange_payloads_nautilus_lgpl3");
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let symbols = SymbolMap::new(&[
        "binance:ETH/USDT".parse().unwrap(),
        "binance:BTC/USDT".parse().unwrap(),
    ]);

    let (ts, ev) = normalise(
        &read("binance_python_test_resources/ws_messages/ws_spot_trade.json"),
        &symbols,
    )
    .unwrap()
    .unwrap();
    let Event::Trade(t) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(ts, 1_639_351_062_243 * NANOS_PER_MILLI);
    assert_eq!(
        (t.id(), t.price(), t.quantity(), t.side()),
        (705_291_099, 4149.74, 0.4387, Side::Sell)
    );

    let (ts, ev) = normalise(
        &read("binance_python_test_resources/ws_messages/ws_spot_agg_trade.json"),
        &symbols,
    )
    .unwrap()
    .unwrap();
    let Event::Trade(t) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(ts, 1_675_759_520_847 * NANOS_PER_MILLI);
    assert_eq!((t.id(), t.price(), t.side()), (226_532, 1632.46, Side::Buy));

    let (ts, ev) = normalise(
        &read("binance_python_test_resources/ws_messages/ws_spot_ticker_book.json"),
        &symbols,
    )
    .unwrap()
    .unwrap();
    let Event::Ticker(k) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(ts, 1_646_199_228_121 * NANOS_PER_MILLI);
    assert_eq!(
        (k.bid(), k.bid_size(), k.ask(), k.ask_size()),
        (4507.24, 2.3595, 4507.25, 2.8457)
    );

    let (ts, ev) = normalise(
        &read("binance_docs_examples/futures/market_data_json/kline_stream_closed.json"),
        &symbols,
    )
    .unwrap()
    .unwrap();
    let Event::Candle(c) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(ts, 1_638_747_720_000 * NANOS_PER_MILLI);
    assert_eq!(
        (c.timeframe(), c.open(), c.close(), c.volume(), c.trades()),
        (Timeframe::M1, 0.001, 0.002, 1000.0, 100)
    );
    assert!(
        normalise(
            &read("binance_docs_examples/futures/market_data_json/kline_stream_open.json"),
            &symbols
        )
        .unwrap()
        .is_none()
    );
}

#[test]
fn recorded_coinbase_payloads_parse() {
    use atalaya_sources::coinbase_ws::{CoinbaseConfig, CoinbaseVenue};
    use atalaya_sources::live::Venue;
    let Some(data) = atalaya_testkit::data_dir("recorded_coinbase_payloads_parse") else {
        return;
    };
    let dir = data.join("exchange_payloads_nautilus_lgpl3/coinbase_advanced_trade");
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let btc: atalaya_model::InstrumentId = "coinbase:BTC/USD".parse().unwrap();
    let eth: atalaya_model::InstrumentId = "coinbase:ETH/USD".parse().unwrap();
    let mut v = CoinbaseVenue::new(CoinbaseConfig::default())
        .unwrap()
        .knowing(&[(btc, "BTC-USD".into()), (eth, "ETH-USD".into())]);
    let mut out = Vec::new();
    // Each file is a separate recording with its own sequence numbers: a connection each.
    let parse = |v: &mut CoinbaseVenue, f: &str, out: &mut Vec<_>| {
        let _ = v.on_connect(&[]);
        v.parse(&read(f), out)
    };
    parse(&mut v, "ws_market_trades.json", &mut out).unwrap();
    assert_eq!(out.len(), 2, "{out:?}");
    let Event::Trade(t) = out[0].1 else { panic!() };
    assert_eq!(
        (t.id(), t.price(), t.side()),
        (995_098_700, 68_900.5, Side::Buy)
    );
    out.clear();
    parse(&mut v, "ws_ticker.json", &mut out).unwrap();
    let Event::Ticker(k) = out[0].1 else { panic!() };
    assert_eq!(
        (k.bid(), k.ask(), k.last()),
        (68_900.0, 68_901.0, Some(68_900.5))
    );
    out.clear();
    // Heartbeats and subscriptions carry no event; a candle is held until the next bucket.
    for f in [
        "ws_heartbeats.json",
        "ws_subscriptions.json",
        "ws_candles.json",
    ] {
        parse(&mut v, f, &mut out).unwrap();
    }
    assert!(out.is_empty(), "{out:?}");
    // The REST candles answer.
    let body: serde_json::Value = serde_json::from_str(&read("http_candles.json")).unwrap();
    let c = atalaya_sources::coinbase_rest::candles_from_json(
        &body,
        btc,
        Timeframe::H1,
        (i64::MIN, i64::MAX),
        i64::MAX,
    )
    .unwrap();
    assert!(!c.is_empty());
    assert!(
        c.windows(2).all(|w| w[0].open_time() < w[1].open_time()),
        "oldest first"
    );
}
