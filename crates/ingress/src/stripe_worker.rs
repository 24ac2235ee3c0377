//! Completing partial Stripe events from Stripe's API, off the request path (decision 30).
//!
//! A signed Stripe event whose `data.object` is absent (a v2 "thin" event, which carries
//! only `related_object`, or a v1 event delivered without its snapshot) does not say which
//! order or how much; stock is never moved on a guess. `POST /webhooks/stripe` stores such
//! an event whole (its signed body) in the callbacks work-queue stream (subject
//! `<ns>.callbacks.stripe`, `Nats-Msg-Id` `stripe:partial:{event id}`) and answers 200 once
//! JetStream acknowledged it. This worker, which runs beside the iPint verifier in every
//! ingress process (durable consumer [`CONSUMER`]), asks Stripe for what is missing
//! (`providers::stripe::completion`: `GET /v1/payment_intents/{id}` and its siblings for a
//! thin event, `GET /v1/events/{id}` for a v1 event) with `Authorization: Bearer
//! STOCKLEDGER_STRIPE_API_KEY`, and publishes the complete event under the event's own
//! dedupe key `stripe:{event id}`, exactly as if Stripe had sent it whole:
//!
//! | answer | what is published | trigger |
//! | --- | --- | --- |
//! | the object (or the event with its object) | the mapped contract event, as for a full event | ack |
//! | HTTP 404 (Stripe does not know it) | `payment.flagged` `unverifiable` with the signed body | ack |
//! | other failure (5xx, timeout, unreadable, another object) | nothing yet: nak, 1 s doubling to 10 min | retried |
//! | still failing after `STOCKLEDGER_STRIPE_FETCH_ATTEMPTS` | `payment.flagged` `unverifiable` with the evidence | ack |
//! | no `STOCKLEDGER_STRIPE_API_KEY` | `payment.flagged` `unverifiable` with the signed body, then checked again every 5 min | kept |
//!
//! The flag names the order by `metadata.order_ref` or the PaymentIntent the event names
//! ([`flag_order`]). An event that names neither (a v1 event without its object) cannot
//! become an exception on an order: without a key the endpoint refuses it with 503 (Stripe
//! retries for three days and shows the failed deliveries), and a worker that cannot flag
//! it logs an error and counts `stockledger_callback_verifications_total{provider="stripe",
//! result="unrecordable"}`.

use std::time::Duration;

use bus::{BusError, ConsumerLimits, Message};
use bytes::Bytes;
use config::{Config, Secret};
use domain::{EventKind, FlagReason, OrderLookup, OrderRef, Payment, PaymentRef, Provider};
use futures::StreamExt as _;
use providers::stripe::{self, Completion, StripeEvent};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::publish::{self, Outgoing, STRIPE};
use crate::{AppState, routes};

/// The durable consumer of partial Stripe events on the callbacks stream.
pub const CONSUMER: &str = "stripe_completer";
/// Partial events completed at once by one process.
pub const IN_FLIGHT_MAX: usize = 8;
/// The largest API answer read, in bytes.
pub const ANSWER_LEN_MAX_BYTES: usize = 256 * 1024;
/// How long a partial event waits before it is tried again while no API key is configured.
pub const UNCONFIGURED_RECHECK: Duration = Duration::from_secs(300);
/// The first pause between two attempts; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest pause between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// The pause before the worker sets itself up again after NATS refused.
const RESTART_DELAY: Duration = Duration::from_secs(5);

