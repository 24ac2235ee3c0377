//! From a domain event kind to a contract event in JetStream: the envelope (identity →
//! event id, the provider's raw body as a digest), the full contract check before anything
//! leaves the process, and the publish with `Nats-Msg-Id` = event id and the ack awaited.
//!
//! A provider's body travels beside its event: [`publish`] stores it in the raw stream
//! (`bus::raw`, `STOCKLEDGER_RAW_RETENTION`) concurrently with the event's publish, and
//! succeeds only when both were acknowledged, so an accepted event's evidence is never
//! "unknown" (decision 46).
//!
//! The ingress never writes the ledger: this is its only write. A request is answered
//! "accepted" only after [`publish`] returned `Ok`.

use bytes::Bytes;
use contract::{ContractError, Envelope, Source};
use domain::{Event, EventId, EventKind};

use crate::error::ApiError;
use crate::{AppState, RawBody};

/// Who the merchant API's events come from (their identities are idempotency keys:
/// one key, one content, `docs/decisions.md` §26).
pub const MERCHANT: &str = contract::MERCHANT_API;
/// Who PortOne's events come from.
pub const PORTONE: &str = "portone";
/// Who Stripe's events come from.
pub const STRIPE: &str = "stripe";
/// Who Adyen's events come from.
pub const ADYEN: &str = "adyen";
/// Who iPint's events come from.
pub const IPINT: &str = "ipint";

/// The clock (`service::now`): the `recorded_at` of events born here.
pub use service::now;

/// An event ready to publish: its envelope, already checked against the contract, and
/// what that one check produced: the domain event (whose content a synchronous caller
/// compares) and its id (the `Nats-Msg-Id`), both derived once and carried.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub envelope: Envelope,
    pub event_id: EventId,
    pub event: Event,
    /// The provider's request body as received (its digest is the envelope's
    /// `raw_digest`), stored in the raw stream with the event; `None` for events born here.
    pub raw: Option<RawBody>,
}

impl Outgoing {
    /// Checks `envelope` against the contract, once, and keeps the domain event it says.
    pub fn checked(envelope: Envelope) -> Result<Outgoing, ContractError> {
        let event = envelope.to_domain()?;
        Ok(Outgoing {
            event_id: event.id,
            envelope,
            event,
            raw: None,
        })
    }

    /// Builds and checks the envelope of `kind` from `provider` with dedupe key
    /// `identity`. A value the contract refuses is a 400 naming its field; nothing is
    /// published for it.
    pub fn new(
        kind: &EventKind,
        provider: &str,
        identity: String,
        raw: Option<&RawBody>,
    ) -> Result<Outgoing, ApiError> {
        let at = now();
        let source = Source {
            provider: provider.to_owned(),
            identity,
        };
        // The event id is derived here, once, from the identity; everything after carries it.
        let envelope = Envelope::new(kind, source, at, at, raw.map(|r| &r.0[..]));
        let checked = Outgoing::checked(envelope).map_err(|e| {
            // The contract's paths start at the envelope (`payload.lines[0].sku`); the
            // client knows its own field names, which are the payload's.
            let field = e
                .field
                .strip_prefix("payload.")
                .unwrap_or(&e.field)
                .to_owned();
            ApiError::malformed(field, e.message)
        })?;
        Ok(Outgoing {
            raw: raw.cloned(),
            ..checked
        })
    }
}

/// Why a publish did not succeed. Either way the caller answers "nothing accepted" (503);
/// the difference matters only to a caller that must compensate for an event that may
/// have landed after all (PortOne's inventory confirmation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Nothing left this process (NATS not connected), or NATS refused the message.
    #[error("{0}")]
    NotSent(ApiError),
    /// Sent, but not acknowledged in time: the event may or may not be in the stream.
    #[error("{0}")]
    Unconfirmed(ApiError),
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> ApiError {
        match e {
            PublishError::NotSent(e) | PublishError::Unconfirmed(e) => e,
        }
    }
}

