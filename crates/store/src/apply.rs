//! Applying a batch of deliveries in one SQL transaction, with a fixed number of round
//! trips whatever the batch size:
//! 1. load everything the batch touches with set queries ([`load::state_for_batch`]);
//! 2. decide every event in batch order with the pure trigger matrix, in memory, each event
//!    seeing the effects of the ones before it ([`domain::State::step`]); a delivery under a
//!    known event id is a duplicate only if it says what the first content said
//!    ([`crate::content`]);
//! 3. write every table once with multi-row statements ([`persist::Writes::flush`]), each
//!    touched balance once, guarded by the sequence it was loaded with;
//! 4. commit.
//!
//! A conflict with another writer (a sequence number already taken, a serialization
//! failure) rolls the whole batch back and retries it from step 1; nothing is ever
//! overwritten.

use std::time::Duration;

use domain::{ConflictEvidence, Context, Decision, Delivery, Event, Outcome, State, Timestamp};
use sqlx::AnyConnection;

use crate::content::{FirstContents, Sameness};
use crate::persist::{Record, Writes};
use crate::{Backend, CONFLICT_RETRIES_MAX, Store, StoreError, load};

/// One message to apply: the decoded event and its raw envelope (kept as evidence).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event: Event,
    /// The envelope as received (JSON text), stored with the outcome.
    pub envelope: String,
    /// True when an operator asked to apply the event again (see `domain::Delivery`).
    pub operator_retry: bool,
    /// The JetStream stream sequence the message came from, when it came from one.
    pub stream_seq: Option<u64>,
}

/// What happened to one delivery of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Recorded with this outcome.
    Recorded(Outcome),
    /// The event id already had a final outcome (or an open exception), `first`, for the
    /// same content: nothing changed. (A provider's conflicting content met again is a
    /// duplicate of its `conflicting_duplicate` record, `first`.)
    Duplicate { first: Outcome },
    /// A merchant API event whose event id (its idempotency key) was recorded with
    /// different content (`crate::content`): nothing written, nothing changed; the
    /// ingress answers 409 [`domain::ReasonCode::IdempotencyKeyReused`].
    IdempotencyKeyReused { evidence: ConflictEvidence },
    /// An operator retry whose exception still stands: nothing changed.
    StillException,
    /// The order is not registered yet: nothing recorded; deliver again after `until`.
    Deferred { until: Timestamp },
}

/// The result of a batch, one entry per delivery in order.
#[derive(Debug, Clone)]
pub struct BatchReport {
    pub results: Vec<Applied>,
    /// Transactions started (1 when there was no conflict).
    pub attempts: u32,
}

impl Store {
    /// Applies `batch` in one transaction, in order, and commits. Returns after the commit
    /// is durable; only then may the caller acknowledge the messages.
    pub async fn apply_batch(
        &self,
        batch: &[Incoming],
        ctx: &Context<'_>,
    ) -> Result<BatchReport, StoreError> {
        self.retrying(batch, ctx, Delivered::Consumer).await
    }

    /// Applies `batch` as [`Store::apply_batch`] does, for a replay of the stream: events
    /// already processed are not counted as redeliveries (`processed_events.duplicates`
    /// counts deliveries of an event, not replays of the log), so replaying writes nothing
    /// for them.
    pub async fn replay_batch(
        &self,
        batch: &[Incoming],
        ctx: &Context<'_>,
    ) -> Result<BatchReport, StoreError> {
        self.retrying(batch, ctx, Delivered::Replay).await
    }

    async fn retrying(
        &self,
        batch: &[Incoming],
        ctx: &Context<'_>,
        by: Delivered,
    ) -> Result<BatchReport, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_batch(batch, ctx, by).await {
                Ok(results) => return Ok(BatchReport { results, attempts }),
                Err(e) if is_conflict(&e) && attempts < CONFLICT_RETRIES_MAX => {
                    tracing::debug!(attempts, error = %e, "ledger batch conflicted; retrying");
                    backoff(attempts).await;
                }
                Err(e) if is_conflict(&e) => return Err(StoreError::Conflict),
                Err(e) => return Err(e),
            }
        }
    }

    fn begin_statement(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }

    /// Starts a dry run: batches applied to it see each other's effects, and everything is
    /// rolled back when it is dropped. For `stockctl replay --dry-run`. It holds the write
    /// lock (SQLite) or a serializable transaction (PostgreSQL) while it lives: keep it short.
    pub async fn dry_run(&self) -> Result<DryRun, StoreError> {
        Ok(DryRun {
            tx: self.pool.begin_with(self.begin_statement()).await?,
        })
    }

    async fn try_batch(
        &self,
        batch: &[Incoming],
        ctx: &Context<'_>,
        by: Delivered,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self.pool.begin_with(self.begin_statement()).await?;
        let results = apply_in(&mut tx, batch, ctx, by).await?;
        if let (Some(writer), Some(seq)) = (
            self.position.as_deref(),
            batch.iter().filter_map(|i| i.stream_seq).max(),
        ) {
            crate::position::record(&mut tx, writer, seq).await?;
        }
        tx.commit().await?;
        Ok(results)
    }
}

