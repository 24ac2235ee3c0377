//! # bus: stockledger on NATS JetStream
//!
//! The only crate that knows async-nats. It names every stream and subject
//! ([`subjects`]), creates streams and consumers idempotently at start, and publishes with
//! `Nats-Msg-Id` set to the event id and the publish acknowledgement awaited within a
//! bound. A publish that is not acknowledged in time is an error the caller turns into a
//! 503 (ingress) or a retry (sweeper): "accepted" always means "durably in JetStream".

pub mod callbacks;
pub mod dlq;
pub mod group;
pub mod progress;
pub mod provision;
pub mod raw;
pub mod read;
pub mod retry;
pub mod settle;
pub mod stock;
pub mod subjects;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

use domain::{OutcomeKind, ReasonCode};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;

pub use async_nats::jetstream::consumer::PullConsumer;
pub use async_nats::jetstream::{AckKind, Message};
pub use async_nats::{Client, Subscriber};
pub use group::{GROUP_HEADER, GroupSettings, event_count, split};
pub use settle::{Disposition, settle};
pub use subjects::{IPINT_VERIFIER_CONSUMER, LEDGER_CONSUMER, Namespace};

/// The most callbacks waiting in the callbacks stream (decision 30); beyond it new ones
/// are refused (`discard: new`), never an accepted one dropped.
pub const CALLBACKS_MAX_MSGS: i64 = 100_000;
/// The most bytes the callbacks stream holds (64 MiB).
pub const CALLBACKS_MAX_BYTES: i64 = 64 * 1024 * 1024;
/// How long a callback may wait in the callbacks stream: far beyond every worker's retry
/// bound, so only a callback no worker ever took is dropped by age.
pub const CALLBACKS_MAX_AGE: Duration = Duration::from_secs(3 * 24 * 3600);
/// The largest callback message (a trigger, or a partial Stripe event with its body).
pub const CALLBACKS_MAX_MSG_BYTES: i32 = 1024 * 1024;

/// The header that marks a message re-published by an operator to retry an exception.
pub const OPERATOR_RETRY_HEADER: &str = "Stockledger-Operator-Retry";

/// The underlying error of a [`BusError`]: async-nats's own error (or a sentence where
/// there is none, such as a timeout of ours). Shared rather than boxed so that one
/// publish failure can answer every event of its group ([`group`]).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Errors callers branch on. Each keeps the error it came from as its
/// [`source`](std::error::Error::source); [`BusError::is_transient`] is the one place that
/// says whether trying again may help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// NATS did not answer in time or is not connected: nothing was accepted; retry later.
    #[error("NATS unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// NATS answered no (stream missing, payload too large, bad configuration).
    #[error("NATS refused: {0}")]
    Refused(#[source] Cause),
}

impl BusError {
    /// [`BusError::Unavailable`] from an error (or a sentence).
    pub fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        BusError::Unavailable(Arc::from(e.into()))
    }

    /// [`BusError::Refused`] from an error (or a sentence).
    pub fn refused(e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        BusError::Refused(Arc::from(e.into()))
    }

    /// True when trying again later may succeed without changing anything (NATS down,
    /// slow, or its stream full): the ingress answers 503, the ledger naks with a delay.
    /// A refusal fails the same way every time: 500, or a dead letter.
    pub fn is_transient(&self) -> bool {
        match self {
            BusError::Unavailable(_) => true,
            BusError::Refused(_) => false,
        }
    }
}

