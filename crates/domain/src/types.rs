//! Validated newtypes for the words the ledger speaks: SKU, location, order reference,
//! quantity, money, event id and time. Each constructor refuses what the rest of the
//! system must never see (empty identifiers, zero quantities, floats for money), so code
//! that holds one of these values never re-checks it.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest identifier (SKU, location, order reference, …) accepted, in bytes.
pub const IDENTIFIER_LEN_MAX: usize = 200;

/// The largest quantity one line, receipt or correction may carry. Keeps every sum of
/// quantities far away from `i64` overflow.
pub const QUANTITY_MAX: u64 = 1_000_000_000;

/// The longest one-line free text an operator writes (the `reason` of an action or a
/// correction), in bytes.
pub const NOTE_LEN_MAX: usize = 1_000;

/// The longest `evidence` an operator attaches to an action or a correction, in bytes.
pub const EVIDENCE_LEN_MAX: usize = 4_000;

/// The longest payment method name accepted (`klarna_account`, `card_present`), in bytes:
/// providers' method names are short words; anything longer is not one.
pub const PAYMENT_METHOD_LEN_MAX: usize = 64;

/// The longest amount text accepted, in bytes: far more than the 28 decimal places and
/// 29 significant digits an exact decimal holds, so only nonsense is refused by length.
pub const AMOUNT_TEXT_LEN_MAX: usize = 64;

/// Why a value could not become one of the domain's newtypes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} bytes")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} must not contain control characters")]
    ControlCharacter { what: &'static str },
    #[error(
        "payment method must be 1 to {PAYMENT_METHOD_LEN_MAX} ASCII letters, digits, '_', '-' or '.', got {got:?}"
    )]
    PaymentMethod { got: String },
    #[error("quantity must be between 1 and {QUANTITY_MAX}, got {got}")]
    Quantity { got: i128 },
    #[error("currency must be three ASCII letters, got {got:?}")]
    Currency { got: String },
    #[error("currency {got:?} is not an ISO 4217 code (such as USD, EUR, KRW)")]
    UnknownCurrency { got: String },
    #[error(
        "amount must be a plain decimal such as \"100.50\" (digits and at most one point), got {got:?}"
    )]
    Amount { got: String },
    #[error("amount must not be negative, got {got}")]
    NegativeAmount { got: String },
    /// More digits than an exact decimal holds (28 decimal places, about 28 significant
    /// digits): refused rather than rounded.
    #[error(
        "amount {got:?} has more digits than an exact decimal holds (at most 28 decimal places and 28 significant digits); it is never rounded"
    )]
    AmountPrecision { got: String },
    /// More decimal places than the currency's minor unit (ISO 4217): `10.001` USD,
    /// `100.5` KRW. Trailing zeros do not count (`40.00` KRW is 40).
    #[error(
        "amount {got} has more decimal places than {currency} allows ({minor_units}); it is never rounded"
    )]
    AmountMinorUnits {
        got: String,
        currency: String,
        minor_units: u32,
    },
}

/// Checks one line of operator-written free text (an actor, a reason): at most `max`
/// bytes and no control character at all (no NUL, no line break, no ANSI escape), so it
/// is stored as given by both databases and prints as itself in a terminal or a log line.
/// Emptiness is the caller's rule.
pub fn check_line(what: &'static str, s: &str, max: usize) -> Result<(), InvalidValue> {
    if s.len() > max {
        return Err(InvalidValue::TooLong { what, max });
    }
    if s.chars().any(char::is_control) {
        return Err(InvalidValue::ControlCharacter { what });
    }
    Ok(())
}

/// Checks multi-line operator text (`evidence`): like [`check_line`], except that line
/// feeds and tabs are allowed (a note pasted from a ticket). Carriage returns, NUL and
/// escapes are not.
pub fn check_text(what: &'static str, s: &str, max: usize) -> Result<(), InvalidValue> {
    if s.len() > max {
        return Err(InvalidValue::TooLong { what, max });
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(InvalidValue::ControlCharacter { what });
    }
    Ok(())
}

