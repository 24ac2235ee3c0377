//! Completing partial Stripe events from Stripe's API, off the request path (decision 30).
//!
//! A signed Stripe event whose `data.object` is absent (a v2 "thin" event, which carries
//! only `related_object`, or a v1 event delivered without its snapshot) does not say which
//! order or how much; stock is never moved on a guess. `POST /webhooks/stripe` stores such
//! an event whole (its signed body, [`bus::callbacks::Partial`]) in the callbacks
//! work-queue stream (subject `<ns>.callbacks.stripe`, `Nats-Msg-Id`
//! `stripe:partial:{event id}`) and answers 200 once JetStream acknowledged it. This
//! worker, which runs beside the iPint verifier (durable consumer [`CONSUMER`]), asks
//! Stripe for what is missing (`providers::stripe::completion`: `GET
//! /v1/payment_intents/{id}` and its siblings for a thin event, `GET /v1/events/{id}` for a
//! v1 event) with `Authorization: Bearer STOCKLEDGER_STRIPE_API_KEY`, and publishes the
//! complete event under the event's own dedupe key `stripe:{event id}`, exactly as if
//! Stripe had sent it whole:
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
//! (`providers::events::stripe_flag_order`). An event that names neither cannot become an
//! exception on an order: without a key the endpoint refuses it with 503 (Stripe retries
//! for three days and shows the failed deliveries), and a worker that cannot flag it logs
//! an error and counts `stockledger_callback_verifications_total{provider="stripe",
//! result="unrecordable"}`.

use std::time::Duration;

use bus::callbacks::{Partial, STRIPE_LANE};
use bus::{BusError, Message};
use config::{Config, Secret};
use domain::{EventKind, FlagReason, Payment};
use futures::StreamExt as _;
use providers::events::{self, STRIPE};
use providers::stripe::{self, Completion, StripeEvent};

use crate::{Ctx, Disposition, StartError};

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
            api_url: c.verifier.stripe_api_url.trim_end_matches('/').to_owned(),
            api_key: c.verifier.stripe_api_key.clone(),
            timeout: c.verifier.stripe_api_timeout,
            fetch_attempts: c.verifier.stripe_fetch_attempts,
            backoff_first: BACKOFF_FIRST,
            backoff_max: BACKOFF_MAX,
            unconfigured_recheck: UNCONFIGURED_RECHECK,
        }
    }
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
    fn new(settings: StripeApiSettings) -> Result<Fetcher, reqwest::Error> {
        crate::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
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

/// Completes partial Stripe events until the process stops. Never returns: a NATS failure
/// while setting up is logged and retried.
pub(crate) async fn work(ctx: Ctx) {
    loop {
        if let Err(e) = work_once(&ctx).await {
            tracing::warn!(error = %e, "Stripe completion worker could not start; retrying");
        }
        tokio::time::sleep(RESTART_DELAY).await;
    }
}

async fn work_once(ctx: &Ctx) -> Result<(), StartError> {
    let settings = ctx.settings.stripe.clone();
    let fetcher = Fetcher::new(settings.clone()).map_err(StartError::HttpClient)?;
    ctx.bus.ensure_callback_stream().await?;
    let limits = crate::callback_limits(&ctx.bus, settings.timeout);
    let consumer = ctx
        .bus
        .callback_consumer(CONSUMER, STRIPE_LANE, &limits)
        .await?;
    let messages = consumer.messages().await.map_err(BusError::unavailable)?;
    tracing::info!("Stripe completion worker started");
    messages
        .for_each_concurrent(IN_FLIGHT_MAX, |m| {
            let (ctx, fetcher) = (ctx.clone(), fetcher.clone());
            async move {
                match m {
                    Ok(msg) => {
                        let s = handle(&ctx, &fetcher, &msg).await;
                        bus::settle(&msg, s, "a partial Stripe event").await;
                    }
                    Err(e) => tracing::warn!(error = %e, "Stripe partial-event stream error"),
                }
            }
        })
        .await;
    Ok(())
}

async fn handle(ctx: &Ctx, fetcher: &Fetcher, msg: &Message) -> Disposition {
    let Ok(partial) = serde_json::from_slice::<Partial>(&msg.payload) else {
        tracing::error!("unreadable partial Stripe event; terminated");
        return Disposition::Terminate;
    };
    let raw = partial.body.as_bytes();
    let event = match stripe::parse_event(raw) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "stored Stripe event no longer parses; terminated");
            return Disposition::Terminate;
        }
    };
    let Some(how) = stripe::completion(&event) else {
        tracing::error!(event_id = %event.id, "stored Stripe event needs no completion; terminated");
        return Disposition::Terminate;
    };
    let settings = &ctx.settings.stripe;
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let problem = match fetcher.fetch(how.path()).await {
        None => {
            ctx.observer.verification(STRIPE, "unconfigured");
            let detail = format!(
                "Stripe event {} ({}) carries no data.object and cannot be completed: STOCKLEDGER_STRIPE_API_KEY is not set; kept and completed once it is. Signed body: {}",
                event.id, event.event_type, partial.body
            );
            return match flag(ctx, &event, detail, raw).await {
                Disposition::Done => Disposition::Later(settings.unconfigured_recheck),
                other => other,
            };
        }
        Some(Ok(answer)) => match complete(ctx, &event, &how, &answer, raw).await {
            Ok(s) => return s,
            Err(problem) => problem,
        },
        Some(Err(FetchError::Status(404))) => {
            ctx.observer.verification(STRIPE, "not_found");
            let detail = format!(
                "Stripe event {} ({}) carries no data.object and Stripe answered 404 to GET {}. Signed body: {}",
                event.id,
                event.event_type,
                how.path(),
                partial.body
            );
            return flag(ctx, &event, detail, raw).await;
        }
        Some(Err(e)) => e.to_string(),
    };
    tracing::warn!(event_id = %event.id, error = %problem, attempt = delivered, "Stripe event not completed; will retry");
    if delivered >= settings.fetch_attempts {
        ctx.observer.verification(STRIPE, "gave_up");
        let detail = format!(
            "Stripe event {} ({}) not completed after {delivered} attempts of GET {}: {problem}. Signed body: {}",
            event.id,
            event.event_type,
            how.path(),
            partial.body
        );
        return flag(ctx, &event, detail, raw).await;
    }
    ctx.observer.verification(STRIPE, "retry");
    Disposition::Later(crate::backoff(
        settings.backoff_first,
        settings.backoff_max,
        delivered,
    ))
}

