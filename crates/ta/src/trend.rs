//! Trend: Wilder's directional movement (+DI, −DI, DX, ADX, ADXR), Aroon, Parabolic SAR and
//! the linear-regression slope.

use crate::volatility::true_range;
use crate::{Bar, Indicator, Ring};

/// Wilder-smoothed +DM, −DM and TR sums, TA-Lib style: seeded with the plain sums of bars
/// 1 … period − 1, then `S = S − S / period + new` from bar `period` on.
#[derive(Clone, Debug)]
struct DmState {
    period: usize,
    prev: Option<(f64, f64, f64)>,
    bars: usize,
    plus: f64,
    minus: f64,
    tr: f64,
}

impl DmState {
    fn new(period: usize) -> Self {
        Self {
            period: period.max(2),
            prev: None,
            bars: 0,
            plus: 0.0,
            minus: 0.0,
            tr: 0.0,
        }
    }

    /// The smoothed (+DM, −DM, TR) from bar `period` on.
    #[inline]
    fn update(&mut self, b: Bar) -> Option<(f64, f64, f64)> {
        let prev = self.prev.replace((b.high, b.low, b.close));
        self.bars += 1;
        let (ph, pl, pc) = prev?;
        let diff_p = b.high - ph;
        let diff_m = pl - b.low;
        let plus = if diff_p > 0.0 && diff_p > diff_m {
            diff_p
        } else {
            0.0
        };
        let minus = if diff_m > 0.0 && diff_p < diff_m {
            diff_m
        } else {
            0.0
        };
        let tr = true_range(b.high, b.low, pc);
        let t = self.bars - 1;
        let p = self.period as f64;
        if t < self.period {
            if plus > 0.0 {
                self.plus += plus;
            }
            if minus > 0.0 {
                self.minus += minus;
            }
            self.tr += tr;
            return None;
        }
        self.plus -= self.plus / p;
        if plus > 0.0 {
            self.plus += plus;
        }
        self.minus -= self.minus / p;
        if minus > 0.0 {
            self.minus += minus;
        }
        self.tr = self.tr - (self.tr / p) + tr;
        Some((self.plus, self.minus, self.tr))
    }

    /// +DI and −DI, when TR is not zero.
    #[inline]
    fn di(&self) -> Option<(f64, f64)> {
        (self.tr != 0.0).then(|| {
            (
                100.0 * (self.plus / self.tr),
                100.0 * (self.minus / self.tr),
            )
        })
    }

    /// DX, when defined.
    #[inline]
    fn dx(&self) -> Option<f64> {
        let (plus, minus) = self.di()?;
        let sum = minus + plus;
        (sum != 0.0).then(|| 100.0 * ((minus - plus).abs() / sum))
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

/// +DI (TA-Lib `PLUS_DI`): `100 · +DM / TR` of the Wilder sums, 0 when TR is 0.
/// Lookback `period` (period ≥ 2).
#[derive(Clone, Debug)]
pub struct PlusDi(DmState);

impl PlusDi {
    /// +DI over `period` (at least 2).
    pub fn new(period: usize) -> Self {
        Self(DmState::new(period))
    }
}

impl Indicator for PlusDi {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        self.0.update(b)?;
        Some(self.0.di().map_or(0.0, |d| d.0))
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn lookback(&self) -> usize {
        self.0.period
    }
}

/// −DI (TA-Lib `MINUS_DI`): `100 · −DM / TR` of the Wilder sums, 0 when TR is 0.
/// Lookback `period` (period ≥ 2).
#[derive(Clone, Debug)]
pub struct MinusDi(DmState);

impl MinusDi {
    /// −DI over `period` (at least 2).
    pub fn new(period: usize) -> Self {
        Self(DmState::new(period))
    }
}

impl Indicator for MinusDi {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        self.0.update(b)?;
        Some(self.0.di().map_or(0.0, |d| d.1))
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn lookback(&self) -> usize {
        self.0.period
    }
}

/// Directional movement index (TA-Lib `DX`): `100 · |−DI − +DI| / (−DI + +DI)`; when
/// undefined (zero TR or zero DI sum) the previous value is repeated (0 at first).
/// Lookback `period`.
#[derive(Clone, Debug)]
pub struct Dx {
    dm: DmState,
    last: f64,
}

impl Dx {
    /// DX over `period` (at least 2).
    pub fn new(period: usize) -> Self {
        Self {
            dm: DmState::new(period),
            last: 0.0,
        }
    }
}

impl Indicator for Dx {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        self.dm.update(b)?;
        if let Some(dx) = self.dm.dx() {
            self.last = dx;
        }
        Some(self.last)
    }

    fn reset(&mut self) {
        self.dm.reset();
        self.last = 0.0;
    }

    fn lookback(&self) -> usize {
        self.dm.period
    }
}

/// Average directional index (TA-Lib `ADX`): the first value is the sum of the defined DX of
/// bars `period … 2·period − 1` over `period`; then `adx = (adx · (period − 1) + dx) / period`,
/// unchanged when DX is undefined. Lookback `2·period − 1`.
#[derive(Clone, Debug)]
pub struct Adx {
    dm: DmState,
    steps: usize,
    value: f64,
}

impl Adx {
    /// ADX over `period` (at least 2).
    pub fn new(period: usize) -> Self {
        Self {
            dm: DmState::new(period),
            steps: 0,
            value: 0.0,
        }
    }
}

impl Indicator for Adx {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        self.dm.update(b)?;
        let p = self.dm.period;
        let dx = self.dm.dx();
        self.steps += 1;
        if self.steps <= p {
            if let Some(dx) = dx {
                self.value += dx;
            }
            if self.steps < p {
                return None;
            }
            self.value /= p as f64;
        } else if let Some(dx) = dx {
            self.value = ((self.value * (p - 1) as f64) + dx) / p as f64;
        }
        Some(self.value)
    }

