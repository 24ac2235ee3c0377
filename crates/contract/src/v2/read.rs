//! Reading a v2 envelope from a JSON object: the two fields v2 added, by path, then
//! everything else with v1's reader (v1's fields and payloads are v2's, unchanged), then
//! the domain rules.

use domain::{Event, EventId};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Envelope;
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
    // v1's reader refuses fields it does not know, so it sees v1's fields only. Copying
    // them costs a copy of one small JSON document, far less than the transaction it feeds.
    let v1_fields: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !ADDED_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let v1 = v1::read_envelope(&v1_fields)?;
    let event = v1.to_domain()?;
    super::check_added(&merchant, causation_id, event.id)?;
    let envelope = Envelope {
        merchant,
        causation_id,
        ..super::upcast(v1)
    };
    Ok((envelope, event))
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
