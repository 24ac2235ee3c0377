//! # config: every setting, its default, read once
//!
//! All stockledger processes and `stockctl` read their configuration here, from
//! environment variables, at start. Each variable is named, has a default, and is listed in
//! the README's configuration table; a value that does not parse stops the process at
//! start with a message naming the variable. Secrets are wrapped in [`Secret`], whose
//! `Debug` never shows the value.
//!
//! [`Config`] is read and validated once, as a whole, and comes in sections, one per
//! concern: what every process needs ([`NatsConfig`], [`DatabaseConfig`],
//! [`ProcessConfig`]) and what one role reads ([`HttpConfig`] and [`ProvidersConfig`] for
//! the ingress, [`VerifierConfig`] for the callback verifiers, [`LedgerConfig`],
//! [`ExceptionsConfig`]). A role's settings are filled from its sections only, in one
//! `from_config` per role.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// A value that must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A variable whose value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message} (got {value:?})")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub message: String,
}

/// Every setting of every process. Fields are documented with their variable and default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where NATS is and how events are published to it (every process).
    pub nats: NatsConfig,
    /// The ledger database (every process).
    pub database: DatabaseConfig,
    /// How a process logs and stops (every process).
    pub process: ProcessConfig,
    /// The ingress's HTTP edge: address, limits, the merchant API token, who may call what.
    pub http: HttpConfig,
    /// The providers' webhook secrets, with which the ingress verifies what they send.
    pub providers: ProvidersConfig,
    /// The callback verifiers: the providers' APIs they call back, and their bounds.
    pub verifier: VerifierConfig,
    /// The ledger consumer: batching, delivery limits, reservations.
    pub ledger: LedgerConfig,
    /// The exception consumer.
    pub exceptions: ExceptionsConfig,
    /// The daily reconciliation (`stockctl reconcile` and the ledger's scheduled run).
    pub reconcile: ReconcileConfig,
}

/// Where NATS is and how events are published to it (every process).
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `STOCKLEDGER_NATS_URL`, default `nats://127.0.0.1:4222`: one URL, or several
    /// separated by commas (the nodes of a cluster; the client fails over between them).
    pub url: String,
    /// `STOCKLEDGER_NATS_CREDS`, default none: a NATS credentials file (JWT and NKey seed)
    /// the client authenticates with.
    pub creds: Option<std::path::PathBuf>,
    /// `STOCKLEDGER_NATS_TLS_CA`, default none: a PEM bundle of the CA(s) that signed the
    /// NATS servers' certificates; when set the client requires TLS.
    pub tls_ca: Option<std::path::PathBuf>,
    /// `STOCKLEDGER_STREAM_REPLICAS`, default `1`: replicas of every stream and durable
    /// consumer stockledger creates (3 on a three-node JetStream cluster).
    pub stream_replicas: usize,
    /// `STOCKLEDGER_NATS_NAMESPACE`, default `stockledger`: prefix of every stream and subject.
    pub namespace: String,
    /// `STOCKLEDGER_PUBLISH_TIMEOUT`, default `3s`: wait for JetStream's publish ack.
    pub publish_timeout: Duration,
    /// `STOCKLEDGER_PUBLISH_GROUP_MAX`, default `64`: events one JetStream message may
    /// carry (group commit); `1` publishes every event alone.
    pub publish_group_max: usize,
    /// `STOCKLEDGER_PUBLISH_INFLIGHT_MAX`, default `4`: messages a process may have
    /// awaiting JetStream's ack at once; events arriving meanwhile wait and leave together.
    pub publish_inflight_max: usize,
    /// `STOCKLEDGER_MERCHANT`, default `default`: the merchant scope the ingress writes in
    /// every event's `merchant` (one ingress deployment per merchant on a marketplace).
    pub merchant: String,
    /// `STOCKLEDGER_RAW_RETENTION`, default `30d`: how long the raw stream keeps provider
    /// request bodies as received (evidence packs); `0` stores none.
    pub raw_retention: Duration,
}

/// The ledger database (every process).
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `STOCKLEDGER_DATABASE_URL`, default `sqlite://./data/stockledger.db`.
    pub url: String,
    /// `STOCKLEDGER_DB_POOL_MAX`, default `8`.
    pub pool_max: u32,
}

/// How a process logs and stops (every process).
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// `STOCKLEDGER_SHUTDOWN_GRACE`, default `10s`: time to finish in-flight work on stop.
    pub shutdown_grace: Duration,
    /// `STOCKLEDGER_LOG_FORMAT`, default `text`: `text` (one readable line per record) or
    /// `json` (one JSON object per line, with the current span's fields).
    pub log_format: LogFormat,
}

