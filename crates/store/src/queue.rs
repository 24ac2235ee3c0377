//! The exception queue's reads and the few writes outside the ledger: listing and showing
//! problems with their evidence and trail, recording dead letters from the exception
//! consumer, the retry of a dead letter (re-published, not an event: `RetryStart`), and
//! reconciling rows whose event got a final outcome.
//!
//! Operator actions are events (`docs/decisions.md` §27): the ledger writes their effect on
//! a row and their audit entries in its batch transaction (`persist`, `retry`), as it
//! writes a business exception and its resolution; `record_unprocessable` writes an
//! undecodable message. Everything here is keyed the same way (event id, or
//! `<stream>:<sequence>` for a message without a trustworthy event id), so a problem is one
//! row whichever path reports it first. No function here moves stock.

use domain::{OutcomeKind, ReasonCode};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::rows::{StoredReason, corrupt_row};
use crate::{Backend, Store, StoreError};

/// The exception of a message that cannot become an event, `message` being its key in the
/// queue (`<stream>:<sequence>`): its reason, and a sentence saying what is wrong and what
/// to do. The ledger (which records it before terminating the message) and the exception
/// consumer (from its dead letter) both say it this way, so one problem reads the same
/// whichever reports it first.
pub fn unprocessable_exception(
    e: &contract::DecodeError,
    message: &str,
) -> (domain::ExceptionReason, String) {
    use contract::DecodeError;
    use domain::ExceptionReason;
    match e {
        DecodeError::Undecodable { message: why } => (
            ExceptionReason::Undecodable,
            format!(
                "Message {message} is not a stockledger event ({why}); nothing was applied. Find \
                 its producer from the message's subject and headers, fix it, and resolve this \
                 exception; a retry cannot help."
            ),
        ),
        DecodeError::UnknownVersion { version } => (
            ExceptionReason::UnknownSchemaVersion,
            format!(
                "Message {message} is an event of schema version {version}, which this release \
                 does not know; nothing was applied. Upgrade every stockledger process, then \
                 retry this exception."
            ),
        ),
        DecodeError::Invalid {
            field,
            message: why,
        } => (
            ExceptionReason::MissingFields,
            format!(
                "Message {message} is an event whose field {field} is missing or invalid \
                 ({why}); nothing was applied. Fix its producer and have the event sent again \
                 (it arrives as a new event), then resolve this exception."
            ),
        ),
    }
}

/// The most rows one queue listing returns.
pub const QUEUE_LIST_MAX: i64 = 1000;
/// The most rows one reconciliation pass looks at.
pub const RECONCILE_BATCH_MAX: i64 = 500;
/// The actor the ledger and the exception consumer write in the audit trail.
pub const SYSTEM_ACTOR_LEDGER: &str = "ledger";
pub const SYSTEM_ACTOR_EXCEPTIONS: &str = "exceptions";

/// Errors of the queue workflow that callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No exception has this id.
    #[error("no exception {0}")]
    NotFound(String),
    /// The request is not acceptable (an empty actor or reason).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Store(e.into())
    }
}

/// Which rows to list. Empty fields mean "any".
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// A reason code (`oversold`, `max_deliveries`, …).
    pub reason: Option<String>,
    /// `open`, `retrying` or `resolved`.
    pub state: Option<String>,
    /// Only rows created at or before this time (Unix ms): "older than".
    pub created_before: Option<i64>,
    /// At most this many rows (capped at [`QUEUE_LIST_MAX`]).
    pub limit: Option<i64>,
}

/// One row of the exception queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueItem {
    pub id: String,
    pub event_id: String,
    pub reason: String,
    /// `open`, `retrying` or `resolved`.
    pub state: String,
    /// What happened and what to do, in a sentence for a person.
    pub detail: String,
    /// The order the problem concerns, when the event names one (registered or not).
    pub order_ref: Option<String>,
    /// The SKU the problem concerns, when it is about one line (an oversold line, an
    /// order's only line, a stock event's SKU).
    pub sku: Option<String>,
    /// The location of that line.
    pub location: Option<String>,
    /// The dispute deadline of a `chargeback_review` (Unix ms).
    pub deadline: Option<i64>,
    /// `ledger` or `dlq`.
    pub source: String,
    pub stream_seq: Option<i64>,
    pub retries: i64,
    pub retry_event_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub resolution: Option<String>,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionRow {
    pub seq: i64,
    /// `resolve`, `dismiss`, `retry`, `release`, `keep`, `stock_correct` or `retry_result`.
    pub action: String,
    pub actor: String,
    pub reason: String,
    pub result: String,
    pub detail: Value,
    pub at: i64,
}

