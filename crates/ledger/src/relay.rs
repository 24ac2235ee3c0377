//! The stock-change relay: publishes the outbox (`stock_outbox`, written in the same
//! transaction as the ledger entries) to the stock-change stream, then clears it.
//!
//! When several changes of one (SKU, location) wait, only the newest is published (it
//! carries the balance after all of them; `docs/subscribing.md`).
//!
//! Exactly once, in order, per (SKU, location): each change is published with
//! `Nats-Expected-Last-Subject-Sequence` set to the stream sequence of the change before it
//! on its subject. A change whose sequence is already on the stream (published before a
//! crash, or by another ledger process's relay) is skipped; a lost race refreshes the last
//! change and tries again. Nothing depends on JetStream's duplicate window.

use std::collections::HashMap;

use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;

use bus::Bus;
use bus::stock::{LastChange, StockPublish};
use service::shutdown::CancellationToken;
use store::Store;
use tokio::sync::Notify;

use crate::LedgerError;

/// Changes read from the outbox per round.
pub const RELAY_BATCH_MAX: i64 = 512;
/// How often the relay looks at the outbox without being woken (after a crash, or when
/// another process committed).
pub const RELAY_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Attempts at one change when other relays keep moving its subject.
const RACE_RETRIES_MAX: u32 = 8;
/// Subjects published at once: each subject's changes go one after the other (their
/// order is the promise), different subjects' changes wait for their acks together.
pub const RELAY_SUBJECTS_INFLIGHT_MAX: usize = 32;

/// The last change known on each subject, to avoid a lookup per publish.
pub type LastKnown = HashMap<String, LastChange>;

/// Relays until `stop` turns true; `wake` is notified after every committed batch.
pub async fn run(bus: Bus, store: Store, wake: Arc<Notify>, stop: CancellationToken) {
    let mut known = LastKnown::new();
    loop {
        loop {
            match relay_once(&bus, &store, &mut known, RELAY_BATCH_MAX).await {
                Ok(n) if n as i64 == RELAY_BATCH_MAX => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "stock-change relay failed; will retry");
                    known.clear();
                    break;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(RELAY_POLL_INTERVAL) => {}
        }
    }
}

/// Publishes up to `limit` waiting changes in order and clears them. Returns how many
/// changes it handled (published or found already published).
pub async fn relay_once(
    bus: &Bus,
    store: &Store,
    known: &mut LastKnown,
    limit: i64,
) -> Result<usize, LedgerError> {
    let pending = store.pending_stock_changes(limit).await?;
    let subjects: Vec<String> = pending
        .iter()
        .map(|c| bus.namespace().stock_subject(&c.sku, &c.location))
        .collect();
    // Only the newest waiting change of a subject is published: it carries the balance
    // after every transaction before it, so a relay that fell behind catches up in one
    // message per (SKU, location) instead of a backlog of stale balances. Rows come ordered
    // by (SKU, location, seq), so the newest of a subject is the last of its run.
    let newest = (0..pending.len())
        .filter(|&i| subjects.get(i + 1) != Some(&subjects[i]))
        .map(|i| {
            let subject = subjects[i].clone();
            let last = known.get(&subject).copied();
            (subject, last, pending[i].seq, pending[i].payload.clone())
        })
        .collect::<Vec<_>>();
    let published: Vec<(String, Option<LastChange>, Result<(), LedgerError>)> =
        futures::stream::iter(
            newest
                .into_iter()
                .map(|(subject, last, seq, payload)| async move {
                    let mut last = last;
                    let r = publish_one(bus, &mut last, &subject, seq, payload.as_bytes()).await;
                    (subject, last, r)
                }),
        )
        .buffer_unordered(RELAY_SUBJECTS_INFLIGHT_MAX)
        .collect()
        .await;
    let mut failed = None;
    for (subject, last, result) in published {
        match (last, result) {
            (Some(l), Ok(())) => {
                known.insert(subject, l);
            }
            (_, Err(e)) => {
                known.remove(&subject);
                failed = Some(e);
            }
            (None, Ok(())) => {}
        }
    }
    // Clear what reached the stream: every change of a subject up to its last stored one
    // (the rows the newest superseded go with it).
    let done: Vec<(String, String, u64)> = pending
        .iter()
        .zip(&subjects)
        .filter(|(c, subject)| known.get(*subject).is_some_and(|l| l.seq >= c.seq))
        .map(|(c, _)| (c.sku.clone(), c.location.clone(), c.seq))
        .collect();
    store.clear_stock_changes(&done).await?;
    match failed {
        Some(e) => Err(e),
        None => Ok(done.len()),
    }
}

/// Publishes one change after `known`, the last change believed stored on `subject`
/// (`None`: look it up), and updates it.
async fn publish_one(
    bus: &Bus,
    known: &mut Option<LastChange>,
    subject: &str,
    seq: u64,
    payload: &[u8],
) -> Result<(), LedgerError> {
    for _ in 0..RACE_RETRIES_MAX {
        let last = match *known {
            Some(last) => Some(last),
            None => bus.last_stock_change(subject).await?,
        };
        *known = last;
        if last.is_some_and(|l| l.seq >= seq) {
            return Ok(()); // Already on the stream.
        }
        let expected = last.map_or(0, |l| l.stream_seq);
        match bus
            .publish_stock_change(subject.to_owned(), seq, payload.to_vec().into(), expected)
            .await?
        {
            StockPublish::Stored(stream_seq) => {
                *known = Some(LastChange { seq, stream_seq });
                return Ok(());
            }
            StockPublish::Moved => {
                *known = None;
            }
        }
    }
    Err(LedgerError::Bus(bus::BusError::unavailable(format!(
        "{subject}: lost the race {RACE_RETRIES_MAX} times"
    ))))
}
