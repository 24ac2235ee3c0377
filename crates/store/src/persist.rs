//! Writing the resolutions of a batch inside its transaction, with a fixed number of
//! multi-row statements whatever the batch size. [`Writes`] collects, in batch order, what
//! each recorded event changes (its outcome under the event id, the movements as entries,
//! the after-images of balances, orders, payment references, returns and disputes, and the
//! exception queue row, for operator actions the queue row's new state and the audit trail,
//! and for a `policy.changed` that changed the policy its row of `policy_changes`);
//! [`Writes::flush`] then writes each table once: every touched balance once, with the sequence it had when the batch was loaded (optimistic
//! concurrency), one stock-change outbox row per touched (SKU, location), every other
//! after-image once with its last value. Nothing here decides; it writes what the domain
//! decided.

use std::collections::{BTreeMap, BTreeSet};

use domain::{
    Balance, Event, EventId, EventKind, ExceptionId, ExceptionReason, NoOpReason, Outcome,
    ReasonCode, Resolution, State, StockKey, Timestamp,
};
use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::StoreError;
use crate::bulk::{Bulk, Val};

/// Everything persisted for one recorded event.
pub(crate) struct Record<'a> {
    pub event: &'a Event,
    pub envelope: &'a str,
    pub stream_seq: Option<u64>,
    /// The state the decision was made on (evidence for an exception).
    pub before: &'a State,
    pub resolution: &'a Resolution,
}

/// A short stable reason code for an outcome (the `reason` column):
/// `declined:insufficient_inventory`, `already_sold`, `oversold`, …; `None` for movements.
/// The names are [`domain::ReasonCode`]'s, the one table of them.
pub(crate) fn reason_code(outcome: &Outcome) -> Option<String> {
    outcome.reason_code().map(|c| c.as_str().to_owned())
}

/// What a retried exception came to, in its resolution text: the reason code, or for a
/// movement (which has none) the outcome's name, `moved`.
pub(crate) fn retried_as(outcome: &Outcome) -> &'static str {
    outcome
        .reason_code()
        .map_or(outcome.kind().as_str(), ReasonCode::as_str)
}

/// A no-op's reason code as text (the audit trail's result).
fn noop_code(reason: &NoOpReason) -> &'static str {
    reason.code().as_str()
}

fn conflict_if(cond: bool) -> Result<(), StoreError> {
    if cond {
        Err(StoreError::Conflict)
    } else {
        Ok(())
    }
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("sequence {seq} out of range")))
}

/// An after-image as JSON for its `body` column.
fn body<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A touched balance: its sequence when the batch was loaded, its last value, and the
/// event that last changed it (the cause of its stock-change message).
struct TouchedBalance {
    loaded_seq: u64,
    after: Balance,
    cause: EventId,
    cause_kind: &'static str,
    /// When the cause was accepted (`recorded_at`): the time of the stock change.
    at: i64,
}

/// A write to the exception queue that must happen after the bulk inserts, in batch order
/// (it may concern a row inserted by this same batch).
enum QueueStep {
    /// Mark the exception of this event resolved with this text.
    Resolve {
        event_id: String,
        resolution: String,
        at: i64,
    },
    /// An operator retry whose exception still stands: back to `open` (a dead letter's
    /// re-published retry left it `retrying`).
    StillOpen { event_id: String, at: i64 },
}

/// An exception-queue row after the batch's operator actions on it.
struct QueueRow {
    /// Resolved with this text, or left as it is.
    resolution: Option<String>,
    /// Retries to add.
    retries: i64,
    at: i64,
}

/// Who the ledger is in the audit trail (the result of a retry it applied).
const LEDGER_ACTOR: &str = crate::queue::SYSTEM_ACTOR_LEDGER;

