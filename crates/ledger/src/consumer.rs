//! The consumer loop: pull a batch, decode, apply in one transaction, then acknowledge.
//!
//! The order of those steps is the durability argument (`docs/architecture.md`, "Durability"): a
//! message is acknowledged only after the transaction that records its outcome has
//! committed, so a crash anywhere before the ack means redelivery, and redelivery meets the
//! unique processed event id, so it is a recorded duplicate, never a second movement.

use std::time::Duration;

use bus::{Bus, DecisionNotice, Message};
use contract::DecodeError;
use domain::{Context, OutcomeKind, ReasonCode, Timestamp};
use futures::{FutureExt, StreamExt};
use std::sync::Arc;
use store::{Applied, Incoming, Store};
use tracing::Instrument as _;

use service::shutdown::CancellationToken;
use tokio::sync::Notify;

use crate::metrics::LedgerMetrics;
use crate::{LedgerError, LedgerSettings, now};

/// The first delay before a deferred event (its order not registered yet, within
/// `STOCKLEDGER_UNKNOWN_ORDER_HOLD`) is delivered again; each further delay doubles, up to
/// [`DEFER_RETRY_INTERVAL_MAX`] ([`defer_delay`]).
pub const DEFER_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest interval between two deliveries of a deferred event. Every delay is also
/// cut to end when the hold ends, so the delivery that finds the hold over, and records the
/// `unknown_order` exception, comes when the hold ends: the exception exists by the hold
/// plus at most this interval, whatever else the ledger is doing, as long as the ledger
/// keeps up with the stream (`stockledger_ledger_oldest_unapplied_age_seconds` under it).
/// Each delivery counts against `STOCKLEDGER_MAX_DELIVER` ([`deferral_deliveries`]).
pub const DEFER_RETRY_INTERVAL_MAX: Duration = Duration::from_secs(10);
/// The shortest delay before a deferred event is delivered again (no busy loop when the
/// hold is about to end).
pub const DEFER_RETRY_MIN: Duration = Duration::from_millis(100);
/// The delay before a message is retried after a transient failure (database down).
pub const TRANSIENT_RETRY_DELAY: Duration = Duration::from_secs(2);

/// A store failure shared by every event of the batch it failed (the error is not `Clone`,
/// and each event keeps it whole, with its source, for the log).
pub type SharedStoreError = Arc<store::StoreError>;

/// What happened to one message, for counting and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchSummary {
    pub recorded: usize,
    pub duplicates: usize,
    pub deferred: usize,
    /// Messages that can never become an event (recorded as exceptions), and events the
    /// store failed to apply for good ([`on_store_error`]): terminated.
    pub unprocessable: usize,
    /// Messages left for redelivery after a transient failure.
    pub retried: usize,
}

/// How a message leaves the consumer (one mapping to acknowledgements, in `bus`).
pub use bus::Disposition;

/// Pulls and applies batches until `stop` turns true.
pub async fn run(
    bus: Bus,
    store: Store,
    settings: LedgerSettings,
    stop: CancellationToken,
    committed: Arc<Notify>,
    metrics: LedgerMetrics,
) -> Result<(), LedgerError> {
    let consumer = bus.ledger_consumer(&settings.consumer).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(settings.fetch_batch_max)
        .messages()
        .await
        .map_err(bus::BusError::unavailable)?;
    tracing::info!(
        batch_max = settings.fetch_batch_max,
        "ledger consumer started"
    );
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => break,
            m = messages.next() => m,
        };
        let first = match first {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // Missed heartbeats during a NATS restart are not fatal: the stream resumes.
                tracing::warn!(error = %e, "pull stream error");
                continue;
            }
        };
        // Events, not messages, bound a batch: a message may carry a group of events.
        let mut events = bus::event_count(first.headers.as_ref());
        let mut batch = vec![first];
        // Take what is already there, then wait for more at most the linger: a synchronous
        // caller's decision waits for its batch, never longer.
        let linger_until = tokio::time::Instant::now() + settings.batch_linger;
        while events < settings.fetch_batch_max {
            let next = match messages.next().now_or_never() {
                Some(next) => next,
                None if settings.batch_linger.is_zero() => break,
                None => match tokio::time::timeout_at(linger_until, messages.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            match next {
                Some(Ok(m)) => {
                    events += bus::event_count(m.headers.as_ref());
                    batch.push(m);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "pull stream error"),
                None => break,
            }
        }
        let summary = process_batch(&bus, &store, &settings, &batch, &metrics).await;
        tracing::debug!(?summary, size = batch.len(), "batch done");
        if summary.recorded > 0 {
            committed.notify_one();
        }
    }
    tracing::info!("ledger consumer stopped");
    Ok(())
}