fn check_identifier(what: &'static str, s: &str) -> Result<(), InvalidValue> {
    if s.is_empty() {
        return Err(InvalidValue::Empty { what });
    }
    if s.len() > IDENTIFIER_LEN_MAX {
        return Err(InvalidValue::TooLong {
            what,
            max: IDENTIFIER_LEN_MAX,
        });
    }
    if s.chars().any(char::is_control) {
        return Err(InvalidValue::ControlCharacter { what });
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps the identifier.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
                let s = s.into();
                check_identifier($what, &s)?;
                Ok(Self(s))
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A stock-keeping unit, as the merchant names it. Any text without control characters.
    Sku, "sku"
);
identifier!(
    /// A place stock is kept (warehouse, store). Any text without control characters.
    Location, "location"
);
identifier!(
    /// The merchant's order reference: what payments name instead of SKUs.
    OrderRef, "order_ref"
);
identifier!(
    /// The merchant's reference of a return (one parcel of goods coming back).
    ReturnRef, "reference"
);
identifier!(
    /// A provider's dispute identifier (Stripe `dp_…`, Adyen pspReference).
    DisputeId, "dispute_id"
);
identifier!(
    /// A provider's identifier for a payment (Stripe PaymentIntent id, iPint invoice id).
    PaymentRef, "payment_ref"
);
identifier!(
    /// Who or what produced an event: `portone`, `stripe`, `adyen`, `ipint`, `merchant`,
    /// `operator`, `stockledger`.
    Provider, "provider"
);
impl Provider {
    /// A provider name written in the code (`operator`, `stockledger`, `test`), which is
    /// valid by construction: a non-empty word of at most the identifier length without
    /// control characters (checked in debug builds).
    pub fn named(name: &'static str) -> Provider {
        debug_assert!(check_identifier("provider", name).is_ok(), "{name}");
        Provider(name.to_owned())
    }
}

/// The payment method a provider names in an authorization (`card`, `card_present`,
/// `klarna`, `klarna_account`, `visa`, `mc`), as the provider spells it: 1 to
/// [`PAYMENT_METHOD_LEN_MAX`] ASCII letters, digits, `_`, `-` or `.`. It chooses the
/// reservation's TTL ([`crate::ReservationTtls::ttl`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentMethod(String);

impl PaymentMethod {
    /// Validates and wraps a method name.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if s.is_empty() || s.len() > PAYMENT_METHOD_LEN_MAX || !s.chars().all(word) {
            return Err(InvalidValue::PaymentMethod { got: s });
        }
        Ok(PaymentMethod(s))
    }
    /// The method as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for PaymentMethod {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(s)
    }
}
impl From<PaymentMethod> for String {
    fn from(v: PaymentMethod) -> String {
        v.0
    }
}
impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

identifier!(
    /// The id of an exception-queue row: the event id it is about, or
    /// `<stream>:<sequence>` for a message without a trustworthy event id.
    ExceptionId, "exception_id"
);

impl From<EventId> for ExceptionId {
    /// The row of an event's own exception is keyed by the event id.
    fn from(id: EventId) -> ExceptionId {
        ExceptionId(id.to_string())
    }
}

/// A positive number of units, at most [`QUANTITY_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Quantity(u64);

impl Quantity {
    /// Validates that `n` is between 1 and [`QUANTITY_MAX`].
    pub fn new(n: u64) -> Result<Self, InvalidValue> {
        if n == 0 || n > QUANTITY_MAX {
            return Err(InvalidValue::Quantity { got: i128::from(n) });
        }
        Ok(Self(n))
    }
    /// The number of units.
    pub fn get(self) -> u64 {
        self.0
    }
    /// The number of units as a signed balance delta.
    pub fn as_i64(self) -> i64 {
        // QUANTITY_MAX fits in i64 by construction.
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}
impl TryFrom<u64> for Quantity {
    type Error = InvalidValue;
    fn try_from(n: u64) -> Result<Self, InvalidValue> {
        Self::new(n)
    }
}
impl From<Quantity> for u64 {
    fn from(q: Quantity) -> u64 {
        q.0
    }
}

/// A currency code: three uppercase ASCII letters. What a merchant registers must be an
/// ISO 4217 code ([`Currency::parse_iso`]); a provider's message is read with
/// [`Currency::parse`], since its amount is only compared with the registered order's (a
/// code that is not the order's is an `amount_mismatch`, never a refusal at the edge).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// Accepts three ASCII letters in either case and stores them uppercase.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.len() != 3 || !s.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(InvalidValue::Currency { got: s.to_owned() });
        }
        Ok(Self(s.to_ascii_uppercase()))
    }
    /// [`Currency::parse`], and the code is in ISO 4217's list (`iso_currency`): `XYZ` is
    /// refused.
    pub fn parse_iso(s: &str) -> Result<Self, InvalidValue> {
        let currency = Self::parse(s)?;
        if iso_currency::Currency::from_code(&currency.0).is_none() {
            return Err(InvalidValue::UnknownCurrency { got: s.to_owned() });
        }
        Ok(currency)
    }
    /// The code, uppercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The number of decimal places of the currency's minor unit, from ISO 4217's table
    /// (`iso_currency`): 0 for JPY or KRW, 3 for BHD or KWD, 4 for CLF; 2 for a code the
    /// table does not know or gives no minor unit (`docs/decisions.md` §31).
    pub fn minor_units(&self) -> u32 {
        iso_currency::Currency::from_code(&self.0)
            .and_then(|c| c.exponent())
            .map_or(DEFAULT_MINOR_UNITS, u32::from)
    }
}

