//! How far the ledger's durable consumer has got in the events stream, for the checkpoint
//! check (`store::position`, `docs/decisions.md` decision 25): the consumer's
//! acknowledgement floor, and which incarnation of the stream it is.

use async_nats::jetstream::context::ConsumerInfoErrorKind;

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