/// The ingress's HTTP edge: address, limits, the merchant API token, who may call what.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `STOCKLEDGER_HTTP_ADDR`, default `127.0.0.1:8080`.
    pub addr: String,
    /// `STOCKLEDGER_API_TOKEN`: the merchant API bearer token; no default.
    pub api_token: Option<Secret>,
    /// `STOCKLEDGER_OPERATOR_TOKEN`: the operators' web console (`/console/`) login token;
    /// unset, the console takes the merchant API token. No default.
    pub operator_token: Option<Secret>,
    /// `STOCKLEDGER_MAX_BODY_BYTES`, default `262144`.
    pub max_body_bytes: usize,
    /// `STOCKLEDGER_REQUEST_TIMEOUT`, default `10s`: the whole of one HTTP request.
    pub request_timeout: Duration,
    /// `STOCKLEDGER_HEADER_READ_TIMEOUT`, default `10s` (from `100ms` to `5m`): how long the
    /// ingress waits for a complete request head, counted from the connection's opening or
    /// from the end of the previous response; so it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// `STOCKLEDGER_MAX_CONNECTIONS`, default `1024` (`1` to [`MAX_CONNECTIONS_MAX`]): open
    /// HTTP connections the ingress keeps; it also stays below the open-file limit.
    pub max_connections: usize,
    /// `STOCKLEDGER_MAX_INFLIGHT_REQUESTS`, default `512` (`1` to
    /// [`MAX_INFLIGHT_REQUESTS_MAX`]): requests the ingress works on at once; more are
    /// answered 503 with `Retry-After` at once.
    pub max_inflight_requests: usize,
    /// `STOCKLEDGER_CONFIRMATION_DEADLINE`, default `8s`.
    pub confirmation_deadline: Duration,
    /// `STOCKLEDGER_TRUSTED_PROXIES`: comma-separated addresses or CIDRs; unset: none.
    pub trusted_proxies: Vec<String>,
    /// `STOCKLEDGER_PORTONE_ALLOWED_IPS`: comma-separated addresses or CIDRs; unset: any.
    pub portone_allowed_ips: Vec<String>,
    /// `STOCKLEDGER_IPINT_CALLBACKS_PER_SECOND`, default `20`: iPint callbacks one source
    /// address may make per second, sustained (`0`: no limit; decision 30).
    pub ipint_callbacks_per_second: u32,
    /// `STOCKLEDGER_IPINT_CALLBACKS_BURST`, default `200`: iPint callbacks one source may
    /// make at once before the rate applies.
    pub ipint_callbacks_burst: u32,
    /// `STOCKLEDGER_CONFIRMATIONS_PER_SECOND`, default `1000`: PortOne inventory
    /// confirmations one source address may make per second, sustained (`0`: no limit).
    pub confirmations_per_second: u32,
    /// `STOCKLEDGER_CONFIRMATIONS_BURST`, default `2000`: confirmations one source may make
    /// at once before the rate applies.
    pub confirmations_burst: u32,
}

/// The providers' webhook secrets, with which the ingress verifies what they send.
#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    /// `STOCKLEDGER_PORTONE_SECRET_KEY`: unset means the PortOne webhook answers 401.
    pub portone_secret_key: Option<Secret>,
    /// `STOCKLEDGER_PORTONE_KEY`: unset means any `portone_key` is accepted.
    pub portone_key: Option<Secret>,
    /// `STOCKLEDGER_STRIPE_WEBHOOK_SECRET`: comma-separated during rotation; unset: 401.
    pub stripe_webhook_secrets: Vec<Secret>,
    /// `STOCKLEDGER_ADYEN_HMAC_KEY`: hex; comma-separated during rotation; unset: 401.
    pub adyen_hmac_keys: Vec<Secret>,
    /// `STOCKLEDGER_ADYEN_BASIC_USER`: when set (with the password), Adyen notifications
    /// must carry these HTTP Basic credentials; unset: no Basic auth (the HMAC still applies).
    pub adyen_basic_user: Option<String>,
    /// `STOCKLEDGER_ADYEN_BASIC_PASSWORD`: the Basic-auth password for Adyen notifications.
    pub adyen_basic_password: Option<Secret>,
}

/// The callback verifiers: the providers' APIs they call back, and their bounds.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// `STOCKLEDGER_IPINT_API_URL`, default `https://api.ipint.io:8003`.
    pub ipint_api_url: String,
    /// `STOCKLEDGER_IPINT_API_KEY`.
    pub ipint_api_key: Option<Secret>,
    /// `STOCKLEDGER_IPINT_API_SECRET`.
    pub ipint_api_secret: Option<Secret>,
    /// `STOCKLEDGER_IPINT_TIMEOUT`, default `10s`: one `GET /invoice` call, connect to answer.
    pub ipint_timeout: Duration,
    /// `STOCKLEDGER_IPINT_VERIFY_ATTEMPTS`, default `100`: verifications of one callback
    /// (CHECKING, PROCESSING or an API failure each count) before it becomes an
    /// `unverifiable` exception.
    pub ipint_verify_attempts: i64,
    /// `STOCKLEDGER_IPINT_VERIFY_BACKOFF_MAX`, default `10m`: the longest pause between two
    /// verifications (the pause doubles from 1 s up to this).
    pub ipint_verify_backoff_max: Duration,
    /// `STOCKLEDGER_STRIPE_API_URL`, default `https://api.stripe.com`: where partial Stripe
    /// events are completed (decision 30).
    pub stripe_api_url: String,
    /// `STOCKLEDGER_STRIPE_API_KEY`: a (restricted, read-only) Stripe secret key; unset:
    /// partial Stripe events become exceptions.
    pub stripe_api_key: Option<Secret>,
    /// `STOCKLEDGER_STRIPE_API_TIMEOUT`, default `10s`: one Stripe API call.
    pub stripe_api_timeout: Duration,
    /// `STOCKLEDGER_STRIPE_FETCH_ATTEMPTS`, default `20`: calls to complete one partial
    /// event (API failures each count; the pause doubles from 1 s to 10 min) before it
    /// becomes an `unverifiable` exception.
    pub stripe_fetch_attempts: i64,
}

