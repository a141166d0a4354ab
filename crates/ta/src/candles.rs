//! Candlestick patterns with TA-Lib's CDL semantics: +100 bullish, −100 bearish, ±80 for the
//! weaker engulfing and harami, 0 otherwise; warm-up bars give `None` (TA-Lib writes 0).
//!
//! Sizes are judged against TA-Lib's default candle settings: each setting averages a range
//! (real body, high−low, or both shadows) over the candles *before* the one judged, kept as a
//! running total per (setting, candle offset) that is seeded on the first evaluated bar and
//! then updated by `total += range(newest) − range(trailing)`, exactly as TA-Lib does, so
//! comparisons that sit on a threshold go the same way. No pattern looks at the trend.

use crate::{Bar, Indicator};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeType {
    RealBody,
    HighLow,
    Shadows,
}

/// TA-Lib's candle settings (`TA_SetCandleSettings` defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setting {
    BodyLong,
    BodyShort,
    BodyDoji,
    ShadowLong,
    ShadowVeryShort,
    Near,
    Far,
}

impl Setting {
    /// (range type, averaging period, factor).
    const fn params(self) -> (RangeType, usize, f64) {
        match self {
            Setting::BodyLong => (RangeType::RealBody, 10, 1.0),
            Setting::BodyShort => (RangeType::RealBody, 10, 1.0),
            Setting::BodyDoji => (RangeType::HighLow, 10, 0.1),
            Setting::ShadowLong => (RangeType::RealBody, 0, 1.0),
            Setting::ShadowVeryShort => (RangeType::HighLow, 10, 0.1),
            Setting::Near => (RangeType::HighLow, 5, 0.2),
            Setting::Far => (RangeType::HighLow, 5, 0.6),
        }
    }
}

#[inline]
fn body(b: &Bar) -> f64 {
    (b.close - b.open).abs()
}
#[inline]
fn top(b: &Bar) -> f64 {
    b.open.max(b.close)
}
#[inline]
fn bottom(b: &Bar) -> f64 {
    b.open.min(b.close)
}
#[inline]
fn upper(b: &Bar) -> f64 {
    b.high - top(b)
}
#[inline]
fn lower(b: &Bar) -> f64 {
    bottom(b) - b.low
}
#[inline]
fn white(b: &Bar) -> bool {
    b.close >= b.open
}
#[inline]
fn color(b: &Bar) -> i32 {
    if white(b) { 1 } else { -1 }
}

#[inline]
fn range(rt: RangeType, b: &Bar) -> f64 {
    match rt {
        RangeType::RealBody => body(b),
        RangeType::HighLow => b.high - b.low,
        RangeType::Shadows => upper(b) + lower(b),
    }
}

/// The supported patterns, named after TA-Lib's functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// CDLDOJI
    Doji,
    /// CDLDRAGONFLYDOJI
    DragonflyDoji,
    /// CDLGRAVESTONEDOJI
    GravestoneDoji,
    /// CDLHAMMER
    Hammer,
    /// CDLHANGINGMAN
    HangingMan,
    /// CDLINVERTEDHAMMER
    InvertedHammer,
    /// CDLSHOOTINGSTAR
    ShootingStar,
    /// CDLENGULFING
    Engulfing,
    /// CDLHARAMI
    Harami,
    /// CDLPIERCING
    Piercing,
    /// CDLDARKCLOUDCOVER (penetration 0.5)
    DarkCloudCover,
    /// CDLMORNINGSTAR (penetration 0.3)
    MorningStar,
    /// CDLEVENINGSTAR (penetration 0.3)
    EveningStar,
    /// CDL3WHITESOLDIERS
    ThreeWhiteSoldiers,
    /// CDL3BLACKCROWS
    ThreeBlackCrows,
    /// CDLMARUBOZU
    Marubozu,
    /// CDLSPINNINGTOP
    SpinningTop,
    /// CDLKICKING
    Kicking,
    /// CDLABANDONEDBABY (penetration 0.3)
    AbandonedBaby,
    /// CDL3INSIDE
    ThreeInside,
    /// CDL3OUTSIDE
    ThreeOutside,
}

use Setting::*;

