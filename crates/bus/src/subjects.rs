//! Every stream, subject and consumer name stockledger uses, in one place.
//!
//! A [`Namespace`] prefixes all of them, so several deployments (or several tests) share
//! one NATS server without seeing each other. With the default namespace `stockledger`:
//!
//! | what | name |
//! | --- | --- |
//! | events stream | `STOCKLEDGER_EVENTS`, subjects `stockledger.events.>` |
//! | one event | `stockledger.events.<source>.<kind>`, e.g. `stockledger.events.portone.payment.captured` |
//! | the ledger's durable consumer | `ledger` on the events stream |
//! | a decision (core NATS, not stored) | `stockledger.decisions.<event_id>` |
//! | callbacks stream (work queue) | `STOCKLEDGER_CALLBACKS`, subjects `stockledger.callbacks.>` |
//! | one unverified provider callback | `stockledger.callbacks.<provider>`, e.g. `stockledger.callbacks.ipint` |
//! | the iPint verifier's durable consumer | `ipint_verifier` on the callbacks stream |
//! | raw stream (provider bodies as received, `STOCKLEDGER_RAW_RETENTION`) | `STOCKLEDGER_RAW`, subjects `stockledger.raw.>` |
//! | raw bodies of one provider (records, grouped) | `stockledger.raw.<provider>` |

/// The longest namespace accepted.
pub const NAMESPACE_LEN_MAX: usize = 32;

/// The durable consumer the ledger processes share.
pub const LEDGER_CONSUMER: &str = "ledger";

/// The durable consumer the iPint verification workers share.
pub const IPINT_VERIFIER_CONSUMER: &str = "ipint_verifier";

/// A prefix for every stream and subject name: lowercase ASCII letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

/// A namespace that is not usable as a subject token and stream-name prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("namespace must be 1-{NAMESPACE_LEN_MAX} characters of a-z, 0-9 and _, got {0:?}")]
pub struct InvalidNamespace(pub String);

impl Default for Namespace {
    fn default() -> Self {
        Namespace("stockledger".to_owned())
    }
}

impl Namespace {
    /// Validates a namespace.
    pub fn parse(s: &str) -> Result<Namespace, InvalidNamespace> {
        let ok = !s.is_empty()
            && s.len() <= NAMESPACE_LEN_MAX
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Namespace(s.to_owned()))
        } else {
            Err(InvalidNamespace(s.to_owned()))
        }
    }

    /// The namespace text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stream that holds every contract event.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.0.to_ascii_uppercase())
    }

    /// The wildcard subject of the events stream.
    pub fn events_wildcard(&self) -> String {
        format!("{}.events.>", self.0)
    }

    /// The subject one event is published on. `source` and `kind` are tokens this crate's
    /// callers control (provider names, contract kind names); anything outside
    /// `[A-Za-z0-9_.-]` is replaced so that a subject never gains a wildcard or a space.
    pub fn event_subject(&self, source: &str, kind: &str) -> String {
        format!("{}.events.{}.{}", self.0, token(source), kind_tokens(kind))
    }

    /// The work-queue stream of provider callbacks that are only triggers (iPint): kept
    /// until a verifier has turned each into a verified contract event.
    pub fn callbacks_stream(&self) -> String {
        format!("{}_CALLBACKS", self.0.to_ascii_uppercase())
    }

    /// The wildcard subject of the callbacks stream.
    pub fn callbacks_wildcard(&self) -> String {
        format!("{}.callbacks.>", self.0)
    }

    /// The subject of one provider's unverified callbacks.
    pub fn callback_subject(&self, provider: &str) -> String {
        format!("{}.callbacks.{}", self.0, token(provider))
    }

    /// The stream of provider bodies exactly as received (`crate::raw`).
    pub fn raw_stream(&self) -> String {
        format!("{}_RAW", self.0.to_ascii_uppercase())
    }

    /// The wildcard subject of the raw stream.
    pub fn raw_wildcard(&self) -> String {
        format!("{}.raw.>", self.0)
    }

    /// The subject of one provider's raw bodies (`crate::raw`).
    pub fn raw_subject(&self, provider: &str) -> String {
        format!("{}.raw.{}", self.0, token(provider))
    }

    /// The core-NATS subject on which the ledger announces the decision for one event.
    pub fn decision_subject(&self, event_id: &str) -> String {
        format!("{}.decisions.{}", self.0, token(event_id))
    }
}

fn clean(c: char) -> char {
    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
        c
    } else {
        '_'
    }
}

/// One subject token: no dots, no wildcards, never empty.
fn token(s: &str) -> String {
    let t: String = s.chars().map(clean).collect();
    if t.is_empty() { "_".to_owned() } else { t }
}

/// A dotted kind (`payment.captured`) as tokens, each cleaned.
fn kind_tokens(kind: &str) -> String {
    kind.split('.').map(token).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_never_gain_wildcards_or_empty_tokens() {
        let ns = Namespace::default();
        assert_eq!(
            ns.event_subject("portone", "payment.captured"),
            "stockledger.events.portone.payment.captured"
        );
        assert_eq!(
            ns.event_subject("a b*>", "x..y"),
            "stockledger.events.a_b__.x._.y"
        );
        assert_eq!(ns.events_stream(), "STOCKLEDGER_EVENTS");
    }

    #[test]
    fn namespace_is_validated() {
        assert!(Namespace::parse("t_1a").is_ok());
        assert!(Namespace::parse("").is_err());
        assert!(Namespace::parse("Upper").is_err());
        assert!(Namespace::parse("a.b").is_err());
    }
}
