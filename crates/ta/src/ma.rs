//! Moving averages: SMA, EMA, WMA, DEMA, TEMA, TRIMA, KAMA.

use crate::{Indicator, Ring};

/// Simple moving average (TA-Lib `SMA`): a running sum — add the new value, divide by the
/// period, then subtract the oldest. Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct Sma {
    period: usize,
    pub(crate) ring: Ring,
    pub(crate) sum: f64,
}

impl Sma {
    /// An SMA over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            ring: Ring::new(period),
            sum: 0.0,
        }
    }
}

impl Indicator for Sma {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        self.sum += x;
        self.ring.push(x);
        if !self.ring.is_full() {
            return None;
        }
        let out = self.sum / self.period as f64;
        self.sum -= self.ring.oldest();
        Some(out)
    }

    fn reset(&mut self) {
        self.ring.clear();
        self.sum = 0.0;
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Once the window is full, the loop keeps the running sum and the ring's head in
    /// registers and reads and replaces the oldest value in one place.
    fn update_strided<T>(
        &mut self,
        xs: &[T],
        input: impl Fn(&T) -> f64,
        out: &mut [f64],
        stride: usize,
    ) {
        let stride = stride.max(1);
        let rows = xs.len().min(out.len().div_ceil(stride));
        let mut i = 0;
        while i < rows && !self.ring.is_full() {
            out[i * stride] = self.update(input(&xs[i])).unwrap_or(f64::NAN);
            i += 1;
        }
        let n = self.period as f64;
        let (mut sum, mut head) = (self.sum, self.ring.head);
        let buf = &mut self.ring.buf[..];
        for (k, x) in xs[i..rows].iter().enumerate() {
            // `update`: the new value is added, replaces the oldest (full, the ring's head)
            // and the head moves on to the next oldest, which leaves the sum.
            let x = input(x);
            sum += x;
            buf[head] = x;
            head += 1;
            if head == buf.len() {
                head = 0;
            }
            out[(i + k) * stride] = sum / n;
            sum -= buf[head];
        }
        (self.sum, self.ring.head) = (sum, head);
    }
}

/// Exponential moving average (TA-Lib `EMA`): `k = 2 / (period + 1)`, seeded with the mean
/// of the first `period` values, then `e = ((x − e) × k) + e`. Lookback `period − 1`.
///
/// [`Ema::fused`] gives the fused form `e = fma(x − e, k, e)` that TA-Lib 0.8.1 uses inside
/// MACD.
#[derive(Clone, Debug)]
pub struct Ema {
    period: usize,
    k: f64,
    fused: bool,
    seen: usize,
    value: f64,
}

impl Ema {
    /// An EMA over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        Self::with_k(period, 2.0 / ((period.max(1) + 1) as f64), false)
    }

    /// The fused-multiply-add form (MACD's EMAs in TA-Lib 0.8.1).
    pub fn fused(period: usize) -> Self {
        Self::with_k(period, 2.0 / ((period.max(1) + 1) as f64), true)
    }

    fn with_k(period: usize, k: f64, fused: bool) -> Self {
        Self {
            period: period.max(1),
            k,
            fused,
            seen: 0,
            value: 0.0,
        }
    }

    /// The current value, once ready.
    pub fn value(&self) -> Option<f64> {
        (self.seen >= self.period).then_some(self.value)
    }

    /// [`crate::batch_f64`] for the EMA as one tight loop: the same arithmetic as
    /// [`Indicator::update`] (so the same bits), without the per-bar warm-up test or `Option`.
    /// Continues from the current state and leaves the indicator where streaming would.
    pub fn batch_into(&mut self, input: &[f64], out: &mut Vec<f64>) {
        out.clear();
        self.extend_into(input, out);
    }

    /// [`Ema::batch_into`] appending to `out` (for input that arrives in blocks).
    pub fn extend_into(&mut self, input: &[f64], out: &mut Vec<f64>) {
        if !self.fused {
            crate::kernel::extend_steady(self, input, out);
            return;
        }
        let [out] = crate::rows([out], None, input.len());
        let i = crate::kernel::warm(self, input, out);
        if self.seen >= self.period {
            self.value = ema_fused_steps(&input[i..], self.k, self.value, &mut out[i..]);
        }
    }

    /// The smoothing factor and the current value, for the kernels of indicators built on
    /// EMAs (MACD); `None` during the warm-up.
    pub(crate) fn steady(&self) -> Option<(f64, f64)> {
        (self.seen >= self.period).then_some((self.k, self.value))
    }

    pub(crate) fn set_value(&mut self, v: f64) {
        self.value = v;
    }
}

