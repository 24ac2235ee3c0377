//! How far the ledger's durable consumer has got in the events stream, for the checkpoint
//! check (`store::position`, `docs/decisions.md` decision 25): the consumer's
//! acknowledgement floor, and which incarnation of the stream it is.

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::DirectGetErrorKind;

use crate::{Bus, BusError, LEDGER_CONSUMER};

/// The events stream and the ledger consumer's progress in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamProgress {
    /// The events stream's name.
    pub stream: String,
    /// When JetStream created the stream (Unix ms): its incarnation.
    pub created_ms: i64,
    /// The last sequence stored in the stream.
    pub last_seq: u64,
    /// Every message up to this sequence has been acknowledged by the ledger (0: none, or
    /// no ledger consumer yet).
    pub acked: u64,
}

impl Bus {
    /// The ledger consumer's progress. The consumer is read before the stream, and both
    /// before anything the caller compares them with (see `store::Checkpoint::is_behind`).
    pub async fn ledger_progress(&self) -> Result<StreamProgress, BusError> {
        let name = self.namespace().events_stream();
        let mut stream = self
            .jetstream()
            .get_stream(&name)
            .await
            .map_err(|e| BusError::unavailable(crate::InContext::new(&name, e)))?;
        let acked = match stream.consumer_info(LEDGER_CONSUMER).await {
            Ok(info) => info.ack_floor.stream_sequence,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => 0,
            Err(e) => return Err(BusError::unavailable(crate::InContext::new(&name, e))),
        };
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::unavailable(crate::InContext::new(&name, e)))?;
        Ok(StreamProgress {
            stream: name.clone(),
            created_ms: crate::unix_ms(info.created),
            last_seq: info.state.last_sequence,
            acked,
        })
    }
}

/// What the ledger has not applied yet, read at once (the ledger's scrape-time gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Messages not yet delivered to the ledger consumer plus those delivered and not yet
    /// acknowledged (`num_pending + num_ack_pending`).
    pub pending: u64,
    /// When JetStream stored the oldest message not yet applied (Unix ms): the one after
    /// the consumer's acknowledgement floor. `None` when nothing is pending.
    pub oldest_unapplied_ms: Option<i64>,
}

impl Bus {
    /// The ledger consumer's backlog: its consumer info, then (only when something is
    /// pending) the first stored message after its acknowledgement floor, by direct get.
    /// An error when the consumer does not exist yet (the ledger has not started).
    pub async fn ledger_backlog(&self) -> Result<Backlog, BusError> {
        let name = self.namespace().events_stream();
        let in_context = |e: Box<dyn std::error::Error + Send + Sync>| {
            BusError::unavailable(crate::InContext::new(&name, e))
        };
        let stream = self
            .jetstream()
            .get_stream(&name)
            .await
            .map_err(|e| in_context(Box::new(e)))?;
        let info = stream
            .consumer_info(LEDGER_CONSUMER)
            .await
            .map_err(|e| in_context(Box::new(e)))?;
        let pending = info
            .num_pending
            .saturating_add(u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX));
        if pending == 0 {
            return Ok(Backlog {
                pending,
                oldest_unapplied_ms: None,
            });
        }
        let floor = info.ack_floor.stream_sequence;
        // The next stored message at or after floor + 1 (a gap, a message deleted, is
        // stepped over).
        let oldest = match stream
            .direct_get_next_for_subject(self.namespace().events_wildcard(), Some(floor + 1))
            .await
        {
            Ok(message) => Some(crate::unix_ms(message.time)),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => None,
            Err(e) => return Err(in_context(Box::new(e))),
        };
        Ok(Backlog {
            pending,
            oldest_unapplied_ms: oldest,
        })
    }
}
