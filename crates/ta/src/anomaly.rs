//! Streaming anomaly detection on bars: robust return and volume z-scores (rolling median and
//! MAD), an EWMA z-score, price gaps measured in ATRs, volatility-regime shifts, and a
//! multivariate isolation-forest score over a feature vector. Each finding carries a severity
//! and an explanation in words.
//!
//! Everything here is deterministic: the isolation forest draws its random choices from a
//! seeded generator, so the same bars give the same anomalies.

use crate::volatility::Atr;
use crate::{Bar, Indicator, Ring};

/// Rolling median and median absolute deviation of the last `period` values, kept in a sorted
/// buffer (O(period) per update: two branch-free binary searches and one shift). The buffer
/// holds each value's [`order_key`], so the searches compare integers.
#[derive(Clone, Debug)]
pub struct RobustZ {
    ring: Ring,
    sorted: Vec<i64>,
    mad: f64,
    since_mad: usize,
}

/// The MAD of a long window moves slowly; it is recomputed every this many updates (and
/// whenever the cached value is zero), which keeps the cost per bar near O(1).
const MAD_REFRESH: usize = 64;

impl RobustZ {
    /// Over the last `period` values (at least 3).
    pub fn new(period: usize) -> Self {
        let period = period.max(3);
        Self {
            ring: Ring::new(period),
            sorted: Vec::with_capacity(period),
            mad: 0.0,
            since_mad: MAD_REFRESH,
        }
    }

    fn median(v: &[i64]) -> f64 {
        let n = v.len();
        if n % 2 == 1 {
            from_key(v[n / 2])
        } else {
            (from_key(v[n / 2 - 1]) + from_key(v[n / 2])) / 2.0
        }
    }

    /// The robust z-score of `x` against the values seen *before* it — `(x − median) /
    /// (1.4826 · MAD)`, the median exact and the MAD refreshed every 64 updates — then adds
    /// `x` to the window. `None` until the window is full, and when the MAD is zero (a
    /// constant window). Non-finite values are ignored.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        let z = if self.ring.is_full() {
            let med = Self::median(&self.sorted);
            if self.since_mad >= MAD_REFRESH || self.mad == 0.0 {
                self.since_mad = 0;
                self.mad = median_deviation(&self.sorted, med) * 1.4826;
            }
            self.since_mad += 1;
            (self.mad > 0.0).then(|| (x - med) / self.mad)
        } else {
            None
        };
        // One shift between the leaving value's slot and the arriving value's, instead of a
        // removal and an insertion that each move half the buffer.
        let kx = order_key(x);
        let at = lower_bound(&self.sorted, kx);
        match self.ring.push(x) {
            Some(old) => {
                // `old` is in the buffer: the first slot with its key holds exactly it.
                let i = lower_bound(&self.sorted, order_key(old));
                if i < at {
                    self.sorted.copy_within(i + 1..at, i);
                    self.sorted[at - 1] = kx;
                } else {
                    self.sorted.copy_within(at..i, at + 1);
                    self.sorted[at] = kx;
                }
            }
            None => self.sorted.insert(at, kx),
        }
        z
    }
}

/// The median of the absolute deviations `|v − med|` of the sorted keys `v` about their median
/// `med`: the same value as selecting it among all the deviations, found by merging the two
/// runs that are already in order — the deviations of the values below the middle, read
/// downward, and of those from the middle up, read upward — until the middle of the merge
/// (half the window's steps, instead of a selection over all of it). `med` lies between the
/// two middle values (it is one of them, or their midpoint), and subtraction rounds
/// monotonically, so both runs are non-decreasing.
fn median_deviation(v: &[i64], med: f64) -> f64 {
    let n = v.len();
    let dev = |k: i64| (from_key(k) - med).abs();
    // Below: v[..below] read from its end; above: v[above..] read from its start.
    let (mut below, mut above) = (n / 2, n / 2);
    let (mut prev, mut cur) = (f64::NAN, f64::NAN);
    for _ in 0..=n / 2 {
        let down = below.checked_sub(1).map(|i| dev(v[i]));
        let up = v.get(above).map(|k| dev(*k));
        let next = match (down, up) {
            (Some(d), Some(u)) if d <= u => {
                below -= 1;
                d
            }
            (_, Some(u)) => {
                above += 1;
                u
            }
            (Some(d), None) => {
                below -= 1;
                d
            }
            (None, None) => break,
        };
        (prev, cur) = (cur, next);
    }
    if n % 2 == 1 { cur } else { (prev + cur) / 2.0 }
}

