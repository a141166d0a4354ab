//! Technical indicators for Atalaya, exact to TA-Lib.
//!
//! Every indicator is a state machine: [`Indicator::update`] takes one input (a value or a
//! [`Bar`]), costs O(1) (a few are O(period), as noted), allocates nothing after construction,
//! and returns `None` until the indicator has seen enough input — exactly the positions where
//! TA-Lib writes `NaN`. [`batch`] and [`batch_f64`] run the same state machine over a slice
//! into a reusable output buffer, so streaming and batch agree to the last bit by
//! construction.
//!
//! The arithmetic follows TA-Lib as users install it today (PyPI `ta-lib==0.8.2`, which
//! bundles C TA-Lib 0.8.1), including its seeding rules, its operation order and its fused
//! multiply-adds where 0.8.1 uses them (`f64::mul_add`), so outputs match to 1e-9 on every
//! bar, warm-up included. `docs/TA.md` lists each indicator's definition and guards, and the
//! exactness test compares against TA-Lib itself.
//!
//! The indicators of the speed goal also have batch kernels over columns (`Ema::batch_into`,
//! `Rsi::batch_into`, `Macd::batch_columns`, `Bbands::batch_columns`, `Atr::batch_hlc`): tight
//! loops with the same arithmetic, checked against streaming to the bit by a property test.
//!
//! This crate is synchronous and depends on nothing: no tokio, no clock.
//!
//! ```
//! use atalaya_ta::{Indicator, batch_f64, ma::Ema};
//!
//! let closes = [1.0, 2.0, 3.0, 4.0, 5.0];
//! let mut out = Vec::new();
//! batch_f64(&mut Ema::new(3), &closes, &mut out);
//! assert!(out[1].is_nan());
//! assert_eq!(out[2], 2.0); // the seed is the mean of the first three
//! assert_eq!(out[3], 3.0);
//! ```

/// Defines a batch kernel compiled twice — for fused multiply-add hardware (x86-64 since
/// Haswell and Piledriver; FMA implies AVX, so loops without a carried dependency also get
/// four-lane vectors) and portably — and picks the first when this CPU has FMA.
///
/// TA-Lib 0.8.1 rounds some steps once (`fma`), so [`f64::mul_add`] is needed for exactness;
/// on the portable x86-64 target it is a call into libm per step, which also spills every
/// live register around it. Compiled with the feature, the same code becomes `vfmadd`
/// instructions: the same bits either way (an FMA is correctly rounded in hardware and in
/// libm alike), without the calls.
macro_rules! fma_kernel {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn kernel($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "fma")]
                fn with_fma($($arg: $ty),*) -> $ret {
                    kernel($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: a `target_feature` function's one requirement is that the CPU
                    // has the feature, which was checked on the line above.
                    #[allow(unsafe_code)]
                    return unsafe { with_fma($($arg),*) };
                }
            }
            kernel($($arg),*)
        }
    };
}
pub(crate) use fma_kernel;

pub mod anomaly;
pub mod candles;
pub mod chart;
pub mod custom;
pub mod kernel;
pub mod ma;
pub mod momentum;
pub mod reference;
pub mod set;
pub mod trend;
pub mod volatility;
pub mod volume;

/// One OHLCV bar, the input of range- and volume-based indicators.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bar {
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: f64,
}

impl Bar {
    /// A bar from its five values.
    pub const fn new(open: f64, high: f64, low: f64, close: f64, volume: f64) -> Self {
        Self {
            open,
            high,
            low,
            close,
            volume,
        }
    }
}

/// A streaming indicator.
pub trait Indicator {
    /// What one update takes (`f64` or [`Bar`]).
    type Input: Copy;
    /// What one update yields.
    type Output: Copy;
    /// Feeds one input; `None` during the warm-up.
    fn update(&mut self, input: Self::Input) -> Option<Self::Output>;
    /// Forgets everything, as if newly built.
    fn reset(&mut self);
    /// How many inputs are consumed before the first output (TA-Lib's lookback).
    fn lookback(&self) -> usize;

