//! Momentum and oscillators: RSI, CMO, MOM, ROC, MACD, PPO, Williams %R, CCI, Stochastic
//! (slow and fast) and StochRSI.

use crate::ma::{Ema, Sma};
use crate::{Bar, Indicator, Ring, scaled_zero};

/// Wilder-smoothed average gain and loss, as RSI and CMO share them.
#[derive(Clone, Debug)]
struct GainLoss {
    period: usize,
    /// `1 / period`, computed once (TA-Lib 0.8.1 multiplies by it).
    inv: f64,
    /// TA-Lib 0.8.1's RSI multiplies by `1/period`; CMO keeps 0.6's division.
    reciprocal: bool,
    prev: Option<f64>,
    seen: usize,
    gain: f64,
    loss: f64,
}

impl GainLoss {
    fn new(period: usize, reciprocal: bool) -> Self {
        let period = period.max(1);
        Self {
            period,
            inv: 1.0 / period as f64,
            reciprocal,
            prev: None,
            seen: 0,
            gain: 0.0,
            loss: 0.0,
        }
    }

    #[inline]
    fn scale(&self, v: f64) -> f64 {
        if self.reciprocal {
            v * self.inv
        } else {
            v / self.period as f64
        }
    }

    /// The smoothed (gain, loss) once `period` changes have been seen.
    #[inline]
    fn update(&mut self, x: f64) -> Option<(f64, f64)> {
        let prev = self.prev.replace(x)?;
        let d = x - prev;
        if self.seen < self.period {
            self.seen += 1;
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            if self.seen < self.period {
                return None;
            }
            self.gain = self.scale(self.gain);
            self.loss = self.scale(self.loss);
        } else {
            let m = (self.period - 1) as f64;
            self.loss *= m;
            self.gain *= m;
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            self.loss = self.scale(self.loss);
            self.gain = self.scale(self.gain);
        }
        Some((self.gain, self.loss))
    }

    fn reset(&mut self) {
        *self = Self::new(self.period, self.reciprocal);
    }
}

/// Relative Strength Index (TA-Lib `RSI`, 0.8.1 arithmetic): `100 · G / (G + L)` with
/// Wilder-smoothed gains and losses seeded by the mean of the first `period` changes; 0 when
/// both are zero. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Rsi(GainLoss);

impl Rsi {
    /// An RSI over `period` changes.
    pub fn new(period: usize) -> Self {
        Self(GainLoss::new(period, true))
    }
}

impl Rsi {
    /// [`crate::batch_f64`] for the RSI as one tight loop: the same arithmetic as
    /// [`Indicator::update`] (so the same bits), with the gain/loss split done without a
    /// branch (a price change's sign is a coin toss, which a branch predictor loses half the
    /// time). Continues from the current state and leaves the indicator where streaming would.
    pub fn batch_into(&mut self, input: &[f64], out: &mut Vec<f64>) {
        out.clear();
        self.extend_into(input, out);
    }

    /// [`Rsi::batch_into`] appending to `out` (for input that arrives in blocks).
    pub fn extend_into(&mut self, input: &[f64], out: &mut Vec<f64>) {
        crate::kernel::extend_steady(self, input, out);
    }

    /// Whether the last window had neither gains nor losses (the RSI then reads 0, as in
    /// TA-Lib, which is not the same as an oversold 0).
    pub fn is_flat(&self) -> bool {
        self.0.seen >= self.0.period && self.0.gain + self.0.loss == 0.0
    }
}

impl crate::kernel::Steady for Rsi {
    /// `(previous input, gain, loss, period − 1, 1 / period)`.
    type State = (f64, f64, f64, f64, f64);

    fn steady_state(&self) -> Option<Self::State> {
        let gl = &self.0;
        debug_assert!(gl.reciprocal, "the RSI multiplies by 1/period");
        let prev = gl.prev.filter(|_| gl.seen >= gl.period)?;
        Some((prev, gl.gain, gl.loss, (gl.period - 1) as f64, gl.inv))
    }

