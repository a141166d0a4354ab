//! Volatility: true range, ATR, NATR, standard deviation and Bollinger Bands.

use crate::ma::Sma;
use crate::{Bar, Indicator, Ring};

/// True range against the previous close, in TA-Lib's order: `H − L`, replaced by
/// `|H − C₋₁|` if larger, then by `|L − C₋₁|` if larger.
#[inline]
pub(crate) fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    let mut tr = high - low;
    let a = (high - prev_close).abs();
    if a > tr {
        tr = a;
    }
    let b = (low - prev_close).abs();
    if b > tr {
        tr = b;
    }
    tr
}

/// True range (TA-Lib `TRANGE`). Lookback 1.
#[derive(Clone, Debug, Default)]
pub struct TRange {
    prev_close: Option<f64>,
}

impl TRange {
    /// A true-range indicator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Indicator for TRange {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let prev = self.prev_close.replace(b.close)?;
        Some(true_range(b.high, b.low, prev))
    }

    fn reset(&mut self) {
        self.prev_close = None;
    }

    fn lookback(&self) -> usize {
        1
    }
}

/// Average true range (TA-Lib `ATR`, 0.8.1): the mean of the first `period` true ranges
/// (bars 1 … period), then `atr = fma(wb, atr, wa · TR)` with `wb = (period − 1) / period` and
/// `wa = 1 − wb`. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Atr {
    period: usize,
    tr: TRange,
    seed: Sma,
    wb: f64,
    wa: f64,
    value: Option<f64>,
}

impl Atr {
    /// ATR over `period` bars (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        let wb = (period - 1) as f64 / period as f64;
        Self {
            period,
            tr: TRange::new(),
            seed: Sma::new(period),
            wb,
            wa: 1.0 - wb,
            value: None,
        }
    }
}

impl Indicator for Atr {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let tr = self.tr.update(b)?;
        let v = match self.value {
            Some(atr) => self.wb.mul_add(atr, self.wa * tr),
            None => self.seed.update(tr)?,
        };
        self.value = Some(v);
        Some(v)
    }

    fn reset(&mut self) {
        self.tr.reset();
        self.seed.reset();
        self.value = None;
    }

    fn lookback(&self) -> usize {
        self.period
    }
}

/// Normalised ATR (TA-Lib `NATR`): `(ATR / close) · 100`, 0 when the close is 0.
/// Lookback `period`.
#[derive(Clone, Debug)]
pub struct Natr(Atr);

impl Natr {
    /// NATR over `period` bars.
    pub fn new(period: usize) -> Self {
        Self(Atr::new(period))
    }
}

impl Indicator for Natr {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let atr = self.0.update(b)?;
        Some(if b.close == 0.0 {
            0.0
        } else {
            (atr / b.close) * 100.0
        })
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn lookback(&self) -> usize {
        self.0.lookback()
    }
}

/// Population variance of the last `period` values with TA-Lib 0.8.1's shifted running
/// sums: sums of `x − s` and `(x − s)²` around a shift `s` (the first value), re-centred on
/// the window mean when cancellation threatens (variance below 1e-6 of the mean square, a
/// removed term dominating, or every `32 · period` outputs).
#[derive(Clone, Debug)]
pub(crate) struct RollingVar {
    period: usize,
    inv: f64,
    ring: Ring,
    shift: f64,
    s1: f64,
    s2: f64,
    outputs: usize,
    /// Outputs left until the next scheduled reseed (every `32 · period` outputs).
    until_reseed: usize,
}

impl RollingVar {
    pub(crate) fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            inv: 1.0 / period as f64,
            ring: Ring::new(period),
            shift: 0.0,
            s1: 0.0,
            s2: 0.0,
            outputs: 0,
            until_reseed: 32 * period,
        }
    }

    fn reseed(&mut self) {
        let mut sum = 0.0;
        for x in self.ring.iter_oldest_first() {
            sum += x;
        }
        self.shift = sum * self.inv;
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in self.ring.iter_oldest_first() {
            let d = x - self.shift;
            s1 += d;
            s2 += d * d;
        }
        self.s1 = s1;
        self.s2 = s2;
    }

    #[inline]
    pub(crate) fn update(&mut self, x: f64) -> Option<f64> {
        if self.ring.len() == 0 && self.outputs == 0 {
            self.shift = x;
        }
        self.ring.push(x);
        let d = x - self.shift;
        self.s1 += d;
        self.s2 += d * d;
        if !self.ring.is_full() {
            return None;
        }
        self.outputs += 1;
        let m = self.s1 * self.inv;
        let mut var = self.s2 * self.inv - m * m;
        let old = self.ring.get(self.period - 1);
        let mut r = old - self.shift;
        self.s1 -= r;
        self.s2 -= r * r;
        // A countdown rather than a modulo: this runs on every bar.
        self.until_reseed -= 1;
        if var < 1e-6 * (self.s2 * self.inv) || r * r > 1e6 * self.s2 || self.until_reseed == 0 {
            self.until_reseed = 32 * self.period;
            self.reseed();
            let m = self.s1 * self.inv;
            var = self.s2 * self.inv - m * m;
            if var < 1e-12 * (self.s2 * self.inv) {
                var = 0.0;
            }
            r = old - self.shift;
            self.s1 -= r;
            self.s2 -= r * r;
        }
        Some(var)
    }

    pub(crate) fn reset(&mut self) {
        *self = Self::new(self.period);
    }
}

/// Standard deviation (TA-Lib `STDDEV`, 0.8.1): `sqrt(population variance) · nbdev`.
/// Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct StdDev {
    var: RollingVar,
    nbdev: f64,
}

impl StdDev {
    /// Standard deviation over `period` values, times `nbdev`.
    pub fn new(period: usize, nbdev: f64) -> Self {
        Self {
            var: RollingVar::new(period),
            nbdev,
        }
    }
}

impl Indicator for StdDev {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        Some(self.var.update(x)?.sqrt() * self.nbdev)
    }

    fn reset(&mut self) {
        self.var.reset();
    }

    fn lookback(&self) -> usize {
        self.var.period - 1
    }
}

/// One Bollinger reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bands {
    /// Middle + k·σ.
    pub upper: f64,
    /// The SMA.
    pub middle: f64,
    /// Middle − k·σ.
    pub lower: f64,
}

/// Bollinger Bands (TA-Lib `BBANDS` with an SMA middle and equal widths, 0.8.1): middle =
/// SMA, σ = population standard deviation of the same window, bands at `middle ± σ·k`.
/// Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct Bbands {
    sma: Sma,
    var: RollingVar,
    k: f64,
}

impl Bbands {
    /// Bands over `period` values, `k` deviations wide.
    pub fn new(period: usize, k: f64) -> Self {
        Self {
            sma: Sma::new(period),
            var: RollingVar::new(period),
            k,
        }
    }
}

impl Indicator for Bbands {
    type Input = f64;
    type Output = Bands;

    #[inline]
    fn update(&mut self, x: f64) -> Option<Bands> {
        let middle = self.sma.update(x);
        let var = self.var.update(x)?;
        let middle = middle?;
        let w = var.sqrt() * self.k;
        Some(Bands {
            upper: middle + w,
            middle,
            lower: middle - w,
        })
    }

    fn reset(&mut self) {
        self.sma.reset();
        self.var.reset();
    }

    fn lookback(&self) -> usize {
        self.sma.lookback()
    }
}