/// How the worker reaches Stripe's API and how long it keeps trying.
#[derive(Debug, Clone)]
pub struct StripeApiSettings {
    /// `STOCKLEDGER_STRIPE_API_URL`: the base URL, without a trailing slash.
    pub api_url: String,
    /// `STOCKLEDGER_STRIPE_API_KEY`. `None`: partial events become exceptions.
    pub api_key: Option<Secret>,
    /// `STOCKLEDGER_STRIPE_API_TIMEOUT`: one API call.
    pub timeout: Duration,
    /// `STOCKLEDGER_STRIPE_FETCH_ATTEMPTS`: calls before `unverifiable`.
    pub fetch_attempts: i64,
    /// The first pause between attempts ([`BACKOFF_FIRST`]; tests shorten it).
    pub backoff_first: Duration,
    /// The longest pause between attempts ([`BACKOFF_MAX`]).
    pub backoff_max: Duration,
    /// The recheck while unconfigured ([`UNCONFIGURED_RECHECK`]).
    pub unconfigured_recheck: Duration,
}

impl StripeApiSettings {
    /// The settings from the process configuration.
    pub fn from_config(c: &Config) -> StripeApiSettings {
        StripeApiSettings {
            api_url: c.stripe_api_url.trim_end_matches('/').to_owned(),
            api_key: c.stripe_api_key.clone(),
            timeout: c.stripe_api_timeout,
            fetch_attempts: c.stripe_fetch_attempts,
            backoff_first: BACKOFF_FIRST,
            backoff_max: BACKOFF_MAX,
            unconfigured_recheck: UNCONFIGURED_RECHECK,
        }
    }
}

/// What the endpoint stores: the signed body, verified before it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// The event body exactly as Stripe signed it (UTF-8 JSON).
    pub body: String,
    /// When it was accepted, Unix milliseconds.
    pub received_at: i64,
}

/// The order a flag about `event` can name: `metadata.order_ref`, else the PaymentIntent
/// (the event's, or a thin event's related PaymentIntent).
pub fn flag_order(event: &StripeEvent) -> Option<OrderLookup> {
    if let Some(r) = event.order_ref.as_deref() {
        return OrderRef::parse(r).ok().map(OrderLookup::OrderRef);
    }
    let pi = event.payment_intent_id.clone().or_else(|| {
        event
            .related_object
            .as_ref()
            .filter(|(_, kind)| kind == "payment_intent")
            .map(|(id, _)| id.clone())
    })?;
    Some(OrderLookup::PaymentRef {
        provider: Provider::parse(STRIPE).ok()?,
        payment_ref: PaymentRef::parse(&pi).ok()?,
    })
}

/// Called by `POST /webhooks/stripe` for a verified event that needs completing: stores it
/// for this worker and answers 200, or 503 when it could neither be completed (no key) nor
/// flagged on an order (it names none): Stripe then keeps retrying it.
pub async fn accept_partial(
    state: &AppState,
    event: &StripeEvent,
    raw: &[u8],
) -> Result<(), ApiError> {
    if state.settings.stripe_api.api_key.is_none() && flag_order(event).is_none() {
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
    let subject = bus.namespace().callback_subject(STRIPE);
    let msg_id = format!("stripe:partial:{}", event.id);
    bus.publish_callback(subject, &msg_id, Bytes::from(payload))
        .await
        .map_err(ApiError::from)?;
    tracing::info!(event_id = %event.id, event_type = %event.event_type, "partial Stripe event stored for completion");
    state.metrics.verification(STRIPE, "partial_stored");
    Ok(())
}

/// Why one API call did not give a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("Stripe API did not answer within the timeout")]
    Timeout,
    #[error("Stripe API unreachable: {0}")]
    Transport(String),
    #[error("Stripe API answered HTTP {0}")]
    Status(u16),
    #[error("Stripe API answer unusable: {0}")]
    Malformed(String),
}

/// `GET {api_url}{path}` with the API key.
#[derive(Debug, Clone)]
struct Fetcher {
    http: reqwest::Client,
    settings: StripeApiSettings,
}

impl Fetcher {
    fn new(settings: StripeApiSettings) -> Result<Fetcher, FetchError> {
        crate::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(Fetcher { http, settings })
    }

