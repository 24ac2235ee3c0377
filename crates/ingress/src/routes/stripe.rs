//! `POST /webhooks/stripe` (`docs/providers.md`: the Stripe mapping and its protocol).
//!
//! The `Stripe-Signature` header is verified over the raw body against every configured
//! secret (rotation), with a 300 s tolerance against the injectable [`crate::Clock`]; only
//! then is the body parsed. The event maps to one contract event
//! (`providers::events::stripe_event`; dedupe key
//! `stripe:{event id}`), named by `metadata.order_ref` or, failing that, by its
//! PaymentIntent (`OrderLookup::PaymentRef { provider: "stripe", … }`), published, and
//! answered 200 after JetStream's ack.
//!
//! A mapped event without `data.object` (a v2 thin event, or a v1 event without its
//! snapshot) is not applied as it is: it is stored ([`accept_partial`], message shape
//! [`bus::callbacks::Partial`]) for the `verifier` crate's Stripe worker, which completes
//! it from Stripe's API and publishes the complete event (or an `unverifiable` exception
//! with the evidence); without `STOCKLEDGER_STRIPE_API_KEY` an event that names
//! no order at all is answered 503, so Stripe keeps it.
//!
//! Event types stockledger does not map, and mapped events whose object names neither an
//! order nor a PaymentIntent, are answered 200 (so Stripe stops retrying) and counted in
//! `stockledger_provider_ignored_total`; nothing is published for them. With no secret
//! configured the endpoint answers 401.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bus::callbacks::{Partial, STRIPE_LANE};
use bytes::Bytes;
use providers::events;
use providers::stripe::{self, StripeEvent};

use crate::error::ApiError;
use crate::publish::{self, Outgoing, STRIPE};
use crate::{AppState, RawBody};

/// Stripe's replay tolerance, in seconds.
pub const TOLERANCE_SECS: i64 = stripe::DEFAULT_TOLERANCE_SECS;

/// `POST /webhooks/stripe`.
#[utoipa::path(
    post, path = "/webhooks/stripe", tag = "providers",
    description = "Stripe events, verified by the `Stripe-Signature` header under `STOCKLEDGER_STRIPE_WEBHOOK_SECRET`.",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`.")),
    request_body = crate::wire::providers::StripeEvent,
    responses(
        (status = 200, description = "Accepted (or acknowledged and ignored)."),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 401, description = "Missing or wrong credentials, or a signature that does not verify.", body = crate::wire::error::ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<StatusCode, ApiError> {
    let raw = &body.0;
    let secrets: Vec<String> = state
        .settings
        .stripe_webhook_secrets
        .iter()
        .map(|s| s.expose().to_owned())
        .collect();
    if secrets.is_empty() {
        return Err(ApiError::Unauthorized(
            "STOCKLEDGER_STRIPE_WEBHOOK_SECRET is not set".into(),
        ));
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized("no Stripe-Signature header".into()))?;
    let now = state.settings.clock.now();
    stripe::verify_signature(raw, header, &secrets, now, TOLERANCE_SECS)?;
    let event = stripe::parse_event(raw)?;
    if stripe::completion(&event).is_some() {
        // Partial (thin, or without data.object): completed from Stripe's API off the
        // request path, never applied on a guess (decision 30).
        accept_partial(&state, &event, raw).await?;
        return Ok(StatusCode::OK);
    }
    let Some(kind) = events::stripe_event(&event)? else {
        tracing::info!(event_id = %event.id, event_type = %event.event_type, "Stripe event acknowledged and ignored");
        state.metrics.ignored(STRIPE, &event.event_type);
        return Ok(StatusCode::OK);
    };
    let out = Outgoing::new(&kind, STRIPE, event.dedupe_key(), Some(&body))?;
    publish::publish(&state, &out).await?;
    Ok(StatusCode::OK)
}

/// Called for a verified event that needs completing: stores it for the verifier and
/// answers 200, or 503 when it could neither be completed (no key) nor flagged on an order
/// (it names none): Stripe then keeps retrying it.
pub async fn accept_partial(
    state: &AppState,
    event: &StripeEvent,
    raw: &[u8],
) -> Result<(), ApiError> {
    if !state.settings.stripe_api_key_set && events::stripe_flag_order(event).is_none() {
        tracing::error!(event_id = %event.id, event_type = %event.event_type, "partial Stripe event names no order and STOCKLEDGER_STRIPE_API_KEY is not set: refused with 503, Stripe will retry");
        state.metrics.verification(STRIPE, "refused_partial");
        return Err(ApiError::Unavailable(
            "this event carries no data.object and STOCKLEDGER_STRIPE_API_KEY is not set to fetch it; nothing was accepted".into(),
        ));
    }
    let body =
        String::from_utf8(raw.to_vec()).map_err(|_| ApiError::malformed("body", "not UTF-8"))?;
    let partial = Partial {
        body,
        received_at: publish::now().0,
    };
    let payload = serde_json::to_vec(&partial).map_err(|e| ApiError::Internal(e.to_string()))?;
    let bus = &state.bus;
    if !bus.is_connected() {
        return Err(ApiError::Unavailable(
            "NATS is not connected; nothing was accepted, retry later".into(),
        ));
    }
    let subject = bus.namespace().callback_subject(STRIPE_LANE);
    bus.publish_callback(subject, &Partial::msg_id(&event.id), Bytes::from(payload))
        .await
        .map_err(ApiError::from)?;
    tracing::info!(event_id = %event.id, event_type = %event.event_type, "partial Stripe event stored for completion");
    state.metrics.verification(STRIPE, "partial_stored");
    Ok(())
}
