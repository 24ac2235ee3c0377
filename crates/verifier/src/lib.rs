//! # verifier: the ingress's off-request-path workers
//!
//! Unsigned or incomplete provider messages are never applied as they arrive: the
//! ingress's webhook routes store them in the callbacks work-queue stream (shapes in
//! [`bus::callbacks`]) and answer at once. This crate owns the workers that take them from
//! there, ask the provider's API what really happened and publish the contract event:
//!
//! - [`ipint`]: verifies iPint callbacks with iPint's signed `GET /invoice`;
//! - [`stripe`]: completes Stripe events that arrived without `data.object`.
//!
//! The workers know nothing of HTTP serving or of the ingress's state: they get a
//! [`bus::Bus`], their [`Settings`], an [`Observer`] for their counters and a shutdown
//! signal ([`run`]). The ingress process runs them as one task beside its HTTP server, so
//! deployment is one process as before; the mapping of a provider message to a contract
//! event is `providers::events`, shared with the routes.

pub mod ipint;
mod publish;
pub mod stripe;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bus::BusError;
use config::Config;

pub use ipint::IpintSettings;
pub use stripe::StripeApiSettings;

/// The Unix-seconds clock the workers read (iPint's request nonce); replaceable in tests.
#[derive(Clone)]
pub struct Clock(pub Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| now_ms() / 1000))
    }
    /// A clock stopped at `unix_secs`.
    pub fn fixed(unix_secs: i64) -> Clock {
        Clock(Arc::new(move || unix_secs))
    }
    /// The time now, in Unix seconds.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// The wall clock in Unix milliseconds (0 before the epoch, saturating far after it).
pub(crate) fn now_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Where the workers report what they did, so the process that runs them can export it
/// (the ingress counts them in `/metrics`). Labels are from closed sets: providers,
/// results (`captured`, `retry`, `gave_up`, …) and event kinds.
pub trait Observer: Send + Sync + fmt::Debug {
    /// One verification step of an unsigned or partial provider message.
    fn verification(&self, provider: &str, result: &str);
    /// A completed provider message that maps to nothing (acknowledged, not published).
    fn ignored(&self, provider: &str, what: &str);
    /// One event acknowledged by JetStream.
    fn published(&self, kind: &str, duplicate: bool);
    /// One event not acknowledged.
    fn publish_failed(&self, kind: &str);
    /// How long one acknowledged publish waited for JetStream's ack.
    fn publish_acked(&self, _took: std::time::Duration) {}
}

/// An [`Observer`] that counts nothing (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn verification(&self, _: &str, _: &str) {}
    fn ignored(&self, _: &str, _: &str) {}
    fn published(&self, _: &str, _: bool) {}
    fn publish_failed(&self, _: &str) {}
}

/// Everything the workers are configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The iPint API and the verification bounds.
    pub ipint: IpintSettings,
    /// The Stripe API and the completion bounds.
    pub stripe: StripeApiSettings,
    /// `STOCKLEDGER_MERCHANT`: the merchant scope written in every published event.
    pub merchant: String,
    /// The clock of iPint's request nonce.
    pub clock: Clock,
}

/// Why the settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("STOCKLEDGER_MERCHANT: {0}")]
    InvalidMerchant(contract::ContractError),
}

impl Settings {
    /// The workers' settings from the process configuration.
    pub fn from_config(c: &Config) -> Result<Settings, SettingsError> {
        contract::v2::check_merchant(&c.nats.merchant).map_err(SettingsError::InvalidMerchant)?;
        Ok(Settings {
            ipint: IpintSettings::from_config(c),
            stripe: StripeApiSettings::from_config(c),
            merchant: c.nats.merchant.clone(),
            clock: Clock::system(),
        })
    }
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client for the provider's API could not be built (TLS setup).
    #[error("building the provider API client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// NATS did not let the worker set up its stream or consumer.
    #[error("setting up the callbacks consumer: {0}")]
    Bus(#[from] BusError),
}

/// What the workers share: the bus, the settings and the observer. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) bus: bus::Bus,
    pub(crate) settings: Arc<Settings>,
    pub(crate) observer: Arc<dyn Observer>,
}

/// Runs both workers (iPint verification, Stripe completion) until `shutdown` completes.
/// Messages in flight at shutdown are left unacknowledged and come back to another
/// replica after the ack wait. The callbacks stream must be reachable: call it once the
/// bus answers (the ingress waits for `ensure_streams`).
pub async fn run(
    bus: bus::Bus,
    settings: Settings,
    observer: Arc<dyn Observer>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let ctx = Ctx {
        bus,
        settings: Arc::new(settings),
        observer,
    };
    let ipint = ipint::start(&ctx).await?;
    let stripe = stripe::work(ctx.clone());
    tokio::select! {
        () = ipint => {}
        () = stripe => {}
        () = shutdown => {}
    }
    tracing::info!("verification workers stopped");
    Ok(())
}

/// Installs the process-wide TLS crypto provider (ring) used by the workers' HTTPS calls.
/// Idempotent; called before any `reqwest::Client` is built.
pub fn install_tls_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The pause before retrying a message whose event could not be published.
pub const PUBLISH_RETRY_DELAY: Duration = Duration::from_secs(2);

/// How a callback-stream message leaves a worker (one mapping to acknowledgements, in `bus`).
pub(crate) use bus::Disposition;

/// The consumer limits of a worker whose message costs one provider API call (at most
/// `api_timeout`) and a publish: the ack wait covers the call and two publish attempts, so a
/// healthy message is never redelivered to another replica while it is worked on. Delivery
/// is unbounded: a worker gives up by its own count of attempts and flags the message.
pub(crate) fn callback_limits(bus: &bus::Bus, api_timeout: Duration) -> bus::ConsumerLimits {
    bus::ConsumerLimits {
        ack_wait: api_timeout + bus.publish_timeout() * 2 + Duration::from_secs(10),
        max_deliver: -1,
        backoff: Vec::new(),
        max_ack_pending: 1024,
    }
}

/// The pause before attempt `delivered + 1`: doubling from `first`, at most `max`.
pub(crate) fn backoff(first: Duration, max: Duration, delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    first.saturating_mul(1u32 << doublings).min(max)
}

/// Publishes `kind` from `provider` under dedupe key `identity` and says how to settle
/// the message that led to it: ack once published, retry when NATS did not take it,
/// terminate when the contract refuses the event (a bug, not worth retrying).
pub(crate) async fn publish_kind(
    ctx: &Ctx,
    kind: &domain::EventKind,
    provider: &str,
    identity: String,
    raw: Option<&[u8]>,
) -> Disposition {
    match publish::publish(ctx, kind, provider, identity, raw).await {
        Ok(()) => Disposition::Done,
        Err(publish::PublishError::Contract(e)) => {
            tracing::error!(provider, error = %e, "event refused by the contract; message terminated");
            Disposition::Terminate
        }
        Err(publish::PublishError::Encode(e)) => {
            tracing::error!(provider, error = %e, source = ?std::error::Error::source(&e), "event could not be encoded; message terminated");
            Disposition::Terminate
        }
        Err(publish::PublishError::Bus(e)) => {
            tracing::warn!(provider, error = %e, "event not published; will retry");
            Disposition::Later(PUBLISH_RETRY_DELAY)
        }
    }
}
