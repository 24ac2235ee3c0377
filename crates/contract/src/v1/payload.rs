//! The v1 payloads, one struct per contract event kind, exactly as they appear on the
//! wire. Values are wire values (text, integers, times); checking them against the
//! domain's rules is [`super::Envelope::to_domain`]'s job, so these structs can hold what
//! a producer sent even when it is invalid.

use domain::Timestamp;
use std::collections::BTreeMap;

use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};

use crate::wire_time;

/// One line of an order, a return or an inspection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The SKU.
    pub sku: String,
    /// The location the units are kept at.
    pub location: String,
    /// The number of units, at least 1.
    pub quantity: u64,
}

/// An amount of money: a decimal string (never a JSON number) and a currency.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// A plain decimal such as `"100.50"`.
    pub amount: String,
    /// Three uppercase letters such as `"USD"`.
    pub currency: String,
}

/// How a payment event names its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OrderLookup {
    /// `{"order_ref": "..."}`.
    OrderRef {
        /// The merchant's order reference.
        order_ref: String,
    },
    /// `{"provider": "stripe", "payment_ref": "pi_..."}`.
    PaymentRef {
        /// The provider that issued the reference.
        provider: String,
        /// The provider's payment reference attached to the order.
        payment_ref: String,
    },
}

/// Every key an order lookup may have, and any other: which combination is allowed is
/// decided after, by the keys present, as the contract always decided it.
#[derive(Deserialize)]
struct LookupWire {
    #[serde(default, deserialize_with = "crate::de::present")]
    order_ref: Option<String>,
    #[serde(default, deserialize_with = "crate::de::present")]
    payment_ref: Option<String>,
    #[serde(default, deserialize_with = "crate::de::present")]
    provider: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, IgnoredAny>,
}

/// Read by keys: with `order_ref`, nothing else; else `provider` and `payment_ref`. An
/// untagged derive would only say that no variant matched.
impl<'de> Deserialize<'de> for OrderLookup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w: LookupWire = crate::de::object(d)?;
        let mut keys: Vec<&str> = w.other.keys().map(String::as_str).collect();
        for (key, present) in [
            ("order_ref", w.order_ref.is_some()),
            ("payment_ref", w.payment_ref.is_some()),
            ("provider", w.provider.is_some()),
        ] {
            if present {
                keys.push(key);
            }
        }
        // The first key not allowed, in key order (the order the object is read in).
        keys.sort_unstable();
        let refuse_other =
            |allowed: &'static [&'static str]| match keys.iter().find(|k| !allowed.contains(k)) {
                Some(k) => Err(crate::de::not_a_field(k)),
                None => Ok(()),
            };
        if let Some(order_ref) = w.order_ref {
            refuse_other(&["order_ref"])?;
            return Ok(OrderLookup::OrderRef { order_ref });
        }
        if w.provider.is_none() && w.payment_ref.is_none() {
            return Err(D::Error::custom(
                "must have either order_ref, or provider and payment_ref",
            ));
        }
        refuse_other(&["provider", "payment_ref"])?;
        match (w.provider, w.payment_ref) {
            (Some(provider), Some(payment_ref)) => Ok(OrderLookup::PaymentRef {
                provider,
                payment_ref,
            }),
            (None, _) => Err(D::Error::missing_field("provider")),
            (_, None) => Err(D::Error::missing_field("payment_ref")),
        }
    }
}

/// A provider's payment reference as the merchant registers it with an order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRefEntry {
    /// The provider that issued the reference.
    pub provider: String,
    /// The provider's payment reference.
    #[serde(rename = "ref")]
    pub payment_ref: String,
}

/// `order.registered`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRegistered {
    /// The merchant's order reference.
    pub order_ref: String,
    /// The order's lines.
    #[serde(deserialize_with = "crate::de::objects")]
    pub lines: Vec<Line>,
    /// The order's amount, a decimal string.
    pub amount: String,
    /// The currency of `amount`.
    pub currency: String,
    /// Provider payment references registered with the order.
    #[serde(deserialize_with = "crate::de::objects")]
    pub payment_refs: Vec<PaymentRefEntry>,
}

