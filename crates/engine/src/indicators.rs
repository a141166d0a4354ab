//! The first streaming indicators: EMA, Wilder RSI, ATR, Bollinger Bands and the small
//! rolling helpers the decision needs.
//!
//! Each is a state machine: `update` is O(1), allocates nothing, and returns `None` until
//! the indicator has seen enough input. Seeding follows TA-Lib's defaults (the EMA and the
//! Wilder averages start from a simple mean of the first `period` inputs), so the values
//! agree with what charting tools show; the technical-analysis issue extends this set and
//! checks it bar by bar against TA-Lib.

/// Exponential moving average with `k = 2 / (period + 1)`, seeded with the simple mean of
/// the first `period` values.
#[derive(Clone, Debug)]
pub struct Ema {
    period: usize,
    k: f64,
    seen: usize,
    sum: f64,
    value: f64,
}

impl Ema {
    /// A new EMA; `period` must be at least 1.
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            period,
            k: 2.0 / (period as f64 + 1.0),
            seen: 0,
            sum: 0.0,
            value: f64::NAN,
        }
    }

    /// Feeds one value.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if self.seen < self.period {
            self.seen += 1;
            self.sum += x;
            if self.seen < self.period {
                return None;
            }
            self.value = self.sum / self.period as f64;
        } else {
            self.value += self.k * (x - self.value);
        }
        Some(self.value)
    }

    /// The current value, once ready.
    pub fn value(&self) -> Option<f64> {
        self.is_ready().then_some(self.value)
    }

    /// Whether `period` values have been seen.
    pub fn is_ready(&self) -> bool {
        self.seen >= self.period
    }
}

/// Wilder's smoothing: seeded with the mean of the first `period` inputs, then
/// `avg = (avg * (period - 1) + x) / period`.
#[derive(Clone, Debug)]
struct Wilder {
    period: usize,
    seen: usize,
    value: f64,
}

impl Wilder {
    fn new(period: usize) -> Self {
        Self {
            period: period.max(1),
            seen: 0,
            value: 0.0,
        }
    }

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let n = self.period as f64;
        if self.seen < self.period {
            self.seen += 1;
            self.value += x;
            if self.seen < self.period {
                return None;
            }
            self.value /= n;
        } else {
            self.value = (self.value * (n - 1.0) + x) / n;
        }
        Some(self.value)
    }
}

/// Wilder's Relative Strength Index over closes, in `[0, 100]`.
///
/// The first value appears after `period + 1` closes. When gains and losses are both zero
/// (a flat window) it reports 0, as TA-Lib does; [`Rsi::is_flat`] tells that case apart.
#[derive(Clone, Debug)]
pub struct Rsi {
    prev: Option<f64>,
    gain: Wilder,
    loss: Wilder,
    flat: bool,
}

impl Rsi {
    /// A new RSI; `period` must be at least 1.
    pub fn new(period: usize) -> Self {
        Self {
            prev: None,
            gain: Wilder::new(period),
            loss: Wilder::new(period),
            flat: false,
        }
    }

    /// Feeds one close.
    #[inline]
    pub fn update(&mut self, close: f64) -> Option<f64> {
        let prev = self.prev.replace(close)?;
        let d = close - prev;
        let g = self.gain.update(d.max(0.0));
        let l = self.loss.update((-d).max(0.0));
        let (g, l) = (g?, l?);
        let total = g + l;
        self.flat = total == 0.0;
        Some(if self.flat { 0.0 } else { 100.0 * g / total })
    }

    /// Whether the last window had neither gains nor losses.
    pub fn is_flat(&self) -> bool {
        self.flat
    }
}

/// Average True Range with Wilder smoothing. The first true range needs a previous close,
/// so the first value appears on the `period + 1`-th bar (as in TA-Lib).
#[derive(Clone, Debug)]
pub struct Atr {
    prev_close: Option<f64>,
    avg: Wilder,
    value: f64,
}

impl Atr {
    /// A new ATR; `period` must be at least 1.
    pub fn new(period: usize) -> Self {
        Self {
            prev_close: None,
            avg: Wilder::new(period),
            value: f64::NAN,
        }
    }

    /// Feeds one bar.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let prev = self.prev_close.replace(close)?;
        let tr = (high - low)
            .max((high - prev).abs())
            .max((low - prev).abs());
        let v = self.avg.update(tr)?;
        self.value = v;
        Some(v)
    }

    /// The current value, once ready.
    pub fn value(&self) -> Option<f64> {
        (!self.value.is_nan()).then_some(self.value)
    }
}

/// A fixed window of the last `period` values with their running sum and sum of squares.
///
/// The sums are recomputed exactly from the window every `4 × period` updates, which keeps
/// floating-point drift bounded on streams of any length.
#[derive(Clone, Debug)]
pub struct Window {
    buf: Vec<f64>,
    head: usize,
    len: usize,
    sum: f64,
    sum_sq: f64,
    since_refresh: usize,
}

impl Window {
    /// A window of `period` values (at least 1); the only allocation is here.
    pub fn new(period: usize) -> Self {
        Self {
            buf: vec![0.0; period.max(1)],
            head: 0,
            len: 0,
            sum: 0.0,
            sum_sq: 0.0,
            since_refresh: 0,
        }
    }

