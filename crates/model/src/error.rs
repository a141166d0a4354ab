use crate::UnixNanos;

/// Every way a domain value can be rejected.
///
/// Messages name the offending input so that a user reading a log line or a CLI error knows
/// what to fix without opening the source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A symbol (venue, asset or source name) was empty, too long or had a bad character.
    #[error("invalid symbol {input:?}: {reason}")]
    InvalidSymbol {
        /// The rejected text.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An instrument id did not have the shape `venue:BASE/QUOTE`.
    #[error(
        "invalid instrument {input:?}: {reason} (expected venue:BASE/QUOTE, e.g. binance:BTC/USDT)"
    )]
    InvalidInstrument {
        /// The rejected text.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A timeframe string was not one of the supported intervals.
    #[error("invalid timeframe {input:?}: expected one of {expected}")]
    InvalidTimeframe {
        /// The rejected text.
        input: String,
        /// The supported values, comma separated.
        expected: &'static str,
    },
    /// A numeric field was not finite, negative where it must not be, or out of range.
    #[error("invalid {what}: {field} = {value} ({reason})")]
    InvalidValue {
        /// The type being built.
        what: &'static str,
        /// The field name.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A candle's prices contradict each other (for example `high < close`).
    #[error("inconsistent candle at {open_time}: {reason}")]
    InconsistentCandle {
        /// The candle's open time in nanoseconds.
        open_time: UnixNanos,
        /// Which relation was broken.
        reason: &'static str,
    },
    /// A bar's open time does not fall on its timeframe's grid.
    #[error("open time {open_time} ns is not aligned to the {timeframe} grid")]
    Misaligned {
        /// The open time in nanoseconds.
        open_time: UnixNanos,
        /// The timeframe whose grid was expected.
        timeframe: &'static str,
    },
    /// A text field that must carry content was empty.
    #[error("invalid {what}: {field} must not be empty")]
    EmptyField {
        /// The type being built.
        what: &'static str,
        /// The field name.
        field: &'static str,
    },
    /// An opportunity's factor contributions do not add up to its score.
    #[error("opportunity factors add up to {sum} but the score is {score}")]
    ScoreMismatch {
        /// Sum of the factor contributions.
        sum: f64,
        /// The stated score.
        score: f64,
    },
    /// A time could not be parsed.
    #[error(
        "invalid time {input:?}: {reason} (use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or epoch seconds/ms/ns)"
    )]
    InvalidTime {
        /// The rejected text.
        input: String,
        /// Why.
        reason: &'static str,
    },
    /// An opportunity type was not one of the five names.
    #[error(
        "invalid opportunity type {input:?}: expected STRONG_BUY, BUY, HOLD, SELL or STRONG_SELL"
    )]
    InvalidOpportunityKind {
        /// The rejected text.
        input: String,
    },
    /// A money amount could not be represented.
    #[error("invalid amount for {field}: {reason}")]
    InvalidAmount {
        /// The field name.
        field: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
}

/// Checks that `value` is finite.
pub(crate) fn finite(
    what: &'static str,
    field: &'static str,
    value: f64,
) -> Result<f64, ModelError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::InvalidValue {
            what,
            field,
            value,
            reason: "must be finite",
        })
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(
    what: &'static str,
    field: &'static str,
    value: f64,
) -> Result<f64, ModelError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ModelError::InvalidValue {
            what,
            field,
            value,
            reason: "must be finite and > 0",
        })
    }
}

/// Checks that `value` is finite and not negative.
pub(crate) fn non_negative(
    what: &'static str,
    field: &'static str,
    value: f64,
) -> Result<f64, ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ModelError::InvalidValue {
            what,
            field,
            value,
            reason: "must be finite and >= 0",
        })
    }
}

/// Checks that `value` lies in `[lo, hi]`.
pub(crate) fn in_range(
    what: &'static str,
    field: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    reason: &'static str,
) -> Result<f64, ModelError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ModelError::InvalidValue {
            what,
            field,
            value,
            reason,
        })
    }
}