/// Reads the answer into the complete event and publishes it; `Err` is a retryable
/// problem (the answer was not the object asked for).
async fn complete(
    ctx: &Ctx,
    event: &StripeEvent,
    how: &Completion,
    answer: &[u8],
    raw: &[u8],
) -> Result<Disposition, String> {
    let full = stripe::complete(event, how, answer).map_err(|e| e.to_string())?;
    match events::stripe_event(&full) {
        Ok(Some(kind)) => {
            ctx.observer.verification(STRIPE, kind.name());
            Ok(crate::publish_kind(ctx, &kind, STRIPE, full.dedupe_key(), Some(raw)).await)
        }
        Ok(None) => {
            tracing::info!(event_id = %event.id, "completed Stripe event names no order; acknowledged and ignored");
            ctx.observer.ignored(STRIPE, &event.event_type);
            Ok(Disposition::Done)
        }
        Err(e) => Err(format!("the completed event is unusable: {e}")),
    }
}

async fn flag(ctx: &Ctx, event: &StripeEvent, detail: String, raw: &[u8]) -> Disposition {
    let Some(order) = events::stripe_flag_order(event) else {
        tracing::error!(event_id = %event.id, event_type = %event.event_type, detail = %detail, "partial Stripe event names no order; it cannot become an exception");
        ctx.observer.verification(STRIPE, "unrecordable");
        return Disposition::Done;
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
    crate::publish_kind(ctx, &kind, STRIPE, identity, Some(raw)).await
}

#[cfg(test)]
mod tests {
    use domain::OrderLookup;

    use super::*;

    #[test]
    fn a_thin_event_flags_its_payment_intent() {
        let thin = br#"{"id":"evt_1","object":"v2.core.event","type":"v1.payment_intent.succeeded","related_object":{"id":"pi_1","type":"payment_intent"}}"#;
        let e = stripe::parse_event(thin).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            matches!(events::stripe_flag_order(&e), Some(OrderLookup::PaymentRef { payment_ref, .. }) if payment_ref.as_str() == "pi_1")
        );
        let bare = stripe::parse_event(br#"{"id":"evt_2","type":"payment_intent.succeeded"}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(events::stripe_flag_order(&bare), None);
    }
}
