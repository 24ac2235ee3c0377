//! # ingress: stockledger's HTTP edge
//!
//! Thin and stateless, so that many replicas can run behind a load balancer. Every write
//! that reaches it becomes a contract event published to JetStream with `Nats-Msg-Id` =
//! the event id ([`publish`]); a request is answered "accepted" only after JetStream's ack.
//! The ingress never writes the ledger. It reads the database for the merchant API's
//! queries, for the ledger's decision on an event it published ([`decision`]), and for
//! the order check of PortOne's inventory confirmation.
//!
//! - [`routes::portone`]: the signed payment webhook and the unsigned inventory
//!   confirmation (threat model: `docs/threat-model.md`).
//! - [`routes::stripe`], [`routes::adyen`]: signed webhooks, published as contract events;
//!   a Stripe event without `data.object` is stored for the `verifier` crate, which
//!   completes it from Stripe's API first.
//! - [`ratelimit`]: per-source limits of the unauthenticated endpoints (iPint's callback,
//!   PortOne's confirmation).
//! - [`routes::ipint`]: the unsigned callback, kept in JetStream as a trigger; the
//!   `verifier` crate verifies it with iPint's signed API off the request path.
//!   `docs/providers.md` has every provider's mapping (`providers::events`).
//! - [`routes::merchant`] and [`routes::reads`]: the merchant API (bearer token).
//! - [`routes::ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`routes::exceptions`]: the exception queue and its operator actions (bearer token).
//! - [`routes::console`]: the operators' web console, HTML under `/console/`.
//!
//! [`router`] is a plain function, so tests serve it on port 0; [`serve`] runs it with the
//! peer address each request needs for the PortOne allow-list.

pub mod decision;
pub mod error;
pub mod input;
pub mod metrics;
pub mod net;
pub mod openapi;
pub mod publish;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod standing;
pub mod trace;
pub mod wire;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use config::{Config, Secret};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use metrics::Metrics;
pub use net::IpNet;
/// The workers' clock type, shared so one test clock drives both the routes and the
/// verifier.
pub use verifier::Clock;