/// `f64::total_cmp`'s order as an integer: `order_key(a) < order_key(b)` exactly when `a`
/// sorts before `b`.
#[inline]
fn order_key(x: f64) -> i64 {
    flip_negatives(x.to_bits() as i64)
}

/// The value of an [`order_key`].
#[inline]
fn from_key(k: i64) -> f64 {
    f64::from_bits(flip_negatives(k) as u64)
}

/// Inverts the magnitude bits of negative values, so that larger magnitudes sort lower; its
/// own inverse (the sign bit is kept).
#[inline]
fn flip_negatives(b: i64) -> i64 {
    b ^ (((b >> 63) as u64) >> 1) as i64
}

/// The first index of sorted `v` not below `k`, without data-dependent branches (a window's
/// values arrive in random order, so a branching search mispredicts half its steps).
#[inline]
fn lower_bound(v: &[i64], k: i64) -> usize {
    if v.is_empty() {
        return 0;
    }
    let (mut base, mut size) = (0usize, v.len());
    while size > 1 {
        let half = size / 2;
        let mid = base + half;
        base = std::hint::select_unpredictable(v[mid] < k, mid, base);
        size -= half;
    }
    base + usize::from(v[base] < k)
}

/// Exponentially weighted mean and variance; the z-score of each value against the state
/// *before* it.
#[derive(Clone, Debug)]
pub struct EwmaZ {
    alpha: f64,
    warmup: usize,
    seen: usize,
    mean: f64,
    var: f64,
}

impl EwmaZ {
    /// With smoothing `alpha` in (0, 1], reporting after `warmup` values.
    pub fn new(alpha: f64, warmup: usize) -> Self {
        Self {
            alpha: alpha.clamp(1e-6, 1.0),
            warmup,
            seen: 0,
            mean: 0.0,
            var: 0.0,
        }
    }

    /// The z-score of `x`, then the update (West's incremental form).
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        let z =
            (self.seen >= self.warmup && self.var > 0.0).then(|| (x - self.mean) / self.var.sqrt());
        if self.seen == 0 {
            self.mean = x;
        } else {
            let d = x - self.mean;
            let incr = self.alpha * d;
            self.mean += incr;
            self.var = (1.0 - self.alpha) * (self.var + d * incr);
        }
        self.seen += 1;
        z
    }
}

/// A deterministic isolation forest (Liu, Ting and Zhou, 2008) over fixed-length feature
/// vectors: `trees` random trees grown on subsamples of `sample` points; the anomaly score
/// `2^(−E[h(x)] / c(sample))` is near 1 for isolated points and below 0.5 for ordinary ones.
/// As in the paper, a value beyond the training range follows the most extreme training
/// point down the tree, so it scores like that point: high, but not near 1.
#[derive(Clone, Debug)]
pub struct IsolationForest {
    nodes: Vec<Node>,
    roots: Vec<usize>,
    sample: usize,
}

#[derive(Clone, Copy, Debug)]
enum Node {
    Leaf {
        size: usize,
    },
    Split {
        feature: usize,
        value: f64,
        left: usize,
        right: usize,
    },
}

/// Average path length of an unsuccessful search in a binary search tree of `n` points.
fn c(n: usize) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
}

