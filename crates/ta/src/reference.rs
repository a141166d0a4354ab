//! The reference set of the speed goals — RSI(14), EMA(20), MACD(12,26,9), Bollinger(20,2) and
//! ATR(14) — run in batch and streaming, so the criterion bench and `atalaya bench ta` measure
//! exactly the same work.

use crate::kernel::batch_pair;
use crate::ma::Ema;
use crate::momentum::{Macd, MacdColumns, Rsi};
use crate::volatility::{Atr, BandColumns, Bbands};
use crate::{Bar, Indicator};

/// The batch run's input: columns, as TA-Lib takes them.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Highs.
    pub high: Vec<f64>,
    /// Lows.
    pub low: Vec<f64>,
    /// Closes.
    pub close: Vec<f64>,
}

impl Inputs {
    /// The columns of `bars`.
    pub fn from_bars(bars: &[Bar]) -> Self {
        Self {
            high: bars.iter().map(|b| b.high).collect(),
            low: bars.iter().map(|b| b.low).collect(),
            close: bars.iter().map(|b| b.close).collect(),
        }
    }
}

/// Reusable output buffers of the batch run, one `f64` column per output (`NaN` during the
/// warm-up, as TA-Lib writes them).
#[derive(Debug, Default)]
pub struct Outputs {
    /// RSI(14).
    pub rsi: Vec<f64>,
    /// EMA(20).
    pub ema: Vec<f64>,
    /// MACD(12,26,9).
    pub macd: MacdColumns,
    /// Bollinger(20,2).
    pub bands: BandColumns,
    /// ATR(14).
    pub atr: Vec<f64>,
}

/// Runs the set in batch over `input`, into `out`: each indicator's batch kernel in turn.
///
/// Tried and dropped: feeding the five kernels a block of 4,096 rows at a time (so each block
/// is read from the L1 cache by all five) was 20% slower than five whole passes.
pub fn run_batch(input: &Inputs, out: &mut Outputs) {
    let c = &input.close;
    // Two recursions in one loop overlap their latencies (see `kernel`).
    batch_pair(
        &mut Rsi::new(14),
        &mut Ema::new(20),
        c,
        &mut out.rsi,
        &mut out.ema,
    );
    Macd::new(12, 26, 9).batch_columns(c, &mut out.macd);
    Bbands::new(20, 2.0).batch_columns(c, &mut out.bands);
    Atr::new(14).batch_hlc(&input.high, &input.low, c, &mut out.atr);
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
