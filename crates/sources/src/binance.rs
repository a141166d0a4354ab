//! Binance Spot market-data messages, normalised into Atalaya's events.
//!
//! Handles both raw streams (`/ws/<stream>`) and the combined-stream envelope
//! (`/stream?streams=…`: `{"stream":"ethusdt@trade","data":{…}}`). Payloads as documented by
//! Binance (developers.binance.com, WebSocket Streams), for example a trade:
//!
//! ```json
//! {"stream":"ethusdt@trade","data":{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":705291099,
//!  "p":"4149.74000000","q":"0.43870000","T":1639351062243,"m":true,"M":true}}
//! ```
//!
//! Numbers arrive as strings and are parsed without allocating (the structs borrow from the
//! frame). `m: true` means the buyer was the maker, so the aggressor sold. Only closed klines
//! (`"x": true`) become candles. A malformed frame is an error to count, never a panic.

use std::collections::HashMap;

use atalaya_model::{
    Candle, Event, InstrumentId, ModelError, NANOS_PER_MILLI, Side, Ticker, Timeframe, Trade,
    UnixNanos,
};
use serde::Deserialize;

/// Why a frame was not turned into an event.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or not the documented shape.
    #[error("malformed {kind} frame: {source}")]
    Json {
        /// Which message kind was expected.
        kind: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A field that must be a number was not.
    #[error("field {field} is not a number: {value:?}")]
    Number {
        /// The field.
        field: &'static str,
        /// Its text.
        value: String,
    },
    /// The symbol is not one we subscribed to.
    #[error("unknown symbol {0}")]
    UnknownSymbol(String),
    /// The values broke a domain rule (a crossed book, a zero price …).
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// A kline interval Atalaya does not model.
    #[error("unsupported kline interval {0}")]
    Interval(String),
}

/// Exchange symbols (`BTCUSDT`) to instruments.
#[derive(Clone, Debug, Default)]
pub struct SymbolMap(HashMap<String, InstrumentId>);

impl SymbolMap {
    /// Maps each instrument's concatenated symbol (`BTCUSDT`) to it.
    pub fn new(instruments: &[InstrumentId]) -> Self {
        Self(
            instruments
                .iter()
                .map(|i| (i.concat_symbol(), *i))
                .collect(),
        )
    }

    fn get(&self, s: &str) -> Result<InstrumentId, FrameError> {
        self.0
            .get(s)
            .copied()
            .ok_or_else(|| FrameError::UnknownSymbol(s.to_owned()))
    }
}

fn num(field: &'static str, s: &str) -> Result<f64, FrameError> {
    s.parse::<f64>().map_err(|_| FrameError::Number {
        field,
        value: s.to_owned(),
    })
}

#[derive(Deserialize)]
struct Combined<T> {
    data: T,
}

#[derive(Deserialize)]
struct TradeMsg<'a> {
    #[serde(rename = "s")]
    symbol: &'a str,
    #[serde(rename = "t")]
    id: u64,
    #[serde(rename = "p")]
    price: &'a str,
    #[serde(rename = "q")]
    qty: &'a str,
    #[serde(rename = "T")]
    time: i64,
    #[serde(rename = "m")]
    buyer_maker: bool,
}

#[derive(Deserialize)]
struct AggTradeMsg<'a> {
    #[serde(rename = "s")]
    symbol: &'a str,
    #[serde(rename = "a")]
    id: u64,
    #[serde(rename = "p")]
    price: &'a str,
    #[serde(rename = "q")]
    qty: &'a str,
    #[serde(rename = "T")]
    time: i64,
    #[serde(rename = "m")]
    buyer_maker: bool,
}

#[derive(Deserialize)]
struct BookTickerMsg<'a> {
    #[serde(rename = "s")]
    symbol: &'a str,
    #[serde(rename = "b")]
    bid: &'a str,
    #[serde(rename = "B")]
    bid_qty: &'a str,
    #[serde(rename = "a")]
    ask: &'a str,
    #[serde(rename = "A")]
    ask_qty: &'a str,
    #[serde(rename = "T", default)]
    time: Option<i64>,
    #[serde(rename = "E", default)]
    event_time: Option<i64>,
}

