//! Converting between [`UnixNanos`](crate::UnixNanos) and the ISO-8601 text people type, without a
//! calendar dependency (Howard Hinnant's civil-date algorithms).

use crate::{ModelError, NANOS_PER_SECOND, UnixNanos};

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses a UTC time: `2024-01-31`, `2024-01-31T12:00:00Z`, `2024-01-31 12:00:00`, or an
/// integer of nanoseconds (≥ 10^15), milliseconds (≥ 10^11) or seconds since the epoch.
pub fn parse_utc(s: &str) -> Result<UnixNanos, ModelError> {
    let t = s.trim();
    let bad = |reason: &'static str| ModelError::InvalidTime {
        input: s.to_owned(),
        reason,
    };
    if let Ok(n) = t.parse::<i64>() {
        let abs = n.unsigned_abs();
        return Ok(if abs >= 1_000_000_000_000_000 {
            n
        } else if abs >= 100_000_000_000 {
            n.checked_mul(1_000_000)
                .ok_or_else(|| bad("out of range"))?
        } else {
            n.checked_mul(NANOS_PER_SECOND)
                .ok_or_else(|| bad("out of range"))?
        });
    }
    let (date, time) = match t.find(['T', ' ']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let num = |x: &str| x.parse::<i64>().map_err(|_| bad("expected digits"));
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected YYYY-MM-DD"));
    };
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad("month or day out of range"));
    }
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return Err(bad("no such date"));
    }
    let mut secs = days * 86_400;
    let mut nanos = 0i64;
    if let Some(time) = time {
        let time = time
            .strip_suffix('Z')
            .or_else(|| time.strip_suffix("+00:00"))
            .unwrap_or(time);
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        };
        let mut it = hms.split(':');
        let h = num(it.next().unwrap_or(""))?;
        let mi = it.next().map(num).transpose()?.unwrap_or(0);
        let sec = it.next().map(num).transpose()?.unwrap_or(0);
        if it.next().is_some()
            || !(0..24).contains(&h)
            || !(0..60).contains(&mi)
            || !(0..61).contains(&sec)
        {
            return Err(bad("expected HH:MM[:SS] in UTC"));
        }
        secs += h * 3600 + mi * 60 + sec;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("bad fractional seconds"));
            }
            nanos = num(f)? * 10i64.pow(9 - f.len() as u32);
        }
    }
    secs.checked_mul(NANOS_PER_SECOND)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(|| bad("out of range"))
}

/// Formats as `2024-01-31T12:00:00Z` (with `.fff` milliseconds when not whole seconds).
pub fn format_utc(ts: UnixNanos) -> String {
    let secs = ts.div_euclid(NANOS_PER_SECOND);
    let nanos = ts.rem_euclid(NANOS_PER_SECOND);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    if nanos == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            nanos / 1_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = parse_utc("2024-02-29T13:45:06Z").unwrap();
        assert_eq!(t, 1_709_214_306 * NANOS_PER_SECOND);
        assert_eq!(format_utc(t), "2024-02-29T13:45:06Z");
        assert_eq!(
            parse_utc("2023-01-01").unwrap(),
            1_672_531_200 * NANOS_PER_SECOND
        );
        assert_eq!(
            parse_utc("1672531200000").unwrap(),
            1_672_531_200 * NANOS_PER_SECOND
        );
        assert_eq!(
            parse_utc("1672531200").unwrap(),
            1_672_531_200 * NANOS_PER_SECOND
        );
        assert_eq!(
            format_utc(parse_utc("1969-12-31T23:59:59.5Z").unwrap()),
            "1969-12-31T23:59:59.500Z"
        );
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "2023-02-30",
            "2023-13-01",
            "yesterday",
            "2023-01-01T25:00",
            "2023-01",
        ] {
            assert!(parse_utc(s).is_err(), "{s}");
        }
    }
}