impl Pattern {
    /// Every pattern.
    pub const ALL: [Pattern; 21] = [
        Pattern::Doji,
        Pattern::DragonflyDoji,
        Pattern::GravestoneDoji,
        Pattern::Hammer,
        Pattern::HangingMan,
        Pattern::InvertedHammer,
        Pattern::ShootingStar,
        Pattern::Engulfing,
        Pattern::Harami,
        Pattern::Piercing,
        Pattern::DarkCloudCover,
        Pattern::MorningStar,
        Pattern::EveningStar,
        Pattern::ThreeWhiteSoldiers,
        Pattern::ThreeBlackCrows,
        Pattern::Marubozu,
        Pattern::SpinningTop,
        Pattern::Kicking,
        Pattern::AbandonedBaby,
        Pattern::ThreeInside,
        Pattern::ThreeOutside,
    ];

    /// TA-Lib's function name (`CDLHAMMER`).
    pub const fn talib_name(self) -> &'static str {
        match self {
            Pattern::Doji => "CDLDOJI",
            Pattern::DragonflyDoji => "CDLDRAGONFLYDOJI",
            Pattern::GravestoneDoji => "CDLGRAVESTONEDOJI",
            Pattern::Hammer => "CDLHAMMER",
            Pattern::HangingMan => "CDLHANGINGMAN",
            Pattern::InvertedHammer => "CDLINVERTEDHAMMER",
            Pattern::ShootingStar => "CDLSHOOTINGSTAR",
            Pattern::Engulfing => "CDLENGULFING",
            Pattern::Harami => "CDLHARAMI",
            Pattern::Piercing => "CDLPIERCING",
            Pattern::DarkCloudCover => "CDLDARKCLOUDCOVER",
            Pattern::MorningStar => "CDLMORNINGSTAR",
            Pattern::EveningStar => "CDLEVENINGSTAR",
            Pattern::ThreeWhiteSoldiers => "CDL3WHITESOLDIERS",
            Pattern::ThreeBlackCrows => "CDL3BLACKCROWS",
            Pattern::Marubozu => "CDLMARUBOZU",
            Pattern::SpinningTop => "CDLSPINNINGTOP",
            Pattern::Kicking => "CDLKICKING",
            Pattern::AbandonedBaby => "CDLABANDONEDBABY",
            Pattern::ThreeInside => "CDL3INSIDE",
            Pattern::ThreeOutside => "CDL3OUTSIDE",
        }
    }

    /// Index of the first evaluated bar (TA-Lib's lookback with the default settings).
    pub const fn lookback(self) -> usize {
        match self {
            Pattern::Doji
            | Pattern::DragonflyDoji
            | Pattern::GravestoneDoji
            | Pattern::Marubozu
            | Pattern::SpinningTop => 10,
            Pattern::Hammer
            | Pattern::HangingMan
            | Pattern::InvertedHammer
            | Pattern::ShootingStar
            | Pattern::Harami
            | Pattern::Piercing
            | Pattern::DarkCloudCover
            | Pattern::Kicking => 11,
            Pattern::MorningStar
            | Pattern::EveningStar
            | Pattern::ThreeWhiteSoldiers
            | Pattern::AbandonedBaby
            | Pattern::ThreeInside => 12,
            Pattern::ThreeBlackCrows => 13,
            Pattern::Engulfing => 2,
            Pattern::ThreeOutside => 3,
        }
    }

    /// The (setting, candle offset) averages the pattern reads.
    fn averages(self) -> &'static [(Setting, usize)] {
        match self {
            Pattern::Doji => &[(BodyDoji, 0)],
            Pattern::DragonflyDoji | Pattern::GravestoneDoji => {
                &[(BodyDoji, 0), (ShadowVeryShort, 0)]
            }
            Pattern::Hammer | Pattern::HangingMan => &[
                (BodyShort, 0),
                (ShadowLong, 0),
                (ShadowVeryShort, 0),
                (Near, 1),
            ],
            Pattern::InvertedHammer | Pattern::ShootingStar => {
                &[(BodyShort, 0), (ShadowLong, 0), (ShadowVeryShort, 0)]
            }
            Pattern::Engulfing | Pattern::ThreeOutside => &[],
            Pattern::Harami => &[(BodyLong, 1), (BodyShort, 0)],
            Pattern::Piercing => &[(BodyLong, 1), (BodyLong, 0)],
            Pattern::DarkCloudCover => &[(BodyLong, 1)],
            Pattern::MorningStar | Pattern::EveningStar => {
                &[(BodyLong, 2), (BodyShort, 1), (BodyShort, 0)]
            }
            Pattern::ThreeWhiteSoldiers => &[
                (ShadowVeryShort, 2),
                (ShadowVeryShort, 1),
                (ShadowVeryShort, 0),
                (Near, 2),
                (Near, 1),
                (Far, 2),
                (Far, 1),
                (BodyShort, 0),
            ],
            Pattern::ThreeBlackCrows => &[
                (ShadowVeryShort, 2),
                (ShadowVeryShort, 1),
                (ShadowVeryShort, 0),
            ],
            Pattern::Marubozu => &[(BodyLong, 0), (ShadowVeryShort, 0)],
            Pattern::SpinningTop => &[(BodyShort, 0)],
            Pattern::Kicking => &[
                (BodyLong, 1),
                (BodyLong, 0),
                (ShadowVeryShort, 1),
                (ShadowVeryShort, 0),
            ],
            Pattern::AbandonedBaby => &[(BodyLong, 2), (BodyDoji, 1), (BodyShort, 0)],
            Pattern::ThreeInside => &[(BodyLong, 2), (BodyShort, 1)],
        }
    }
}