/// The ledger consumer: batching, delivery limits, reservations.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// `STOCKLEDGER_FETCH_BATCH_MAX`, default `256`: events per ledger transaction.
    pub fetch_batch_max: usize,
    /// `STOCKLEDGER_BATCH_LINGER`, default `1ms`: how long the ledger waits for more
    /// messages after the first of a batch before applying it (never longer; `0ms` applies
    /// what is already there).
    pub batch_linger: Duration,
    /// `STOCKLEDGER_ACK_WAIT`, default `10s` (`bus::DEFAULT_ACK_WAIT`).
    pub ack_wait: Duration,
    /// `STOCKLEDGER_MAX_DELIVER`, default `100`.
    pub max_deliver: i64,
    /// `STOCKLEDGER_MAX_ACK_PENDING`, default `4096`.
    pub max_ack_pending: i64,
    /// `STOCKLEDGER_RESERVATION_TTL`, default the providers' documented authorization
    /// windows ([`domain::ReservationTtls::documented`]): `7d` (every provider),
    /// `stripe=7d,adyen:klarna=28d` (named ones; the rest keep their documented window), or
    /// both (`2h,stripe=7d`: the bare duration replaces every documented window).
    pub reservation_ttls: domain::ReservationTtls,
    /// `STOCKLEDGER_UNKNOWN_ORDER_HOLD`, default `10m`.
    pub unknown_order_hold: Duration,
    /// `STOCKLEDGER_STOCK_POLICY`, default `reserve_on_authorization`: when payments move
    /// stock, for every provider or per provider (`deduct_on_capture`,
    /// `stripe=deduct_on_capture,adyen=reserve_on_authorization`). The ledger puts it in
    /// force at start with a `policy.changed` when it differs from the ledger's.
    pub stock_policy: domain::PolicySet,
    /// `STOCKLEDGER_SWEEP_INTERVAL`, default `30s`: how often expired reservations are sought.
    pub sweep_interval: Duration,
    /// `STOCKLEDGER_SWEEP_BATCH_MAX`, default `500`: expiries published per sweep.
    pub sweep_batch_max: usize,
    /// `STOCKLEDGER_LEDGER_METRICS_ADDR`, default `127.0.0.1:9465`: where the ledger serves
    /// `GET /metrics`, `/healthz` and `/readyz`; `off` disables it.
    pub metrics_addr: Option<String>,
}

/// The exception consumer.
#[derive(Debug, Clone)]
pub struct ExceptionsConfig {
    /// `STOCKLEDGER_EXCEPTIONS_METRICS_ADDR`, default `127.0.0.1:9464`: where the exception
    /// consumer serves `GET /metrics`; `off` disables it.
    pub metrics_addr: Option<String>,
    /// `STOCKLEDGER_EXCEPTIONS_SWEEP_INTERVAL`, default `5s`: how often the exception
    /// consumer resolves dead letters whose event got a final outcome.
    pub sweep_interval: Duration,
    /// `STOCKLEDGER_DLQ_MAX_AGE`, default `90d`: how long JetStream keeps dead letters and
    /// captured advisories (the exception queue keeps its copy of every payload forever).
    pub dlq_max_age: Duration,
}

/// The daily reconciliation (`docs/operations.md`, "Reconciliation").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// `STOCKLEDGER_RECONCILE_AT`, UTC `HH:MM`, unset by default: when the ledger runs the
    /// previous day's reconciliation each day (unset: no scheduled run). Minutes after
    /// midnight.
    pub at_minute: Option<u32>,
    /// `STOCKLEDGER_RECONCILE_REPORTS_DIR`, unset by default: where the scheduled run finds
    /// the providers' reports, one file `<provider>-<YYYY-MM-DD>.csv` per provider and day.
    pub reports_dir: Option<std::path::PathBuf>,
    /// `STOCKLEDGER_RECONCILE_SETTLEMENT_LAG`, default
    /// `stripe=2bd,adyen=2bd,portone=1bd,ipint=1bd`: business days (Monday to Friday) a
    /// capture may take to appear in its provider's report before it is unmatched.
    pub settlement_lag: Vec<(String, u32)>,
    /// `STOCKLEDGER_RECONCILE_TOLERANCE`, default empty (exact): per provider
    /// `PROVIDER=AMOUNT[/WINDOW]`, e.g. `adyen=0.05/10m`: the largest amount difference still
    /// matched, and how far outside the day a line's event may lie.
    pub tolerance: Vec<Tolerance>,
    /// `STOCKLEDGER_RECONCILE_CUTOFF`, UTC `HH:MM`, default `24:00` (end of day): events
    /// after it belong to the next day. In ms after midnight.
    pub cutoff_ms: i64,
}

/// One provider's matching tolerance (`STOCKLEDGER_RECONCILE_TOLERANCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tolerance {
    pub provider: String,
    /// An exact decimal, as written (`0.05`).
    pub amount: String,
    pub window: Duration,
}

/// The providers whose reports the reconciliation reads.
pub const RECONCILE_PROVIDERS: [&str; 4] = ["stripe", "adyen", "portone", "ipint"];
/// The longest settlement lag accepted, in business days.
pub const SETTLEMENT_LAG_MAX_DAYS: u32 = 30;

