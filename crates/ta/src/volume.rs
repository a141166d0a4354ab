//! Volume: OBV, the accumulation/distribution line, the Chaikin A/D oscillator and MFI.

use crate::{Bar, Indicator};

/// On-balance volume (TA-Lib `OBV`): starts at the first bar's volume, then adds the volume
/// when the close rises and subtracts it when the close falls. Lookback 0.
#[derive(Clone, Debug, Default)]
pub struct Obv {
    prev_close: Option<f64>,
    value: f64,
}

impl Obv {
    /// An OBV line.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Indicator for Obv {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        match self.prev_close.replace(b.close) {
            None => self.value = b.volume,
            Some(p) if b.close > p => self.value += b.volume,
            Some(p) if b.close < p => self.value -= b.volume,
            Some(_) => {}
        }
        Some(self.value)
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn lookback(&self) -> usize {
        0
    }
}

/// Accumulation/distribution line (TA-Lib `AD`): adds `(((C − L) − (H − C)) / (H − L)) · V`
/// for every bar whose range is positive. Lookback 0.
#[derive(Clone, Debug, Default)]
pub struct Ad {
    value: f64,
}

impl Ad {
    /// An A/D line.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Indicator for Ad {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let range = b.high - b.low;
        if range > 0.0 {
            self.value += (((b.close - b.low) - (b.high - b.close)) / range) * b.volume;
        }
        Some(self.value)
    }

    fn reset(&mut self) {
        self.value = 0.0;
    }

    fn lookback(&self) -> usize {
        0
    }
}

/// Chaikin A/D oscillator (TA-Lib `ADOSC`, 0.8.1): two EMAs of the A/D line, both seeded with
/// the first A/D value and stepped as `e = fma(1 − k, e, k · ad)`; output fast − slow.
/// Lookback `max(fast, slow) − 1`.
#[derive(Clone, Debug)]
pub struct Adosc {
    ad: Ad,
    kf: f64,
    ks: f64,
    fast: f64,
    slow: f64,
    seen: usize,
    lookback: usize,
}

impl Adosc {
    /// ADOSC with `fast` and `slow` periods (each at least 1).
    pub fn new(fast: usize, slow: usize) -> Self {
        let k = |n: usize| 2.0 / ((n.max(1) + 1) as f64);
        Self {
            ad: Ad::new(),
            kf: k(fast),
            ks: k(slow),
            fast: 0.0,
            slow: 0.0,
            seen: 0,
            lookback: fast.max(slow).max(1) - 1,
        }
    }
}

impl Indicator for Adosc {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let ad = self.ad.update(b).unwrap_or(0.0);
        if self.seen == 0 {
            self.fast = ad;
            self.slow = ad;
        } else {
            self.fast = (1.0 - self.kf).mul_add(self.fast, self.kf * ad);
            self.slow = (1.0 - self.ks).mul_add(self.slow, self.ks * ad);
        }
        self.seen += 1;
        (self.seen > self.lookback).then_some(self.fast - self.slow)
    }

    fn reset(&mut self) {
        self.ad.reset();
        (self.fast, self.slow, self.seen) = (0.0, 0.0, 0);
    }

    fn lookback(&self) -> usize {
        self.lookback
    }
}

/// Money flow index (TA-Lib `MFI`, 0.8.1): typical price `(H + L + C) / 3`, flow `tp · V`,
/// positive when the typical price rises, negative when it falls, none inside a scale-free
/// dead zone or without volume; sums over the last `period` flows, both reset to exactly 0
/// after `period` bars without flow in a row (so rounding residue cannot fake a reading); `100 · pos / (pos + neg)`, 0 when the total is not positive. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Mfi {
    period: usize,
    prev_tp: Option<f64>,
    flows: Vec<(f64, f64)>,
    head: usize,
    count: usize,
    pos: f64,
    neg: f64,
    flat_run: usize,
}

impl Mfi {
    /// MFI over `period` flows (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            prev_tp: None,
            flows: vec![(0.0, 0.0); period],
            head: 0,
            count: 0,
            pos: 0.0,
            neg: 0.0,
            flat_run: 0,
        }
    }
}

impl Indicator for Mfi {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let tp = (b.high + b.low + b.close) / 3.0;
        let prev = self.prev_tp.replace(tp)?;
        let flow = tp * b.volume;
        let diff = tp - prev;
        let (p, n) = if flow == 0.0 || diff.abs() <= 1e-14 * (tp.abs() + prev.abs()) {
            self.flat_run += 1;
            (0.0, 0.0)
        } else {
            self.flat_run = 0;
            if diff < 0.0 { (0.0, flow) } else { (flow, 0.0) }
        };
        if self.count == self.period {
            let (op, on) = self.flows[self.head];
            self.pos -= op;
            self.neg -= on;
        } else {
            self.count += 1;
        }
        self.pos += p;
        self.neg += n;
        self.flows[self.head] = (p, n);
        self.head = (self.head + 1) % self.period;
        if self.flat_run >= self.period {
            self.pos = 0.0;
            self.neg = 0.0;
        }
        if self.count < self.period {
            return None;
        }
        let total = self.pos + self.neg;
        Some(if total.is_nan() {
            f64::NAN // bad input propagates rather than hiding behind a number
        } else if total <= 0.0 {
            0.0
        } else {
            100.0 * self.pos.clamp(0.0, total) / total
        })
    }

    fn reset(&mut self) {
        *self = Self::new(self.period);
    }

    fn lookback(&self) -> usize {
        self.period
    }
}
