//! Indicators TA-Lib does not have: Donchian and Keltner channels, SuperTrend, Ichimoku and
//! VWAP (per session and rolling). Their definitions are written out on each type and in
//! `docs/TA.md`, and tested against hand-computed cases.

use crate::ma::Ema;
use crate::momentum::Extremes;
use crate::volatility::Atr;
use crate::{Bar, Indicator, Ring};

/// A channel: upper, middle and lower lines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Channel {
    /// Upper line.
    pub upper: f64,
    /// Middle line.
    pub middle: f64,
    /// Lower line.
    pub lower: f64,
}

/// Donchian channel: the highest high and lowest low of the last `period` bars (the current
/// one included), and their midpoint. Lookback `period − 1`; O(period) per bar.
#[derive(Clone, Debug)]
pub struct Donchian {
    period: usize,
    ext: Extremes,
}

impl Donchian {
    /// A Donchian channel over `period` bars (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            ext: Extremes::new(period),
        }
    }
}

impl Indicator for Donchian {
    type Input = Bar;
    type Output = Channel;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<Channel> {
        let (hh, ll) = self.ext.update(b.high, b.low)?;
        Some(Channel {
            upper: hh,
            middle: (hh + ll) / 2.0,
            lower: ll,
        })
    }

    fn reset(&mut self) {
        self.ext.clear();
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Keltner channel (the ATR form popularised by Linda Raschke): middle = EMA(close,
/// `ema_period`), lines at `middle ± multiplier · ATR(atr_period)`, with TA-Lib's EMA and
/// Wilder ATR. Lookback `max(ema_period − 1, atr_period)`.
#[derive(Clone, Debug)]
pub struct Keltner {
    ema: Ema,
    atr: Atr,
    mult: f64,
}

impl Keltner {
    /// Keltner channel; the usual parameters are 20, 10 and 2.
    pub fn new(ema_period: usize, atr_period: usize, multiplier: f64) -> Self {
        Self {
            ema: Ema::new(ema_period),
            atr: Atr::new(atr_period),
            mult: multiplier,
        }
    }
}

impl Indicator for Keltner {
    type Input = Bar;
    type Output = Channel;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<Channel> {
        let m = self.ema.update(b.close);
        let a = self.atr.update(b)?;
        let m = m?;
        let w = self.mult * a;
        Some(Channel {
            upper: m + w,
            middle: m,
            lower: m - w,
        })
    }

    fn reset(&mut self) {
        self.ema.reset();
        self.atr.reset();
    }

    fn lookback(&self) -> usize {
        self.ema.lookback().max(self.atr.lookback())
    }
}

/// One SuperTrend reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SuperTrendOut {
    /// The trailing line: the final lower band in an up-trend, the final upper band in a
    /// down-trend.
    pub value: f64,
    /// +1 up-trend, −1 down-trend.
    pub direction: i8,
}

/// SuperTrend (Olivier Seban's definition, as TradingView computes it): with `hl2 = (H + L) / 2`
/// and TA-Lib's Wilder ATR, basic bands `hl2 ± multiplier · ATR`; the final upper band only
/// moves down (it takes the basic band when that is lower or the previous close broke above
/// it) and the final lower band only moves up (mirror rule). The trend turns up when the close
/// rises above the final upper band and down when it falls below the final lower band. On the
/// first bar the trend is up if the close is at or above `hl2`. Lookback `period`.
#[derive(Clone, Debug)]
pub struct SuperTrend {
    atr: Atr,
    mult: f64,
    state: Option<(f64, f64, f64, i8)>,
}

impl SuperTrend {
    /// SuperTrend over an ATR of `period` with `multiplier` (usually 10 and 3).
    pub fn new(period: usize, multiplier: f64) -> Self {
        Self {
            atr: Atr::new(period),
            mult: multiplier,
            state: None,
        }
    }
}

impl Indicator for SuperTrend {
    type Input = Bar;
    type Output = SuperTrendOut;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<SuperTrendOut> {
        let atr = self.atr.update(b)?;
        let hl2 = (b.high + b.low) / 2.0;
        let basic_up = hl2 + self.mult * atr;
        let basic_dn = hl2 - self.mult * atr;
        let (up, dn, dir) = match self.state {
            None => (basic_up, basic_dn, if b.close >= hl2 { 1 } else { -1 }),
            Some((pu, pd, pc, pdir)) => {
                let up = if basic_up < pu || pc > pu {
                    basic_up
                } else {
                    pu
                };
                let dn = if basic_dn > pd || pc < pd {
                    basic_dn
                } else {
                    pd
                };
                let dir = if pdir < 0 && b.close > up {
                    1
                } else if pdir > 0 && b.close < dn {
                    -1
                } else {
                    pdir
                };
                (up, dn, dir)
            }
        };
        self.state = Some((up, dn, b.close, dir));
        Some(SuperTrendOut {
            value: if dir > 0 { dn } else { up },
            direction: dir,
        })
    }

    fn reset(&mut self) {
        self.atr.reset();
        self.state = None;
    }

    fn lookback(&self) -> usize {
        self.atr.lookback()
    }
}

/// One Ichimoku reading for the current bar, with no look-ahead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IchimokuOut {
    /// Tenkan-sen: midpoint of the last `tenkan` bars' range.
    pub tenkan: f64,
    /// Kijun-sen: midpoint of the last `kijun` bars' range.
    pub kijun: f64,
    /// Senkou span A *under the current bar*: `(tenkan + kijun) / 2` computed `displacement`
    /// bars ago.
    pub span_a: f64,
    /// Senkou span B under the current bar: the midpoint of the `senkou` bars' range computed
    /// `displacement` bars ago.
    pub span_b: f64,
    /// Span A computed now, which charts draw `displacement` bars ahead.
    pub span_a_ahead: f64,
    /// Span B computed now, drawn `displacement` bars ahead.
    pub span_b_ahead: f64,
}

/// Ichimoku Kinko Hyo (periods 9, 26, 52, displacement 26 by default). The chikou span is the
/// close drawn `displacement` bars back, so it is not an output: the current close is it.
/// Lookback `(longest period − 1) + displacement`.
#[derive(Clone, Debug)]
pub struct Ichimoku {
    tenkan: Extremes,
    kijun: Extremes,
    senkou: Extremes,
    span_a: Ring,
    span_b: Ring,
    longest: usize,
    displacement: usize,
}

impl Ichimoku {
    /// Ichimoku with the given periods (each at least 1).
    pub fn new(tenkan: usize, kijun: usize, senkou: usize, displacement: usize) -> Self {
        let d = displacement.max(1);
        Self {
            tenkan: Extremes::new(tenkan.max(1)),
            kijun: Extremes::new(kijun.max(1)),
            senkou: Extremes::new(senkou.max(1)),
            span_a: Ring::new(d + 1),
            span_b: Ring::new(d + 1),
            longest: tenkan.max(kijun).max(senkou).max(1),
            displacement: d,
        }
    }
}

impl Indicator for Ichimoku {
    type Input = Bar;
    type Output = IchimokuOut;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<IchimokuOut> {
        let mid = |(h, l): (f64, f64)| (h + l) / 2.0;
        let t = self.tenkan.update(b.high, b.low).map(mid);
        let k = self.kijun.update(b.high, b.low).map(mid);
        let s = self.senkou.update(b.high, b.low).map(mid);
        let (t, k, s) = (t?, k?, s?);
        let a = (t + k) / 2.0;
        self.span_a.push(a);
        self.span_b.push(s);
        if !self.span_a.is_full() {
            return None;
        }
        Some(IchimokuOut {
            tenkan: t,
            kijun: k,
            span_a: self.span_a.get(self.displacement),
            span_b: self.span_b.get(self.displacement),
            span_a_ahead: a,
            span_b_ahead: s,
        })
    }

