//! Operator retries as events (`docs/decisions.md` §27). An `exception.action` `retry` that
//! the matrix accepted (the exception is its event's own, and open) is followed, in the
//! same batch and transaction, by a delivery of that event as an operator retry: only an
//! open exception is re-decided, a final outcome never changes. The delivery is the event
//! as first recorded (its envelope in `processed_events`, decoded with
//! `contract::decode_event`), stamped with the retry action's `recorded_at`: the time of
//! everything the retry writes is the time the operator asked for it, so a rebuild from the
//! stream writes the same rows.
//!
//! Dead letters (rows the ledger never decided) are not retried this way; their retry
//! re-publishes the original message (`operator::actions`).

use std::collections::{BTreeMap, BTreeSet};

use domain::{Event, EventId, EventKind, NoOpReason, OperatorAction, Outcome};
use sqlx::AnyConnection;

use crate::StoreError;
use crate::apply::{Applied, Incoming};
use crate::bulk::{Bulk, Val};
use crate::persist::{Writes, retried_as};
use crate::rows::decode_all;

/// The events the batch's retry actions name, decoded from the envelopes they were first
/// recorded with.
#[derive(Default)]
pub(crate) struct Originals(BTreeMap<EventId, (Event, String)>);

/// A retry target as first recorded. The id stays text: it is only logged, and only when
/// the envelope does not decode (the decoded event carries its own id).
#[derive(sqlx::FromRow)]
struct OriginalRow {
    event_id: String,
    envelope: String,
}

/// The event id a retry action names, if it is one.
fn retry_target(event: &Event) -> Option<EventId> {
    match &event.kind {
        EventKind::ExceptionAction {
            exception_id,
            action: OperatorAction::Retry,
            ..
        } => exception_id.as_str().parse().ok(),
        _ => None,
    }
}

/// Loads the events the retry actions of `events` name, with one set query (none when the
/// batch has no retry). An event whose outcome is not an exception any more, or whose
/// envelope this release cannot decode, is left out: the retry then changes nothing.
pub(crate) async fn originals(
    conn: &mut AnyConnection,
    events: &[&Event],
) -> Result<Originals, StoreError> {
    const Q: Bulk = Bulk {
        head: "SELECT event_id, envelope FROM processed_events WHERE outcome = 'exception' \
               AND event_id IN (VALUES ",
        tail: ")",
        cols: 1,
    };
    let ids: BTreeSet<EventId> = events.iter().filter_map(|e| retry_target(e)).collect();
    let mut out = Originals::default();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<Vec<Val>> = ids.iter().map(|i| vec![Val::Text(i.to_string())]).collect();
    let rows = Q.fetch(conn, &rows).await?;
    for OriginalRow { event_id, envelope } in decode_all(&rows, "processed_events")? {
        match contract::decode_event(envelope.as_bytes()) {
            Ok((_, event)) => {
                out.0.insert(event.id, (event, envelope));
            }
            Err(e) => {
                tracing::warn!(event_id = %event_id, error = %e, "retry target does not decode");
            }
        }
    }
    Ok(out)
}

impl Originals {
    /// Keeps `incoming` as a possible retry target when the batch recorded it as an
    /// exception: a retry later in the same batch (a replay applies the whole stream in
    /// few batches) finds it here, as it is not committed yet.
    pub(crate) fn note(&mut self, incoming: &Incoming, applied: &Applied) {
        if matches!(applied, Applied::Recorded(Outcome::Exception { .. })) {
            self.0
                .entry(incoming.event.id)
                .or_insert_with(|| (incoming.event.clone(), incoming.envelope.clone()));
        }
    }

    /// The events to load state for, besides the batch's own.
    pub(crate) fn events(&self) -> impl Iterator<Item = &Event> {
        self.0.values().map(|(e, _)| e)
    }

    /// After `incoming` was `applied`: the delivery of the exception's event to decide
    /// next, when `incoming` is a retry the matrix accepted. `Err(exception id)` when it
    /// was accepted but its event cannot be delivered (it did not decode).
    pub(crate) fn expansion(
        &self,
        incoming: &Incoming,
        applied: &Applied,
    ) -> Option<Result<Incoming, String>> {
        let target = retry_target(&incoming.event)?;
        let accepted = matches!(
            applied,
            Applied::Recorded(Outcome::NoOp {
                reason: NoOpReason::RetryRequested
            })
        );
        if !accepted {
            return None;
        }
        let Some((event, envelope)) = self.0.get(&target) else {
            return Some(Err(target.to_string()));
        };
        Some(Ok(Incoming {
            event: Event {
                recorded_at: incoming.event.recorded_at,
                ..event.clone()
            },
            envelope: envelope.clone(),
            operator_retry: true,
            stream_seq: None,
        }))
    }
}

/// Writes the trail entry of what a retry came to. A retry whose exception still stands
/// wrote its own (`Writes::still_open`).
pub(crate) fn record_result(writes: &mut Writes, retried: &Incoming, applied: &Applied) {
    let text = match applied {
        Applied::StillException => return,
        Applied::Recorded(Outcome::Exception { reason, .. }) => {
            format!("now {}", reason.code())
        }
        Applied::Recorded(o) => format!("resolved: retried: {}", retried_as(o)),
        Applied::Duplicate { .. } => "nothing to retry: the outcome is final".into(),
        Applied::IdempotencyKeyReused { .. } => {
            "not applied: the event id holds other content".into()
        }
        Applied::Deferred { until } => {
            format!("not applied: deferred until {} (Unix ms)", until.0)
        }
    };
    let at = retried.event.recorded_at.0;
    writes.retry_result(&retried.event.id.to_string(), &text, at);
}

/// Writes the trail entry of an accepted retry whose event could not be delivered.
pub(crate) fn record_undeliverable(writes: &mut Writes, exception_id: &str, action: &Incoming) {
    writes.retry_result(
        exception_id,
        "not retried: this release cannot decode the event",
        action.event.recorded_at.0,
    );
}
