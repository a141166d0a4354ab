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

impl Atr {
    /// [`crate::batch_f64`] for the ATR over columns of highs, lows and closes (the shortest
    /// sets the length), as one tight loop: the same arithmetic as [`Indicator::update`], so
    /// the same bits. Continues from the current state and leaves the indicator where
    /// streaming would.
    pub fn batch_hlc(&mut self, high: &[f64], low: &[f64], close: &[f64], out: &mut Vec<f64>) {
        let n = high.len().min(low.len()).min(close.len());
        let [out] = crate::rows([out], Some(0), n);
        self.fill_hlc([high, low, close], out);
    }

    /// [`Atr::batch_hlc`] appending to `out` (for input that arrives in blocks).
    pub fn extend_hlc(&mut self, high: &[f64], low: &[f64], close: &[f64], out: &mut Vec<f64>) {
        let n = high.len().min(low.len()).min(close.len());
        let [out] = crate::rows([out], None, n);
        self.fill_hlc([high, low, close], out);
    }

    fn fill_hlc(&mut self, [high, low, close]: [&[f64]; 3], out: &mut [f64]) {
        let n = out.len();
        let mut i = 0;
        while i < n && (self.value.is_none() || self.tr.prev_close.is_none()) {
            let bar = Bar::new(close[i], high[i], low[i], close[i], 0.0);
            out[i] = self.update(bar).unwrap_or(f64::NAN);
            i += 1;
        }
        let (Some(atr), Some(prev)) = (self.value, self.tr.prev_close) else {
            return;
        };
        let (atr, prev) = atr_steps(
            [&high[i..n], &low[i..n], &close[i..n]],
            [self.wb, self.wa],
            [atr, prev],
            &mut out[i..],
        );
        self.value = Some(atr);
        self.tr.prev_close = Some(prev);
    }
}

crate::fma_kernel! {
    /// ATR's steps over columns `[high, low, close]` from `[atr, previous close]` with the
    /// weights `[wb, wa]`; returns the ATR and the close after the last row.
    fn atr_steps(hlc: [&[f64]; 3], w: [f64; 2], from: [f64; 2], out: &mut [f64]) -> (f64, f64) {
        let ([high, low, close], [wb, wa], [mut atr, mut prev]) = (hlc, w, from);
        // A plain loop over slices: an iterator's `fold` (as `Vec::extend` uses) may stay out
        // of line, compiled without FMA, and call libm on every row.
        for (((&h, &l), &c), o) in high.iter().zip(low).zip(close).zip(out) {
            let tr = true_range(h, l, prev);
            prev = c;
            atr = wb.mul_add(atr, wa * tr);
            *o = atr;
        }
        (atr, prev)
    }
}