/// `order.payment_ref_attached`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRefAttached {
    /// The merchant's order reference.
    pub order_ref: String,
    /// The provider that issued the reference.
    pub provider: String,
    /// The provider's payment reference.
    #[serde(rename = "ref")]
    pub payment_ref: String,
}

/// Whether the provider asks before capturing or only tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationMode {
    /// `"confirmation"`: the provider waits for stockledger's answer.
    Confirmation,
    /// `"notification"`: the provider only notifies.
    Notification,
}

/// `payment.authorized`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentAuthorized {
    /// The order the payment is for.
    pub order: OrderLookup,
    /// The amount the provider reports, or `null`.
    #[serde(deserialize_with = "crate::de::nullable_object")]
    pub amount: Option<Money>,
    /// Whether the provider asks or only tells.
    #[serde(deserialize_with = "crate::de::word")]
    pub mode: AuthorizationMode,
}

/// `payment.captured`, `payment.voided`, `payment.settled` and `payment.refunded`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentEvent {
    /// The order the payment is for.
    pub order: OrderLookup,
    /// The amount the provider reports, or `null`.
    #[serde(deserialize_with = "crate::de::nullable_object")]
    pub amount: Option<Money>,
}

/// `payment.noted`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentNoted {
    /// The order the payment is for.
    pub order: OrderLookup,
    /// The amount the provider reports, or `null`.
    #[serde(deserialize_with = "crate::de::nullable_object")]
    pub amount: Option<Money>,
    /// The provider's status, as the provider spells it.
    pub status: String,
}

/// Why a flagged payment waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagReason {
    /// `"unverifiable"`: the provider's message could not be verified with the provider.
    Unverifiable,
    /// `"amount_mismatch"`: the provider confirmed a payment short of the order.
    AmountMismatch,
}

/// `payment.flagged`: a provider payment stockledger will not apply without a person.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentFlagged {
    /// The order the payment is for.
    pub order: OrderLookup,
    /// The amount the provider reports, or `null`.
    #[serde(deserialize_with = "crate::de::nullable_object")]
    pub amount: Option<Money>,
    /// Why it waits for a person; the exception's reason.
    #[serde(deserialize_with = "crate::de::word")]
    pub reason: FlagReason,
    /// The evidence in words (what the provider answered, how often it was asked).
    pub detail: String,
}

/// `reservation.expired`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationExpired {
    /// The merchant's order reference.
    pub order_ref: String,
    /// The event id (lowercase hyphenated UUID) of the event that made the reservation.
    pub reservation: String,
}

/// `chargeback.opened`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChargebackOpened {
    /// The order the disputed payment is for.
    pub order: OrderLookup,
    /// The disputed amount, or `null`.
    #[serde(deserialize_with = "crate::de::nullable_object")]
    pub amount: Option<Money>,
    /// The provider's dispute identifier.
    pub dispute_id: String,
    /// The provider's deadline for evidence, or `null`.
    #[serde(
        serialize_with = "wire_time::serialize_option",
        deserialize_with = "wire_time::deserialize_nullable"
    )]
    pub deadline: Option<Timestamp>,
}

/// The outcome of a closed chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargebackOutcome {
    /// `"won"`.
    Won,
    /// `"lost"`.
    Lost,
}

/// `chargeback.closed`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChargebackClosed {
    /// The order the disputed payment is for.
    pub order: OrderLookup,
    /// The disputed amount, or `null`.
    #[serde(deserialize_with = "crate::de::nullable_object")]
    pub amount: Option<Money>,
    /// The provider's dispute identifier.
    pub dispute_id: String,
    /// How the dispute ended.
    #[serde(deserialize_with = "crate::de::word")]
    pub outcome: ChargebackOutcome,
}

/// `return.received`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnReceived {
    /// The order the goods were sold under.
    pub order_ref: String,
    /// The merchant's reference of the return.
    pub reference: String,
    /// The lines received.
    #[serde(deserialize_with = "crate::de::objects")]
    pub lines: Vec<Line>,
}

