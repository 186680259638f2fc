//! Resource quantities (`128Mi`, `250m`, `1.5`, `2e3`) parsed and printed as Kubernetes does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nano-units in one unit: quantities are held exactly as an integer count of 10^-9.
const NANO: i128 = 1_000_000_000;

/// How a quantity was written, which decides how it is printed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantityFormat {
    /// Powers of 1024: Ki, Mi, Gi, Ti, Pi, Ei.
    BinarySi,
    /// Powers of 1000: n, u, m, (none), k, M, G, T, P, E.
    DecimalSi,
    /// Scientific notation: `1e3`, `5E-3`.
    DecimalExponent,
}

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not follow `<sign><digits>[.<digits>]<suffix>`.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}"
    )]
    Syntax(String),
    /// The value does not fit the exact representation (below 1n or above ~1e18 Ei).
    #[error("quantity {0:?} is out of range")]
    OutOfRange(String),
}

/// A quantity of a resource: CPU in cores, memory in bytes. Held exactly, printed canonically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quantity {
    /// The value in units of 10^-9, rounded up as Kubernetes rounds sub-nano precision.
    nanos: i128,
    /// The format it was written in, kept for printing.
    format: QuantityFormat,
}

impl Quantity {
    /// A quantity of whole units printed in decimal SI (`2`, `3k`).
    pub fn from_units(units: i64) -> Self {
        Quantity {
            nanos: i128::from(units) * NANO,
            format: QuantityFormat::DecimalSi,
        }
    }

    /// A quantity of thousandths (CPU millicores), printed in decimal SI (`250m`).
    pub fn from_millis(millis: i64) -> Self {
        Quantity {
            nanos: i128::from(millis) * 1_000_000,
            format: QuantityFormat::DecimalSi,
        }
    }

    /// A byte count printed with binary suffixes (`128Mi`).
    pub fn from_bytes(bytes: i64) -> Self {
        Quantity {
            nanos: i128::from(bytes) * NANO,
            format: QuantityFormat::BinarySi,
        }
    }

    /// The value in thousandths, rounded up (what CPU requests are compared in).
    pub fn as_millis(&self) -> i64 {
        clamp_i64(div_ceil(self.nanos, 1_000_000))
    }

    /// The value in whole units, rounded up (what memory is compared in).
    pub fn as_units(&self) -> i64 {
        clamp_i64(div_ceil(self.nanos, NANO))
    }

    /// The format this quantity prints in.
    pub fn format(&self) -> QuantityFormat {
        self.format
    }

    /// True for a zero quantity.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// True for a quantity below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// Compares the amounts, ignoring how each was written (`1Ki` equals `1024`).
    pub fn cmp_value(&self, other: &Quantity) -> std::cmp::Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

fn div_ceil(value: i128, by: i128) -> i128 {
    let q = value / by;
    if value % by > 0 { q + 1 } else { q }
}

fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || QuantityError::Syntax(text.to_string());
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(syntax());
        }
        let (negative, rest) = match trimmed.as_bytes()[0] {
            b'-' => (true, &trimmed[1..]),
            b'+' => (false, &trimmed[1..]),
            _ => (false, trimmed),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(syntax());
        }
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let (format, base, exponent) = parse_suffix(suffix).ok_or_else(syntax)?;
        // value = digits * 10^-len(frac) * base^exponent, computed in nanos.
        let digits: String = format!("{whole}{frac}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(QuantityError::OutOfRange(text.to_string()));
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| syntax())?
        };
        let mut scale_num: i128 = NANO;
        let mut scale_den: i128 = 10i128.pow(u32::try_from(frac.len()).map_err(|_| syntax())?);
        let out_of_range = || QuantityError::OutOfRange(text.to_string());
        match base {
            2 => {
                let factor = 1i128
                    .checked_shl(u32::try_from(exponent).map_err(|_| syntax())?)
                    .ok_or_else(out_of_range)?;
                scale_num = scale_num.checked_mul(factor).ok_or_else(out_of_range)?;
            }
            _ => {
                if exponent >= 0 {
                    let factor = 10i128
                        .checked_pow(u32::try_from(exponent).map_err(|_| syntax())?)
                        .ok_or_else(out_of_range)?;
                    scale_num = scale_num.checked_mul(factor).ok_or_else(out_of_range)?;
                } else {
                    let factor = 10i128
                        .checked_pow(u32::try_from(-exponent).map_err(|_| syntax())?)
                        .ok_or_else(out_of_range)?;
                    scale_den = scale_den.checked_mul(factor).ok_or_else(out_of_range)?;
                }
            }
        }
        let product = mantissa.checked_mul(scale_num).ok_or_else(out_of_range)?;
        let mut nanos = div_ceil(product, scale_den);
        if nanos > 10i128.pow(30) {
            return Err(out_of_range());
        }
        if negative {
            nanos = -nanos;
        }
        Ok(Quantity { nanos, format })
    }
}