#[derive(Deserialize)]
struct KlineMsg<'a> {
    #[serde(rename = "s")]
    symbol: &'a str,
    #[serde(rename = "k", borrow)]
    k: KlineBody<'a>,
}

#[derive(Deserialize)]
struct KlineBody<'a> {
    t: i64,
    #[serde(rename = "T")]
    close_time: i64,
    i: &'a str,
    o: &'a str,
    h: &'a str,
    l: &'a str,
    c: &'a str,
    v: &'a str,
    n: u32,
    x: bool,
}

/// The message kinds handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Trade,
    AggTrade,
    BookTicker,
    Kline,
    Other,
}

/// Reads the kind from the stream name or the `"e"` field without parsing the frame.
fn kind(frame: &str) -> Kind {
    // The first 96 bytes, cut at a character boundary (a frame may hold any UTF-8).
    let mut end = frame.len().min(96);
    while !frame.is_char_boundary(end) {
        end -= 1;
    }
    let head = &frame[..end];
    if let Some(i) = head.find("\"stream\"") {
        let rest = &head[i..];
        if let Some(at) = rest.find('@') {
            let name = &rest[at + 1..];
            return if name.starts_with("trade\"") {
                Kind::Trade
            } else if name.starts_with("aggTrade\"") {
                Kind::AggTrade
            } else if name.starts_with("bookTicker\"") {
                Kind::BookTicker
            } else if name.starts_with("kline_") {
                Kind::Kline
            } else {
                Kind::Other
            };
        }
    }
    let compact: String = head.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("\"e\":\"trade\"") {
        Kind::Trade
    } else if compact.contains("\"e\":\"aggTrade\"") {
        Kind::AggTrade
    } else if compact.contains("\"e\":\"kline\"") {
        Kind::Kline
    } else if compact.contains("\"u\":") && compact.contains("\"b\":\"") {
        Kind::BookTicker
    } else {
        Kind::Other
    }
}

fn parse<'a, T: Deserialize<'a>>(frame: &'a str, name: &'static str) -> Result<T, FrameError> {
    let combined = frame.trim_start().starts_with("{\"stream\"") || frame.contains("\"data\"");
    if combined {
        serde_json::from_str::<Combined<T>>(frame).map(|c| c.data)
    } else {
        serde_json::from_str::<T>(frame)
    }
    .map_err(|source| FrameError::Json { kind: name, source })
}