    fn reset(&mut self) {
        self.tenkan.clear();
        self.kijun.clear();
        self.senkou.clear();
        self.span_a.clear();
        self.span_b.clear();
    }

    fn lookback(&self) -> usize {
        (self.longest - 1) + self.displacement
    }
}

/// A bar with its open time, for indicators that reset on a calendar.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimedBar {
    /// Open time, nanoseconds UTC.
    pub ts: i64,
    /// The bar.
    pub bar: Bar,
}

/// Volume-weighted average price per session: `Σ tp·V / Σ V` over the bars of the current
/// session, `tp = (H + L + C) / 3`, the session being `session_ns` long and aligned to the
/// Unix epoch plus `offset_ns` (one UTC day by default, as crypto venues roll their daily
/// candles). While the session has no volume the output is the bar's typical price.
/// Lookback 0.
#[derive(Clone, Debug)]
pub struct SessionVwap {
    session_ns: i64,
    offset_ns: i64,
    session: Option<i64>,
    pv: f64,
    v: f64,
}

impl SessionVwap {
    /// Sessions of `session_ns` starting at `offset_ns` past the epoch's session grid.
    pub fn new(session_ns: i64, offset_ns: i64) -> Self {
        Self {
            session_ns: session_ns.max(1),
            offset_ns,
            session: None,
            pv: 0.0,
            v: 0.0,
        }
    }

