//! Chart patterns on zig-zag pivots: double tops and bottoms, head-and-shoulders and its
//! inverse, ascending, descending and symmetric triangles, bull and bear flags, support and
//! resistance breakouts with their touch counts, and trendline breaks.
//!
//! Pivots come from a zig-zag whose reversal threshold is `k · ATR(14)`: a swing high is
//! confirmed once price has fallen `k` ATRs below it (and a swing low once price has risen `k`
//! ATRs above it). Patterns are only ever reported on the bar that confirms them — never with
//! hindsight — so their forward returns can be measured honestly. Each detection carries its
//! geometry (the pivots, and the level or line it breaks) so a chart can draw it.

use crate::volatility::Atr;
use crate::{Bar, Indicator};

/// A confirmed swing point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pivot {
    /// Bar index of the extreme.
    pub index: usize,
    /// Its price (the high of a swing high, the low of a swing low).
    pub price: f64,
    /// Whether it is a swing high.
    pub high: bool,
}

/// What was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChartKind {
    /// Two similar highs around a low.
    DoubleTop,
    /// Two similar lows around a high.
    DoubleBottom,
    /// A higher high between two similar lower highs.
    HeadAndShoulders,
    /// The mirror image.
    InverseHeadAndShoulders,
    /// Flat highs, rising lows.
    AscendingTriangle,
    /// Falling highs, flat lows.
    DescendingTriangle,
    /// Falling highs, rising lows.
    SymmetricTriangle,
    /// A sharp rise followed by a shallow pull-back.
    BullFlag,
    /// A sharp fall followed by a shallow bounce.
    BearFlag,
    /// A close through a resistance level touched at least twice.
    ResistanceBreakout,
    /// A close through a support level touched at least twice.
    SupportBreakdown,
    /// A close above the line through the last two falling swing highs.
    TrendlineBreakUp,
    /// A close below the line through the last two rising swing lows.
    TrendlineBreakDown,
}

impl ChartKind {
    /// Every kind.
    pub const ALL: [ChartKind; 13] = [
        ChartKind::DoubleTop,
        ChartKind::DoubleBottom,
        ChartKind::HeadAndShoulders,
        ChartKind::InverseHeadAndShoulders,
        ChartKind::AscendingTriangle,
        ChartKind::DescendingTriangle,
        ChartKind::SymmetricTriangle,
        ChartKind::BullFlag,
        ChartKind::BearFlag,
        ChartKind::ResistanceBreakout,
        ChartKind::SupportBreakdown,
        ChartKind::TrendlineBreakUp,
        ChartKind::TrendlineBreakDown,
    ];

    /// A stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChartKind::DoubleTop => "double_top",
            ChartKind::DoubleBottom => "double_bottom",
            ChartKind::HeadAndShoulders => "head_and_shoulders",
            ChartKind::InverseHeadAndShoulders => "inverse_head_and_shoulders",
            ChartKind::AscendingTriangle => "ascending_triangle",
            ChartKind::DescendingTriangle => "descending_triangle",
            ChartKind::SymmetricTriangle => "symmetric_triangle",
            ChartKind::BullFlag => "bull_flag",
            ChartKind::BearFlag => "bear_flag",
            ChartKind::ResistanceBreakout => "resistance_breakout",
            ChartKind::SupportBreakdown => "support_breakdown",
            ChartKind::TrendlineBreakUp => "trendline_break_up",
            ChartKind::TrendlineBreakDown => "trendline_break_down",
        }
    }

    /// The direction the pattern is traditionally read to predict: +1 up, −1 down, 0 either.
    pub const fn bias(self) -> i8 {
        match self {
            ChartKind::DoubleBottom
            | ChartKind::InverseHeadAndShoulders
            | ChartKind::AscendingTriangle
            | ChartKind::BullFlag
            | ChartKind::ResistanceBreakout
            | ChartKind::TrendlineBreakUp => 1,
            ChartKind::DoubleTop
            | ChartKind::HeadAndShoulders
            | ChartKind::DescendingTriangle
            | ChartKind::BearFlag
            | ChartKind::SupportBreakdown
            | ChartKind::TrendlineBreakDown => -1,
            ChartKind::SymmetricTriangle => 0,
        }
    }
}

/// A line between two (bar index, price) points, for necklines, levels and trendlines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    /// First point.
    pub from: (usize, f64),
    /// Second point.
    pub to: (usize, f64),
}

