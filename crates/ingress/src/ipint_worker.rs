//! The iPint verification worker: turns stored callbacks (triggers) into verified contract
//! events, off the request path.
//!
//! It runs as a task of every ingress process, sharing the durable consumer
//! `ipint_verifier` on the callbacks work-queue stream, so replicas split the work and a
//! crashed replica's callbacks are redelivered to another after the ack wait. For each
//! trigger it calls iPint's signed `GET {STOCKLEDGER_IPINT_API_URL}/invoice?id=…` (headers
//! `apikey`, `nonce` = Unix seconds, `signature` = `providers::ipint::sign_request`),
//! classifies the verified answer and publishes one contract event, naming the order by
//! `PaymentRef { provider: "ipint", payment_ref: invoice_id }`:
//!
//! | verified | event | dedupe key |
//! | --- | --- | --- |
//! | COMPLETED, every received amount ≥ its invoice amount | `payment.captured` (invoice amount in local currency) | `ipint:{invoice_id}:COMPLETED` |
//! | COMPLETED, short or missing | `payment.flagged` `amount_mismatch` | `ipint:{invoice_id}:COMPLETED` |
//! | FAILED, CANCELLED | `payment.voided` | `ipint:{invoice_id}:{status}` |
//! | HTTP 404: iPint does not know the invoice | nothing: acknowledged, counted as `unknown_invoice` (a made-up invoice is one API call, never an exception) | — |
//! | CHECKING, PROCESSING, unknown, or the API failing | nothing yet: nak with backoff (1 s doubling to `STOCKLEDGER_IPINT_VERIFY_BACKOFF_MAX`) | — |
//! | still so after `STOCKLEDGER_IPINT_VERIFY_ATTEMPTS` | `payment.flagged` `unverifiable` | `ipint:{invoice_id}:unverifiable` |
//! | no API key or secret configured | `payment.flagged` `unverifiable`, and the trigger is kept (checked again every 5 min) | `ipint:{invoice_id}:unverifiable` |
//!
//! A trigger is acknowledged only after its event's publish was acknowledged, so a crash
//! anywhere means a redelivery, which the ledger deduplicates by event id.
//!
//! Bounded work (decision 30). The callback is unauthenticated, so its cost is bounded at
//! every step: the endpoint is rate-limited per source (`crate::ratelimit`); one trigger per
//! invoice within the duplicate window (`Nats-Msg-Id` `ipint:callback:{invoice_id}`,
//! whatever status it claims); the callbacks stream is bounded and refuses new callbacks
//! when full (`bus::CALLBACKS_MAX_MSGS`); an invoice iPint says does not exist costs one
//! API call and ends there; a pending or failing one is retried with backoff (a nak, which
//! holds no worker slot) at most `STOCKLEDGER_IPINT_VERIFY_ATTEMPTS` times; and
//! callbacks come in two lanes, each with its own consumer and [`IN_FLIGHT_MAX`]
//! verifications at once: invoices a registered order holds (`<ns>.callbacks.ipint`) and
//! the rest ([`UNMATCHED_LANE`]), chosen by the endpoint with one primary-key read. A
//! flood of made-up invoices fills only the second lane, so a genuine callback for a
//! registered order is verified at once, whatever waits there; a genuine one whose order is
//! registered late waits in the second lane, one API call per trigger ahead of it.
//!
//! The same task also runs the Stripe completion worker ([`crate::stripe_worker`]), so
//! every process that verifies iPint callbacks also completes partial Stripe events.

use std::future::Future;
use std::time::Duration;

use bus::{AckKind, BusError, ConsumerLimits, IPINT_VERIFIER_CONSUMER, Message};
use domain::{EventKind, FlagReason, Money, OrderLookup, Payment, PaymentRef, Provider};
use futures::StreamExt as _;
use providers::ipint::{self, IpintAction, IpintInvoice};
use serde::{Deserialize, Serialize};

use crate::publish::{self, IPINT, Outgoing};
use crate::{AppState, Clock, IpintSettings};

