//! Replay: re-apply the events of a stream range to the ledger, for recovery. It reads with
//! a temporary ordered consumer (never the production durable one), applies in batches
//! through the same store path as the consumer, and counts what happened. Replaying any
//! range any number of times moves no stock twice: an event already processed is a
//! recorded duplicate. A dry run applies inside one transaction that is rolled back.
//!
//! Time in a replay is the stream's: each event is decided no earlier than its own
//! `recorded_at`, and the clock advances with the latest event time read. An event whose
//! order is not registered yet is held, as the live ledger held it, and tried again after
//! every batch, until its order appears or its hold runs out in stream time; whatever is
//! still held at the end is decided on the wall clock, or left to the live consumer when its
//! hold has not run out yet. [`rebuild`] is a replay of the whole stream that marks the
//! ledger behind while it runs.

use bus::Bus;
use bus::read::ReadFrom;
use domain::{Context, ExceptionReason, Outcome, Timestamp};
use serde::Serialize;
use store::{Applied, Incoming, Store};

use crate::{LedgerError, now, position};

/// The most events applied per transaction during a replay.
pub const REPLAY_BATCH_MAX: usize = 1024;

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Subject filter within the events stream (e.g. `stockledger.events.stripe.>`).
    pub filter: String,
    /// Where to start.
    pub from: ReadFrom,
    /// The last stream sequence to replay (inclusive); `None`: up to the end at start.
    pub to_seq: Option<u64>,
    /// Report only; change nothing.
    pub dry_run: bool,
    /// `STOCKLEDGER_UNKNOWN_ORDER_HOLD`, as the consumer uses it.
    pub unknown_order_hold: std::time::Duration,
    /// `STOCKLEDGER_RESERVATION_TTL`, as the consumer uses it: the deadlines of the
    /// reservations the replay makes.
    pub reservation_ttls: domain::ReservationTtls,
}

/// What a replay did (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    /// Events read in the range (a message may carry several, see `bus::group`).
    pub read: u64,
    /// Events that moved stock now.
    pub applied: u64,
    /// Events already processed: nothing changed.
    pub deduplicated: u64,
    /// Events recorded now as deliberate no-ops.
    pub business_noops: u64,
    /// Events recorded now as exceptions.
    pub exceptions: u64,
    /// Events for orders not registered yet, within the hold: left for the consumer.
    pub deferred: u64,
    /// Messages that are not events (recorded as exceptions unless a dry run).
    pub unprocessable: u64,
}

/// A message of the range that is not an event: recorded as an exception (unless a dry run).
pub struct Unprocessable {
    id: String,
    reason: ExceptionReason,
    detail: String,
    payload: bytes::Bytes,
    stream_seq: u64,
    /// When JetStream stored it: its recorded time.
    published_ms: i64,
}

/// What the reading task hands over: the next batch of events (each as the reader's
/// `keep` made it), the messages among them that are not events, and how many messages of
/// the range were read so far.
pub struct ReadBatch<T> {
    pub events: Vec<T>,
    pub unprocessable: Vec<Unprocessable>,
    /// Events (and undecodable parts) in this batch.
    pub read: u64,
    /// Messages of the range read so far.
    pub done: u64,
}

/// What a replay keeps of each decoded event: what the store applies.
fn incoming(received: contract::Received<'_>, msg: &bus::read::ReadMessage) -> Incoming {
    Incoming {
        event: received.event,
        // Exactly what was received: a decoded message is UTF-8 JSON.
        envelope: received.text.to_owned(),
        operator_retry: bus::has_operator_retry(msg.headers.as_ref()),
        stream_seq: Some(msg.stream_seq),
    }
}

/// Batches read ahead of the one being applied.
pub const READ_AHEAD_BATCHES: usize = 2;

