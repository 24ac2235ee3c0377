//! Reading a v1 envelope from the parsed JSON into the wire structs with serde: shapes and
//! types only, every refusal naming its field by path. Domain rules (identifier lengths,
//! quantities, amounts) are checked afterwards by [`super::Envelope::to_domain`].

use domain::{EventId, Timestamp};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::payload::{KINDS, Payload};
use super::{Envelope, Source};
use crate::de::read;
use crate::error::ContractError;
use crate::wire_time;

/// A v1 envelope as written, the payload aside: its shape depends on `kind`, so it is read
/// by [`payload`] once the kind is known. Closed, as every v1 object: a new field is a new
/// version.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    // Checked by the caller before the version's reader is chosen.
    #[serde(rename = "schema")]
    _schema: IgnoredAny,
    #[serde(rename = "version")]
    _version: IgnoredAny,
    event_id: String,
    kind: String,
    #[serde(deserialize_with = "wire_time::deserialize")]
    occurred_at: Timestamp,
    #[serde(deserialize_with = "wire_time::deserialize")]
    recorded_at: Timestamp,
    #[serde(deserialize_with = "crate::de::object")]
    source: Source,
    #[serde(deserialize_with = "crate::de::nullable_string")]
    raw_digest: Option<String>,
    #[serde(rename = "payload")]
    _payload: IgnoredAny,
}

/// Reads a v1 envelope whose `schema` and `version` the caller has already checked.
pub(crate) fn envelope(value: &Value) -> Result<Envelope, ContractError> {
    let head: Head = read(value, "")?;
    if !KINDS.contains(&head.kind.as_str()) {
        return Err(unknown_kind(&head.kind));
    }
    // Present: the head has it. Indexing never panics on a `Value`.
    let payload = payload(&head.kind, &value["payload"])?;
    let event_id = check_event_id(&head.event_id, &head.source.identity)?;
    Ok(Envelope {
        event_id,
        occurred_at: head.occurred_at,
        recorded_at: head.recorded_at,
        source: head.source,
        raw_digest: head.raw_digest,
        payload,
    })
}

/// The error for a kind this version does not know.
pub(crate) fn unknown_kind(kind: &str) -> ContractError {
    ContractError::new("kind", format!("unknown kind {kind:?}"))
}

/// The id must be the canonical (lowercase, hyphenated) UUID derived from the identity:
/// ids are born at the edge from the identity and never chosen freely. This is the one
/// place a decoded envelope's id is derived; the envelope carries the checked id after.
pub(crate) fn check_event_id(event_id: &str, identity: &str) -> Result<EventId, ContractError> {
    let Some(uuid) = crate::de::canonical_uuid(event_id) else {
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

/// Reads the `payload` object `value` of a v1 `kind` into its struct.
pub(crate) fn payload(kind: &str, value: &Value) -> Result<Payload, ContractError> {
    const AT: &str = "payload";
    Ok(match kind {
        "order.registered" => Payload::OrderRegistered(read(value, AT)?),
        "order.payment_ref_attached" => Payload::PaymentRefAttached(read(value, AT)?),
        "payment.authorized" => Payload::PaymentAuthorized(read(value, AT)?),
        "payment.captured" => Payload::PaymentCaptured(read(value, AT)?),
        "payment.voided" => Payload::PaymentVoided(read(value, AT)?),
        "payment.noted" => Payload::PaymentNoted(read(value, AT)?),
        "payment.flagged" => Payload::PaymentFlagged(read(value, AT)?),
        "reservation.expired" => Payload::ReservationExpired(read(value, AT)?),
        "payment.settled" => Payload::PaymentSettled(read(value, AT)?),
        "payment.refunded" => Payload::PaymentRefunded(read(value, AT)?),
        "chargeback.opened" => Payload::ChargebackOpened(read(value, AT)?),
        "chargeback.closed" => Payload::ChargebackClosed(read(value, AT)?),
        "return.received" => Payload::ReturnReceived(read(value, AT)?),
        "return.inspected" => Payload::ReturnInspected(read(value, AT)?),
        "stock.received" => Payload::StockReceived(read(value, AT)?),
        "stock.corrected" => Payload::StockCorrected(read(value, AT)?),
        other => return Err(unknown_kind(other)),
    })
}