/// How a process writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per record.
    Text,
    /// One JSON object per line.
    Json,
}

/// Hard bounds on the limits: configuration outside them is refused at start.
pub const MAX_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
pub const FETCH_BATCH_MAX_MAX: usize = 4096;
pub const PUBLISH_GROUP_MAX_MAX: usize = 1024;
pub const PUBLISH_INFLIGHT_MAX_MAX: usize = 256;
/// Upper bound of `STOCKLEDGER_STREAM_REPLICAS`: JetStream's own limit on replicas.
pub const STREAM_REPLICAS_MAX: usize = 5;
/// The longest batch linger accepted: a linger is a latency every synchronous caller pays.
pub const BATCH_LINGER_MAX: Duration = Duration::from_millis(100);
/// Bounds of `STOCKLEDGER_HEADER_READ_TIMEOUT`: below the minimum no client could send a
/// head over a slow link; above the maximum an idle connection is held for too long.
pub const HEADER_READ_TIMEOUT_MIN: Duration = Duration::from_millis(100);
pub const HEADER_READ_TIMEOUT_MAX: Duration = Duration::from_secs(300);
pub const MAX_CONNECTIONS_MAX: usize = 1_000_000;
pub const MAX_INFLIGHT_REQUESTS_MAX: usize = 100_000;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads from a map (tests).
    pub fn from_map(map: &HashMap<String, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| map.get(k).cloned())
    }

    /// Reads with any lookup function.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let r = Reader { get: &get };
        let cfg = Config {
            nats: NatsConfig {
                url: r.string("STOCKLEDGER_NATS_URL", "nats://127.0.0.1:4222"),
                creds: r.optional("STOCKLEDGER_NATS_CREDS").map(Into::into),
                tls_ca: r.optional("STOCKLEDGER_NATS_TLS_CA").map(Into::into),
                stream_replicas: r.number(
                    "STOCKLEDGER_STREAM_REPLICAS",
                    1,
                    1,
                    STREAM_REPLICAS_MAX,
                )?,
                namespace: r.string("STOCKLEDGER_NATS_NAMESPACE", "stockledger"),
                publish_timeout: r.duration("STOCKLEDGER_PUBLISH_TIMEOUT", "3s")?,
                publish_group_max: r.number(
                    "STOCKLEDGER_PUBLISH_GROUP_MAX",
                    64,
                    1,
                    PUBLISH_GROUP_MAX_MAX,
                )?,
                publish_inflight_max: r.number(
                    "STOCKLEDGER_PUBLISH_INFLIGHT_MAX",
                    4,
                    1,
                    PUBLISH_INFLIGHT_MAX_MAX,
                )?,
                merchant: r.string("STOCKLEDGER_MERCHANT", "default"),
                raw_retention: r.retention("STOCKLEDGER_RAW_RETENTION", "30d")?,
            },
            database: DatabaseConfig {
                url: r.string("STOCKLEDGER_DATABASE_URL", "sqlite://./data/stockledger.db"),
                pool_max: r.number("STOCKLEDGER_DB_POOL_MAX", 8, 1, 1000)?,
            },
            process: ProcessConfig {
                shutdown_grace: r.duration("STOCKLEDGER_SHUTDOWN_GRACE", "10s")?,
                log_format: match r.string("STOCKLEDGER_LOG_FORMAT", "text").as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(ConfigError {
                            var: "STOCKLEDGER_LOG_FORMAT",
                            value: other.to_owned(),
                            message: "expected `text` or `json`".into(),
                        });
                    }
                },
            },
            http: HttpConfig {
                addr: r.string("STOCKLEDGER_HTTP_ADDR", "127.0.0.1:8080"),
                api_token: r.secret("STOCKLEDGER_API_TOKEN"),
                operator_token: r.secret("STOCKLEDGER_OPERATOR_TOKEN"),
                max_body_bytes: r.number(
                    "STOCKLEDGER_MAX_BODY_BYTES",
                    262_144,
                    1,
                    MAX_BODY_BYTES_MAX,
                )?,
                request_timeout: r.duration("STOCKLEDGER_REQUEST_TIMEOUT", "10s")?,
                header_read_timeout: r.duration_at_most(
                    "STOCKLEDGER_HEADER_READ_TIMEOUT",
                    "10s",
                    HEADER_READ_TIMEOUT_MAX,
                )?,
                max_connections: r.number(
                    "STOCKLEDGER_MAX_CONNECTIONS",
                    1024,
                    1,
                    MAX_CONNECTIONS_MAX,
                )?,
                max_inflight_requests: r.number(
                    "STOCKLEDGER_MAX_INFLIGHT_REQUESTS",
                    512,
                    1,
                    MAX_INFLIGHT_REQUESTS_MAX,
                )?,
                confirmation_deadline: r.duration("STOCKLEDGER_CONFIRMATION_DEADLINE", "8s")?,
                trusted_proxies: r.list("STOCKLEDGER_TRUSTED_PROXIES"),
                portone_allowed_ips: r.list("STOCKLEDGER_PORTONE_ALLOWED_IPS"),
                ipint_callbacks_per_second: r.number(
                    "STOCKLEDGER_IPINT_CALLBACKS_PER_SECOND",
                    20,
                    0,
                    1_000_000,
                )?,
                ipint_callbacks_burst: r.number(
                    "STOCKLEDGER_IPINT_CALLBACKS_BURST",
                    200,
                    1,
                    1_000_000,
                )?,
                confirmations_per_second: r.number(
                    "STOCKLEDGER_CONFIRMATIONS_PER_SECOND",
                    1000,
                    0,
                    1_000_000,
                )?,
                confirmations_burst: r.number(
                    "STOCKLEDGER_CONFIRMATIONS_BURST",
                    2000,
                    1,
                    1_000_000,
                )?,
            },
            providers: ProvidersConfig {
                portone_secret_key: r.secret("STOCKLEDGER_PORTONE_SECRET_KEY"),
                portone_key: r.secret("STOCKLEDGER_PORTONE_KEY"),
                stripe_webhook_secrets: r
                    .list("STOCKLEDGER_STRIPE_WEBHOOK_SECRET")
                    .into_iter()
                    .map(Secret)
                    .collect(),
                adyen_hmac_keys: r
                    .list("STOCKLEDGER_ADYEN_HMAC_KEY")
                    .into_iter()
                    .map(Secret)
                    .collect(),
                adyen_basic_user: r.optional("STOCKLEDGER_ADYEN_BASIC_USER"),
                adyen_basic_password: r.secret("STOCKLEDGER_ADYEN_BASIC_PASSWORD"),
            },
            verifier: VerifierConfig {
                ipint_api_url: r.string("STOCKLEDGER_IPINT_API_URL", "https://api.ipint.io:8003"),
                ipint_api_key: r.secret("STOCKLEDGER_IPINT_API_KEY"),
                ipint_api_secret: r.secret("STOCKLEDGER_IPINT_API_SECRET"),
                ipint_timeout: r.duration("STOCKLEDGER_IPINT_TIMEOUT", "10s")?,
                ipint_verify_attempts: r.number(
                    "STOCKLEDGER_IPINT_VERIFY_ATTEMPTS",
                    100,
                    1,
                    100_000,
                )?,
                ipint_verify_backoff_max: r
                    .duration("STOCKLEDGER_IPINT_VERIFY_BACKOFF_MAX", "10m")?,
                stripe_api_url: r.string("STOCKLEDGER_STRIPE_API_URL", "https://api.stripe.com"),
                stripe_api_key: r.secret("STOCKLEDGER_STRIPE_API_KEY"),
                stripe_api_timeout: r.duration("STOCKLEDGER_STRIPE_API_TIMEOUT", "10s")?,
                stripe_fetch_attempts: r.number(
                    "STOCKLEDGER_STRIPE_FETCH_ATTEMPTS",
                    20,
                    1,
                    100_000,
                )?,
            },
            ledger: LedgerConfig {
                fetch_batch_max: r.number(
                    "STOCKLEDGER_FETCH_BATCH_MAX",
                    256,
                    1,
                    FETCH_BATCH_MAX_MAX,
                )?,
                batch_linger: r.duration_at_most(
                    "STOCKLEDGER_BATCH_LINGER",
                    "1ms",
                    BATCH_LINGER_MAX,
                )?,
                ack_wait: r.duration("STOCKLEDGER_ACK_WAIT", "10s")?,
                max_deliver: r.number("STOCKLEDGER_MAX_DELIVER", 100, 2, 10_000)?,
                max_ack_pending: r.number("STOCKLEDGER_MAX_ACK_PENDING", 4096, 1, 1_000_000)?,
                reservation_ttls: r.reservation_ttls("STOCKLEDGER_RESERVATION_TTL")?,
                unknown_order_hold: r.duration("STOCKLEDGER_UNKNOWN_ORDER_HOLD", "10m")?,
                stock_policy: stock_policy(
                    &r.string("STOCKLEDGER_STOCK_POLICY", "reserve_on_authorization"),
                )?,
                sweep_interval: r.duration("STOCKLEDGER_SWEEP_INTERVAL", "30s")?,
                sweep_batch_max: r.number("STOCKLEDGER_SWEEP_BATCH_MAX", 500, 1, 100_000)?,
                metrics_addr: Some(r.string("STOCKLEDGER_LEDGER_METRICS_ADDR", "127.0.0.1:9465"))
                    .filter(|a| a != "off"),
            },
            exceptions: ExceptionsConfig {
                metrics_addr: Some(
                    r.string("STOCKLEDGER_EXCEPTIONS_METRICS_ADDR", "127.0.0.1:9464"),
                )
                .filter(|a| a != "off"),
                sweep_interval: r.duration("STOCKLEDGER_EXCEPTIONS_SWEEP_INTERVAL", "5s")?,
                dlq_max_age: r.duration("STOCKLEDGER_DLQ_MAX_AGE", "90d")?,
            },
            reconcile: ReconcileConfig {
                at_minute: match r.optional("STOCKLEDGER_RECONCILE_AT") {
                    None => None,
                    Some(v) => Some(clock_minute("STOCKLEDGER_RECONCILE_AT", &v, false)?),
                },
                reports_dir: r
                    .optional("STOCKLEDGER_RECONCILE_REPORTS_DIR")
                    .map(Into::into),
                settlement_lag: settlement_lag(&r.string(
                    "STOCKLEDGER_RECONCILE_SETTLEMENT_LAG",
                    "stripe=2bd,adyen=2bd,portone=1bd,ipint=1bd",
                ))?,
                tolerance: tolerance(&r.string("STOCKLEDGER_RECONCILE_TOLERANCE", ""))?,
                cutoff_ms: i64::from(clock_minute(
                    "STOCKLEDGER_RECONCILE_CUTOFF",
                    &r.string("STOCKLEDGER_RECONCILE_CUTOFF", "24:00"),
                    true,
                )?) * 60_000,
            },
        };
        if cfg.http.header_read_timeout < HEADER_READ_TIMEOUT_MIN {
            return Err(ConfigError {
                var: "STOCKLEDGER_HEADER_READ_TIMEOUT",
                value: r.string("STOCKLEDGER_HEADER_READ_TIMEOUT", "10s"),
                message: format!(
                    "expected at least {} ms",
                    HEADER_READ_TIMEOUT_MIN.as_millis()
                ),
            });
        }
        Ok(cfg)
    }
}