    /// UTC-day sessions.
    pub fn daily() -> Self {
        Self::new(86_400_000_000_000, 0)
    }
}

impl Indicator for SessionVwap {
    type Input = TimedBar;
    type Output = f64;

    #[inline]
    fn update(&mut self, t: TimedBar) -> Option<f64> {
        let s = (t.ts - self.offset_ns).div_euclid(self.session_ns);
        if self.session != Some(s) {
            self.session = Some(s);
            self.pv = 0.0;
            self.v = 0.0;
        }
        let b = t.bar;
        let tp = (b.high + b.low + b.close) / 3.0;
        self.pv += tp * b.volume;
        self.v += b.volume;
        Some(if self.v > 0.0 { self.pv / self.v } else { tp })
    }

    fn reset(&mut self) {
        self.session = None;
        self.pv = 0.0;
        self.v = 0.0;
    }

    fn lookback(&self) -> usize {
        0
    }
}

/// Rolling VWAP over the last `period` bars: `Σ tp·V / Σ V`, the typical price when the window
/// has no volume. Sums are recomputed from the window every `32 · period` bars to bound drift.
/// Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct RollingVwap {
    period: usize,
    pv: Ring,
    vol: Ring,
    spv: f64,
    sv: f64,
    since: usize,
}

impl RollingVwap {
    /// Rolling VWAP over `period` bars (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            pv: Ring::new(period),
            vol: Ring::new(period),
            spv: 0.0,
            sv: 0.0,
            since: 0,
        }
    }
}