/// Splits a suffix into its format, base and exponent (`Mi` → binary, 2, 20).
fn parse_suffix(suffix: &str) -> Option<(QuantityFormat, u32, i32)> {
    let decimal = |e| Some((QuantityFormat::DecimalSi, 10, e));
    let binary = |e| Some((QuantityFormat::BinarySi, 2, e));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i32 = rest.parse().ok()?;
            if rest.is_empty() || !(-30..=30).contains(&exponent) {
                return None;
            }
            Some((QuantityFormat::DecimalExponent, 10, exponent))
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.abs();
        if abs == 0 {
            return f.write_str("0");
        }
        if self.format == QuantityFormat::BinarySi && abs % NANO == 0 {
            let units = abs / NANO;
            for (shift, suffix) in [
                (60, "Ei"),
                (50, "Pi"),
                (40, "Ti"),
                (30, "Gi"),
                (20, "Mi"),
                (10, "Ki"),
            ] {
                let factor = 1i128 << shift;
                if units % factor == 0 {
                    return write!(f, "{sign}{}{suffix}", units / factor);
                }
            }
            return write!(f, "{sign}{units}");
        }
        // Decimal: the largest power-of-1000 suffix that keeps the mantissa whole.
        let exponent_form = self.format == QuantityFormat::DecimalExponent;
        for (exp, suffix) in [
            (18, "E"),
            (15, "P"),
            (12, "T"),
            (9, "G"),
            (6, "M"),
            (3, "k"),
            (0, ""),
            (-3, "m"),
            (-6, "u"),
            (-9, "n"),
        ] {
            let factor = 10i128.pow((exp + 9) as u32);
            if abs % factor == 0 {
                let mantissa = abs / factor;
                return if exponent_form && exp != 0 {
                    write!(f, "{sign}{mantissa}e{exp}")
                } else {
                    write!(f, "{sign}{mantissa}{suffix}")
                };
            }
        }
        write!(f, "{sign}{abs}n")
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Quantities arrive as strings, but YAML and JSON users also write bare numbers.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(t) => t,
            Raw::Int(i) => i.to_string(),
            Raw::Float(x) => x.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        text.parse::<Quantity>().unwrap().to_string()
    }

    #[test]
    fn prints_canonical_forms_like_kubernetes() {
        for (input, want) in [
            ("128Mi", "128Mi"),
            ("250m", "250m"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1.5Gi", "1536Mi"),
            ("1024Mi", "1Gi"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("2", "2"),
            ("0", "0"),
            ("1e3", "1e3"),
            ("100M", "100M"),
            ("-250m", "-250m"),
            ("1Ki", "1Ki"),
            ("100", "100"),
        ] {
            assert_eq!(canon(input), want, "{input}");
        }
    }

    #[test]
    fn converts_to_millis_and_units() {
        assert_eq!("250m".parse::<Quantity>().unwrap().as_millis(), 250);
        assert_eq!("2".parse::<Quantity>().unwrap().as_millis(), 2000);
        assert_eq!(
            "128Mi".parse::<Quantity>().unwrap().as_units(),
            128 * 1024 * 1024
        );
        assert_eq!("1G".parse::<Quantity>().unwrap().as_units(), 1_000_000_000);
        assert_eq!("1n".parse::<Quantity>().unwrap().as_millis(), 1);
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in ["", "abc", "1.2.3", "12Q", "Mi", "1e", "--1", "."] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn accepts_bare_numbers_in_json() {
        let q: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(q.to_string(), "2");
        let q: Quantity = serde_json::from_str("\"64Mi\"").unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"64Mi\"");
    }
}