    #[inline(always)]
    fn step((prev, g, l, m, inv): &mut Self::State, x: f64) -> f64 {
        let d = x - *prev;
        *prev = x;
        let neg = d < 0.0;
        // `a + 0.0` is `a` for every `a` but −0, and both sums are ≥ +0 or NaN, so this
        // equals update()'s `if d < 0 { loss −= d } else { gain += d }` bit for bit, without
        // a branch (a price change's sign is a coin toss for the branch predictor).
        *l = (*l * *m + if neg { -d } else { 0.0 }) * *inv;
        *g = (*g * *m + if neg { 0.0 } else { d }) * *inv;
        let total = *g + *l;
        if total == 0.0 {
            0.0
        } else {
            100.0 * (*g / total)
        }
    }

    fn set_steady_state(&mut self, (prev, g, l, _, _): Self::State) {
        self.0.prev = Some(prev);
        self.0.gain = g;
        self.0.loss = l;
    }
}

impl Indicator for Rsi {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let (g, l) = self.0.update(x)?;
        let total = g + l;
        Some(if total == 0.0 {
            0.0
        } else {
            100.0 * (g / total)
        })
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn lookback(&self) -> usize {
        self.0.period
    }
}

/// Chande Momentum Oscillator as TA-Lib computes it (`CMO`): the same Wilder-smoothed gains
/// and losses as RSI, `100 · (G − L) / (G + L)`, 0 when both are zero. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Cmo(GainLoss);

impl Cmo {
    /// A CMO over `period` changes.
    pub fn new(period: usize) -> Self {
        Self(GainLoss::new(period, false))
    }
}

impl Indicator for Cmo {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let (g, l) = self.0.update(x)?;
        let total = g + l;
        Some(if total == 0.0 {
            0.0
        } else {
            100.0 * ((g - l) / total)
        })
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn lookback(&self) -> usize {
        self.0.period
    }
}

/// Momentum (TA-Lib `MOM`): `x − x[t − period]`. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Mom {
    period: usize,
    ring: Ring,
}

impl Mom {
    /// Momentum over `period` bars (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            ring: Ring::new(period + 1),
        }
    }
}

impl Indicator for Mom {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        self.ring.push(x);
        self.ring.is_full().then(|| x - self.ring.get(self.period))
    }

    fn reset(&mut self) {
        self.ring.clear();
    }

    fn lookback(&self) -> usize {
        self.period
    }
}

/// Rate of change in percent (TA-Lib `ROC`): `((x / x[t − period]) − 1) · 100`, 0 when the
/// base is 0. Lookback `period`.
#[derive(Clone, Debug)]
pub struct Roc(Mom);

impl Roc {
    /// ROC over `period` bars.
    pub fn new(period: usize) -> Self {
        Self(Mom::new(period))
    }
}

impl Indicator for Roc {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        self.0.ring.push(x);
        if !self.0.ring.is_full() {
            return None;
        }
        let base = self.0.ring.get(self.0.period);
        Some(if base != 0.0 {
            ((x / base) - 1.0) * 100.0
        } else {
            0.0
        })
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn lookback(&self) -> usize {
        self.0.period
    }
}

/// One MACD reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacdOut {
    /// Fast EMA − slow EMA.
    pub macd: f64,
    /// EMA of the line.
    pub signal: f64,
    /// Line − signal.
    pub hist: f64,
}

/// MACD in columns (TA-Lib's layout: `NaN` during the warm-up), the output of
/// [`Macd::batch_columns`].
#[derive(Clone, Debug, Default)]
pub struct MacdColumns {
    /// Fast EMA − slow EMA.
    pub macd: Vec<f64>,
    /// EMA of the line.
    pub signal: Vec<f64>,
    /// Line − signal.
    pub hist: Vec<f64>,
}

impl MacdColumns {
    /// Empties every column, keeping the capacity.
    pub fn clear(&mut self) {
        for v in [&mut self.macd, &mut self.signal, &mut self.hist] {
            v.clear();
        }
    }

    fn rows(&mut self, from: Option<usize>, n: usize) -> [&mut [f64]; 3] {
        crate::rows([&mut self.macd, &mut self.signal, &mut self.hist], from, n)
    }
}

