//! Dead letters: messages of the events stream that a consumer gave up on.
//!
//! JetStream never deletes such a message; it stops delivering it and publishes a
//! fire-and-forget advisory (`MAX_DELIVERIES` when `max_deliver` ran out, `MSG_TERMINATED`
//! when a consumer answered `+TERM`). Two streams make that durable:
//!
//! | what | name (namespace `stockledger`) |
//! | --- | --- |
//! | advisory capture (work queue) | `STOCKLEDGER_DLQ_ADVISORIES`, subjects `$JS.EVENT.ADVISORY.CONSUMER.{MAX_DELIVERIES,MSG_TERMINATED}.STOCKLEDGER_EVENTS.*` |
//! | dead letters | `STOCKLEDGER_DLQ`, subjects `stockledger.dlq.>` |
//! | one dead letter | `stockledger.dlq.<source stream>.<source stream sequence>` |
//! | the exception consumer's durables | `exceptions_advisories` (advisories), `exceptions` (dead letters) |
//!
//! The advisory stream captures advisories even while no exception consumer runs, so none
//! is lost. [`Bus::dead_letter`] turns one advisory into one dead letter: the original
//! message fetched by its stream sequence, with its payload and headers, plus the reason,
//! the delivery count and the source sequence as `Stockledger-Dlq-*` headers. It is
//! idempotent: the dead letter's subject names the source sequence (checked before
//! publishing, forever) and its `Nats-Msg-Id` is the same identity (within the window).
//! The original stays in the events stream: that stream is the replay log.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{consumer, stream};
use bytes::Bytes;
use serde::Deserialize;

use crate::{Bus, BusError, Message, Namespace, PullConsumer};

/// The durable consumer of the advisory stream (the exception consumer processes).
pub const ADVISORY_CONSUMER: &str = "exceptions_advisories";
/// The durable consumer of the dead-letter stream (the exception consumer processes).
pub const DLQ_CONSUMER: &str = "exceptions";

/// Why JetStream gave up on a message (`Stockledger-Dlq-Reason`).
pub const HEADER_REASON: &str = "Stockledger-Dlq-Reason";
/// How many times it was delivered (`Stockledger-Dlq-Deliveries`).
pub const HEADER_DELIVERIES: &str = "Stockledger-Dlq-Deliveries";
/// The stream it came from.
pub const HEADER_STREAM: &str = "Stockledger-Dlq-Stream";
/// Its sequence in that stream.
pub const HEADER_STREAM_SEQ: &str = "Stockledger-Dlq-Stream-Seq";
/// The subject it was published on.
pub const HEADER_SUBJECT: &str = "Stockledger-Dlq-Subject";
/// The consumer that gave up.
pub const HEADER_CONSUMER: &str = "Stockledger-Dlq-Consumer";
/// Present (`true`) when the original was no longer in its stream: the payload is empty.
pub const HEADER_MISSING: &str = "Stockledger-Dlq-Original-Missing";
/// Original headers are kept under this prefix (`Stockledger-Dlq-Original-Nats-Msg-Id`, …),
/// so that the original `Nats-Msg-Id` never deduplicates the dead letter itself.
pub const ORIGINAL_HEADER_PREFIX: &str = "Stockledger-Dlq-Original-";

/// The most advisories or dead letters the exception consumer holds unacknowledged.
pub const DLQ_MAX_ACK_PENDING: i64 = 256;
/// How long a delivered advisory or dead letter may stay unacknowledged.
pub const DLQ_ACK_WAIT: Duration = Duration::from_secs(30);

/// Why JetStream gave up on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// Delivered `max_deliver` times without an ack.
    MaxDeliveries,
    /// A consumer terminated it as a permanent failure.
    Terminated,
}

impl DeadReason {
    /// The stable code: `max_deliveries` or `terminated` (named in [`domain::ExceptionCode`]).
    pub fn code(self) -> &'static str {
        self.exception_code().as_str()
    }

    /// The exception-queue reason of a dead letter.
    pub fn exception_code(self) -> domain::ExceptionCode {
        match self {
            DeadReason::MaxDeliveries => domain::ExceptionCode::MaxDeliveries,
            DeadReason::Terminated => domain::ExceptionCode::Terminated,
        }
    }

    /// The reason from its code.
    pub fn from_code(s: &str) -> Option<DeadReason> {
        match s.parse::<domain::ExceptionCode>().ok()? {
            domain::ExceptionCode::MaxDeliveries => Some(DeadReason::MaxDeliveries),
            domain::ExceptionCode::Terminated => Some(DeadReason::Terminated),
            _ => None,
        }
    }
}