/// The settings the ingress uses, parsed once from [`Config`]. Secrets stay [`Secret`]s.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `STOCKLEDGER_API_TOKEN`: the merchant API's bearer token. Required.
    pub api_token: Secret,
    /// `STOCKLEDGER_OPERATOR_TOKEN`: the web console's login token; `None`: the API token.
    pub operator_token: Option<Secret>,
    /// `STOCKLEDGER_PORTONE_SECRET_KEY`: verifies the webhook's `signature_hash`. Unset:
    /// both PortOne endpoints answer 401.
    pub portone_secret_key: Option<Secret>,
    /// `STOCKLEDGER_PORTONE_KEY`: the only `portone_key` a confirmation may carry. Unset:
    /// any.
    pub portone_key: Option<Secret>,
    /// `STOCKLEDGER_PORTONE_ALLOWED_IPS`: who may call the PortOne endpoints. `None`: any.
    pub portone_allowed_ips: Option<Vec<IpNet>>,
    /// `STOCKLEDGER_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `STOCKLEDGER_CONFIRMATION_DEADLINE`: the longest a request waits for the ledger's
    /// decision (PortOne's confirmation answers within it; the merchant API answers 202
    /// after it).
    pub confirmation_deadline: Duration,
    /// `STOCKLEDGER_MAX_BODY_BYTES`: larger bodies get 413.
    pub max_body_bytes: usize,
    /// `STOCKLEDGER_REQUEST_TIMEOUT`: the whole of one request.
    pub request_timeout: Duration,
    /// `STOCKLEDGER_PUBLISH_TIMEOUT`: the wait for one JetStream ack (the bus enforces it;
    /// the confirmation keeps this much of its deadline for the compensating publish).
    pub publish_timeout: Duration,
    /// `STOCKLEDGER_STRIPE_WEBHOOK_SECRET`: every secret a `v1` signature may match
    /// (several during rotation). Empty: `/webhooks/stripe` answers 401.
    pub stripe_webhook_secrets: Vec<Secret>,
    /// `STOCKLEDGER_ADYEN_HMAC_KEY`, hex-decoded at start: every key an item's
    /// `hmacSignature` may match (two during rotation). Empty: `/webhooks/adyen` answers 401.
    pub adyen_hmac_keys: HmacKeys,
    /// `STOCKLEDGER_ADYEN_BASIC_USER` and `_PASSWORD`: when set, Adyen notifications must
    /// also carry these HTTP Basic credentials.
    pub adyen_basic_auth: Option<(String, Secret)>,
    /// `STOCKLEDGER_IPINT_CALLBACKS_PER_SECOND` / `_BURST`: per-source limit of
    /// `/webhooks/ipint` ([`ratelimit`]).
    pub ipint_callbacks_limit: ratelimit::RateLimit,
    /// `STOCKLEDGER_CONFIRMATIONS_PER_SECOND` / `_BURST`: per-source limit of
    /// `/portone/inventory-confirmation` ([`ratelimit`]).
    pub confirmations_limit: ratelimit::RateLimit,
    /// Whether `STOCKLEDGER_STRIPE_API_KEY` is set: a partial Stripe event that names no
    /// order can be stored for completion only then ([`routes::stripe`]).
    pub stripe_api_key_set: bool,
    /// `STOCKLEDGER_MERCHANT`: the merchant scope written in every event this ingress
    /// publishes (checked at start against the contract's rule).
    pub merchant: String,
    /// The wall clock in Unix seconds: Stripe's timestamp tolerance and iPint's nonce. Tests
    /// replace it.
    pub clock: Clock,
    /// `STOCKLEDGER_HEADER_READ_TIMEOUT`: a request head must be complete this long after
    /// the connection opened or the previous response ended ([`server`]).
    pub header_read_timeout: Duration,
    /// `STOCKLEDGER_MAX_CONNECTIONS`: open connections at most (lowered at start to fit
    /// the open-file limit, [`server::effective_max_connections`]).
    pub max_connections: usize,
    /// `STOCKLEDGER_MAX_INFLIGHT_REQUESTS`: requests worked on at once; more get 503.
    pub max_inflight_requests: usize,
    /// `STOCKLEDGER_DB_POOL_MAX`: database connections, counted against the open-file limit.
    pub db_pool_max: usize,
}

/// Decoded HMAC keys. `Debug` shows how many, never the bytes.
#[derive(Clone, Default)]
pub struct HmacKeys(pub Vec<Vec<u8>>);

impl fmt::Debug for HmacKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacKeys({} keys)", self.0.len())
    }
}

/// Why the settings cannot be used; the ingress does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "STOCKLEDGER_API_TOKEN is not set: the ingress refuses to start without a merchant API token"
    )]
    MissingApiToken,
    #[error("{var}: {source}")]
    InvalidNet {
        var: &'static str,
        source: net::InvalidNet,
    },
    #[error("STOCKLEDGER_ADYEN_HMAC_KEY: key {index} is not hex")]
    InvalidAdyenKey { index: usize },
    #[error(
        "STOCKLEDGER_ADYEN_BASIC_USER and STOCKLEDGER_ADYEN_BASIC_PASSWORD must be set together"
    )]
    HalfAdyenBasicAuth,
    #[error("STOCKLEDGER_MERCHANT: {0}")]
    InvalidMerchant(contract::ContractError),
}