/// MACD (TA-Lib `MACD`): both EMAs start producing at bar `slow − 1`; the slow one is seeded
/// at bar 0, the fast one by the mean of bars `slow − fast … slow − 1` (not at bar 0); the
/// signal is the EMA of the line; all three step in TA-Lib 0.8.1's fused form. A slow
/// period shorter than the fast one is swapped. Lookback `(slow − 1) + (signal − 1)`.
#[derive(Clone, Debug)]
pub struct Macd {
    fast_start: usize,
    seen: usize,
    fast: Ema,
    slow: Ema,
    signal: Ema,
}

impl Macd {
    /// MACD with the given periods (each at least 1).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        let (fast, slow) = (fast.max(1), slow.max(1));
        Self {
            fast_start: slow - fast,
            seen: 0,
            fast: Ema::fused(fast),
            slow: Ema::fused(slow),
            signal: Ema::fused(signal),
        }
    }
}

impl Macd {
    /// [`crate::batch`] for MACD into columns, as one tight loop over the three fused EMA
    /// steps: the same arithmetic as [`Indicator::update`], so the same bits. Continues from
    /// the current state and leaves the indicator where streaming would.
    pub fn batch_columns(&mut self, input: &[f64], out: &mut MacdColumns) {
        self.fill(input, out.rows(Some(0), input.len()));
    }

    /// [`Macd::batch_columns`] appending to `out` (for input that arrives in blocks).
    pub fn extend_columns(&mut self, input: &[f64], out: &mut MacdColumns) {
        self.fill(input, out.rows(None, input.len()));
    }

    fn fill(&mut self, input: &[f64], [m, s, h]: [&mut [f64]; 3]) {
        let mut warm = 0;
        while warm < input.len() && self.signal.steady().is_none() {
            let o = self.update(input[warm]);
            m[warm] = o.map_or(f64::NAN, |o| o.macd);
            s[warm] = o.map_or(f64::NAN, |o| o.signal);
            h[warm] = o.map_or(f64::NAN, |o| o.hist);
            warm += 1;
        }
        let (Some((kf, f)), Some((ks, sl)), Some((kg, g))) =
            (self.fast.steady(), self.slow.steady(), self.signal.steady())
        else {
            return;
        };
        let rows = [&mut m[warm..], &mut s[warm..], &mut h[warm..]];
        let [f, s, g] = macd_steps(&input[warm..], [kf, ks, kg], [f, sl, g], rows);
        self.seen += input.len() - warm;
        self.fast.set_value(f);
        self.slow.set_value(s);
        self.signal.set_value(g);
    }
}

crate::fma_kernel! {
    /// MACD's three fused EMA steps over `input` from the values `[fast, slow, signal]`;
    /// returns the values after the last input.
    fn macd_steps(input: &[f64], k: [f64; 3], v: [f64; 3], out: [&mut [f64]; 3]) -> [f64; 3] {
        let ([kf, ks, kg], [mut f, mut s, mut g], [mo, so, ho]) = (k, v, out);
        for (((&x, mo), so), ho) in input.iter().zip(mo).zip(so).zip(ho) {
            f = (x - f).mul_add(kf, f);
            s = (x - s).mul_add(ks, s);
            let line = f - s;
            g = (line - g).mul_add(kg, g);
            *mo = line;
            *so = g;
            *ho = line - g;
        }
        [f, s, g]
    }
}

impl Indicator for Macd {
    type Input = f64;
    type Output = MacdOut;

    #[inline]
    fn update(&mut self, x: f64) -> Option<MacdOut> {
        let i = self.seen;
        self.seen += 1;
        let fast = if i >= self.fast_start {
            self.fast.update(x)
        } else {
            None
        };
        let slow = self.slow.update(x)?;
        let line = fast? - slow;
        let signal = self.signal.update(line)?;
        Some(MacdOut {
            macd: line,
            signal,
            hist: line - signal,
        })
    }

    fn reset(&mut self) {
        self.seen = 0;
        self.fast.reset();
        self.slow.reset();
        self.signal.reset();
    }

    fn lookback(&self) -> usize {
        self.slow.lookback() + self.signal.lookback()
    }
}