/// The minor unit of a code ISO 4217 does not list, or lists without one.
const DEFAULT_MINOR_UNITS: u32 = 2;

impl TryFrom<String> for Currency {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

/// An exact, non-negative amount of money in one currency. Never a float: the amount is a
/// decimal parsed from text, and two amounts are equal when they are numerically equal
/// (`"100.5"` equals `"100.50"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount as an exact decimal, serialized as a string.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The currency of the amount.
    pub currency: Currency,
}

impl Money {
    /// Parses a decimal string such as `"100.50"` (no exponent, no float) and a currency.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, InvalidValue> {
        let amount = parse_amount(amount)?;
        Ok(Self {
            amount,
            currency: Currency::parse(currency)?,
        })
    }
    /// [`Money::parse`], and the amount has no more decimal places than the currency's
    /// minor unit ([`Currency::minor_units`]; trailing zeros do not count): what a merchant
    /// may register. Provider amounts use [`Money::parse`], since each provider has its own
    /// exponent table and its amount is compared, never charged, here.
    pub fn parse_strict(amount: &str, currency: &str) -> Result<Self, InvalidValue> {
        let money = Self::parse(amount, currency)?;
        let minor_units = money.currency.minor_units();
        if money.amount.normalize().scale() > minor_units {
            return Err(InvalidValue::AmountMinorUnits {
                got: amount.to_owned(),
                currency: money.currency.as_str().to_owned(),
                minor_units,
            });
        }
        Ok(money)
    }
    /// True when both amount (numerically) and currency are equal.
    pub fn same_as(&self, other: &Money) -> bool {
        self.currency == other.currency && self.amount.normalize() == other.amount.normalize()
    }
}

/// Parses a plain decimal string (`"12"`, `"12.50"`) into an exact decimal; refuses
/// exponents, signs other than none, and anything that is not a number. Never rounds:
/// more digits than the decimal holds is [`InvalidValue::AmountPrecision`].
pub fn parse_amount(s: &str) -> Result<Decimal, InvalidValue> {
    if s.len() > AMOUNT_TEXT_LEN_MAX {
        return Err(InvalidValue::TooLong {
            what: "amount",
            max: AMOUNT_TEXT_LEN_MAX,
        });
    }
    let plain = |t: &str| {
        !t.is_empty()
            && t.chars().all(|c| c.is_ascii_digit() || c == '.')
            && t.chars().filter(|c| *c == '.').count() <= 1
            && !t.starts_with('.')
            && !t.ends_with('.')
    };
    if !plain(s) {
        // A minus sign before an otherwise plain decimal says what is wrong in its words.
        return Err(match s.strip_prefix('-') {
            Some(rest) if plain(rest) && rest.chars().any(|c| c.is_ascii_digit() && c != '0') => {
                InvalidValue::NegativeAmount { got: s.to_owned() }
            }
            _ => InvalidValue::Amount { got: s.to_owned() },
        });
    }
    // `from_str` would round digits beyond the 96-bit mantissa; `from_str_exact` refuses.
    let d = Decimal::from_str_exact(s)
        .map_err(|_| InvalidValue::AmountPrecision { got: s.to_owned() })?;
    Ok(d)
}

/// The namespace under which event ids are derived from dedupe keys (UUID v5).
/// Changing it would change every event id: never change it.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_4b7d_5e3f_9a10_c2d4_e6f8_0b1d);

/// The identity of one event. Born at the edge from the provider's delivery identity
/// (the dedupe key), so two deliveries of the same provider message are one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// The deterministic id of the event whose dedupe key is `key` (UUID v5).
    pub fn from_dedupe_key(key: &str) -> Self {
        Self(Uuid::new_v5(&EVENT_ID_NAMESPACE, key.as_bytes()))
    }
    /// Wraps an existing UUID (read back from the wire or the database).
    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }
    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}
impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(Uuid::parse_str(s)?))
    }
}

