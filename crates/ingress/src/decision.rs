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

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use crate::AppState;
use crate::error::ApiError;
use crate::publish::{self, Outgoing, PublishError};

/// How long the last read after the deadline may take.
const FINAL_READ_TIMEOUT: Duration = Duration::from_millis(250);

/// The ledger's decision on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// `moved`, `noop` or `exception`.
    pub outcome: String,
    /// The reason code of a no-op or an exception (`order_registered`,
    /// `declined:insufficient_inventory`, `refused:return_exceeds_sold`, `oversold`, …).
    pub reason: Option<String>,
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
    let subject = state.bus.namespace().decision_subject(&id);
    let mut decisions = state
        .bus
        .subscribe(subject)
        .await
        .map_err(|e| PublishError::NotSent(ApiError::from(e)))?;
    let published = publish::publish(state, out).await?;
    let earlier = |processed_at: i64| published.duplicate || processed_at < started_ms;

    if published.duplicate {
        match state.store.processed(&id).await {
            Ok(Some(row)) => {
                let earlier = earlier(row.processed_at);
                return Ok(Waited::Decided(Decided {
                    outcome: row.outcome,
                    reason: row.reason,
                    earlier,
                }));
            }
            // Not decided yet (the first request is still waiting too): the announcement
            // answers.
            Ok(None) => {}
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

    match tokio::time::timeout(FINAL_READ_TIMEOUT, state.store.processed(&id)).await {
        Ok(Ok(Some(row))) => {
            let earlier = earlier(row.processed_at);
            Ok(Waited::Decided(Decided {
                outcome: row.outcome,
                reason: row.reason,
                earlier,
            }))
        }
        _ => Ok(Waited::Pending),
    }
}