/// One advisory, as captured in the advisory stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    pub reason: DeadReason,
    /// The stream the message lives in.
    pub stream: String,
    /// The consumer that gave up.
    pub consumer: String,
    /// The message's sequence in `stream`.
    pub stream_seq: u64,
    /// Deliveries made.
    pub deliveries: u64,
}

#[derive(Deserialize)]
struct AdvisoryWire {
    stream: String,
    consumer: String,
    stream_seq: u64,
    #[serde(default)]
    deliveries: u64,
}

/// An advisory that cannot be read (wrong subject or payload).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable advisory on {subject}: {message}")]
pub struct BadAdvisory {
    pub subject: String,
    pub message: String,
}

/// Reads an advisory from its subject and JSON payload.
pub fn parse_advisory(subject: &str, payload: &[u8]) -> Result<Advisory, BadAdvisory> {
    let bad = |message: String| BadAdvisory {
        subject: subject.to_owned(),
        message,
    };
    let reason = if subject.starts_with("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.") {
        DeadReason::MaxDeliveries
    } else if subject.starts_with("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.") {
        DeadReason::Terminated
    } else {
        return Err(bad("not a max-deliveries or terminated advisory".into()));
    };
    let w: AdvisoryWire = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    Ok(Advisory {
        reason,
        stream: w.stream,
        consumer: w.consumer,
        stream_seq: w.stream_seq,
        deliveries: w.deliveries,
    })
}

/// The stream of dead letters of a namespace: `<NS>_DLQ`.
pub fn dlq_stream(ns: &Namespace) -> String {
    format!("{}_DLQ", ns.as_str().to_ascii_uppercase())
}

/// The wildcard subject of the dead-letter stream.
pub fn dlq_wildcard(ns: &Namespace) -> String {
    format!("{}.dlq.>", ns.as_str())
}

/// The subject of the dead letter of message `seq` of `stream`: one subject per source
/// message, which makes "already dead-lettered?" a lookup.
pub fn dlq_subject(ns: &Namespace, stream: &str, seq: u64) -> String {
    let stream: String = stream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.dlq.{stream}.{seq}", ns.as_str())
}

/// The work-queue stream that captures the events stream's advisories: `<NS>_DLQ_ADVISORIES`.
pub fn advisory_stream(ns: &Namespace) -> String {
    format!("{}_DLQ_ADVISORIES", ns.as_str().to_ascii_uppercase())
}

/// The advisory subjects of every consumer of the events stream.
pub fn advisory_subjects(ns: &Namespace) -> Vec<String> {
    let events = ns.events_stream();
    vec![
        format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{events}.*"),
        format!("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{events}.*"),
    ]
}

/// Retention of the dead-letter streams.
#[derive(Debug, Clone)]
pub struct DlqLimits {
    /// `STOCKLEDGER_DLQ_MAX_AGE`: how long a dead letter (and an unprocessed advisory) is
    /// kept. The exception queue keeps its own copy of every payload, forever.
    pub max_age: Duration,
}

impl Default for DlqLimits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(90 * 86_400),
        }
    }
}

/// One dead letter read back from the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: DeadReason,
    pub stream: String,
    pub consumer: String,
    pub stream_seq: u64,
    pub deliveries: u64,
    /// The subject the original was published on.
    pub subject: String,
    /// The original headers (names without the prefix), in name order.
    pub headers: Vec<(String, String)>,
    /// The original payload, byte for byte (empty when the original was gone).
    pub payload: Bytes,
    /// False when the original was no longer in its stream.
    pub original_found: bool,
    /// The dead letter's own sequence in the dead-letter stream.
    pub dlq_seq: u64,
}

/// What [`Bus::dead_letter`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLettered {
    /// Published now, at this sequence of the dead-letter stream.
    Published(u64),
    /// A dead letter for that message already existed.
    AlreadyThere,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::unavailable(e)
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| v.as_str().to_owned())
}

