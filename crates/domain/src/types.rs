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

/// Why a value could not become one of the domain's newtypes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} bytes")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} must not contain control characters")]
    ControlCharacter { what: &'static str },
    #[error("quantity must be between 1 and {QUANTITY_MAX}, got {got}")]
    Quantity { got: i128 },
    #[error("currency must be three ASCII letters, got {got:?}")]
    Currency { got: String },
    #[error("amount {got:?} is not an exact decimal")]
    Amount { got: String },
    #[error("amount must not be negative, got {got}")]
    NegativeAmount { got: String },
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

/// An ISO-4217-style currency code: three uppercase ASCII letters.
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
    /// The code, uppercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
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
    /// True when both amount (numerically) and currency are equal.
    pub fn same_as(&self, other: &Money) -> bool {
        self.currency == other.currency && self.amount.normalize() == other.amount.normalize()
    }
}

/// Parses a plain decimal string (`"12"`, `"12.50"`) into an exact decimal; refuses
/// exponents, signs other than none, and anything that is not a number.
pub fn parse_amount(s: &str) -> Result<Decimal, InvalidValue> {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.chars().filter(|c| *c == '.').count() <= 1
        && !s.starts_with('.')
        && !s.ends_with('.');
    if !plain {
        return Err(InvalidValue::Amount { got: s.to_owned() });
    }
    let d = Decimal::from_str(s).map_err(|_| InvalidValue::Amount { got: s.to_owned() })?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(InvalidValue::NegativeAmount { got: s.to_owned() });
    }
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
