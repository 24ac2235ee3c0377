//! Reading a v2 envelope from a JSON object: the two fields v2 added, by path, then
//! everything else with v1's reader (v1's fields and payloads are v2's, unchanged), then
//! the domain rules. The kinds v2 added are read here: `exception.action` whole, and
//! `stock.corrected`'s `actor` and `payment.authorized`'s `answer_by` before v1's reader
//! reads the rest of the payload.

use domain::{Event, EventId, Timestamp};
use serde_json::{Map, Value};
use uuid::Uuid;

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

/// Reads and checks a v2 envelope whose `schema` and `version` the caller has already
/// checked, with the domain event it says.
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
    // v1's reader refuses fields it does not know, so it sees v1's fields only. Copying
    // them costs a copy of one small JSON document, far less than the transaction it feeds.
    let mut v1_fields: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !ADDED_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let actor = correction_actor(&root, &mut v1_fields)?;
    let answer_by = authorization_answer_by(&root, &mut v1_fields)?;
    let v1 = v1::read_envelope(&v1_fields)?;
    let mut envelope = Envelope {
        merchant,
        causation_id,
        ..super::upcast(v1)
    };
    if let (Some(actor), Payload::V1(v1::Payload::StockCorrected(correction))) =
        (actor, &envelope.payload)
    {
        envelope.payload = Payload::StockCorrected(StockCorrected {
            correction: correction.clone(),
            actor,
        });
    }
    if let (Some(answer_by), Payload::V1(v1::Payload::PaymentAuthorized(authorization))) =
        (answer_by, &envelope.payload)
    {
        envelope.payload = Payload::PaymentAuthorized(PaymentAuthorized {
            authorization: authorization.clone(),
            answer_by,
        });
    }
    let event = envelope.to_domain()?;
    Ok((envelope, event))
}

/// Takes an authorization's `answer_by` (v2 only, optional) out of the fields v1's reader
/// will see. Present, it must be a wire time.
fn authorization_answer_by(
    root: &Obj<'_>,
    v1_fields: &mut Map<String, Value>,
) -> Result<Option<Timestamp>, ContractError> {
    let has_it = matches!(map_payload(v1_fields), Some(p) if p.contains_key("answer_by"));
    if !kind_is(v1_fields, "payment.authorized") || !has_it {
        return Ok(None);
    }
    let answer_by = root.object("payload")?.time("answer_by")?;
    if let Some(Value::Object(p)) = v1_fields.get_mut("payload") {
        p.remove("answer_by");
    }
    Ok(Some(answer_by))
}

/// Takes a correction's `actor` (v2 only, optional) out of the fields v1's reader will
/// see. Present, it must be a string.
fn correction_actor(
    root: &Obj<'_>,
    v1_fields: &mut Map<String, Value>,
) -> Result<Option<String>, ContractError> {
    let has_actor = matches!(map_payload(v1_fields), Some(p) if p.contains_key("actor"));
    if !kind_is(v1_fields, "stock.corrected") || !has_actor {
        return Ok(None);
    }
    let payload = root.object("payload")?;
    let actor = payload.string("actor")?;
    if let Some(Value::Object(p)) = v1_fields.get_mut("payload") {
        p.remove("actor");
    }
    Ok(Some(actor))
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
    check_event_id(&event_id, &source.identity)?;
    Ok(Envelope {
        merchant,
        causation_id,
        occurred_at,
        recorded_at,
        source,
        raw_digest,
        payload: Payload::ExceptionAction(payload),
    })
}

/// As v1: the id must be the canonical UUID derived from the identity.
fn check_event_id(event_id: &str, identity: &str) -> Result<(), ContractError> {
    let canonical = Uuid::parse_str(event_id)
        .ok()
        .filter(|u| u.hyphenated().to_string() == event_id);
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
    Ok(())
}

/// A cause is an event id: a lowercase hyphenated UUID, as `event_id` is written.
fn canonical_id(s: &str) -> Result<EventId, ContractError> {
    Uuid::parse_str(s)
        .ok()
        .filter(|u| u.hyphenated().to_string() == s)
        .map(EventId::from_uuid)
        .ok_or_else(|| {
            ContractError::new(
                "causation_id",
                "must be a lowercase hyphenated UUID or null",
            )
        })
}
