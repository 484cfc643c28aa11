//! Timestamps: RFC 3339 UTC with exactly three fractional digits, everywhere.
//!
//! One fixed width means the stored strings sort in time order and a value read back
//! equals the value written.

use chrono::{DateTime, DurationRound, SecondsFormat, Utc};

/// The current time, cut to whole milliseconds.
pub fn now() -> DateTime<Utc> {
    whole_millis(Utc::now())
}

/// `t` cut to whole milliseconds, as every stored time is.
pub fn whole_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The minute `at` falls in.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(chrono::Duration::minutes(1))
        .unwrap_or(at)
}

pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The one RFC 3339 parser: any offset (converted to UTC), and `T` and `Z` in either case.
pub fn parse(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&raw.to_ascii_uppercase())
        .ok()
        .map(|t| t.to_utc())
}

/// `#[serde(with = "crate::domain::time::rfc3339_millis")]`
pub mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        super::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom(format!("{raw:?} is not an RFC 3339 time")))
    }
}

/// `#[serde(serialize_with = "crate::domain::time::optional_rfc3339_millis")]`: a time as
/// [`rfc3339_millis`] writes it, or `null`.
pub fn optional_rfc3339_millis<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format(t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_millis() {
        let t = DateTime::from_timestamp_millis(1_764_230_400_000).expect("valid");
        assert_eq!(format(&t), "2025-11-27T08:00:00.000Z");
        let n = now();
        assert_eq!(n.timestamp_subsec_nanos() % 1_000_000, 0);
    }

    #[test]
    fn parses_rfc_3339_in_either_case() {
        for ok in [
            "2026-11-27T08:00:00Z",
            "2026-11-27t08:00:00z",
            "2026-11-27T08:00:00.123456789+05:30",
            "0001-01-01T00:00:00Z",
        ] {
            assert!(parse(ok).is_some(), "{ok}");
        }
        assert_eq!(
            parse("2026-11-27T13:30:00+05:30"),
            parse("2026-11-27T08:00:00Z")
        );
        for bad in ["yesterday", "2026-11-27", "2026-13-01T00:00:00Z", ""] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