/// An error with what was being done when it happened (the stream's name, …), keeping
/// the error as its source.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct InContext {
    context: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl InContext {
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        InContext {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Connection and publishing settings, each with a documented default.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `STOCKLEDGER_NATS_URL`: one URL or several, comma-separated (a cluster's nodes).
    pub url: String,
    /// `STOCKLEDGER_NATS_CREDS`: a credentials file to authenticate with.
    pub creds: Option<std::path::PathBuf>,
    /// `STOCKLEDGER_NATS_TLS_CA`: the CA bundle the servers' certificates are checked
    /// against; when set, TLS is required.
    pub tls_ca: Option<std::path::PathBuf>,
    /// `STOCKLEDGER_STREAM_REPLICAS`: replicas of every stream and durable consumer
    /// created or updated ([`provision`]).
    pub replicas: usize,
    /// `STOCKLEDGER_NATS_NAMESPACE`: prefix of every stream and subject.
    pub namespace: Namespace,
    /// `STOCKLEDGER_PUBLISH_TIMEOUT`: how long a publish waits for JetStream's ack.
    pub publish_timeout: Duration,
    /// JetStream's `Nats-Msg-Id` window (a fixed default, not configurable: the ledger
    /// deduplicates by event id forever; this window only saves work).
    pub duplicate_window: Duration,
    /// How long the first connection attempt may take.
    pub connect_timeout: Duration,
    /// Group commit of event publishes ([`group`]).
    pub group: GroupSettings,
    /// `STOCKLEDGER_RAW_RETENTION`: how long the raw stream keeps provider bodies
    /// ([`raw`]); zero stores none.
    pub raw_retention: Duration,
    /// When true, [`Bus::connect`] returns at once even if NATS cannot be reached, and the
    /// client keeps connecting in the background ([`Bus::is_connected`] says when it is);
    /// the long-running roles use this so that they start before NATS (issue 16). When
    /// false (tools such as `stockctl`), an unreachable NATS is an error at once.
    pub retry_initial_connect: bool,
}

impl BusConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            creds: None,
            tls_ca: None,
            replicas: 1,
            namespace: Namespace::default(),
            publish_timeout: Duration::from_secs(3),
            duplicate_window: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(5),
            group: GroupSettings::default(),
            raw_retention: raw::DEFAULT_RAW_RETENTION,
            retry_initial_connect: false,
        }
    }
}

/// Credentials found in a NATS URL's user-info part (`nats://user:password@host` or
/// `nats://token@host`).
#[derive(Clone, PartialEq, Eq)]
enum UrlCredentials {
    UserPassword(String, String),
    Token(String),
}

/// Splits the credentials out of a NATS URL (or a comma-separated list of them): the URLs
/// without any user-info, and the first credentials found. The client is then given the
/// credentials as options, never inside the URL, because async-nats prints its server
/// addresses (URL included) in its own logs and errors.
fn split_credentials(urls: &str) -> (String, Option<UrlCredentials>) {
    let mut found = None;
    let stripped: Vec<String> = urls
        .split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = match url.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, url),
            };
            // The user-info ends at the last `@` before the path.
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    if found.is_none() && !userinfo.is_empty() {
                        found = Some(match userinfo.split_once(':') {
                            Some((user, password)) => {
                                UrlCredentials::UserPassword(user.to_owned(), password.to_owned())
                            }
                            None => UrlCredentials::Token(userinfo.to_owned()),
                        });
                    }
                    host
                }
                None => authority,
            };
            match scheme {
                Some(scheme) => format!("{scheme}://{host}{path}"),
                None => format!("{host}{path}"),
            }
        })
        .collect();
    (stripped.join(","), found)
}

