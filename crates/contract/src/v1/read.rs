//! Reading a v1 envelope from a JSON object into the wire structs: shapes and types only,
//! with the path of every field. Domain rules (identifier lengths, quantities, amounts)
//! are checked afterwards by [`super::Envelope::to_domain`].

use domain::EventId;
use serde_json::{Map, Value};

use super::payload::{
    AuthorizationMode, ChargebackClosed, ChargebackOpened, ChargebackOutcome, FlagReason,
    InspectionOutcome, KINDS, Line, Money, OrderLookup, OrderRegistered, Payload,
    PaymentAuthorized, PaymentEvent, PaymentFlagged, PaymentNoted, PaymentRefAttached,
    PaymentRefEntry, ReservationExpired, ReturnInspected, ReturnReceived, StockCorrected,
    StockReceived,
};
use super::{Envelope, Source};
use crate::error::ContractError;
use crate::json::Obj;

const ENVELOPE_FIELDS: [&str; 9] = [
    "schema",
    "version",
    "event_id",
    "kind",
    "occurred_at",
    "recorded_at",
    "source",
    "raw_digest",
    "payload",
];

/// The fields a newer version adds to v1's objects, which v1's reader lets through
/// because the newer reader reads them itself. Naming them here, instead of handing v1's
/// reader a copy of the document without them, keeps decoding to one pass over one
/// parsed document.
pub(crate) struct Added {
    /// Added envelope fields (v2: `merchant`, `causation_id`).
    pub(crate) envelope: &'static [&'static str],
    /// Added fields of a `payment.authorized` payload (v2: `answer_by`).
    pub(crate) authorized: &'static [&'static str],
    /// Added fields of a `stock.corrected` payload (v2: `actor`).
    pub(crate) corrected: &'static [&'static str],
}

impl Added {
    /// Version 1 itself: nothing added, every object closed at v1's fields.
    pub(crate) const NONE: Added = Added {
        envelope: &[],
        authorized: &[],
        corrected: &[],
    };
}

/// Reads a v1 envelope whose `schema` and `version` the caller has already checked; a
/// newer version's reader passes the fields it `added` (and reads them itself).
pub(crate) fn envelope(map: &Map<String, Value>, added: &Added) -> Result<Envelope, ContractError> {
    let root = Obj::root(map);
    root.only_with(&ENVELOPE_FIELDS, added.envelope)?;
    let event_id = root.string("event_id")?;
    let kind = root.string("kind")?;
    if !KINDS.contains(&kind.as_str()) {
        return Err(ContractError::new("kind", format!("unknown kind {kind:?}")));
    }
    let occurred_at = root.time("occurred_at")?;
    let recorded_at = root.time("recorded_at")?;
    let source = source(&root.object("source")?)?;
    let raw_digest = root.nullable_string("raw_digest")?;
    let payload = payload(&kind, &root.object("payload")?, added)?;
    let event_id = check_event_id(&event_id, &source.identity)?;
    Ok(Envelope {
        event_id,
        occurred_at,
        recorded_at,
        source,
        raw_digest,
        payload,
    })
}

fn source(o: &Obj<'_>) -> Result<Source, ContractError> {
    o.only(&["provider", "identity"])?;
    Ok(Source {
        provider: o.string("provider")?,
        identity: o.string("identity")?,
    })
}

/// The id must be the canonical (lowercase, hyphenated) UUID derived from the identity:
/// ids are born at the edge from the identity and never chosen freely. This is the one
/// place a decoded envelope's id is derived; the envelope carries the checked id after.
pub(crate) fn check_event_id(event_id: &str, identity: &str) -> Result<EventId, ContractError> {
    let canonical = crate::json::canonical_uuid(event_id);
    let Some(uuid) = canonical else {
        return Err(ContractError::new(
            "event_id",
            "must be a lowercase hyphenated UUID",
        ));
    };
    let expected = EventId::from_dedupe_key(identity);
    if EventId::from_uuid(uuid) != expected {
        return Err(ContractError::new(
            "event_id",
            format!("does not match source.identity (expected {expected})"),
        ));
    }
    Ok(expected)
}