/// How long a trigger waits before it is tried again while no API keys are configured.
pub const UNCONFIGURED_RECHECK: Duration = Duration::from_secs(300);
/// Triggers verified at once by one process, in each lane.
pub const IN_FLIGHT_MAX: usize = 16;
/// The lane (subject `<ns>.callbacks.ipint-unmatched`) of callbacks whose invoice no
/// registered order holds when they arrive: made-up invoices, and genuine ones registered
/// late. Callbacks for registered invoices use `<ns>.callbacks.ipint` and never wait
/// behind this lane.
pub const UNMATCHED_LANE: &str = "ipint-unmatched";
/// The durable consumer of [`UNMATCHED_LANE`].
pub const UNMATCHED_CONSUMER: &str = "ipint_verifier_unmatched";
/// The pause before retrying a trigger whose event could not be published.
pub const PUBLISH_RETRY_DELAY: Duration = Duration::from_secs(2);
/// The largest invoice answer read, in bytes.
pub const ANSWER_LEN_MAX_BYTES: usize = 64 * 1024;

/// What the callback endpoint stores: only what names the invoice. Never trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The invoice to verify.
    pub invoice_id: String,
    /// The status the callback claimed; for logs only.
    pub claimed_status: Option<String>,
    /// When the callback was accepted, Unix milliseconds.
    pub received_at: i64,
}

impl Trigger {
    /// The trigger's `Nats-Msg-Id`: iPint's retries of one callback, and callbacks for one
    /// invoice claiming other statuses (the claim is never trusted, the verification reads
    /// the real one), collapse into one trigger within the duplicate window.
    pub fn msg_id(&self) -> String {
        format!("ipint:callback:{}", self.invoice_id)
    }
}

/// Why one `GET /invoice` did not give a usable answer. All are retried until the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("iPint API did not answer within the timeout")]
    Timeout,
    #[error("iPint API unreachable: {0}")]
    Transport(String),
    #[error("iPint API answered HTTP {0}")]
    Status(u16),
    #[error("iPint API answer unreadable: {0}")]
    Malformed(String),
    #[error("iPint API answered for invoice {0:?}, not the one asked for")]
    WrongInvoice(String),
    /// HTTP 404: iPint does not know the invoice. Terminal: a callback that names a
    /// made-up invoice is not retried.
    #[error("iPint does not know this invoice (HTTP 404)")]
    NotFound,
}

/// `GET /invoice` with iPint's request signature.
#[derive(Debug, Clone)]
pub struct Verifier {
    http: reqwest::Client,
    settings: IpintSettings,
    clock: Clock,
}

/// The path and query of the invoice request, as sent and as signed: `/invoice?id=…` with
/// every byte outside `A-Z a-z 0-9 - _ . ~` percent-encoded.
pub fn invoice_path(invoice_id: &str) -> String {
    let mut path = String::from("/invoice?id=");
    for b in invoice_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path
}

impl Verifier {
    /// A verifier with its own HTTP client (timeout from the settings).
    pub fn new(settings: IpintSettings, clock: Clock) -> Result<Verifier, FetchError> {
        crate::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(Verifier {
            http,
            settings,
            clock,
        })
    }

    /// Asks iPint about one invoice. `None` when no key and secret are configured.
    pub async fn fetch(
        &self,
        invoice_id: &str,
    ) -> Option<Result<(IpintInvoice, Vec<u8>), FetchError>> {
        let (key, secret) = self.settings.credentials.as_ref()?;
        let path = invoice_path(invoice_id);
        let nonce = self.clock.now().to_string();
        let signature = ipint::sign_request(secret.expose(), &nonce, &path);
        let request = self
            .http
            .get(format!("{}{path}", self.settings.api_url))
            .header("apikey", key.expose())
            .header("nonce", &nonce)
            .header("signature", signature)
            .header("content-type", "application/json");
        Some(self.answer(invoice_id, request).await)
    }

