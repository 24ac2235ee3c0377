//! The raw stream `<NS>_RAW`: every provider request body exactly as the ingress received
//! it, kept for evidence packs (`operator::evidence`) as long as
//! `STOCKLEDGER_RAW_RETENTION` says (the stream's `max_age`; zero keeps none and the stream
//! is not even created). Only the ingress provisions it ([`Bus::ensure_ingress_streams`]).
//!
//! **Shape.** One record per event, [`RawRecord`]: the event id, the provider, the
//! request's `Content-Type`, when it was received, and the body (base64, so the record is
//! one line of JSON). Records are published on `<ns>.raw.<provider>` through the same group
//! commit as events (`crate::group`): alone, a record is its own message with `Nats-Msg-Id`
//! = the event id (so a provider's retry within JetStream's duplicate window is not stored
//! again); under load, records of one provider leave together, one message and one fsync
//! for many (measured: storing each body as its own message cut accepted webhooks to a
//! third, decision 46). A retry after the window, or one that meets a group, is
//! stored again; [`Bus::raw_body`] returns the first copy.
//!
//! **Finding a body.** JetStream has no lookup by message id, and one subject per event
//! cannot group, so [`Bus::raw_body`] reads the provider's subject from a little before the
//! event's `recorded_at` (the ingress stores the body while it publishes the event) and
//! stops at the record or at the end of the window ([`RAW_LOOKUP_BEFORE`],
//! [`RAW_LOOKUP_AFTER`], at most [`RAW_LOOKUP_MESSAGES_MAX`] messages).
//!
//! The bodies hold personal data (PortOne webhooks carry the buyer's e-mail, phone and
//! address): `docs/operations.md`, "Evidence packs", says who can read them.

use std::time::Duration;

use async_nats::jetstream::stream;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::read::ReadFrom;
use crate::{Bus, BusError, InContext, Published};

/// `STOCKLEDGER_RAW_RETENTION`'s default: 30 days, like Stripe's window for retrieving an
/// event.
pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The largest raw message stored (a group of records, or one large record); the ingress
/// never accepts a body near it (`STOCKLEDGER_MAX_BODY_BYTES`).
pub const RAW_MAX_MSG_BYTES: i32 = 1024 * 1024;
/// A body is looked for from this long before its event's `recorded_at` (clock skew
/// between the ingress and the NATS server).
pub const RAW_LOOKUP_BEFORE: Duration = Duration::from_secs(5);
/// … until this long after it (the publish timeout and skew, with room).
pub const RAW_LOOKUP_AFTER: Duration = Duration::from_secs(30);
/// The most raw messages one lookup reads.
pub const RAW_LOOKUP_MESSAGES_MAX: u64 = 200_000;

/// One raw body as stored: a line of JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// The event id the body became.
    pub event_id: String,
    /// Who sent it (`portone`, `stripe`, `adyen`, `ipint`).
    pub provider: String,
    /// The request's `Content-Type`, when it had one.
    pub content_type: Option<String>,
    /// When it was received (Unix ms).
    pub received_at: i64,
    /// The bytes exactly as received, in standard base64.
    pub body: String,
}

/// A raw body to store.
#[derive(Debug, Clone)]
pub struct RawBody {
    /// Who sent it (`portone`, `stripe`, `adyen`, `ipint`).
    pub provider: String,
    /// The event id it became (the message id).
    pub event_id: String,
    /// The request's `Content-Type`, when it had one.
    pub content_type: Option<String>,
    /// When it was received (Unix ms).
    pub received_at_ms: i64,
    /// The bytes exactly as received.
    pub body: Bytes,
}