/// Applies one batch of messages and settles each: ack, nak with a delay, or term. A
/// message may carry several events (group commit, [`bus::group`]); it is acknowledged
/// only when every one of its events has its outcome committed, and delivered again
/// (its recorded events then being duplicates) when any of them must wait.
#[tracing::instrument(name = "batch", skip_all, fields(messages = batch.len()))]
pub async fn process_batch(
    bus: &Bus,
    store: &Store,
    settings: &LedgerSettings,
    batch: &[Message],
    metrics: &LedgerMetrics,
) -> BatchSummary {
    let now = now();
    let ctx = Context {
        now,
        unknown_order_hold: settings.unknown_order_hold,
        reservation_ttls: &settings.reservation_ttls,
    };
    let mut summary = BatchSummary::default();
    let mut incomings = Vec::with_capacity(batch.len());
    // For each incoming, the index of the message that carried it.
    let mut owners = Vec::with_capacity(batch.len());
    // For each incoming, the trace context it was published with.
    let mut traces: Vec<Option<bus::trace::TraceContext>> = Vec::with_capacity(batch.len());
    let mut settled: Vec<Option<Disposition>> = vec![None; batch.len()];
    // Synchronous confirmations with an answer deadline, by incoming (decision 29).
    let mut confirmations: Vec<Option<contract::Envelope>> = Vec::new();
    for (i, msg) in batch.iter().enumerate() {
        let stream_seq = msg.info().ok().map(|info| info.stream_sequence);
        // Each event with the trace context of the request that caused it (`bus::trace`).
        let parts = bus::group::split_traced(msg.headers.as_ref(), &msg.payload);
        let grouped = parts.len() > 1;
        for (n, (part, trace)) in parts.iter().enumerate() {
            // One decode: the envelope, its domain event (whose id is the envelope's, checked
            // against the identity there), and the bytes as the text the store keeps.
            match contract::decode_received(part) {
                Ok(contract::Received {
                    envelope,
                    event,
                    text,
                }) => {
                    confirmations.push(envelope.answer_by().map(|_| envelope));
                    incomings.push(Incoming {
                        event,
                        // Exactly what was received: a decoded message is UTF-8 JSON.
                        envelope: text.to_owned(),
                        operator_retry: bus::is_operator_retry(msg),
                        stream_seq,
                    });
                    owners.push(i);
                    traces.push(trace.clone());
                }
                Err(e) => {
                    let id = unprocessable_id(msg, stream_seq, grouped.then_some(n));
                    // A message that is not an event has no time of its own: JetStream's.
                    let at = msg
                        .info()
                        .map_or(now, |i| Timestamp(bus::unix_ms(i.published)));
                    let d = unprocessable(store, &id, part, &e, stream_seq, at).await;
                    match d {
                        Disposition::Terminate => summary.unprocessable += 1,
                        _ => summary.retried += 1,
                    }
                    // In a group the other events go on: this one has its exception.
                    let d = if grouped && d == Disposition::Terminate {
                        Disposition::Done
                    } else {
                        d
                    };
                    settled[i] = Some(merge(settled[i], d));
                }
            }
        }
    }
    // Confirmations reached after their answer deadline: their withdrawal goes into the
    // stream before they are decided. When one cannot be published (NATS trouble), the
    // batch's events all wait, as for a database failure, so none is decided out of order.
    if !withdraw_late(bus, store, &incomings, &confirmations, now).await {
        for &i in &owners {
            settled[i] = Some(merge(settled[i], Disposition::Later(TRANSIENT_RETRY_DELAY)));
        }
        summary.retried += incomings.len();
        metrics.retried();
        incomings.clear();
        owners.clear();
        traces.clear();
    }
    if !incomings.is_empty() {
        let results = apply(store, &incomings, &ctx, metrics).await;
        // When what was committed became visible (`crate::metrics`, the stock-visibility
        // SLI): one reading of the clock per batch.
        let committed_at = crate::now();
        let mut transient = false;
        for ((((i, incoming), result), confirmation), trace) in owners
            .into_iter()
            .zip(&incomings)
            .zip(results)
            .zip(&confirmations)
            .zip(&traces)
        {
            // One span per event: its id and the trace id of the request that caused it,
            // on every line logged while it is settled (announce, withdrawal, errors).
            let span = tracing::debug_span!(
                "event",
                event_id = %incoming.event.id,
                trace_id = trace.as_ref().map_or("", |t| t.trace_id()),
            );
            let d = async {
            match result {
                Ok(applied) => {
                    if let (Some(auth), Applied::Recorded(domain::Outcome::Moved { .. })) =
                        (confirmation, &applied)
                    {
                        withdraw_after_commit(bus, auth, now).await;
                    }
                    announce(bus, incoming, &applied).await;
                    tracing::debug!(?applied, "event settled");
                    match &applied {
                        Applied::Recorded(outcome) => {
                            summary.recorded += 1;
                            metrics.outcome(outcome.kind());
                            if let domain::Outcome::Moved { movements } = outcome
                                && !movements.is_empty()
                                && !incoming.operator_retry
                            {
                                metrics.stock_visible(
                                    committed_at.0 - incoming.event.recorded_at.0,
                                );
                            }
                        }
                        Applied::Duplicate { .. }
                        | Applied::StillException
                        | Applied::IdempotencyKeyReused { .. } => summary.duplicates += 1,
                        Applied::Deferred { .. } => summary.deferred += 1,
                    }
                    disposition(&applied, &batch[i], now)
                }
                Err(e) => {
                    let d = on_store_error(&e);
                    if d == Disposition::Terminate {
                        tracing::error!(event_id = %incoming.event.id, error = %e, source = ?std::error::Error::source(&*e), "could not apply event, and trying again cannot help; terminated (it becomes a dead letter for an operator)");
                        summary.unprocessable += 1;
                    } else {
                        tracing::warn!(event_id = %incoming.event.id, error = %e, "could not apply event; will retry");
                        summary.retried += 1;
                        transient = true;
                    }
                    d
                }
            }
            }
            .instrument(span)
            .await;
            settled[i] = Some(merge(settled[i], d));
        }
        if transient {
            // Left for redelivery: one retry of the batch (or of its failing part).
            metrics.retried();
        }
    }
    for (msg, d) in batch.iter().zip(settled) {
        bus::settle(msg, d.unwrap_or(Disposition::Done), "message").await;
    }
    summary
}