/// A point in time, in milliseconds since the Unix epoch (UTC). The domain never reads a
/// clock: callers pass time in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// `self` plus `d`, saturating.
    pub fn plus(self, d: std::time::Duration) -> Timestamp {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_is_wrong() {
        assert!(matches!(
            parse_amount("-1.50"),
            Err(InvalidValue::NegativeAmount { .. })
        ));
        assert_eq!(
            parse_amount("-3").map_err(|e| e.to_string()),
            Err("amount must not be negative, got -3".to_owned())
        );
        // "-0" is a zero, not a negative amount, but still not a plain decimal.
        assert!(matches!(
            parse_amount("-0"),
            Err(InvalidValue::Amount { .. })
        ));
        assert!(matches!(
            parse_amount("1e3"),
            Err(InvalidValue::Amount { .. })
        ));
        assert!(matches!(
            Currency::parse_iso("XYZ"),
            Err(InvalidValue::UnknownCurrency { .. })
        ));
        assert_eq!(Currency::parse_iso("krw").map(|c| c.minor_units()), Ok(0));
        // Providers' codes are read as sent; their amounts are only compared.
        assert_eq!(Currency::parse("XYZ").map(|c| c.minor_units()), Ok(2));
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        for (code, units) in [
            ("USD", 2),
            ("EUR", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("BHD", 3),
            ("KWD", 3),
            ("CLF", 4),
            ("UYW", 4),
        ] {
            assert_eq!(
                Currency::parse_iso(code).map(|c| c.minor_units()),
                Ok(units),
                "{code}"
            );
        }
    }

    #[test]
    fn amounts_are_exact_or_refused() {
        // Beyond the 96-bit mantissa or 28 decimal places: refused, never rounded.
        for text in [
            "19.99999999999999999999999999999",
            "0.0000000000000000000000000000001",
            "99999999999999999999999999999999",
        ] {
            assert!(
                matches!(
                    parse_amount(text),
                    Err(InvalidValue::AmountPrecision { .. })
                ),
                "{text}: {:?}",
                parse_amount(text)
            );
        }
        assert!(matches!(
            parse_amount(&"1".repeat(AMOUNT_TEXT_LEN_MAX + 1)),
            Err(InvalidValue::TooLong { .. })
        ));
        assert_eq!(
            parse_amount("0.0000000000000000000000000001").map(|d| d.to_string()),
            Ok("0.0000000000000000000000000001".to_owned())
        );
        assert_eq!(
            parse_amount("19.99").map(|d| d.to_string()),
            Ok("19.99".to_owned())
        );
    }

    #[test]
    fn merchant_amounts_fit_the_currency() {
        assert!(Money::parse_strict("10.01", "usd").is_ok());
        assert!(
            Money::parse_strict("10.010", "USD").is_ok(),
            "trailing zeros"
        );
        assert!(matches!(
            Money::parse_strict("10.001", "USD"),
            Err(InvalidValue::AmountMinorUnits { minor_units: 2, .. })
        ));
        assert!(Money::parse_strict("1000", "KRW").is_ok());
        assert!(Money::parse_strict("1000.00", "JPY").is_ok());
        assert!(matches!(
            Money::parse_strict("100.5", "KRW"),
            Err(InvalidValue::AmountMinorUnits { minor_units: 0, .. })
        ));
        assert!(Money::parse_strict("1.005", "BHD").is_ok());
        assert!(Money::parse_strict("1.0005", "KWD").is_err());
        assert!(Money::parse_strict("1.0005", "CLF").is_ok());
        assert_eq!(Currency::parse("xts").map(|c| c.minor_units()), Ok(2));
        // Provider amounts keep their own exponent (PortOne's KRW 1234.5 parses).
        assert!(Money::parse("1234.5", "KRW").is_ok());
    }

    #[test]
    fn operator_text() {
        assert!(check_line("actor", "ops:ann", 200).is_ok());
        for bad in ["a\0b", "\u{1b}[31mred", "two\nlines", "a\u{85}"] {
            assert_eq!(
                check_line("actor", bad, 200),
                Err(InvalidValue::ControlCharacter { what: "actor" }),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_line("actor", &"a".repeat(201), 200),
            Err(InvalidValue::TooLong {
                what: "actor",
                max: 200
            })
        );
        assert!(check_text("evidence", "ticket T-9\n\tline two", 100).is_ok());
        assert!(check_text("evidence", "x\r\ny", 100).is_err());
        assert!(check_text("evidence", "x\0", 100).is_err());
    }
}