fn payload(kind: &str, o: &Obj<'_>, added: &Added) -> Result<Payload, ContractError> {
    Ok(match kind {
        "order.registered" => Payload::OrderRegistered(order_registered(o)?),
        "order.payment_ref_attached" => Payload::PaymentRefAttached(payment_ref_attached(o)?),
        "payment.authorized" => {
            Payload::PaymentAuthorized(payment_authorized(o, added.authorized)?)
        }
        "payment.captured" => Payload::PaymentCaptured(payment_event(o)?),
        "payment.voided" => Payload::PaymentVoided(payment_event(o)?),
        "payment.noted" => Payload::PaymentNoted(payment_noted(o)?),
        "payment.flagged" => Payload::PaymentFlagged(payment_flagged(o)?),
        "reservation.expired" => Payload::ReservationExpired(reservation_expired(o)?),
        "payment.settled" => Payload::PaymentSettled(payment_event(o)?),
        "payment.refunded" => Payload::PaymentRefunded(payment_event(o)?),
        "chargeback.opened" => Payload::ChargebackOpened(chargeback_opened(o)?),
        "chargeback.closed" => Payload::ChargebackClosed(chargeback_closed(o)?),
        "return.received" => Payload::ReturnReceived(return_received(o)?),
        "return.inspected" => Payload::ReturnInspected(return_inspected(o)?),
        "stock.received" => Payload::StockReceived(stock_received(o)?),
        "stock.corrected" => Payload::StockCorrected(stock_corrected(o, added.corrected)?),
        other => {
            return Err(ContractError::new(
                "kind",
                format!("unknown kind {other:?}"),
            ));
        }
    })
}

fn lines(o: &Obj<'_>, key: &str) -> Result<Vec<Line>, ContractError> {
    o.objects(key)?
        .iter()
        .map(|l| {
            l.only(&["sku", "location", "quantity"])?;
            Ok(Line {
                sku: l.string("sku")?,
                location: l.string("location")?,
                quantity: l.u64("quantity")?,
            })
        })
        .collect()
}

fn lookup(o: &Obj<'_>) -> Result<OrderLookup, ContractError> {
    let order = o.object("order")?;
    if order.get("order_ref").is_ok() {
        order.only(&["order_ref"])?;
        return Ok(OrderLookup::OrderRef {
            order_ref: order.string("order_ref")?,
        });
    }
    if order.get("provider").is_ok() || order.get("payment_ref").is_ok() {
        order.only(&["provider", "payment_ref"])?;
        return Ok(OrderLookup::PaymentRef {
            provider: order.string("provider")?,
            payment_ref: order.string("payment_ref")?,
        });
    }
    Err(ContractError::new(
        o.path_of("order"),
        "must have either order_ref, or provider and payment_ref",
    ))
}

fn money(o: &Obj<'_>) -> Result<Option<Money>, ContractError> {
    let Some(m) = o.nullable_object("amount")? else {
        return Ok(None);
    };
    m.only(&["amount", "currency"])?;
    Ok(Some(Money {
        amount: m.string("amount")?,
        currency: m.string("currency")?,
    }))
}

/// Reads one of two names into a wire enum, naming both in the error.
fn one_of<T: Copy>(o: &Obj<'_>, key: &str, choices: [(&str, T); 2]) -> Result<T, ContractError> {
    let s = o.string(key)?;
    choices
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            ContractError::new(
                o.path_of(key),
                format!(
                    "must be {:?} or {:?}, got {s:?}",
                    choices[0].0, choices[1].0
                ),
            )
        })
}

fn order_registered(o: &Obj<'_>) -> Result<OrderRegistered, ContractError> {
    o.only(&["order_ref", "lines", "amount", "currency", "payment_refs"])?;
    let order_ref = o.string("order_ref")?;
    let lines = lines(o, "lines")?;
    let amount = o.string("amount")?;
    let currency = o.string("currency")?;
    let payment_refs = o
        .objects("payment_refs")?
        .iter()
        .map(|r| {
            r.only(&["provider", "ref"])?;
            Ok(PaymentRefEntry {
                provider: r.string("provider")?,
                payment_ref: r.string("ref")?,
            })
        })
        .collect::<Result<_, ContractError>>()?;
    Ok(OrderRegistered {
        order_ref,
        lines,
        amount,
        currency,
        payment_refs,
    })
}

fn payment_ref_attached(o: &Obj<'_>) -> Result<PaymentRefAttached, ContractError> {
    o.only(&["order_ref", "provider", "ref"])?;
    Ok(PaymentRefAttached {
        order_ref: o.string("order_ref")?,
        provider: o.string("provider")?,
        payment_ref: o.string("ref")?,
    })
}