impl crate::kernel::Steady for Ema {
    /// `(k, value, fused)`.
    type State = (f64, f64, bool);

    fn steady_state(&self) -> Option<Self::State> {
        (self.seen >= self.period).then_some((self.k, self.value, self.fused))
    }

    #[inline(always)]
    fn step((k, v, fused): &mut Self::State, x: f64) -> f64 {
        *v = if *fused {
            (x - *v).mul_add(*k, *v)
        } else {
            ((x - *v) * *k) + *v
        };
        *v
    }

    fn set_steady_state(&mut self, (_, v, _): Self::State) {
        self.value = v;
    }
}

impl Indicator for Ema {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        if self.seen < self.period {
            self.seen += 1;
            self.value += x;
            if self.seen < self.period {
                return None;
            }
            self.value /= self.period as f64;
        } else if self.fused {
            self.value = (x - self.value).mul_add(self.k, self.value);
        } else {
            self.value = ((x - self.value) * self.k) + self.value;
        }
        Some(self.value)
    }

    fn reset(&mut self) {
        self.seen = 0;
        self.value = 0.0;
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

crate::fma_kernel! {
    /// The fused EMA step `e = fma(x − e, k, e)` over `input` from `v`; returns the last value.
    fn ema_fused_steps(input: &[f64], k: f64, v: f64, out: &mut [f64]) -> f64 {
        let mut v = v;
        for (o, &x) in out.iter_mut().zip(input) {
            v = (x - v).mul_add(k, v);
            *o = v;
        }
        v
    }
}

/// Weighted moving average (TA-Lib `WMA`): weights `1 … period`, newest heaviest, divisor
/// `period (period + 1) / 2`, in TA-Lib's running form. Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct Wma {
    period: usize,
    ring: Ring,
    sum: f64,
    sub: f64,
    trailing: f64,
    divider: f64,
}

impl Wma {
    /// A WMA over `period` values (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            ring: Ring::new(period),
            sum: 0.0,
            sub: 0.0,
            trailing: 0.0,
            divider: ((period * (period + 1)) >> 1) as f64,
        }
    }
}

impl Indicator for Wma {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        self.ring.push(x);
        if !self.ring.is_full() {
            self.sub += x;
            self.sum += x * self.ring.len() as f64;
            return None;
        }
        self.sub += x;
        self.sub -= self.trailing;
        self.sum += x * self.period as f64;
        self.trailing = self.ring.get(self.period - 1);
        let out = self.sum / self.divider;
        self.sum -= self.sub;
        Some(out)
    }

    fn reset(&mut self) {
        self.ring.clear();
        (self.sum, self.sub, self.trailing) = (0.0, 0.0, 0.0);
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Double EMA (TA-Lib `DEMA`): `2·e1 − e2` with `e2` the EMA of `e1`. Lookback `2 (period − 1)`.
#[derive(Clone, Debug)]
pub struct Dema {
    e1: Ema,
    e2: Ema,
}

impl Dema {
    /// A DEMA over `period`.
    pub fn new(period: usize) -> Self {
        Self {
            e1: Ema::new(period),
            e2: Ema::new(period),
        }
    }
}

impl Indicator for Dema {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.update(x)?;
        let b = self.e2.update(a)?;
        Some((2.0 * a) - b)
    }

    fn reset(&mut self) {
        self.e1.reset();
        self.e2.reset();
    }

    fn lookback(&self) -> usize {
        2 * self.e1.lookback()
    }
}

/// Triple EMA (TA-Lib `TEMA`): `e3 + ((3·e1) − (3·e2))`. Lookback `3 (period − 1)`.
#[derive(Clone, Debug)]
pub struct Tema {
    e1: Ema,
    e2: Ema,
    e3: Ema,
}