    async fn answer(
        &self,
        invoice_id: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(IpintInvoice, Vec<u8>), FetchError> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout
            } else {
                FetchError::Transport(e.to_string())
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::NotFound);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let body = response.bytes().await.map_err(transport)?;
        if body.len() > ANSWER_LEN_MAX_BYTES {
            return Err(FetchError::Malformed(format!("{} bytes", body.len())));
        }
        let invoice =
            ipint::parse_invoice(&body).map_err(|e| FetchError::Malformed(e.to_string()))?;
        if invoice.invoice_id != invoice_id {
            return Err(FetchError::WrongInvoice(invoice.invoice_id));
        }
        Ok((invoice, body.to_vec()))
    }
}

/// What a verified invoice leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Publish this event under this dedupe key.
    Publish { kind: EventKind, identity: String },
    /// Not terminal yet: verify again later.
    Later { status: String },
}

/// The order an invoice's events name.
pub fn lookup(invoice_id: &str) -> Option<OrderLookup> {
    Some(OrderLookup::PaymentRef {
        provider: Provider::parse(IPINT).ok()?,
        payment_ref: PaymentRef::parse(invoice_id).ok()?,
    })
}

fn money(amount: Option<rust_decimal::Decimal>, currency: Option<&str>) -> Option<Money> {
    Money::parse(&amount?.to_string(), currency?).ok()
}

/// Decides what a verified invoice means (`providers::ipint::classify`, spec part 1).
pub fn verdict(invoice: &IpintInvoice) -> Option<Verdict> {
    let order = lookup(&invoice.invoice_id)?;
    let currency = invoice.local_currency_code.as_deref();
    let kind = match ipint::classify(invoice) {
        IpintAction::Captured => EventKind::PaymentCaptured {
            payment: Payment {
                order,
                amount: money(invoice.invoice_amount_in_local_currency, currency),
            },
        },
        IpintAction::AmountMismatch => EventKind::PaymentFlagged {
            payment: Payment {
                order,
                amount: money(invoice.received_amount_in_local_currency, currency),
            },
            reason: FlagReason::AmountMismatch,
            detail: shortfall(invoice),
        },
        IpintAction::Voided => EventKind::PaymentVoided {
            payment: Payment {
                order,
                amount: None,
            },
        },
        IpintAction::VerifyLater => {
            return Some(Verdict::Later {
                status: invoice.transaction_status.clone(),
            });
        }
    };
    Some(Verdict::Publish {
        kind,
        identity: invoice.dedupe_key(),
    })
}

/// The evidence of an under-payment: every received amount against its invoice amount.
fn shortfall(i: &IpintInvoice) -> String {
    let show = |d: Option<rust_decimal::Decimal>| d.map_or("missing".to_owned(), |d| d.to_string());
    format!(
        "iPint COMPLETED but not fully paid: received {} of {} {}, {} of {} USD, {} of {} {}",
        show(i.received_amount_in_local_currency),
        show(i.invoice_amount_in_local_currency),
        i.local_currency_code.as_deref().unwrap_or("local"),
        show(i.received_amount_in_usd),
        show(i.invoice_amount_in_usd),
        show(i.received_crypto_amount),
        show(i.invoice_crypto_amount),
        i.transaction_crypto.as_deref().unwrap_or("crypto"),
    )
}

/// The `payment.flagged` `unverifiable` of an invoice.
pub fn unverifiable(invoice_id: &str, detail: String) -> Option<(EventKind, String)> {
    let kind = EventKind::PaymentFlagged {
        payment: Payment {
            order: lookup(invoice_id)?,
            amount: None,
        },
        reason: FlagReason::Unverifiable,
        detail,
    };
    Some((kind, format!("ipint:{invoice_id}:unverifiable")))
}

/// The pause before verification number `delivered + 1`: doubling from the first pause,
/// at most the configured maximum.
pub fn backoff(settings: &IpintSettings, delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    settings
        .backoff_first
        .saturating_mul(1u32 << doublings)
        .min(settings.backoff_max)
}