/// `HH:MM` as minutes after midnight; `24:00` only when `end_of_day` is allowed.
fn clock_minute(var: &'static str, value: &str, end_of_day: bool) -> Result<u32, ConfigError> {
    let bad = || ConfigError {
        var,
        value: value.to_owned(),
        message: if end_of_day {
            "expected a UTC time HH:MM from 00:01 to 24:00".into()
        } else {
            "expected a UTC time HH:MM from 00:00 to 23:59".into()
        },
    };
    let (h, m) = value.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    let minute = h * 60 + m;
    let ok = m < 60
        && if end_of_day {
            (1..=24 * 60).contains(&minute)
        } else {
            h < 24
        };
    if ok { Ok(minute) } else { Err(bad()) }
}

/// `PROVIDER=VALUE` pairs, each provider one of [`RECONCILE_PROVIDERS`], at most once.
fn provider_pairs(var: &'static str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |message: String| ConfigError {
            var,
            value: value.to_owned(),
            message,
        };
        let (p, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("expected PROVIDER=VALUE, got `{part}`")))?;
        let p = p.trim().to_ascii_lowercase();
        if !RECONCILE_PROVIDERS.contains(&p.as_str()) {
            return Err(bad(format!(
                "unknown provider `{p}` (expected one of {})",
                RECONCILE_PROVIDERS.join(", ")
            )));
        }
        if out.iter().any(|(q, _)| *q == p) {
            return Err(bad(format!("provider `{p}` given twice")));
        }
        out.push((p, v.trim().to_owned()));
    }
    Ok(out)
}