    /// [`update`](Self::update) with `input(x)` of each of `xs` in turn, each output (NaN
    /// while warming up) written to `out[i * stride]`, as far as `out` reaches. A block of
    /// rows is filled this way; an indicator whose state fits in registers over many inputs
    /// overrides it with its own loop (the same arithmetic in the same order).
    fn update_strided<T>(
        &mut self,
        xs: &[T],
        input: impl Fn(&T) -> Self::Input,
        out: &mut [f64],
        stride: usize,
    ) where
        Self: Sized + Indicator<Output = f64>,
    {
        for (x, o) in xs.iter().zip(out.iter_mut().step_by(stride.max(1))) {
            *o = self.update(input(x)).unwrap_or(f64::NAN);
        }
    }
}

/// Runs `ind` over `input`, writing one output per input (`None` during the warm-up) into
/// `out`, which is cleared first and keeps its capacity.
pub fn batch<I: Indicator>(ind: &mut I, input: &[I::Input], out: &mut Vec<Option<I::Output>>) {
    out.clear();
    out.reserve(input.len());
    out.extend(input.iter().map(|&x| ind.update(x)));
}

/// [`batch`] for single-valued indicators, with `NaN` during the warm-up (TA-Lib's layout).
pub fn batch_f64<I: Indicator<Output = f64>>(ind: &mut I, input: &[I::Input], out: &mut Vec<f64>) {
    out.clear();
    out.reserve(input.len());
    out.extend(input.iter().map(|&x| ind.update(x).unwrap_or(f64::NAN)));
}

/// Sizes columns for `n` new rows and returns those rows: the rows after `from` (the
/// start of a batch), or after each column's own rows when `from` is `None` (an append).
///
/// A column already `from + n` long keeps its memory untouched (a batch into reused buffers
/// writes each value once); new room is NaN. The kernels then write through plain slices:
/// pushing to three `Vec`s per row makes the compiler reload each one's length on every row
/// and keeps a call (growing) in the loop, which costs the loop its registers.
pub(crate) fn rows<'a, const N: usize>(
    cols: [&'a mut Vec<f64>; N],
    from: Option<usize>,
    n: usize,
) -> [&'a mut [f64]; N] {
    cols.map(|c: &'a mut Vec<f64>| {
        let start = from.unwrap_or(c.len());
        c.truncate(start + n);
        c.resize(start + n, f64::NAN);
        &mut c[start..]
    })
}

/// A fixed-capacity ring of the last `cap` values.
#[derive(Clone, Debug)]
pub(crate) struct Ring {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            buf: vec![0.0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }

    /// Pushes `x`, returning the value it displaced once full.
    #[inline]
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        let cap = self.buf.len();
        let full = self.len == cap;
        // One bounds check for the read and the write; a caller that ignores the displaced
        // value pays for neither.
        let old = std::mem::replace(&mut self.buf[self.head], x);
        self.head += 1;
        if self.head == cap {
            self.head = 0;
        }
        if !full {
            self.len += 1;
        }
        full.then_some(old)
    }

    /// The oldest value held (the next one a push displaces once full).
    #[inline]
    pub(crate) fn oldest(&self) -> f64 {
        let i = if self.len == self.buf.len() {
            self.head
        } else {
            0
        };
        self.buf[i]
    }

    /// The value pushed `back` updates ago (0 = the newest).
    #[inline]
    pub(crate) fn get(&self, back: usize) -> f64 {
        let cap = self.buf.len();
        debug_assert!(back < cap);
        // No division on the hot path: `head + cap − 1 − back` lies in [0, 2·cap).
        let mut i = self.head + cap - 1 - back.min(cap - 1);
        if i >= cap {
            i -= cap;
        }
        self.buf[i]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Values oldest first.
    pub(crate) fn iter_oldest_first(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        (0..self.len).rev().map(move |b| self.get(b))
    }
}

/// TA-Lib 0.8.1's scale-free zero test: `|v| <= 1e-14 * (|a| + |b|)`.
#[inline]
pub(crate) fn scaled_zero(v: f64, a: f64, b: f64) -> bool {
    v.abs() <= 1e-14 * (a.abs() + b.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_values() {
        let mut r = Ring::new(3);
        assert_eq!(r.push(1.0), None);
        r.push(2.0);
        r.push(3.0);
        assert_eq!(r.push(4.0), Some(1.0));
        assert_eq!((r.get(0), r.get(2)), (4.0, 2.0));
        assert_eq!(
            r.iter_oldest_first().collect::<Vec<_>>(),
            vec![2.0, 3.0, 4.0]
        );
    }
}