/// Replays `opts` and calls `progress(done, total)` after every batch. Reading and
/// decoding the stream run in their own task, ahead of the database by
/// [`READ_AHEAD_BATCHES`], so the two overlap.
pub async fn replay(
    bus: &Bus,
    store: &Store,
    opts: &ReplayOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplaySummary, LedgerError> {
    let stream = bus.namespace().events_stream();
    let reader = bus.read(&stream, &opts.filter, opts.from).await?;
    let total = reader.total;
    let mut summary = ReplaySummary::default();
    let mut dry = if opts.dry_run {
        Some(store.dry_run().await?)
    } else {
        None
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD_BATCHES);
    let reading = tokio::spawn(read_batches(reader, stream, opts.to_seq, tx, incoming));
    // The stream's clock, and the events held for an order not registered yet.
    let mut clock = Timestamp(0);
    let mut held: Vec<Incoming> = Vec::new();
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        summary.read += batch.read;
        for bad in batch.unprocessable {
            summary.unprocessable += 1;
            if dry.is_none() {
                store
                    .record_unprocessable(
                        &bad.id,
                        &bad.reason,
                        &bad.detail,
                        &bad.payload,
                        Some(bad.stream_seq),
                        Timestamp(bad.published_ms),
                    )
                    .await?;
            }
        }
        let latest = batch.events.iter().map(|i| i.event.recorded_at).max();
        held.extend(apply(store, dry.as_mut(), batch.events, clock, opts, &mut summary).await?);
        if let Some(latest) = latest {
            clock = clock.max(latest);
        }
        if !held.is_empty() {
            held = apply(store, dry.as_mut(), held, clock, opts, &mut summary).await?;
        }
        progress(batch.done, total);
    }
    let _ = reading.await;
    // The end of the stream: what is still held is decided as the live ledger would now.
    let held = apply(
        store,
        dry.as_mut(),
        held,
        clock.max(now()),
        opts,
        &mut summary,
    )
    .await?;
    summary.deferred += held.len() as u64;
    if let Some(dry) = dry {
        dry.rollback().await?;
    }
    Ok(summary)
}

