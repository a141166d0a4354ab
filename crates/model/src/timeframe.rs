use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ModelError, NANOS_PER_SECOND, UnixNanos};

const MINUTE: i64 = 60 * NANOS_PER_SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 1970-01-01 was a Thursday; Binance's weekly bars open on Monday 00:00 UTC, four days later.
const WEEK_OFFSET: i64 = 4 * DAY;

/// A bar interval, named as Binance names its kline intervals (minus the calendar month).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timeframe {
    /// One minute.
    M1,
    /// Three minutes.
    M3,
    /// Five minutes.
    M5,
    /// Fifteen minutes.
    M15,
    /// Thirty minutes.
    M30,
    /// One hour.
    H1,
    /// Two hours.
    H2,
    /// Four hours.
    H4,
    /// Six hours.
    H6,
    /// Eight hours.
    H8,
    /// Twelve hours.
    H12,
    /// One day (00:00 UTC to 00:00 UTC).
    D1,
    /// One week, Monday 00:00 UTC to Monday 00:00 UTC.
    W1,
}

/// For each timeframe (by its position in [`Timeframe::ALL`]), a bit per timeframe whose bars
/// build it whole.
const MADE_OF: [u16; Timeframe::ALL.len()] = {
    let mut table = [0u16; Timeframe::ALL.len()];
    let mut i = 0;
    while i < Timeframe::ALL.len() {
        let mut j = 0;
        while j < Timeframe::ALL.len() {
            if Timeframe::ALL[i].divides(Timeframe::ALL[j]) {
                table[i] |= 1 << j;
            }
            j += 1;
        }
        i += 1;
    }
    table
};

const EXPECTED: &str = "1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 1w";

impl Timeframe {
    /// Every supported timeframe, shortest first.
    pub const ALL: [Timeframe; 13] = [
        Self::M1,
        Self::M3,
        Self::M5,
        Self::M15,
        Self::M30,
        Self::H1,
        Self::H2,
        Self::H4,
        Self::H6,
        Self::H8,
        Self::H12,
        Self::D1,
        Self::W1,
    ];

    /// The interval's name (`1m`, `4h`, `1w`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::M1 => "1m",
            Self::M3 => "3m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::M30 => "30m",
            Self::H1 => "1h",
            Self::H2 => "2h",
            Self::H4 => "4h",
            Self::H6 => "6h",
            Self::H8 => "8h",
            Self::H12 => "12h",
            Self::D1 => "1d",
            Self::W1 => "1w",
        }
    }

    /// The interval's length in nanoseconds.
    pub const fn nanos(self) -> i64 {
        match self {
            Self::M1 => MINUTE,
            Self::M3 => 3 * MINUTE,
            Self::M5 => 5 * MINUTE,
            Self::M15 => 15 * MINUTE,
            Self::M30 => 30 * MINUTE,
            Self::H1 => HOUR,
            Self::H2 => 2 * HOUR,
            Self::H4 => 4 * HOUR,
            Self::H6 => 6 * HOUR,
            Self::H8 => 8 * HOUR,
            Self::H12 => 12 * HOUR,
            Self::D1 => DAY,
            Self::W1 => 7 * DAY,
        }
    }

    const fn offset(self) -> i64 {
        match self {
            Self::W1 => WEEK_OFFSET,
            _ => 0,
        }
    }

    /// The open time of the bar that contains `ts`.
    pub const fn open_time(self, ts: UnixNanos) -> UnixNanos {
        let n = self.nanos();
        let off = self.offset();
        (ts - off).div_euclid(n) * n + off
    }

    /// Whether `ts` is exactly on this timeframe's bar grid.
    pub const fn is_aligned(self, ts: UnixNanos) -> bool {
        self.open_time(ts) == ts
    }

    /// Whether every bar of `self` is made of whole bars of `finer`: a lookup in a table worked
    /// out at compile time (the pipeline asks for every candle and timeframe, and the
    /// arithmetic takes two integer divisions).
    pub const fn is_multiple_of(self, finer: Timeframe) -> bool {
        MADE_OF[self as usize] & (1 << finer as usize) != 0
    }

    const fn divides(self, finer: Timeframe) -> bool {
        let (a, b) = (self.nanos(), finer.nanos());
        a >= b && a % b == 0 && (self.offset() - finer.offset()) % b == 0
    }

    /// The timeframe whose length is exactly `nanos`, if any.
    pub fn from_nanos(nanos: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|tf| tf.nanos() == nanos)
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Timeframe {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Self::ALL
            .into_iter()
            .find(|tf| tf.as_str() == t)
            .ok_or_else(|| ModelError::InvalidTimeframe {
                input: s.to_owned(),
                expected: EXPECTED,
            })
    }
}

impl Serialize for Timeframe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Timeframe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_name() {
        for tf in Timeframe::ALL {
            assert_eq!(tf.as_str().parse::<Timeframe>().unwrap(), tf);
        }
        let err = "7m".parse::<Timeframe>().unwrap_err().to_string();
        assert!(err.contains("1m, 3m"), "{err}");
    }

    #[test]
    fn aligns_weeks_to_monday() {
        // 2024-01-03 (Wednesday) 12:00 UTC -> Monday 2024-01-01 00:00 UTC.
        let wed = 1_704_283_200 * NANOS_PER_SECOND;
        assert_eq!(
            Timeframe::W1.open_time(wed),
            1_704_067_200 * NANOS_PER_SECOND
        );
        assert_eq!(Timeframe::H1.open_time(-1), -HOUR);
    }

    #[test]
    fn multiples() {
        assert!(Timeframe::H1.is_multiple_of(Timeframe::M1));
        assert!(Timeframe::W1.is_multiple_of(Timeframe::D1));
        assert!(!Timeframe::M5.is_multiple_of(Timeframe::M3));
        assert!(!Timeframe::M1.is_multiple_of(Timeframe::H1));
        assert!(
            !Timeframe::W1.is_multiple_of(Timeframe::H8)
                || WEEK_OFFSET % Timeframe::H8.nanos() == 0
        );
        // The table answers as the arithmetic does, for every pair (and `ALL` is in
        // declaration order, which the table's indices rely on).
        for (i, a) in Timeframe::ALL.into_iter().enumerate() {
            assert_eq!(a as usize, i);
            for b in Timeframe::ALL {
                assert_eq!(a.is_multiple_of(b), a.divides(b), "{a} {b}");
            }
        }
    }
}
