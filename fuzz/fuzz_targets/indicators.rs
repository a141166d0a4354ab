//! Every indicator, pattern and detector on arbitrary numbers: nothing may panic.
//! `cargo fuzz run indicators --sanitizer none` (stable toolchain).
#![no_main]

use atalaya_ta::anomaly::{AnomalyConfig, AnomalyDetector};
use atalaya_ta::chart::{ChartConfig, ChartDetector};
use atalaya_ta::set::{IndicatorSet, parse_set};
use atalaya_ta::Bar;
use libfuzzer_sys::fuzz_target;

const ALL: &str = "sma:3,ema:3,wma:3,dema:3,tema:3,trima:4,kama:3,t3:2,rsi:3,cmo:3,mom:2,roc:2,macd:2:4:2,ppo:2:4,willr:3,cci:3,stoch:3:2:2,stochf:3:2,stochrsi:3:3:2,trange,atr:3,natr:3,stddev:3,bbands:3:2,obv,ad,adosc:2:4,mfi:3,plus_di:3,minus_di:3,dx:3,adx:3,adxr:3,aroon:3,aroonosc:3,sar,linreg_slope:3,donchian:3,keltner:3:3:2,supertrend:3:3,ichimoku:2:3:4:2,vwap,rolling_vwap:3,cdldoji,cdlhammer,cdlengulfing,cdlharami,cdlmorningstar,cdl3whitesoldiers,cdl3blackcrows,cdlkicking,cdlabandonedbaby,cdl3inside,cdl3outside";

fuzz_target!(|data: &[u8]| {
    let nums: Vec<f64> = data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
    let Ok(specs) = parse_set(ALL) else { return };
    let mut set = IndicatorSet::new(specs);
    let mut row = vec![0.0; set.columns().len()];
    let mut anomalies = AnomalyDetector::new(AnomalyConfig { window: 5, vol_short: 3, vol_long: 6, forest: true, forest_refit: 7, ..AnomalyConfig::default() });
    let mut chart = ChartDetector::new(ChartConfig::default());
    let (mut a, mut c) = (Vec::new(), Vec::new());
    for (i, b) in nums.chunks_exact(5).enumerate() {
        let bar = Bar::new(b[0], b[1], b[2], b[3], b[4]);
        set.update(i as i64, &bar, &mut row);
        anomalies.update(&bar, &mut a);
        chart.update(&bar, &mut c);
    }
});