/// What an inspection decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionOutcome {
    /// `"restock"`: back to available.
    Restock,
    /// `"write_off"`: gone for good.
    WriteOff,
}

/// `return.inspected`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnInspected {
    /// The merchant's reference of the return.
    pub reference: String,
    /// What the inspection decided.
    #[serde(deserialize_with = "crate::de::word")]
    pub outcome: InspectionOutcome,
    /// The lines inspected.
    #[serde(deserialize_with = "crate::de::objects")]
    pub lines: Vec<Line>,
}

/// `stock.received`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StockReceived {
    /// The SKU.
    pub sku: String,
    /// The location the units arrived at.
    pub location: String,
    /// The number of units, at least 1.
    pub quantity: u64,
    /// The merchant's reference of the receipt (delivery note, purchase order).
    pub reference: String,
}

/// `stock.corrected`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StockCorrected {
    /// The SKU.
    pub sku: String,
    /// The location corrected.
    pub location: String,
    /// Units added (positive) or removed (negative); never zero.
    pub delta: i64,
    /// Why the correction is made.
    pub reason: String,
    /// What shows it is right (a count sheet, a photo reference).
    pub evidence: String,
    /// Who approved it.
    pub approved_by: String,
}

/// The payload of a v1 envelope; the variant decides the envelope's `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    /// `order.registered`.
    OrderRegistered(OrderRegistered),
    /// `order.payment_ref_attached`.
    PaymentRefAttached(PaymentRefAttached),
    /// `payment.authorized`.
    PaymentAuthorized(PaymentAuthorized),
    /// `payment.captured`.
    PaymentCaptured(PaymentEvent),
    /// `payment.voided`.
    PaymentVoided(PaymentEvent),
    /// `payment.noted`.
    PaymentNoted(PaymentNoted),
    /// `reservation.expired`.
    ReservationExpired(ReservationExpired),
    /// `payment.flagged`.
    PaymentFlagged(PaymentFlagged),
    /// `payment.settled`.
    PaymentSettled(PaymentEvent),
    /// `payment.refunded`.
    PaymentRefunded(PaymentEvent),
    /// `chargeback.opened`.
    ChargebackOpened(ChargebackOpened),
    /// `chargeback.closed`.
    ChargebackClosed(ChargebackClosed),
    /// `return.received`.
    ReturnReceived(ReturnReceived),
    /// `return.inspected`.
    ReturnInspected(ReturnInspected),
    /// `stock.received`.
    StockReceived(StockReceived),
    /// `stock.corrected`.
    StockCorrected(StockCorrected),
}

/// Every kind name v1 knows, in the order they were added.
pub const KINDS: [&str; 16] = [
    "order.registered",
    "order.payment_ref_attached",
    "payment.authorized",
    "payment.captured",
    "payment.voided",
    "payment.noted",
    "reservation.expired",
    "payment.settled",
    "payment.refunded",
    "chargeback.opened",
    "chargeback.closed",
    "return.received",
    "return.inspected",
    "stock.received",
    "stock.corrected",
    "payment.flagged",
];

impl Payload {
    /// The envelope's `kind` for this payload (`payment.captured`, …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Payload::OrderRegistered(_) => "order.registered",
            Payload::PaymentRefAttached(_) => "order.payment_ref_attached",
            Payload::PaymentAuthorized(_) => "payment.authorized",
            Payload::PaymentCaptured(_) => "payment.captured",
            Payload::PaymentVoided(_) => "payment.voided",
            Payload::PaymentNoted(_) => "payment.noted",
            Payload::ReservationExpired(_) => "reservation.expired",
            Payload::PaymentFlagged(_) => "payment.flagged",
            Payload::PaymentSettled(_) => "payment.settled",
            Payload::PaymentRefunded(_) => "payment.refunded",
            Payload::ChargebackOpened(_) => "chargeback.opened",
            Payload::ChargebackClosed(_) => "chargeback.closed",
            Payload::ReturnReceived(_) => "return.received",
            Payload::ReturnInspected(_) => "return.inspected",
            Payload::StockReceived(_) => "stock.received",
            Payload::StockCorrected(_) => "stock.corrected",
        }
    }
}