/// SplitMix64: small, seedable, reproducible.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl IsolationForest {
    /// Grows `trees` trees on `points` (each the same length), subsampling `sample` points per
    /// tree, from `seed`.
    pub fn fit(points: &[Vec<f64>], trees: usize, sample: usize, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let sample = sample.min(points.len()).max(1);
        let max_depth = (sample as f64).log2().ceil() as usize;
        let mut forest = Self {
            nodes: Vec::new(),
            roots: Vec::with_capacity(trees),
            sample,
        };
        for _ in 0..trees {
            // Sample without replacement (partial Fisher-Yates over indices).
            let mut idx: Vec<usize> = (0..points.len()).collect();
            for i in 0..sample {
                let j = i + rng.below(idx.len() - i);
                idx.swap(i, j);
            }
            idx.truncate(sample);
            let root = forest.grow(points, &mut idx, 0, max_depth, &mut rng);
            forest.roots.push(root);
        }
        forest
    }

    fn grow(
        &mut self,
        points: &[Vec<f64>],
        idx: &mut [usize],
        depth: usize,
        max_depth: usize,
        rng: &mut Rng,
    ) -> usize {
        let dims = points.first().map_or(0, Vec::len);
        if idx.len() <= 1 || depth >= max_depth || dims == 0 {
            self.nodes.push(Node::Leaf { size: idx.len() });
            return self.nodes.len() - 1;
        }
        let feature = rng.below(dims);
        let (lo, hi) = idx
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                let v = points[i][feature];
                (lo.min(v), hi.max(v))
            });
        if hi.is_nan() || lo.is_nan() || hi <= lo {
            self.nodes.push(Node::Leaf { size: idx.len() });
            return self.nodes.len() - 1;
        }
        let value = lo + rng.unit() * (hi - lo);
        let mut split = 0;
        for k in 0..idx.len() {
            if points[idx[k]][feature] < value {
                idx.swap(k, split);
                split += 1;
            }
        }
        let at = self.nodes.len();
        self.nodes.push(Node::Leaf { size: 0 });
        let (l, r) = idx.split_at_mut(split);
        let left = self.grow(points, l, depth + 1, max_depth, rng);
        let right = self.grow(points, r, depth + 1, max_depth, rng);
        self.nodes[at] = Node::Split {
            feature,
            value,
            left,
            right,
        };
        at
    }

    /// The anomaly score of `x` in (0, 1].
    pub fn score(&self, x: &[f64]) -> f64 {
        if self.roots.is_empty() {
            return 0.5;
        }
        let mut total = 0.0;
        for &root in &self.roots {
            let mut n = root;
            let mut depth = 0.0;
            loop {
                match self.nodes[n] {
                    Node::Leaf { size } => {
                        total += depth + c(size);
                        break;
                    }
                    Node::Split {
                        feature,
                        value,
                        left,
                        right,
                    } => {
                        let v = x.get(feature).copied().unwrap_or(f64::NAN);
                        n = if v < value { left } else { right };
                        depth += 1.0;
                    }
                }
            }
        }
        let mean = total / self.roots.len() as f64;
        2f64.powf(-mean / c(self.sample))
    }
}

/// What kind of anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// A return far outside the recent distribution.
    Return,
    /// Volume far above its recent level.
    VolumeSpike,
    /// The open jumped away from the previous close.
    Gap,
    /// Short-term volatility moved far from the long-term level.
    VolatilityRegime,
    /// The bar's feature vector is isolated from recent bars.
    Multivariate,
}

impl AnomalyKind {
    /// A stable name (`return`, `volume_spike`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Return => "return",
            AnomalyKind::VolumeSpike => "volume_spike",
            AnomalyKind::Gap => "gap",
            AnomalyKind::VolatilityRegime => "volatility_regime",
            AnomalyKind::Multivariate => "multivariate",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    /// The kind.
    pub kind: AnomalyKind,
    /// Severity in [0, 1]: how far past the threshold (0 at the threshold, 1 at twice it).
    pub severity: f64,
    /// Direction in [−1, 1] where it has one (a return's or gap's sign), else 0.
    pub direction: f64,
    /// The measured value (a z-score, a ratio, a score).
    pub value: f64,
    /// The finding in words, with its numbers.
    pub explanation: String,
}

/// Thresholds and windows of the [`AnomalyDetector`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Whether to run the detectors at all.
    pub enabled: bool,
    /// Whether to run the isolation forest (the costliest detector: about a microsecond per
    /// bar).
    pub forest: bool,
    /// Bars in the robust baselines.
    pub window: usize,
    /// Robust |z| at which a return is anomalous.
    pub return_z: f64,
    /// Robust z of log volume at which volume is a spike.
    pub volume_z: f64,
    /// Gap size, in ATRs, at which an open is a gap.
    pub gap_atr: f64,
    /// Short and long windows of the volatility ratio.
    pub vol_short: usize,
    /// Long window of the volatility ratio.
    pub vol_long: usize,
    /// Ratio of short to long volatility above which (or below whose inverse) the regime shifted.
    pub vol_ratio: f64,
    /// Isolation-forest score at which a bar is a multivariate anomaly.
    pub forest_score: f64,
    /// Bars between refits of the forest (it is fitted on the last `window` feature vectors).
    pub forest_refit: usize,
    /// Seed of the forest.
    pub seed: u64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            forest: false,
            window: 100,
            return_z: 5.0,
            volume_z: 4.0,
            gap_atr: 3.0,
            vol_short: 20,
            vol_long: 200,
            vol_ratio: 2.5,
            forest_score: 0.62,
            forest_refit: 200,
            seed: 42,
        }
    }
}