impl Indicator for RollingVwap {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let tp = (b.high + b.low + b.close) / 3.0;
        let pv = tp * b.volume;
        if let Some(old) = self.pv.push(pv) {
            self.spv -= old;
        }
        if let Some(old) = self.vol.push(b.volume) {
            self.sv -= old;
        }
        self.spv += pv;
        self.sv += b.volume;
        self.since += 1;
        if self.since >= 32 * self.period {
            self.since = 0;
            self.spv = self.pv.iter_oldest_first().sum();
            self.sv = self.vol.iter_oldest_first().sum();
        }
        if !self.pv.is_full() {
            return None;
        }
        Some(if self.sv > 0.0 {
            self.spv / self.sv
        } else {
            tp
        })
    }

    fn reset(&mut self) {
        self.pv.clear();
        self.vol.clear();
        (self.spv, self.sv, self.since) = (0.0, 0.0, 0);
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch;

    fn bar(o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
        Bar::new(o, h, l, c, v)
    }

    #[test]
    fn donchian_by_hand() {
        let mut d = Donchian::new(3);
        assert_eq!(d.update(bar(5.0, 6.0, 4.0, 5.0, 1.0)), None);
        assert_eq!(d.update(bar(5.0, 9.0, 5.0, 8.0, 1.0)), None);
        let c = d.update(bar(8.0, 8.5, 3.0, 4.0, 1.0)).unwrap();
        assert_eq!((c.upper, c.middle, c.lower), (9.0, 6.0, 3.0));
        let c = d.update(bar(4.0, 5.0, 3.5, 4.5, 1.0)).unwrap();
        assert_eq!((c.upper, c.lower), (9.0, 3.0));
        let c = d.update(bar(4.5, 5.0, 4.0, 4.5, 1.0)).unwrap();
        assert_eq!((c.upper, c.lower), (8.5, 3.0));
    }

    #[test]
    fn keltner_by_hand() {
        // EMA(2) and ATR(2), multiplier 2.
        let mut k = Keltner::new(2, 2, 2.0);
        assert_eq!(k.update(bar(10.0, 11.0, 9.0, 10.0, 1.0)), None);
        // EMA(2) seed = (10 + 12) / 2 = 11; ATR needs two true ranges.
        assert_eq!(k.update(bar(10.0, 13.0, 10.0, 12.0, 1.0)), None); // TR 3
        // EMA = (11 − 11)·(2/3) + 11 … with close 11: 11; TR = max(2, |12−12|, |10−12|) = 2;
        // ATR seed = (3 + 2) / 2 = 2.5; lines 11 ± 5.
        let c = k.update(bar(12.0, 12.0, 10.0, 11.0, 1.0)).unwrap();
        assert_eq!((c.lower, c.middle, c.upper), (6.0, 11.0, 16.0));
    }

    #[test]
    fn supertrend_turns_on_a_break() {
        // ATR(1) is the true range; multiplier 1.
        let mut st = SuperTrend::new(1, 1.0);
        assert_eq!(st.update(bar(10.0, 10.0, 10.0, 10.0, 1.0)), None);
        // TR = 2, hl2 = 10: bands 12 / 8; close 10.5 >= hl2: up-trend, value = lower 8.
        let s = st.update(bar(10.0, 11.0, 9.0, 10.5, 1.0)).unwrap();
        assert_eq!((s.value, s.direction), (8.0, 1));
        // TR = max(1, |10.5−10.5|, |9.5−10.5|) = 1; hl2 = 10; basic 11 / 9: lower rises to 9.
        let s = st.update(bar(10.5, 10.5, 9.5, 10.0, 1.0)).unwrap();
        assert_eq!((s.value, s.direction), (9.0, 1));
        // A close below the final lower band (9) turns the trend down: value = final upper.
        // TR = max(2, |9−10|, |7−10|) = 3; hl2 = 8; basic 11 / 5; upper: 11 < 11? no, prev
        // close 10 > 11? no: stays 11.
        let s = st.update(bar(9.0, 9.0, 7.0, 7.5, 1.0)).unwrap();
        assert_eq!((s.value, s.direction), (11.0, -1));
    }

    #[test]
    fn ichimoku_spans_are_displaced_without_look_ahead() {
        let bars: Vec<Bar> = (0..40)
            .map(|i| {
                let x = f64::from(i);
                bar(x, x + 1.0, x - 1.0, x, 1.0)
            })
            .collect();
        let mut out = Vec::new();
        batch(&mut Ichimoku::new(2, 3, 4, 5), &bars, &mut out);
        let lb = Ichimoku::new(2, 3, 4, 5).lookback();
        assert_eq!(lb, 3 + 5);
        assert!(out[lb - 1].is_none() && out[lb].is_some());
        let o = out[20].unwrap();
        // Bar 20: tenkan = (21 + 18) / 2, kijun = (21 + 17) / 2, span B ahead = (21 + 16) / 2.
        assert_eq!((o.tenkan, o.kijun, o.span_b_ahead), (19.5, 19.0, 18.5));
        // The span under bar 20 was computed at bar 15.
        let o15 = out[15].unwrap();
        assert_eq!((o.span_a, o.span_b), (o15.span_a_ahead, o15.span_b_ahead));
    }

    #[test]
    fn vwap_by_hand() {
        let day = 86_400_000_000_000;
        let mut v = SessionVwap::daily();
        let tb = |ts, b| TimedBar { ts, bar: b };
        // tp 10 with volume 1, then tp 20 with volume 3: (10 + 60) / 4.
        assert_eq!(
            v.update(tb(0, bar(10.0, 10.0, 10.0, 10.0, 1.0))),
            Some(10.0)
        );
        assert_eq!(
            v.update(tb(60, bar(20.0, 20.0, 20.0, 20.0, 3.0))),
            Some(17.5)
        );
        // A new day starts over; no volume yet gives the typical price.
        assert_eq!(
            v.update(tb(day, bar(30.0, 33.0, 27.0, 30.0, 0.0))),
            Some(30.0)
        );
        let mut r = RollingVwap::new(2);
        assert_eq!(r.update(bar(10.0, 10.0, 10.0, 10.0, 1.0)), None);
        assert_eq!(r.update(bar(20.0, 20.0, 20.0, 20.0, 3.0)), Some(17.5));
        assert_eq!(r.update(bar(40.0, 40.0, 40.0, 40.0, 1.0)), Some(25.0));
    }
}
