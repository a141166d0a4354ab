use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

const SYMBOL_CAP: usize = 15;

/// A short ASCII name — a venue (`binance`), an asset (`BTC`) or a source (`sim`) — stored
/// inline so that it is `Copy` and costs no allocation on the hot path.
///
/// At most 15 characters from `[A-Za-z0-9_.-]`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    bytes: [u8; SYMBOL_CAP],
}

impl Symbol {
    /// Builds a symbol, rejecting empty, over-long or non-ASCII-identifier input.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        let bad = |reason| ModelError::InvalidSymbol {
            input: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > SYMBOL_CAP {
            return Err(bad("longer than 15 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(bad(
                "only ASCII letters, digits, '_', '-' and '.' are allowed",
            ));
        }
        let mut bytes = [0u8; SYMBOL_CAP];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        // Length is at most 15, checked above.
        Ok(Self {
            len: s.len() as u8,
            bytes,
        })
    }

    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored, so this cannot fail; fall back to "" defensively.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// The same symbol in upper case.
    pub fn to_upper(self) -> Self {
        self.to_ascii_case(true)
    }

    fn to_ascii_case(self, upper: bool) -> Self {
        let mut out = self;
        for b in &mut out.bytes[..usize::from(self.len)] {
            *b = if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            };
        }
        out
    }
}

impl std::hash::Hash for Symbol {
    /// Two machine words instead of sixteen bytes: interning instruments is on the hot path.
    /// Consistent with `Eq`, since the bytes past `len` are always zero.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut w = [0u8; 16];
        w[0] = self.len;
        w[1..].copy_from_slice(&self.bytes);
        let v = u128::from_le_bytes(w);
        state.write_u64(v as u64);
        state.write_u64((v >> 64) as u64);
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl FromStr for Symbol {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Symbol::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The parts of an instrument id, stored once per distinct id (see [`InstrumentId`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Parts {
    venue: Symbol,
    base: Symbol,
    quote: Symbol,
}

/// How many distinct instruments one process may name. Real venues list a few thousand pairs;
/// the cap keeps a stream of made-up ids (a hostile API client, a fuzzer) from growing the
/// interner without bound: past it, new ids are refused with an error saying why.
pub const MAX_INSTRUMENTS: usize = 100_000;

/// Of [`MAX_INSTRUMENTS`], how many places ids named by outside clients (API queries, parsed
/// with [`InstrumentId::from_client`]) leave to the collectors and the configuration: a client
/// naming made-up instruments fills the interner only up to the rest, and a pair a venue lists
/// later can still be interned and collected.
pub const RESERVED_INSTRUMENTS: usize = 10_000;

/// Every distinct id seen by the process, each stored once for the process's life.
static INTERNED: Mutex<BTreeMap<Parts, &'static Parts>> = Mutex::new(BTreeMap::new());

/// A tradable pair on one venue: `venue:BASE/QUOTE`, for example `binance:BTC/USDT`.
///
/// Parsing is forgiving about case (venues are stored lower-case, assets upper-case) and
/// strict about shape. The id is interned: its parts are stored once per process and the id
/// is a reference to them, 8 bytes and `Copy`, compared by address. Every event carries an
/// instrument, so this keeps a candle at 64 bytes instead of 104 and an event copy on the hot
/// path at two cache lines instead of three (`docs/ARCHITECTURE.md`). Order and hash
/// follow the parts (venue, base, quote), so maps and sorted lists come out the same in
/// every run whatever the addresses.
#[derive(Clone, Copy)]
pub struct InstrumentId(&'static Parts);

impl PartialEq for InstrumentId {
    fn eq(&self, other: &Self) -> bool {
        // Interned: equal parts are the same allocation.
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for InstrumentId {}

impl std::hash::Hash for InstrumentId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for InstrumentId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InstrumentId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self == other {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(other.0)
    }
}

impl InstrumentId {
    /// Builds an id from its parts, normalising case.
    pub fn new(venue: &str, base: &str, quote: &str) -> Result<Self, ModelError> {
        Self::new_within(venue, base, quote, MAX_INSTRUMENTS)
    }

    /// [`FromStr`] for an id an outside client named (an API query): the same parsing and
    /// errors, but a new id is interned only while more than [`RESERVED_INSTRUMENTS`] places
    /// are left.
    pub fn from_client(s: &str) -> Result<Self, ModelError> {
        Self::parse_within(s, MAX_INSTRUMENTS - RESERVED_INSTRUMENTS)
    }

    /// [`new`](Self::new), interning a new id only while fewer than `cap` are interned.
    fn new_within(venue: &str, base: &str, quote: &str, cap: usize) -> Result<Self, ModelError> {
        let input = format!("{venue}:{base}/{quote}");
        let wrap = |e: ModelError| ModelError::InvalidInstrument {
            input: input.clone(),
            reason: e.to_string(),
        };
        let venue = Symbol::new(venue).map_err(wrap)?.to_ascii_case(false);
        let base = Symbol::new(base).map_err(wrap)?.to_ascii_case(true);
        let quote = Symbol::new(quote).map_err(wrap)?.to_ascii_case(true);
        if base == quote {
            return Err(ModelError::InvalidInstrument {
                input,
                reason: "base and quote are the same asset".into(),
            });
        }
        Self::intern(Parts { venue, base, quote }, cap).ok_or_else(|| {
            ModelError::InvalidInstrument {
                input,
                reason: format!(
                    "this process has already seen {cap} distinct instruments, the most it keeps{}",
                    if cap < MAX_INSTRUMENTS {
                        " for ids named by clients"
                    } else {
                        ""
                    }
                ),
            }
        })
    }

    /// The interned id of `parts`; `None` when they are new and `cap` ids are interned.
    fn intern(parts: Parts, cap: usize) -> Option<Self> {
        // A panic elsewhere while the lock was held cannot leave the map half-written
        // (insertion is the only mutation), so a poisoned lock is still sound to use.
        let mut map = INTERNED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = map.get(&parts) {
            return Some(Self(p));
        }
        if map.len() >= cap {
            return None;
        }
        let p: &'static Parts = Box::leak(Box::new(parts));
        map.insert(parts, p);
        Some(Self(p))
    }

    /// The venue, lower-case (`binance`).
    pub fn venue(&self) -> Symbol {
        self.0.venue
    }

    /// The base asset, upper-case (`BTC`).
    pub fn base(&self) -> Symbol {
        self.0.base
    }

    /// The quote asset, upper-case (`USDT`).
    pub fn quote(&self) -> Symbol {
        self.0.quote
    }

    /// The venue's concatenated symbol, as Binance writes it (`BTCUSDT`).
    pub fn concat_symbol(&self) -> String {
        format!("{}{}", self.0.base, self.0.quote)
    }
}

impl FromStr for InstrumentId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_within(s, MAX_INSTRUMENTS)
    }
}

impl InstrumentId {
    /// [`FromStr`], interning a new id only while fewer than `cap` are interned.
    fn parse_within(s: &str, cap: usize) -> Result<Self, ModelError> {
        let bad = |reason: &str| ModelError::InvalidInstrument {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let s_trim = s.trim();
        let (venue, pair) = s_trim
            .split_once(':')
            .ok_or_else(|| bad("missing ':' after the venue"))?;
        let (base, quote) = pair
            .split_once('/')
            .ok_or_else(|| bad("missing '/' between base and quote"))?;
        if venue.is_empty() {
            return Err(bad("empty venue"));
        }
        if base.is_empty() || quote.is_empty() {
            return Err(bad("empty base or quote asset"));
        }
        if quote.contains('/') || quote.contains(':') {
            return Err(bad("more than one '/' or ':'"));
        }
        Self::new_within(venue, base, quote, cap).map_err(|e| match e {
            ModelError::InvalidInstrument { reason, .. } => bad(&reason),
            other => other,
        })
    }
}

impl fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.0.venue, self.0.base, self.0.quote)
    }
}

impl fmt::Debug for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstrumentId({self})")
    }
}

