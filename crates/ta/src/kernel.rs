//! Steady-state steps of single-series indicators, so batch runs can take them out of
//! [`Indicator::update`]'s per-bar warm-up tests — one indicator per loop
//! ([`extend_steady`]) or two in one loop ([`batch_pair`]), where the processor overlaps
//! their recursions.
//!
//! An EMA or an RSI is bound by its own recursion: each bar's value waits for the previous
//! one through three dependent operations (about nine cycles), in the order TA-Lib 0.8.1
//! rounds them, which cannot change without losing exactness. Two such recursions in one loop
//! run side by side, so a pair costs little more than either alone.

use crate::Indicator;

/// A single-series indicator whose steady state (after the warm-up) can be stepped without
/// [`Indicator::update`]'s tests, giving the same bits.
pub trait Steady: Indicator<Input = f64, Output = f64> {
    /// Everything one step reads and writes, constants included (kept in registers).
    type State: Copy;
    /// The state once the warm-up is over; `None` before.
    fn steady_state(&self) -> Option<Self::State>;
    /// One input in the steady state: the output [`Indicator::update`] would give.
    fn step(state: &mut Self::State, x: f64) -> f64;
    /// Writes a stepped state back, so streaming continues from it.
    fn set_steady_state(&mut self, state: Self::State);
}

/// Appends one output per input to `out` (`NaN` during the warm-up): `update()` until the
/// indicator is steady, then [`Steady::step`] in a tight loop. Continues from the indicator's
/// state and leaves it where streaming would.
pub fn extend_steady<K: Steady>(ind: &mut K, input: &[f64], out: &mut Vec<f64>) {
    out.reserve(input.len());
    let mut i = 0;
    while i < input.len() && ind.steady_state().is_none() {
        out.push(ind.update(input[i]).unwrap_or(f64::NAN));
        i += 1;
    }
    let Some(mut s) = ind.steady_state() else {
        return;
    };
    out.extend(input[i..].iter().map(|&x| K::step(&mut s, x)));
    ind.set_steady_state(s);
}

/// Runs two single-series indicators over the same input in one loop, into `out_a` and
/// `out_b` (one output per input, `NaN` during each one's warm-up; a buffer already the right
/// length is overwritten in place). The same bits as running each alone.
pub fn batch_pair<A: Steady, B: Steady>(
    a: &mut A,
    b: &mut B,
    input: &[f64],
    out_a: &mut Vec<f64>,
    out_b: &mut Vec<f64>,
) {
    let n = input.len();
    let [oa, ob] = crate::rows([out_a, out_b], Some(0), n);
    let wa = warm(a, input, oa);
    let wb = warm(b, input, ob);
    // The one that settled first runs alone up to where the other settled (to the end when
    // the other never settles: its warm-up took every input).
    let start = wa.max(wb);
    let (mut sa, mut sb) = (a.steady_state(), b.steady_state());
    if let Some(s) = &mut sa {
        for (o, &x) in oa[wa..start].iter_mut().zip(&input[wa..start]) {
            *o = A::step(s, x);
        }
    }
    if let Some(s) = &mut sb {
        for (o, &x) in ob[wb..start].iter_mut().zip(&input[wb..start]) {
            *o = B::step(s, x);
        }
    }
    if let (Some(sa), Some(sb)) = (&mut sa, &mut sb) {
        let rows = input[start..]
            .iter()
            .zip(&mut oa[start..])
            .zip(&mut ob[start..]);
        for ((&x, oa), ob) in rows {
            *oa = A::step(sa, x);
            *ob = B::step(sb, x);
        }
    }
    if let Some(s) = sa {
        a.set_steady_state(s);
    }
    if let Some(s) = sb {
        b.set_steady_state(s);
    }
}

/// `update()` into `out` until `ind` is steady; how many inputs that took.
pub(crate) fn warm<K: Steady>(ind: &mut K, input: &[f64], out: &mut [f64]) -> usize {
    let mut i = 0;
    while i < input.len() && ind.steady_state().is_none() {
        out[i] = ind.update(input[i]).unwrap_or(f64::NAN);
        i += 1;
    }
    i
}
