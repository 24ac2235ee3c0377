//! From a domain event kind to a contract event in JetStream, for the workers: the
//! envelope (identity → event id, the provider's raw body as a digest), the contract check
//! before anything leaves the process, and the publish with `Nats-Msg-Id` = event id and
//! the ack awaited. The same steps as the ingress's own publish, without its HTTP error
//! mapping: a worker only needs to know whether to retry. As there, the body the digest
//! is of (iPint's invoice answer, a completed Stripe event) is stored in the raw stream
//! (`bus::raw`) concurrently, and `Ok` needs both acknowledgements.

use bytes::Bytes;
use contract::{ContractError, Envelope, Source};
use domain::{EventKind, Timestamp};

use crate::Ctx;

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// The contract refuses the event: permanent.
    #[error("the contract refuses the event: {0}")]
    Contract(#[source] ContractError),
    /// The envelope could not be encoded: a bug, permanent, surfaced instead of
    /// publishing an empty payload.
    #[error("{0}")]
    Encode(#[source] contract::EncodeError),
    /// NATS did not take it (not connected, refused, no ack in time): retry later.
    #[error("NATS: {0}")]
    Bus(#[source] bus::BusError),
}

/// Builds, checks and publishes `kind`; `Ok` only after JetStream's ack.
pub(crate) async fn publish(
    ctx: &Ctx,
    kind: &EventKind,
    provider: &str,
    identity: String,
    raw: Option<&[u8]>,
) -> Result<(), PublishError> {
    let at = Timestamp(crate::now_ms());
    let source = Source {
        provider: provider.to_owned(),
        identity,
    };
    let envelope = Envelope::new(kind, source, at, at, raw);
    envelope.to_domain().map_err(PublishError::Contract)?;
    let kind_name = envelope.kind_name();
    // The id `Envelope::new` derived, carried: not derived from the identity again.
    let id = envelope.event_id.to_string();
    let subject = ctx.bus.namespace().event_subject(provider, kind_name);
    // Every event leaves in this process's merchant scope; the scope is not part of the
    // event id, so it cannot make a duplicate look new.
    let envelope = envelope.with_merchant(ctx.settings.merchant.as_str());
    let payload = envelope.to_json().map_err(PublishError::Encode)?;
    let started = std::time::Instant::now();
    let store_raw = async {
        match raw {
            Some(body) if !ctx.bus.raw_retention().is_zero() => ctx
                .bus
                .publish_raw(&bus::raw::RawBody {
                    provider: provider.to_owned(),
                    event_id: id.clone(),
                    content_type: Some("application/json".to_owned()),
                    received_at_ms: at.0,
                    body: Bytes::copy_from_slice(body),
                })
                .await
                .map(drop),
            _ => Ok(()),
        }
    };
    let (event, raw_stored) = tokio::join!(
        ctx.bus
            .publish_event(subject, &id, Bytes::from(payload), None),
        store_raw
    );
    match event.and_then(|published| raw_stored.map(|()| published)) {
        Ok(published) => {
            ctx.observer.publish_acked(started.elapsed());
            ctx.observer.published(kind_name, published.duplicate);
            tracing::debug!(event_id = %id, kind = kind_name, duplicate = published.duplicate, "event published");
            Ok(())
        }
        Err(e) => {
            ctx.observer.publish_failed(kind_name);
            Err(PublishError::Bus(e))
        }
    }
}