fn stock_policy(value: &str) -> Result<domain::PolicySet, ConfigError> {
    value
        .parse()
        .map_err(|e: domain::InvalidPolicy| ConfigError {
            var: "STOCKLEDGER_STOCK_POLICY",
            value: value.to_owned(),
            message: e.to_string(),
        })
}

fn settlement_lag(value: &str) -> Result<Vec<(String, u32)>, ConfigError> {
    const VAR: &str = "STOCKLEDGER_RECONCILE_SETTLEMENT_LAG";
    provider_pairs(VAR, value)?
        .into_iter()
        .map(|(p, v)| {
            let n = v.strip_suffix("bd").unwrap_or(&v);
            match n.parse::<u32>() {
                Ok(d) if d <= SETTLEMENT_LAG_MAX_DAYS => Ok((p, d)),
                _ => Err(ConfigError {
                    var: VAR,
                    value: value.to_owned(),
                    message: format!(
                        "expected business days such as 2bd (at most {SETTLEMENT_LAG_MAX_DAYS}), got `{v}`"
                    ),
                }),
            }
        })
        .collect()
}

fn tolerance(value: &str) -> Result<Vec<Tolerance>, ConfigError> {
    const VAR: &str = "STOCKLEDGER_RECONCILE_TOLERANCE";
    provider_pairs(VAR, value)?
        .into_iter()
        .map(|(provider, v)| {
            let bad = || ConfigError {
                var: VAR,
                value: value.to_owned(),
                message: format!(
                    "expected PROVIDER=AMOUNT[/WINDOW] such as adyen=0.05/10m, got `{v}`"
                ),
            };
            let (amount, window) = match v.split_once('/') {
                Some((a, w)) => (a.trim(), parse_duration(w).ok_or_else(bad)?),
                None => (v.as_str(), Duration::ZERO),
            };
            let mut parts = amount.splitn(2, '.');
            let whole = parts.next().unwrap_or_default();
            let frac = parts.next().unwrap_or("0");
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(whole) || !digits(frac) {
                return Err(bad());
            }
            Ok(Tolerance {
                provider,
                amount: amount.to_owned(),
                window,
            })
        })
        .collect()
}