impl Serialize for InstrumentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InstrumentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_case() {
        let id: InstrumentId = "Binance:btc/usdt".parse().unwrap();
        assert_eq!(id.to_string(), "binance:BTC/USDT");
        assert_eq!(id.concat_symbol(), "BTCUSDT");
    }

    #[test]
    fn rejects_bad_shapes_with_clear_errors() {
        for (input, needle) in [
            ("BTC/USDT", "missing ':'"),
            ("binance:BTCUSDT", "missing '/'"),
            (":BTC/USDT", "empty venue"),
            ("binance:/USDT", "empty base"),
            ("binance:BTC/USDT/X", "more than one"),
            ("binance:BTC/BTC", "same asset"),
            ("binance:B TC/USDT", "only ASCII"),
            ("binance:AVERYVERYLONGASSETNAME/USDT", "longer than 15"),
        ] {
            let err = input.parse::<InstrumentId>().unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains("venue:BASE/QUOTE"), "{err}");
        }
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: InstrumentId = "sim:ETH/USDT".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"sim:ETH/USDT\"");
        assert_eq!(serde_json::from_str::<InstrumentId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<InstrumentId>("\"nonsense\"").is_err());
    }

    #[test]
    fn ids_are_interned_compared_by_parts_and_capped() {
        let a: InstrumentId = "binance:BTC/USDT".parse().unwrap();
        let b = InstrumentId::new("BINANCE", "btc", "usdt").unwrap();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.0, b.0));
        // Order follows venue, then base, then quote, whatever order they were interned in.
        let mut ids: Vec<InstrumentId> = ["sim:ZZZ/USDT", "sim:ETH/USDT", "sim:BTC/USDT"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        ids.sort();
        let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["sim:BTC/USDT", "sim:ETH/USDT", "sim:ZZZ/USDT"]);
        // A full interner still finds the ids it holds and refuses new ones.
        assert_eq!(InstrumentId::intern(*a.0, 0), Some(a));
        let new = Parts {
            venue: Symbol::new("capped").unwrap(),
            base: Symbol::new("NEVER").unwrap(),
            quote: Symbol::new("SEEN").unwrap(),
        };
        assert_eq!(InstrumentId::intern(new, 0), None);
        // Past a client's share, clients still name the ids that exist and are refused new
        // ones, saying why; the collectors' share is still open.
        assert_eq!(InstrumentId::parse_within("binance:btc/usdt", 1), Ok(a));
        let refused = InstrumentId::parse_within("capped:NEVER/SEEN", 1).unwrap_err();
        assert!(
            refused.to_string().contains("capped:NEVER/SEEN")
                && refused
                    .to_string()
                    .contains("the most it keeps for ids named by clients"),
            "{refused}"
        );
        let collected = InstrumentId::parse_within("capped:NEVER/SEEN", MAX_INSTRUMENTS).unwrap();
        assert_eq!(
            InstrumentId::parse_within("capped:never/seen", 1),
            Ok(collected)
        );
        assert_eq!(
            InstrumentId::from_client(" sim:eth/usdt "),
            "sim:ETH/USDT".parse()
        );
        assert!(InstrumentId::from_client("nonsense").is_err());
    }

    #[test]
    fn symbol_is_small_and_copy() {
        assert_eq!(std::mem::size_of::<InstrumentId>(), 8);
        let s = Symbol::new("sim").unwrap();
        let t = s;
        assert_eq!(s, t);
    }
}