    /// Pushes a value, evicting the oldest once full.
    #[inline]
    pub fn push(&mut self, x: f64) {
        let cap = self.buf.len();
        if self.len == cap {
            let old = self.buf[self.head];
            self.sum -= old;
            self.sum_sq -= old * old;
        } else {
            self.len += 1;
        }
        self.buf[self.head] = x;
        self.head += 1;
        if self.head == cap {
            self.head = 0;
        }
        self.sum += x;
        self.sum_sq += x * x;
        self.since_refresh += 1;
        if self.since_refresh >= 4 * cap {
            self.since_refresh = 0;
            self.sum = self.buf[..self.len].iter().sum();
            self.sum_sq = self.buf[..self.len].iter().map(|v| v * v).sum();
        }
    }

    /// Whether the window is full.
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Mean of the values held.
    pub fn mean(&self) -> f64 {
        if self.len == 0 {
            f64::NAN
        } else {
            self.sum / self.len as f64
        }
    }

    /// Population standard deviation of the values held.
    pub fn std_dev(&self) -> f64 {
        let n = self.len as f64;
        let mean = self.sum / n;
        (self.sum_sq / n - mean * mean).max(0.0).sqrt()
    }

    /// The oldest value held.
    pub fn oldest(&self) -> f64 {
        if self.len < self.buf.len() {
            self.buf[0]
        } else {
            self.buf[self.head]
        }
    }
}

/// Bollinger Bands: a simple moving average of closes with bands `k` population standard
/// deviations away.
#[derive(Clone, Debug)]
pub struct Bollinger {
    window: Window,
    k: f64,
}

/// One Bollinger reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bands {
    /// Lower band.
    pub lower: f64,
    /// Middle band (the SMA).
    pub middle: f64,
    /// Upper band.
    pub upper: f64,
}

impl Bollinger {
    /// Bands over `period` closes, `k` deviations wide.
    pub fn new(period: usize, k: f64) -> Self {
        Self {
            window: Window::new(period),
            k,
        }
    }

    /// Feeds one close.
    #[inline]
    pub fn update(&mut self, close: f64) -> Option<Bands> {
        self.window.push(close);
        if !self.window.is_full() {
            return None;
        }
        let middle = self.window.mean();
        let w = self.k * self.window.std_dev();
        Some(Bands {
            lower: middle - w,
            middle,
            upper: middle + w,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_seeds_with_sma() {
        let mut e = Ema::new(3);
        assert_eq!(e.update(1.0), None);
        assert_eq!(e.update(2.0), None);
        assert_eq!(e.update(3.0), Some(2.0));
        assert_eq!(e.update(6.0), Some(4.0));
    }

    #[test]
    fn rsi_matches_hand_computation() {
        // period 2: changes +1, -1 -> avg gain 0.5, avg loss 0.5 -> 50; then +2:
        // gain (0.5 + 2) / 2 = 1.25, loss 0.5 / 2 = 0.25 -> 100 * 1.25 / 1.5.
        let mut r = Rsi::new(2);
        assert_eq!(r.update(10.0), None);
        assert_eq!(r.update(11.0), None);
        assert_eq!(r.update(10.0), Some(50.0));
        let v = r.update(12.0).unwrap();
        assert!((v - 100.0 * 1.25 / 1.5).abs() < 1e-12);
        let mut flat = Rsi::new(2);
        for _ in 0..4 {
            flat.update(5.0);
        }
        assert!(flat.is_flat());
    }

    #[test]
    fn atr_uses_true_range_and_wilder() {
        let mut a = Atr::new(2);
        assert_eq!(a.update(11.0, 9.0, 10.0), None);
        assert_eq!(a.update(12.0, 10.0, 11.0), None); // TR 2
        assert_eq!(a.update(15.0, 11.0, 14.0), Some(3.0)); // TR 4, seed (2+4)/2
        assert_eq!(a.update(14.0, 13.0, 13.5), Some(2.0)); // TR 1 -> (3+1)/2
    }

    #[test]
    fn bollinger_on_a_known_window() {
        let mut b = Bollinger::new(4, 2.0);
        for x in [2.0, 4.0, 4.0] {
            assert!(b.update(x).is_none());
        }
        let bands = b.update(6.0).unwrap();
        // mean 4, population variance (4+0+0+4)/4 = 2
        assert!((bands.middle - 4.0).abs() < 1e-12);
        assert!((bands.upper - (4.0 + 2.0 * 2f64.sqrt())).abs() < 1e-12);
    }

    #[test]
    fn window_refresh_keeps_sums_exact() {
        let mut w = Window::new(3);
        for i in 0..1000 {
            w.push(1e6 + f64::from(i) * 0.1);
        }
        let expect = (1e6 + 99.7 + 1e6 + 99.8 + 1e6 + 99.9) / 3.0;
        assert!((w.mean() - expect).abs() < 1e-6);
        assert!((w.oldest() - (1e6 + 99.7)).abs() < 1e-6);
    }
}