/// A raw body read back from the raw stream.
#[derive(Debug, Clone)]
pub struct StoredRaw {
    /// The bytes exactly as received.
    pub body: Bytes,
    pub content_type: Option<String>,
    pub received_at_ms: Option<i64>,
    /// Where it sits in the raw stream.
    pub stream_seq: u64,
    /// When JetStream stored it (Unix ms).
    pub stored_ms: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Bus {
    /// How long raw bodies are kept; zero means they are not stored.
    pub fn raw_retention(&self) -> Duration {
        self.config.raw_retention
    }

    /// Creates the raw stream if missing, or updates it to this process's retention; does
    /// nothing when the retention is zero (an existing stream is left as it is: `nats
    /// stream rm <NS>_RAW` removes the bodies).
    pub async fn ensure_raw_stream(&self) -> Result<(), BusError> {
        let retention = self.config.raw_retention;
        if retention.is_zero() {
            return Ok(());
        }
        let ns = &self.config.namespace;
        let config = stream::Config {
            name: ns.raw_stream(),
            subjects: vec![ns.raw_wildcard()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            duplicate_window: self.config.duplicate_window.min(retention),
            max_age: retention,
            max_message_size: RAW_MAX_MSG_BYTES,
            discard: stream::DiscardPolicy::Old,
            allow_direct: true,
            ..Default::default()
        };
        self.put_stream(config, crate::provision::Existing::Update)
            .await
    }

    /// The raw stream's `max_age` as the ingress set it; `None` when there is no raw
    /// stream (raw bodies were never kept in this namespace).
    pub async fn raw_stream_retention(&self) -> Result<Option<Duration>, BusError> {
        let name = self.config.namespace.raw_stream();
        let mut stream = match self.js.get_stream(&name).await {
            Ok(s) => s,
            Err(e) if e.to_string().contains("not found") => return Ok(None),
            Err(e) => return Err(BusError::unavailable(InContext::new(name, e))),
        };
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::unavailable(InContext::new(name, e)))?;
        Ok(Some(info.config.max_age))
    }

    /// Stores `raw` through group commit and waits for the ack, at most the publish
    /// timeout. `Ok(None)` when the retention is zero: nothing is kept.
    pub async fn publish_raw(&self, raw: &RawBody) -> Result<Option<Published>, BusError> {
        if self.config.raw_retention.is_zero() {
            return Ok(None);
        }
        let record = RawRecord {
            event_id: raw.event_id.clone(),
            provider: raw.provider.clone(),
            content_type: raw.content_type.clone(),
            received_at: raw.received_at_ms,
            body: base64::engine::general_purpose::STANDARD.encode(&raw.body),
        };
        let line = serde_json::to_vec(&record).map_err(BusError::refused)?;
        let subject = self.config.namespace.raw_subject(&raw.provider);
        self.publish(subject, &raw.event_id, Bytes::from(line), None, None)
            .await
            .map(Some)
    }

    /// The raw body stored for `event_id` from `provider`, whose event was recorded at
    /// `recorded_at` (Unix ms); `None` when there is none (never stored, older than the
    /// retention, or no raw stream at all).
    pub async fn raw_body(
        &self,
        provider: &str,
        event_id: &str,
        recorded_at: i64,
    ) -> Result<Option<StoredRaw>, BusError> {
        let name = self.config.namespace.raw_stream();
        if self.raw_stream_retention().await?.is_none() {
            return Ok(None);
        }
        let subject = self.config.namespace.raw_subject(provider);
        let from = recorded_at.saturating_sub(ms(RAW_LOOKUP_BEFORE)).max(0);
        let until = recorded_at.saturating_add(ms(RAW_LOOKUP_AFTER));
        let mut reader = self
            .read(&name, &subject, ReadFrom::Time(from))
            .await
            .map_err(|e| BusError::unavailable(InContext::new(name.clone(), e)))?;
        let mut read = 0u64;
        while let Some(message) = reader.next().await {
            let message = message?;
            read += 1;
            if message.published_ms > until || read > RAW_LOOKUP_MESSAGES_MAX {
                break;
            }
            for line in crate::split(message.headers.as_ref(), &message.payload) {
                let Ok(record) = serde_json::from_slice::<RawRecord>(&line) else {
                    continue;
                };
                if record.event_id != event_id {
                    continue;
                }
                let body = base64::engine::general_purpose::STANDARD
                    .decode(record.body.as_bytes())
                    .map_err(|e| BusError::refused(InContext::new(name.clone(), e)))?;
                return Ok(Some(StoredRaw {
                    body: Bytes::from(body),
                    content_type: record.content_type,
                    received_at_ms: Some(record.received_at),
                    stream_seq: message.stream_seq,
                    stored_ms: message.published_ms,
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_record_is_one_line_whatever_the_body() {
        let record = RawRecord {
            event_id: "e".into(),
            provider: "portone".into(),
            content_type: Some("application/json".into()),
            received_at: 1,
            body: base64::engine::general_purpose::STANDARD.encode(b"{\n\"a\":1}\r\n"),
        };
        let line = serde_json::to_vec(&record).unwrap();
        assert!(!line.contains(&b'\n'));
        assert_eq!(serde_json::from_slice::<RawRecord>(&line).unwrap(), record);
    }
}