/// Runs every detector on each bar.
#[derive(Clone, Debug)]
pub struct AnomalyDetector {
    cfg: AnomalyConfig,
    prev_close: Option<f64>,
    ret_z: RobustZ,
    vol_z: RobustZ,
    atr: Atr,
    last_atr: Option<f64>,
    short_var: EwmaZ,
    long_var: EwmaZ,
    regime: i8,
    features: Vec<Vec<f64>>,
    next_feature: usize,
    since_fit: usize,
    forest: Option<IsolationForest>,
}

impl AnomalyDetector {
    /// A detector with `cfg`.
    pub fn new(cfg: AnomalyConfig) -> Self {
        let alpha = |n: usize| 2.0 / (n.max(1) as f64 + 1.0);
        Self {
            ret_z: RobustZ::new(cfg.window),
            vol_z: RobustZ::new(cfg.window),
            atr: Atr::new(14),
            last_atr: None,
            short_var: EwmaZ::new(alpha(cfg.vol_short), cfg.vol_short),
            long_var: EwmaZ::new(alpha(cfg.vol_long), cfg.vol_short),
            regime: 0,
            features: Vec::with_capacity(cfg.window),
            next_feature: 0,
            since_fit: 0,
            forest: None,
            prev_close: None,
            cfg,
        }
    }

    fn severity(value: f64, threshold: f64) -> f64 {
        ((value.abs() - threshold) / threshold).clamp(0.0, 1.0)
    }