/// Publishes the withdrawal of every confirmation of the batch reached after its answer
/// deadline and not decided before (`crate::withdraw`). False when one could not be
/// published (or whether it was decided could not be read): then nothing may be decided.
async fn withdraw_late(
    bus: &Bus,
    store: &Store,
    incomings: &[Incoming],
    confirmations: &[Option<contract::Envelope>],
    now: Timestamp,
) -> bool {
    for (incoming, auth) in incomings.iter().zip(confirmations) {
        let Some(withdrawal) = auth.as_ref().and_then(|a| crate::withdraw::due(a, now)) else {
            continue;
        };
        // Decided before (a redelivery, a repeated request): its first decision stands,
        // and whether it was answered in time is not this delivery's to say.
        match store.processed(&incoming.event.id.to_string()).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(event_id = %incoming.event.id, error = %e, "cannot tell whether a late confirmation was decided; the batch waits");
                return false;
            }
        }
        if let Err(e) = crate::withdraw::publish(bus, &withdrawal).await {
            tracing::warn!(event_id = %incoming.event.id, error = %e, "the withdrawal of a late confirmation is not published yet; the batch waits");
            return false;
        }
    }
    true
}

/// A reservation committed after its answer deadline although it was reached before it
/// (a slow commit): its withdrawal once more, best effort (the ingress publishes it too).
async fn withdraw_after_commit(bus: &Bus, auth: &contract::Envelope, reached: Timestamp) {
    if auth
        .answer_by()
        .is_some_and(|by| crate::withdraw::too_late(by, reached))
    {
        // Already withdrawn before deciding.
        return;
    }
    let Some(withdrawal) = crate::withdraw::due(auth, now()) else {
        return;
    };
    if let Err(e) = crate::withdraw::publish(bus, &withdrawal).await {
        tracing::warn!(error = %e, "the withdrawal of a reservation committed after its answer deadline was not published; the ingress's, or the reservation TTL, releases it");
    }
}

