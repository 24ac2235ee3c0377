//! The raw stream `<NS>_RAW`: every provider request body exactly as the ingress received
//! it, kept for evidence packs (`operator::evidence`) as long as
//! `STOCKLEDGER_RAW_RETENTION` says (the stream's `max_age`; zero keeps none and the stream
//! is not even created).
//!
//! One message per event: subject `<ns>.raw.<provider>.<event_id>` (one subject per event,
//! so an evidence pack finds the body with one direct get, `last_by_subject`), payload the
//! bytes as received, `Nats-Msg-Id` = the event id, and at most one message per subject
//! ([`RAW_PER_EVENT_MAX`]): a provider's retry inside JetStream's duplicate window is not
//! stored at all, and one after it replaces the earlier copy, so each event keeps exactly
//! one raw body. The bodies hold personal data (PortOne webhooks carry the buyer's e-mail,
//! phone and address): `docs/operations.md`, "Evidence packs", says who can read them.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::stream::{self, DirectGetErrorKind};
use bytes::Bytes;

use crate::{Bus, BusError, InContext, Published};

/// `STOCKLEDGER_RAW_RETENTION`'s default: 30 days, like Stripe's window for retrieving an
/// event.
pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Raw bodies kept per event: one (a later delivery under the same event id replaces it).
pub const RAW_PER_EVENT_MAX: i64 = 1;
/// The largest raw body stored (NATS's default `max_payload`); the ingress never accepts a
/// larger body (`STOCKLEDGER_MAX_BODY_BYTES` is below it).
pub const RAW_MAX_MSG_BYTES: i32 = 1024 * 1024;

/// Header: the event id the body became.
pub const EVENT_ID_HEADER: &str = "Stockledger-Event-Id";
/// Header: the provider that sent the body.
pub const PROVIDER_HEADER: &str = "Stockledger-Provider";
/// Header: the body's `Content-Type` as the provider sent it.
pub const CONTENT_TYPE_HEADER: &str = "Content-Type";
/// Header: when the ingress received the body (Unix ms).
pub const RECEIVED_AT_HEADER: &str = "Stockledger-Received-At";

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
            max_messages_per_subject: RAW_PER_EVENT_MAX,
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

    /// Stores `raw` (never grouped: one message per event) and waits for the ack, at most
    /// the publish timeout. `Ok(None)` when the retention is zero: nothing is kept.
    pub async fn publish_raw(&self, raw: &RawBody) -> Result<Option<Published>, BusError> {
        if self.config.raw_retention.is_zero() {
            return Ok(None);
        }
        let mut headers = HeaderMap::new();
        headers.insert(EVENT_ID_HEADER, raw.event_id.as_str());
        headers.insert(PROVIDER_HEADER, raw.provider.as_str());
        if let Some(ct) = &raw.content_type {
            headers.insert(CONTENT_TYPE_HEADER, ct.as_str());
        }
        headers.insert(RECEIVED_AT_HEADER, raw.received_at_ms.to_string().as_str());
        let subject = self
            .config
            .namespace
            .raw_subject(&raw.provider, &raw.event_id);
        self.publish_event(subject, &raw.event_id, raw.body.clone(), Some(headers))
            .await
            .map(Some)
    }

    /// The raw body stored for `event_id` from `provider`, by one direct get of its
    /// subject's last message; `None` when there is none (never stored, older than the
    /// retention, or no raw stream at all).
    pub async fn raw_body(
        &self,
        provider: &str,
        event_id: &str,
    ) -> Result<Option<StoredRaw>, BusError> {
        let name = self.config.namespace.raw_stream();
        let stream = match self.js.get_stream(&name).await {
            Ok(s) => s,
            Err(e) if e.to_string().contains("not found") => return Ok(None),
            Err(e) => return Err(BusError::unavailable(InContext::new(name, e))),
        };
        let subject = self.config.namespace.raw_subject(provider, event_id);
        let message = match stream.direct_get_last_for_subject(subject).await {
            Ok(m) => m,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BusError::unavailable(InContext::new(name, e))),
        };
        let header = |h: &str| message.headers.get(h).map(|v| v.as_str().to_owned());
        Ok(Some(StoredRaw {
            content_type: header(CONTENT_TYPE_HEADER),
            received_at_ms: header(RECEIVED_AT_HEADER).and_then(|v| v.parse().ok()),
            stream_seq: message.sequence,
            stored_ms: crate::unix_ms(message.time),
            body: message.payload,
        }))
    }
}