impl Line {
    /// The line's price at bar `index`.
    pub fn at(&self, index: usize) -> f64 {
        let (x0, y0) = (self.from.0 as f64, self.from.1);
        let (x1, y1) = (self.to.0 as f64, self.to.1);
        if x1 == x0 {
            y1
        } else {
            y0 + (y1 - y0) * (index as f64 - x0) / (x1 - x0)
        }
    }
}

/// One detection, with what a chart needs to draw it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartPattern {
    /// The kind.
    pub kind: ChartKind,
    /// Bar index at which it was confirmed (no look-ahead).
    pub index: usize,
    /// The pivots that make it, oldest first.
    pub pivots: Vec<Pivot>,
    /// Its neckline, level, or broken line.
    pub line: Option<Line>,
    /// Second boundary (a triangle's lower line).
    pub line2: Option<Line>,
    /// How clean the geometry is, in [0, 1].
    pub confidence: f64,
}

/// Settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartConfig {
    /// Zig-zag reversal threshold in ATRs.
    pub zigzag_atr: f64,
    /// Two prices are "the same level" within this many ATRs.
    pub tolerance_atr: f64,
    /// A break must clear the level or line by this many ATRs.
    pub break_atr: f64,
    /// A flag's pole must be at least this many ATRs.
    pub pole_atr: f64,
}

impl Default for ChartConfig {
    fn default() -> Self {
        Self {
            zigzag_atr: 2.0,
            tolerance_atr: 0.5,
            break_atr: 0.25,
            pole_atr: 5.0,
        }
    }
}

/// A support or resistance level built from pivots.
#[derive(Clone, Debug)]
struct Level {
    price: f64,
    touches: Vec<Pivot>,
    resistance: bool,
    broken: bool,
}

/// The streaming detector.
#[derive(Clone, Debug)]
pub struct ChartDetector {
    cfg: ChartConfig,
    atr: Atr,
    last_atr: f64,
    index: usize,
    /// +1 tracking a rise (looking for a high), −1 tracking a fall, 0 not yet known.
    dir: i8,
    extreme: (usize, f64),
    /// While the direction is unknown: the lowest low so far (`extreme` holds the highest high).
    low_extreme: (usize, f64),
    pivots: Vec<Pivot>,
    levels: Vec<Level>,
    up_line_used: Option<usize>,
    down_line_used: Option<usize>,
}

impl ChartDetector {
    /// A detector with `cfg`.
    pub fn new(cfg: ChartConfig) -> Self {
        Self {
            cfg,
            atr: Atr::new(14),
            last_atr: 0.0,
            index: 0,
            dir: 0,
            extreme: (0, f64::NEG_INFINITY),
            low_extreme: (0, f64::INFINITY),
            pivots: Vec::new(),
            levels: Vec::new(),
            up_line_used: None,
            down_line_used: None,
        }
    }

    /// Pivots confirmed so far.
    pub fn pivots(&self) -> &[Pivot] {
        &self.pivots
    }

    /// Processes one bar, appending confirmed patterns to `out`.
    pub fn update(&mut self, b: &Bar, out: &mut Vec<ChartPattern>) {
        let i = self.index;
        self.index += 1;
        if let Some(a) = self.atr.update(*b) {
            self.last_atr = a;
        }
        if !(b.high.is_finite() && b.low.is_finite() && b.close.is_finite()) {
            return;
        }
        let atr = self.last_atr;
        let th = self.cfg.zigzag_atr * atr;
        let ready = atr > 0.0;
        match self.dir {
            0 => {
                // Direction unknown: track both extremes from the first bar; the first reversal
                // of `th` from either one sets it.
                if b.high >= self.extreme.1 {
                    self.extreme = (i, b.high);
                }
                if b.low <= self.low_extreme.1 {
                    self.low_extreme = (i, b.low);
                }
                if ready && b.low <= self.extreme.1 - th && self.extreme.0 < i {
                    self.push_pivot(
                        Pivot {
                            index: self.extreme.0,
                            price: self.extreme.1,
                            high: true,
                        },
                        i,
                        atr,
                        out,
                    );
                    self.dir = -1;
                    self.extreme = (i, b.low);
                } else if ready && b.high >= self.low_extreme.1 + th && self.low_extreme.0 < i {
                    self.push_pivot(
                        Pivot {
                            index: self.low_extreme.0,
                            price: self.low_extreme.1,
                            high: false,
                        },
                        i,
                        atr,
                        out,
                    );
                    self.dir = 1;
                    self.extreme = (i, b.high);
                }
            }
            1 => {
                if b.high >= self.extreme.1 {
                    self.extreme = (i, b.high);
                } else if ready && b.low <= self.extreme.1 - th {
                    self.push_pivot(
                        Pivot {
                            index: self.extreme.0,
                            price: self.extreme.1,
                            high: true,
                        },
                        i,
                        atr,
                        out,
                    );
                    self.dir = -1;
                    self.extreme = (i, b.low);
                }
            }
            _ => {
                if b.low <= self.extreme.1 {
                    self.extreme = (i, b.low);
                } else if ready && b.high >= self.extreme.1 + th {
                    self.push_pivot(
                        Pivot {
                            index: self.extreme.0,
                            price: self.extreme.1,
                            high: false,
                        },
                        i,
                        atr,
                        out,
                    );
                    self.dir = 1;
                    self.extreme = (i, b.high);
                }
            }
        }
        if !ready {
            return;
        }
        self.breaks(b, i, atr, out);
    }

