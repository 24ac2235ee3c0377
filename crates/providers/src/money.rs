//! Money helpers: integer minor units to `Decimal` by currency exponent, and exact decimal text.
//!
//! Each provider has its own exponent table (they disagree: Adyen uses 2 decimals for CLP and 0
//! for IDR, Stripe the opposite), so the tables live in the provider modules and this module
//! only does the arithmetic.

use std::str::FromStr;

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

/// Parses decimal text (`"100.50"`, `"-3"`, `"1.5e2"`) exactly into a `Decimal`.
pub(crate) fn parse_decimal_text(text: &str) -> Option<Decimal> {
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if text.contains(['e', 'E']) {
        return Decimal::from_scientific(text).ok();
    }
    Decimal::from_str(text).ok()
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
}