const HISTORY: usize = 16;

/// A running average of one setting at one candle offset.
#[derive(Clone, Copy, Debug)]
struct Avg {
    setting: Setting,
    offset: usize,
    total: f64,
}

/// A streaming detector of one [`Pattern`].
#[derive(Clone, Debug)]
pub struct CandlePattern {
    pattern: Pattern,
    avgs: Vec<Avg>,
    bars: [Bar; HISTORY],
    seen: usize,
}

impl CandlePattern {
    /// A detector for `pattern`.
    pub fn new(pattern: Pattern) -> Self {
        let avgs = pattern
            .averages()
            .iter()
            .map(|&(setting, offset)| Avg {
                setting,
                offset,
                total: 0.0,
            })
            .collect();
        Self {
            pattern,
            avgs,
            bars: [Bar::default(); HISTORY],
            seen: 0,
        }
    }

    /// The pattern detected.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// Bar `back` bars before the newest, by absolute index `i`.
    #[inline]
    fn at(&self, index: usize) -> &Bar {
        &self.bars[index % HISTORY]
    }

    #[inline]
    fn avg(&self, setting: Setting, offset: usize, i: usize) -> f64 {
        let (rt, n, factor) = setting.params();
        let div = if rt == RangeType::Shadows { 2.0 } else { 1.0 };
        let base = if n == 0 {
            range(rt, self.at(i - offset))
        } else {
            let total = self
                .avgs
                .iter()
                .find(|a| a.setting == setting && a.offset == offset)
                .map_or(0.0, |a| a.total);
            total / n as f64
        };
        factor * base / div
    }

