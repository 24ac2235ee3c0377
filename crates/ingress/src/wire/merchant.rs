//! The merchant API on the wire: the request body of every write, its conversion into
//! domain values, and the answer of every write and read.
//!
//! Amounts are decimal strings (`"100.50"`); a JSON number for an amount is refused
//! ([`Amount`]), so a float never gets near money. An amount is exact or refused, never
//! rounded: more digits than a decimal holds, or more decimal places than the currency's
//! minor unit (`Money::parse_strict`: `10.001` USD, `100.5` KRW), is a 400 naming the
//! field. Unknown fields are refused (`deny_unknown_fields`), so a typo (`"qty"`) is an
//! error rather than a silently missing value. Each body says what it expects
//! (`#[serde(expecting)]`), so a refusal speaks of the API, never of a Rust type. Every
//! string that reaches the ledger is a domain newtype (identifiers: at most
//! `domain::types::IDENTIFIER_LEN_MAX` bytes, no control characters), so neither database
//! ever sees a NUL, an escape sequence or an unbounded string.
//!
//! Answer structs declare their fields alphabetically: the order the former `json!`
//! answers printed (see [`crate::wire`]).

use std::fmt;

use domain::{
    InspectionOutcome, Line, Lines, Location, Money, OrderRef, OutcomeKind, PaymentRef, Provider,
    ReasonCode, ReturnRef, Sku, StockKey,
};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{parsed, path, required};
use crate::error::ApiError;

// ---- request scalars -----------------------------------------------------------------

/// An amount as sent: a JSON string holding a decimal (`"100.50"`). A JSON number is
/// refused with a message saying why, so that no float is ever read as money. Described
/// as a `string` (pattern: a plain decimal) in an API description.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(value_type = String, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "100.50")]
pub struct Amount(pub String);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as any value first, so that a number gets the message of the money rule
        // rather than serde's "invalid type".
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Amount(s)),
            Value::Number(_) => Err(de::Error::custom(
                "amounts are decimal strings such as \"100.50\", never JSON numbers",
            )),
            _ => Err(de::Error::custom(
                "expected a decimal string such as \"100.50\"",
            )),
        }
    }
}

/// A count of units as sent: a JSON integer. Whether it is within the domain's bounds
/// (1 to `domain::types::QUANTITY_MAX`) is the conversion's check. Described as an
/// `integer` (minimum 1) in an API description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeNumber(pub u64);

impl utoipa::PartialSchema for WholeNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::schema::quantity().into()
    }
}

impl ToSchema for WholeNumber {}

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Any value first: a negative or fractional number and a non-number get the
        // messages the API has always given.
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_u64()
                .map(WholeNumber)
                .ok_or_else(|| de::Error::custom("expected a positive whole number")),
            _ => Err(de::Error::custom("expected a whole number")),
        }
    }
}

// ---- request bodies ------------------------------------------------------------------

/// One line of an order, a return or an inspection: units of a SKU at a location.
/// Lines naming the same (SKU, location) are merged.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a line: an object with `sku`, `location` and `quantity`"
)]
#[schema(example = json!({"sku": "MUG-RED", "location": "main", "quantity": 2}))]
pub struct LineBody {
    /// Required. The SKU: an identifier (non-empty, bounded, no control characters).
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub sku: Option<String>,
    /// Required. The stock location: an identifier.
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub location: Option<String>,
    /// Required. Units, a whole number from 1.
    #[schema(required = true, value_type = WholeNumber)]
    pub quantity: Option<WholeNumber>,
}

/// A provider's payment reference: which payment pays an order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a payment reference: an object with `provider` and `ref`"
)]
#[schema(example = json!({"provider": "stripe", "ref": "pi_3MtwBwLkdIwHu7ix28a3tqPa"}))]
pub struct PaymentRefBody {
    /// Required. `portone`, `stripe`, `adyen` or `ipint`.
    #[schema(required = true, value_type = String, pattern = "^(portone|stripe|adyen|ipint)$")]
    pub provider: Option<String>,
    /// Required. The provider's id of the payment (a PaymentIntent id, an invoice id).
    #[serde(rename = "ref")]
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub payment_ref: Option<String>,
}

