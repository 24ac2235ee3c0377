//! Reading a v2 envelope from a JSON object: the two fields v2 added, by path, then
//! everything else with v1's reader (v1's fields and payloads are v2's, unchanged), then
//! the domain rules. The kinds v2 added are read here: `exception.action` whole, and
//! `stock.corrected`'s `actor` and `payment.authorized`'s `answer_by` before v1's reader
//! reads the rest of the payload.

use domain::{Event, EventId, Timestamp};
use serde_json::{Map, Value};

use super::Envelope;
use super::payload::{
    EXCEPTION_ACTION, ExceptionAction, Payload, PaymentAuthorized, StockCorrected,
};
use crate::error::ContractError;
use crate::json::Obj;
use crate::v1;

/// The fields v2 added to v1's envelope.
const ADDED_FIELDS: [&str; 2] = ["merchant", "causation_id"];

/// Every field of a v2 envelope: v1's and the added ones.
const ENVELOPE_FIELDS: [&str; 11] = [
    "schema",
    "version",
    "event_id",
    "causation_id",
    "kind",
    "merchant",
    "occurred_at",
    "recorded_at",
    "source",
    "raw_digest",
    "payload",
];

/// What v2 added to v1's objects: v1's reader lets these through and this module reads
/// them.
const ADDED: v1::Added = v1::Added {
    envelope: &ADDED_FIELDS,
    authorized: &["answer_by"],
    corrected: &["actor"],
};

/// Reads and checks a v2 envelope whose `schema` and `version` the caller has already
/// checked, with the domain event it says.
///
/// One pass over the parsed document: v2's fields are read here, then v1's reader reads
/// v1's fields of the same object (told which fields v2 added, instead of being handed a
/// copy without them), then the domain rules run once.
pub(crate) fn envelope(map: &Map<String, Value>) -> Result<(Envelope, Event), ContractError> {
    let root = Obj::root(map);
    root.only(&ENVELOPE_FIELDS)?;
    let merchant = root.string("merchant")?;
    let causation_id = root
        .nullable_string("causation_id")?
        .map(|s| canonical_id(&s))
        .transpose()?;
    if kind_is(map, EXCEPTION_ACTION) {
        let envelope = exception_action(&root, merchant, causation_id)?;
        let event = envelope.to_domain()?;
        return Ok((envelope, event));
    }
    // Read before v1's reader so that a bad `actor` or `answer_by` is the error reported,
    // as it always was.
    let actor = correction_actor(&root, map)?;
    let answer_by = authorization_answer_by(&root, map)?;
    let v1::Envelope {
        event_id,
        occurred_at,
        recorded_at,
        source,
        raw_digest,
        payload,
    } = v1::read_envelope(map, &ADDED)?;
    // The payload is moved, not cloned, into its v2 shape.
    let payload = match (payload, actor, answer_by) {
        (v1::Payload::StockCorrected(correction), Some(actor), _) => {
            Payload::StockCorrected(StockCorrected { correction, actor })
        }
        (v1::Payload::PaymentAuthorized(authorization), _, Some(answer_by)) => {
            Payload::PaymentAuthorized(PaymentAuthorized {
                authorization,
                answer_by,
            })
        }
        (payload, _, _) => Payload::V1(payload),
    };
    let envelope = Envelope {
        event_id,
        merchant,
        causation_id,
        occurred_at,
        recorded_at,
        source,
        raw_digest,
        payload,
    };
    let event = envelope.to_domain()?;
    Ok((envelope, event))
}

/// An authorization's `answer_by` (v2 only, optional). Present, it must be a wire time.
fn authorization_answer_by(
    root: &Obj<'_>,
    map: &Map<String, Value>,
) -> Result<Option<Timestamp>, ContractError> {
    let has_it = matches!(map_payload(map), Some(p) if p.contains_key("answer_by"));
    if !kind_is(map, "payment.authorized") || !has_it {
        return Ok(None);
    }
    root.object("payload")?.time("answer_by").map(Some)
}

/// A correction's `actor` (v2 only, optional). Present, it must be a string.
fn correction_actor(
    root: &Obj<'_>,
    map: &Map<String, Value>,
) -> Result<Option<String>, ContractError> {
    let has_actor = matches!(map_payload(map), Some(p) if p.contains_key("actor"));
    if !kind_is(map, "stock.corrected") || !has_actor {
        return Ok(None);
    }
    root.object("payload")?.string("actor").map(Some)
}

/// True when the envelope's `kind` is `kind` (any other value, or none, is for the
/// readers to refuse with their paths).
fn kind_is(map: &Map<String, Value>, kind: &str) -> bool {
    map.get("kind").and_then(Value::as_str) == Some(kind)
}

fn map_payload(map: &Map<String, Value>) -> Option<&Map<String, Value>> {
    map.get("payload").and_then(Value::as_object)
}

/// The fields every payload object of `exception.action` has.
const ACTION_FIELDS: [&str; 5] = ["exception_id", "action", "actor", "reason", "evidence"];

/// Reads an `exception.action` envelope: v1's envelope fields (read as v1 reads them) and
/// the action's payload.
fn exception_action(
    root: &Obj<'_>,
    merchant: String,
    causation_id: Option<EventId>,
) -> Result<Envelope, ContractError> {
    let event_id = root.string("event_id")?;
    let occurred_at = root.time("occurred_at")?;
    let recorded_at = root.time("recorded_at")?;
    let source = root.object("source")?;
    source.only(&["provider", "identity"])?;
    let source = v1::Source {
        provider: source.string("provider")?,
        identity: source.string("identity")?,
    };
    let raw_digest = root.nullable_string("raw_digest")?;
    let p = root.object("payload")?;
    p.only(&ACTION_FIELDS)?;
    let payload = ExceptionAction {
        exception_id: p.string("exception_id")?,
        action: p.string("action")?,
        actor: p.string("actor")?,
        reason: p.string("reason")?,
        evidence: p.nullable_string("evidence")?,
    };
    let event_id = v1::check_event_id(&event_id, &source.identity)?;
    Ok(Envelope {
        event_id,
        merchant,
        causation_id,
        occurred_at,
        recorded_at,
        source,
        raw_digest,
        payload: Payload::ExceptionAction(payload),
    })
}

/// A cause is an event id: a lowercase hyphenated UUID, as `event_id` is written.
fn canonical_id(s: &str) -> Result<EventId, ContractError> {
    crate::json::canonical_uuid(s)
        .map(EventId::from_uuid)
        .ok_or_else(|| {
            ContractError::new(
                "causation_id",
                "must be a lowercase hyphenated UUID or null",
            )
        })
}
