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
    Candle, DayStats, Event, InstrumentId, ModelError, NANOS_PER_MILLI, Side, Ticker, Timeframe,
    Trade, UnixNanos,
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

/// Exchange symbols (`BTCUSDT`) to instruments: a linear scan for the handful a collector
/// usually has (faster than hashing a short string), a hash map beyond that.
#[derive(Clone, Debug, Default)]
pub struct SymbolMap {
    few: Vec<(String, InstrumentId)>,
    many: HashMap<String, InstrumentId>,
}

impl SymbolMap {
    /// Maps each instrument's concatenated symbol (`BTCUSDT`) to it.
    pub fn new(instruments: &[InstrumentId]) -> Self {
        let pairs: Vec<(String, InstrumentId)> = instruments
            .iter()
            .map(|i| (i.concat_symbol(), *i))
            .collect();
        if pairs.len() <= 16 {
            Self {
                few: pairs,
                many: HashMap::new(),
            }
        } else {
            Self {
                few: Vec::new(),
                many: pairs.into_iter().collect(),
            }
        }
    }

    /// The instrument of exchange symbol `s`.
    pub fn lookup(&self, s: &str) -> Option<InstrumentId> {
        self.get(s).ok()
    }

    fn get(&self, s: &str) -> Result<InstrumentId, FrameError> {
        let found = if self.many.is_empty() {
            self.few
                .iter()
                .find(|(k, _)| k.as_str() == s)
                .map(|(_, i)| *i)
        } else {
            self.many.get(s).copied()
        };
        found.ok_or_else(|| FrameError::UnknownSymbol(s.to_owned()))
    }
}

