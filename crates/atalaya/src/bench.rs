//! `atalaya bench ta FILE`: how fast the indicator engine is on the user's own data.

use std::path::Path;
use std::time::Instant;

use atalaya_sources::replay::{self, LoadOptions};
use atalaya_ta::{Bar, reference};

/// Times the batch and the streaming paths; returns a readable report.
pub fn ta(file: &Path, runs: usize) -> anyhow::Result<String> {
    let instrument = replay::infer_instrument(file, "file")
        .or_else(|| atalaya_model::InstrumentId::new("file", "BASE", "QUOTE").ok());
    let series = replay::load(
        file,
        &LoadOptions {
            instrument,
            venue: Some("file".into()),
            ..LoadOptions::default()
        },
    )?;
    let bars: Vec<Bar> = series
        .candles
        .iter()
        .map(|c| Bar::new(c.open(), c.high(), c.low(), c.close(), c.volume()))
        .collect();
    let input = reference::Inputs::from_bars(&bars);
    let n = bars.len();
    if n == 0 {
        anyhow::bail!("{} has no valid bars", file.display());
    }
    let mut out = reference::Outputs::default();
    let time = |f: &mut dyn FnMut() -> f64| {
        f();
        let mut t: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let t0 = Instant::now();
                std::hint::black_box(f());
                t0.elapsed().as_secs_f64()
            })
            .collect();
        t.sort_by(f64::total_cmp);
        (t[t.len() / 2], t[0])
    };
    let (b_med, b_min) = time(&mut || {
        reference::run_batch(&input, &mut out);
        out.rsi[n - 1] + out.ema[n - 1]
    });
    let (s_med, s_min) = time(&mut || reference::run_streaming(&bars));
    Ok(format!(
        "{} bars from {}\n\
         set: RSI(14), EMA(20), MACD(12,26,9), Bollinger(20,2), ATR(14); median (min) of {runs} runs\n\
         batch:     {:>8.2} ms ({:.2} ms)  {:>6.1} M bars/s\n\
         streaming: {:>8.2} ms ({:.2} ms)  {:>6.1} M bars/s  {:.1} ns per bar for all five\n",
        n,
        file.display(),
        b_med * 1e3,
        b_min * 1e3,
        n as f64 / b_med / 1e6,
        s_med * 1e3,
        s_min * 1e3,
        n as f64 / s_med / 1e6,
        s_med * 1e9 / n as f64
    ))
}