impl Settings {
    /// The ingress's settings from the process configuration.
    pub fn from_config(c: &Config) -> Result<Settings, SettingsError> {
        let api_token = c
            .http
            .api_token
            .clone()
            .ok_or(SettingsError::MissingApiToken)?;
        let allowed = net::parse_list(&c.http.portone_allowed_ips).map_err(|source| {
            SettingsError::InvalidNet {
                var: "STOCKLEDGER_PORTONE_ALLOWED_IPS",
                source,
            }
        })?;
        let trusted_proxies = net::parse_list(&c.http.trusted_proxies).map_err(|source| {
            SettingsError::InvalidNet {
                var: "STOCKLEDGER_TRUSTED_PROXIES",
                source,
            }
        })?;
        let adyen_hmac_keys = c
            .providers
            .adyen_hmac_keys
            .iter()
            .enumerate()
            .map(|(index, k)| {
                providers::adyen::parse_hmac_key(k.expose())
                    .map_err(|_| SettingsError::InvalidAdyenKey { index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let adyen_basic_auth = match (
            &c.providers.adyen_basic_user,
            &c.providers.adyen_basic_password,
        ) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => return Err(SettingsError::HalfAdyenBasicAuth),
        };
        contract::v2::check_merchant(&c.nats.merchant).map_err(SettingsError::InvalidMerchant)?;
        Ok(Settings {
            api_token,
            operator_token: c.http.operator_token.clone(),
            portone_secret_key: c.providers.portone_secret_key.clone(),
            portone_key: c.providers.portone_key.clone(),
            portone_allowed_ips: if allowed.is_empty() {
                None
            } else {
                Some(allowed)
            },
            trusted_proxies,
            confirmation_deadline: c.http.confirmation_deadline,
            max_body_bytes: c.http.max_body_bytes,
            request_timeout: c.http.request_timeout,
            publish_timeout: c.nats.publish_timeout,
            stripe_webhook_secrets: c.providers.stripe_webhook_secrets.clone(),
            adyen_hmac_keys: HmacKeys(adyen_hmac_keys),
            adyen_basic_auth,
            ipint_callbacks_limit: ratelimit::RateLimit {
                per_second: c.http.ipint_callbacks_per_second,
                burst: c.http.ipint_callbacks_burst,
            },
            confirmations_limit: ratelimit::RateLimit {
                per_second: c.http.confirmations_per_second,
                burst: c.http.confirmations_burst,
            },
            stripe_api_key_set: c.verifier.stripe_api_key.is_some(),
            merchant: c.nats.merchant.clone(),
            clock: Clock::system(),
            header_read_timeout: c.http.header_read_timeout,
            max_connections: c.http.max_connections,
            max_inflight_requests: c.http.max_inflight_requests,
            db_pool_max: usize::try_from(c.database.pool_max).unwrap_or(usize::MAX),
        })
    }
}

/// Everything a request handler needs. Cheap to clone: every field is a handle.
#[derive(Clone, Debug)]
pub struct AppState {
    /// JetStream: the only place the ingress writes to.
    pub bus: bus::Bus,
    /// The ledger database, read only.
    pub store: store::Store,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Whether the ledger is current with the event stream (`/readyz`, writes).
    pub standing: Arc<standing::StandingCache>,
    /// One permit per request in progress (`STOCKLEDGER_MAX_INFLIGHT_REQUESTS`).
    pub inflight: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A state with fresh metrics.
    pub fn new(bus: bus::Bus, store: store::Store, settings: Settings) -> AppState {
        AppState {
            bus,
            store,
            inflight: Arc::new(tokio::sync::Semaphore::new(
                settings.max_inflight_requests.max(1),
            )),
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            standing: Arc::new(standing::StandingCache::default()),
        }
    }
}

/// A request body read whole, at most `STOCKLEDGER_MAX_BODY_BYTES` (413 beyond).
/// Signatures are verified over exactly these bytes; the second field is the request's
/// `Content-Type`, kept with the body in the raw stream.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes, pub Option<String>);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        // Kept with the body for the raw stream (`bus::raw`): the evidence names it.
        let content_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(RawBody(bytes, content_type)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge {
                max: state.settings.max_body_bytes,
            }),
            Err(r) => Err(ApiError::malformed("body", r.body_text())),
        }
    }
}

/// The whole HTTP surface (`docs/interface.md`), with limits, metrics and tracing. The
/// routes are [`openapi`]'s route groups, so the API description and what is served are
/// one list.
pub fn router(state: AppState) -> Router {
    let merchant_api = Router::from(openapi::merchant_routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            standing::require_current,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            routes::auth::require_token,
        ));
    // PortOne's confirmation is answered from the ledger: refused while it is behind.
    // Provider webhooks are only published, so they are accepted as ever and applied once
    // the ledger is rebuilt.
    let confirmation = Router::from(openapi::confirmation_routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            standing::require_current,
        ))
        .route_layer(middleware::from_fn_with_state(
            ratelimit::layer(&state, state.settings.confirmations_limit),
            ratelimit::limit,
        ));
    let ipint = Router::from(openapi::ipint_routes()).route_layer(middleware::from_fn_with_state(
        ratelimit::layer(&state, state.settings.ipint_callbacks_limit),
        ratelimit::limit,
    ));
    Router::new()
        .merge(merchant_api)
        .merge(confirmation)
        .merge(ipint)
        .merge(Router::from(openapi::open_routes()))
        .merge(routes::console::router(&state))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.settings.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            shed_and_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn(routes::portone::refusal_shape))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(middleware::from_fn(trace::layer))
        .with_state(state)
}