fn payment_authorized(o: &Obj<'_>, added: &[&str]) -> Result<PaymentAuthorized, ContractError> {
    o.only_with(&["order", "amount", "mode"], added)?;
    Ok(PaymentAuthorized {
        order: lookup(o)?,
        amount: money(o)?,
        mode: one_of(
            o,
            "mode",
            [
                ("confirmation", AuthorizationMode::Confirmation),
                ("notification", AuthorizationMode::Notification),
            ],
        )?,
    })
}

fn payment_event(o: &Obj<'_>) -> Result<PaymentEvent, ContractError> {
    o.only(&["order", "amount"])?;
    Ok(PaymentEvent {
        order: lookup(o)?,
        amount: money(o)?,
    })
}

fn payment_noted(o: &Obj<'_>) -> Result<PaymentNoted, ContractError> {
    o.only(&["order", "amount", "status"])?;
    Ok(PaymentNoted {
        order: lookup(o)?,
        amount: money(o)?,
        status: o.string("status")?,
    })
}

fn payment_flagged(o: &Obj<'_>) -> Result<PaymentFlagged, ContractError> {
    o.only(&["order", "amount", "reason", "detail"])?;
    Ok(PaymentFlagged {
        order: lookup(o)?,
        amount: money(o)?,
        reason: one_of(
            o,
            "reason",
            [
                ("unverifiable", FlagReason::Unverifiable),
                ("amount_mismatch", FlagReason::AmountMismatch),
            ],
        )?,
        detail: o.string("detail")?,
    })
}

fn reservation_expired(o: &Obj<'_>) -> Result<ReservationExpired, ContractError> {
    o.only(&["order_ref", "reservation"])?;
    Ok(ReservationExpired {
        order_ref: o.string("order_ref")?,
        reservation: o.string("reservation")?,
    })
}

fn chargeback_opened(o: &Obj<'_>) -> Result<ChargebackOpened, ContractError> {
    o.only(&["order", "amount", "dispute_id", "deadline"])?;
    Ok(ChargebackOpened {
        order: lookup(o)?,
        amount: money(o)?,
        dispute_id: o.string("dispute_id")?,
        deadline: o.nullable_time("deadline")?,
    })
}

fn chargeback_closed(o: &Obj<'_>) -> Result<ChargebackClosed, ContractError> {
    o.only(&["order", "amount", "dispute_id", "outcome"])?;
    Ok(ChargebackClosed {
        order: lookup(o)?,
        amount: money(o)?,
        dispute_id: o.string("dispute_id")?,
        outcome: one_of(
            o,
            "outcome",
            [
                ("won", ChargebackOutcome::Won),
                ("lost", ChargebackOutcome::Lost),
            ],
        )?,
    })
}

fn return_received(o: &Obj<'_>) -> Result<ReturnReceived, ContractError> {
    o.only(&["order_ref", "reference", "lines"])?;
    Ok(ReturnReceived {
        order_ref: o.string("order_ref")?,
        reference: o.string("reference")?,
        lines: lines(o, "lines")?,
    })
}

fn return_inspected(o: &Obj<'_>) -> Result<ReturnInspected, ContractError> {
    o.only(&["reference", "outcome", "lines"])?;
    Ok(ReturnInspected {
        reference: o.string("reference")?,
        outcome: one_of(
            o,
            "outcome",
            [
                ("restock", InspectionOutcome::Restock),
                ("write_off", InspectionOutcome::WriteOff),
            ],
        )?,
        lines: lines(o, "lines")?,
    })
}

fn stock_received(o: &Obj<'_>) -> Result<StockReceived, ContractError> {
    o.only(&["sku", "location", "quantity", "reference"])?;
    Ok(StockReceived {
        sku: o.string("sku")?,
        location: o.string("location")?,
        quantity: o.u64("quantity")?,
        reference: o.string("reference")?,
    })
}

fn stock_corrected(o: &Obj<'_>, added: &[&str]) -> Result<StockCorrected, ContractError> {
    o.only_with(
        &[
            "sku",
            "location",
            "delta",
            "reason",
            "evidence",
            "approved_by",
        ],
        added,
    )?;
    Ok(StockCorrected {
        sku: o.string("sku")?,
        location: o.string("location")?,
        delta: o.i64("delta")?,
        reason: o.string("reason")?,
        evidence: o.string("evidence")?,
        approved_by: o.string("approved_by")?,
    })
}