struct Reader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    fn optional(&self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
    fn string(&self, var: &str, default: &str) -> String {
        self.optional(var).unwrap_or_else(|| default.to_owned())
    }
    fn secret(&self, var: &str) -> Option<Secret> {
        self.optional(var).map(Secret)
    }
    fn list(&self, var: &str) -> Vec<String> {
        self.optional(var)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
    fn duration(&self, var: &'static str, default: &str) -> Result<Duration, ConfigError> {
        let value = self.string(var, default);
        parse_duration(&value).ok_or_else(|| ConfigError {
            var,
            value,
            message: "expected a duration such as 500ms, 8s, 10m, 2h or 7d".into(),
        })
    }
    /// Reservation TTLs ([`parse_reservation_ttls`]); unset: the documented windows.
    fn reservation_ttls(&self, var: &'static str) -> Result<domain::ReservationTtls, ConfigError> {
        let value = self.string(var, "");
        if value.trim().is_empty() {
            return Ok(domain::ReservationTtls::documented());
        }
        parse_reservation_ttls(&value).map_err(|message| ConfigError {
            var,
            value,
            message,
        })
    }
    /// A duration where `0` alone means "none".
    fn retention(&self, var: &'static str, default: &str) -> Result<Duration, ConfigError> {
        if self.string(var, default).trim() == "0" {
            return Ok(Duration::ZERO);
        }
        self.duration(var, default)
    }
    fn duration_at_most(
        &self,
        var: &'static str,
        default: &str,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let d = self.duration(var, default)?;
        if d > max {
            return Err(ConfigError {
                var,
                value: self.string(var, default),
                message: format!("expected at most {} ms", max.as_millis()),
            });
        }
        Ok(d)
    }
    fn number<T>(&self, var: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(value) = self.optional(var) else {
            return Ok(default);
        };
        match value.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(ConfigError {
                var,
                value,
                message: format!("expected a whole number from {min} to {max}"),
            }),
        }
    }
}