/// Percentage price oscillator (TA-Lib `PPO` with TA-Lib 0.8.1's default EMA type):
/// `((fast − slow) / slow) · 100` of two EMAs both seeded at bar 0; 0 when `|slow| < 1e-14`.
/// Lookback `max(fast, slow) − 1`.
#[derive(Clone, Debug)]
pub struct Ppo {
    fast: Ema,
    slow: Ema,
}

impl Ppo {
    /// PPO with the given periods (swapped when slow < fast).
    pub fn new(fast: usize, slow: usize) -> Self {
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Self {
            fast: Ema::new(fast),
            slow: Ema::new(slow),
        }
    }
}

impl Indicator for Ppo {
    type Input = f64;
    type Output = f64;

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let f = self.fast.update(x);
        let s = self.slow.update(x)?;
        let f = f?;
        Some(if s.abs() < 1e-14 {
            0.0
        } else {
            ((f - s) / s) * 100.0
        })
    }

    fn reset(&mut self) {
        self.fast.reset();
        self.slow.reset();
    }

    fn lookback(&self) -> usize {
        self.slow.lookback()
    }
}

/// The highest high and lowest low of the last `period` bars (O(period) per bar).
#[derive(Clone, Debug)]
pub(crate) struct Extremes {
    highs: Ring,
    lows: Ring,
}

impl Extremes {
    pub(crate) fn new(period: usize) -> Self {
        Self {
            highs: Ring::new(period),
            lows: Ring::new(period),
        }
    }

    #[inline]
    pub(crate) fn update(&mut self, high: f64, low: f64) -> Option<(f64, f64)> {
        self.highs.push(high);
        self.lows.push(low);
        if !self.highs.is_full() {
            return None;
        }
        let hh = self
            .highs
            .iter_oldest_first()
            .fold(f64::NEG_INFINITY, f64::max);
        let ll = self.lows.iter_oldest_first().fold(f64::INFINITY, f64::min);
        Some((hh, ll))
    }

    pub(crate) fn clear(&mut self) {
        self.highs.clear();
        self.lows.clear();
    }
}

/// Williams %R (TA-Lib `WILLR`, 0.8.1 form): `−100 · ((HH − C) / (HH − LL))` over `period`
/// bars, 0 when the range is (scaled) zero. Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct WillR {
    period: usize,
    ext: Extremes,
}

impl WillR {
    /// %R over `period` bars (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            ext: Extremes::new(period),
        }
    }
}

impl Indicator for WillR {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let (hh, ll) = self.ext.update(b.high, b.low)?;
        let range = hh - ll;
        Some(if scaled_zero(range, hh, ll) {
            0.0
        } else {
            -100.0 * ((hh - b.close) / range)
        })
    }

    fn reset(&mut self) {
        self.ext.clear();
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Commodity Channel Index (TA-Lib `CCI`, 0.8.1 guards): typical price `(H + L + C) / 3` in a
/// circular buffer whose slot is `bar mod period`; mean and mean deviation summed in slot
/// order; `(tp − mean) / (0.015 · (md / period))`, 0 when the numerator is (scaled) zero or
/// the deviation is zero. O(period) per bar. Lookback `period − 1`.
#[derive(Clone, Debug)]
pub struct Cci {
    period: usize,
    slots: Vec<f64>,
    seen: usize,
}

impl Cci {
    /// CCI over `period` bars (at least 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            slots: vec![0.0; period],
            seen: 0,
        }
    }
}

impl Indicator for Cci {
    type Input = Bar;
    type Output = f64;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<f64> {
        let p = self.period;
        let tp = (b.high + b.low + b.close) / 3.0;
        self.slots[self.seen % p] = tp;
        self.seen += 1;
        if self.seen < p {
            return None;
        }
        let mut mean = 0.0;
        for &v in &self.slots {
            mean += v;
        }
        mean /= p as f64;
        let mut md = 0.0;
        for &v in &self.slots {
            md += (v - mean).abs();
        }
        let num = tp - mean;
        Some(if scaled_zero(num, tp, mean) || md == 0.0 {
            0.0
        } else {
            num / (0.015 * (md / p as f64))
        })
    }