/// How a callback-stream message leaves a worker (this one and `stripe_worker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    Ack,
    Later(Duration),
    Term,
}

/// Runs the worker until `shutdown` completes. Triggers in flight at shutdown are left
/// unacknowledged and come back to another replica after the ack wait.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) -> Result<(), BusError> {
    let settings = state.settings.ipint.clone();
    let verifier = Verifier::new(settings.clone(), state.settings.clock.clone())
        .map_err(|e| BusError::Refused(e.to_string()))?;
    if settings.credentials.is_none() {
        tracing::warn!(
            "STOCKLEDGER_IPINT_API_KEY/SECRET not set: iPint callbacks are kept and flagged unverifiable until they are configured"
        );
    }
    state.bus.ensure_callback_stream().await?;
    let limits = ConsumerLimits {
        ack_wait: settings.timeout + state.settings.publish_timeout * 2 + Duration::from_secs(10),
        max_deliver: -1,
        backoff: Vec::new(),
        max_ack_pending: 1024,
    };
    let registered = lane(&state, &verifier, IPINT_VERIFIER_CONSUMER, IPINT, &limits).await?;
    let unmatched = lane(
        &state,
        &verifier,
        UNMATCHED_CONSUMER,
        UNMATCHED_LANE,
        &limits,
    )
    .await?;
    tracing::info!("iPint verification worker started");
    let stripe = crate::stripe_worker::work(state.clone());
    tokio::select! {
        () = registered => {}
        () = unmatched => {}
        () = stripe => {}
        () = shutdown => {}
    }
    tracing::info!("iPint verification worker stopped");
    Ok(())
}

/// One lane: a durable consumer on `<ns>.callbacks.{lane}`, [`IN_FLIGHT_MAX`] triggers
/// verified at once.
async fn lane(
    state: &AppState,
    verifier: &Verifier,
    durable: &str,
    lane: &str,
    limits: &ConsumerLimits,
) -> Result<impl Future<Output = ()> + use<>, BusError> {
    let consumer = state.bus.callback_consumer(durable, lane, limits).await?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
    let (state, verifier) = (state.clone(), verifier.clone());
    Ok(messages.for_each_concurrent(IN_FLIGHT_MAX, move |m| {
        let (state, verifier) = (state.clone(), verifier.clone());
        async move {
            match m {
                Ok(msg) => {
                    let s = handle(&state, &verifier, &msg).await;
                    settle(&msg, s).await;
                }
                Err(e) => tracing::warn!(error = %e, "iPint callback stream error"),
            }
        }
    }))
}

/// Verifies one trigger and publishes what it leads to.
async fn handle(state: &AppState, verifier: &Verifier, msg: &Message) -> Settle {
    if msg
        .headers
        .as_ref()
        .and_then(|h| h.get(bus::GROUP_HEADER))
        .is_some()
    {
        return ungroup(state, msg).await;
    }
    let trigger: Trigger = match serde_json::from_slice(&msg.payload) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "unreadable iPint trigger; terminated");
            return Settle::Term;
        }
    };
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let settings = &state.settings.ipint;
    let id = trigger.invoice_id.as_str();
    let problem = match verifier.fetch(id).await {
        None => {
            state.metrics.verification(IPINT, "unconfigured");
            let detail = format!(
                "iPint callback for invoice {id} (claimed {:?}) cannot be verified: STOCKLEDGER_IPINT_API_KEY/SECRET not configured; kept and verified once they are",
                trigger.claimed_status
            );
            return match publish_flag(state, id, detail).await {
                Settle::Ack => Settle::Later(settings.unconfigured_recheck),
                other => other,
            };
        }
        Some(Ok((invoice, raw))) => match verdict(&invoice) {
            Some(Verdict::Publish { kind, identity }) => {
                state.metrics.verification(IPINT, kind.name());
                return publish_kind(state, &kind, identity, Some(&raw)).await;
            }
            Some(Verdict::Later { status }) => format!("still {status}"),
            None => return Settle::Term,
        },
        Some(Err(FetchError::NotFound)) => {
            // Made-up invoices are what a flood of fake callbacks consists of: counted, and
            // logged at debug level only, so that a flood cannot flood the log either.
            state.metrics.verification(IPINT, "unknown_invoice");
            tracing::debug!(invoice_id = %id, claimed = ?trigger.claimed_status, "iPint does not know this invoice; callback dropped");
            return Settle::Ack;
        }
        Some(Err(e)) => {
            tracing::warn!(invoice_id = %id, error = %e, attempt = delivered, "iPint verification failed; will retry");
            e.to_string()
        }
    };
    if delivered >= settings.verify_attempts {
        state.metrics.verification(IPINT, "gave_up");
        let detail =
            format!("iPint invoice {id} not verified after {delivered} attempts: {problem}");
        return publish_flag(state, id, detail).await;
    }
    state.metrics.verification(IPINT, "retry");
    Settle::Later(backoff(settings, delivered))
}