impl Tema {
    /// A TEMA over `period`.
    pub fn new(period: usize) -> Self {
        Self {
            e1: Ema::new(period),
            e2: Ema::new(period),
            e3: Ema::new(period),
        }
    }
}

impl Indicator for Tema {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.update(x)?;
        let b = self.e2.update(a)?;
        let c = self.e3.update(b)?;
        Some(c + ((3.0 * a) - (3.0 * b)))
    }

    fn reset(&mut self) {
        self.e1.reset();
        self.e2.reset();
        self.e3.reset();
    }

    fn lookback(&self) -> usize {
        3 * self.e1.lookback()
    }
}

/// Triangular moving average (TA-Lib `TRIMA`), as the SMA of an SMA: for an odd period
/// `p`, `SMA(SMA(x, (p+1)/2), (p+1)/2)`; for an even one, `SMA(SMA(x, p/2), p/2 + 1)`.
/// Agrees with TA-Lib's running form to ~1e-13 relative. Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct Trima {
    period: usize,
    a: Sma,
    b: Sma,
}

impl Trima {
    /// A TRIMA over `period` (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        let (n1, n2) = if period % 2 == 1 {
            (period.div_ceil(2), period.div_ceil(2))
        } else {
            (period / 2, period / 2 + 1)
        };
        Self {
            period,
            a: Sma::new(n1),
            b: Sma::new(n2),
        }
    }
}

impl Indicator for Trima {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let inner = self.a.update(x)?;
        self.b.update(inner)
    }

    fn reset(&mut self) {
        self.a.reset();
        self.b.reset();
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Kaufman adaptive moving average (TA-Lib `KAMA`): efficiency ratio over `period`
/// changes, fixed fast 2/3 and slow 2/31 constants, seeded with the value before the first
/// output, fused updates as in TA-Lib 0.8.1. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Kama {
    period: usize,
    ring: Ring,
    seen: usize,
    volatility: f64,
    trailing: f64,
    kama: f64,
}

const KAMA_SLOW: f64 = 2.0 / (30.0 + 1.0);

impl Kama {
    /// A KAMA over `period` (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            ring: Ring::new(period + 1),
            seen: 0,
            volatility: 0.0,
            trailing: 0.0,
            kama: 0.0,
        }
    }

    fn smooth(&mut self, x: f64, roc: f64) -> f64 {
        let diff = 2.0 / (2.0 + 1.0) - KAMA_SLOW;
        let er = if self.volatility <= roc || self.volatility == 0.0 {
            1.0
        } else {
            (roc / self.volatility).abs()
        };
        let sc = er.mul_add(diff, KAMA_SLOW);
        let sc = sc * sc;
        self.kama = (x - self.kama).mul_add(sc, self.kama);
        self.kama
    }
}

impl Indicator for Kama {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let p = self.period;
        self.ring.push(x);
        self.seen += 1;
        let t = self.seen - 1;
        if t == 0 {
            return None;
        }
        if t <= p {
            // |x[t-1] − x[t]| for t = 1..=p, in order.
            self.volatility += (self.ring.get(1) - x).abs();
            if t < p {
                return None;
            }
            self.kama = self.ring.get(1);
            let first = self.ring.get(p);
            self.trailing = first;
            return Some(self.smooth(x, x - first));
        }
        let back = self.ring.get(p); // x[t − p]
        let roc = x - back;
        self.volatility -= (self.trailing - back).abs();
        self.volatility += (x - self.ring.get(1)).abs();
        self.trailing = back;
        Some(self.smooth(x, roc))
    }

    fn reset(&mut self) {
        self.ring.clear();
        self.seen = 0;
        (self.volatility, self.trailing, self.kama) = (0.0, 0.0, 0.0);
    }

    fn lookback(&self) -> usize {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_f64;

    #[test]
    fn sma_and_wma_by_hand() {
        let mut out = Vec::new();
        batch_f64(&mut Sma::new(2), &[1.0, 3.0, 5.0], &mut out);
        assert!(out[0].is_nan());
        assert_eq!(&out[1..], &[2.0, 4.0]);
        batch_f64(&mut Wma::new(3), &[1.0, 2.0, 3.0, 4.0], &mut out);
        assert_eq!(out[2], (1.0 + 4.0 + 9.0) / 6.0);
        assert_eq!(out[3], (2.0 + 6.0 + 12.0) / 6.0);
    }

    #[test]
    fn lookbacks_match_ta_lib() {
        assert_eq!(Ema::new(30).lookback(), 29);
        assert_eq!(Dema::new(30).lookback(), 58);
        assert_eq!(Tema::new(30).lookback(), 87);
        assert_eq!(Kama::new(30).lookback(), 30);
        let mut out = Vec::new();
        let xs: Vec<f64> = (0..100).map(|i| f64::from(i).sin() + 10.0).collect();
        for (ind, lb) in [
            (
                Box::new(Dema::new(5)) as Box<dyn Indicator<Input = f64, Output = f64>>,
                8,
            ),
            (Box::new(Tema::new(5)), 12),
            (Box::new(Kama::new(5)), 5),
            (Box::new(Trima::new(6)), 5),
        ] {
            let mut ind = ind;
            out.clear();
            out.extend(xs.iter().map(|&x| ind.update(x).unwrap_or(f64::NAN)));
            assert!(out[lb - 1].is_nan() && !out[lb].is_nan(), "lookback {lb}");
        }
    }
}