    /// Checks one closed bar, appending what it finds to `out`.
    pub fn update(&mut self, b: &Bar, out: &mut Vec<Anomaly>) {
        if ![b.open, b.high, b.low, b.close, b.volume]
            .iter()
            .all(|v| v.is_finite())
            || b.close <= 0.0
        {
            return;
        }
        let prev_atr = self.last_atr;
        self.last_atr = self.atr.update(*b).or(self.last_atr);
        let Some(prev) = self.prev_close.replace(b.close) else {
            return;
        };
        if prev <= 0.0 {
            return;
        }
        let r = (b.close / prev).ln();
        let lv = (b.volume + 1e-12).ln();
        let c = &self.cfg;
        if let Some(z) = self.ret_z.update(r)
            && z.abs() >= c.return_z
        {
            out.push(Anomaly {
                kind: AnomalyKind::Return,
                severity: Self::severity(z, c.return_z),
                direction: z.signum(),
                value: z,
                explanation: format!(
                    "return {:+.3}% is {:+.1} robust standard deviations from the median of the last {} bars",
                    (r.exp() - 1.0) * 100.0,
                    z,
                    c.window
                ),
            });
        }
        if let Some(z) = self.vol_z.update(lv)
            && z >= c.volume_z
        {
            out.push(Anomaly {
                kind: AnomalyKind::VolumeSpike,
                severity: Self::severity(z, c.volume_z),
                direction: 0.0,
                value: z,
                explanation: format!(
                    "volume {:.4} is {:.1} robust standard deviations above its recent level (log scale)",
                    b.volume, z
                ),
            });
        }
        if let Some(atr) = prev_atr.filter(|a| *a > 0.0) {
            let gap = (b.open - prev) / atr;
            if gap.abs() >= c.gap_atr {
                out.push(Anomaly {
                    kind: AnomalyKind::Gap,
                    severity: Self::severity(gap, c.gap_atr),
                    direction: gap.signum(),
                    value: gap,
                    explanation: format!(
                        "opened at {} against a previous close of {}: a gap of {:+.1} ATRs",
                        b.open, prev, gap
                    ),
                });
            }
        }
        // Volatility regime: EWMA variance of returns, short against long.
        self.short_var.update(r);
        self.long_var.update(r);
        let (sv, lv2) = (self.short_var.var, self.long_var.var);
        if self.long_var.seen > c.vol_long && lv2 > 0.0 {
            let ratio = (sv / lv2).sqrt();
            let now = if ratio >= c.vol_ratio {
                1
            } else if ratio <= 1.0 / c.vol_ratio {
                -1
            } else if (ratio - 1.0).abs() < 0.25 {
                0
            } else {
                self.regime
            };
            if now != self.regime && now != 0 {
                out.push(Anomaly {
                    kind: AnomalyKind::VolatilityRegime,
                    severity: Self::severity(
                        if now > 0 { ratio } else { 1.0 / ratio },
                        c.vol_ratio,
                    ),
                    direction: 0.0,
                    value: ratio,
                    explanation: format!(
                        "short-term volatility is {:.2}x the long-term level: volatility {}",
                        ratio,
                        if now > 0 { "expanded" } else { "collapsed" }
                    ),
                });
            }
            self.regime = now;
        }
        if !c.forest {
            return;
        }
        // Multivariate: return, log volume, range over close, body over range.
        let range = b.high - b.low;
        let feature = vec![
            r,
            lv,
            range / b.close,
            if range > 0.0 {
                (b.close - b.open) / range
            } else {
                0.0
            },
        ];
        if let Some(forest) = &self.forest {
            let s = forest.score(&feature);
            if s >= c.forest_score {
                out.push(Anomaly {
                    kind: AnomalyKind::Multivariate,
                    severity: Self::severity(s, c.forest_score),
                    direction: 0.0,
                    value: s,
                    explanation: format!(
                        "isolation-forest score {s:.3}: return, volume, range and body together are unlike the last {} bars",
                        self.features.len()
                    ),
                });
            }
        }
        if self.features.len() < c.window {
            self.features.push(feature);
        } else {
            self.features[self.next_feature] = feature;
            self.next_feature = (self.next_feature + 1) % c.window;
        }
        self.since_fit += 1;
        if self.features.len() >= c.window.min(64)
            && (self.forest.is_none() || self.since_fit >= c.forest_refit)
        {
            self.since_fit = 0;
            self.forest = Some(IsolationForest::fit(&self.features, 100, 128, c.seed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_z_ignores_a_single_outlier_in_its_baseline() {
        let mut z = RobustZ::new(5);
        for x in [1.0, 2.0, 3.0, 100.0, 4.0] {
            assert_eq!(z.update(x), None);
        }
        // median of [1,2,3,4,100] = 3; deviations [2,1,0,1,97] -> MAD 1 -> scale 1.4826.
        let v = z.update(6.0).unwrap();
        assert!((v - 3.0 / 1.4826).abs() < 1e-12, "{v}");
    }

    #[test]
    fn the_sorted_window_always_equals_the_last_values_sorted() {
        // Ties, signed zeros, negatives and repeats: the one-shift update must keep exactly
        // the window's values in `total_cmp` order, whatever leaves and arrives.
        let mut rng = Rng(7);
        for period in [3, 4, 7, 100] {
            let mut z = RobustZ::new(period);
            let mut seen: Vec<f64> = Vec::new();
            for _ in 0..2_000 {
                let u = rng.unit();
                let x = match (u * 10.0) as u32 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => 1.5,
                    _ => (u - 0.5) * 8.0,
                };
                z.update(x);
                seen.push(x);
                let mut want = seen[seen.len().saturating_sub(period)..].to_vec();
                want.sort_by(f64::total_cmp);
                let got: Vec<u64> = z.sorted.iter().map(|k| from_key(*k).to_bits()).collect();
                let want: Vec<u64> = want.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "period {period}");
            }
        }
        for (a, b) in [(-1.0, -0.0), (-0.0, 0.0), (0.0, 1e-300), (f64::MIN, -1e300)] {
            assert!(order_key(a) < order_key(b), "{a} {b}");
        }
    }
    /// The MAD as it was selected before: every deviation computed, the middle one selected.
    fn selected_deviation(v: &[i64], med: f64) -> f64 {
        let mut d: Vec<f64> = v.iter().map(|k| (from_key(*k) - med).abs()).collect();
        let n = d.len();
        let (_, hi, _) = d.select_nth_unstable_by(n / 2, f64::total_cmp);
        let hi = *hi;
        if n % 2 == 1 {
            hi
        } else {
            let lo = d[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo + hi) / 2.0
        }
    }

    #[test]
    fn the_merged_deviation_is_the_selected_one() {
        // Ties, signed zeros, tiny and huge magnitudes (finite, as the window holds only finite
        // values), skewed windows, every size to 101.
        let mut rng = Rng(11);
        for n in 1..=101usize {
            for round in 0..200 {
                let mut xs: Vec<f64> = (0..n)
                    .map(|_| {
                        let u = rng.unit();
                        match (u * 16.0) as u32 {
                            0 => 0.0,
                            1 => -0.0,
                            2 => 1.5,
                            3 => 5e-324,
                            4 => -1e300,
                            5 => (u - 0.5) * 1e-310,
                            6 => (u * 700.0).exp(),
                            _ => (u - 0.3) * if round % 2 == 0 { 8.0 } else { 1e-3 },
                        }
                    })
                    .collect();
                xs.sort_by(f64::total_cmp);
                let keys: Vec<i64> = xs.iter().map(|x| order_key(*x)).collect();
                let med = RobustZ::median(&keys);
                let (got, want) = (median_deviation(&keys, med), selected_deviation(&keys, med));
                assert_eq!(got.to_bits(), want.to_bits(), "n {n}: {xs:?}");
            }
        }
    }

    #[test]
    fn ewma_z_flags_a_jump() {
        let mut e = EwmaZ::new(0.1, 10);
        for i in 0..100 {
            e.update(if i % 2 == 0 { 1.0 } else { -1.0 });
        }
        assert!(e.update(10.0).unwrap() > 5.0);
    }

    #[test]
    fn isolation_forest_scores_outliers_high() {
        let mut pts = Vec::new();
        let mut rng = Rng(1);
        for _ in 0..300 {
            pts.push(vec![rng.unit(), rng.unit()]);
        }
        let f = IsolationForest::fit(&pts, 100, 128, 7);
        assert!(f.score(&[0.5, 0.5]) < 0.5);
        assert!(f.score(&[5.0, 5.0]) > 0.65);
        let g = IsolationForest::fit(&pts, 100, 128, 7);
        assert_eq!(f.score(&[0.9, 0.1]), g.score(&[0.9, 0.1]), "deterministic");
    }

    #[test]
    fn detector_finds_a_crash_bar_and_explains_it() {
        let mut d = AnomalyDetector::new(AnomalyConfig {
            forest: true,
            ..AnomalyConfig::default()
        });
        let mut out = Vec::new();
        let mut rng = Rng(3);
        let mut p = 100.0;
        for _ in 0..400 {
            let o = p;
            p *= 1.0 + 0.002 * (rng.unit() - 0.5);
            d.update(
                &Bar::new(
                    o,
                    o.max(p) * 1.0005,
                    o.min(p) * 0.9995,
                    p,
                    10.0 + rng.unit(),
                ),
                &mut out,
            );
        }
        // Calm bars are rarely flagged: at most 5% (the forest's threshold is 0.62; ordinary
        // points score about 0.45, edge points of a uniform cloud up to about 0.65).
        let calm = out
            .iter()
            .filter(|a| a.kind == AnomalyKind::Multivariate)
            .count();
        assert!(calm <= 20, "{calm} calm bars flagged of 400");
        out.clear();
        // A 10% crash on ten times the volume, opening with a gap.
        let o = p * 0.97;
        d.update(&Bar::new(o, o, p * 0.9, p * 0.9, 100.0), &mut out);
        let kinds: Vec<_> = out.iter().map(|a| a.kind).collect();
        eprintln!(
            "forest score {:?} calm {calm}",
            d.forest
                .as_ref()
                .map(|f| f.score(&[-0.105, 4.6, 0.1, -1.0]))
        );
        for k in [
            AnomalyKind::Return,
            AnomalyKind::VolumeSpike,
            AnomalyKind::Gap,
            AnomalyKind::Multivariate,
        ] {
            assert!(kinds.contains(&k), "{k:?} missing in {out:#?}");
        }
        let ret = out.iter().find(|a| a.kind == AnomalyKind::Return).unwrap();
        assert_eq!(ret.direction, -1.0);
        assert!(ret.severity > 0.0 && ret.severity <= 1.0);
        assert!(ret.explanation.contains("-10.000%"), "{}", ret.explanation);
    }
}
