//! A point-in-time sentiment index per asset: scored items decayed by age (half-life), weighted
//! by source (news 0.6, social 0.4 as in the original plan) and engagement (likes, twice the
//! reposts, and replies, logarithmically), with the mention volume ("buzz") and a trend against
//! a slower index. Items must arrive in event-time order; a reading at time `t` then uses
//! exactly the items known by `t`, so a replay of stored items gives the index the live run had.

use std::collections::{HashMap, VecDeque};

const NS: f64 = 1e9;

/// Where an item came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A headline.
    News,
    /// A post, with (likes, reposts, replies).
    Social(u64, u64, u64),
}

/// Index settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndexConfig {
    /// Age at which an item counts half, in seconds.
    pub half_life_s: f64,
    /// Readings need an item younger than this, in seconds.
    pub max_age_s: f64,
    /// Weight of a headline.
    pub news_weight: f64,
    /// Weight of a post (before engagement).
    pub social_weight: f64,
    /// A buzz anomaly: the mention rate over the last half-life is at least this many times
    /// the rate over four half-lives (which include it, so 4 is the most it can be: 2 means
    /// the last six hours ran at twice the day's average).
    pub buzz_ratio: f64,
    /// …with at least this many (decayed) mentions.
    pub buzz_min: f64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            half_life_s: 6.0 * 3600.0,
            max_age_s: 24.0 * 3600.0,
            news_weight: 0.6,
            social_weight: 0.4,
            buzz_ratio: 2.0,
            buzz_min: 5.0,
        }
    }
}

/// An asset's mention volume jumping above its own baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct BuzzAnomaly {
    /// The asset.
    pub asset: String,
    /// When (the item that set it off).
    pub ts: i64,
    /// Mention rate over the last half-life against the rate over four half-lives.
    pub ratio: f64,
    /// Decayed mentions over the last half-life.
    pub buzz: f64,
    /// The index's value then, in [−1, 1].
    pub value: f64,
}

/// Which way the index is moving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trend {
    /// The fast index is above the slow one by more than 0.05.
    Improving,
    /// Below by more than 0.05.
    Declining,
    /// Within 0.05.
    Stable,
}

/// The index of one asset at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Weighted mean compound score in [−1, 1].
    pub value: f64,
    /// Decayed count of items (mention volume).
    pub buzz: f64,
    /// Mention rate over the last half-life against the rate over four half-lives (1 is
    /// usual); `None` until the asset has been followed for four half-lives.
    pub buzz_ratio: Option<f64>,
    /// Items that went into it (within the memory).
    pub items: usize,
    /// Which way it moves.
    pub trend: Trend,
    /// The items that moved it most: (title, score, share of the index's weight).
    pub movers: Vec<(String, f64, f64)>,
}

#[derive(Debug, Default)]
struct Asset {
    last_ts: i64,
    num: f64,
    den: f64,
    slow_num: f64,
    slow_den: f64,
    buzz: f64,
    slow_buzz: f64,
    first_ts: Option<i64>,
    buzzing: bool,
    recent: VecDeque<(i64, f64, f64, String)>,
}

/// The index over every asset.
#[derive(Debug, Default)]
pub struct SentimentIndex {
    cfg: IndexConfig,
    assets: HashMap<String, Asset>,
}

impl SentimentIndex {
    /// An empty index.
    pub fn new(cfg: IndexConfig) -> Self {
        Self {
            cfg,
            assets: HashMap::new(),
        }
    }