    fn evaluate(&self, i: usize) -> i32 {
        let b = |k: usize| self.at(i - k);
        let avg = |s: Setting, k: usize| self.avg(s, k, i);
        let (b0, b1) = (b(0), b(1));
        match self.pattern {
            Pattern::Doji => i32::from(body(b0) <= avg(BodyDoji, 0)) * 100,
            Pattern::DragonflyDoji => {
                let hit = body(b0) <= avg(BodyDoji, 0)
                    && upper(b0) < avg(ShadowVeryShort, 0)
                    && lower(b0) > avg(ShadowVeryShort, 0);
                i32::from(hit) * 100
            }
            Pattern::GravestoneDoji => {
                let hit = body(b0) <= avg(BodyDoji, 0)
                    && lower(b0) < avg(ShadowVeryShort, 0)
                    && upper(b0) > avg(ShadowVeryShort, 0);
                i32::from(hit) * 100
            }
            Pattern::Hammer | Pattern::HangingMan => {
                let shape = body(b0) < avg(BodyShort, 0)
                    && lower(b0) > avg(ShadowLong, 0)
                    && upper(b0) < avg(ShadowVeryShort, 0);
                if self.pattern == Pattern::Hammer {
                    i32::from(shape && bottom(b0) <= b1.low + avg(Near, 1)) * 100
                } else {
                    -i32::from(shape && bottom(b0) >= b1.high - avg(Near, 1)) * 100
                }
            }
            Pattern::InvertedHammer | Pattern::ShootingStar => {
                let shape = body(b0) < avg(BodyShort, 0)
                    && upper(b0) > avg(ShadowLong, 0)
                    && lower(b0) < avg(ShadowVeryShort, 0);
                if self.pattern == Pattern::InvertedHammer {
                    i32::from(shape && top(b0) < bottom(b1)) * 100
                } else {
                    -i32::from(shape && bottom(b0) > top(b1)) * 100
                }
            }
            Pattern::Engulfing => {
                let bull = white(b0)
                    && !white(b1)
                    && ((b0.close >= b1.open && b0.open < b1.close)
                        || (b0.close > b1.open && b0.open <= b1.close));
                let bear = !white(b0)
                    && white(b1)
                    && ((b0.open >= b1.close && b0.close < b1.open)
                        || (b0.open > b1.close && b0.close <= b1.open));
                if bull || bear {
                    let strength = if b0.open != b1.close && b0.close != b1.open {
                        100
                    } else {
                        80
                    };
                    color(b0) * strength
                } else {
                    0
                }
            }
            Pattern::Harami => {
                if body(b1) > avg(BodyLong, 1) && body(b0) <= avg(BodyShort, 0) {
                    if top(b0) < top(b1) && bottom(b0) > bottom(b1) {
                        -color(b1) * 100
                    } else if top(b0) <= top(b1) && bottom(b0) >= bottom(b1) {
                        -color(b1) * 80
                    } else {
                        0
                    }
                } else {
                    0
                }
            }
            Pattern::Piercing => {
                let hit = !white(b1)
                    && body(b1) > avg(BodyLong, 1)
                    && white(b0)
                    && body(b0) > avg(BodyLong, 0)
                    && b0.open < b1.low
                    && b0.close < b1.open
                    && b0.close > b1.close + body(b1) * 0.5;
                i32::from(hit) * 100
            }
            Pattern::DarkCloudCover => {
                let hit = white(b1)
                    && body(b1) > avg(BodyLong, 1)
                    && !white(b0)
                    && b0.open > b1.high
                    && b0.close > b1.open
                    && b0.close < b1.close - body(b1) * 0.5;
                -i32::from(hit) * 100
            }
            Pattern::MorningStar | Pattern::EveningStar => {
                let b2 = b(2);
                let common = body(b2) > avg(BodyLong, 2)
                    && body(b1) <= avg(BodyShort, 1)
                    && body(b0) > avg(BodyShort, 0);
                if self.pattern == Pattern::MorningStar {
                    let hit = common
                        && !white(b2)
                        && top(b1) < bottom(b2)
                        && white(b0)
                        && b0.close > b2.close + body(b2) * 0.3;
                    i32::from(hit) * 100
                } else {
                    let hit = common
                        && white(b2)
                        && bottom(b1) > top(b2)
                        && !white(b0)
                        && b0.close < b2.close - body(b2) * 0.3;
                    -i32::from(hit) * 100
                }
            }
            Pattern::AbandonedBaby => {
                let b2 = b(2);
                if body(b2) > avg(BodyLong, 2)
                    && body(b1) <= avg(BodyDoji, 1)
                    && body(b0) > avg(BodyShort, 0)
                {
                    let bear = white(b2)
                        && !white(b0)
                        && b0.close < b2.close - body(b2) * 0.3
                        && b1.low > b2.high
                        && b0.high < b1.low;
                    let bull = !white(b2)
                        && white(b0)
                        && b0.close > b2.close + body(b2) * 0.3
                        && b1.high < b2.low
                        && b0.low > b1.high;
                    if bear || bull { color(b0) * 100 } else { 0 }
                } else {
                    0
                }
            }
            Pattern::ThreeWhiteSoldiers => {
                let b2 = b(2);
                let hit = white(b2)
                    && upper(b2) < avg(ShadowVeryShort, 2)
                    && white(b1)
                    && upper(b1) < avg(ShadowVeryShort, 1)
                    && white(b0)
                    && upper(b0) < avg(ShadowVeryShort, 0)
                    && b0.close > b1.close
                    && b1.close > b2.close
                    && b1.open > b2.open
                    && b1.open <= b2.close + avg(Near, 2)
                    && b0.open > b1.open
                    && b0.open <= b1.close + avg(Near, 1)
                    && body(b1) > body(b2) - avg(Far, 2)
                    && body(b0) > body(b1) - avg(Far, 1)
                    && body(b0) > avg(BodyShort, 0);
                i32::from(hit) * 100
            }
            Pattern::ThreeBlackCrows => {
                let (b2, b3) = (b(2), b(3));
                let hit = white(b3)
                    && !white(b2)
                    && lower(b2) < avg(ShadowVeryShort, 2)
                    && !white(b1)
                    && lower(b1) < avg(ShadowVeryShort, 1)
                    && !white(b0)
                    && lower(b0) < avg(ShadowVeryShort, 0)
                    && b1.open < b2.open
                    && b1.open > b2.close
                    && b0.open < b1.open
                    && b0.open > b1.close
                    && b3.high > b2.close
                    && b2.close > b1.close
                    && b1.close > b0.close;
                -i32::from(hit) * 100
            }
            Pattern::Marubozu => {
                let hit = body(b0) > avg(BodyLong, 0)
                    && upper(b0) < avg(ShadowVeryShort, 0)
                    && lower(b0) < avg(ShadowVeryShort, 0);
                i32::from(hit) * color(b0) * 100
            }
            Pattern::SpinningTop => {
                let hit =
                    body(b0) < avg(BodyShort, 0) && upper(b0) > body(b0) && lower(b0) > body(b0);
                i32::from(hit) * color(b0) * 100
            }
            Pattern::Kicking => {
                let maru = |k: usize, bar: &Bar| {
                    body(bar) > avg(BodyLong, k)
                        && upper(bar) < avg(ShadowVeryShort, k)
                        && lower(bar) < avg(ShadowVeryShort, k)
                };
                let gap = if white(b1) {
                    b0.high < b1.low
                } else {
                    b0.low > b1.high
                };
                let hit = color(b1) != color(b0) && maru(1, b1) && maru(0, b0) && gap;
                i32::from(hit) * color(b0) * 100
            }
            Pattern::ThreeInside => {
                let b2 = b(2);
                let hit = body(b2) > avg(BodyLong, 2)
                    && body(b1) <= avg(BodyShort, 1)
                    && top(b1) < top(b2)
                    && bottom(b1) > bottom(b2)
                    && ((white(b2) && !white(b0) && b0.close < b2.open)
                        || (!white(b2) && white(b0) && b0.close > b2.open));
                i32::from(hit) * -color(b2) * 100
            }
            Pattern::ThreeOutside => {
                let b2 = b(2);
                let hit = (white(b1)
                    && !white(b2)
                    && b1.close > b2.open
                    && b1.open < b2.close
                    && b0.close > b1.close)
                    || (!white(b1)
                        && white(b2)
                        && b1.open > b2.close
                        && b1.close < b2.open
                        && b0.close < b1.close);
                i32::from(hit) * color(b1) * 100
            }
        }
    }
}