    fn reset(&mut self) {
        self.dm.reset();
        (self.steps, self.value) = (0, 0.0);
    }

    fn lookback(&self) -> usize {
        2 * self.dm.period - 1
    }
}

/// ADX rating (TA-Lib `ADXR`): `(ADX[t] + ADX[t − (period − 1)]) / 2`.
/// Lookback `3·period − 2`.
#[derive(Clone, Debug)]
pub struct Adxr {
    adx: Adx,
    ring: Ring,
}

impl Adxr {
    /// ADXR over `period` (at least 2).
    pub fn new(period: usize) -> Self {
        let adx = Adx::new(period);
        let p = adx.dm.period;
        Self {
            adx,
            ring: Ring::new(p),
        }
    }
}

impl Indicator for Adxr {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let a = self.adx.update(b)?;
        self.ring.push(a);
        self.ring
            .is_full()
            .then(|| (a + self.ring.get(self.adx.dm.period - 1)) / 2.0)
    }

    fn reset(&mut self) {
        self.adx.reset();
        self.ring.clear();
    }

    fn lookback(&self) -> usize {
        self.adx.lookback() + self.adx.dm.period - 1
    }
}

/// One Aroon reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AroonOut {
    /// Aroon down.
    pub down: f64,
    /// Aroon up.
    pub up: f64,
}

/// Aroon (TA-Lib `AROON`): over the last `period + 1` bars, `(100 / period) · (period −
/// bars since the highest high)` and likewise for the low; ties go to the most recent bar.
/// O(period) per bar. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Aroon {
    period: usize,
    highs: Ring,
    lows: Ring,
}

impl Aroon {
    /// Aroon over `period` (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            highs: Ring::new(period + 1),
            lows: Ring::new(period + 1),
        }
    }

    /// Bars since the highest high and since the lowest low (most recent on ties).
    #[inline]
    fn since_extremes(&mut self, b: Bar) -> Option<(usize, usize)> {
        self.highs.push(b.high);
        self.lows.push(b.low);
        if !self.highs.is_full() {
            return None;
        }
        let (mut hi_back, mut lo_back) = (0, 0);
        let (mut hi, mut lo) = (self.highs.get(0), self.lows.get(0));
        for back in 1..=self.period {
            let (h, l) = (self.highs.get(back), self.lows.get(back));
            if h > hi {
                hi = h;
                hi_back = back;
            }
            if l < lo {
                lo = l;
                lo_back = back;
            }
        }
        Some((hi_back, lo_back))
    }
}

impl Indicator for Aroon {
    type Input = Bar;
    type Output = AroonOut;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<AroonOut> {
        let (hi_back, lo_back) = self.since_extremes(b)?;
        let factor = 100.0 / self.period as f64;
        Some(AroonOut {
            down: factor * (self.period - lo_back) as f64,
            up: factor * (self.period - hi_back) as f64,
        })
    }

    fn reset(&mut self) {
        self.highs.clear();
        self.lows.clear();
    }

    fn lookback(&self) -> usize {
        self.period
    }
}

/// Aroon oscillator (TA-Lib `AROONOSC`): `(100 / period) · (index of the high − index of the
/// low)`. Lookback `period`.
#[derive(Clone, Debug)]
pub struct AroonOsc(Aroon);

impl AroonOsc {
    /// Aroon oscillator over `period`.
    pub fn new(period: usize) -> Self {
        Self(Aroon::new(period))
    }
}

impl Indicator for AroonOsc {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let (hi_back, lo_back) = self.0.since_extremes(b)?;
        let factor = 100.0 / self.0.period as f64;
        Some(factor * (lo_back as f64 - hi_back as f64))
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn lookback(&self) -> usize {
        self.0.period
    }
}

/// Parabolic SAR (TA-Lib `SAR`, 0.8.1 fused step). The first direction is short when bar 1's
/// −DM is positive, else long. Lookback 1.
#[derive(Clone, Debug)]
pub struct Sar {
    accel: f64,
    max: f64,
    first: Option<Bar>,
    started: bool,
    long: bool,
    af: f64,
    ep: f64,
    sar: f64,
    new_high: f64,
    new_low: f64,
}

impl Sar {
    /// SAR with acceleration `accel` and cap `max` (an `accel` above `max` is lowered to it).
    pub fn new(accel: f64, max: f64) -> Self {
        let accel = if accel > max { max } else { accel };
        Self {
            accel,
            max,
            first: None,
            started: false,
            long: true,
            af: accel,
            ep: 0.0,
            sar: 0.0,
            new_high: 0.0,
            new_low: 0.0,
        }
    }
}