    /// The answer's body; `None` when no key is configured.
    async fn fetch(&self, path: &str) -> Option<Result<Vec<u8>, FetchError>> {
        let key = self.settings.api_key.as_ref()?;
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout
            } else {
                FetchError::Transport(e.to_string())
            }
        };
        let request = self
            .http
            .get(format!("{}{path}", self.settings.api_url))
            .bearer_auth(key.expose());
        Some(
            async {
                let response = request.send().await.map_err(transport)?;
                let status = response.status();
                if !status.is_success() {
                    return Err(FetchError::Status(status.as_u16()));
                }
                let body = response.bytes().await.map_err(transport)?;
                if body.len() > ANSWER_LEN_MAX_BYTES {
                    return Err(FetchError::Malformed(format!("{} bytes", body.len())));
                }
                Ok(body.to_vec())
            }
            .await,
        )
    }
}

use crate::ipint_worker::Settle;

/// The pause before attempt `delivered + 1`.
fn backoff(s: &StripeApiSettings, delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    s.backoff_first
        .saturating_mul(1u32 << doublings)
        .min(s.backoff_max)
}

/// Completes partial Stripe events until the process stops. Never returns: a NATS failure
/// while setting up is logged and retried.
pub async fn work(state: AppState) {
    loop {
        if let Err(e) = work_once(&state).await {
            tracing::warn!(error = %e, "Stripe completion worker could not start; retrying");
        }
        tokio::time::sleep(RESTART_DELAY).await;
    }
}

async fn work_once(state: &AppState) -> Result<(), BusError> {
    let settings = state.settings.stripe_api.clone();
    let fetcher = Fetcher::new(settings.clone()).map_err(|e| BusError::Refused(e.to_string()))?;
    state.bus.ensure_callback_stream().await?;
    let limits = ConsumerLimits {
        ack_wait: settings.timeout + state.settings.publish_timeout * 2 + Duration::from_secs(10),
        max_deliver: -1,
        backoff: Vec::new(),
        max_ack_pending: 1024,
    };
    let consumer = state
        .bus
        .callback_consumer(CONSUMER, STRIPE, &limits)
        .await?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    tracing::info!("Stripe completion worker started");
    messages
        .for_each_concurrent(IN_FLIGHT_MAX, |m| {
            let (state, fetcher) = (state.clone(), fetcher.clone());
            async move {
                match m {
                    Ok(msg) => {
                        let s = handle(&state, &fetcher, &msg).await;
                        settle(&msg, s).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "Stripe partial-event stream error"),
                }
            }
        })
        .await;
    Ok(())
}

async fn handle(state: &AppState, fetcher: &Fetcher, msg: &Message) -> Settle {
    let Ok(partial) = serde_json::from_slice::<Partial>(&msg.payload) else {
        tracing::error!("unreadable partial Stripe event; terminated");
        return Settle::Term;
    };
    let raw = partial.body.as_bytes();
    let event = match stripe::parse_event(raw) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "stored Stripe event no longer parses; terminated");
            return Settle::Term;
        }
    };
    let Some(how) = stripe::completion(&event) else {
        tracing::error!(event_id = %event.id, "stored Stripe event needs no completion; terminated");
        return Settle::Term;
    };
    let settings = &state.settings.stripe_api;
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let problem = match fetcher.fetch(how.path()).await {
        None => {
            state.metrics.verification(STRIPE, "unconfigured");
            let detail = format!(
                "Stripe event {} ({}) carries no data.object and cannot be completed: STOCKLEDGER_STRIPE_API_KEY is not set; kept and completed once it is. Signed body: {}",
                event.id, event.event_type, partial.body
            );
            return match flag(state, &event, detail, raw).await {
                Settle::Ack => Settle::Later(settings.unconfigured_recheck),
                other => other,
            };
        }
        Some(Ok(answer)) => match complete(state, &event, &how, &answer, raw).await {
            Ok(s) => return s,
            Err(problem) => problem,
        },
        Some(Err(FetchError::Status(404))) => {
            state.metrics.verification(STRIPE, "not_found");
            let detail = format!(
                "Stripe event {} ({}) carries no data.object and Stripe answered 404 to GET {}. Signed body: {}",
                event.id,
                event.event_type,
                how.path(),
                partial.body
            );
            return flag(state, &event, detail, raw).await;
        }
        Some(Err(e)) => e.to_string(),
    };
    tracing::warn!(event_id = %event.id, error = %problem, attempt = delivered, "Stripe event not completed; will retry");
    if delivered >= settings.fetch_attempts {
        state.metrics.verification(STRIPE, "gave_up");
        let detail = format!(
            "Stripe event {} ({}) not completed after {delivered} attempts of GET {}: {problem}. Signed body: {}",
            event.id,
            event.event_type,
            how.path(),
            partial.body
        );
        return flag(state, &event, detail, raw).await;
    }
    state.metrics.verification(STRIPE, "retry");
    Settle::Later(backoff(settings, delivered))
}