/// The tracing span of one request: method and path only. The query string is never
/// logged, at any level, because a client may put a token in it (issue 16).
fn request_span(req: &Request) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = metrics::method_label(req.method()),
        path = %req.uri().path(),
        trace_id = trace::trace_id(req).unwrap_or_default(),
        version = ?req.version(),
    )
}

/// Load shedding and the early body limit, before any handler runs:
/// - more than `STOCKLEDGER_MAX_INFLIGHT_REQUESTS` requests in progress: `503` with
///   `Retry-After` at once;
/// - a declared `Content-Length` above `STOCKLEDGER_MAX_BODY_BYTES`: `413` at once, before
///   a body byte is read (an `Expect: 100-continue` client never gets `100 Continue`, and
///   the connection is not kept waiting for a body that would be refused).
async fn shed_and_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let max = state.settings.max_body_bytes;
    if declared.is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX)) {
        let mut response = ApiError::TooLarge { max }.into_response();
        // The body was not read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let Ok(_permit) = state.inflight.clone().try_acquire_owned() else {
        let mut response = ApiError::Unavailable(
            "too many requests in progress (STOCKLEDGER_MAX_INFLIGHT_REQUESTS); retry later".into(),
        )
        .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(server::SHED_RETRY_AFTER_SECS),
        );
        return response;
    };
    next.run(req).await
}

/// Serves [`router`] on `listener` until `shutdown` completes, then lets in-flight
/// requests finish (bound that wait in the caller). Each request carries its TCP peer
/// address, which the PortOne allow-list needs. The connection limits (header-read
/// timeout, connections, open-file limit) are [`server`]'s.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let s = &state.settings;
    let nofile = server::open_file_limit();
    let limits = server::ConnectionLimits {
        header_read_timeout: s.header_read_timeout,
        max_connections: server::effective_max_connections(
            s.max_connections,
            nofile,
            s.db_pool_max,
        ),
    };
    if limits.max_connections < s.max_connections {
        tracing::warn!(
            configured = s.max_connections,
            open_file_limit = nofile,
            max_connections = limits.max_connections,
            "STOCKLEDGER_MAX_CONNECTIONS lowered to fit the open-file limit"
        );
    }
    server::serve(listener, router(state), limits, shutdown).await
}

async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "not_found".into(),
        message: "no such endpoint".into(),
    }
}

/// Counts every answered request by its route template (never the raw path, whose
/// values are unbounded), method and status: every label comes from a closed set (a
/// method outside the standard ones counts as `other`, a path no route matches as
/// `other`), so no client can grow `/metrics` (issue 16).
async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(metrics::OTHER_LABEL, MatchedPath::as_str)
        .to_owned();
    let method = metrics::method_label(req.method());
    let response = next.run(req).await;
    state
        .metrics
        .request(&route, method, response.status().as_u16());
    response
}

/// The longest plain-text error body kept as the JSON error's message.
const PLAIN_ERROR_KEEP_BYTES: usize = 1024;

/// Turns the framework's own error responses (405, 408, a path that does not decode)
/// into the JSON error shape, so that every error a client sees has one shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // The console's HTML error pages are kept as they are.
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal",
        _ => "malformed",
    };
    // Keep the status and headers (a 405's `Allow`); replace only the body.
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_ERROR_KEEP_BYTES)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let body = axum::Json(wire::error::ErrorBody {
        error: code.to_owned(),
        message,
    })
    .into_response()
    .into_body();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

/// Installs the process-wide TLS crypto provider (ring) used by outgoing HTTPS calls (the
/// verifier's). Idempotent; call before building any `reqwest::Client`.
pub fn install_tls_provider() {
    verifier::install_tls_provider();
}