impl Bus {
    /// Creates the advisory-capture stream and the dead-letter stream. With `Some(limits)`
    /// (the exception consumer) existing streams are updated to them; with `None` (the
    /// ledger) missing streams are created with the defaults and existing ones are left
    /// as they are. Safe to call from every process at every start; the ledger calls it
    /// before consuming, so advisories are captured even if no exception consumer ever ran.
    pub async fn ensure_dead_letter_streams(
        &self,
        limits: Option<&DlqLimits>,
    ) -> Result<(), BusError> {
        let defaults = DlqLimits::default();
        let existing = match limits {
            Some(_) => crate::provision::Existing::Update,
            None => crate::provision::Existing::Keep,
        };
        let limits = limits.unwrap_or(&defaults);
        let ns = self.namespace();
        let advisories = stream::Config {
            name: advisory_stream(ns),
            subjects: advisory_subjects(ns),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::WorkQueue,
            max_age: limits.max_age,
            ..Default::default()
        };
        self.put_stream(advisories, existing).await?;
        let dlq = stream::Config {
            name: dlq_stream(ns),
            subjects: vec![dlq_wildcard(ns)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: limits.max_age,
            duplicate_window: self.config.duplicate_window.min(limits.max_age),
            allow_direct: true,
            ..Default::default()
        };
        self.put_stream(dlq, existing).await
    }

    async fn dlq_durable(
        &self,
        stream_name: String,
        durable: &str,
    ) -> Result<PullConsumer, BusError> {
        let config = consumer::pull::Config {
            durable_name: Some(durable.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: DLQ_ACK_WAIT,
            max_ack_pending: DLQ_MAX_ACK_PENDING,
            ..Default::default()
        };
        self.put_consumer(stream_name, config).await
    }

    /// The exception consumer's durable on the advisory stream.
    pub async fn advisory_consumer(&self) -> Result<PullConsumer, BusError> {
        self.dlq_durable(advisory_stream(self.namespace()), ADVISORY_CONSUMER)
            .await
    }

    /// The exception consumer's durable on the dead-letter stream.
    pub async fn dlq_consumer(&self) -> Result<PullConsumer, BusError> {
        self.dlq_durable(dlq_stream(self.namespace()), DLQ_CONSUMER)
            .await
    }

    /// Writes the dead letter for `adv`: the original fetched by its stream sequence, with
    /// its payload and headers, and the reason, delivery count and source sequence. Does
    /// nothing if that message already has a dead letter.
    pub async fn dead_letter(&self, adv: &Advisory) -> Result<DeadLettered, BusError> {
        let ns = self.namespace();
        let dlq = self
            .jetstream()
            .get_stream(dlq_stream(ns))
            .await
            .map_err(unavailable)?;
        let subject = dlq_subject(ns, &adv.stream, adv.stream_seq);
        match dlq.get_last_raw_message_by_subject(&subject).await {
            Ok(_) => return Ok(DeadLettered::AlreadyThere),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(unavailable(e)),
        }
        let source = self
            .jetstream()
            .get_stream(adv.stream.clone())
            .await
            .map_err(unavailable)?;
        let original = match source.get_raw_message(adv.stream_seq).await {
            Ok(m) => Some(m),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => None,
            Err(e) => return Err(unavailable(e)),
        };
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_REASON, adv.reason.code());
        headers.insert(HEADER_DELIVERIES, adv.deliveries.to_string().as_str());
        headers.insert(HEADER_STREAM, adv.stream.as_str());
        headers.insert(HEADER_STREAM_SEQ, adv.stream_seq.to_string().as_str());
        headers.insert(HEADER_CONSUMER, adv.consumer.as_str());
        let payload = match &original {
            Some(m) => {
                headers.insert(HEADER_SUBJECT, m.subject.as_str());
                for (name, values) in m.headers.iter() {
                    for v in values {
                        headers.append(format!("{ORIGINAL_HEADER_PREFIX}{name}"), v.as_str());
                    }
                }
                m.payload.clone()
            }
            None => {
                headers.insert(HEADER_MISSING, "true");
                Bytes::new()
            }
        };
        let msg_id = format!("dlq:{}:{}", adv.stream, adv.stream_seq);
        let published = self
            .publish_event(subject, &msg_id, payload, Some(headers))
            .await?;
        Ok(if published.duplicate {
            DeadLettered::AlreadyThere
        } else {
            DeadLettered::Published(published.stream_seq)
        })
    }

    /// How many dead letters the dead-letter stream holds (the DLQ depth gauge).
    pub async fn dlq_depth(&self) -> Result<u64, BusError> {
        let mut s = self
            .jetstream()
            .get_stream(dlq_stream(self.namespace()))
            .await
            .map_err(unavailable)?;
        Ok(s.info().await.map_err(unavailable)?.state.messages)
    }

    /// Advisories captured but not yet turned into dead letters.
    pub async fn advisories_pending(&self) -> Result<u64, BusError> {
        let mut s = self
            .jetstream()
            .get_stream(advisory_stream(self.namespace()))
            .await
            .map_err(unavailable)?;
        Ok(s.info().await.map_err(unavailable)?.state.messages)
    }

    /// Publishes an operator retry of an event: `payload` is the original envelope, byte
    /// for byte (so the event id is kept and the ledger deduplicates by it), `msg_id` is
    /// `<event id>:retry:<n>` (a fresh JetStream identity, or the duplicate window would
    /// swallow it), and the [`crate::OPERATOR_RETRY_HEADER`] asks the ledger to decide the
    /// event again if its outcome is an open exception.
    pub async fn publish_operator_retry(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        actor: &str,
    ) -> Result<crate::Published, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(crate::OPERATOR_RETRY_HEADER, actor);
        self.publish_event(subject, msg_id, payload, Some(headers))
            .await
    }
}