    fn reset(&mut self) {
        self.seen = 0;
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// A %K and %D pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KD {
    /// %K.
    pub k: f64,
    /// %D.
    pub d: f64,
}

/// Raw stochastic %K, TA-Lib 0.8.1 form: `100 · ((C − LL) / (HH − LL))`, 0 when the range is
/// (scaled) zero.
#[derive(Clone, Debug)]
struct RawK(Extremes);

impl RawK {
    #[inline]
    fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let (hh, ll) = self.0.update(high, low)?;
        let range = hh - ll;
        Some(if scaled_zero(range, hh, ll) {
            0.0
        } else {
            100.0 * ((close - ll) / range)
        })
    }
}

/// Fast stochastic (TA-Lib `STOCHF` with SMA smoothing): raw %K over `k` bars, %D its SMA over
/// `d`. Lookback `(k − 1) + (d − 1)`.
#[derive(Clone, Debug)]
pub struct StochF {
    k: usize,
    raw: RawK,
    d: Sma,
}

impl StochF {
    /// Fast stochastic with `k` and `d` periods (each at least 1).
    pub fn new(k: usize, d: usize) -> Self {
        let k = k.max(1);
        Self {
            k,
            raw: RawK(Extremes::new(k)),
            d: Sma::new(d),
        }
    }

    #[inline]
    fn step(&mut self, high: f64, low: f64, close: f64) -> Option<KD> {
        let k = self.raw.update(high, low, close)?;
        let d = self.d.update(k)?;
        Some(KD { k, d })
    }
}

impl Indicator for StochF {
    type Input = Bar;
    type Output = KD;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<KD> {
        self.step(b.high, b.low, b.close)
    }

    fn reset(&mut self) {
        self.raw.0.clear();
        self.d.reset();
    }

    fn lookback(&self) -> usize {
        (self.k - 1) + self.d.lookback()
    }
}

/// Slow stochastic (TA-Lib `STOCH` with SMA smoothing): slow %K is the SMA of raw %K over
/// `slow_k`, slow %D the SMA of slow %K over `slow_d`. Lookback `(k − 1) + (slow_k − 1) +
/// (slow_d − 1)`.
#[derive(Clone, Debug)]
pub struct Stoch {
    k: usize,
    raw: RawK,
    slow_k: Sma,
    slow_d: Sma,
}

impl Stoch {
    /// Slow stochastic with the given periods (each at least 1).
    pub fn new(k: usize, slow_k: usize, slow_d: usize) -> Self {
        let k = k.max(1);
        Self {
            k,
            raw: RawK(Extremes::new(k)),
            slow_k: Sma::new(slow_k),
            slow_d: Sma::new(slow_d),
        }
    }
}

impl Indicator for Stoch {
    type Input = Bar;
    type Output = KD;

    #[inline]
    fn update(&mut self, b: Bar) -> Option<KD> {
        let raw = self.raw.update(b.high, b.low, b.close)?;
        let k = self.slow_k.update(raw)?;
        let d = self.slow_d.update(k)?;
        Some(KD { k, d })
    }

    fn reset(&mut self) {
        self.raw.0.clear();
        self.slow_k.reset();
        self.slow_d.reset();
    }

    fn lookback(&self) -> usize {
        (self.k - 1) + self.slow_k.lookback() + self.slow_d.lookback()
    }
}

/// Stochastic RSI (TA-Lib `STOCHRSI` with SMA smoothing): the fast stochastic of the RSI
/// series, with high = low = close = RSI. Lookback `period + (k − 1) + (d − 1)`.
#[derive(Clone, Debug)]
pub struct StochRsi {
    rsi: Rsi,
    stoch: StochF,
}

impl StochRsi {
    /// StochRSI over an RSI of `period`, with `k` and `d` periods.
    pub fn new(period: usize, k: usize, d: usize) -> Self {
        Self {
            rsi: Rsi::new(period),
            stoch: StochF::new(k, d),
        }
    }
}

impl Indicator for StochRsi {
    type Input = f64;
    type Output = KD;

    #[inline]
    fn update(&mut self, x: f64) -> Option<KD> {
        let r = self.rsi.update(x)?;
        self.stoch.step(r, r, r)
    }

    fn reset(&mut self) {
        self.rsi.reset();
        self.stoch.reset();
    }

    fn lookback(&self) -> usize {
        self.rsi.lookback() + self.stoch.lookback()
    }
}
