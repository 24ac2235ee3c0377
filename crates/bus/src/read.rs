//! Reading a stream from a point, without a durable consumer: replays (`stockctl replay`),
//! downstream snapshots (last message per subject) and tests. An ordered ephemeral
//! consumer delivers in stream order and is recreated by the client on a gap; a [`Reader`]
//! stops by itself after the messages that were pending when it was created, so a read of
//! a live stream is bounded.

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures::StreamExt;

use crate::{Bus, BusError};

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The first message.
    Start,
    /// The first message at or after this stream sequence.
    Sequence(u64),
    /// The first message stored at or after this time (Unix milliseconds).
    Time(i64),
    /// Only the last message of every subject (a snapshot of current state).
    LastPerSubject,
}

/// One message read from a stream.
#[derive(Debug, Clone)]
pub struct ReadMessage {
    pub subject: String,
    pub stream_seq: u64,
    pub headers: Option<async_nats::HeaderMap>,
    pub payload: bytes::Bytes,
    /// When JetStream stored the message (Unix ms): the time of a message that is not an
    /// event and so carries none of its own.
    pub published_ms: i64,
}

/// A bounded read of a stream.
pub struct Reader {
    messages: async_nats::jetstream::consumer::pull::Ordered,
    /// Messages still to deliver before the read ends.
    pub remaining: u64,
    /// Messages the read will deliver in all.
    pub total: u64,
}

impl Reader {
    /// The next message, or `None` once every message pending at creation was delivered.
    pub async fn next(&mut self) -> Option<Result<ReadMessage, BusError>> {
        if self.remaining == 0 {
            return None;
        }
        let msg = match self.messages.next().await? {
            Ok(m) => m,
            Err(e) => return Some(Err(BusError::unavailable(e))),
        };
        self.remaining -= 1;
        let info = msg.info().ok();
        let stream_seq = info.as_ref().map_or(0, |i| i.stream_sequence);
        let published_ms = info.as_ref().map_or(0, |i| crate::unix_ms(i.published));
        Some(Ok(ReadMessage {
            published_ms,
            subject: msg.subject.to_string(),
            stream_seq,
            headers: msg.headers.clone(),
            payload: msg.payload.clone(),
        }))
    }
}

impl Bus {
    /// The last sequence of a stream (0 when empty).
    pub async fn stream_last_seq(&self, stream: &str) -> Result<u64, BusError> {
        let mut s = self
            .jetstream()
            .get_stream(stream)
            .await
            .map_err(BusError::unavailable)?;
        let info = s.info().await.map_err(BusError::unavailable)?;
        Ok(info.state.last_sequence)
    }

    /// Reads `stream` (only subjects matching `filter`) from `from`, up to the messages
    /// pending now.
    pub async fn read(
        &self,
        stream: &str,
        filter: &str,
        from: ReadFrom,
    ) -> Result<Reader, BusError> {
        let s = self
            .jetstream()
            .get_stream(stream)
            .await
            .map_err(BusError::unavailable)?;
        let deliver_policy = match from {
            ReadFrom::Start => DeliverPolicy::All,
            ReadFrom::Sequence(start_sequence) => DeliverPolicy::ByStartSequence {
                start_sequence: start_sequence.max(1),
            },
            ReadFrom::Time(ms) => {
                let start_time =
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                        .map_err(BusError::refused)?;
                DeliverPolicy::ByStartTime { start_time }
            }
            ReadFrom::LastPerSubject => DeliverPolicy::LastPerSubject,
        };
        let mut c = s
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter.to_owned(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(BusError::unavailable)?;
        let total = c.info().await.map_err(BusError::unavailable)?.num_pending;
        let messages = c.messages().await.map_err(BusError::unavailable)?;
        Ok(Reader {
            messages,
            remaining: total,
            total,
        })
    }
}