/// One outcome the ledger recorded for the row's event (`outcome_history`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeRow {
    pub version: i64,
    #[sqlx(try_from = "String")]
    pub outcome: OutcomeKind,
    /// `None` for movements.
    #[sqlx(flatten, try_from = "StoredReason")]
    pub reason: Option<ReasonCode>,
    pub recorded_at: i64,
}

/// Everything known about one problem: the row, its evidence, the operator actions and
/// the ledger outcomes, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueDetail {
    #[serde(flatten)]
    pub item: QueueItem,
    pub evidence: Value,
    pub actions: Vec<ActionRow>,
    pub outcomes: Vec<OutcomeRow>,
}

/// A dead letter to record, built by the exception consumer.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// The event id when the payload decodes, else `<stream>:<sequence>`.
    pub id: String,
    pub reason: String,
    pub detail: String,
    /// Raw message, headers, dead-letter facts, decoded event, order, stock.
    pub evidence: Value,
    pub order_ref: Option<String>,
    /// The SKU and location the dead letter concerns, when its event names one line.
    pub sku: Option<String>,
    pub location: Option<String>,
    pub stream_seq: u64,
    /// `Some(resolution)` when the event already has a final outcome: recorded resolved.
    pub already_final: Option<String>,
}

/// Whether a dead letter made a new row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// The problem already had a row (the ledger recorded it before terminating the
    /// message, or the dead letter was delivered again): its evidence gained the
    /// dead-letter facts, nothing else changed.
    AlreadyQueued,
}

/// What an operator retry is to publish, or why there is nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryStart {
    /// Publish `payload` (the original bytes); this is retry number `attempt`.
    Go {
        item: Box<QueueItem>,
        attempt: i64,
        payload: Vec<u8>,
    },
    /// The problem is resolved already: nothing is published (recorded as such).
    AlreadyResolved { resolution: Option<String> },
}

/// The gauges of the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// `(reason, state, count)` for every row not resolved.
    pub unresolved: Vec<(String, String, i64)>,
    /// Creation time (Unix ms) of the oldest row not resolved.
    pub oldest_unresolved_at: Option<i64>,
    pub resolved: i64,
}

const ITEM_COLUMNS: &str = "id, event_id, reason, state, detail, order_ref, sku, location, deadline, source, stream_seq, retries, \
                            retry_event_id, created_at, updated_at, resolution";

/// A queue row with its evidence (JSON text).
#[derive(sqlx::FromRow)]
struct ItemEvidenceRow {
    #[sqlx(flatten)]
    item: QueueItem,
    evidence: String,
}

/// An `operator_actions` row as stored: `detail` is JSON text.
#[derive(sqlx::FromRow)]
struct ActionRecord {
    seq: i64,
    action: String,
    actor: String,
    reason: String,
    result: String,
    detail: String,
    at: i64,
}

impl From<ActionRecord> for ActionRow {
    fn from(r: ActionRecord) -> ActionRow {
        ActionRow {
            seq: r.seq,
            action: r.action,
            actor: r.actor,
            reason: r.reason,
            result: r.result,
            detail: parse_json(&r.detail),
            at: r.at,
        }
    }
}

/// A row the reconciliation may resolve, with the final outcome of its event.
#[derive(sqlx::FromRow)]
struct ReconcileRow {
    id: String,
    #[sqlx(try_from = "String")]
    outcome: OutcomeKind,
    #[sqlx(flatten, try_from = "StoredReason")]
    reason: Option<ReasonCode>,
    event_id: String,
}