/// Earlier releases could store several triggers in one grouped message; each is stored
/// again alone (its own ack and backoff), then the group is acknowledged.
async fn ungroup(state: &AppState, msg: &Message) -> Settle {
    let subject = state.bus.namespace().callback_subject(IPINT);
    for part in bus::split(msg.headers.as_ref(), &msg.payload) {
        let Ok(trigger) = serde_json::from_slice::<Trigger>(&part) else {
            tracing::error!("unreadable iPint trigger in a group; skipped");
            continue;
        };
        if let Err(e) = state
            .bus
            .publish_callback(subject.clone(), &trigger.msg_id(), part)
            .await
        {
            tracing::warn!(error = %e, "could not split a grouped iPint trigger; will retry");
            return Settle::Later(PUBLISH_RETRY_DELAY);
        }
    }
    Settle::Ack
}

async fn publish_flag(state: &AppState, invoice_id: &str, detail: String) -> Settle {
    match unverifiable(invoice_id, detail) {
        Some((kind, identity)) => publish_kind(state, &kind, identity, None).await,
        None => Settle::Term,
    }
}

async fn publish_kind(
    state: &AppState,
    kind: &EventKind,
    identity: String,
    raw: Option<&[u8]>,
) -> Settle {
    let out = match Outgoing::new(kind, IPINT, identity, raw) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "iPint event refused by the contract; trigger terminated");
            return Settle::Term;
        }
    };
    match publish::publish(state, &out).await {
        Ok(_) => Settle::Ack,
        Err(e) => {
            tracing::warn!(error = %e, "iPint event not published; will retry");
            Settle::Later(PUBLISH_RETRY_DELAY)
        }
    }
}

/// Settles `msg` as `s` says; a failure only means redelivery (`what` names it in the log).
pub(crate) async fn settle_as(msg: &Message, s: Settle, what: &str) {
    let result = match s {
        Settle::Ack => msg.ack().await,
        Settle::Later(d) => msg.ack_with(AckKind::Nak(Some(d))).await,
        Settle::Term => msg.ack_with(AckKind::Term).await,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not settle {what}; it will be redelivered");
    }
}

async fn settle(msg: &Message, s: Settle) {
    settle_as(msg, s, "an iPint trigger").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_path_is_percent_encoded_as_signed() {
        assert_eq!(invoice_path("voZ3pYm-_.~"), "/invoice?id=voZ3pYm-_.~");
        assert_eq!(invoice_path("a b&c"), "/invoice?id=a%20b%26c");
    }

    #[test]
    fn backoff_doubles_to_the_maximum() {
        let s = IpintSettings {
            api_url: String::new(),
            credentials: None,
            timeout: Duration::from_secs(1),
            verify_attempts: 10,
            backoff_first: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            unconfigured_recheck: UNCONFIGURED_RECHECK,
        };
        let got: Vec<u64> = (1..=6).map(|n| backoff(&s, n).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(&s, i64::MAX), Duration::from_secs(10));
    }
}