/// `PUT /v1/orders/{order_ref}`: registers an order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an order: an object with `lines`, `amount`, `currency` and optionally `payment_refs`"
)]
#[schema(example = json!({"lines": [{"sku": "MUG-RED", "location": "main", "quantity": 2}], "amount": "25.00", "currency": "USD"}))]
pub struct OrderBody {
    /// Required, non-empty. What the order holds.
    #[schema(required = true, value_type = Vec<LineBody>, min_items = 1)]
    pub lines: Option<Vec<LineBody>>,
    /// Required. The order's total, a decimal string within the currency's minor unit.
    #[schema(required = true, value_type = Amount)]
    pub amount: Option<Amount>,
    /// Required. ISO 4217 code, either case (`USD`, `krw`).
    #[schema(required = true, value_type = String, pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// Optional. The payments that pay for it; more can be attached later
    /// (`POST /v1/orders/{order_ref}/payment-refs`).
    #[schema(value_type = Option<Vec<PaymentRefBody>>)]
    pub payment_refs: Option<Vec<PaymentRefBody>>,
}

/// `POST /v1/stock/receipts`: units in.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a receipt: an object with `sku`, `location`, `quantity` and `reference`"
)]
#[schema(example = json!({"sku": "MUG-RED", "location": "main", "quantity": 50, "reference": "PO-2024-0042"}))]
pub struct ReceiptBody {
    /// Required. The SKU received.
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub sku: Option<String>,
    /// Required. Where it was received.
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub location: Option<String>,
    /// Required. Units received, a whole number from 1.
    #[schema(required = true, value_type = WholeNumber)]
    pub quantity: Option<WholeNumber>,
    /// Required. The delivery note or purchase order: the idempotency key.
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub reference: Option<String>,
}

/// `POST /v1/returns`: goods back from a sold order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a return: an object with `order_ref`, `reference` and `lines`"
)]
#[schema(example = json!({"order_ref": "ORD-1001", "reference": "RMA-7", "lines": [{"sku": "MUG-RED", "location": "main", "quantity": 1}]}))]
pub struct ReturnBody {
    /// Required. The order the goods were sold with.
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub order_ref: Option<String>,
    /// Required. The return's reference (an RMA number): the idempotency key.
    #[schema(required = true, schema_with = super::schema::identifier)]
    pub reference: Option<String>,
    /// Required, non-empty. What came back.
    #[schema(required = true, value_type = Vec<LineBody>, min_items = 1)]
    pub lines: Option<Vec<LineBody>>,
}

/// What an inspection decided for the units it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", expecting = "`restock` or `write_off`")]
pub enum InspectionOutcomeBody {
    /// Back to `available`.
    Restock,
    /// To `written_off`.
    WriteOff,
}

/// `POST /v1/returns/{reference}/inspection`: what became of returned units.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an inspection: an object with `outcome`, `lines` and optionally `reference`"
)]
#[schema(example = json!({"outcome": "restock", "lines": [{"sku": "MUG-RED", "location": "main", "quantity": 1}]}))]
pub struct InspectionBody {
    /// Required. `restock` or `write_off`.
    #[schema(required = true, value_type = InspectionOutcomeBody)]
    pub outcome: Option<InspectionOutcomeBody>,
    /// Required, non-empty. The units inspected.
    #[schema(required = true, value_type = Vec<LineBody>, min_items = 1)]
    pub lines: Option<Vec<LineBody>>,
    /// Optional. Names this inspection (its idempotency key) when a return is inspected
    /// in several parts; the return's reference otherwise.
    #[schema(schema_with = super::schema::identifier)]
    pub reference: Option<String>,
}

// ---- conversion into domain values ---------------------------------------------------

impl LineBody {
    /// The line at `at` (`lines[2]`), refusals naming `lines[2].quantity`.
    fn into_line(self, at: &str) -> Result<Line, ApiError> {
        Ok(Line {
            key: stock_key(self.sku, self.location, at)?,
            quantity: quantity(self.quantity, &path(at, "quantity"))?,
        })
    }
}

/// `sku` and `location` of the object at `at`.
fn stock_key(
    sku: Option<String>,
    location: Option<String>,
    at: &str,
) -> Result<StockKey, ApiError> {
    Ok(StockKey {
        sku: identifier(sku, &path(at, "sku"), Sku::parse)?,
        location: identifier(location, &path(at, "location"), Location::parse)?,
    })
}