/// Parses `500ms`, `8s`, `10m`, `2h`, `7d` (a whole number and a unit).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Reads a reservation-TTL list: comma-separated items, each `DURATION` (every provider
/// and method not named in the list: the documented windows are then not used at all),
/// `provider=DURATION`, or `provider:method=DURATION` (the method as the provider's event
/// names it, e.g. `adyen:klarna`). Without a bare duration, the documented windows
/// ([`domain::ReservationTtls::documented`]) stay for what the list does not name.
/// A TTL must be positive. The same text is accepted by `stockctl whatif --reservation-ttl`.
pub fn parse_reservation_ttls(s: &str) -> Result<domain::ReservationTtls, String> {
    const EXPECTED: &str =
        "expected e.g. \"7d\", \"stripe=7d,adyen:klarna=28d\" or \"2h,stripe=7d\"";
    let mut bare = None;
    let mut named = Vec::new();
    for item in s.split(',').map(str::trim) {
        let (key, value) = match item.split_once('=') {
            None => (None, item),
            Some((k, v)) => (Some(k.trim()), v.trim()),
        };
        let ttl = parse_duration(value)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{item:?} is not a positive duration; {EXPECTED}"))?;
        match key {
            None if bare.replace(ttl).is_some() => {
                return Err(format!("two bare durations; {EXPECTED}"));
            }
            None => {}
            Some(key) => {
                let (provider, method) = match key.split_once(':') {
                    None => (key, None),
                    Some((p, m)) if !m.trim().is_empty() => (p, Some(m.trim().to_owned())),
                    Some(_) => return Err(format!("{item:?} names an empty method; {EXPECTED}")),
                };
                let provider = domain::Provider::parse(provider.trim())
                    .map_err(|e| format!("{item:?}: {e}; {EXPECTED}"))?;
                named.push((provider, method, ttl));
            }
        }
    }
    let mut ttls = match bare {
        Some(ttl) => domain::ReservationTtls::uniform(ttl),
        None => domain::ReservationTtls::documented(),
    };
    for (provider, method, ttl) in named {
        match method {
            None => {
                ttls.providers.insert(provider, ttl);
            }
            Some(m) => {
                ttls.methods.insert((provider, m), ttl);
            }
        }
    }
    Ok(ttls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_ttl_lists() {
        let day = Duration::from_secs(86_400);
        let stripe = domain::Provider::parse("stripe").unwrap();
        let adyen = domain::Provider::parse("adyen").unwrap();
        // Named entries keep the documented windows for the rest.
        let t = parse_reservation_ttls("stripe=3d, adyen:klarna=10d").unwrap();
        assert_eq!(t.ttl(&stripe, Some("card")), 3 * day);
        assert_eq!(t.ttl(&adyen, Some("klarna")), 10 * day);
        assert_eq!(t.ttl(&adyen, Some("klarna_account")), 28 * day);
        // A bare duration replaces every documented window.
        let t = parse_reservation_ttls("2h,stripe=7d").unwrap();
        assert_eq!(t.ttl(&adyen, Some("klarna")), Duration::from_secs(7200));
        assert_eq!(t.ttl(&stripe, None), 7 * day);
        for bad in [
            "",
            "0s",
            "7",
            "stripe=",
            "stripe:=1d",
            "1d,2d",
            "=1d",
            "stripe=soon",
        ] {
            assert!(parse_reservation_ttls(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let c = Config::from_map(&HashMap::new()).unwrap();
        assert_eq!(c.http.addr, "127.0.0.1:8080");
        assert_eq!(
            c.ledger.reservation_ttls,
            domain::ReservationTtls::documented()
        );
        assert_eq!(c.ledger.unknown_order_hold, Duration::from_secs(600));
        assert_eq!(c.ledger.stock_policy, domain::PolicySet::default());
        assert_eq!(c.http.confirmation_deadline, Duration::from_secs(8));
        assert_eq!(c.http.max_body_bytes, 262_144);
        assert!(c.http.api_token.is_none());
        assert_eq!(c.nats.merchant, "default");
        assert_eq!(c.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.http.max_connections, 1024);
        assert_eq!(c.http.max_inflight_requests, 512);
        assert_eq!(c.nats.stream_replicas, 1);
        assert!(c.nats.creds.is_none() && c.nats.tls_ca.is_none());
    }

    #[test]
    fn the_reconciliation_settings_are_read_and_bounded() {
        let c = Config::from_map(&HashMap::new()).unwrap();
        assert_eq!(c.reconcile.at_minute, None);
        assert_eq!(c.reconcile.cutoff_ms, 86_400_000);
        assert_eq!(c.reconcile.settlement_lag[0], ("stripe".to_owned(), 2));
        assert!(c.reconcile.tolerance.is_empty());
        let map = HashMap::from([
            ("STOCKLEDGER_RECONCILE_AT".to_owned(), "02:30".to_owned()),
            (
                "STOCKLEDGER_RECONCILE_CUTOFF".to_owned(),
                "22:00".to_owned(),
            ),
            (
                "STOCKLEDGER_RECONCILE_TOLERANCE".to_owned(),
                "adyen=0.05/10m, stripe=0".to_owned(),
            ),
            (
                "STOCKLEDGER_RECONCILE_SETTLEMENT_LAG".to_owned(),
                "stripe=3bd".to_owned(),
            ),
        ]);
        let c = Config::from_map(&map).unwrap();
        assert_eq!(c.reconcile.at_minute, Some(150));
        assert_eq!(c.reconcile.cutoff_ms, 22 * 3_600_000);
        assert_eq!(c.reconcile.tolerance[0].amount, "0.05");
        assert_eq!(c.reconcile.tolerance[0].window, Duration::from_secs(600));
        assert_eq!(c.reconcile.settlement_lag, vec![("stripe".to_owned(), 3)]);
        for (var, value) in [
            ("STOCKLEDGER_RECONCILE_AT", "24:00"),
            ("STOCKLEDGER_RECONCILE_AT", "7"),
            ("STOCKLEDGER_RECONCILE_CUTOFF", "00:00"),
            ("STOCKLEDGER_RECONCILE_TOLERANCE", "paypal=1"),
            ("STOCKLEDGER_RECONCILE_TOLERANCE", "adyen=-1"),
            ("STOCKLEDGER_RECONCILE_SETTLEMENT_LAG", "stripe=two"),
        ] {
            let map = HashMap::from([(var.to_owned(), value.to_owned())]);
            assert_eq!(Config::from_map(&map).unwrap_err().var, var, "{value}");
        }
    }

    #[test]
    fn connection_limits_are_bounded() {
        for (var, value) in [
            ("STOCKLEDGER_HEADER_READ_TIMEOUT", "0ms"),
            ("STOCKLEDGER_HEADER_READ_TIMEOUT", "1h"),
            ("STOCKLEDGER_MAX_CONNECTIONS", "0"),
            ("STOCKLEDGER_MAX_INFLIGHT_REQUESTS", "0"),
        ] {
            let map = HashMap::from([(var.to_owned(), value.to_owned())]);
            assert_eq!(
                Config::from_map(&map).unwrap_err().var,
                var,
                "{var}={value}"
            );
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let map = HashMap::from([("STOCKLEDGER_RESERVATION_TTL".to_owned(), "soon".to_owned())]);
        let e = Config::from_map(&map).unwrap_err();
        assert_eq!(e.var, "STOCKLEDGER_RESERVATION_TTL");
        let map = HashMap::from([("STOCKLEDGER_MAX_BODY_BYTES".to_owned(), "0".to_owned())]);
        assert_eq!(
            Config::from_map(&map).unwrap_err().var,
            "STOCKLEDGER_MAX_BODY_BYTES"
        );
    }

    #[test]
    fn the_stock_policy_parses_per_provider_and_a_bad_one_names_its_variable() {
        let map = HashMap::from([(
            "STOCKLEDGER_STOCK_POLICY".to_owned(),
            "stripe=deduct_on_capture, adyen=reserve_on_authorization".to_owned(),
        )]);
        let c = Config::from_map(&map).unwrap();
        assert_eq!(
            c.ledger.stock_policy.to_string(),
            "reserve_on_authorization,stripe=deduct_on_capture"
        );
        let map = HashMap::from([(
            "STOCKLEDGER_STOCK_POLICY".to_owned(),
            "deduct_on_delivery".to_owned(),
        )]);
        let e = Config::from_map(&map).unwrap_err();
        assert_eq!(e.var, "STOCKLEDGER_STOCK_POLICY");
        assert!(e.message.contains("deduct_on_capture"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let map = HashMap::from([
            ("STOCKLEDGER_API_TOKEN".to_owned(), "tok-123".to_owned()),
            ("STOCKLEDGER_OPERATOR_TOKEN".to_owned(), "op-456".to_owned()),
        ]);
        let c = Config::from_map(&map).unwrap();
        assert!(!format!("{c:?}").contains("tok-123"));
        assert!(!format!("{c:?}").contains("op-456"));
        assert_eq!(
            c.http.operator_token.as_ref().map(Secret::expose),
            Some("op-456")
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