impl Indicator for CandlePattern {
    type Input = Bar;
    type Output = i32;

    fn update(&mut self, bar: Bar) -> Option<i32> {
        let i = self.seen;
        self.bars[i % HISTORY] = bar;
        self.seen += 1;
        let lb = self.pattern.lookback();
        if i < lb {
            return None;
        }
        if i == lb {
            // Seed each running total with the `n` candles before the judged one.
            for k in 0..self.avgs.len() {
                let (rt, n, _) = self.avgs[k].setting.params();
                let off = self.avgs[k].offset;
                let mut total = 0.0;
                for j in (i - off - n)..(i - off) {
                    total += range(rt, self.at(j));
                }
                self.avgs[k].total = total;
            }
        }
        let out = self.evaluate(i);
        for k in 0..self.avgs.len() {
            let (rt, n, _) = self.avgs[k].setting.params();
            if n > 0 {
                let off = self.avgs[k].offset;
                let newest = range(rt, self.at(i - off));
                let trailing = range(rt, self.at(i - off - n));
                self.avgs[k].total += newest - trailing;
            }
        }
        Some(out)
    }

    fn reset(&mut self) {
        *self = Self::new(self.pattern);
    }

    fn lookback(&self) -> usize {
        self.pattern.lookback()
    }
}