/// A transaction that is never committed (see [`Store::dry_run`]).
pub struct DryRun {
    tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl DryRun {
    /// Applies `batch` as [`Store::replay_batch`] would, inside the dry run.
    pub async fn apply(
        &mut self,
        batch: &[Incoming],
        ctx: &Context<'_>,
    ) -> Result<Vec<Applied>, StoreError> {
        apply_in(&mut self.tx, batch, ctx, Delivered::Replay).await
    }

    /// Ends the dry run, undoing everything.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Who delivers a batch: the live consumer (a repeated event id is a redelivery, counted)
/// or a replay of the stream (not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    Consumer,
    Replay,
}

/// Steps 1 to 3 of the batch path on an open transaction.
async fn apply_in(
    conn: &mut AnyConnection,
    batch: &[Incoming],
    ctx: &Context<'_>,
    by: Delivered,
) -> Result<Vec<Applied>, StoreError> {
    let mut events: Vec<&Event> = batch.iter().map(|i| &i.event).collect();
    // Operator retries (`exception.action` `retry`) deliver their exception's event right
    // after the action: its state is loaded with the batch's (`crate::retry`).
    let mut originals = crate::retry::originals(conn, &events).await?;
    let loaded: Vec<Event> = originals.events().cloned().collect();
    events.extend(&loaded);
    let (mut state, envelopes) = load::state_for_batch(conn, &events).await?;
    let mut contents = FirstContents::new(envelopes);
    contents
        .load_conflict_outcomes(conn, &mut state, batch)
        .await?;
    let mut writes = Writes::new(by == Delivered::Consumer);
    let mut results = Vec::with_capacity(batch.len());
    for incoming in batch {
        let applied = decide_one(&mut state, &mut writes, &mut contents, incoming, ctx)?;
        originals.note(incoming, &applied);
        match originals.expansion(incoming, &applied) {
            Some(Ok(retried)) => {
                let outcome = decide_one(&mut state, &mut writes, &mut contents, &retried, ctx)?;
                crate::retry::record_result(&mut writes, &retried, &outcome);
            }
            Some(Err(id)) => crate::retry::record_undeliverable(&mut writes, &id, incoming),
            None => {}
        }
        results.push(applied);
    }
    if !writes.is_empty() {
        writes.flush(conn).await?;
    }
    Ok(results)
}

/// Decides one delivery against the batch's state, collects what it writes, and applies
/// the decision to the state so that the next delivery sees it.
fn decide_one(
    state: &mut State,
    writes: &mut Writes,
    contents: &mut FirstContents,
    incoming: &Incoming,
    ctx: &Context<'_>,
) -> Result<Applied, StoreError> {
    let delivery = Delivery {
        event: incoming.event.clone(),
        operator_retry: incoming.operator_retry,
    };
    let id = incoming.event.id;
    match domain::decide(state, &delivery, ctx) {
        Decision::Duplicate | Decision::StillException => {
            let still_open = incoming.operator_retry
                && state.outcomes.get(&id).is_some_and(Outcome::is_exception);
            match state.outcomes.get(&id) {
                _ if still_open => {
                    // The exception queue row goes back from `retrying` to `open`, audited.
                    writes.still_open(&incoming.event, state.outcomes.get(&id));
                    Ok(Applied::StillException)
                }
                Some(first) => match contents.compare(incoming) {
                    Sameness::Same => {
                        writes.duplicate(id);
                        Ok(Applied::Duplicate {
                            first: first.clone(),
                        })
                    }
                    Sameness::Conflict {
                        evidence,
                        merchant: true,
                    } => Ok(Applied::IdempotencyKeyReused { evidence }),
                    Sameness::Conflict {
                        evidence,
                        merchant: false,
                    } => conflicting_duplicate(state, writes, incoming, evidence),
                },
                None => Err(StoreError::Corrupt(format!(
                    "event {id} decided a duplicate without an outcome"
                ))),
            }
        }
        Decision::Defer { until } => Ok(Applied::Deferred { until }),
        Decision::Record(resolution) => {
            writes.record(&Record {
                event: &incoming.event,
                envelope: &incoming.envelope,
                stream_seq: incoming.stream_seq,
                before: state,
                resolution: &resolution,
            })?;
            state.apply(id, &resolution);
            contents.recorded(id, &incoming.envelope);
            Ok(Applied::Recorded(resolution.outcome.clone()))
        }
    }
}

/// A provider's second, different content under a known event id: recorded once as the
/// no-op `conflicting_duplicate` under its own id, with both digests (`crate::content`).
/// The first event's outcome is untouched; a redelivery of the same second content is a
/// duplicate of this record.
fn conflicting_duplicate(
    state: &mut State,
    writes: &mut Writes,
    incoming: &Incoming,
    evidence: ConflictEvidence,
) -> Result<Applied, StoreError> {
    let id = domain::conflict_id(evidence.event_id, evidence.second_digest);
    if let Some(first) = state.outcomes.get(&id) {
        writes.duplicate(id);
        return Ok(Applied::Duplicate {
            first: first.clone(),
        });
    }
    let event = Event {
        id,
        ..incoming.event.clone()
    };
    let mut resolution = domain::conflicting_duplicate(evidence);
    resolution.policy_applied = state.policy.for_provider(&event.provider);
    writes.record(&Record {
        event: &event,
        envelope: &incoming.envelope,
        stream_seq: incoming.stream_seq,
        before: state,
        resolution: &resolution,
    })?;
    state.apply(id, &resolution);
    Ok(Applied::Recorded(resolution.outcome))
}

/// True for errors that mean "another writer got there first": retry the batch. A unique
/// violation counts here (a sequence or event id taken by a concurrent batch) although
/// [`crate::is_conflict_code`], the one list of lost-race codes, leaves it out: outside a
/// batch it is a permanent failure.
pub(crate) fn is_conflict(e: &StoreError) -> bool {
    match e {
        StoreError::Conflict => true,
        StoreError::Database(sqlx::Error::Database(db)) => {
            db.is_unique_violation() || db.code().as_deref().is_some_and(crate::is_conflict_code)
        }
        _ => false,
    }
}

/// A short pause between conflicting attempts, growing with the attempt number.
async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(8)) * 5)).await;
}
