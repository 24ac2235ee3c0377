//! Money helpers: integer minor units to `Decimal` by currency exponent, and exact decimal text.
//!
//! Each provider has its own exponent table (they disagree: Adyen uses 2 decimals for CLP and 0
//! for IDR, Stripe the opposite), so the tables live in the provider modules and this module
//! only does the arithmetic. Nothing here rounds: an amount is exact or refused.

use rust_decimal::Decimal;

use crate::Error;

/// An amount a provider sent in integer minor units, with its decimal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinorAmount {
    /// The integer as sent (cents for USD, yen for JPY, fils for KWD).
    pub minor: i64,
    /// ISO 4217 code, upper-cased.
    pub currency: String,
    /// `minor / 10^exponent` for this provider's exponent of `currency`.
    pub value: Decimal,
}

impl MinorAmount {
    /// Builds an amount from minor units and an exponent (number of decimals).
    pub(crate) fn new(minor: i64, currency: &str, exponent: u32) -> Result<Self, Error> {
        let value = Decimal::try_new(minor, exponent)
            .map_err(|e| Error::malformed("currency", e.to_string()))?;
        Ok(MinorAmount {
            minor,
            currency: currency.to_ascii_uppercase(),
            value,
        })
    }
}

/// The longest decimal text a provider amount may be, in bytes.
pub const DECIMAL_TEXT_LEN_MAX: usize = 64;

/// Parses decimal text (`"100.50"`, `"-3"`, `"1.5e2"`) exactly into a `Decimal`. Never
/// rounds: text with more digits than a `Decimal` holds (28 decimal places, a 96-bit
/// mantissa) is `None`, like text that is not a number, so the caller refuses it naming
/// the field (`"0.0000000000000000000000000000001"` is not 0).
pub fn parse_decimal_text(text: &str) -> Option<Decimal> {
    if text.is_empty() || text.len() > DECIMAL_TEXT_LEN_MAX {
        return None;
    }
    let Some((base, exponent)) = text.split_once(['e', 'E']) else {
        return Decimal::from_str_exact(text).ok();
    };
    let mut value = Decimal::from_str_exact(base).ok()?;
    let exponent: i64 = exponent.parse().ok()?;
    let scale = i64::from(value.scale()).checked_sub(exponent)?;
    if scale >= 0 {
        // Moving the point left (or right within the fraction) is exact or out of range.
        value.set_scale(u32::try_from(scale).ok()?).ok()?;
        Some(value)
    } else {
        value.set_scale(0).ok()?;
        let shift = u32::try_from(-scale)
            .ok()
            .filter(|s| *s <= Decimal::MAX_SCALE)?;
        let factor = Decimal::try_from_i128_with_scale(10_i128.checked_pow(shift)?, 0).ok()?;
        value.checked_mul(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_by_exponent() {
        let usd = MinorAmount::new(1130, "eur", 2)
            .ok()
            .map(|a| a.value.to_string());
        assert_eq!(usd.as_deref(), Some("11.30"));
        let jpy = MinorAmount::new(500, "JPY", 0)
            .ok()
            .map(|a| a.value.to_string());
        assert_eq!(jpy.as_deref(), Some("500"));
        let kwd = MinorAmount::new(1005, "KWD", 3)
            .ok()
            .map(|a| a.value.to_string());
        assert_eq!(kwd.as_deref(), Some("1.005"));
    }

    #[test]
    fn decimal_text() {
        assert_eq!(
            parse_decimal_text("100.50")
                .map(|d| d.to_string())
                .as_deref(),
            Some("100.50")
        );
        assert_eq!(
            parse_decimal_text("1.5e2")
                .map(|d| d.normalize().to_string())
                .as_deref(),
            Some("150")
        );
        assert_eq!(
            parse_decimal_text("1.5E+2")
                .map(|d| d.normalize().to_string())
                .as_deref(),
            Some("150")
        );
        assert!(parse_decimal_text("abc").is_none());
        assert!(parse_decimal_text("").is_none());
    }

    #[test]
    fn decimal_text_is_exact_or_refused() {
        for text in [
            "19.99999999999999999999999999999",
            "0.0000000000000000000000000000001",
            "1e-29",
            "1.5e-28",
            "1e29",
            "79228162514264337593543950336",
            "1e99999999999999999999",
            "1e-9223372036854775808",
        ] {
            assert_eq!(parse_decimal_text(text), None, "{text}");
        }
        let exact = |t: &str| parse_decimal_text(t).map(|d| d.to_string());
        assert_eq!(
            exact("1e-28").as_deref(),
            Some("0.0000000000000000000000000001")
        );
        assert_eq!(exact("1.25e1").as_deref(), Some("12.5"));
        assert_eq!(exact("12e-1").as_deref(), Some("1.2"));
        assert_eq!(
            exact("1e28").as_deref(),
            Some("10000000000000000000000000000")
        );
        assert_eq!(exact("-3").as_deref(), Some("-3"));
        assert_eq!(exact("0.00000001").as_deref(), Some("0.00000001"));
    }
}