impl Indicator for Sar {
    type Input = Bar;
    type Output = f64;

    fn update(&mut self, b: Bar) -> Option<f64> {
        if !self.started {
            let Some(b0) = self.first else {
                self.first = Some(b);
                return None;
            };
            self.started = true;
            let diff_m = b0.low - b.low;
            let diff_p = b.high - b0.high;
            let minus_dm = if diff_m > 0.0 && diff_p < diff_m {
                diff_m
            } else {
                0.0
            };
            self.long = minus_dm <= 0.0;
            if self.long {
                self.ep = b.high;
                self.sar = b0.low;
            } else {
                self.ep = b.low;
                self.sar = b0.high;
            }
            self.new_low = b.low;
            self.new_high = b.high;
        }
        let prev_low = self.new_low;
        let prev_high = self.new_high;
        self.new_low = b.low;
        self.new_high = b.high;
        let (nl, nh) = (b.low, b.high);
        let out;
        if self.long {
            if nl <= self.sar {
                self.long = false;
                self.sar = self.ep;
                if self.sar < prev_high {
                    self.sar = prev_high;
                }
                if self.sar < nh {
                    self.sar = nh;
                }
                out = self.sar;
                self.af = self.accel;
                self.ep = nl;
                self.sar = self.af.mul_add(self.ep - self.sar, self.sar);
                if self.sar < prev_high {
                    self.sar = prev_high;
                }
                if self.sar < nh {
                    self.sar = nh;
                }
            } else {
                out = self.sar;
                if nh > self.ep {
                    self.ep = nh;
                    self.af += self.accel;
                    if self.af > self.max {
                        self.af = self.max;
                    }
                }
                self.sar = self.af.mul_add(self.ep - self.sar, self.sar);
                if self.sar > prev_low {
                    self.sar = prev_low;
                }
                if self.sar > nl {
                    self.sar = nl;
                }
            }
        } else if nh >= self.sar {
            self.long = true;
            self.sar = self.ep;
            if self.sar > prev_low {
                self.sar = prev_low;
            }
            if self.sar > nl {
                self.sar = nl;
            }
            out = self.sar;
            self.af = self.accel;
            self.ep = nh;
            self.sar = self.af.mul_add(self.ep - self.sar, self.sar);
            if self.sar > prev_low {
                self.sar = prev_low;
            }
            if self.sar > nl {
                self.sar = nl;
            }
        } else {
            out = self.sar;
            if nl < self.ep {
                self.ep = nl;
                self.af += self.accel;
                if self.af > self.max {
                    self.af = self.max;
                }
            }
            self.sar = self.af.mul_add(self.ep - self.sar, self.sar);
            if self.sar < prev_high {
                self.sar = prev_high;
            }
            if self.sar < nh {
                self.sar = nh;
            }
        }
        Some(out)
    }

    fn reset(&mut self) {
        *self = Self::new(self.accel, self.max);
    }

    fn lookback(&self) -> usize {
        1
    }
}

/// Slope of the least-squares line through the last `period` values (TA-Lib
/// `LINEARREG_SLOPE`, 0.8.1): sums slid from one window to the next and recomputed fresh
/// every `32 · period` outputs. Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct LinRegSlope {
    period: usize,
    ring: Ring,
    sum_y: f64,
    sum_xy: f64,
    outputs: usize,
    sum_x: f64,
    divisor: f64,
}

impl LinRegSlope {
    /// Slope over `period` values (at least 2).
    pub fn new(period: usize) -> Self {
        let p = period.max(2);
        let sum_x = (p * (p - 1)) as f64 * 0.5;
        let sum_xx = (p * (p - 1) * (2 * p - 1) / 6) as f64;
        Self {
            period: p,
            ring: Ring::new(p + 1),
            sum_y: 0.0,
            sum_xy: 0.0,
            outputs: 0,
            sum_x,
            divisor: sum_x * sum_x - p as f64 * sum_xx,
        }
    }

    fn fresh(&mut self) {
        let (mut sy, mut sxy) = (0.0, 0.0);
        for back in (0..self.period).rev() {
            let v = self.ring.get(back);
            sy += v;
            sxy += back as f64 * v;
        }
        self.sum_y = sy;
        self.sum_xy = sxy;
    }
}

impl Indicator for LinRegSlope {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        self.ring.push(x);
        if self.ring.len() < self.period {
            return None;
        }
        let p = self.period as f64;
        if self.outputs.is_multiple_of(32 * self.period) {
            self.fresh();
        } else {
            let old = self.ring.get(self.period);
            self.sum_xy = self.sum_xy + self.sum_y - p * old;
            self.sum_y = self.sum_y - old + x;
        }
        self.outputs += 1;
        Some((p * self.sum_xy - self.sum_x * self.sum_y) / self.divisor)
    }

    fn reset(&mut self) {
        self.ring.clear();
        (self.sum_y, self.sum_xy, self.outputs) = (0.0, 0.0, 0);
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}