    fn push_pivot(&mut self, p: Pivot, i: usize, atr: f64, out: &mut Vec<ChartPattern>) {
        self.pivots.push(p);
        if self.pivots.len() > 64 {
            self.pivots.drain(..32);
        }
        // Levels: join an unbroken level of the same side within tolerance, or start one.
        let tol = self.cfg.tolerance_atr * atr;
        match self
            .levels
            .iter_mut()
            .find(|l| !l.broken && l.resistance == p.high && (l.price - p.price).abs() <= tol)
        {
            Some(l) => {
                l.touches.push(p);
                let n = l.touches.len() as f64;
                l.price = (l.price * (n - 1.0) + p.price) / n;
            }
            None => self.levels.push(Level {
                price: p.price,
                touches: vec![p],
                resistance: p.high,
                broken: false,
            }),
        }
        if self.levels.len() > 32 {
            self.levels.drain(..16);
        }
        self.shapes(i, atr, out);
    }

    /// Patterns made by the latest pivots, reported on the confirming bar `i`.
    fn shapes(&mut self, i: usize, atr: f64, out: &mut Vec<ChartPattern>) {
        let n = self.pivots.len();
        let tol = self.cfg.tolerance_atr * atr;
        let last = |k: usize| self.pivots[n - 1 - k];
        let conf = |diff: f64| (1.0 - diff / tol).clamp(0.0, 1.0);
        let mut found =
            |kind, pivots: Vec<Pivot>, line: Option<Line>, line2: Option<Line>, confidence: f64| {
                out.push(ChartPattern {
                    kind,
                    index: i,
                    pivots,
                    line,
                    line2,
                    confidence,
                });
            };
        if n >= 3 {
            let (a, m, c) = (last(2), last(1), last(0));
            if (a.price - c.price).abs() <= tol {
                let neck = Line {
                    from: (m.index, m.price),
                    to: (c.index, m.price),
                };
                let q = conf((a.price - c.price).abs());
                if a.high && c.high && !m.high {
                    found(ChartKind::DoubleTop, vec![a, m, c], Some(neck), None, q);
                } else if !a.high && !c.high && m.high {
                    found(ChartKind::DoubleBottom, vec![a, m, c], Some(neck), None, q);
                }
            }
        }
        if n >= 5 {
            let (ls, l1, h, l2, rs) = (last(4), last(3), last(2), last(1), last(0));
            let shoulders = (ls.price - rs.price).abs() <= 2.0 * tol;
            let neck = Line {
                from: (l1.index, l1.price),
                to: (l2.index, l2.price),
            };
            let q = conf((ls.price - rs.price).abs() / 2.0);
            if ls.high && h.high && rs.high && shoulders && h.price > ls.price.max(rs.price) + tol {
                found(
                    ChartKind::HeadAndShoulders,
                    vec![ls, l1, h, l2, rs],
                    Some(neck),
                    None,
                    q,
                );
            } else if !ls.high
                && !h.high
                && !rs.high
                && shoulders
                && h.price < ls.price.min(rs.price) - tol
            {
                found(
                    ChartKind::InverseHeadAndShoulders,
                    vec![ls, l1, h, l2, rs],
                    Some(neck),
                    None,
                    q,
                );
            }
        }
        if n >= 4 {
            let ps: Vec<Pivot> = (0..4).rev().map(last).collect();
            let highs: Vec<&Pivot> = ps.iter().filter(|p| p.high).collect();
            let lows: Vec<&Pivot> = ps.iter().filter(|p| !p.high).collect();
            if highs.len() == 2 && lows.len() == 2 {
                let dh = highs[1].price - highs[0].price;
                let dl = lows[1].price - lows[0].price;
                let upper = Line {
                    from: (highs[0].index, highs[0].price),
                    to: (highs[1].index, highs[1].price),
                };
                let lower = Line {
                    from: (lows[0].index, lows[0].price),
                    to: (lows[1].index, lows[1].price),
                };
                let kind = if dh.abs() <= tol && dl > tol {
                    Some(ChartKind::AscendingTriangle)
                } else if dl.abs() <= tol && dh < -tol {
                    Some(ChartKind::DescendingTriangle)
                } else if dh < -tol && dl > tol {
                    Some(ChartKind::SymmetricTriangle)
                } else {
                    None
                };
                if let Some(k) = kind {
                    // Converging faster is cleaner.
                    let width0 = highs[0].price - lows[0].price;
                    let width1 = highs[1].price - lows[1].price;
                    let q = if width0 > 0.0 {
                        (1.0 - width1 / width0).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    found(k, ps.clone(), Some(upper), Some(lower), q);
                }
            }
            // Flags: a pole (a, b) of at least `pole_atr`, then a retracement (b, c) of at most
            // half the pole, confirmed when the next pivot (d) holds inside the pole.
            let (a, b, c, d) = (ps[0], ps[1], ps[2], ps[3]);
            let pole = b.price - a.price;
            if pole.abs() >= self.cfg.pole_atr * atr {
                let retrace = (c.price - b.price) / pole;
                let holds = if pole > 0.0 {
                    d.price <= b.price + tol && d.price > c.price
                } else {
                    d.price >= b.price - tol && d.price < c.price
                };
                if (-0.5..=-0.1).contains(&retrace) && holds {
                    let kind = if pole > 0.0 {
                        ChartKind::BullFlag
                    } else {
                        ChartKind::BearFlag
                    };
                    let line = Line {
                        from: (b.index, b.price),
                        to: (d.index, d.price),
                    };
                    found(
                        kind,
                        ps.clone(),
                        Some(line),
                        None,
                        (1.0 + retrace * 2.0).clamp(0.0, 1.0),
                    );
                }
            }
        }
    }

    /// Breaks of levels and trendlines by the close of bar `i`.
    fn breaks(&mut self, b: &Bar, i: usize, atr: f64, out: &mut Vec<ChartPattern>) {
        let margin = self.cfg.break_atr * atr;
        for l in &mut self.levels {
            if l.broken || l.touches.len() < 2 {
                continue;
            }
            let broke = if l.resistance {
                b.close > l.price + margin
            } else {
                b.close < l.price - margin
            };
            if broke {
                l.broken = true;
                let first = l.touches[0].index;
                out.push(ChartPattern {
                    kind: if l.resistance {
                        ChartKind::ResistanceBreakout
                    } else {
                        ChartKind::SupportBreakdown
                    },
                    index: i,
                    pivots: l.touches.clone(),
                    line: Some(Line {
                        from: (first, l.price),
                        to: (i, l.price),
                    }),
                    line2: None,
                    confidence: ((l.touches.len() as f64 - 1.0) / 3.0).clamp(0.0, 1.0),
                });
            }
        }
        // Trendlines through the last two swing lows (rising) and highs (falling).
        let lows: Vec<Pivot> = self
            .pivots
            .iter()
            .rev()
            .filter(|p| !p.high)
            .take(2)
            .copied()
            .collect();
        if lows.len() == 2
            && lows[0].price > lows[1].price
            && self.up_line_used != Some(lows[0].index)
        {
            let line = Line {
                from: (lows[1].index, lows[1].price),
                to: (lows[0].index, lows[0].price),
            };
            if b.close < line.at(i) - margin {
                self.up_line_used = Some(lows[0].index);
                out.push(ChartPattern {
                    kind: ChartKind::TrendlineBreakDown,
                    index: i,
                    pivots: vec![lows[1], lows[0]],
                    line: Some(line),
                    line2: None,
                    confidence: 0.5,
                });
            }
        }
        let highs: Vec<Pivot> = self
            .pivots
            .iter()
            .rev()
            .filter(|p| p.high)
            .take(2)
            .copied()
            .collect();
        if highs.len() == 2
            && highs[0].price < highs[1].price
            && self.down_line_used != Some(highs[0].index)
        {
            let line = Line {
                from: (highs[1].index, highs[1].price),
                to: (highs[0].index, highs[0].price),
            };
            if b.close > line.at(i) + margin {
                self.down_line_used = Some(highs[0].index);
                out.push(ChartPattern {
                    kind: ChartKind::TrendlineBreakUp,
                    index: i,
                    pivots: vec![highs[1], highs[0]],
                    line: Some(line),
                    line2: None,
                    confidence: 0.5,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bars that walk through the given closes in straight steps of one unit per bar, with a
    /// range of one unit, so the ATR settles near 1.
    fn path(points: &[f64]) -> Vec<Bar> {
        let mut out = Vec::new();
        let mut p = points[0];
        for &target in &points[1..] {
            while (target - p).abs() > 1e-9 {
                let step = (target - p).clamp(-1.0, 1.0);
                let o = p;
                p += step;
                out.push(Bar::new(o, o.max(p) + 0.25, o.min(p) - 0.25, p, 1.0));
            }
        }
        out
    }

    fn run(bars: &[Bar]) -> Vec<ChartPattern> {
        let mut d = ChartDetector::new(ChartConfig::default());
        let mut out = Vec::new();
        for b in bars {
            d.update(b, &mut out);
        }
        out
    }

    fn kinds(found: &[ChartPattern]) -> Vec<ChartKind> {
        found.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn double_top_and_support_break() {
        let found = run(&path(&[100.0, 120.0, 110.0, 120.0, 110.0, 100.0]));
        let k = kinds(&found);
        assert!(k.contains(&ChartKind::DoubleTop), "{k:?}");
        let dt = found
            .iter()
            .find(|p| p.kind == ChartKind::DoubleTop)
            .unwrap();
        assert_eq!(dt.pivots.len(), 3);
        assert!(dt.pivots[0].high && !dt.pivots[1].high && dt.pivots[2].high);
        // The neckline sits at the middle low, and the pattern is reported after the second top.
        assert!((dt.line.unwrap().from.1 - dt.pivots[1].price).abs() < 1e-9);
        assert!(dt.index > dt.pivots[2].index);
    }

    #[test]
    fn head_and_shoulders() {
        let found = run(&path(&[100.0, 115.0, 105.0, 125.0, 105.0, 115.0, 95.0]));
        assert!(
            kinds(&found).contains(&ChartKind::HeadAndShoulders),
            "{:?}",
            kinds(&found)
        );
        let inv = run(&path(&[120.0, 105.0, 115.0, 95.0, 115.0, 105.0, 125.0]));
        assert!(
            kinds(&inv).contains(&ChartKind::InverseHeadAndShoulders),
            "{:?}",
            kinds(&inv)
        );
    }

    #[test]
    fn triangles_and_breakouts() {
        let asc = run(&path(&[100.0, 120.0, 105.0, 120.0, 110.0, 130.0]));
        let k = kinds(&asc);
        assert!(k.contains(&ChartKind::AscendingTriangle), "{k:?}");
        assert!(k.contains(&ChartKind::ResistanceBreakout), "{k:?}");
        let sym = run(&path(&[100.0, 130.0, 105.0, 125.0, 110.0, 120.0]));
        assert!(
            kinds(&sym).contains(&ChartKind::SymmetricTriangle),
            "{:?}",
            kinds(&sym)
        );
    }

    #[test]
    fn flag_and_trendline_break() {
        let flag = run(&path(&[100.0, 90.0, 130.0, 122.0, 129.0, 121.0]));
        assert!(
            kinds(&flag).contains(&ChartKind::BullFlag),
            "{:?}",
            kinds(&flag)
        );
        let tl = run(&path(&[100.0, 110.0, 104.0, 116.0, 110.0, 120.0, 100.0]));
        assert!(
            kinds(&tl).contains(&ChartKind::TrendlineBreakDown),
            "{:?}",
            kinds(&tl)
        );
    }

    #[test]
    fn nothing_is_reported_before_it_is_confirmed() {
        let bars = path(&[100.0, 120.0, 110.0, 120.0, 110.0, 100.0]);
        let all = run(&bars);
        for p in &all {
            assert!(p.pivots.iter().all(|v| v.index < p.index), "{p:?}");
            // Re-running on the bars up to the detection finds it too: no look-ahead.
            let upto = run(&bars[..=p.index]);
            assert!(upto.iter().any(|q| q == p));
        }
    }
}