/// Reads a dead letter delivered by [`Bus::dlq_consumer`].
pub fn read_dead_letter(msg: &Message) -> Result<DeadLetter, BadAdvisory> {
    let bad = |message: &str| BadAdvisory {
        subject: msg.subject.to_string(),
        message: message.to_owned(),
    };
    let h = msg.headers.as_ref().ok_or_else(|| bad("no headers"))?;
    let reason = header(h, HEADER_REASON)
        .and_then(|r| DeadReason::from_code(&r))
        .ok_or_else(|| bad("no reason"))?;
    let number = |name: &str| header(h, name).and_then(|v| v.parse::<u64>().ok());
    let stream_seq = number(HEADER_STREAM_SEQ).ok_or_else(|| bad("no source sequence"))?;
    let mut headers: Vec<(String, String)> = h
        .iter()
        .filter_map(|(name, values)| {
            let n: &str = name.as_ref();
            n.strip_prefix(ORIGINAL_HEADER_PREFIX)
                .map(|orig| (orig.to_owned(), values))
        })
        .flat_map(|(orig, values)| {
            values
                .iter()
                .map(move |v| (orig.clone(), v.as_str().to_owned()))
        })
        .collect();
    headers.sort();
    Ok(DeadLetter {
        reason,
        stream: header(h, HEADER_STREAM).unwrap_or_default(),
        consumer: header(h, HEADER_CONSUMER).unwrap_or_default(),
        stream_seq,
        deliveries: number(HEADER_DELIVERIES).unwrap_or(0),
        subject: header(h, HEADER_SUBJECT).unwrap_or_default(),
        headers,
        payload: msg.payload.clone(),
        original_found: header(h, HEADER_MISSING).is_none(),
        dlq_seq: msg.info().map(|i| i.stream_sequence).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisories_parse_from_subject_and_payload() {
        let a = parse_advisory(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.X_EVENTS.ledger",
            br#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"X_EVENTS","consumer":"ledger","stream_seq":7,"deliveries":5}"#,
        )
        .expect("parses");
        assert_eq!(a.reason, DeadReason::MaxDeliveries);
        assert_eq!((a.stream_seq, a.deliveries), (7, 5));
        let t = parse_advisory(
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.X_EVENTS.ledger",
            br#"{"stream":"X_EVENTS","consumer":"ledger","consumer_seq":3,"stream_seq":2,"deliveries":1,"reason":""}"#,
        )
        .expect("parses");
        assert_eq!(t.reason, DeadReason::Terminated);
        assert!(parse_advisory("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.X.y", b"{}").is_err());
        assert!(parse_advisory("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.X.y", b"nope").is_err());
    }

    #[test]
    fn names_follow_the_namespace() {
        let ns = Namespace::default();
        assert_eq!(dlq_stream(&ns), "STOCKLEDGER_DLQ");
        assert_eq!(
            dlq_subject(&ns, "STOCKLEDGER_EVENTS", 9),
            "stockledger.dlq.STOCKLEDGER_EVENTS.9"
        );
        assert_eq!(
            advisory_subjects(&ns)[1],
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.STOCKLEDGER_EVENTS.*"
        );
    }
}