/// A value in a flat JSON object, as the fast path reads it.
#[derive(Clone, Copy)]
enum Val<'a> {
    /// A string without escapes.
    Str(&'a str),
    /// An integer (no fraction or exponent), as its text.
    Int(&'a str),
    /// Any other number (no field the fast path reads takes one).
    Num,
    Bool(bool),
}

/// JSON's whitespace (RFC 8259): space, tab, line feed, carriage return.
fn is_json_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim_json_ws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// The end of the JSON number starting at `i`
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`), and whether it is an integer (no
/// fraction, no exponent: what serde accepts for an integer field).
#[inline]
fn json_number_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let n = b.len();
    if i < n && b[i] == b'-' {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => {
            i += 1;
            while i < n && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        _ => return None,
    }
    let mut int = true;
    if i < n && b[i] == b'.' {
        int = false;
        i += 1;
        let s = i;
        while i < n && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return None;
        }
    }
    if i < n && (b[i] == b'e' || b[i] == b'E') {
        int = false;
        i += 1;
        if i < n && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < n && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return None;
        }
    }
    Some((i, int))
}

/// Reads a flat JSON object of short keys (`{"e":"trade","t":1,"m":true,…}`) at the start of
/// `s`, handing each member to `f`. Anything outside that shape (escapes, nesting, `null`,
/// whitespace inside strings is fine) answers `None`, and the caller takes the serde path,
/// which gives the precise error.
fn scan_flat<'a>(s: &'a str, mut f: impl FnMut(&'a str, Val<'a>)) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && is_json_ws(b[*i]) {
            *i += 1;
        }
    };
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    ws(&mut i);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        // A member must follow `{` or `,` (JSON has no trailing comma).
        ws(&mut i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let k0 = i + 1;
        let k1 = k0
            + b.get(k0..)?
                .iter()
                .position(|c| *c == b'"' || *c == b'\\' || *c < 0x20)?;
        if b[k1] != b'"' {
            return None;
        }
        let key = s.get(k0..k1)?;
        i = k1 + 1;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        ws(&mut i);
        let val = match *b.get(i)? {
            b'"' => {
                let v0 = i + 1;
                let v1 = v0
                    + b.get(v0..)?
                        .iter()
                        .position(|c| *c == b'"' || *c == b'\\' || *c < 0x20)?;
                if b[v1] != b'"' {
                    return None;
                }
                let v = s.get(v0..v1)?;
                i = v1 + 1;
                Val::Str(v)
            }
            b't' if b.get(i..i + 4) == Some(b"true") => {
                i += 4;
                Val::Bool(true)
            }
            b'f' if b.get(i..i + 5) == Some(b"false") => {
                i += 5;
                Val::Bool(false)
            }
            c if c == b'-' || c.is_ascii_digit() => {
                let v0 = i;
                let (end, int) = json_number_end(b, i)?;
                i = end;
                let text = s.get(v0..i)?;
                if int { Val::Int(text) } else { Val::Num }
            }
            _ => return None,
        };
        f(key, val);
        ws(&mut i);
        match b.get(i)? {
            b',' => i += 1,
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The `data` object of a combined-stream frame (`{"stream":"…","data":{…}}`, exactly that
/// shape), or the frame itself when it has no `data`.
fn data_object(frame: &str) -> Option<&str> {
    // The common case, as Binance writes it: `{"stream":"name","data":{…}}`.
    if let Some(rest) = frame.strip_prefix("{\"stream\":\"") {
        let b = rest.as_bytes();
        let close = b
            .iter()
            .position(|c| *c == b'"' || *c == b'\\' || *c < 0x20)?;
        if b[close] == b'"'
            && let Some(data) = rest[close + 1..].strip_prefix(",\"data\":")
        {
            return trim_json_ws(data).strip_suffix('}');
        }
    }
    let Some(at) = frame.find("\"data\":") else {
        return Some(frame);
    };
    // The prefix must be `{` or `{"stream":"name",` (whitespace allowed between tokens).
    let prefix = trim_json_ws(&frame[..at]);
    let inner = trim_json_ws(prefix.strip_prefix('{')?);
    if !inner.is_empty() {
        let rest = trim_json_ws(inner.strip_prefix("\"stream\"")?);
        let rest = trim_json_ws(rest.strip_prefix(':')?);
        let rest = rest.strip_prefix('"')?;
        let close = rest
            .bytes()
            .position(|c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest.as_bytes()[close] != b'"' || trim_json_ws(&rest[close + 1..]) != "," {
            return None;
        }
    }
    // The data object must be the last member: `…}}`.
    trim_json_ws(&frame[at + 7..]).strip_suffix('}')
}

/// The fast path for trades, aggregate trades and book tickers: `None` when the frame is not
/// in the plain documented shape (the serde path then decides).
fn fast(
    kind: Kind,
    frame: &str,
    symbols: &SymbolMap,
) -> Option<Result<(UnixNanos, Event), FrameError>> {
    let obj = data_object(frame)?;
    let (mut sym, mut id, mut p, mut q, mut t, mut m) = (None, None, None, None, None, None);
    let (mut bid, mut bq, mut ask, mut aq, mut e) = (None, None, None, None, None);
    let agg = kind == Kind::AggTrade;
    let book = kind == Kind::BookTicker;
    // serde refuses a repeated field and a field of the wrong type: so does this path (by
    // leaving the frame to serde).
    let mut seen = 0u32;
    let mut ok = true;
    let end = scan_flat(obj, |k, v| {
        let bit = match k {
            "s" => 1,
            "p" => 2,
            "q" => 4,
            "T" => 8,
            "E" => 16,
            "m" => 32,
            "b" => 64,
            "B" => 128,
            "A" => 256,
            "a" => 512,
            "t" => 1024,
            _ => return,
        };
        if seen & bit != 0 {
            ok = false;
        }
        seen |= bit;
        match (k, v) {
            ("s", Val::Str(x)) => sym = Some(x),
            ("p", Val::Str(x)) if !book => p = Some(x),
            ("q", Val::Str(x)) if !book => q = Some(x),
            ("T", Val::Int(x)) => t = Some(x),
            ("E", Val::Int(x)) => e = Some(x),
            ("m", Val::Bool(x)) if !book => m = Some(x),
            ("b", Val::Str(x)) if book => bid = Some(x),
            ("B", Val::Str(x)) if book => bq = Some(x),
            ("A", Val::Str(x)) if book => aq = Some(x),
            ("a", Val::Str(x)) if book => ask = Some(x),
            ("a", Val::Int(x)) if agg => id = Some(x),
            ("t", Val::Int(x)) if kind == Kind::Trade => id = Some(x),
            // Fields the kind does not read are ignored by serde too.
            ("p" | "q" | "m", _) if book => {}
            ("b" | "B" | "A", _) if !book => {}
            ("a", _) if kind == Kind::Trade => {}
            ("t", _) if kind != Kind::Trade => {}
            ("E", _) if !book => {}
            _ => ok = false,
        }
    })?;
    if !ok || !trim_json_ws(&obj[end..]).is_empty() {
        return None;
    }
    let int = |x: Option<&str>| x.and_then(|x| x.parse::<i64>().ok());
    match kind {
        Kind::Trade | Kind::AggTrade => {
            let (Some(sym), Some(id), Some(p), Some(q), Some(t), Some(m)) =
                (sym, id.and_then(|x| x.parse::<u64>().ok()), p, q, int(t), m)
            else {
                return None;
            };
            let side = if m { Side::Sell } else { Side::Buy };
            Some((|| {
                let tr = Trade::new(symbols.get(sym)?, id, num("p", p)?, num("q", q)?, side)?;
                Ok((ms("T", t)?, Event::Trade(tr)))
            })())
        }
        Kind::BookTicker => {
            let (Some(sym), Some(b), Some(bq), Some(a), Some(aq)) = (sym, bid, bq, ask, aq) else {
                return None;
            };
            // serde refuses a time out of i64's range even where it is optional.
            if (t.is_some() && int(t).is_none()) || (e.is_some() && int(e).is_none()) {
                return None;
            }
            let ts = int(t).or(int(e)).unwrap_or(0);
            Some((|| {
                let ts = ms("T", ts)?;
                let tk = Ticker::new(
                    symbols.get(sym)?,
                    (num("b", b)?, num("B", bq)?),
                    (num("a", a)?, num("A", aq)?),
                    None,
                )?;
                Ok((ts, Event::Ticker(tk)))
            })())
        }
        _ => None,
    }
}

/// Milliseconds to nanoseconds; a time too far out to represent is an error, not an overflow.
fn ms(field: &'static str, t: i64) -> Result<UnixNanos, FrameError> {
    t.checked_mul(NANOS_PER_MILLI)
        .ok_or_else(|| FrameError::Number {
            field,
            value: t.to_string(),
        })
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
struct MiniTickerMsg<'a> {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "s")]
    symbol: &'a str,
    c: &'a str,
    o: &'a str,
    h: &'a str,
    l: &'a str,
    v: &'a str,
    q: &'a str,
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
    MiniTicker,
    Other,
}

/// The kind named by a stream name after its `@` (`trade"`, `kline_1m"`, …).
fn stream_kind(name: &[u8]) -> Kind {
    if name.starts_with(b"trade\"") {
        Kind::Trade
    } else if name.starts_with(b"aggTrade\"") {
        Kind::AggTrade
    } else if name.starts_with(b"bookTicker\"") {
        Kind::BookTicker
    } else if name.starts_with(b"kline_") {
        Kind::Kline
    } else if name.starts_with(b"miniTicker\"") {
        Kind::MiniTicker
    } else {
        Kind::Other
    }
}

/// Reads the kind from the stream name or the `"e"` field without parsing the frame.
fn kind(frame: &str) -> Kind {
    if let Some(rest) = frame.strip_prefix("{\"stream\":\"") {
        let b = rest.as_bytes();
        if let Some(at) = b.iter().take(64).position(|c| *c == b'@' || *c == b'"') {
            let name = &b[at..];
            if name.first() == Some(&b'@') {
                return stream_kind(&name[1..]);
            }
        }
    }
    // The first 96 bytes, cut at a character boundary (a frame may hold any UTF-8).
    let mut end = frame.len().min(96);
    while !frame.is_char_boundary(end) {
        end -= 1;
    }
    let head = &frame[..end];
    if let Some(i) = head.find("\"stream\"") {
        let rest = &head[i..];
        if let Some(at) = rest.find('@') {
            return stream_kind(&rest.as_bytes()[at + 1..]);
        }
    }
    let compact: String = head.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("\"e\":\"trade\"") {
        Kind::Trade
    } else if compact.contains("\"e\":\"aggTrade\"") {
        Kind::AggTrade
    } else if compact.contains("\"e\":\"kline\"") {
        Kind::Kline
    } else if compact.contains("\"e\":\"24hrMiniTicker\"") {
        Kind::MiniTicker
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
    let k = kind(frame);
    if let Some(r) = fast(k, frame, symbols) {
        return r.map(Some);
    }
    normalise_with_serde(k, frame, symbols)
}

/// The same as [`normalise`] without the fast path (for differential tests and fuzzing: the
/// two must agree wherever the fast path answers).
pub fn normalise_slow(
    frame: &str,
    symbols: &SymbolMap,
) -> Result<Option<(UnixNanos, Event)>, FrameError> {
    normalise_with_serde(kind(frame), frame, symbols)
}

fn normalise_with_serde(
    kind: Kind,
    frame: &str,
    symbols: &SymbolMap,
) -> Result<Option<(UnixNanos, Event)>, FrameError> {
    let side = |buyer_maker: bool| if buyer_maker { Side::Sell } else { Side::Buy };
    match kind {
        Kind::Trade => {
            let m: TradeMsg = parse(frame, "trade")?;
            let t = Trade::new(
                symbols.get(m.symbol)?,
                m.id,
                num("p", m.price)?,
                num("q", m.qty)?,
                side(m.buyer_maker),
            )?;
            Ok(Some((ms("T", m.time)?, Event::Trade(t))))
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
            Ok(Some((ms("T", m.time)?, Event::Trade(t))))
        }
        Kind::BookTicker => {
            let m: BookTickerMsg = parse(frame, "bookTicker")?;
            let t = Ticker::new(
                symbols.get(m.symbol)?,
                (num("b", m.bid)?, num("B", m.bid_qty)?),
                (num("a", m.ask)?, num("A", m.ask_qty)?),
                None,
            )?;
            let ts = ms("T", m.time.or(m.event_time).unwrap_or(0))?;
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
                ms("t", k.t)?,
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
                ms("T", k.close_time.saturating_add(1))?,
                Event::Candle(c),
            )))
        }
        Kind::MiniTicker => {
            let m: MiniTickerMsg = parse(frame, "24hrMiniTicker")?;
            let d = DayStats::new(
                symbols.get(m.symbol)?,
                [
                    num("o", m.o)?,
                    num("h", m.h)?,
                    num("l", m.l)?,
                    num("c", m.c)?,
                ],
                num("v", m.v)?,
                num("q", m.q)?,
            )?;
            Ok(Some((ms("E", m.event_time)?, Event::DayStats(d))))
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

    proptest::proptest! {
        /// Wherever the fast path answers, it answers exactly what serde does.
        #[test]
        fn the_fast_path_agrees_with_serde(
            id in 0u64..u64::MAX / 2,
            t in 0i64..4_000_000_000_000,
            p in 0.0001f64..1e7,
            q in 0.0f64..1e5,
            m in proptest::bool::ANY,
            combined in proptest::bool::ANY,
            agg in proptest::bool::ANY,
            spaces in proptest::bool::ANY,
            sym in proptest::sample::select(vec!["ETHUSDT", "BTCUSDT", "XRPUSDT"]),
        ) {
            let sp = if spaces { " " } else { "" };
            let (e, idk, stream) = if agg { ("aggTrade", "a", "aggTrade") } else { ("trade", "t", "trade") };
            let data = format!(r#"{{"e":{sp}"{e}","E":1,"s":"{sym}","{idk}":{id},"p":"{p:.8}",{sp}"q":"{q:.8}","T":{t},"m":{m},"M":true}}"#);
            let frame = if combined {
                format!(r#"{{"stream":"{}@{stream}","data":{data}}}"#, sym.to_lowercase())
            } else {
                data
            };
            let a = format!("{:?}", normalise(&frame, &symbols()));
            let b = format!("{:?}", normalise_slow(&frame, &symbols()));
            proptest::prop_assert_eq!(a, b);
            let book = format!(r#"{{"stream":"{}@bookTicker","data":{{"u":{id},"s":"{sym}","b":"{p:.8}","B":"{q:.8}","a":"{:.8}","A":"1.5","T":{t},"E":{t}}}}}"#, sym.to_lowercase(), p * 1.001);
            let a = format!("{:?}", normalise(&book, &symbols()));
            let b = format!("{:?}", normalise_slow(&book, &symbols()));
            proptest::prop_assert_eq!(a, b);
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
    fn documented_mini_ticker() {
        let f = r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1672515782136,"s":"BTCUSDT","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}}"#;
        let (ts, ev) = normalise(f, &symbols()).unwrap().unwrap();
        assert_eq!(ts, 1_672_515_782_136 * NANOS_PER_MILLI);
        let Event::DayStats(d) = ev else { panic!() };
        assert_eq!((d.last(), d.quote_volume()), (0.0025, 18.0));
        assert!((d.change_pct() - 150.0).abs() < 1e-9);
        let raw = r#"{"e":"24hrMiniTicker","E":1,"s":"ETHUSDT","c":"2","o":"1","h":"3","l":"0.5","v":"1","q":"2"}"#;
        assert!(matches!(
            normalise(raw, &symbols()),
            Ok(Some((_, Event::DayStats(_))))
        ));
        let crossed = raw.replace(r#""h":"3""#, r#""h":"1.5""#);
        assert!(normalise(&crossed, &symbols()).is_err());
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