/// Reads the answer into the complete event and publishes it; `Err` is a retryable
/// problem (the answer was not the object asked for).
async fn complete(
    state: &AppState,
    event: &StripeEvent,
    how: &Completion,
    answer: &[u8],
    raw: &[u8],
) -> Result<Settle, String> {
    let full = stripe::complete(event, how, answer).map_err(|e| e.to_string())?;
    match routes::stripe::translate(&full) {
        Ok(Some(kind)) => {
            state.metrics.verification(STRIPE, kind.name());
            Ok(publish_kind(state, &kind, full.dedupe_key(), raw).await)
        }
        Ok(None) => {
            tracing::info!(event_id = %event.id, "completed Stripe event names no order; acknowledged and ignored");
            state.metrics.ignored(STRIPE, &event.event_type);
            Ok(Settle::Ack)
        }
        Err(e) => Err(format!("the completed event is unusable: {e}")),
    }
}

async fn flag(state: &AppState, event: &StripeEvent, detail: String, raw: &[u8]) -> Settle {
    let Some(order) = flag_order(event) else {
        tracing::error!(event_id = %event.id, event_type = %event.event_type, detail = %detail, "partial Stripe event names no order; it cannot become an exception");
        state.metrics.verification(STRIPE, "unrecordable");
        return Settle::Ack;
    };
    let kind = EventKind::PaymentFlagged {
        payment: Payment {
            order,
            amount: None,
        },
        reason: FlagReason::Unverifiable,
        detail,
    };
    let identity = format!("{}:unverifiable", event.dedupe_key());
    publish_kind(state, &kind, identity, raw).await
}

async fn publish_kind(state: &AppState, kind: &EventKind, identity: String, raw: &[u8]) -> Settle {
    let out = match Outgoing::new(kind, STRIPE, identity, Some(raw)) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "completed Stripe event refused by the contract; terminated");
            return Settle::Term;
        }
    };
    match publish::publish(state, &out).await {
        Ok(_) => Settle::Ack,
        Err(e) => {
            tracing::warn!(error = %e, "Stripe event not published; will retry");
            Settle::Later(crate::ipint_worker::PUBLISH_RETRY_DELAY)
        }
    }
}

async fn settle(msg: &Message, s: Settle) {
    crate::ipint_worker::settle_as(msg, s, "a partial Stripe event").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thin_event_flags_its_payment_intent() {
        let thin = br#"{"id":"evt_1","object":"v2.core.event","type":"v1.payment_intent.succeeded","related_object":{"id":"pi_1","type":"payment_intent"}}"#;
        let e = stripe::parse_event(thin).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            matches!(flag_order(&e), Some(OrderLookup::PaymentRef { payment_ref, .. }) if payment_ref.as_str() == "pi_1")
        );
        let bare = stripe::parse_event(br#"{"id":"evt_2","type":"payment_intent.succeeded"}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(flag_order(&bare), None);
    }
}
