//! `POST /webhooks/ipint`: iPint's invoice callback (`docs/providers.md`: iPint).
//!
//! The callback is unsigned, so it is never trusted: it only names an invoice to verify.
//! The handler checks that the body names one (`invoice_id`, a valid payment reference),
//! stores a small trigger in the callbacks work-queue stream (`Nats-Msg-Id`
//! `ipint:callback:{invoice_id}`, so iPint's retries and other claims for the same invoice
//! collapse), and answers `200` with an empty body once JetStream acknowledged it. Each
//! source address is rate-limited (429 beyond, `crate::ratelimit`), and the stream is
//! bounded: when it is full the callback is refused with 503 and iPint retries it later
//! (decision 30). A callback whose invoice a registered order holds (one primary-key read)
//! is stored on `<ns>.callbacks.ipint`, any other on `<ns>.callbacks.ipint-unmatched`: two
//! lanes, so made-up invoices never delay a registered one. It never calls iPint: the
//! `verifier` crate's iPint worker does that off the request path, so a slow or failing iPint API
//! never blocks this answer and never loses a callback. A malformed body is a 400 and
//! nothing is stored; NATS unavailable is a 503 (iPint retries).

use axum::extract::State;
use axum::http::StatusCode;
use bus::callbacks::{IPINT_LANE, IPINT_UNMATCHED_LANE, Trigger};
use bytes::Bytes;
use domain::PaymentRef;
use providers::ipint;

use crate::error::ApiError;
use crate::publish::{self, IPINT, PublishError};
use crate::{AppState, RawBody};

/// The longest the endpoint waits for the database to say which lane a callback takes; after
/// it (or on a database error) the callback takes the unmatched lane.
pub const LANE_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// `POST /webhooks/ipint`.
#[utoipa::path(
    post, path = "/webhooks/ipint", tag = "providers",
    description = "iPint invoice callbacks. iPint does not sign them: the invoice is looked up with iPint's API before anything moves.",
    request_body = crate::wire::providers::IpintCallback,
    responses(
        (status = 200, description = "Durably accepted; verified against iPint's API afterwards."),
        (status = 429, description = "Over the per-source rate limit (`STOCKLEDGER_IPINT_CALLBACKS_LIMIT`).", body = crate::wire::error::ErrorBody),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    body: RawBody,
) -> Result<StatusCode, ApiError> {
    let callback = ipint::parse_callback(&body.0)?;
    PaymentRef::parse(callback.invoice_id.as_str())
        .map_err(|e| ApiError::malformed("invoice_id", e.to_string()))?;
    let trigger = Trigger {
        invoice_id: callback.invoice_id,
        claimed_status: callback.claimed_status,
        received_at: publish::now().0,
    };
    store_trigger(&state, &trigger).await?;
    Ok(StatusCode::OK)
}

/// Puts a trigger into the callbacks stream and waits for JetStream's ack.
async fn store_trigger(state: &AppState, trigger: &Trigger) -> Result<(), PublishError> {
    let bus = &state.bus;
    let unavailable = |m: String| PublishError::NotSent(ApiError::Unavailable(m));
    if !bus.is_connected() {
        return Err(unavailable(
            "NATS is not connected; nothing was accepted, retry later".into(),
        ));
    }
    let payload = serde_json::to_vec(trigger)
        .map_err(|e| PublishError::NotSent(ApiError::Internal(e.to_string())))?;
    // Invoices a registered order holds go to their own lane, so that a flood of made-up
    // invoices never delays them (decision 30). A failed or slow read only means the
    // slower lane.
    let lookup = state.store.payment_ref_order(IPINT, &trigger.invoice_id);
    let registered = matches!(
        tokio::time::timeout(LANE_LOOKUP_TIMEOUT, lookup).await,
        Ok(Ok(Some(_)))
    );
    let lane = if registered {
        IPINT_LANE
    } else {
        IPINT_UNMATCHED_LANE
    };
    let subject = bus.namespace().callback_subject(lane);
    match bus
        .publish_callback(subject, &trigger.msg_id(), Bytes::from(payload))
        .await
    {
        Ok(p) => {
            tracing::debug!(invoice_id = %trigger.invoice_id, duplicate = p.duplicate, "iPint callback stored for verification");
            state.metrics.verification(IPINT, "callback_stored");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(invoice_id = %trigger.invoice_id, error = %e, "iPint callback not stored; nothing accepted");
            Err(PublishError::NotSent(e.into()))
        }
    }
}
