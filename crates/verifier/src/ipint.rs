//! The iPint verification worker: turns stored callbacks (triggers) into verified contract
//! events, off the request path.
//!
//! It runs as a task of every ingress process, sharing the durable consumer
//! `ipint_verifier` on the callbacks work-queue stream, so replicas split the work and a
//! crashed replica's callbacks are redelivered to another after the ack wait. For each
//! trigger ([`bus::callbacks::Trigger`]) it calls iPint's signed
//! `GET {STOCKLEDGER_IPINT_API_URL}/invoice?id=…` (headers `apikey`, `nonce` = Unix
//! seconds, `signature` = `providers::ipint::sign_request`), maps the verified answer
//! (`providers::events::ipint_verdict`) and publishes one contract event, naming the order
//! by `PaymentRef { provider: "ipint", payment_ref: invoice_id }`:
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
//! every step: the endpoint is rate-limited per source; one trigger per invoice within the
//! duplicate window (`Nats-Msg-Id` `ipint:callback:{invoice_id}`, whatever status it
//! claims); the callbacks stream is bounded and refuses new callbacks when full
//! (`bus::CALLBACKS_MAX_MSGS`); an invoice iPint says does not exist costs one API call and
//! ends there; a pending or failing one is retried with backoff (a nak, which holds no
//! worker slot) at most `STOCKLEDGER_IPINT_VERIFY_ATTEMPTS` times; and callbacks come in two
//! lanes, each with its own consumer and [`IN_FLIGHT_MAX`] verifications at once: invoices a
//! registered order holds ([`bus::callbacks::IPINT_LANE`]) and the rest
//! ([`bus::callbacks::IPINT_UNMATCHED_LANE`]), chosen by the endpoint with one primary-key
//! read. A flood of made-up invoices fills only the second lane, so a genuine callback for
//! a registered order is verified at once, whatever waits there.

use std::future::Future;
use std::time::Duration;

use bus::callbacks::{IPINT_LANE, IPINT_UNMATCHED_LANE, Trigger};
use bus::{BusError, ConsumerLimits, IPINT_VERIFIER_CONSUMER, Message};

use crate::StartError;
use config::{Config, Secret};
use futures::StreamExt as _;
use providers::events::{self, IPINT, IpintVerdict};
use providers::ipint::{self, IpintInvoice};

use crate::{Clock, Ctx, Disposition};

/// How long a trigger waits before it is tried again while no API keys are configured.
pub const UNCONFIGURED_RECHECK: Duration = Duration::from_secs(300);
/// Triggers verified at once by one process, in each lane.
pub const IN_FLIGHT_MAX: usize = 16;
/// The durable consumer of [`IPINT_UNMATCHED_LANE`].
pub const UNMATCHED_CONSUMER: &str = "ipint_verifier_unmatched";
/// The largest invoice answer read, in bytes.
pub const ANSWER_LEN_MAX_BYTES: usize = 64 * 1024;

/// How the iPint verification worker reaches iPint and how long it keeps trying.
#[derive(Debug, Clone)]
pub struct IpintSettings {
    /// `STOCKLEDGER_IPINT_API_URL`: the base URL, `GET {base}/invoice?id=…`.
    pub api_url: String,
    /// `STOCKLEDGER_IPINT_API_KEY` and `_SECRET`. `None`: callbacks are accepted but wait
    /// as `unverifiable` exceptions, and are verified once keys are configured.
    pub credentials: Option<(Secret, Secret)>,
    /// `STOCKLEDGER_IPINT_TIMEOUT`: one API call.
    pub timeout: Duration,
    /// `STOCKLEDGER_IPINT_VERIFY_ATTEMPTS`: verifications before `unverifiable`.
    pub verify_attempts: i64,
    /// The first pause between verifications; it doubles each time.
    pub backoff_first: Duration,
    /// `STOCKLEDGER_IPINT_VERIFY_BACKOFF_MAX`: the longest pause between verifications.
    pub backoff_max: Duration,
    /// How long a callback waits before it is tried again while no keys are configured.
    pub unconfigured_recheck: Duration,
}