/// Applies the batch in one transaction; when one event makes the batch fail for good,
/// applies the events one by one so that the others go through.
async fn apply(
    store: &Store,
    incomings: &[Incoming],
    ctx: &Context<'_>,
    metrics: &LedgerMetrics,
) -> Vec<Result<Applied, SharedStoreError>> {
    match timed_apply(store, incomings, ctx, metrics).await {
        Ok(report) => report.results.into_iter().map(Ok).collect(),
        Err(e) if incomings.len() > 1 && !e.is_transient() => {
            tracing::warn!(error = %e, "batch failed; isolating");
            metrics.retried();
            let mut one_by_one = Vec::with_capacity(incomings.len());
            for incoming in incomings {
                let r = timed_apply(store, std::slice::from_ref(incoming), ctx, metrics).await;
                one_by_one.push(r.map(|mut rep| rep.results.remove(0)).map_err(Arc::new));
            }
            one_by_one
        }
        Err(e) => {
            let e = Arc::new(e);
            incomings.iter().map(|_| Err(Arc::clone(&e))).collect()
        }
    }
}

/// One batch transaction through the store, counted: its size and duration (load to
/// commit) when it commits, and the conflict retries it took either way.
async fn timed_apply(
    store: &Store,
    incomings: &[Incoming],
    ctx: &Context<'_>,
    metrics: &LedgerMetrics,
) -> Result<store::BatchReport, store::StoreError> {
    let started = std::time::Instant::now();
    let result = store.apply_batch(incomings, ctx).await;
    match &result {
        Ok(report) => metrics.batch_committed(incomings.len(), started.elapsed(), report.attempts),
        // Every attempt conflicted (`store::CONFLICT_RETRIES_MAX` of them).
        Err(store::StoreError::Conflict) => {
            metrics.conflicted(store::CONFLICT_RETRIES_MAX.saturating_sub(1))
        }
        Err(_) => {}
    }
    result
}

/// How a message whose event the store failed to apply leaves, from
/// [`store::StoreError::is_transient`], the one classification: a transient failure
/// (database unreachable, pool timeout, a lost race) is delivered again after a delay; a
/// permanent one (a constraint violated, stored data this release cannot decode) would
/// fail on every delivery, so it is terminated at once and becomes a dead letter in the
/// exception queue (`terminated`) rather than cycling to `max_deliveries`.
pub fn on_store_error(e: &store::StoreError) -> Disposition {
    if e.is_transient() {
        Disposition::Later(TRANSIENT_RETRY_DELAY)
    } else {
        Disposition::Terminate
    }
}

