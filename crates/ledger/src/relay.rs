//! The stock-change relay: publishes the outbox (`stock_outbox`, written in the same
//! transaction as the ledger entries) to the stock-change stream, then clears it.
//!
//! Exactly once, in order, per (SKU, location): each change is published with
//! `Nats-Expected-Last-Subject-Sequence` set to the stream sequence of the change before it
//! on its subject. A change whose sequence is already on the stream (published before a
//! crash, or by another ledger process's relay) is skipped; a lost race refreshes the last
//! change and tries again. Nothing depends on JetStream's duplicate window.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bus::Bus;
use bus::stock::{LastChange, StockPublish};
use store::Store;
use tokio::sync::{Notify, watch};

use crate::LedgerError;

/// Changes read from the outbox per round.
pub const RELAY_BATCH_MAX: i64 = 512;
/// How often the relay looks at the outbox without being woken (after a crash, or when
/// another process committed).
pub const RELAY_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Attempts at one change when other relays keep moving its subject.
const RACE_RETRIES_MAX: u32 = 8;

/// The last change known on each subject, to avoid a lookup per publish.
pub type LastKnown = HashMap<String, LastChange>;

/// Relays until `stop` turns true; `wake` is notified after every committed batch.
pub async fn run(bus: Bus, store: Store, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
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
            _ = stop.changed() => break,
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
    let mut done = Vec::with_capacity(pending.len());
    for change in &pending {
        let subject = bus.namespace().stock_subject(&change.sku, &change.location);
        publish_one(bus, known, &subject, change.seq, change.payload.as_bytes()).await?;
        done.push((change.sku.clone(), change.location.clone(), change.seq));
    }
    store.clear_stock_changes(&done).await?;
    Ok(done.len())
}

async fn publish_one(
    bus: &Bus,
    known: &mut LastKnown,
    subject: &str,
    seq: u64,
    payload: &[u8],
) -> Result<(), LedgerError> {
    for _ in 0..RACE_RETRIES_MAX {
        let last = match known.get(subject) {
            Some(last) => Some(*last),
            None => bus.last_stock_change(subject).await?,
        };
        if last.is_some_and(|l| l.seq >= seq) {
            return Ok(()); // Already on the stream.
        }
        let expected = last.map_or(0, |l| l.stream_seq);
        match bus
            .publish_stock_change(subject.to_owned(), seq, payload.to_vec().into(), expected)
            .await?
        {
            StockPublish::Stored(stream_seq) => {
                known.insert(subject.to_owned(), LastChange { seq, stream_seq });
                return Ok(());
            }
            StockPublish::Moved => {
                known.remove(subject);
            }
        }
    }
    Err(LedgerError::Bus(bus::BusError::Unavailable(format!(
        "{subject}: lost the race {RACE_RETRIES_MAX} times"
    ))))
}