impl IpintSettings {
    /// The settings from the process configuration.
    pub fn from_config(c: &Config) -> IpintSettings {
        // Half a credential is no credential: the worker cannot sign with it.
        let credentials = match (&c.verifier.ipint_api_key, &c.verifier.ipint_api_secret) {
            (Some(k), Some(s)) => Some((k.clone(), s.clone())),
            _ => None,
        };
        IpintSettings {
            api_url: c.verifier.ipint_api_url.trim_end_matches('/').to_owned(),
            credentials,
            timeout: c.verifier.ipint_timeout,
            verify_attempts: c.verifier.ipint_verify_attempts,
            backoff_first: Duration::from_secs(1),
            backoff_max: c.verifier.ipint_verify_backoff_max,
            unconfigured_recheck: UNCONFIGURED_RECHECK,
        }
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
    pub fn new(settings: IpintSettings, clock: Clock) -> Result<Verifier, reqwest::Error> {
        crate::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
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

/// The pause before verification number `delivered + 1`: doubling from the first pause,
/// at most the configured maximum.
pub fn backoff(settings: &IpintSettings, delivered: i64) -> Duration {
    crate::backoff(settings.backoff_first, settings.backoff_max, delivered)
}

/// Sets up both lanes' consumers and returns the future that works them off.
pub(crate) async fn start(ctx: &Ctx) -> Result<impl Future<Output = ()> + use<>, StartError> {
    let settings = ctx.settings.ipint.clone();
    let verifier = Verifier::new(settings.clone(), ctx.settings.clock.clone())
        .map_err(StartError::HttpClient)?;
    if settings.credentials.is_none() {
        tracing::warn!(
            "STOCKLEDGER_IPINT_API_KEY/SECRET not set: iPint callbacks are kept and flagged unverifiable until they are configured"
        );
    }
    ctx.bus.ensure_callback_stream().await?;
    let limits = crate::callback_limits(&ctx.bus, settings.timeout);
    let registered = lane(ctx, &verifier, IPINT_VERIFIER_CONSUMER, IPINT_LANE, &limits).await?;
    let unmatched = lane(
        ctx,
        &verifier,
        UNMATCHED_CONSUMER,
        IPINT_UNMATCHED_LANE,
        &limits,
    )
    .await?;
    tracing::info!("iPint verification worker started");
    Ok(async move {
        tokio::select! {
            () = registered => {}
            () = unmatched => {}
        }
    })
}

/// One lane: a durable consumer on `<ns>.callbacks.{lane}`, [`IN_FLIGHT_MAX`] triggers
/// verified at once.
async fn lane(
    ctx: &Ctx,
    verifier: &Verifier,
    durable: &str,
    lane: &str,
    limits: &ConsumerLimits,
) -> Result<impl Future<Output = ()> + use<>, BusError> {
    let consumer = ctx.bus.callback_consumer(durable, lane, limits).await?;
    let messages = consumer.messages().await.map_err(BusError::unavailable)?;
    let (ctx, verifier) = (ctx.clone(), verifier.clone());
    Ok(messages.for_each_concurrent(IN_FLIGHT_MAX, move |m| {
        let (ctx, verifier) = (ctx.clone(), verifier.clone());
        async move {
            match m {
                Ok(msg) => {
                    let s = handle(&ctx, &verifier, &msg).await;
                    bus::settle(&msg, s, "an iPint trigger").await;
                }
                Err(e) => tracing::warn!(error = %e, "iPint callback stream error"),
            }
        }
    }))
}

/// Verifies one trigger and publishes what it leads to.
async fn handle(ctx: &Ctx, verifier: &Verifier, msg: &Message) -> Disposition {
    if msg
        .headers
        .as_ref()
        .and_then(|h| h.get(bus::GROUP_HEADER))
        .is_some()
    {
        return ungroup(ctx, msg).await;
    }
    let trigger: Trigger = match serde_json::from_slice(&msg.payload) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "unreadable iPint trigger; terminated");
            return Disposition::Terminate;
        }
    };
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let settings = &ctx.settings.ipint;
    let id = trigger.invoice_id.as_str();
    let problem = match verifier.fetch(id).await {
        None => {
            ctx.observer.verification(IPINT, "unconfigured");
            let detail = format!(
                "iPint callback for invoice {id} (claimed {:?}) cannot be verified: STOCKLEDGER_IPINT_API_KEY/SECRET not configured; kept and verified once they are",
                trigger.claimed_status
            );
            return match publish_flag(ctx, id, detail).await {
                Disposition::Done => Disposition::Later(settings.unconfigured_recheck),
                other => other,
            };
        }
        Some(Ok((invoice, raw))) => match events::ipint_verdict(&invoice) {
            Some(IpintVerdict::Publish { kind, identity }) => {
                ctx.observer.verification(IPINT, kind.name());
                return crate::publish_kind(ctx, &kind, IPINT, identity, Some(&raw)).await;
            }
            Some(IpintVerdict::Later { status }) => format!("still {status}"),
            None => return Disposition::Terminate,
        },
        Some(Err(FetchError::NotFound)) => {
            // Made-up invoices are what a flood of fake callbacks consists of: counted, and
            // logged at debug level only, so that a flood cannot flood the log either.
            ctx.observer.verification(IPINT, "unknown_invoice");
            tracing::debug!(invoice_id = %id, claimed = ?trigger.claimed_status, "iPint does not know this invoice; callback dropped");
            return Disposition::Done;
        }
        Some(Err(e)) => {
            tracing::warn!(invoice_id = %id, error = %e, attempt = delivered, "iPint verification failed; will retry");
            e.to_string()
        }
    };
    if delivered >= settings.verify_attempts {
        ctx.observer.verification(IPINT, "gave_up");
        let detail =
            format!("iPint invoice {id} not verified after {delivered} attempts: {problem}");
        return publish_flag(ctx, id, detail).await;
    }
    ctx.observer.verification(IPINT, "retry");
    Disposition::Later(backoff(settings, delivered))
}

/// Earlier releases could store several triggers in one grouped message; each is stored
/// again alone (its own ack and backoff), then the group is acknowledged.
async fn ungroup(ctx: &Ctx, msg: &Message) -> Disposition {
    let subject = ctx.bus.namespace().callback_subject(IPINT_LANE);
    for part in bus::split(msg.headers.as_ref(), &msg.payload) {
        let Ok(trigger) = serde_json::from_slice::<Trigger>(&part) else {
            tracing::error!("unreadable iPint trigger in a group; skipped");
            continue;
        };
        if let Err(e) = ctx
            .bus
            .publish_callback(subject.clone(), &trigger.msg_id(), part)
            .await
        {
            tracing::warn!(error = %e, "could not split a grouped iPint trigger; will retry");
            return Disposition::Later(crate::PUBLISH_RETRY_DELAY);
        }
    }
    Disposition::Done
}

async fn publish_flag(ctx: &Ctx, invoice_id: &str, detail: String) -> Disposition {
    match events::ipint_unverifiable(invoice_id, detail) {
        Some((kind, identity)) => crate::publish_kind(ctx, &kind, IPINT, identity, None).await,
        None => Disposition::Terminate,
    }
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