/// What a batch writes, collected in batch order and written by [`Writes::flush`].
///
/// Every time written is the `recorded_at` of the event that caused the row (when the
/// ingress accepted it), never this process's clock, so applying the same stream again
/// writes the same rows (`docs/decisions.md`, decision 25).
#[derive(Default)]
pub(crate) struct Writes {
    /// New processed-event rows, by event id (an operator retry replacing an exception
    /// recorded earlier in the same batch replaces the pending row).
    processed: BTreeMap<String, Vec<Val>>,
    /// Rows already in the database whose exception a retry replaced.
    replaced: Vec<Vec<Val>>,
    /// `(event id, n-th outcome of that id in this batch, outcome, reason, json)`.
    history: Vec<Vec<Val>>,
    history_count: BTreeMap<String, i64>,
    entries: Vec<Vec<Val>>,
    balances: BTreeMap<StockKey, TouchedBalance>,
    orders: BTreeMap<String, Vec<Val>>,
    payment_refs: BTreeMap<(String, String), Vec<Val>>,
    returns: BTreeMap<String, Vec<Val>>,
    chargebacks: BTreeMap<String, Vec<Val>>,
    exceptions: BTreeMap<String, Vec<Val>>,
    /// Queue rows changed by operator actions, by exception id.
    queue_rows: BTreeMap<String, QueueRow>,
    /// Audit-trail entries in batch order: `(target, n-th entry of that target in this
    /// batch, action, actor, reason, result, detail, at)`.
    audit: Vec<Vec<Val>>,
    audit_count: BTreeMap<String, i64>,
    queue_steps: Vec<QueueStep>,
    /// Policy changes in batch order: `(n-th change of this batch, event id, policy,
    /// previous policy, actor, reason, at)`.
    policy_changes: Vec<Vec<Val>>,
    /// Event ids seen again (deduplicated), with how many times.
    duplicates: BTreeMap<String, i64>,
    /// False for a replay: repeated event ids are not counted.
    count_duplicates: bool,
}

impl Writes {
    pub(crate) fn new(count_duplicates: bool) -> Self {
        Writes {
            count_duplicates,
            ..Writes::default()
        }
    }

