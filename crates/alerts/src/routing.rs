//! Which channels an alert goes to, whether it is a repeat, and whether a channel has budget
//! left: the policy half of the alert system, deterministic and free of I/O.

use std::collections::HashMap;

use atalaya_model::{AlertPriority, InstrumentId, Opportunity, OpportunityKind, UnixNanos};
use serde::{Deserialize, Serialize};

/// A delivery channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Telegram Bot API.
    Telegram,
    /// Discord webhook.
    Discord,
    /// Email over SMTP.
    Email,
    /// SMS through Twilio.
    Sms,
    /// Generic signed webhook.
    Webhook,
    /// Standard output.
    Console,
}

impl Channel {
    /// The name as configured and stored (`telegram`), the same as its notifier's.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Telegram => "telegram",
            Self::Discord => "discord",
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Webhook => "webhook",
            Self::Console => "console",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(s: &str) -> Option<Self> {
        use Channel::*;
        [Telegram, Discord, Email, Sms, Webhook, Console]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Channels per priority, as the original plan routes them: critical to every channel, high to
/// Telegram, Discord and email, medium to Telegram and Discord, low to Telegram. The console,
/// when enabled, gets everything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Routes {
    /// Channels for critical alerts.
    pub critical: Vec<Channel>,
    /// Channels for high-priority alerts.
    pub high: Vec<Channel>,
    /// Channels for medium-priority alerts.
    pub medium: Vec<Channel>,
    /// Channels for low-priority alerts.
    pub low: Vec<Channel>,
}

impl Default for Routes {
    fn default() -> Self {
        use Channel::*;
        Self {
            critical: vec![Telegram, Discord, Email, Sms, Webhook, Console],
            high: vec![Telegram, Discord, Email, Console],
            medium: vec![Telegram, Discord, Console],
            low: vec![Telegram, Console],
        }
    }
}

impl Routes {
    /// The channels for `priority`, limited to the `configured` ones, in a stable order.
    pub fn route(&self, priority: AlertPriority, configured: &[Channel]) -> Vec<Channel> {
        let wanted = match priority {
            AlertPriority::Critical => &self.critical,
            AlertPriority::High => &self.high,
            AlertPriority::Medium => &self.medium,
            AlertPriority::Low => &self.low,
        };
        let mut out: Vec<Channel> = wanted
            .iter()
            .copied()
            .filter(|c| configured.contains(c))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Why an alert was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Suppressed {
    /// The same instrument and type was alerted `ago_ns` earlier, inside the window.
    Duplicate {
        /// How long before (event time).
        ago_ns: i64,
    },
}

impl std::fmt::Display for Suppressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suppressed::Duplicate { ago_ns } => write!(
                f,
                "duplicate: the same instrument and type was alerted {} min earlier (event time)",
                ago_ns / 60_000_000_000
            ),
        }
    }
}

/// Suppresses repeats: the same instrument and opportunity type within `window_ns` of event
/// time (30 minutes by default). An escalation (BUY to STRONG_BUY) or a change of side is not a
/// repeat. Keyed on event time, so replays and backtests suppress exactly what live did.
#[derive(Clone, Debug)]
pub struct Deduplicator {
    window_ns: i64,
    last: HashMap<InstrumentId, (OpportunityKind, UnixNanos)>,
}

impl Deduplicator {
    /// A de-duplicator with a window of `window_ns`.
    pub fn new(window_ns: i64) -> Self {
        Self {
            window_ns,
            last: HashMap::new(),
        }
    }

    /// Whether `o` should be sent; remembers it when it is.
    pub fn check(&mut self, o: &Opportunity) -> Result<(), Suppressed> {
        let now = o.generated_at();
        if let Some(&(kind, at)) = self.last.get(&o.instrument()) {
            let ago_ns = now - at;
            let same = kind == o.kind();
            let escalation = matches!(
                (kind, o.kind()),
                (OpportunityKind::Buy, OpportunityKind::StrongBuy)
                    | (OpportunityKind::Sell, OpportunityKind::StrongSell)
            );
            let weaker_same_side = matches!(
                (kind, o.kind()),
                (OpportunityKind::StrongBuy, OpportunityKind::Buy)
                    | (OpportunityKind::StrongSell, OpportunityKind::Sell)
            );
            if (same || weaker_same_side) && !escalation && ago_ns < self.window_ns {
                return Err(Suppressed::Duplicate { ago_ns });
            }
        }
        self.last.insert(o.instrument(), (o.kind(), now));
        Ok(())
    }
}