/// How a message leaves when its events want different things: any "later" wins (the
/// shortest delay), then "terminate", then "done".
fn merge(a: Option<Disposition>, b: Disposition) -> Disposition {
    match (a, b) {
        (None, b) => b,
        (Some(Disposition::Later(x)), Disposition::Later(y)) => Disposition::Later(x.min(y)),
        (Some(Disposition::Later(x)), _) | (Some(_), Disposition::Later(x)) => {
            Disposition::Later(x)
        }
        (Some(Disposition::Terminate), _) | (Some(_), Disposition::Terminate) => {
            Disposition::Terminate
        }
        (Some(Disposition::Done), Disposition::Done) => Disposition::Done,
    }
}

/// The exception id of a message that cannot become an event: its stream position, and
/// its line within a group.
fn unprocessable_id(msg: &Message, stream_seq: Option<u64>, line: Option<usize>) -> String {
    let base = match stream_seq {
        Some(seq) => format!(
            "{}:{seq}",
            msg.info().map(|i| i.stream.to_owned()).unwrap_or_default()
        ),
        None => format!("subject:{}", msg.subject),
    };
    match line {
        Some(n) => format!("{base}:{n}"),
        None => base,
    }
}

fn disposition(applied: &Applied, msg: &Message, now: Timestamp) -> Disposition {
    match applied {
        Applied::Recorded(_)
        | Applied::Duplicate { .. }
        | Applied::StillException
        | Applied::IdempotencyKeyReused { .. } => Disposition::Done,
        Applied::Deferred { until } => {
            let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
            let remaining = Duration::from_millis(u64::try_from(until.0 - now.0).unwrap_or(0));
            Disposition::Later(defer_delay(delivered, remaining))
        }
    }
}

/// The delay before delivery `delivered + 1` of a deferred event whose hold ends in
/// `remaining`: [`DEFER_RETRY_FIRST`] doubling per delivery, at most
/// [`DEFER_RETRY_INTERVAL_MAX`], never past the hold's end, at least [`DEFER_RETRY_MIN`].
pub fn defer_delay(delivered: i64, remaining: Duration) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    DEFER_RETRY_FIRST
        .saturating_mul(1u32 << doublings)
        .min(DEFER_RETRY_INTERVAL_MAX)
        .min(remaining)
        .max(DEFER_RETRY_MIN)
}

/// How many deliveries an event for an order that never comes takes, the last one
/// recording its `unknown_order` exception, when the hold is `hold` ([`defer_delay`]).
/// `STOCKLEDGER_MAX_DELIVER` must exceed it, or JetStream gives up on the event first and
/// it becomes a `max_deliveries` dead letter instead ([`crate::LedgerSettings::check`]).
pub fn deferral_deliveries(hold: Duration) -> i64 {
    let mut waited = Duration::ZERO;
    let mut delivered: i64 = 1;
    while waited < hold {
        waited += defer_delay(delivered, hold - waited);
        delivered += 1;
    }
    delivered
}

/// Records a message that cannot become an event, with its raw bytes, as an exception.
async fn unprocessable(
    store: &Store,
    id: &str,
    payload: &[u8],
    e: &DecodeError,
    stream_seq: Option<u64>,
    now: Timestamp,
) -> Disposition {
    // The same sentence the exception consumer writes for the message's dead letter.
    let (reason, detail) = store::unprocessable_exception(e, id);
    match store
        .record_unprocessable(id, &reason, &detail, payload, stream_seq, now)
        .await
    {
        Ok(()) => {
            tracing::warn!(%id, reason = reason.code(), "unprocessable message recorded as an exception");
            Disposition::Terminate
        }
        // Terminated either way when the failure is permanent: the dead letter keeps the
        // raw bytes, so nothing is lost by not recording them here.
        Err(e) => {
            tracing::error!(%id, error = %e, transient = e.is_transient(), "could not record an unprocessable message");
            on_store_error(&e)
        }
    }
}

