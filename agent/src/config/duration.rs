//! Humane durations for flags and environment variables: `500ms`, `10s`, `5m`, `1h30m`.

use std::time::Duration;

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationParseError {
    /// Nothing was given.
    #[error("empty duration")]
    Empty,
    /// A part lacks its number (`ms`) or the text has stray characters.
    #[error("invalid duration {0:?}: expected numbers with units like 500ms, 10s, 5m, 1h30m")]
    Malformed(String),
    /// A unit other than `ms`, `s`, `m` or `h`.
    #[error("invalid duration {input:?}: unknown unit {unit:?} (use ms, s, m or h)")]
    UnknownUnit {
        /// The whole text.
        input: String,
        /// The unit that is not known.
        unit: String,
    },
    /// The value does not fit a `Duration`.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// Parses `500ms`, `10s`, `5m`, `2h`, sums like `1m30s`, and a bare number as seconds.
pub fn parse_duration(input: &str) -> Result<Duration, DurationParseError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(DurationParseError::Empty);
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let malformed = || DurationParseError::Malformed(input.to_string());
    let overflow = || DurationParseError::Overflow(input.to_string());
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(malformed)?;
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: f64 = number.parse().map_err(|_| malformed())?;
        let unit_seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(DurationParseError::UnknownUnit {
                    input: input.to_string(),
                    unit: unit.to_string(),
                });
            }
        };
        let part = Duration::try_from_secs_f64(value * unit_seconds).map_err(|_| overflow())?;
        total = total.checked_add(part).ok_or_else(overflow)?;
        rest = next;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_sums() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("5m", Duration::from_secs(300)),
            ("2h", Duration::from_secs(7200)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
            ("20", Duration::from_secs(20)),
            (" 0s ", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        assert_eq!(parse_duration(""), Err(DurationParseError::Empty));
        assert!(matches!(
            parse_duration("10d"),
            Err(DurationParseError::UnknownUnit { unit, .. }) if unit == "d"
        ));
        assert!(matches!(
            parse_duration("ms"),
            Err(DurationParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("10"),
            Ok(d) if d == Duration::from_secs(10)
        ));
        assert!(matches!(
            parse_duration("1..2s"),
            Err(DurationParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationParseError::Overflow(_))
        ));
    }
}
