//! Why an audit line was written: the numbers of an approval, a fill or a sale kept as they
//! are and written out only when the line is read, shown or stored (a backtest makes three
//! such lines per trade and reads few of them); any other reason as its text.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::risk::Sizing;

/// The reason of an [`AuditEntry`](super::AuditEntry). It reads (through [`Display`](fmt::Display))
/// and serialises as a string; two reasons are equal when they read the same.
#[derive(Clone, Debug)]
pub enum Reason {
    /// Written out.
    Text(String),
    /// An approved entry: its size, the price it was sized at, the equity then, and the
    /// signal's reason.
    Approve {
        /// The sizing rule.
        sizing: Sizing,
        /// The quantity sized.
        qty: f64,
        /// The price sized at.
        price: f64,
        /// The equity sized on.
        equity: f64,
        /// The reason of the entry signal.
        signal: String,
    },
    /// A buy fill.
    Buy {
        /// The quantity bought.
        qty: Decimal,
        /// The fill price, after slippage.
        price: Decimal,
        /// The fee paid.
        fee: Decimal,
    },
    /// A sell fill that closed a position.
    Sell {
        /// The quantity sold.
        qty: Decimal,
        /// The fill price, after slippage.
        price: Decimal,
        /// The round trip's P&L after fees.
        pnl: Decimal,
        /// The P&L over the entry's cost.
        return_pct: f64,
        /// Why the position was closed.
        why: String,
    },
    /// The drawdown breaker tripped: new entries are paused.
    Tripped {
        /// The drawdown from the equity peak, as a fraction.
        drawdown: f64,
        /// The limit it reached, as a fraction.
        limit: f64,
        /// Bars entries stay paused.
        bars: u64,
    },
    /// The drawdown breaker let entries resume.
    Resumed {
        /// The equity the peak was reset to.
        peak: f64,
    },
}

impl Reason {
    /// Whether this is a breaker's trip (`Some(true)`) or resumption (`Some(false)`); `None`
    /// for any other reason. A reason read back as text (from a stored journal) is told by
    /// its words.
    pub fn breaker(&self) -> Option<bool> {
        match self {
            Self::Tripped { .. } => Some(true),
            Self::Resumed { .. } => Some(false),
            Self::Text(s) if s.starts_with(TRIPPED) => Some(true),
            Self::Text(s) if s.starts_with(RESUMED) => Some(false),
            _ => None,
        }
    }
}

/// How a trip's text starts.
const TRIPPED: &str = "drawdown ";
/// How a resumption's text starts.
const RESUMED: &str = "entries resume";

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Approve {
                sizing,
                qty,
                price,
                equity,
                signal,
            } => {
                let head = format!(
                    "{sizing:?} sizing: {qty:.8} at {price} ({:.2}% of equity {equity:.2})",
                    qty * price / equity * 100.0
                );
                write!(f, "{}; signal: {signal}", head.to_lowercase())
            }
            Self::Buy { qty, price, fee } => {
                write!(f, "{qty} at {price} (fee {})", fee.round_dp(8))
            }
            Self::Sell {
                qty,
                price,
                pnl,
                return_pct,
                why,
            } => write!(
                f,
                "{qty} at {price}: P&L {} ({:+.2}%); {why}",
                pnl.round_dp(2),
                return_pct * 100.0
            ),
            Self::Tripped {
                drawdown,
                limit,
                bars,
            } => write!(
                f,
                "{TRIPPED}{:.2}% reached the {:.2}% limit: new entries paused for {bars} bars",
                drawdown * 100.0,
                limit * 100.0
            ),
            Self::Resumed { peak } => write!(f, "{RESUMED}; equity peak reset to {peak:.2}"),
        }
    }
}

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl PartialEq for Reason {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Text(a), Self::Text(b)) => a == b,
            _ => self.to_string() == other.to_string(),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_the_trader_wrote_them() {
        let approve = Reason::Approve {
            sizing: Sizing::FixedFraction,
            qty: 0.5,
            price: 20_000.0,
            equity: 100_000.0,
            signal: "rule A held".into(),
        };
        assert_eq!(
            approve.to_string(),
            "fixedfraction sizing: 0.50000000 at 20000 (10.00% of equity 100000.00); signal: rule A held"
        );
        let buy = Reason::Buy {
            qty: Decimal::new(5, 1),
            price: Decimal::new(200_040, 1),
            fee: Decimal::new(10_002_000_000_001, 12),
        };
        assert_eq!(buy.to_string(), "0.5 at 20004.0 (fee 10.00200000)");
        let sell = Reason::Sell {
            qty: Decimal::new(5, 1),
            price: Decimal::new(21_000, 0),
            pnl: Decimal::new(47_889_555, 5),
            return_pct: 0.047_8,
            why: "stop".into(),
        };
        assert_eq!(sell.to_string(), "0.5 at 21000: P&L 478.90 (+4.78%); stop");
        // Serialised as the text; read back as text, equal to what it was.
        let json = serde_json::to_string(&sell).unwrap();
        assert_eq!(json, "\"0.5 at 21000: P&L 478.90 (+4.78%); stop\"");
        let back: Reason = serde_json::from_str(&json).unwrap();
        assert!(matches!(back, Reason::Text(_)));
        assert_eq!(back, sell);
        assert_ne!(back, buy);
        assert_eq!(sell.breaker(), None);
    }

    #[test]
    fn breaker_changes_read_as_before_and_are_told_apart_as_text_too() {
        let trip = Reason::Tripped {
            drawdown: 0.1234,
            limit: 0.1,
            bars: 24,
        };
        assert_eq!(
            trip.to_string(),
            "drawdown 12.34% reached the 10.00% limit: new entries paused for 24 bars"
        );
        let resume = Reason::Resumed { peak: 98_765.432 };
        assert_eq!(
            resume.to_string(),
            "entries resume; equity peak reset to 98765.43"
        );
        for (r, want) in [(trip, Some(true)), (resume, Some(false))] {
            assert_eq!(r.breaker(), want);
            // As a stored journal gives it back.
            let back: Reason = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert!(matches!(back, Reason::Text(_)));
            assert_eq!(back.breaker(), want);
        }
        assert_eq!(Reason::from("rule A held").breaker(), None);
    }
}