/// A token bucket: `capacity` tokens, refilled continuously at `capacity` per `period_ns`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_ns: f64,
    tokens: f64,
    last: UnixNanos,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled over `period_ns`, starting at `now`.
    pub fn new(capacity: u32, period_ns: i64, now: UnixNanos) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            per_ns: capacity / period_ns.max(1) as f64,
            tokens: capacity,
            last: now,
        }
    }

    /// The original plan's hourly budgets: Telegram 50, Discord 100, email 20, SMS 5; webhook
    /// 600; console unlimited (`None`).
    pub fn hourly_default(channel: Channel, now: UnixNanos) -> Option<Self> {
        let hour = 3_600_000_000_000;
        let per_hour = match channel {
            Channel::Telegram => 50,
            Channel::Discord => 100,
            Channel::Email => 20,
            Channel::Sms => 5,
            Channel::Webhook => 600,
            Channel::Console => return None,
        };
        Some(Self::new(per_hour, hour, now))
    }

    /// Takes a token at `now`, or says how long until one is available.
    pub fn try_take(&mut self, now: UnixNanos) -> Result<(), i64> {
        if now > self.last {
            self.tokens = (self.tokens + (now - self.last) as f64 * self.per_ns).min(self.capacity);
            self.last = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.per_ns).ceil() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atalaya_model::{FactorContribution, OpportunityRaw, Timeframe};

    const MIN: i64 = 60_000_000_000;

    fn opp(kind: OpportunityKind, at: i64) -> Opportunity {
        let v = if kind.direction() > 0 { 0.7 } else { -0.7 };
        Opportunity::new(OpportunityRaw {
            id: 1,
            instrument: "binance:BTC/USDT".parse().unwrap(),
            timeframe: Timeframe::H1,
            kind,
            score: v,
            confidence: 0.8,
            expected_return: v / 100.0,
            risk_level: 0.3,
            horizon_ns: MIN,
            price: 100.0,
            stop_loss: None,
            take_profit: None,
            generated_at: at,
            factors: vec![FactorContribution {
                name: "t".into(),
                available: true,
                value: v,
                weight: 1.0,
                contribution: v,
                detail: String::new(),
            }],
        })
        .unwrap()
    }

    #[test]
    fn routes_follow_the_plan_and_only_configured_channels() {
        let r = Routes::default();
        let configured = [Channel::Telegram, Channel::Discord, Channel::Console];
        assert_eq!(
            r.route(AlertPriority::Low, &configured),
            vec![Channel::Telegram, Channel::Console]
        );
        assert_eq!(
            r.route(AlertPriority::High, &configured),
            vec![Channel::Telegram, Channel::Discord, Channel::Console]
        );
        assert_eq!(
            r.route(AlertPriority::Critical, &[Channel::Sms]),
            vec![Channel::Sms]
        );
        assert!(r.route(AlertPriority::Medium, &[Channel::Sms]).is_empty());
    }

    #[test]
    fn duplicates_are_suppressed_within_the_window_but_escalations_pass() {
        let mut d = Deduplicator::new(30 * MIN);
        assert!(d.check(&opp(OpportunityKind::Buy, 0)).is_ok());
        assert_eq!(
            d.check(&opp(OpportunityKind::Buy, 10 * MIN)),
            Err(Suppressed::Duplicate { ago_ns: 10 * MIN })
        );
        assert!(
            d.check(&opp(OpportunityKind::StrongBuy, 11 * MIN)).is_ok(),
            "escalation"
        );
        assert!(
            d.check(&opp(OpportunityKind::Buy, 12 * MIN)).is_err(),
            "weaker on the same side"
        );
        assert!(
            d.check(&opp(OpportunityKind::Sell, 13 * MIN)).is_ok(),
            "change of side"
        );
        assert!(
            d.check(&opp(OpportunityKind::Sell, 13 * MIN + 30 * MIN))
                .is_ok(),
            "window passed"
        );
    }

    #[test]
    fn buckets_refill_over_time() {
        let hour = 60 * MIN;
        let mut b = TokenBucket::hourly_default(Channel::Sms, 0).unwrap();
        for _ in 0..5 {
            assert!(b.try_take(0).is_ok());
        }
        let wait = b.try_take(0).unwrap_err();
        assert_eq!(wait, hour / 5);
        assert!(b.try_take(wait).is_ok());
        assert!(TokenBucket::hourly_default(Channel::Console, 0).is_none());
    }
}

/// A daily quiet window in UTC, such as `22:00-07:00` (it may wrap past midnight). During it,
/// alerts below critical wait for the window to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    start_min: i64,
    end_min: i64,
}

impl std::str::FromStr for QuietHours {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("invalid quiet hours {s:?}: expected HH:MM-HH:MM in UTC, e.g. 22:00-07:00");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Result<i64, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if (0..24).contains(&h) && (0..60).contains(&m) {
                Ok(h * 60 + m)
            } else {
                Err(bad())
            }
        };
        let (start_min, end_min) = (minutes(a)?, minutes(b)?);
        if start_min == end_min {
            return Err(format!(
                "invalid quiet hours {s:?}: start and end are equal"
            ));
        }
        Ok(Self { start_min, end_min })
    }
}

impl QuietHours {
    /// If `now` falls in the window, when it ends; else `None`.
    pub fn ends_at(&self, now: UnixNanos) -> Option<UnixNanos> {
        const MIN: i64 = 60_000_000_000;
        const DAY: i64 = 1440;
        let day_start = now.div_euclid(DAY * MIN) * DAY * MIN;
        let m = (now - day_start) / MIN;
        let inside = if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&m)
        } else {
            m >= self.start_min || m < self.end_min
        };
        if !inside {
            return None;
        }
        let end_today = day_start + self.end_min * MIN;
        Some(if end_today > now {
            end_today
        } else {
            end_today + DAY * MIN
        })
    }
}

#[cfg(test)]
mod quiet_tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    #[test]
    fn windows_wrap_past_midnight() {
        let q: QuietHours = "22:00-07:00".parse().unwrap();
        assert_eq!(q.ends_at(23 * H), Some(24 * H + 7 * H));
        assert_eq!(q.ends_at(24 * H + 3 * H), Some(24 * H + 7 * H));
        assert_eq!(q.ends_at(12 * H), None);
        let d: QuietHours = "01:30-02:00".parse().unwrap();
        assert_eq!(d.ends_at(H + H / 2), Some(2 * H));
        assert_eq!(d.ends_at(2 * H), None);
        for bad in ["", "22-07", "25:00-01:00", "10:00-10:00", "ab:cd-01:00"] {
            assert!(bad.parse::<QuietHours>().is_err(), "{bad}");
        }
    }
}