/// A required quantity at `field`, within the domain's bounds.
fn quantity(value: Option<WholeNumber>, field: &str) -> Result<domain::Quantity, ApiError> {
    let n = required(value, field)?;
    parsed(n.0, field, domain::Quantity::new)
}

/// Required, non-empty lines at member `key`, merged by (SKU, location).
fn lines(value: Option<Vec<LineBody>>, key: &str) -> Result<Lines, ApiError> {
    let items = required(value, key)?;
    let lines = items
        .into_iter()
        .enumerate()
        .map(|(i, line)| line.into_line(&format!("{key}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    parsed(lines, key, Lines::new)
}

/// A required identifier at `field`, parsed into its newtype.
fn identifier<T, E: fmt::Display>(
    value: Option<String>,
    field: &str,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Result<T, ApiError> {
    parsed(required(value, field)?, field, parse)
}

/// Exact money from `amount` and `currency`, both required; the amount is refused, never
/// rounded, when it has more digits than a decimal holds or more decimal places than the
/// currency's minor unit.
fn money(amount: Option<Amount>, currency: Option<String>) -> Result<Money, ApiError> {
    let Amount(amount) = required(amount, "amount")?;
    // Its form first (a plain decimal), so that `1e3` is refused as an amount even when
    // the currency is wrong too.
    parsed(amount.as_str(), "amount", domain::types::parse_amount)?;
    let currency = identifier(currency, "currency", |s| domain::Currency::parse_iso(&s))?;
    parsed(amount.as_str(), "amount", |a| {
        Money::parse_strict(a, currency.as_str())
    })
}

impl PaymentRefBody {
    /// The reference at `at` (`""` for a whole body, `payment_refs[0]` in an order).
    fn into_pair(self, at: &str) -> Result<(Provider, PaymentRef), ApiError> {
        Ok((
            identifier(self.provider, &path(at, "provider"), |s| {
                Provider::parse(&s)
            })?,
            identifier(self.payment_ref, &path(at, "ref"), PaymentRef::parse)?,
        ))
    }
}

/// An order's content as the merchant sent it, in domain values; the order reference
/// comes from the path.
#[derive(Debug, Clone)]
pub struct Order {
    pub lines: Lines,
    pub amount: Money,
    /// Sorted, without repeats: the order of the request's list means nothing.
    pub payment_refs: Vec<(Provider, PaymentRef)>,
}

impl TryFrom<OrderBody> for Order {
    type Error = ApiError;

    fn try_from(body: OrderBody) -> Result<Order, ApiError> {
        let lines = lines(body.lines, "lines")?;
        let amount = money(body.amount, body.currency)?;
        let mut payment_refs = body
            .payment_refs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.into_pair(&format!("payment_refs[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        payment_refs.sort();
        payment_refs.dedup();
        Ok(Order {
            lines,
            amount,
            payment_refs,
        })
    }
}

/// A payment reference to attach to an order.
#[derive(Debug, Clone)]
pub struct PaymentRefAttachment {
    pub provider: Provider,
    pub payment_ref: PaymentRef,
}

impl TryFrom<PaymentRefBody> for PaymentRefAttachment {
    type Error = ApiError;

    fn try_from(body: PaymentRefBody) -> Result<PaymentRefAttachment, ApiError> {
        let (provider, payment_ref) = body.into_pair("")?;
        Ok(PaymentRefAttachment {
            provider,
            payment_ref,
        })
    }
}

/// Units received.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub key: StockKey,
    pub quantity: domain::Quantity,
    /// Same rules as any reference: non-empty, bounded, no control characters.
    pub reference: ReturnRef,
}

impl TryFrom<ReceiptBody> for Receipt {
    type Error = ApiError;

    fn try_from(body: ReceiptBody) -> Result<Receipt, ApiError> {
        Ok(Receipt {
            key: stock_key(body.sku, body.location, "")?,
            quantity: quantity(body.quantity, "quantity")?,
            reference: identifier(body.reference, "reference", ReturnRef::parse)?,
        })
    }
}

/// Goods back from an order.
#[derive(Debug, Clone)]
pub struct Return {
    pub order_ref: OrderRef,
    pub reference: ReturnRef,
    pub lines: Lines,
}

impl TryFrom<ReturnBody> for Return {
    type Error = ApiError;

    fn try_from(body: ReturnBody) -> Result<Return, ApiError> {
        Ok(Return {
            order_ref: identifier(body.order_ref, "order_ref", OrderRef::parse)?,
            reference: identifier(body.reference, "reference", ReturnRef::parse)?,
            lines: lines(body.lines, "lines")?,
        })
    }
}

/// An inspection of returned units; the return's reference comes from the path.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub outcome: InspectionOutcome,
    pub lines: Lines,
    /// The inspection's own reference, if the body named one.
    pub reference: Option<ReturnRef>,
}

impl TryFrom<InspectionBody> for Inspection {
    type Error = ApiError;

    fn try_from(body: InspectionBody) -> Result<Inspection, ApiError> {
        let outcome = match required(body.outcome, "outcome")? {
            InspectionOutcomeBody::Restock => InspectionOutcome::Restock,
            InspectionOutcomeBody::WriteOff => InspectionOutcome::WriteOff,
        };
        let lines = lines(body.lines, "lines")?;
        let reference = body
            .reference
            .map(|r| parsed(r, "reference", ReturnRef::parse))
            .transpose()?;
        Ok(Inspection {
            outcome,
            lines,
            reference,
        })
    }
}

// ---- write answers -------------------------------------------------------------------

/// The ledger's decision on a write (200, 201, or 202 for an exception).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Decision {
    /// The event the write became; repeat the request for the same answer.
    pub event_id: String,
    /// `moved`, `noop` or `exception`.
    pub outcome: OutcomeKind,
    /// The reason code of a no-op or an exception (`order_registered`, `oversold`, …);
    /// `null` for a movement.
    pub reason: Option<ReasonCode>,
    /// True when the event had been decided before: this answer is the first call's.
    pub repeated: bool,
}

/// The `status` of a write answered before its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteStatus {
    /// Accepted (in the event stream); the ledger's decision is not back yet.
    Pending,
}

/// 202: the write is accepted, its decision not back within the confirmation deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Pending {
    /// The event the write became.
    pub event_id: String,
    /// What to do next.
    pub message: String,
    pub status: WriteStatus,
}

impl Pending {
    /// The pending answer for `event_id`.
    pub fn new(event_id: String) -> Pending {
        Pending {
            event_id,
            message: "accepted; the ledger's decision is not back yet: see GET /v1/orders/… or retry the same request".to_owned(),
            status: WriteStatus::Pending,
        }
    }
}

/// 202: accepted, not moved: the decision is not back within the deadline ([`Pending`]),
/// or the event became an exception that waits for a person ([`Decision`] with outcome
/// `exception`, its id the event id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Accepted {
    Pending(Pending),
    Exception(Decision),
}