/// Reads the range, splits every message into its events (`bus::split`), decodes each
/// (`contract::decode_received`), and sends batches of at most [`REPLAY_BATCH_MAX`] events,
/// each as `keep` makes it from the decoded event and its message (the last batch possibly
/// empty, to report progress). The one reader of the events stream for replays, rebuilds
/// and `stockctl whatif`.
pub async fn read_batches<T>(
    mut reader: bus::read::Reader,
    stream: String,
    to_seq: Option<u64>,
    tx: tokio::sync::mpsc::Sender<Result<ReadBatch<T>, LedgerError>>,
    keep: fn(contract::Received<'_>, &bus::read::ReadMessage) -> T,
) {
    let fresh = |done| ReadBatch {
        events: Vec::with_capacity(REPLAY_BATCH_MAX),
        unprocessable: Vec::new(),
        read: 0,
        done,
    };
    let mut batch = fresh(0);
    while let Some(msg) = reader.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        if to_seq.is_some_and(|to| msg.stream_seq > to) {
            break;
        }
        batch.done += 1;
        let parts = bus::split(msg.headers.as_ref(), &msg.payload);
        let grouped = parts.len() > 1;
        for (n, part) in parts.iter().enumerate() {
            batch.read += 1;
            match contract::decode_received(part) {
                Ok(received) => batch.events.push(keep(received, &msg)),
                Err(e) => batch.unprocessable.push(Unprocessable {
                    id: match grouped {
                        true => format!("{stream}:{}:{n}", msg.stream_seq),
                        false => format!("{stream}:{}", msg.stream_seq),
                    },
                    reason: match e {
                        contract::DecodeError::Undecodable { .. } => ExceptionReason::Undecodable,
                        contract::DecodeError::UnknownVersion { .. } => {
                            ExceptionReason::UnknownSchemaVersion
                        }
                        contract::DecodeError::Invalid { .. } => ExceptionReason::MissingFields,
                    },
                    detail: e.to_string(),
                    payload: part.clone(),
                    stream_seq: msg.stream_seq,
                    published_ms: msg.published_ms,
                }),
            }
        }
        if batch.events.len() >= REPLAY_BATCH_MAX {
            let done = batch.done;
            if tx
                .send(Ok(std::mem::replace(&mut batch, fresh(done))))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let _ = tx.send(Ok(batch)).await;
}

/// Applies `batch` at stream time `clock` and counts what happened; returns the events
/// held for an order not registered yet (not counted: they are tried again).
async fn apply(
    store: &Store,
    dry: Option<&mut store::DryRun>,
    batch: Vec<Incoming>,
    clock: Timestamp,
    opts: &ReplayOptions,
    summary: &mut ReplaySummary,
) -> Result<Vec<Incoming>, LedgerError> {
    if batch.is_empty() {
        return Ok(batch);
    }
    let ctx = Context {
        now: clock,
        unknown_order_hold: opts.unknown_order_hold,
        reservation_ttls: &opts.reservation_ttls,
    };
    let results = match dry {
        Some(dry) => dry.apply(&batch, &ctx).await?,
        None => store.replay_batch(&batch, &ctx).await?.results,
    };
    let mut held = Vec::new();
    for (incoming, r) in batch.into_iter().zip(results) {
        match r {
            Applied::Recorded(Outcome::Moved { .. }) => summary.applied += 1,
            Applied::Recorded(Outcome::NoOp { .. }) => summary.business_noops += 1,
            Applied::Recorded(Outcome::Exception { .. }) => summary.exceptions += 1,
            // A merchant event refused for a reused idempotency key changed nothing live
            // and changes nothing replayed.
            Applied::Duplicate { .. }
            | Applied::StillException
            | Applied::IdempotencyKeyReused { .. } => summary.deduplicated += 1,
            Applied::Deferred { .. } => held.push(incoming),
        }
    }
    Ok(held)
}

/// What a rebuild did: the replay of the whole stream, and where the ledger stands after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RebuildSummary {
    #[serde(flatten)]
    pub replay: ReplaySummary,
    /// The last stream sequence applied.
    pub applied_up_to: u64,
    /// What the ledger consumer had acknowledged when the rebuild started.
    pub acknowledged: u64,
}

/// The writer name of a rebuild in `stream_positions`: one for every rebuild, so a rebuild
/// run again after a crash takes over the row the first one left marked.
pub const REBUILD_WRITER: &str = "rebuild";

/// Rebuilds the ledger in `store` from the first message of the events stream (see the
/// module documentation): marks the ledger behind, replays everything through the store
/// path recording the position with every batch, and clears the mark. The ledger process
/// resumes by itself once the position reaches what its consumer acknowledged. A dry run
/// changes nothing and marks nothing.
pub async fn rebuild(
    bus: &Bus,
    store: &Store,
    dry_run: bool,
    unknown_order_hold: std::time::Duration,
    reservation_ttls: &domain::ReservationTtls,
    progress: impl FnMut(u64, u64),
) -> Result<RebuildSummary, LedgerError> {
    bus.ensure_streams().await?;
    let standing = position::standing(bus, store).await?;
    let store = store
        .clone()
        .recording_position(standing.writer(REBUILD_WRITER));
    if !dry_run {
        store.mark_rebuilding(true, 0).await?;
    }
    let opts = ReplayOptions {
        filter: bus.namespace().events_wildcard(),
        from: ReadFrom::Start,
        to_seq: Some(standing.progress.last_seq),
        dry_run,
        unknown_order_hold,
        reservation_ttls: reservation_ttls.clone(),
    };
    let replay = replay(bus, &store, &opts, progress).await?;
    if !dry_run {
        store
            .mark_rebuilding(false, standing.progress.last_seq)
            .await?;
    }
    Ok(RebuildSummary {
        replay,
        applied_up_to: standing.progress.last_seq,
        acknowledged: standing.progress.acked,
    })
}