/// One stage of T3's cascade: `e = k·x + (1 − k)·e`, seeded by the mean of its first
/// `period` inputs.
#[derive(Clone, Debug)]
struct T3Stage {
    period: usize,
    seen: usize,
    value: f64,
}

impl T3Stage {
    #[inline]
    fn update(&mut self, x: f64, k: f64, omk: f64) -> Option<f64> {
        if self.seen < self.period {
            self.seen += 1;
            self.value += x;
            if self.seen < self.period {
                return None;
            }
            self.value /= self.period as f64;
        } else {
            self.value = (k * x) + (omk * self.value);
        }
        Some(self.value)
    }
}

/// Tillson's T3 (TA-Lib `T3`): six cascaded EMAs with `k = 2 / (period + 1)`, each seeded by
/// the mean of the first `period` values of the one before, combined as
/// `c1·e6 + c2·e5 + c3·e4 + c4·e3` with the volume factor `a` (TA-Lib default 0.7).
/// Lookback `6 (period − 1)`.
#[derive(Clone, Debug)]
pub struct T3 {
    stages: [T3Stage; 6],
    k: f64,
    omk: f64,
    c: [f64; 4],
}

impl T3 {
    /// T3 over `period` (at least 1) with volume factor `vfactor`.
    pub fn new(period: usize, vfactor: f64) -> Self {
        let period = period.max(1);
        let k = 2.0 / (period as f64 + 1.0);
        let a2 = vfactor * vfactor;
        let c1 = -a2 * vfactor;
        let c2 = 3.0 * (a2 - c1);
        let c3 = -6.0 * a2 - 3.0 * (vfactor - c1);
        let c4 = 1.0 + 3.0 * vfactor - c1 + 3.0 * a2;
        let stage = T3Stage {
            period,
            seen: 0,
            value: 0.0,
        };
        Self {
            stages: std::array::from_fn(|_| stage.clone()),
            k,
            omk: 1.0 - k,
            c: [c1, c2, c3, c4],
        }
    }
}

impl Indicator for T3 {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let (k, omk) = (self.k, self.omk);
        let e1 = self.stages[0].update(x, k, omk)?;
        let e2 = self.stages[1].update(e1, k, omk)?;
        let e3 = self.stages[2].update(e2, k, omk)?;
        let e4 = self.stages[3].update(e3, k, omk)?;
        let e5 = self.stages[4].update(e4, k, omk)?;
        let e6 = self.stages[5].update(e5, k, omk)?;
        let [c1, c2, c3, c4] = self.c;
        Some(c1 * e6 + c2 * e5 + c3 * e4 + c4 * e3)
    }

    fn reset(&mut self) {
        for s in &mut self.stages {
            s.seen = 0;
            s.value = 0.0;
        }
    }

    fn lookback(&self) -> usize {
        6 * (self.stages[0].period - 1)
    }
}