// ---- read answers --------------------------------------------------------------------

/// A line of a registered order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderLine {
    pub location: String,
    /// Units ordered (from 1).
    pub quantity: u64,
    pub sku: String,
}

/// Units of an order that came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReturnedLine {
    pub location: String,
    /// Units returned so far.
    pub quantity: u64,
    pub sku: String,
}

/// One ledger entry an event made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Movement {
    /// The bucket the units left (`available`, `reserved`, `sold`, …).
    pub from: String,
    pub location: String,
    pub quantity: u64,
    /// The entry's number in its (SKU, location) sequence.
    pub seq: u64,
    pub sku: String,
    /// The bucket the units entered.
    pub to: String,
}

/// One event applied to an order, with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderEvent {
    /// How many times the same event arrived again after it was decided.
    pub duplicates: i64,
    pub event_id: String,
    /// The exception's id (the event id), present only when the outcome is `exception`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_id: Option<String>,
    /// The event kind (`payment.captured`, `order.registered`, …).
    pub kind: String,
    /// The movements, present only when the outcome is `moved`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub movements: Option<Vec<Movement>>,
    /// `moved`, `noop` or `exception`.
    pub outcome: OutcomeKind,
    /// RFC 3339 UTC.
    pub processed_at: String,
    /// The no-op's or the exception's reason code; `null` for a movement.
    pub reason: Option<ReasonCode>,
}

/// `GET /v1/orders/{order_ref}`: the order and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderView {
    /// The order's total as registered, a decimal string exactly as sent.
    pub amount: String,
    pub currency: String,
    /// Every event applied to the order, in processing order.
    pub events: Vec<OrderEvent>,
    pub lines: Vec<OrderLine>,
    pub order_ref: String,
    /// When the stock was reserved (RFC 3339 UTC), if it is.
    pub reserved_at: Option<String>,
    /// The event that reserved the stock, if any.
    pub reserved_by: Option<String>,
    pub returned: Vec<ReturnedLine>,
    /// `registered`, `reserved`, `sold`, `released`, …
    pub state: String,
    /// Whether any stock moved for the order (it cannot change after).
    pub stock_moved: bool,
}

