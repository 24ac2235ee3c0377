//! Waiting for the ledger's decision on an event this ingress published, without polling
//! the database in a loop (merchant API writes, PortOne's inventory confirmation).
//!
//! 1. Subscribe to the event's decision subject (core NATS), so that an announcement made
//!    right after the publish cannot be missed: the subscription reaches the server before
//!    the publish, on the same connection.
//! 2. Publish the event and await JetStream's ack.
//! 3. When JetStream says the event was stored before (a repeated request within its
//!    duplicate window), the ledger will not see it again: read its processed-event row
//!    once. Otherwise the ledger announces it, even when it had decided it before (an event
//!    repeated in another group-commit message reaches the ledger as a duplicate, and the
//!    ledger announces the first decision), so there is no database read on the common path.
//! 4. Wait on the subscription until the deadline; at the deadline, read the row once more
//!    (announcements are at most once: one lost in a reconnect must not turn a decided
//!    event into a timeout).
//!
//! One event id, one content (`docs/decisions.md` §26): a notice or a row is this
//! request's answer only when its content digest is this request's. When the id was
//! decided for another content, this content is refused: `idempotency_key_reused` for a
//! merchant API event (the ledger records nothing for it), `conflicting_duplicate` for
//! anyone else's (the ledger records it as that no-op under an id of its own). A notice
//! refusing *another* content under the same id is not this request's answer.

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use domain::{ContentDigest, OutcomeKind, ReasonCode};

use crate::AppState;
use crate::error::ApiError;
use crate::publish::{self, Outgoing, PublishError};

/// The reason answered for a provider's content that differs from the one first decided
/// under its event id (the ledger records it as this no-op).
pub const CONFLICTING_DUPLICATE: ReasonCode = ReasonCode::ConflictingDuplicate;

/// How long the last read after the deadline may take (a decision it finds is still
/// answered: PortOne's `answer_by` includes it, `routes::portone`).
pub(crate) const FINAL_READ_TIMEOUT: Duration = Duration::from_millis(250);

/// The ledger's decision on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Moved, no-op or exception.
    pub outcome: OutcomeKind,
    /// The reason code of a no-op or an exception (`order_registered`,
    /// `declined:insufficient_inventory`, `refused:return_exceeds_sold`, `oversold`, …).
    pub reason: Option<ReasonCode>,
    /// True when the event had been decided before this request published it (a repeated
    /// request: its answer is the first one's).
    pub earlier: bool,
}

/// What waiting gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    /// The ledger decided within the deadline.
    Decided(Decided),
    /// The event is durably accepted but its decision was not back by the deadline.
    Pending,
}

/// Publishes `out` (see [`publish::publish`]) and waits until `wait_until` for the ledger's
/// decision. An error means nothing was accepted.
pub async fn publish_and_wait(
    state: &AppState,
    out: &Outgoing,
    wait_until: Instant,
) -> Result<Waited, PublishError> {
    let started_ms = publish::now().0;
    let id = out.event_id.to_string();
    let mine = Mine::of(out);
    let subject = state.bus.namespace().decision_subject(&id);
    let mut decisions = state
        .bus
        .subscribe(subject)
        .await
        .map_err(|e| PublishError::NotSent(ApiError::from(e)))?;
    let published = publish::publish(state, out).await?;
    let earlier = |processed_at: i64| published.duplicate || processed_at < started_ms;

    if published.duplicate {
        match state.store.processed_content(&id).await {
            Ok(Some((row, first))) => {
                if mine.differs(first) {
                    return Ok(Waited::Decided(mine.refused()));
                }
                return Ok(Waited::Decided(decided(&row, earlier(row.processed_at))));
            }
            // Not decided yet (the first request is still waiting too): the announcement
            // answers.
            Ok(None) => {}
            // Unreachable, or a row this release cannot read (a newer ledger's code is
            // `StoreError::Corrupt`): the announcement, or the last read, answers.
            Err(e) => {
                tracing::warn!(event_id = %id, error = %e, "reading the decision failed; waiting for the announcement")
            }
        }
    }

    loop {
        let remaining = wait_until.saturating_duration_since(Instant::now());
        let Ok(Some(msg)) = tokio::time::timeout(remaining, decisions.next()).await else {
            break;
        };
        match serde_json::from_slice::<bus::DecisionNotice>(&msg.payload) {
            Ok(notice) if notice.event_id == id => {
                let about = notice
                    .content_digest
                    .as_deref()
                    .and_then(|d| d.parse::<ContentDigest>().ok());
                if mine.differs(about) {
                    if is_refusal_of_content(notice.reason) {
                        // Another content under this id was refused: not this answer.
                        continue;
                    }
                    // The id was decided for another content: this one is refused.
                    return Ok(Waited::Decided(mine.refused()));
                }
                return Ok(Waited::Decided(Decided {
                    outcome: notice.outcome,
                    reason: notice.reason,
                    earlier: published.duplicate || notice.repeated,
                }));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(event_id = %id, error = %e, "undecodable decision notice ignored")
            }
        }
    }
    drop(decisions);

    match tokio::time::timeout(FINAL_READ_TIMEOUT, state.store.processed_content(&id)).await {
        Ok(Ok(Some((_, first)))) if mine.differs(first) => Ok(Waited::Decided(mine.refused())),
        Ok(Ok(Some((row, _)))) => Ok(Waited::Decided(decided(&row, earlier(row.processed_at)))),
        // The event is accepted: a read that fails (the database unreachable, or a row this
        // release cannot read) is answered as pending, not as an error.
        Ok(Err(e)) => {
            tracing::warn!(event_id = %id, error = %e, "reading the decision failed; answered as pending");
            Ok(Waited::Pending)
        }
        _ => Ok(Waited::Pending),
    }
}

/// The decision a processed-event row records. The row's outcome and reason are already
/// typed: the store refuses a code this release does not know (`StoreError::Corrupt`).
fn decided(row: &store::ProcessedRow, earlier: bool) -> Decided {
    Decided {
        outcome: row.outcome,
        reason: row.reason,
        earlier,
    }
}

/// This request's content and what refusing it is called.
struct Mine {
    digest: ContentDigest,
    merchant: bool,
}

impl Mine {
    fn of(out: &Outgoing) -> Mine {
        Mine {
            // From the domain event the one contract check produced, not a second one.
            digest: contract::content_digest(&out.event.kind),
            merchant: out.envelope.source.provider == contract::MERCHANT_API,
        }
    }

    /// True when `other` is known and is not this content.
    fn differs(&self, other: Option<ContentDigest>) -> bool {
        other.is_some_and(|d| d != self.digest)
    }

    /// The answer for this content when its event id was decided for another one.
    fn refused(&self) -> Decided {
        let reason = if self.merchant {
            ReasonCode::IdempotencyKeyReused
        } else {
            CONFLICTING_DUPLICATE
        };
        Decided {
            outcome: OutcomeKind::NoOp,
            reason: Some(reason),
            earlier: false,
        }
    }
}

/// True for the reasons that refuse a content rather than decide the event.
fn is_refusal_of_content(reason: Option<ReasonCode>) -> bool {
    matches!(
        reason,
        Some(ReasonCode::IdempotencyKeyReused | ReasonCode::ConflictingDuplicate)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_content_are_refusals_of_content() {
        assert!(is_refusal_of_content(Some(
            ReasonCode::IdempotencyKeyReused
        )));
        assert!(!is_refusal_of_content(Some(ReasonCode::OrderRegistered)));
    }
}