/// Publishes `out` and waits for JetStream's ack. An error means nothing was accepted:
/// NATS is not connected (checked first, so that a message is never buffered by the
/// client and sent after a reconnect, long after the caller heard "503"), NATS refused it,
/// or the ack did not come within `STOCKLEDGER_PUBLISH_TIMEOUT`.
#[tracing::instrument(
    name = "publish",
    skip_all,
    fields(event_id = %out.event_id, kind = out.envelope.kind_name())
)]
pub async fn publish(state: &AppState, out: &Outgoing) -> Result<bus::Published, PublishError> {
    let kind = out.envelope.kind_name();
    let bus = &state.bus;
    if !bus.is_connected() {
        state.metrics.publish_failed(kind);
        return Err(PublishError::NotSent(ApiError::Unavailable(
            "NATS is not connected; nothing was accepted, retry later".into(),
        )));
    }
    let subject = bus
        .namespace()
        .event_subject(&out.envelope.source.provider, kind);
    let id = out.event_id.to_string();
    // Every event leaves in this ingress's merchant scope; the scope is not part of the
    // event id, so it cannot make a duplicate look new. Encoded once, in that scope,
    // without copying the envelope.
    let payload = match out.envelope.to_json_in(state.settings.merchant.as_str()) {
        Ok(payload) => payload,
        Err(e) => {
            // A bug in the encoder: nothing is published (never an empty payload).
            state.metrics.publish_failed(kind);
            tracing::error!(event_id = %id, kind, error = %e, source = ?std::error::Error::source(&e), "event could not be encoded; nothing accepted");
            return Err(PublishError::NotSent(ApiError::Internal(e.to_string())));
        }
    };
    let started = std::time::Instant::now();
    // The raw body and the event leave together; neither waits for the other.
    let trace = crate::trace::current();
    let (event, raw) = tokio::join!(
        bus.publish_event_traced(subject, &id, Bytes::from(payload), trace.as_ref()),
        store_raw(state, out),
    );
    let published = match event {
        Ok(published) => published,
        Err(e) => {
            state.metrics.publish_failed(kind);
            tracing::warn!(event_id = %id, kind, error = %e, "publish failed; nothing accepted");
            return Err(match e {
                bus::BusError::Unavailable(_) => PublishError::Unconfirmed(e.into()),
                bus::BusError::Refused(_) => PublishError::NotSent(e.into()),
            });
        }
    };
    if let Err(e) = raw {
        // The event is in the stream but its evidence is not: answered like an event that
        // was not acknowledged (503, the provider retries; the retry's event is a recorded
        // duplicate and its body is stored then). A caller that compensates treats it as
        // "may have landed", which it has.
        state.metrics.publish_failed(kind);
        tracing::warn!(event_id = %id, kind, error = %e, "raw body not stored; answered as not accepted");
        return Err(PublishError::Unconfirmed(e.into()));
    }
    state.metrics.publish_acked(started.elapsed());
    state.metrics.published(kind, published.duplicate);
    tracing::debug!(event_id = %id, kind, duplicate = published.duplicate, seq = published.stream_seq, "event published");
    Ok(published)
}

/// Stores `out`'s raw body in the raw stream, if it has one and raw bodies are kept
/// (`STOCKLEDGER_RAW_RETENTION` above zero); `Ok` once JetStream acknowledged it.
async fn store_raw(state: &AppState, out: &Outgoing) -> Result<(), bus::BusError> {
    let Some(raw) = &out.raw else {
        return Ok(());
    };
    if state.bus.raw_retention().is_zero() {
        return Ok(());
    }
    let body = bus::raw::RawBody {
        provider: out.envelope.source.provider.clone(),
        event_id: out.event_id.to_string(),
        content_type: raw.1.clone(),
        received_at_ms: out.envelope.recorded_at.0,
        body: raw.0.clone(),
    };
    state.bus.publish_raw(&body).await.map(drop)
}
