//! The state of one (instrument, timeframe) series: the bar being built, the decision's
//! indicators, the anomaly detector, the indicator set, and the row of values rules read.

use atalaya_model::{Candle, OpportunityKind, UnixNanos};
use atalaya_ta::Indicator;
use atalaya_ta::anomaly::{AnomalyDetector, AnomalyKind};
use atalaya_ta::ma::{Ema, Sma};
use atalaya_ta::momentum::{Roc, Rsi};
use atalaya_ta::set::{IndicatorSet, Spec};
use atalaya_ta::volatility::{Atr, Bbands};

use crate::config::EngineConfig;
use crate::decision::Snapshot;
use crate::rules::{BAR_FIELDS, DECISION_FIELDS, FIRST_INDICATOR};

/// A bar under construction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Building {
    pub(super) open_time: UnixNanos,
    pub(super) ohlc: [f64; 4],
    pub(super) volume: f64,
    pub(super) trades: u32,
}

/// Indicator state of one (instrument, timeframe) series.
#[derive(Debug)]
pub(super) struct Series {
    pub(super) building: Option<Building>,
    /// End of the last bar emitted: anything before it is late.
    pub(super) closed_until: UnixNanos,
    /// Fed by a venue's own bars: trades no longer build this series (the venue's bars are
    /// authoritative and backfilled; building from trades too would count them twice).
    pub(super) from_candles: bool,
    ema_fast: Ema,
    ema_slow: Ema,
    rsi: Rsi,
    atr: Atr,
    bollinger: Bbands,
    roc: Roc,
    avg_volume: Sma,
    avg_atr: Sma,
    pub(super) last_kind: OpportunityKind,
    pub(super) anomaly: Option<AnomalyDetector>,
    /// The configured and rule-named indicators.
    pub(super) set: Option<IndicatorSet>,
    /// The latest bar fields, decision fields, anomalies and indicator columns, laid out as
    /// [`rules`](crate::rules) reads them.
    pub(super) values: Vec<f64>,
    /// The rules' previous-bar values.
    pub(super) rule_state: Vec<f64>,
}

impl Series {
    pub(super) fn new(cfg: &EngineConfig, specs: &[Spec], rule_state: usize) -> Self {
        let i = &cfg.indicators;
        let set = (!specs.is_empty()).then(|| IndicatorSet::new(specs.to_vec()));
        let n = set.as_ref().map_or(0, |s| s.columns().len());
        Self {
            building: None,
            closed_until: UnixNanos::MIN,
            from_candles: false,
            ema_fast: Ema::new(i.ema_fast),
            ema_slow: Ema::new(i.ema_slow),
            rsi: Rsi::new(i.rsi),
            atr: Atr::new(i.atr),
            bollinger: Bbands::new(i.bollinger, i.bollinger_k),
            roc: Roc::new(i.momentum),
            avg_volume: Sma::new(i.baseline),
            avg_atr: Sma::new(i.baseline),
            last_kind: OpportunityKind::Hold,
            anomaly: cfg
                .anomaly
                .enabled
                .then(|| AnomalyDetector::new(cfg.anomaly.clone())),
            set,
            values: vec![f64::NAN; FIRST_INDICATOR + n],
            rule_state: vec![f64::NAN; rule_state],
        }
    }

    /// Updates the indicator set and writes the bar's row of values (laid out as `values`).
    #[inline]
    pub(super) fn update_values(&mut self, c: &Candle, bar: &atalaya_ta::Bar, row: &mut [f64]) {
        fill_row(c, row);
        if let Some(set) = &mut self.set {
            set.update(c.open_time(), bar, &mut row[FIRST_INDICATOR..]);
        }
    }

    /// Updates the decision's indicators with a closed bar; returns the snapshot once all
    /// are ready.
    pub(super) fn update(&mut self, c: &Candle, bar: atalaya_ta::Bar) -> Option<Snapshot> {
        let (h, l, close) = (c.high(), c.low(), c.close());
        let ema_fast = self.ema_fast.update(close);
        let ema_slow = self.ema_slow.update(close);
        let rsi = self.rsi.update(close);
        let atr = self.atr.update(bar);
        let bands = self.bollinger.update(close);
        let roc = self.roc.update(close);
        let avg_volume = self.avg_volume.update(c.volume());
        let avg_atr = atr.and_then(|a| self.avg_atr.update(a));
        let (ema_fast, ema_slow, rsi, atr, bands) = (ema_fast?, ema_slow?, rsi?, atr?, bands?);
        let (roc, avg_volume, avg_atr) = (roc? / 100.0, avg_volume?, avg_atr?);
        Some(Snapshot {
            open: c.open(),
            high: h,
            low: l,
            close,
            ema_fast,
            ema_slow,
            rsi,
            rsi_flat: self.rsi.is_flat(),
            atr,
            bands,
            roc,
            volume_ratio: if avg_volume > 0.0 {
                c.volume() / avg_volume
            } else {
                0.0
            },
            atr_ratio: if avg_atr > 0.0 { atr / avg_atr } else { 1.0 },
        })
    }
}

/// Writes a bar's fields into its row of values and marks the decision and anomaly slots as
/// not yet known.
#[inline]
pub(super) fn fill_row(c: &Candle, row: &mut [f64]) {
    row[..BAR_FIELDS.len()].copy_from_slice(&bar_fields(c));
    row[BAR_FIELDS.len()..FIRST_INDICATOR].fill(f64::NAN);
}

/// A bar's fields in the order of [`BAR_FIELDS`].
#[inline]
pub(super) fn bar_fields(c: &Candle) -> [f64; 5] {
    [c.open(), c.high(), c.low(), c.close(), c.volume()]
}

/// A bar as the indicators read it.
#[inline]
pub(super) fn bar_of(c: &Candle) -> atalaya_ta::Bar {
    let [open, high, low, close, volume] = bar_fields(c);
    atalaya_ta::Bar::new(open, high, low, close, volume)
}

/// The slot of an anomaly kind among the rules' values.
pub(super) fn anomaly_slot(kind: AnomalyKind) -> usize {
    let i = match kind {
        AnomalyKind::Return => 0,
        AnomalyKind::VolumeSpike => 1,
        AnomalyKind::Gap => 2,
        AnomalyKind::VolatilityRegime => 3,
        AnomalyKind::Multivariate => 4,
    };
    BAR_FIELDS.len() + DECISION_FIELDS.len() + i
}