    /// True when the batch writes nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.processed.is_empty()
            && self.replaced.is_empty()
            && self.duplicates.is_empty()
            && self.queue_steps.is_empty()
            && self.audit.is_empty()
            && self.policy_changes.is_empty()
    }

    /// Counts a delivery of an event id that already has an outcome.
    pub(crate) fn duplicate(&mut self, id: EventId) {
        if !self.count_duplicates {
            return;
        }
        *self.duplicates.entry(id.to_string()).or_default() += 1;
    }

    /// An operator retry whose exception (`prior`) still stands: the row is open, and the
    /// trail says so.
    pub(crate) fn still_open(&mut self, event: &Event, prior: Option<&Outcome>) {
        self.duplicate(event.id);
        let event_id = event.id.to_string();
        let at = event.recorded_at.0;
        let code = prior.and_then(reason_code).unwrap_or_default();
        self.retry_result(&event_id, &format!("still {code}"), at);
        self.queue_steps.push(QueueStep::StillOpen { event_id, at });
    }

    /// What an operator retry of exception `target` came to, in its trail.
    pub(crate) fn retry_result(&mut self, target: &str, result: &str, at: i64) {
        self.audit(Audit {
            target,
            action: "retry_result",
            actor: LEDGER_ACTOR,
            reason: "operator retry applied",
            result,
            detail: json!({}),
            at,
        });
    }

    fn audit(&mut self, a: Audit<'_>) {
        let n = self.audit_count.entry(a.target.to_owned()).or_default();
        *n += 1;
        self.audit.push(vec![
            a.target.into(),
            Val::Int(*n),
            a.action.into(),
            a.actor.into(),
            a.reason.into(),
            a.result.into(),
            a.detail.to_string().into(),
            a.at.into(),
        ]);
    }

    /// The queue row and audit entry of an operator action (`exception.action`), and the
    /// audit entry of a stock correction that names its actor.
    fn operator(&mut self, rec: &Record<'_>) {
        let r = rec.resolution;
        let event_id = rec.event.id.to_string();
        match &rec.event.kind {
            EventKind::ExceptionAction {
                exception_id,
                action,
                actor,
                reason,
                evidence,
            } => {
                if let Some(q) = &r.queue {
                    self.queue_row(
                        &q.exception_id,
                        q.resolution.clone(),
                        q.retried,
                        rec.event.recorded_at.0,
                    );
                }
                if actor.trim().is_empty() {
                    return; // refused by the matrix; the trail needs a who.
                }
                self.audit(Audit {
                    target: exception_id.as_str(),
                    action: action.as_str(),
                    actor,
                    reason,
                    result: &action_result(&r.outcome),
                    detail: json!({"event_id": event_id, "evidence": evidence}),
                    at: rec.event.recorded_at.0,
                });
            }
            EventKind::StockCorrected {
                key,
                delta,
                reason,
                evidence,
                approved_by,
                actor: Some(actor),
            } if !actor.trim().is_empty() => {
                let result = match reason_code(&r.outcome) {
                    Some(code) => format!("{}: {code}", r.outcome.label()),
                    None => r.outcome.label().to_owned(),
                };
                self.audit(Audit {
                    target: &format!("stock:{event_id}"),
                    action: "stock_correct",
                    actor,
                    reason,
                    result: &result,
                    detail: json!({
                        "sku": key.sku.as_str(), "location": key.location.as_str(), "delta": delta,
                        "evidence": evidence, "approved_by": approved_by, "event_id": event_id,
                    }),
                    at: rec.event.recorded_at.0,
                });
            }
            _ => {}
        }
    }

    fn queue_row(&mut self, id: &ExceptionId, resolution: Option<String>, retried: bool, at: i64) {
        let row = self
            .queue_rows
            .entry(id.as_str().to_owned())
            .or_insert(QueueRow {
                resolution: None,
                retries: 0,
                at,
            });
        if resolution.is_some() {
            row.resolution = resolution;
        }
        row.retries += i64::from(retried);
        row.at = at;
    }

    /// Collects everything one recorded event writes. `rec.before` is the batch's state just
    /// before this event, so the first event of the batch to touch a balance sees the
    /// sequence loaded from the database: the one the update expects.
    pub(crate) fn record(&mut self, rec: &Record<'_>) -> Result<(), StoreError> {
        self.outcome(rec)?;
        let r = rec.resolution;
        let at = rec.event.recorded_at.0;
        if let Outcome::Moved { movements } = &r.outcome {
            for m in movements {
                self.entries.push(vec![
                    m.key.sku.as_str().into(),
                    m.key.location.as_str().into(),
                    seq_i64(m.seq)?.into(),
                    m.from.as_str().into(),
                    m.to.as_str().into(),
                    m.quantity.as_i64().into(),
                    rec.event.id.to_string().into(),
                    rec.event.kind.name().into(),
                    at.into(),
                ]);
            }
        }
        for (key, after) in &r.balances {
            let loaded_seq = rec.before.balance(key).seq;
            let touched = self.balances.entry(key.clone()).or_insert(TouchedBalance {
                loaded_seq,
                after: *after,
                cause: rec.event.id,
                cause_kind: rec.event.kind.name(),
                at,
            });
            touched.after = *after;
            touched.cause = rec.event.id;
            touched.cause_kind = rec.event.kind.name();
            touched.at = at;
        }
        self.after_images(rec)?;
        self.operator(rec);
        self.policy_change(rec);
        self.exception(rec)
    }

    /// The row of `policy_changes` for a `policy.changed` that changed the policy.
    fn policy_change(&mut self, rec: &Record<'_>) {
        let (Some(policy), EventKind::PolicyChanged { actor, reason, .. }) =
            (&rec.resolution.policy, &rec.event.kind)
        else {
            return;
        };
        let n = i64::try_from(self.policy_changes.len()).unwrap_or(i64::MAX - 1) + 1;
        self.policy_changes.push(vec![
            Val::Int(n),
            rec.event.id.to_string().into(),
            policy.to_string().into(),
            rec.before.policy.to_string().into(),
            actor.as_str().into(),
            reason.as_str().into(),
            rec.event.recorded_at.0.into(),
        ]);
    }

    fn outcome(&mut self, rec: &Record<'_>) -> Result<(), StoreError> {
        let r = rec.resolution;
        let id = rec.event.id.to_string();
        let outcome_json = body(&r.outcome)?;
        let reason = reason_code(&r.outcome);
        let order_ref = r.order_ref.as_ref().map(|o| o.as_str().to_owned());
        let stream_seq = rec.stream_seq.and_then(|s| i64::try_from(s).ok());
        let at = rec.event.recorded_at.0;
        let policy = r.policy_applied.code();
        if r.replaces_exception && !self.processed.contains_key(&id) {
            self.replaced.push(vec![
                id.clone().into(),
                r.outcome.label().into(),
                reason.clone().into(),
                outcome_json.clone().into(),
                order_ref.clone().into(),
                at.into(),
                policy.into(),
            ]);
        } else {
            let row = self.processed.entry(id.clone()).or_insert_with(|| {
                vec![
                    id.clone().into(),
                    rec.event.kind.name().into(),
                    Val::OptText(None),
                    "".into(),
                    Val::OptText(None),
                    "".into(),
                    rec.envelope.into(),
                    stream_seq.into(),
                    Val::Int(0),
                    "".into(),
                ]
            });
            if let (Some(o), Val::OptText(slot)) = (&order_ref, &mut row[2]) {
                *slot = Some(o.clone());
            }
            row[3] = r.outcome.label().into();
            row[4] = reason.clone().into();
            row[5] = outcome_json.clone().into();
            row[8] = Val::Int(at);
            row[9] = policy.into();
        }
        let n = self.history_count.entry(id.clone()).or_default();
        *n += 1;
        self.history.push(vec![
            id.into(),
            Val::Int(*n),
            r.outcome.label().into(),
            reason.into(),
            outcome_json.into(),
            at.into(),
        ]);
        Ok(())
    }

    fn after_images(&mut self, rec: &Record<'_>) -> Result<(), StoreError> {
        let r = rec.resolution;
        let at = rec.event.recorded_at.0;
        if let Some(order) = &r.order {
            let order_ref = order.spec.order_ref.as_str().to_owned();
            self.orders.insert(
                order_ref.clone(),
                vec![
                    order_ref.into(),
                    order.state.as_str().into(),
                    order.reserved_by.map(|e| e.to_string()).into(),
                    order.reserved_at.map(|t| t.0).into(),
                    order.reserved_until.map(|t| t.0).into(),
                    body(order)?.into(),
                    at.into(),
                ],
            );
        }
        for (provider, payment_ref, order_ref) in &r.payment_refs {
            let k = (
                provider.as_str().to_owned(),
                payment_ref.as_str().to_owned(),
            );
            self.payment_refs.insert(
                k.clone(),
                vec![k.0.into(), k.1.into(), order_ref.as_str().into()],
            );
        }
        if let Some(ret) = &r.return_record {
            self.returns.insert(
                ret.reference.as_str().to_owned(),
                vec![
                    ret.reference.as_str().into(),
                    ret.order_ref.as_str().into(),
                    body(ret)?.into(),
                ],
            );
        }
        if let Some(cb) = &r.chargeback {
            self.chargebacks.insert(
                cb.dispute_id.as_str().to_owned(),
                vec![
                    cb.dispute_id.as_str().into(),
                    cb.order_ref.as_str().into(),
                    body(cb)?.into(),
                ],
            );
            if let (Some(opened_by), Some(outcome)) = (cb.opened_by, cb.closed) {
                self.queue_steps.push(QueueStep::Resolve {
                    event_id: opened_by.to_string(),
                    resolution: format!("chargeback closed: {}", outcome.as_str()),
                    at,
                });
            }
        }
        Ok(())
    }

    fn exception(&mut self, rec: &Record<'_>) -> Result<(), StoreError> {
        let r = rec.resolution;
        let id = rec.event.id.to_string();
        let at = rec.event.recorded_at.0;
        match &r.outcome {
            Outcome::Exception { reason, detail } => {
                let deadline = match reason {
                    ExceptionReason::ChargebackReview { deadline } => deadline.map(|t| t.0),
                    _ => None,
                };
                let evidence = evidence(rec);
                // What the exception concerns: an unknown order's reference included.
                let order_ref = r.concerns.order_ref.as_ref().or(r.order_ref.as_ref());
                let key = r.concerns.key.as_ref();
                self.exceptions.insert(
                    id.clone(),
                    vec![
                        id.into(),
                        reason.code().into(),
                        detail.as_str().into(),
                        evidence.into(),
                        order_ref.map(|o| o.as_str().to_owned()).into(),
                        key.map(|k| k.sku.as_str().to_owned()).into(),
                        key.map(|k| k.location.as_str().to_owned()).into(),
                        deadline.into(),
                        at.into(),
                    ],
                );
            }
            outcome if r.replaces_exception => {
                let resolution = format!("retried: {}", retried_as(outcome));
                self.queue_steps.push(QueueStep::Resolve {
                    event_id: id,
                    resolution,
                    at,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes everything collected, one multi-row statement per table (cut only above
    /// [`crate::bulk::BIND_PARAMS_MAX`] parameters), then the few ordered queue steps.
    pub(crate) async fn flush(self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        self.flush_outcomes(conn).await?;
        ENTRIES.execute(conn, &self.entries).await?;
        flush_balances(conn, &self.balances).await?;
        ORDERS.execute(conn, &values(self.orders)).await?;
        PAYMENT_REFS
            .execute(conn, &values(self.payment_refs))
            .await?;
        RETURNS.execute(conn, &values(self.returns)).await?;
        CHARGEBACKS.execute(conn, &values(self.chargebacks)).await?;
        EXCEPTIONS.execute(conn, &values(self.exceptions)).await?;
        let queue_rows: Vec<Vec<Val>> = self
            .queue_rows
            .into_iter()
            .map(|(id, q)| {
                vec![
                    id.into(),
                    q.resolution.into(),
                    q.retries.into(),
                    q.at.into(),
                ]
            })
            .collect();
        QUEUE_ROWS.execute(conn, &queue_rows).await?;
        AUDIT.execute(conn, &self.audit).await?;
        POLICY_CHANGES.execute(conn, &self.policy_changes).await?;
        for step in self.queue_steps {
            match step {
                QueueStep::Resolve {
                    event_id,
                    resolution,
                    at,
                } => {
                    sqlx::query(
                        "UPDATE exceptions SET state = 'resolved', resolution = $2, updated_at = $3 \
                         WHERE event_id = $1 AND state <> 'resolved'",
                    )
                    .bind(event_id)
                    .bind(resolution)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
                QueueStep::StillOpen { event_id, at } => {
                    sqlx::query(
                        "UPDATE exceptions SET state = 'open', updated_at = $2 \
                         WHERE event_id = $1 AND state = 'retrying'",
                    )
                    .bind(event_id)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        let dups: Vec<Vec<Val>> = self
            .duplicates
            .into_iter()
            .map(|(id, n)| vec![id.into(), n.into()])
            .collect();
        DUPLICATES.execute(conn, &dups).await?;
        Ok(())
    }

    async fn flush_outcomes(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        let rows: Vec<Vec<Val>> = self.processed.values().cloned().collect();
        PROCESSED.execute(conn, &rows).await?;
        for row in &self.replaced {
            let q = sqlx::query(
                "UPDATE processed_events SET outcome = $2, reason = $3, outcome_json = $4, \
                 order_ref = COALESCE($5, order_ref), processed_at = $6, policy = $7 \
                 WHERE event_id = $1 AND outcome = 'exception'",
            );
            let done = crate::bulk::bind_all(q, row).execute(&mut *conn).await?;
            conflict_if(done.rows_affected() == 0)?;
        }
        HISTORY.execute(conn, &self.history).await?;
        Ok(())
    }
}

/// One audit-trail entry.
struct Audit<'a> {
    /// The exception id, or `stock:<event id>` for a stock correction.
    target: &'a str,
    action: &'a str,
    actor: &'a str,
    reason: &'a str,
    result: &'a str,
    detail: Value,
    at: i64,
}

/// The audit trail's word for what an operator action came to.
fn action_result(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Moved { .. } => "released".into(),
        Outcome::NoOp { reason } => match reason {
            NoOpReason::ExceptionResolved => "resolved".into(),
            NoOpReason::ExceptionDismissed => "dismissed".into(),
            NoOpReason::SaleKept => "kept".into(),
            NoOpReason::RetryRequested => "retried".into(),
            NoOpReason::ExceptionAlreadyResolved => "noop: already resolved".into(),
            other => format!("noop: {}", noop_code(other)),
        },
        Outcome::Exception { reason, .. } => format!("exception: {}", reason.code()),
    }
}

fn values<K: Ord>(map: BTreeMap<K, Vec<Val>>) -> Vec<Vec<Val>> {
    map.into_values().collect()
}

/// Every touched balance once: new ones inserted, known ones updated only where their
/// sequence is still the one loaded (else another writer got there first: conflict, the
/// batch is retried). Then one stock-change outbox row per touched (SKU, location).
async fn flush_balances(
    conn: &mut AnyConnection,
    balances: &BTreeMap<StockKey, TouchedBalance>,
) -> Result<(), StoreError> {
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    let mut outbox = Vec::new();
    for (key, t) in balances {
        let b = &t.after;
        let mut row: Vec<Val> = vec![
            key.sku.as_str().into(),
            key.location.as_str().into(),
            b.available.into(),
            b.reserved.into(),
            b.sold.into(),
            b.returned.into(),
            b.written_off.into(),
            b.external.into(),
            seq_i64(b.seq)?.into(),
        ];
        if t.loaded_seq == 0 {
            inserts.push(row);
        } else {
            row.push(seq_i64(t.loaded_seq)?.into());
            updates.push(row);
        }
        let change = contract::stock_change::StockChange::new(
            key,
            b,
            t.cause,
            t.cause_kind,
            Timestamp(t.at),
        );
        outbox.push(vec![
            key.sku.as_str().into(),
            key.location.as_str().into(),
            seq_i64(b.seq)?.into(),
            // Encoded straight to text for the TEXT column: no bytes-to-text conversion, and
            // an encoder bug fails the transaction (as `body` does) instead of storing "".
            change
                .to_json_string()
                .map_err(|e| StoreError::Corrupt(format!("{e}: {}", e.source)))?
                .into(),
            t.at.into(),
        ]);
    }
    BALANCE_INSERTS.execute(conn, &inserts).await?;
    let updated = BALANCE_UPDATES.execute(conn, &updates).await?;
    conflict_if(updated != updates.len() as u64)?;
    OUTBOX.execute(conn, &outbox).await?;
    Ok(())
}

/// The evidence an exception carries, as JSON text: the event as received, the order and
/// the stock of every (SKU, location) involved, as they were when the decision was made.
///
/// The event is the envelope's text exactly as received, spliced in rather than parsed
/// into a value and written again (which would reorder and re-escape it). It is JSON
/// whenever the ledger decoded it; anything else (a hand-made `Incoming`) is kept as a
/// JSON string, as before.
fn evidence(rec: &Record<'_>) -> String {
    let r = rec.resolution;
    let order = r
        .order_ref
        .as_ref()
        .and_then(|o| rec.before.orders.get(o))
        .or_else(|| {
            rec.event
                .kind
                .payment()
                .and_then(|p| rec.before.resolve_order(&p.order))
        });
    let mut keys: BTreeSet<&StockKey> = BTreeSet::new();
    if let Some(o) = order {
        keys.extend(o.spec.lines.keys());
    }
    keys.extend(r.balances.iter().map(|(k, _)| k));
    let balances: Vec<_> = keys
        .into_iter()
        .map(|k| json!({"sku": k.sku.as_str(), "location": k.location.as_str(), "balance": rec.before.balance(k)}))
        .collect();
    let rest = json!({
        "order": r.order_ref.as_ref().and_then(|o| rec.before.orders.get(o)),
        "stock_at_decision": balances,
        "stream_seq": rec.stream_seq,
    })
    .to_string();
    // Validated without building a value: only whether it is JSON matters here.
    let event = match serde_json::from_str::<serde::de::IgnoredAny>(rec.envelope) {
        Ok(_) => std::borrow::Cow::Borrowed(rec.envelope),
        Err(_) => std::borrow::Cow::Owned(Value::from(rec.envelope).to_string()),
    };
    // `rest` is a non-empty object, `{"order":…}`: the event goes first, as it always has.
    let rest = rest.strip_prefix('{').unwrap_or(&rest);
    format!("{{\"event\":{event},{rest}")
}

const PROCESSED: Bulk = Bulk {
    head: "INSERT INTO processed_events (event_id, kind, order_ref, outcome, reason, outcome_json, \
           envelope, stream_seq, processed_at, policy) VALUES ",
    tail: "",
    cols: 10,
};

/// The batch's policy changes, numbered after the last stored one (migration 0008).
const POLICY_CHANGES: Bulk = Bulk {
    head: "WITH v(n, event_id, policy, previous, actor, reason, recorded_at) AS (VALUES ",
    tail: ") INSERT INTO policy_changes (seq, event_id, policy, previous, actor, reason, recorded_at) \
           SELECT COALESCE((SELECT MAX(p.seq) FROM policy_changes p), 0) + v.n, v.event_id, v.policy, \
           v.previous, v.actor, v.reason, v.recorded_at FROM v",
    cols: 7,
};

/// The n-th outcome of an event in this batch gets the version after the last stored one.
const HISTORY: Bulk = Bulk {
    head: "WITH v(event_id, n, outcome, reason, outcome_json, recorded_at) AS (VALUES ",
    tail: ") INSERT INTO outcome_history (event_id, version, outcome, reason, outcome_json, recorded_at) \
           SELECT v.event_id, COALESCE((SELECT MAX(h.version) FROM outcome_history h \
           WHERE h.event_id = v.event_id), 0) + v.n, v.outcome, v.reason, v.outcome_json, v.recorded_at FROM v",
    cols: 6,
};

const ENTRIES: Bulk = Bulk {
    head: "INSERT INTO ledger_entries (sku, location, seq, from_bucket, to_bucket, quantity, event_id, \
           kind, recorded_at) VALUES ",
    tail: "",
    cols: 9,
};

const BALANCE_INSERTS: Bulk = Bulk {
    head: "INSERT INTO balances (sku, location, available, reserved, sold, returned, written_off, \
           external, seq) VALUES ",
    tail: "",
    cols: 9,
};

const BALANCE_UPDATES: Bulk = Bulk {
    head: "WITH v(sku, location, available, reserved, sold, returned, written_off, external, seq, \
           prior) AS (VALUES ",
    tail: ") UPDATE balances SET available = v.available, reserved = v.reserved, sold = v.sold, \
           returned = v.returned, written_off = v.written_off, external = v.external, seq = v.seq \
           FROM v WHERE balances.sku = v.sku AND balances.location = v.location AND balances.seq = v.prior",
    cols: 10,
};

const OUTBOX: Bulk = Bulk {
    head: "INSERT INTO stock_outbox (sku, location, seq, payload, created_at) VALUES ",
    tail: "",
    cols: 5,
};

const ORDERS: Bulk = Bulk {
    head: "INSERT INTO orders (order_ref, state, reserved_by, reserved_at, reserved_until, body, updated_at) VALUES ",
    tail: " ON CONFLICT (order_ref) DO UPDATE SET state = excluded.state, reserved_by = excluded.reserved_by, \
           reserved_at = excluded.reserved_at, reserved_until = excluded.reserved_until, body = excluded.body, \
           updated_at = excluded.updated_at",
    cols: 7,
};

const PAYMENT_REFS: Bulk = Bulk {
    head: "INSERT INTO payment_refs (provider, payment_ref, order_ref) VALUES ",
    tail: "",
    cols: 3,
};

const RETURNS: Bulk = Bulk {
    head: "INSERT INTO returns (reference, order_ref, body) VALUES ",
    tail: " ON CONFLICT (reference) DO UPDATE SET body = excluded.body",
    cols: 3,
};

const CHARGEBACKS: Bulk = Bulk {
    head: "INSERT INTO chargebacks (dispute_id, order_ref, body) VALUES ",
    tail: " ON CONFLICT (dispute_id) DO UPDATE SET body = excluded.body",
    cols: 3,
};

const EXCEPTIONS: Bulk = Bulk {
    head: "WITH v(event_id, reason, detail, evidence, order_ref, sku, location, deadline, at) AS (VALUES ",
    tail: ") INSERT INTO exceptions (id, event_id, reason, state, detail, evidence, order_ref, sku, location, \
           deadline, created_at, updated_at) SELECT event_id, event_id, reason, 'open', detail, evidence, \
           order_ref, sku, location, deadline, at, at FROM v WHERE true \
           ON CONFLICT (event_id) DO UPDATE SET reason = excluded.reason, state = 'open', \
           detail = excluded.detail, evidence = excluded.evidence, \
           order_ref = COALESCE(excluded.order_ref, exceptions.order_ref), sku = excluded.sku, \
           location = excluded.location, updated_at = excluded.updated_at",
    cols: 9,
};

/// The audit entries of the batch, numbered after each target's last stored entry.
const AUDIT: Bulk = Bulk {
    head: "WITH v(target, n, action, actor, reason, result, detail, at) AS (VALUES ",
    tail: ") INSERT INTO operator_actions (target, seq, action, actor, reason, result, detail, at) \
           SELECT v.target, COALESCE((SELECT MAX(o.seq) FROM operator_actions o \
           WHERE o.target = v.target), 0) + v.n, v.action, v.actor, v.reason, v.result, v.detail, v.at FROM v",
    cols: 8,
};

/// Queue rows after the batch's operator actions: resolved (when `resolution` is given),
/// retries counted.
const QUEUE_ROWS: Bulk = Bulk {
    head: "WITH v(id, resolution, retries, at) AS (VALUES ",
    tail: ") UPDATE exceptions SET \
           state = CASE WHEN v.resolution IS NULL THEN exceptions.state ELSE 'resolved' END, \
           resolution = COALESCE(v.resolution, exceptions.resolution), \
           retries = exceptions.retries + v.retries, updated_at = v.at \
           FROM v WHERE exceptions.id = v.id",
    cols: 4,
};

const DUPLICATES: Bulk = Bulk {
    head: "WITH v(event_id, n) AS (VALUES ",
    tail: ") UPDATE processed_events SET duplicates = duplicates + v.n FROM v \
           WHERE processed_events.event_id = v.event_id",
    cols: 2,
};