crate::fma_kernel! {
    /// The bands' second pass: rows hold `[variance, window sum, _]`; they become
    /// `[upper, middle, lower]` with `middle = sum / period`, `w = √variance · k`. Nothing
    /// here depends on the previous row, so the divisions and square roots (the slowest
    /// instructions of the bands) run four to a vector instruction.
    fn bands_from_sums(rows: [&mut [f64]; 3], period: f64, k: f64) -> () {
        let [uo, mo, lo] = rows;
        for ((u, m), l) in uo.iter_mut().zip(mo.iter_mut()).zip(lo.iter_mut()) {
            let middle = *m / period;
            let w = u.sqrt() * k;
            *u = middle + w;
            *m = middle;
            *l = middle - w;
        }
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
        let window = self.ring.iter_oldest_first();
        (self.shift, self.s1, self.s2) = Self::centred(window.clone(), self.inv);
    }

    /// The shift (the window's mean) and the sums of `x − shift` and `(x − shift)²` over a
    /// window, oldest first.
    fn centred(window: impl IntoIterator<Item = f64> + Clone, inv: f64) -> (f64, f64, f64) {
        let mut sum = 0.0;
        for x in window.clone() {
            sum += x;
        }
        let shift = sum * inv;
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in window {
            let d = x - shift;
            s1 += d;
            s2 += d * d;
        }
        (shift, s1, s2)
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

/// Bollinger Bands in columns (TA-Lib's layout: `NaN` during the warm-up), the output of
/// [`Bbands::batch_columns`].
#[derive(Clone, Debug, Default)]
pub struct BandColumns {
    /// Middle + k·σ.
    pub upper: Vec<f64>,
    /// The SMA.
    pub middle: Vec<f64>,
    /// Middle − k·σ.
    pub lower: Vec<f64>,
}

impl BandColumns {
    /// Empties every column, keeping the capacity.
    pub fn clear(&mut self) {
        for v in [&mut self.upper, &mut self.middle, &mut self.lower] {
            v.clear();
        }
    }

    fn rows(&mut self, from: Option<usize>, n: usize) -> [&mut [f64]; 3] {
        crate::rows(
            [&mut self.upper, &mut self.middle, &mut self.lower],
            from,
            n,
        )
    }
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

impl Bbands {
    /// [`crate::batch`] for the bands into columns, as one tight loop that reads the value
    /// leaving the window from the input instead of a ring: the same arithmetic as
    /// [`Indicator::update`] (re-centring included), so the same bits. Continues from the
    /// current state and leaves the indicator where streaming would.
    pub fn batch_columns(&mut self, input: &[f64], out: &mut BandColumns) {
        self.fill(input, out.rows(Some(0), input.len()));
    }

    /// [`Bbands::batch_columns`] appending to `out` (for input that arrives in blocks).
    pub fn extend_columns(&mut self, input: &[f64], out: &mut BandColumns) {
        self.fill(input, out.rows(None, input.len()));
    }

    fn fill(&mut self, input: &[f64], [uo, mo, lo]: [&mut [f64]; 3]) {
        let n = input.len();
        let p = self.var.period;
        // Until the window is full, and for its first `p` bars (so the leaving value is in
        // `input`), update() does the work.
        let mut i = 0;
        while i < n && (self.var.outputs == 0 || i < p) {
            let o = self.update(input[i]);
            uo[i] = o.map_or(f64::NAN, |b| b.upper);
            mo[i] = o.map_or(f64::NAN, |b| b.middle);
            lo[i] = o.map_or(f64::NAN, |b| b.lower);
            i += 1;
        }
        if i == n {
            return;
        }
        let (k, pf) = (self.k, p as f64);
        let mut sum = self.sma.sum;
        let v = &mut self.var;
        let (inv, mut shift, mut s1, mut s2) = (v.inv, v.shift, v.s1, v.s2);
        let mut until = v.until_reseed;
        let rows = input[i..].iter().zip(&input[i + 1 - p..]).enumerate();
        let outs = uo[i..].iter_mut().zip(&mut mo[i..]);
        for ((j, (&x, &old)), (uo, mo)) in rows.zip(outs) {
            // Sma::update (the division is done below, for every row at once)
            sum += x;
            *mo = sum;
            sum -= old;
            // RollingVar::update
            let d = x - shift;
            s1 += d;
            s2 += d * d;
            let m = s1 * inv;
            let mut var = s2 * inv - m * m;
            let mut r = old - shift;
            s1 -= r;
            s2 -= r * r;
            until -= 1;
            if var < 1e-6 * (s2 * inv) || r * r > 1e6 * s2 || until == 0 {
                until = 32 * p;
                (shift, s1, s2) =
                    RollingVar::centred(input[i + j + 1 - p..=i + j].iter().copied(), inv);
                let m = s1 * inv;
                var = s2 * inv - m * m;
                if var < 1e-12 * (s2 * inv) {
                    var = 0.0;
                }
                r = old - shift;
                s1 -= r;
                s2 -= r * r;
            }
            *uo = var;
        }
        bands_from_sums([&mut uo[i..], &mut mo[i..], &mut lo[i..]], pf, k);
        v.outputs += n - i;
        (v.shift, v.s1, v.s2, v.until_reseed) = (shift, s1, s2, until);
        // Both rings hold the last `p` inputs, as streaming would have left them.
        v.ring.clear();
        self.sma.ring.clear();
        for &x in &input[n - p..] {
            v.ring.push(x);
            self.sma.ring.push(x);
        }
        self.sma.sum = sum;
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