/// A NATS URL fit for a log line: any user-info is replaced by `***`.
pub fn redact_url(urls: &str) -> String {
    let (stripped, credentials) = split_credentials(urls);
    match credentials {
        None => stripped,
        Some(_) => stripped
            .split(',')
            .map(|u| match u.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://***@{host}"),
                None => format!("***@{u}"),
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// `STOCKLEDGER_ACK_WAIT`'s default: how long a message a crashed ledger held waits before
/// another ledger gets it. Far above a batch's apply time (milliseconds; `ledger_apply_seconds`
/// alerts long before), short enough that a ledger's crash delays stock by seconds.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(10);

/// Limits of the ledger's durable consumer.
#[derive(Debug, Clone)]
pub struct ConsumerLimits {
    /// `STOCKLEDGER_ACK_WAIT`: how long a delivered message may stay unacknowledged.
    pub ack_wait: Duration,
    /// `STOCKLEDGER_MAX_DELIVER`: deliveries before JetStream gives up on a message (it
    /// then goes to the dead-letter stream). Deferred events (unknown order) use deliveries
    /// too, so this is sized for the unknown-order hold.
    pub max_deliver: i64,
    /// Redelivery delays after an ack timeout (a crashed or stuck consumer); empty by
    /// default, and the ledger keeps it empty. nats-server treats a list
    /// here as more than that: the first entry replaces `ack_wait`, and a nak *with a
    /// delay* is redelivered after that delay **plus** `backoff[n] - backoff[0]` for the
    /// n-th redelivery, so with `[5s, 30s, 60s]` an event deferred for 1 s came back after
    /// 26 s. A consumer that settles with [`Disposition::Later`] (every consumer here) names
    /// its own delays and must not set one.
    pub backoff: Vec<Duration>,
    /// `STOCKLEDGER_MAX_ACK_PENDING`: messages in flight across all ledger processes.
    pub max_ack_pending: i64,
}

impl Default for ConsumerLimits {
    fn default() -> Self {
        Self {
            ack_wait: DEFAULT_ACK_WAIT,
            max_deliver: 100,
            backoff: Vec::new(),
            max_ack_pending: 4096,
        }
    }
}

/// What JetStream said about a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The stream sequence of the message (the original one for a duplicate).
    pub stream_seq: u64,
    /// True when JetStream had already stored a message with this id.
    pub duplicate: bool,
}

/// A connection to NATS with JetStream, scoped to one namespace.
#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    config: BusConfig,
    /// The group-commit publisher, when grouping is on.
    grouper: Option<group::Grouper>,
}

impl Bus {
    /// Connects. Fails if NATS cannot be reached within the connect timeout, unless
    /// [`BusConfig::retry_initial_connect`] is set: then it returns at once and the client
    /// keeps trying in the background. Credentials in the URL are handed to the client as
    /// options, so no log or error of the client can show them.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let (url, credentials) = split_credentials(&config.url);
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            .event_callback(
                |ev| async move { tracing::info!(event = %ev, "nats connection event") },
            );
        options = match credentials.clone() {
            Some(UrlCredentials::UserPassword(user, password)) => {
                options.user_and_password(user, password)
            }
            Some(UrlCredentials::Token(token)) => options.token(token),
            None => options,
        };
        if let Some(path) = &config.creds {
            options = options.credentials_file(path).await.map_err(|e| {
                BusError::refused(InContext::new(
                    format!("reading STOCKLEDGER_NATS_CREDS {}", path.display()),
                    e,
                ))
            })?;
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if config.retry_initial_connect {
            options = options.retry_on_initial_connect();
        }
        // Several URLs (a cluster's nodes) are several server addresses: the client picks
        // one and fails over to the others (and to those the cluster announces).
        let servers: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let client = options.connect(servers).await.map_err(|e| {
            // The URL given to the client has no credentials; scrub the message anyway.
            let mut message = e.to_string();
            if let Some(UrlCredentials::UserPassword(_, secret) | UrlCredentials::Token(secret)) =
                &credentials
                && !secret.is_empty()
            {
                message = message.replace(secret.as_str(), "***");
            }
            // The scrubbed text replaces the source: the client's error may hold the secret.
            BusError::unavailable(message)
        })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            .build(client.clone());
        let grouper = config
            .group
            .enabled()
            .then(|| group::Grouper::start(js.clone(), config.group, config.publish_timeout));
        Ok(Bus {
            client,
            js,
            config,
            grouper,
        })
    }

    /// The core NATS client (decision announcements are plain publish/subscribe).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// True while the client holds a live connection to NATS (`/readyz`, and publishers
    /// that must fail fast rather than have a message buffered and sent after a reconnect,
    /// long after the caller was told "unavailable").
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// How long a publish waits for JetStream's ack.
    pub fn publish_timeout(&self) -> std::time::Duration {
        self.config.publish_timeout
    }

    /// The namespace of every name this bus uses.
    pub fn namespace(&self) -> &Namespace {
        &self.config.namespace
    }

    /// The JetStream context, for the few tools that manage streams directly.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Creates the events stream and the callbacks stream if missing, or updates them to
    /// this release's settings. Safe to call from every process at every start.
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        let ns = &self.config.namespace;
        let config = stream::Config {
            name: ns.events_stream(),
            subjects: vec![ns.events_wildcard()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            duplicate_window: self.config.duplicate_window,
            allow_direct: true,
            ..Default::default()
        };
        self.put_stream(config, provision::Existing::Update).await?;
        self.ensure_callback_stream().await
    }

    /// What the ingress provisions: [`Bus::ensure_streams`] and the raw stream ([`raw`]),
    /// whose retention only the ingress's `STOCKLEDGER_RAW_RETENTION` sets (the other
    /// roles never touch it, so their setting cannot undo the ingress's).
    pub async fn ensure_ingress_streams(&self) -> Result<(), BusError> {
        self.ensure_streams().await?;
        self.ensure_raw_stream().await
    }

    /// Creates the callbacks stream if missing, or updates it to this release's limits (a
    /// work queue: a callback is removed once a worker acknowledged it). It is bounded
    /// ([`CALLBACKS_MAX_MSGS`], [`CALLBACKS_MAX_BYTES`], [`CALLBACKS_MAX_AGE`]) with
    /// `discard: new`: when full, a new callback is refused (the endpoint answers 503 and
    /// the provider retries later), so an accepted callback is never pushed out by a flood;
    /// only one older than the age limit is dropped. Safe to call from every process at
    /// every start: the limits are constants, so every process sets the same ones.
    pub async fn ensure_callback_stream(&self) -> Result<(), BusError> {
        let ns = &self.config.namespace;
        let config = stream::Config {
            name: ns.callbacks_stream(),
            subjects: vec![ns.callbacks_wildcard()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::WorkQueue,
            duplicate_window: self.config.duplicate_window,
            max_messages: CALLBACKS_MAX_MSGS,
            max_bytes: CALLBACKS_MAX_BYTES,
            max_age: CALLBACKS_MAX_AGE,
            max_message_size: CALLBACKS_MAX_MSG_BYTES,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        self.put_stream(config, provision::Existing::Update).await
    }

    /// Publishes one callback to the callbacks stream, alone (never grouped: a worker
    /// settles each callback by itself, ack or nak with a delay), and waits for the ack.
    /// A refusal (the stream is full: `discard: new`) is reported as unavailable, since the
    /// sender should retry later.
    pub async fn publish_callback(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<Published, BusError> {
        match self
            .publish_event(subject, msg_id, payload, Some(HeaderMap::new()))
            .await
        {
            Err(BusError::Refused(m)) => Err(BusError::unavailable(InContext::new(
                "the callbacks stream refused the callback (full?)",
                m,
            ))),
            other => other,
        }
    }

    /// A durable pull consumer named `durable` on the callbacks of `provider`, created or
    /// updated. `max_deliver` -1 means unbounded: the worker bounds its own retries.
    pub async fn callback_consumer(
        &self,
        durable: &str,
        provider: &str,
        limits: &ConsumerLimits,
    ) -> Result<PullConsumer, BusError> {
        let ns = &self.config.namespace;
        let config = consumer::pull::Config {
            durable_name: Some(durable.to_owned()),
            filter_subject: ns.callback_subject(provider),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: limits.ack_wait,
            max_deliver: limits.max_deliver,
            backoff: limits.backoff.clone(),
            max_ack_pending: limits.max_ack_pending,
            ..Default::default()
        };
        self.put_consumer(ns.callbacks_stream(), config).await
    }

    /// Publishes one event with `Nats-Msg-Id = msg_id` and waits for JetStream's ack,
    /// at most the publish timeout. Only an `Ok` means the event is durably stored. With
    /// group commit on and no extra headers, the event may share its message with others
    /// of the same subject ([`group`]); the answer is still this event's.
    pub async fn publish_event(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        extra: Option<HeaderMap>,
    ) -> Result<Published, BusError> {
        self.publish(subject, msg_id, payload, extra, None).await
    }

    /// [`Bus::publish_event`] for an event caused by a traced request: the event travels
    /// with its `traceparent` (`trace`), so the ledger logs it under the same trace id.
    pub async fn publish_event_traced(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        trace: Option<&trace::TraceContext>,
    ) -> Result<Published, BusError> {
        self.publish(subject, msg_id, payload, None, trace).await
    }

    async fn publish(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        extra: Option<HeaderMap>,
        trace: Option<&trace::TraceContext>,
    ) -> Result<Published, BusError> {
        // Fail fast while disconnected: the client would otherwise buffer the message and
        // send it after a reconnect, long after the caller was told "unavailable".
        if !self.is_connected() {
            return Err(BusError::unavailable("not connected to NATS"));
        }
        if let (Some(grouper), None) = (&self.grouper, &extra) {
            return match tokio::time::timeout(
                self.config.publish_timeout,
                grouper.publish(subject, msg_id, payload, trace),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(BusError::unavailable("publish not acknowledged in time")),
            };
        }
        let mut msg = jetstream::message::PublishMessage::build().payload(payload);
        let mut headers = extra.unwrap_or_default();
        if let Some(t) = trace {
            headers.insert(trace::TRACEPARENT, t.to_string().as_str());
        }
        if !headers.is_empty() {
            msg = msg.headers(headers);
        }
        let msg = msg.message_id(msg_id);
        let publish = async {
            let ack = self.js.send_publish(subject, msg).await?;
            ack.await
        };
        match tokio::time::timeout(self.config.publish_timeout, publish).await {
            Err(_) => Err(BusError::unavailable("publish not acknowledged in time")),
            Ok(Err(e)) => Err(classify_publish(e)),
            Ok(Ok(ack)) => Ok(Published {
                stream_seq: ack.sequence,
                duplicate: ack.duplicate,
            }),
        }
    }

    /// The ledger's durable pull consumer on the events stream, created or updated.
    pub async fn ledger_consumer(&self, limits: &ConsumerLimits) -> Result<PullConsumer, BusError> {
        let ns = &self.config.namespace;
        let config = consumer::pull::Config {
            durable_name: Some(LEDGER_CONSUMER.to_owned()),
            filter_subject: ns.events_wildcard(),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: limits.ack_wait,
            max_deliver: limits.max_deliver,
            backoff: limits.backoff.clone(),
            max_ack_pending: limits.max_ack_pending,
            ..Default::default()
        };
        self.put_consumer(ns.events_stream(), config).await
    }

    /// Announces a decision on core NATS (not stored: waiters that miss it read the ledger).
    pub async fn announce(&self, subject: String, payload: Bytes) -> Result<(), BusError> {
        self.client
            .publish(subject, payload)
            .await
            .map_err(BusError::unavailable)
    }

    /// Subscribes to a core NATS subject (decision announcements).
    pub async fn subscribe(&self, subject: String) -> Result<async_nats::Subscriber, BusError> {
        self.client
            .subscribe(subject)
            .await
            .map_err(BusError::unavailable)
    }

    /// Waits until everything published on this connection has reached the server.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(BusError::unavailable)
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let (url, c) = split_credentials("nats://alice:s3cret@127.0.0.1:4222");
        assert_eq!(url, "nats://127.0.0.1:4222");
        assert!(
            c == Some(UrlCredentials::UserPassword(
                "alice".into(),
                "s3cret".into()
            ))
        );
        let (url, c) = split_credentials("tls://tok@a:1, nats://b:2");
        assert_eq!(url, "tls://a:1,nats://b:2");
        assert!(c == Some(UrlCredentials::Token("tok".into())));
        let (url, c) = split_credentials("127.0.0.1:4222");
        assert_eq!(url, "127.0.0.1:4222");
        assert!(c.is_none());
        assert_eq!(
            redact_url("nats://alice:s3cret@h:1"),
            "nats://***@h:1".to_owned()
        );
        assert_eq!(redact_url("nats://h:1"), "nats://h:1".to_owned());
    }
}

pub(crate) fn classify_publish(e: jetstream::context::PublishError) -> BusError {
    use jetstream::ErrorCode as C;
    use jetstream::context::PublishErrorKind as K;
    match e.kind() {
        // No responders: no server holds the stream's leader right now. On a cluster that
        // is a node restarting or a leader being elected; the streams are provisioned
        // before any role is ready, so it passes.
        K::TimedOut | K::BrokenPipe | K::MaxAckPending | K::StreamNotFound => {
            BusError::unavailable(e)
        }
        K::Other => {
            let code = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<jetstream::Error>())
                .map(jetstream::Error::error_code);
            match code {
                // JetStream answered no for a reason that holds until something changes.
                Some(c)
                    if ![
                        C::CLUSTER_NOT_AVAILABLE,
                        C::CLUSTER_NOT_ACTIVE,
                        C::CLUSTER_NOT_LEADER,
                        C::CLUSTER_NOT_ASSIGNED,
                        C::CLUSTER_INCOMPLETE,
                        C::CLUSTER_NO_PEERS,
                    ]
                    .contains(&c) =>
                {
                    BusError::refused(e)
                }
                // The cluster is between leaders, or the answer never came whole.
                _ => BusError::unavailable(e),
            }
        }
        _ => BusError::refused(e),
    }
}

/// True when the message was re-published by an operator to retry its exception.
pub fn is_operator_retry(msg: &Message) -> bool {
    has_operator_retry(msg.headers.as_ref())
}

/// [`is_operator_retry`] for a message read back from the stream (replay, rebuild).
pub fn has_operator_retry(headers: Option<&async_nats::HeaderMap>) -> bool {
    headers.and_then(|h| h.get(OPERATOR_RETRY_HEADER)).is_some()
}

/// A JetStream time as Unix milliseconds.
pub fn unix_ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What the ledger announces on [`Namespace::decision_subject`] after committing the
/// outcome of an event, so that a synchronous caller (PortOne's inventory confirmation, the
/// merchant API) can answer without polling the database. Not stored: a waiter subscribes
/// before publishing, and reads the ledger once if the announcement may have been missed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecisionNotice {
    /// The event id (UUID text).
    pub event_id: String,
    /// `moved`, `noop` or `exception` (serialized as those names).
    pub outcome: OutcomeKind,
    /// The reason code for a no-op or an exception (`declined:insufficient_inventory`,
    /// `refused:return_exceeds_sold`, `oversold`, …; serialized as those names). A code
    /// this release does not know fails the whole notice's decoding: the waiter then
    /// reads the decision from the database at its deadline.
    pub reason: Option<ReasonCode>,
    /// True when the event had been decided before: `outcome` and `reason` are the first
    /// decision's (a repeated request answers as the first did).
    #[serde(default)]
    pub repeated: bool,
    /// The content digest (64 hex digits, `contract::content_digest`) of the delivery this
    /// notice is about. A waiter whose own content has another digest knows the decision
    /// is not about its content (`docs/decisions.md` §26). Absent from older ledgers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
}

#[cfg(test)]
mod notice_tests {
    use super::*;
    use domain::{ChargebackOutcome, DeclineReason, NoOpReason, RefusalReason};

    #[test]
    fn every_reason_code_survives_a_notice_as_its_wire_name() {
        for &reason in ReasonCode::all() {
            let notice = DecisionNotice {
                event_id: "e".into(),
                outcome: reason.outcome_kind(),
                reason: Some(reason),
                repeated: false,
                content_digest: None,
            };
            let json = serde_json::to_value(&notice).expect("serializes");
            assert_eq!(json["reason"], reason.as_str());
            assert_eq!(json["outcome"], reason.outcome_kind().as_str());
            let back: DecisionNotice = serde_json::from_value(json).expect("decodes");
            assert_eq!(back, notice);
        }
    }

    #[test]
    fn notices_keep_their_byte_format() {
        let notice = DecisionNotice {
            event_id: "e".into(),
            outcome: OutcomeKind::NoOp,
            reason: Some(ReasonCode::Declined(DeclineReason::InsufficientInventory)),
            repeated: true,
            content_digest: None,
        };
        assert_eq!(
            serde_json::to_string(&notice).expect("serializes"),
            r#"{"event_id":"e","outcome":"noop","reason":"declined:insufficient_inventory","repeated":true}"#
        );
        let moved = r#"{"event_id":"e","outcome":"moved","reason":null}"#;
        let back: DecisionNotice = serde_json::from_str(moved).expect("decodes");
        assert_eq!(back.outcome, OutcomeKind::Moved);
        assert_eq!(back.reason, None);
        assert!(
            serde_json::from_str::<DecisionNotice>(
                r#"{"event_id":"e","outcome":"no_op","reason":null}"#
            )
            .is_err()
        );
    }

    /// The sub-reasons inside `outcome_json` keep their derived serde; the reason-code
    /// table must name them the same.
    #[test]
    fn code_tables_name_sub_reasons_as_serde_does() {
        for &d in DeclineReason::ALL {
            assert_eq!(serde_json::to_value(d).expect("serializes"), d.as_str());
        }
        for &r in RefusalReason::ALL {
            assert_eq!(serde_json::to_value(r).expect("serializes"), r.as_str());
        }
        for &o in ChargebackOutcome::ALL {
            assert_eq!(serde_json::to_value(o).expect("serializes"), o.as_str());
        }
        // And a no-op's code is its serde tag (the way it was computed before).
        let noop = NoOpReason::Refused(RefusalReason::UnknownReturn);
        let v = serde_json::to_value(noop).expect("serializes");
        assert_eq!(
            format!(
                "{}:{}",
                v["code"].as_str().unwrap_or_default(),
                v["detail"].as_str().unwrap_or_default()
            ),
            noop.code().as_str()
        );
    }

    #[test]
    fn only_unavailability_is_transient_and_the_source_is_kept() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = BusError::unavailable(io);
        assert!(e.is_transient());
        assert_eq!(e.source().map(|s| s.to_string()), Some("reset".to_owned()));
        assert!(BusError::unavailable("publish not acknowledged in time").is_transient());
        let refused = BusError::refused("stream not found");
        assert!(!refused.is_transient());
        assert!(refused.source().is_some());
        assert_eq!(refused.to_string(), "NATS refused: stream not found");
        let wrapped = BusError::unavailable(InContext::new("S_EVENTS", "timed out"));
        assert_eq!(wrapped.to_string(), "NATS unavailable: S_EVENTS: timed out");
        assert!(wrapped.source().and_then(|s| s.source()).is_some());
    }
}