/// One location's balances of a SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LocationBalance {
    pub available: i64,
    /// The sequence number of the last entry; page entries from it.
    pub last_seq: u64,
    pub location: String,
    pub reserved: i64,
    pub returned: i64,
    pub sold: i64,
    pub written_off: i64,
}

/// `GET /v1/stock/{sku}`: a SKU's balances per location (none when the ledger never saw it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StockView {
    pub locations: Vec<LocationBalance>,
    pub sku: String,
}

/// One ledger entry of a (SKU, location).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Entry {
    pub event_id: String,
    /// The bucket the units left.
    pub from: String,
    /// The kind of the event that made it.
    pub kind: String,
    pub quantity: i64,
    /// RFC 3339 UTC.
    pub recorded_at: String,
    pub seq: i64,
    /// The bucket the units entered.
    pub to: String,
}

/// `GET /v1/stock/{sku}/entries`: one page of entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EntriesPage {
    pub entries: Vec<Entry>,
    pub location: String,
    /// Pass as `after_seq` for the next page (the request's `after_seq` when the page is
    /// empty).
    pub next_after_seq: i64,
    pub sku: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::read;

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::Malformed { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    fn order(body: &str) -> Result<Order, ApiError> {
        Order::try_from(read::<OrderBody>(body.as_bytes())?)
    }

    fn money_of(body: &str) -> Result<Money, ApiError> {
        #[derive(Deserialize)]
        struct M {
            amount: Option<Amount>,
            currency: Option<String>,
        }
        let m: M = read(body.as_bytes())?;
        money(m.amount, m.currency)
    }

    #[test]
    fn amounts_must_be_strings() {
        let e = money_of(r#"{"amount": 100.5, "currency": "USD"}"#).expect_err("number");
        assert!(e.message().contains("never JSON numbers"), "{e:?}");
        assert_eq!(field_of(e), "amount");
        let m = money_of(r#"{"amount": "100.50", "currency": "usd"}"#).expect("money");
        assert_eq!(m.currency.as_str(), "USD");
        let e = money_of(r#"{"amount": "1e3", "currency": "USD"}"#).expect_err("exp");
        assert_eq!(field_of(e), "amount");
        let e = money_of(r#"{"amount": true, "currency": "USD"}"#).expect_err("bool");
        assert_eq!(field_of(e), "amount");
    }

    #[test]
    fn line_errors_name_the_path() {
        let body = r#"{"lines":[{"sku":"a","location":"m","quantity":1},{"sku":"b","location":"m","quantity":0}],"amount":"1","currency":"USD"}"#;
        assert_eq!(
            field_of(order(body).expect_err("zero")),
            "lines[1].quantity"
        );
        let body =
            r#"{"lines":[{"sku":"a","location":"m","qty":1}],"amount":"1","currency":"USD"}"#;
        assert_eq!(field_of(order(body).expect_err("typo")), "lines[0].qty");
        let body =
            r#"{"lines":[{"sku":"a","location":"m","quantity":-1}],"amount":"1","currency":"USD"}"#;
        let e = order(body).expect_err("negative");
        assert_eq!(
            e.message(),
            "`lines[0].quantity`: expected a positive whole number"
        );
        let body = r#"{"lines":[{"sku":"a","location":"m","quantity":"1"}],"amount":"1","currency":"USD"}"#;
        let e = order(body).expect_err("string");
        assert_eq!(e.message(), "`lines[0].quantity`: expected a whole number");
        let body = r#"{"lines":[{"location":"m","quantity":1}],"amount":"1","currency":"USD"}"#;
        let e = order(body).expect_err("no sku");
        assert_eq!(e.message(), "`lines[0].sku`: missing");
        assert_eq!(field_of(order(r#"{}"#).expect_err("missing")), "lines");
        assert_eq!(
            field_of(order(r#"{"lines":null}"#).expect_err("null")),
            "lines"
        );
        assert_eq!(
            field_of(order(r#"{"lines":[],"amount":"1","currency":"USD"}"#).expect_err("empty")),
            "lines"
        );
        assert_eq!(field_of(order("{").expect_err("bad json")), "body");
        assert_eq!(field_of(order("[]").expect_err("not an object")), "body");
        let body = r#"{"lines":[{"sku":"a","location":"m","quantity":1}],"amount":"1","currency":"USD","payment_refs":[{"provider":"stripe","ref":"pi_1"},{"provider":"a\u0000b","ref":"x"}]}"#;
        assert_eq!(
            field_of(order(body).expect_err("provider")),
            "payment_refs[1].provider"
        );
        let body = r#"{"lines":[{"sku":"a","location":"m","quantity":1}],"amount":"1","currency":"USD","payment_refs":[null]}"#;
        let e = order(body).expect_err("null ref");
        assert!(
            e.message().starts_with("`payment_refs[0]`: ")
                && e.message().contains("a payment reference")
                && !e.message().contains("Body"),
            "{e:?}"
        );
        let body = r#"{"lines":[{"sku":"a","location":"m","quantity":1}],"amount":"1","currency":"USD","colour":"red"}"#;
        assert_eq!(field_of(order(body).expect_err("unknown")), "colour");
    }

    #[test]
    fn payment_refs_are_sorted_and_unique() {
        let body = r#"{"lines":[{"sku":"a","location":"m","quantity":1}],"amount":"1","currency":"USD","payment_refs":[{"provider":"stripe","ref":"pi_2"},{"provider":"stripe","ref":"pi_1"},{"provider":"stripe","ref":"pi_2"}]}"#;
        let o = order(body).expect("order");
        let refs: Vec<&str> = o.payment_refs.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(refs, ["pi_1", "pi_2"]);
    }

    #[test]
    fn money_is_exact_or_refused_naming_the_field() {
        for body in [
            r#"{"amount": "19.99999999999999999999999999999", "currency": "USD"}"#,
            r#"{"amount": "0.0000000000000000000000000000001", "currency": "USD"}"#,
            r#"{"amount": "10.001", "currency": "USD"}"#,
            r#"{"amount": "100.5", "currency": "KRW"}"#,
            r#"{"amount": "1.0001", "currency": "BHD"}"#,
        ] {
            let e = money_of(body).expect_err(body);
            assert_eq!(field_of(e), "amount", "{body}");
        }
        let m = money_of(r#"{"amount": "1.005", "currency": "bhd"}"#).expect("BHD has 3");
        assert_eq!(m.amount.to_string(), "1.005");
        let m = money_of(r#"{"amount": "1000.00", "currency": "KRW"}"#).expect("trailing zeros");
        assert_eq!(m.amount.to_string(), "1000.00");
        let e = money_of(r#"{"amount": "10", "currency": "U\u0000D"}"#).expect_err("nul");
        assert_eq!(field_of(e), "currency");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for body in [
            r#"{"lines":[],"amount":"10.00","amount":"99.00","currency":"USD"}"#,
            r#"{"lines":[{"sku":"a","sku":"b","location":"m","quantity":1}]}"#,
        ] {
            let e = order(body).expect_err(body);
            assert!(e.message().contains("duplicate key"), "{e:?}");
            assert_eq!(field_of(e), "body");
        }
    }

    #[test]
    fn other_bodies_name_their_fields() {
        let r = Receipt::try_from(
            read::<ReceiptBody>(br#"{"sku":"a","location":"m","quantity":2,"reference":"po-1"}"#)
                .expect("read"),
        )
        .expect("receipt");
        assert_eq!((r.quantity.get(), r.reference.as_str()), (2, "po-1"));
        let e = read::<ReceiptBody>(br#"{"sku":"a","location":"m","quantity":1}"#)
            .and_then(Receipt::try_from)
            .expect_err("no reference");
        assert_eq!(field_of(e), "reference");
        let e = read::<ReturnBody>(br#"{"order_ref":"o\u0000","reference":"r","lines":[]}"#)
            .and_then(Return::try_from)
            .expect_err("nul");
        assert_eq!(field_of(e), "order_ref");
        let e = read::<InspectionBody>(br#"{"outcome":"burn","lines":[]}"#)
            .and_then(Inspection::try_from)
            .expect_err("outcome");
        assert_eq!(field_of(e), "outcome");
        let i = read::<InspectionBody>(
            br#"{"outcome":"write_off","lines":[{"sku":"a","location":"m","quantity":1}]}"#,
        )
        .and_then(Inspection::try_from)
        .expect("inspection");
        assert_eq!(
            (i.outcome, i.reference),
            (InspectionOutcome::WriteOff, None)
        );
        let e = read::<PaymentRefBody>(br#"{"provider":"stripe"}"#)
            .and_then(PaymentRefAttachment::try_from)
            .expect_err("no ref");
        assert_eq!(field_of(e), "ref");
    }

    /// The answers print exactly what the former `json!` answers printed.
    #[test]
    fn answers_keep_their_bytes() {
        let d = Decision {
            event_id: "e".into(),
            outcome: OutcomeKind::NoOp,
            reason: Some(ReasonCode::OrderRegistered),
            repeated: true,
        };
        let old = serde_json::json!({"event_id": "e", "outcome": OutcomeKind::NoOp, "reason": Some(ReasonCode::OrderRegistered), "repeated": true});
        assert_eq!(
            serde_json::to_string(&d).ok(),
            serde_json::to_string(&old).ok()
        );
        let p = Pending::new("e".into());
        let old = serde_json::json!({"event_id": "e", "status": "pending",
            "message": "accepted; the ledger's decision is not back yet: see GET /v1/orders/… or retry the same request"});
        assert_eq!(
            serde_json::to_string(&p).ok(),
            serde_json::to_string(&old).ok()
        );
        let event = OrderEvent {
            duplicates: 0,
            event_id: "e".into(),
            exception_id: None,
            kind: "payment.authorized".into(),
            movements: Some(vec![Movement {
                from: "available".into(),
                location: "m".into(),
                quantity: 1,
                seq: 2,
                sku: "a".into(),
                to: "reserved".into(),
            }]),
            outcome: OutcomeKind::Moved,
            processed_at: "t".into(),
            reason: None,
        };
        let view = OrderView {
            amount: "1.00".into(),
            currency: "USD".into(),
            events: vec![event],
            lines: vec![OrderLine {
                location: "m".into(),
                quantity: 1,
                sku: "a".into(),
            }],
            order_ref: "o".into(),
            reserved_at: None,
            reserved_by: Some("e".into()),
            returned: Vec::new(),
            state: "reserved".into(),
            stock_moved: true,
        };
        let old = serde_json::json!({
            "order_ref": "o", "state": "reserved", "amount": "1.00", "currency": "USD",
            "stock_moved": true, "reserved_by": "e", "reserved_at": null,
            "lines": [{"sku": "a", "location": "m", "quantity": 1}], "returned": [],
            "events": [{"event_id": "e", "kind": "payment.authorized", "outcome": "moved",
                "reason": null, "processed_at": "t", "duplicates": 0,
                "movements": [{"sku": "a", "location": "m", "from": "available", "to": "reserved", "quantity": 1, "seq": 2}]}],
        });
        assert_eq!(
            serde_json::to_string(&view).ok(),
            serde_json::to_string(&old).ok()
        );
        let stock = StockView {
            locations: vec![LocationBalance {
                available: 1,
                last_seq: 3,
                location: "m".into(),
                reserved: 2,
                returned: 0,
                sold: 4,
                written_off: 5,
            }],
            sku: "a".into(),
        };
        let old = serde_json::json!({"sku": "a", "locations": [{"location": "m", "available": 1, "reserved": 2, "sold": 4, "returned": 0, "written_off": 5, "last_seq": 3}]});
        assert_eq!(
            serde_json::to_string(&stock).ok(),
            serde_json::to_string(&old).ok()
        );
        let page = EntriesPage {
            entries: vec![Entry {
                event_id: "e".into(),
                from: "available".into(),
                kind: "stock.received".into(),
                quantity: 1,
                recorded_at: "t".into(),
                seq: 1,
                to: "sold".into(),
            }],
            location: "m".into(),
            next_after_seq: 1,
            sku: "a".into(),
        };
        let old = serde_json::json!({"sku": "a", "location": "m", "next_after_seq": 1, "entries": [{"seq": 1, "from": "available", "to": "sold", "quantity": 1, "event_id": "e", "kind": "stock.received", "recorded_at": "t"}]});
        assert_eq!(
            serde_json::to_string(&page).ok(),
            serde_json::to_string(&old).ok()
        );
    }
}