/// Tells synchronous waiters (the ingress) what was decided, and for an event decided
/// before, what its first decision was, with the digest of the content the notice is
/// about (a waiter with other content under the same id must not take it as its answer).
/// Best effort: a waiter that misses it reads the ledger at its deadline.
async fn announce(bus: &Bus, incoming: &Incoming, applied: &Applied) {
    let (outcome, reason, repeated) = match applied {
        Applied::Recorded(outcome) => (outcome.kind(), outcome.reason_code(), false),
        Applied::Duplicate { first } => (first.kind(), first.reason_code(), true),
        Applied::IdempotencyKeyReused { .. } => (
            OutcomeKind::NoOp,
            Some(ReasonCode::IdempotencyKeyReused),
            false,
        ),
        Applied::StillException | Applied::Deferred { .. } => return,
    };
    let notice = DecisionNotice {
        event_id: incoming.event.id.to_string(),
        outcome,
        reason,
        repeated,
        content_digest: Some(contract::content_digest(&incoming.event.kind).to_string()),
    };
    let Ok(payload) = serde_json::to_vec(&notice) else {
        return;
    };
    let subject = bus.namespace().decision_subject(&notice.event_id);
    if let Err(e) = bus.announce(subject, payload.into()).await {
        tracing::debug!(error = %e, "decision announcement not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which store failures are retried and which are terminated.
    #[test]
    fn transient_store_errors_are_retried_and_permanent_ones_terminated() {
        let later = Disposition::Later(TRANSIENT_RETRY_DELAY);
        assert_eq!(on_store_error(&store::StoreError::Conflict), later);
        assert_eq!(
            on_store_error(&store::StoreError::from(store::sqlx::Error::PoolTimedOut)),
            later
        );
        assert_eq!(
            on_store_error(&store::StoreError::from(store::sqlx::Error::Io(
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
            ))),
            later
        );
        assert_eq!(
            on_store_error(&store::StoreError::Corrupt("bad json".into())),
            Disposition::Terminate
        );
        assert_eq!(
            on_store_error(&store::StoreError::from(store::sqlx::Error::RowNotFound)),
            Disposition::Terminate
        );
    }

    /// A held event comes back after 1 s, 2 s, 4 s, 8 s, then every 10 s, never past the
    /// hold's end: with a 2 s hold its exception is recorded on the third delivery, 2 s
    /// after the event; with the default 10 min hold within the default 100 deliveries.
    #[test]
    fn a_held_event_is_retried_on_a_bounded_schedule_that_ends_with_the_hold() {
        let s = Duration::from_secs;
        let delays: Vec<_> = (1..=7).map(|d| defer_delay(d, s(3600))).collect();
        assert_eq!(delays, [s(1), s(2), s(4), s(8), s(10), s(10), s(10)]);
        assert_eq!(defer_delay(1_000, s(3600)), DEFER_RETRY_INTERVAL_MAX);
        assert_eq!(defer_delay(5, s(3)), s(3), "cut at the hold's end");
        assert_eq!(defer_delay(5, Duration::ZERO), DEFER_RETRY_MIN);
        assert_eq!(deferral_deliveries(Duration::ZERO), 1);
        assert_eq!(deferral_deliveries(s(2)), 3);
        assert_eq!(deferral_deliveries(s(600)), 64);
    }

    #[test]
    fn a_later_delivery_wins_over_terminating_a_message() {
        assert_eq!(
            merge(
                Some(Disposition::Terminate),
                Disposition::Later(TRANSIENT_RETRY_DELAY)
            ),
            Disposition::Later(TRANSIENT_RETRY_DELAY)
        );
        assert_eq!(
            merge(Some(Disposition::Done), Disposition::Terminate),
            Disposition::Terminate
        );
    }
}