    /// Whether no item of any asset has been added: every [`read`](Self::read) is `None`.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    fn decay(&self, dt_ns: i64, slow: bool) -> f64 {
        let hl = self.cfg.half_life_s * if slow { 4.0 } else { 1.0 };
        if hl <= 0.0 {
            return 0.0;
        }
        (-(dt_ns.max(0) as f64 / NS) * std::f64::consts::LN_2 / hl).exp()
    }

    /// The mention rate over the last half-life against the rate over four (both decayed
    /// counts turned into rates); `None` until the asset has been followed for four
    /// half-lives, when the slow count is still the fast one.
    fn buzz_ratio(&self, a: &Asset, at: i64) -> Option<f64> {
        let first = a.first_ts?;
        let span = 4.0 * self.cfg.half_life_s * NS;
        if ((at - first) as f64) < span || a.slow_buzz <= 0.0 {
            return None;
        }
        Some(4.0 * a.buzz / a.slow_buzz)
    }

    /// [`SentimentIndex::add`], returning a buzz anomaly when this item lifted the asset's
    /// mention rate to `buzz_ratio` times its baseline (once per episode: the rate must fall
    /// below three quarters of that before another is reported).
    pub fn add_and_check(
        &mut self,
        asset: &str,
        ts: i64,
        score: f64,
        origin: Origin,
        title: &str,
    ) -> Option<BuzzAnomaly> {
        self.add(asset, ts, score, origin, title);
        let a = self.assets.get(asset)?;
        let ratio = self.buzz_ratio(a, ts)?;
        let value = if a.den > 0.0 {
            (a.num / a.den).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let (buzz, was) = (a.buzz, a.buzzing);
        let now = if was {
            ratio >= 0.75 * self.cfg.buzz_ratio
        } else {
            ratio >= self.cfg.buzz_ratio && buzz >= self.cfg.buzz_min
        };
        if let Some(a) = self.assets.get_mut(asset) {
            a.buzzing = now;
        }
        (now && !was).then(|| BuzzAnomaly {
            asset: asset.to_owned(),
            ts,
            ratio,
            buzz,
            value,
        })
    }

    /// Adds an item about `asset` known at `ts` with compound `score`.
    pub fn add(&mut self, asset: &str, ts: i64, score: f64, origin: Origin, title: &str) {
        let w = match origin {
            Origin::News => self.cfg.news_weight,
            Origin::Social(l, r, p) => {
                let e = l as f64 + 2.0 * r as f64 + p as f64;
                self.cfg.social_weight * (1.0 + e.ln_1p())
            }
        };
        let (fast, slow) = {
            let a = self.assets.get(asset);
            let dt = a.map_or(0, |a| ts - a.last_ts);
            (self.decay(dt, false), self.decay(dt, true))
        };
        let a = self.assets.entry(asset.to_owned()).or_default();
        a.num = a.num * fast + w * score;
        a.den = a.den * fast + w;
        a.slow_num = a.slow_num * slow + w * score;
        a.slow_den = a.slow_den * slow + w;
        a.buzz = a.buzz * fast + 1.0;
        a.slow_buzz = a.slow_buzz * slow + 1.0;
        a.first_ts.get_or_insert(ts);
        a.last_ts = a.last_ts.max(ts);
        a.recent.push_back((ts, w, score, title.to_owned()));
        if a.recent.len() > 64 {
            a.recent.pop_front();
        }
    }

    /// The index of `asset` at `at`, if an item younger than `max_age` exists.
    pub fn read(&self, asset: &str, at: i64) -> Option<Reading> {
        let a = self.assets.get(asset)?;
        let dt = at - a.last_ts;
        if dt < 0 || dt as f64 / NS > self.cfg.max_age_s || a.den <= 0.0 {
            return None;
        }
        let fast = self.decay(dt, false);
        let value = (a.num / a.den).clamp(-1.0, 1.0);
        let slow_value = if a.slow_den > 0.0 {
            a.slow_num / a.slow_den
        } else {
            value
        };
        let trend = if value - slow_value > 0.05 {
            Trend::Improving
        } else if value - slow_value < -0.05 {
            Trend::Declining
        } else {
            Trend::Stable
        };
        let den_now = a.den * fast;
        let mut movers: Vec<(String, f64, f64)> = a
            .recent
            .iter()
            .map(|(ts, w, s, t)| {
                let share = w * self.decay(at - ts, false) / den_now.max(f64::MIN_POSITIVE);
                (t.clone(), *s, share)
            })
            .collect();
        movers.sort_by(|x, y| (y.1.abs() * y.2).total_cmp(&(x.1.abs() * x.2)));
        movers.truncate(2);
        let buzz_ratio = self.buzz_ratio(a, at).map(|r| {
            // Both counts decayed to `at`.
            r * fast / self.decay(dt, true)
        });
        Some(Reading {
            value,
            buzz: a.buzz * fast,
            buzz_ratio,
            items: a.recent.len(),
            trend,
            movers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    #[test]
    fn decay_weights_and_point_in_time() {
        let mut ix = SentimentIndex::new(IndexConfig::default());
        assert!(ix.is_empty() && ix.read("BTC", 0).is_none());
        ix.add("BTC", 0, 0.8, Origin::News, "ETF approved");
        assert!(!ix.is_empty());
        let r = ix.read("BTC", 0).unwrap();
        assert!((r.value - 0.8).abs() < 1e-12);
        // Six hours later a negative headline: the older one counts half.
        ix.add("BTC", 6 * H, -0.6, Origin::News, "Exchange hacked");
        let r = ix.read("BTC", 6 * H).unwrap();
        let want = (0.5 * 0.6 * 0.8 + 0.6 * -0.6) / (0.5 * 0.6 + 0.6);
        assert!((r.value - want).abs() < 1e-9, "{} vs {want}", r.value);
        assert!((r.buzz - 1.5).abs() < 1e-9);
        assert_eq!(r.trend, Trend::Declining);
        assert_eq!(r.movers[0].0, "Exchange hacked");
        // A reading before the last item is refused, not computed with the future.
        assert!(ix.read("BTC", 5 * H).is_none());
        // Too old: absent.
        assert!(ix.read("BTC", 31 * H).is_none());
        // Engagement raises a post's weight.
        assert_eq!(r.buzz_ratio, None, "no baseline yet");
        let mut iy = SentimentIndex::new(IndexConfig::default());
        iy.add("ETH", 0, 1.0, Origin::Social(0, 0, 0), "meh");
        iy.add("ETH", 0, -1.0, Origin::Social(100, 50, 10), "viral");
        assert!(iy.read("ETH", 0).unwrap().value < 0.0);
    }

    #[test]
    fn buzz_anomalies_need_a_baseline_and_fire_once_per_episode() {
        let mut ix = SentimentIndex::new(IndexConfig::default());
        let mut found = Vec::new();
        // A burst right at the start is no anomaly: there is no baseline yet.
        for i in 0..20 {
            found.extend(ix.add_and_check("BTC", i * 60_000_000_000, 0.1, Origin::News, "early"));
        }
        assert!(found.is_empty());
        // Two days at one headline an hour: steady, no anomaly, a ratio near 1.
        for h in 1..48 {
            found.extend(ix.add_and_check("BTC", h * H, 0.1, Origin::News, "steady"));
        }
        assert!(found.is_empty(), "{found:?}");
        let r = ix.read("BTC", 47 * H).unwrap().buzz_ratio.unwrap();
        assert!((0.7..1.5).contains(&r), "steady ratio {r}");
        // Then 30 headlines in an hour: one anomaly, bearish with the index.
        for i in 0..30 {
            found.extend(ix.add_and_check(
                "BTC",
                48 * H + i * 120_000_000_000,
                -0.9,
                Origin::News,
                "hack",
            ));
        }
        assert_eq!(found.len(), 1, "{found:?}");
        let b = &found[0];
        assert!(b.ratio >= 2.0 && b.buzz >= 5.0 && b.value < 0.0, "{b:?}");
        assert_eq!(b.asset, "BTC");
        // Quiet for a day, then another burst: a second episode.
        for i in 0..30 {
            found.extend(ix.add_and_check(
                "BTC",
                96 * H + i * 120_000_000_000,
                0.5,
                Origin::News,
                "rally",
            ));
        }
        assert_eq!(found.len(), 2, "{found:?}");
        // Another asset's steady stream is not affected.
        assert!(ix.read("ETH", 96 * H).is_none());
    }
}
