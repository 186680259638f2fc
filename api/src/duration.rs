//! Durations as Go and Kubernetes flags write them — `500ms`, `10s`, `5m`, `1h30m`, `1.5s` —
//! and a bare number as seconds; the one parser behind every duration flag of skiff.

use std::time::Duration;

/// Nanoseconds in one second.
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Fraction digits that are kept; more cannot change the result by a nanosecond.
const MAX_FRACTION_DIGITS: usize = 18;

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration: expected e.g. 500ms, 10s, 5m, 1h30m")]
    Empty,
    /// The text starts with a minus sign; skiff has no use for negative durations.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    /// A part lacks its number or its unit (`ms`, `3m4`), or the text has stray characters.
    #[error("invalid duration {0:?}: expected numbers with units like 500ms, 10s, 5m, 1h30m")]
    Malformed(String),
    /// A unit other than `ns`, `us`, `µs`, `ms`, `s`, `m` or `h`.
    #[error("invalid duration {input:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit {
        /// The whole text.
        input: String,
        /// The unit that is not known.
        unit: String,
    },
    /// The value does not fit a `Duration`.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
    /// Zero where only a positive duration makes sense (see [`parse_positive_duration`]).
    #[error("invalid duration {0:?}: must be greater than zero")]
    NotPositive(String),
}

/// Parses `500ms`, `10s`, `5m`, `2h`, sums like `1h30m`, fractions like `1.5s`, and a bare
/// number (`7`, `1.5`) as seconds; zero is allowed.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative(input.to_string()));
    }
    let overflow = || DurationError::Overflow(input.to_string());
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let nanos = scaled_nanos(input, text, NANOS_PER_SECOND)?;
        return nanos_to_duration(nanos).ok_or_else(overflow);
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let part = scaled_nanos(input, number, unit_nanos(input, unit)?)?;
        total = total.checked_add(part).ok_or_else(overflow)?;
        rest = next;
    }
    nanos_to_duration(total).ok_or_else(overflow)
}

/// Like [`parse_duration`], but rejects zero: for intervals a timer ticks at.
pub fn parse_positive_duration(input: &str) -> Result<Duration, DurationError> {
    let duration = parse_duration(input)?;
    if duration.is_zero() {
        return Err(DurationError::NotPositive(input.to_string()));
    }
    Ok(duration)
}

/// Nanoseconds in one `unit`; a missing unit (`3m4`) is malformed.
fn unit_nanos(input: &str, unit: &str) -> Result<u128, DurationError> {
    Ok(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3600 * NANOS_PER_SECOND,
        "" => return Err(DurationError::Malformed(input.to_string())),
        other => {
            return Err(DurationError::UnknownUnit {
                input: input.to_string(),
                unit: other.to_string(),
            });
        }
    })
}

/// `number` (digits with at most one `.`, at least one digit) times `unit` nanoseconds,
/// computed exactly; a fraction of a nanosecond is dropped.
fn scaled_nanos(input: &str, number: &str, unit: u128) -> Result<u128, DurationError> {
    let malformed = || DurationError::Malformed(input.to_string());
    let overflow = || DurationError::Overflow(input.to_string());
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(malformed());
    }
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| overflow())?
    };
    let mut nanos = whole_value.checked_mul(unit).ok_or_else(overflow)?;
    let fraction = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
    if !fraction.is_empty() {
        let fraction_value: u128 = fraction.parse().map_err(|_| malformed())?;
        let scale = 10u128.pow(fraction.len() as u32);
        nanos = nanos
            .checked_add(fraction_value * unit / scale)
            .ok_or_else(overflow)?;
    }
    Ok(nanos)
}

/// The `Duration` of `nanos` nanoseconds, if it fits.
fn nanos_to_duration(nanos: u128) -> Option<Duration> {
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).ok()?;
    let subsec = u32::try_from(nanos % NANOS_PER_SECOND).ok()?;
    Some(Duration::new(seconds, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_sums() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("40s", Duration::from_secs(40)),
            ("5m", Duration::from_secs(300)),
            ("2m", Duration::from_secs(120)),
            ("1m", Duration::from_secs(60)),
            ("2h", Duration::from_secs(7200)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.1s", Duration::from_millis(100)),
            (".5s", Duration::from_millis(500)),
            ("1.5h", Duration::from_secs(5400)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("1s500ms", Duration::from_millis(1500)),
            (" 0s ", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn every_flag_default_parses() {
        for (text, want) in [
            ("40s", 40_000),
            ("5m", 300_000),
            ("300s", 300_000),
            ("60s", 60_000),
            ("2s", 2_000),
            ("20s", 20_000),
            ("10s", 10_000),
            ("5s", 5_000),
            ("1s", 1_000),
            ("500ms", 500),
        ] {
            assert_eq!(
                parse_positive_duration(text),
                Ok(Duration::from_millis(want)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("   "), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::Negative("-5s".to_string()))
        );
        for unknown in ["10d", "3d", "1d", "5x"] {
            assert!(
                matches!(
                    parse_duration(unknown),
                    Err(DurationError::UnknownUnit { .. })
                ),
                "{unknown}"
            );
        }
        assert!(matches!(
            parse_duration("10d"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "d"
        ));
        for malformed in ["ms", "s", "3m4", "1..2s", ".", ".s", "fast", "5s fast"] {
            assert!(parse_duration(malformed).is_err(), "{malformed}");
        }
        assert!(matches!(
            parse_duration("ms"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("1..2s"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("3m4"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_duration("999999999999999999999999999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn positive_durations_reject_zero() {
        assert_eq!(
            parse_positive_duration("0s"),
            Err(DurationError::NotPositive("0s".to_string()))
        );
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("fast").is_err());
        assert_eq!(parse_positive_duration("1ns"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn messages_name_the_text_and_the_fix() {
        let message = parse_duration("3d").unwrap_err().to_string();
        assert!(
            message.contains("\"3d\"") && message.contains("unknown unit"),
            "{message}"
        );
        let message = parse_duration("-1s").unwrap_err().to_string();
        assert!(message.contains("negative"), "{message}");
        let message = parse_positive_duration("0s").unwrap_err().to_string();
        assert!(message.contains("greater than zero"), "{message}");
    }
}
