//! `POST /webhooks/stripe` (`shared/spec/providers.md` §3, mapping in `docs/providers.md`).
//!
//! The `Stripe-Signature` header is verified over the raw body against every configured
//! secret (rotation), with a 300 s tolerance against the injectable [`crate::Clock`]; only
//! then is the body parsed. The event maps to one contract event (dedupe key
//! `stripe:{event id}`), named by `metadata.order_ref` or, failing that, by its
//! PaymentIntent (`OrderLookup::PaymentRef { provider: "stripe", … }`), published, and
//! answered 200 after JetStream's ack.
//!
//! A mapped event without `data.object` (a v2 thin event, or a v1 event without its
//! snapshot) is not applied as it is: it is stored for [`crate::stripe_worker`], which
//! completes it from Stripe's API and publishes the complete event (or an `unverifiable`
//! exception with the evidence); without `STOCKLEDGER_STRIPE_API_KEY` an event that names
//! no order at all is answered 503, so Stripe keeps it.
//!
//! Event types stockledger does not map, and mapped events whose object names neither an
//! order nor a PaymentIntent, are answered 200 (so Stripe stops retrying) and counted in
//! `stockledger_provider_ignored_total`; nothing is published for them. With no secret
//! configured the endpoint answers 401.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::{
    AuthorizationMode, ChargebackOutcome, DisputeId, EventKind, OrderLookup, OrderRef, Payment,
    PaymentRef, Provider, Timestamp,
};
use providers::stripe::{self, StripeAction, StripeEvent};

use crate::error::ApiError;
use crate::publish::{self, Outgoing, STRIPE};
use crate::routes::provider_money;
use crate::{AppState, RawBody, stripe_worker};

/// Stripe's replay tolerance, in seconds.
pub const TOLERANCE_SECS: i64 = stripe::DEFAULT_TOLERANCE_SECS;

/// `POST /webhooks/stripe`.
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<StatusCode, ApiError> {
    let raw = body.0;
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
    stripe::verify_signature(&raw, header, &secrets, now, TOLERANCE_SECS)?;
    let event = stripe::parse_event(&raw)?;
    if stripe::completion(&event).is_some() {
        // Partial (thin, or without data.object): completed from Stripe's API off the
        // request path, never applied on a guess (decision 30).
        stripe_worker::accept_partial(&state, &event, &raw).await?;
        return Ok(StatusCode::OK);
    }
    let Some(kind) = translate(&event)? else {
        tracing::info!(event_id = %event.id, event_type = %event.event_type, "Stripe event acknowledged and ignored");
        state.metrics.ignored(STRIPE, &event.event_type);
        return Ok(StatusCode::OK);
    };
    let out = Outgoing::new(&kind, STRIPE, event.dedupe_key(), Some(&raw))?;
    publish::publish(&state, &out).await?;
    Ok(StatusCode::OK)
}

/// The order an event names: `metadata.order_ref`, else its PaymentIntent.
pub fn order_lookup(event: &StripeEvent) -> Result<Option<OrderLookup>, ApiError> {
    if let Some(r) = event.order_ref.as_deref() {
        let r = OrderRef::parse(r)
            .map_err(|e| ApiError::malformed("data.object.metadata.order_ref", e.to_string()))?;
        return Ok(Some(OrderLookup::OrderRef(r)));
    }
    let Some(pi) = event.payment_intent_id.as_deref() else {
        return Ok(None);
    };
    let payment_ref = PaymentRef::parse(pi)
        .map_err(|e| ApiError::malformed("data.object.payment_intent", e.to_string()))?;
    let provider = Provider::parse(STRIPE).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Some(OrderLookup::PaymentRef {
        provider,
        payment_ref,
    }))
}

/// The contract event a verified Stripe event becomes, or `None` when it is acknowledged
/// and ignored (an unmapped type, or no order to name).
pub fn translate(event: &StripeEvent) -> Result<Option<EventKind>, ApiError> {
    let action = stripe::classify(event);
    if action == StripeAction::Ignored {
        return Ok(None);
    }
    let Some(order) = order_lookup(event)? else {
        return Ok(None);
    };
    let refund = matches!(action, StripeAction::Refunded) && event.amount_refunded.is_some();
    let amount = if refund {
        provider_money(event.amount_refunded.as_ref())
    } else {
        provider_money(event.amount.as_ref())
    };
    let payment = Payment { order, amount };
    let kind = match action {
        StripeAction::Authorized => EventKind::PaymentAuthorized {
            payment,
            mode: AuthorizationMode::Notification,
        },
        StripeAction::Captured => EventKind::PaymentCaptured { payment },
        StripeAction::Voided => EventKind::PaymentVoided { payment },
        StripeAction::Refunded => EventKind::PaymentRefunded { payment },
        StripeAction::ChargebackOpened { due_by } => EventKind::ChargebackOpened {
            payment,
            dispute_id: dispute_id(event)?,
            deadline: due_by.map(|s| Timestamp(s.saturating_mul(1000))),
        },
        StripeAction::ChargebackClosed(outcome) => EventKind::ChargebackClosed {
            payment,
            dispute_id: dispute_id(event)?,
            outcome: match outcome {
                stripe::ChargebackOutcome::Won => ChargebackOutcome::Won,
                stripe::ChargebackOutcome::Lost => ChargebackOutcome::Lost,
            },
        },
        StripeAction::RecordedNoEffect => EventKind::PaymentNoted {
            payment,
            status: noted_status(event),
        },
        StripeAction::Ignored => return Ok(None),
    };
    Ok(Some(kind))
}

/// The status a `payment.noted` records: the event type, and a dispute's status.
fn noted_status(event: &StripeEvent) -> String {
    match &event.dispute_status {
        Some(s) => format!("{}:{s}", event.event_type),
        None => event.event_type.clone(),
    }
}

/// The dispute's id (`dp_…`), the object of every `charge.dispute.*` event.
fn dispute_id(event: &StripeEvent) -> Result<DisputeId, ApiError> {
    let id = event
        .object_id
        .as_deref()
        .ok_or_else(|| ApiError::malformed("data.object.id", "a dispute event without its id"))?;
    DisputeId::parse(id).map_err(|e| ApiError::malformed("data.object.id", e.to_string()))
}