const ACTION_QUERY: &str = "SELECT seq, action, actor, reason, result, detail, at FROM operator_actions WHERE target = $1 ORDER BY seq";

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn non_empty(what: &str, s: &str) -> Result<(), QueueError> {
    if s.trim().is_empty() {
        Err(QueueError::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

/// Bytes from lowercase or uppercase hex; `None` if it is not hex.
fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The original bytes of a stored message: the processed envelope (`hex:` prefixed when it
/// was not text), or the evidence's `message.raw_utf8` / `message.raw_hex`.
fn original_bytes(envelope: Option<&str>, evidence: &Value) -> Option<Vec<u8>> {
    if let Some(env) = envelope {
        return match env.strip_prefix("hex:") {
            Some(h) => from_hex(h),
            None => Some(env.as_bytes().to_vec()),
        };
    }
    let msg = evidence.get("message")?;
    if let Some(s) = msg.get("raw_utf8").and_then(Value::as_str) {
        return Some(s.as_bytes().to_vec());
    }
    msg.get("raw_hex")
        .and_then(Value::as_str)
        .and_then(from_hex)
}

/// One entry to append to the audit trail: who (`actor`), what (`action`, `result`,
/// `detail`) and why (`reason`); the time is given when it is written.
#[derive(Debug, Clone, Copy)]
pub struct NewAction<'a> {
    /// The exception id, or `stock:<event id>` for a stock correction.
    pub target: &'a str,
    /// `retry` or `retry_result` (a dead letter's retry; every other entry is the ledger's).
    pub action: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
    pub result: &'a str,
    pub detail: &'a Value,
}

/// Appends one action to the audit trail of its target, numbered after its last one.
pub(crate) async fn insert_action(
    conn: &mut AnyConnection,
    a: NewAction<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO operator_actions (target, seq, action, actor, reason, result, detail, at) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM operator_actions WHERE target = $1",
    )
    .bind(a.target).bind(a.action).bind(a.actor).bind(a.reason).bind(a.result).bind(a.detail.to_string()).bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// A transaction that takes the write lock at once on SQLite (no lock upgrade
    /// failures between two operators) and runs at the default level on PostgreSQL, where
    /// the exception row is locked with `FOR UPDATE`.
    async fn workflow_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(begin).await?)
    }

    fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// Rows of the queue, newest first.
    pub async fn queue_list(&self, filter: &QueueFilter) -> Result<Vec<QueueItem>, StoreError> {
        let limit = filter
            .limit
            .unwrap_or(QUEUE_LIST_MAX)
            .clamp(1, QUEUE_LIST_MAX);
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS} FROM exceptions WHERE ($1 IS NULL OR reason = $1) AND ($2 IS NULL OR state = $2) \
             AND ($3 IS NULL OR created_at <= $3) ORDER BY created_at DESC, id LIMIT {limit}"
        )))
        .bind(filter.reason.as_deref())
        .bind(filter.state.as_deref())
        .bind(filter.created_before)
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("exceptions"))?;
        Ok(rows)
    }

    /// One problem with its evidence and its whole trail.
    pub async fn queue_item(&self, id: &str) -> Result<Option<QueueDetail>, StoreError> {
        let row: Option<ItemEvidenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS}, evidence FROM exceptions WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(corrupt_row("exceptions"))?;
        let Some(ItemEvidenceRow { item, evidence }) = row else {
            return Ok(None);
        };
        let evidence = parse_json(&evidence);
        let actions = sqlx::query_as::<_, ActionRecord>(ACTION_QUERY)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(corrupt_row("operator_actions"))?
            .into_iter()
            .map(ActionRow::from)
            .collect();
        let event = item
            .retry_event_id
            .clone()
            .unwrap_or_else(|| item.event_id.clone());
        let outcomes = sqlx::query_as(
            "SELECT version, outcome, reason, recorded_at FROM outcome_history WHERE event_id = $1 OR event_id = $2 \
             ORDER BY recorded_at, version",
        )
        .bind(&item.event_id)
        .bind(&event)
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("outcome_history"))?;
        Ok(Some(QueueDetail {
            item,
            evidence,
            actions,
            outcomes,
        }))
    }

    /// Records a dead letter as a problem, once: a second report of the same message (the
    /// ledger's own row for a message it terminated, or a redelivered dead letter) only
    /// adds the dead-letter facts to the existing row's evidence.
    pub async fn queue_record_dead_letter(
        &self,
        dl: &NewDeadLetter,
        now: i64,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.workflow_tx().await?;
        let existing: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT evidence FROM exceptions WHERE event_id = $1{}",
            self.for_update()
        )))
        .bind(&dl.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(corrupt_row("exceptions"))?;
        let facts = dl
            .evidence
            .get("dead_letter")
            .cloned()
            .unwrap_or(Value::Null);
        let recorded = if let Some(evidence) = existing {
            let mut evidence = parse_json(&evidence);
            if let Some(map) = evidence.as_object_mut()
                && !map.contains_key("dead_letter")
            {
                map.insert("dead_letter".into(), facts);
                sqlx::query("UPDATE exceptions SET evidence = $2 WHERE event_id = $1")
                    .bind(&dl.id)
                    .bind(evidence.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            Recorded::AlreadyQueued
        } else {
            let state = if dl.already_final.is_some() {
                "resolved"
            } else {
                "open"
            };
            let seq = i64::try_from(dl.stream_seq).ok();
            sqlx::query(
                "INSERT INTO exceptions (id, event_id, reason, state, detail, evidence, order_ref, created_at, updated_at, \
                 resolution, source, stream_seq, sku, location) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $7, $8, 'dlq', $9, $10, $11)",
            )
            .bind(&dl.id).bind(&dl.reason).bind(state).bind(&dl.detail).bind(dl.evidence.to_string())
            .bind(dl.order_ref.as_deref()).bind(now).bind(dl.already_final.as_deref()).bind(seq)
            .bind(dl.sku.as_deref()).bind(dl.location.as_deref())
            .execute(&mut *tx)
            .await?;
            Recorded::New
        };
        tx.commit().await?;
        Ok(recorded)
    }

    /// Starts an operator retry: checks the row, counts the attempt, marks it `retrying`
    /// and writes the audit entry, in one transaction, and returns the original bytes to
    /// publish. A resolved row is left alone (the request is still recorded).
    pub async fn queue_begin_retry(
        &self,
        id: &str,
        actor: &str,
        why: &str,
        now: i64,
    ) -> Result<RetryStart, QueueError> {
        non_empty("actor", actor)?;
        non_empty("reason", why)?;
        let mut tx = self.workflow_tx().await?;
        let ItemEvidenceRow { item, evidence } = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS}, evidence FROM exceptions WHERE id = $1{}",
            self.for_update()
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(corrupt_row("exceptions"))?
        .ok_or_else(|| QueueError::NotFound(id.to_owned()))?;
        if item.state == "resolved" {
            insert_action(
                &mut tx,
                NewAction {
                    target: id,
                    action: "retry",
                    actor,
                    reason: why,
                    result: "noop: already resolved",
                    detail: &json!({}),
                },
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(RetryStart::AlreadyResolved {
                resolution: item.resolution,
            });
        }
        let evidence = parse_json(&evidence);
        let envelope: Option<String> =
            sqlx::query_scalar("SELECT envelope FROM processed_events WHERE event_id = $1")
                .bind(&item.event_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(corrupt_row("processed_events"))?;
        let payload = original_bytes(envelope.as_deref(), &evidence).ok_or_else(|| {
            QueueError::Invalid(format!(
                "exception {id} holds no original message to re-publish"
            ))
        })?;
        let attempt = item.retries + 1;
        sqlx::query(
            "UPDATE exceptions SET state = 'retrying', retries = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(attempt)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_action(
            &mut tx,
            NewAction {
                target: id,
                action: "retry",
                actor,
                reason: why,
                result: "publishing",
                detail: &json!({"attempt": attempt}),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(RetryStart::Go {
            item: Box::new(QueueItem {
                state: "retrying".into(),
                retries: attempt,
                ..item
            }),
            attempt,
            payload,
        })
    }

    /// Records that retry `attempt` was published (under `msg_id`; `event_id` is the id the
    /// ledger will record it under, when it differs from the row's own key).
    pub async fn queue_retry_published(
        &self,
        id: &str,
        attempt: i64,
        msg_id: &str,
        event_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.workflow_tx().await?;
        if let Some(e) = event_id {
            sqlx::query("UPDATE exceptions SET retry_event_id = $2 WHERE id = $1")
                .bind(id)
                .bind(e)
                .execute(&mut *tx)
                .await?;
        }
        let detail = json!({"attempt": attempt, "msg_id": msg_id, "event_id": event_id});
        insert_action(
            &mut tx,
            NewAction {
                target: id,
                action: "retry_result",
                actor: SYSTEM_ACTOR_EXCEPTIONS,
                reason: "retry published",
                result: "published",
                detail: &detail,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that retry `attempt` could not be published: the row is open again.
    pub async fn queue_retry_failed(
        &self,
        id: &str,
        attempt: i64,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.workflow_tx().await?;
        sqlx::query("UPDATE exceptions SET state = 'open', updated_at = $2 WHERE id = $1 AND state = 'retrying'")
            .bind(id).bind(now)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"attempt": attempt, "error": error});
        insert_action(
            &mut tx,
            NewAction {
                target: id,
                action: "retry_result",
                actor: SYSTEM_ACTOR_EXCEPTIONS,
                reason: "retry not published",
                result: "failed",
                detail: &detail,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The audit trail of `target` (an exception id or `stock:<event id>`), oldest first.
    pub async fn actions(&self, target: &str) -> Result<Vec<ActionRow>, StoreError> {
        let rows = sqlx::query_as::<_, ActionRecord>(ACTION_QUERY)
            .bind(target)
            .fetch_all(&self.pool)
            .await
            .map_err(corrupt_row("operator_actions"))?;
        Ok(rows.into_iter().map(ActionRow::from).collect())
    }

    /// Resolves rows whose event now has a final outcome although the ledger did not resolve
    /// them itself: dead letters (the ledger never saw an open exception for them) and
    /// rows retried under another event id. Returns how many were resolved.
    pub async fn queue_reconcile(&self, now: i64) -> Result<u64, StoreError> {
        let candidates: Vec<ReconcileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT e.id, p.outcome, p.reason, p.event_id FROM exceptions e JOIN processed_events p \
             ON p.event_id = COALESCE(e.retry_event_id, e.event_id) \
             WHERE e.state <> 'resolved' AND (e.source = 'dlq' OR e.retry_event_id IS NOT NULL) \
             AND (p.outcome <> 'exception' OR p.event_id <> e.event_id) LIMIT {RECONCILE_BATCH_MAX}"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("exceptions"))?;
        let mut resolved = 0;
        for ReconcileRow {
            id,
            outcome,
            reason,
            event_id,
        } in candidates
        {
            // The texts are the trail's, unchanged: the reason's name, or the outcome's
            // for a movement (which has no reason).
            let reason_name = reason.map(ReasonCode::as_str);
            let text = match outcome {
                OutcomeKind::Exception => format!(
                    "superseded by exception {event_id} ({})",
                    reason_name.unwrap_or_default()
                ),
                OutcomeKind::Moved | OutcomeKind::NoOp => {
                    format!("retried: {}", reason_name.unwrap_or(outcome.as_str()))
                }
            };
            let mut tx = self.workflow_tx().await?;
            let n = sqlx::query("UPDATE exceptions SET state = 'resolved', resolution = $2, updated_at = $3 WHERE id = $1 AND state <> 'resolved'")
                .bind(&id).bind(&text).bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                let detail = json!({"event_id": event_id});
                insert_action(
                    &mut tx,
                    NewAction {
                        target: &id,
                        action: "retry_result",
                        actor: SYSTEM_ACTOR_EXCEPTIONS,
                        reason: "event has a final outcome",
                        result: &text,
                        detail: &detail,
                    },
                    now,
                )
                .await?;
                resolved += 1;
            }
            tx.commit().await?;
        }
        Ok(resolved)
    }

    /// Counts for the gauges: unresolved rows by reason and state, the oldest one, and how
    /// many are resolved.
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        // A tuple row: decoded by position, (reason, state, n).
        let unresolved = sqlx::query_as(
            "SELECT reason, state, COUNT(*) AS n FROM exceptions WHERE state <> 'resolved' GROUP BY reason, state ORDER BY reason, state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("exceptions"))?;
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(created_at) FROM exceptions WHERE state <> 'resolved'")
                .fetch_one(&self.pool)
                .await
                .map_err(corrupt_row("exceptions"))?;
        let resolved: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM exceptions WHERE state = 'resolved'")
                .fetch_one(&self.pool)
                .await
                .map_err(corrupt_row("exceptions"))?;
        Ok(QueueStats {
            unresolved,
            oldest_unresolved_at: oldest,
            resolved,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_bytes_come_from_the_envelope_or_the_evidence() {
        assert_eq!(
            original_bytes(Some("{\"a\":1}"), &Value::Null),
            Some(b"{\"a\":1}".to_vec())
        );
        assert_eq!(
            original_bytes(Some("hex:00ff"), &Value::Null),
            Some(vec![0, 255])
        );
        let ev = json!({"message": {"raw_hex": "6869"}});
        assert_eq!(original_bytes(None, &ev), Some(b"hi".to_vec()));
        let ev = json!({"message": {"raw_utf8": "x"}});
        assert_eq!(original_bytes(None, &ev), Some(b"x".to_vec()));
        assert_eq!(original_bytes(None, &json!({})), None);
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