/// Turns one frame into an event and its event time, or `Ok(None)` for frames that carry no
/// event (an open kline, subscription acknowledgements, other streams).
pub fn normalise(
    frame: &str,
    symbols: &SymbolMap,
) -> Result<Option<(UnixNanos, Event)>, FrameError> {
    let side = |buyer_maker: bool| if buyer_maker { Side::Sell } else { Side::Buy };
    match kind(frame) {
        Kind::Trade => {
            let m: TradeMsg = parse(frame, "trade")?;
            let t = Trade::new(
                symbols.get(m.symbol)?,
                m.id,
                num("p", m.price)?,
                num("q", m.qty)?,
                side(m.buyer_maker),
            )?;
            Ok(Some((m.time * NANOS_PER_MILLI, Event::Trade(t))))
        }
        Kind::AggTrade => {
            let m: AggTradeMsg = parse(frame, "aggTrade")?;
            let t = Trade::new(
                symbols.get(m.symbol)?,
                m.id,
                num("p", m.price)?,
                num("q", m.qty)?,
                side(m.buyer_maker),
            )?;
            Ok(Some((m.time * NANOS_PER_MILLI, Event::Trade(t))))
        }
        Kind::BookTicker => {
            let m: BookTickerMsg = parse(frame, "bookTicker")?;
            let t = Ticker::new(
                symbols.get(m.symbol)?,
                (num("b", m.bid)?, num("B", m.bid_qty)?),
                (num("a", m.ask)?, num("A", m.ask_qty)?),
                None,
            )?;
            let ts = m.time.or(m.event_time).unwrap_or(0) * NANOS_PER_MILLI;
            Ok(Some((ts, Event::Ticker(t))))
        }
        Kind::Kline => {
            let m: KlineMsg = parse(frame, "kline")?;
            if !m.k.x {
                return Ok(None);
            }
            let tf: Timeframe =
                m.k.i
                    .parse()
                    .map_err(|_| FrameError::Interval(m.k.i.to_owned()))?;
            let k = &m.k;
            let c = Candle::new(
                symbols.get(m.symbol)?,
                tf,
                k.t * NANOS_PER_MILLI,
                [
                    num("o", k.o)?,
                    num("h", k.h)?,
                    num("l", k.l)?,
                    num("c", k.c)?,
                ],
                num("v", k.v)?,
                k.n,
            )?;
            Ok(Some((
                (k.close_time + 1) * NANOS_PER_MILLI,
                Event::Candle(c),
            )))
        }
        Kind::Other => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols() -> SymbolMap {
        SymbolMap::new(&[
            "binance:ETH/USDT".parse().unwrap(),
            "binance:BTC/USDT".parse().unwrap(),
        ])
    }

    #[test]
    fn a_multibyte_character_at_the_sniffing_limit_is_not_a_panic() {
        // Found by the fuzz target: byte 96 fell inside a multi-byte character.
        for pad in 90..100 {
            let frame = format!("{{\"x\":\"{}é€🚀\"}}", "a".repeat(pad));
            assert!(matches!(normalise(&frame, &symbols()), Ok(None) | Err(_)));
        }
    }

    #[test]
    fn documented_trade_and_kline() {
        let frame = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1639351062244,"s":"ETHUSDT","t":705291099,"p":"4149.74000000","q":"0.43870000","b":7038593583,"a":7038593613,"T":1639351062243,"m":true,"M":true}}"#;
        let (ts, ev) = normalise(frame, &symbols()).unwrap().unwrap();
        assert_eq!(ts, 1_639_351_062_243 * NANOS_PER_MILLI);
        let Event::Trade(t) = ev else { panic!() };
        assert_eq!(
            (t.id(), t.price(), t.quantity(), t.side()),
            (705_291_099, 4149.74, 0.4387, Side::Sell)
        );
        let open = r#"{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":1638747660000,"T":1638747719999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0010","v":"1000","n":100,"x":false,"q":"1.0","V":"500","Q":"0.5","B":"1"}}"#;
        assert!(normalise(open, &symbols()).unwrap().is_none());
        let closed = open.replace("\"x\":false", "\"x\":true");
        let (ts, ev) = normalise(&closed, &symbols()).unwrap().unwrap();
        assert_eq!(ts, 1_638_747_720_000 * NANOS_PER_MILLI);
        let Event::Candle(c) = ev else { panic!() };
        assert_eq!(
            (c.timeframe(), c.high(), c.trades()),
            (Timeframe::M1, 0.0025, 100)
        );
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        for bad in [
            "",
            "{",
            r#"{"stream":"ethusdt@trade","data":{"e":"trade","s":"ETHUSDT"}}"#,
            r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"abc","q":"1","T":1,"m":true}}"#,
            r#"{"stream":"xrpusdt@trade","data":{"e":"trade","E":1,"s":"XRPUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
            r#"{"stream":"ethusdt@bookTicker","data":{"u":1,"s":"ETHUSDT","b":"10","B":"1","a":"9","A":"1"}}"#,
        ] {
            assert!(
                normalise(bad, &symbols())
                    .map(|o| o.is_none())
                    .unwrap_or(true),
                "{bad}"
            );
        }
        assert!(matches!(
            normalise(
                r#"{"stream":"xrpusdt@trade","data":{"e":"trade","E":1,"s":"XRPUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
                &symbols()
            ),
            Err(FrameError::UnknownSymbol(_))
        ));
        assert!(
            normalise(r#"{"result":null,"id":1}"#, &symbols())
                .unwrap()
                .is_none(),
            "subscription ack"
        );
    }
}
