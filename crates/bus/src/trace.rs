//! Trace context through JetStream: the W3C `traceparent` of the HTTP request that caused
//! an event travels with the event, so the ledger's log lines for it carry the same
//! `trace_id` as the ingress's request (and as the caller's own tracing, when the caller
//! sent a `traceparent`).
//!
//! A message of one event carries one `traceparent` header. A group message
//! ([`crate::group`]) carries one `traceparent` value per event, in the events' order, with
//! [`UNTRACED`] for an event that has none, so [`crate::group::split_traced`] pairs each
//! event with its own context. The event id remains the correlation key that survives
//! everything (replays, retries); the trace id ties an event to the request that made it.

use std::fmt;

/// The header name, as W3C Trace Context spells it.
pub const TRACEPARENT: &str = "traceparent";

/// The placeholder value for an event without trace context inside a group message.
pub const UNTRACED: &str = "-";

/// A W3C `traceparent`: version `00`, a 16-byte trace id, the 8-byte id of the span that
/// published, and the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: String,
    parent_id: String,
    flags: String,
}

impl TraceContext {
    /// Parses a `traceparent` value; `None` for anything that is not version `00` with
    /// lowercase hex ids that are not all zeros (the specification says to ignore it then).
    pub fn parse(value: &str) -> Option<TraceContext> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        if parts.next().is_some()
            || version != "00"
            || !hex(trace_id, 32)
            || !hex(parent_id, 16)
            || !hex(flags, 2)
            || zero(trace_id)
            || zero(parent_id)
        {
            return None;
        }
        Some(TraceContext {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            flags: flags.to_owned(),
        })
    }

    /// A new trace, for a request that came without one.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            parent_id: new_span_id(),
            flags: "01".to_owned(),
        }
    }

    /// The same trace, continued by a new span of this process.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id.clone(),
            parent_id: new_span_id(),
            flags: self.flags.clone(),
        }
    }

    /// The trace id (32 lowercase hex digits): the field log lines carry.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
}

impl fmt::Display for TraceContext {
    /// The header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.parent_id, self.flags)
    }
}

fn new_span_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(16);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_round_trips() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(v).unwrap();
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.to_string(), v);
        let c = t.child();
        assert_eq!(c.trace_id(), t.trace_id());
        assert_ne!(c.to_string(), v);
    }

    #[test]
    fn invalid_traceparents_are_ignored() {
        for v in [
            "",
            "-",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f35-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(v), None, "{v}");
        }
    }

    #[test]
    fn a_new_trace_is_valid() {
        let t = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&t.to_string()), Some(t));
    }
}
