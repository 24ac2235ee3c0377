//! Times on the wire: RFC 3339 in UTC with at most millisecond precision
//! (`2026-11-20T10:00:00Z`, `2026-11-20T10:00:01.250Z`), and [`Timestamp`] (Unix
//! milliseconds) inside.
//!
//! The reader is stricter than RFC 3339 so that the decoder and the JSON Schema's pattern
//! agree: an uppercase `T` and `Z`, no other offset, and one to three fraction digits.

use domain::Timestamp;
use serde::{Deserialize, Deserializer, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// The earliest instant RFC 3339 can write: `0000-01-01T00:00:00Z`, in Unix milliseconds.
pub const TIMESTAMP_MIN_MS: i64 = -62_167_219_200_000;
/// The latest instant RFC 3339 can write: `9999-12-31T23:59:59.999Z`, in Unix milliseconds.
pub const TIMESTAMP_MAX_MS: i64 = 253_402_300_799_999;

const NANOS_PER_MILLI: i128 = 1_000_000;

/// Writes `t` as RFC 3339 UTC, with three fraction digits when it has milliseconds.
///
/// A timestamp outside years 0000–9999 cannot be written in RFC 3339 and is clamped to the
/// nearest instant that can. No clock produces one; clamping keeps encoding infallible.
pub fn format(t: Timestamp) -> String {
    let ms = t.0.clamp(TIMESTAMP_MIN_MS, TIMESTAMP_MAX_MS);
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let Ok(dt) = OffsetDateTime::from_unix_timestamp(seconds) else {
        // Unreachable: the clamp keeps `seconds` inside the range `time` supports.
        return String::from("0000-01-01T00:00:00Z");
    };
    let body = dt
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_else(|_| String::from("0000-01-01T00:00:00"));
    if millis == 0 {
        format!("{body}Z")
    } else {
        format!("{body}.{millis:03}Z")
    }
}

/// Reads an RFC 3339 UTC time in the wire's shape; `Err` says what is wrong.
pub fn parse(s: &str) -> Result<Timestamp, String> {
    if !has_wire_shape(s) {
        return Err(format!(
            "{s:?} is not an RFC 3339 UTC time like 2026-11-20T10:00:01.250Z"
        ));
    }
    let dt = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("{s:?} is not a valid time: {e}"))?;
    let ms = dt.unix_timestamp_nanos() / NANOS_PER_MILLI;
    i64::try_from(ms)
        .map(Timestamp)
        .map_err(|_| format!("{s:?} is out of range"))
}

/// `YYYY-MM-DDTHH:MM:SS`, an optional `.` with one to three digits, then `Z`.
fn has_wire_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let Some((&b'Z', head)) = b.split_last() else {
        return false;
    };
    if head.len() < 19 {
        return false;
    }
    let (base, fraction) = head.split_at(19);
    let base_ok = base.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b'T',
        13 | 16 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    let fraction_ok = match fraction.split_first() {
        None => true,
        Some((&b'.', digits)) => {
            (1..=3).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
        }
        Some(_) => false,
    };
    base_ok && fraction_ok
}

/// Serde helper: reads a [`Timestamp`] from RFC 3339. A refusal is a custom error with
/// [`parse`]'s message, which the decoder reports at the field's path.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

/// Serde helper: reads an RFC 3339 time or `null`; the key itself stays required (serde
/// defaults a missing `Option` only when no `deserialize_with` is given).
pub(crate) fn deserialize_nullable<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Timestamp>, D::Error> {
    match crate::de::nullable_string(d)? {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Serde helper for an optional key (with `#[serde(default)]`): present, it must be an
/// RFC 3339 time, never `null`.
pub(crate) fn deserialize_present<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Timestamp>, D::Error> {
    deserialize(d).map(Some)
}

/// Serde helper: writes a [`Timestamp`] as RFC 3339.
pub(crate) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

/// Serde helper: writes an optional [`Timestamp`] as RFC 3339 or `null`.
pub(crate) fn serialize_option<S: Serializer>(
    t: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_whole_seconds_without_fraction_and_millis_with_three_digits() {
        let t = parse("2026-11-20T10:00:00Z").unwrap();
        assert_eq!(format(t), "2026-11-20T10:00:00Z");
        let t = parse("2026-11-20T10:00:01.25Z").unwrap();
        assert_eq!(format(t), "2026-11-20T10:00:01.250Z");
        assert_eq!(format(Timestamp(-1)), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_range_ends_round_trip_and_beyond_is_clamped() {
        for ms in [TIMESTAMP_MIN_MS, TIMESTAMP_MAX_MS, 0] {
            assert_eq!(parse(&format(Timestamp(ms))), Ok(Timestamp(ms)));
        }
        assert_eq!(format(Timestamp(i64::MAX)), "9999-12-31T23:59:59.999Z");
        assert_eq!(format(Timestamp(i64::MIN)), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn refuses_other_shapes() {
        for s in [
            "2026-11-20T10:00:00+00:00",
            "2026-11-20t10:00:00z",
            "2026-11-20T10:00:00.2500Z",
            "2026-11-20 10:00:00Z",
            "2026-13-20T10:00:00Z",
            "2026-11-20T10:00:00.Z",
            "",
        ] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}
