//! The reference set of the speed goals — RSI(14), EMA(20), MACD(12,26,9), Bollinger(20,2) and
//! ATR(14) — run in batch and streaming, so the criterion bench and `atalaya bench ta` measure
//! exactly the same work.

use crate::ma::Ema;
use crate::momentum::{Macd, MacdOut, Rsi};
use crate::volatility::{Atr, Bands, Bbands};
use crate::{Bar, Indicator, batch, batch_f64};

/// Reusable output buffers of the batch run.
#[derive(Debug, Default)]
pub struct Outputs {
    /// RSI(14).
    pub rsi: Vec<f64>,
    /// EMA(20).
    pub ema: Vec<f64>,
    /// MACD(12,26,9).
    pub macd: Vec<Option<MacdOut>>,
    /// Bollinger(20,2).
    pub bands: Vec<Option<Bands>>,
    /// ATR(14).
    pub atr: Vec<f64>,
}

/// Runs the set in batch over `bars` (and their `closes`), into `out`.
pub fn run_batch(bars: &[Bar], closes: &[f64], out: &mut Outputs) {
    batch_f64(&mut Rsi::new(14), closes, &mut out.rsi);
    batch_f64(&mut Ema::new(20), closes, &mut out.ema);
    batch(&mut Macd::new(12, 26, 9), closes, &mut out.macd);
    batch(&mut Bbands::new(20, 2.0), closes, &mut out.bands);
    batch_f64(&mut Atr::new(14), bars, &mut out.atr);
}

/// Updates all five on every bar, as the live pipeline would; returns a checksum so the work
/// cannot be optimised away.
pub fn run_streaming(bars: &[Bar]) -> f64 {
    let (mut r, mut e, mut m, mut b, mut a) = (
        Rsi::new(14),
        Ema::new(20),
        Macd::new(12, 26, 9),
        Bbands::new(20, 2.0),
        Atr::new(14),
    );
    let mut acc = 0.0;
    for bar in bars {
        acc += r.update(bar.close).unwrap_or(0.0);
        acc += e.update(bar.close).unwrap_or(0.0);
        acc += m.update(bar.close).map_or(0.0, |x| x.hist);
        acc += b.update(bar.close).map_or(0.0, |x| x.upper);
        acc += a.update(*bar).unwrap_or(0.0);
    }
    acc
}
