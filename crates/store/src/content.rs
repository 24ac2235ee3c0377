//! One event id, one content, in the batch path (`docs/decisions.md` §26).
//!
//! A delivery whose event id already has an outcome is a duplicate only when it says what
//! the first content said ([`contract::content_digest`]). The first content is the
//! envelope recorded with the outcome (`processed_events.envelope`, loaded with the
//! outcomes in the batch's one set query) or, for an event first recorded earlier in the
//! same batch, that event's envelope. Redeliveries and replays carry the very bytes that
//! were recorded, so the common case is one string comparison; digests are computed only
//! when the texts differ (a merchant's retry is stamped anew).
//!
//! When the contents differ:
//! - a merchant API event is [`crate::Applied::IdempotencyKeyReused`]: nothing is written
//!   (the event stays in the stream, where it changes nothing);
//! - any other event is recorded as the no-op `conflicting_duplicate` under
//!   [`domain::conflict_id`], so that one event id never has two outcomes and a person
//!   sees both digests.

use std::collections::{BTreeMap, BTreeSet};

use domain::{ConflictEvidence, EventId, State};
use sqlx::AnyConnection;

use crate::StoreError;
use crate::apply::Incoming;
use crate::load;

/// How a delivery under a known event id compares with the first content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sameness {
    /// The same content (or one of the two is not an event, so there is nothing to
    /// compare): a plain duplicate.
    Same,
    /// Different content.
    Conflict {
        evidence: ConflictEvidence,
        /// True when the second content came through the merchant API.
        merchant: bool,
    },
}

/// The first content of every event id the batch has seen: loaded, or recorded earlier in
/// the batch.
#[derive(Debug, Default)]
pub(crate) struct FirstContents {
    envelopes: BTreeMap<EventId, String>,
}

impl FirstContents {
    pub(crate) fn new(envelopes: BTreeMap<EventId, String>) -> Self {
        FirstContents { envelopes }
    }

    /// Remembers `envelope` as the first content of `id` unless one is known.
    pub(crate) fn recorded(&mut self, id: EventId, envelope: &str) {
        self.envelopes
            .entry(id)
            .or_insert_with(|| envelope.to_owned());
    }

    /// How `incoming` compares with the first content of its event id.
    pub(crate) fn compare(&self, incoming: &Incoming) -> Sameness {
        let id = incoming.event.id;
        match self.envelopes.get(&id) {
            Some(first) => compare(id, first, &incoming.envelope),
            None => Sameness::Same,
        }
    }

    /// Loads into `state` the outcomes of the conflict records the batch may meet again
    /// (a redelivered conflicting content is a duplicate of its record), with one set
    /// query, and only when the batch holds such a delivery.
    pub(crate) async fn load_conflict_outcomes(
        &self,
        conn: &mut AnyConnection,
        state: &mut State,
        batch: &[Incoming],
    ) -> Result<(), StoreError> {
        let ids: BTreeSet<EventId> = batch
            .iter()
            .filter_map(|incoming| match self.compare(incoming) {
                Sameness::Conflict {
                    evidence,
                    merchant: false,
                } => Some(domain::conflict_id(
                    evidence.event_id,
                    evidence.second_digest,
                )),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        load::load_outcomes(conn, state, &ids).await?;
        Ok(())
    }
}

/// Compares the first envelope of `id` with a later one (both JSON text).
fn compare(id: EventId, first: &str, second: &str) -> Sameness {
    if first == second {
        return Sameness::Same;
    }
    let Ok(second) = contract::decode(second.as_bytes()) else {
        return Sameness::Same;
    };
    let Some(first_digest) = contract::content_digest_of_json(first) else {
        return Sameness::Same;
    };
    let second_digest = second.content_digest();
    if first_digest == second_digest {
        return Sameness::Same;
    }
    Sameness::Conflict {
        evidence: ConflictEvidence {
            event_id: id,
            first_digest,
            second_digest,
        },
        merchant: second.source.provider == contract::MERCHANT_API,
    }
}
