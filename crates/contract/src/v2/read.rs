//! Reading a v2 envelope from the parsed JSON with serde: v1's envelope fields plus the two
//! v2 added, then the payload of its kind (v1's payload structs for v1's kinds, this
//! module's wire structs for what v2 added: `exception.action` whole, and the optional
//! `actor` of `stock.corrected` and `answer_by` and `payment_method` of
//! `payment.authorized`), then the domain
//! rules. Objects are closed, as in v1.

use domain::{Event, EventId, Timestamp};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::Envelope;
use super::payload::{
    EXCEPTION_ACTION, POLICY_CHANGED, Payload, PaymentAuthorized, StockCorrected,
};
use crate::de::read;
use crate::error::ContractError;
use crate::{v1, wire_time};

/// A v2 envelope as written, the payload aside (read by kind once the kind is known).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    // Checked by the caller before the version's reader is chosen.
    #[serde(rename = "schema")]
    _schema: IgnoredAny,
    #[serde(rename = "version")]
    _version: IgnoredAny,
    // v2's own fields first: serde reports missing fields in this order, and v2's reader
    // has always named a missing `merchant` before anything of v1's.
    merchant: String,
    #[serde(deserialize_with = "crate::de::nullable_string")]
    causation_id: Option<String>,
    event_id: String,
    kind: String,
    #[serde(deserialize_with = "wire_time::deserialize")]
    occurred_at: Timestamp,
    #[serde(deserialize_with = "wire_time::deserialize")]
    recorded_at: Timestamp,
    #[serde(deserialize_with = "crate::de::object")]
    source: v1::Source,
    #[serde(deserialize_with = "crate::de::nullable_string")]
    raw_digest: Option<String>,
    #[serde(rename = "payload")]
    _payload: IgnoredAny,
}

/// `stock.corrected` as v2 reads it: v1's fields and an optional `actor` (serde cannot
/// close an object that flattens another, so v1's fields are listed again).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorrectedWire {
    sku: String,
    location: String,
    delta: i64,
    reason: String,
    evidence: String,
    approved_by: String,
    #[serde(default, deserialize_with = "crate::de::present")]
    actor: Option<String>,
}

/// `payment.authorized` as v2 reads it: v1's fields, an optional `answer_by` and an
/// optional `payment_method`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizedWire {
    order: v1::OrderLookup,
    #[serde(deserialize_with = "crate::de::nullable_object")]
    amount: Option<v1::Money>,
    #[serde(deserialize_with = "crate::de::word")]
    mode: v1::AuthorizationMode,
    #[serde(default, deserialize_with = "wire_time::deserialize_present")]
    answer_by: Option<Timestamp>,
    #[serde(default, deserialize_with = "crate::de::present")]
    payment_method: Option<String>,
}

/// Reads and checks a v2 envelope whose `schema` and `version` the caller has already
/// checked, with the domain event it says.
pub(crate) fn envelope(value: &Value) -> Result<(Envelope, Event), ContractError> {
    let head: Head = read(value, "")?;
    let causation_id = head.causation_id.as_deref().map(canonical_id).transpose()?;
    let payload = payload(&head.kind, &value["payload"])?;
    let event_id = v1::check_event_id(&head.event_id, &head.source.identity)?;
    let envelope = Envelope {
        event_id,
        merchant: head.merchant,
        causation_id,
        occurred_at: head.occurred_at,
        recorded_at: head.recorded_at,
        source: head.source,
        raw_digest: head.raw_digest,
        payload,
    };
    let event = envelope.to_domain()?;
    Ok((envelope, event))
}

/// Reads the `payload` object `value` of `kind`. Without the fields v2 added, a correction
/// or an authorization is v1's payload, so that it keeps its one encoding.
fn payload(kind: &str, value: &Value) -> Result<Payload, ContractError> {
    const AT: &str = "payload";
    Ok(match kind {
        EXCEPTION_ACTION => Payload::ExceptionAction(read(value, AT)?),
        POLICY_CHANGED => Payload::PolicyChanged(read(value, AT)?),
        "stock.corrected" => {
            let w: CorrectedWire = read(value, AT)?;
            let correction = v1::StockCorrected {
                sku: w.sku,
                location: w.location,
                delta: w.delta,
                reason: w.reason,
                evidence: w.evidence,
                approved_by: w.approved_by,
            };
            match w.actor {
                Some(actor) => Payload::StockCorrected(StockCorrected { correction, actor }),
                None => Payload::V1(v1::Payload::StockCorrected(correction)),
            }
        }
        "payment.authorized" => {
            let w: AuthorizedWire = read(value, AT)?;
            let authorization = v1::PaymentAuthorized {
                order: w.order,
                amount: w.amount,
                mode: w.mode,
            };
            PaymentAuthorized::payload(authorization, w.answer_by, w.payment_method)
        }
        other if v1::KINDS.contains(&other) => Payload::V1(v1::read_payload(other, value)?),
        other => return Err(v1::unknown_kind(other)),
    })
}

/// A cause is an event id: a lowercase hyphenated UUID, as `event_id` is written.
fn canonical_id(s: &str) -> Result<EventId, ContractError> {
    crate::de::canonical_uuid(s)
        .map(EventId::from_uuid)
        .ok_or_else(|| {
            ContractError::new(
                "causation_id",
                "must be a lowercase hyphenated UUID or null",
            )
        })
}
