//! The content digest: the one definition of "the same content" for an event id
//! (`docs/decisions.md` §26), used by the ingress (an idempotency key reused with other
//! content is refused before anything is published) and by the ledger (a second content
//! under a known id is never a plain duplicate).
//!
//! The content is what the event says: its kind and its payload. Not part of it: the
//! times (`occurred_at`, `recorded_at`: a retry is stamped anew), the source (it *is* the
//! identity), the merchant scope, the causation and the provider's raw-body digest (a
//! provider may re-sign or re-serialize one message). The payload is taken through the
//! domain and back (lines merged and sorted), written as JSON with sorted keys, and every
//! decimal `amount` normalized (`"40.00"` = `"40.0"` = `"40"`), so two requests that say
//! the same thing have one digest. The free-text `detail` of `payment.flagged` is evidence
//! in words (what the provider answered, after how many attempts), not content: a flag
//! raised again with other words is the same flag.
//!
//! digest = SHA-256 of `<kind name>` + `"\n"` + canonical JSON of the payload, in hex.

use domain::{ContentDigest, EventKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::v2::{Envelope, Payload};

/// The `source.provider` of every event the merchant API publishes: their identities are
/// the merchant's idempotency keys, so a second content under one is refused rather than
/// recorded.
pub const MERCHANT_API: &str = "merchant";

/// The payload field that is evidence in words rather than content, per kind.
const PROSE_FIELDS: [(&str, &str); 1] = [("payment.flagged", "detail")];

/// The content digest of an event of `kind`.
pub fn content_digest(kind: &EventKind) -> ContentDigest {
    digest_of(&Payload::from_domain(kind))
}

impl Envelope {
    /// The digest of what this envelope says ([`content_digest`] of its domain event). An
    /// envelope the domain refuses is digested from its wire payload as it is.
    pub fn content_digest(&self) -> ContentDigest {
        match self.to_domain() {
            Ok(event) => content_digest(&event.kind),
            Err(_) => digest_of(&self.payload),
        }
    }
}

/// The content digest of an envelope given as JSON text, or `None` when it does not
/// decode (a message that is not an event has no content to compare).
pub fn content_digest_of_json(envelope: &str) -> Option<ContentDigest> {
    crate::decode_event(envelope.as_bytes())
        .ok()
        .map(|(_, event)| content_digest(&event.kind))
}

fn digest_of(payload: &Payload) -> ContentDigest {
    let kind = payload.kind_name();
    // Plain structs of strings, integers and options: serializing cannot fail.
    let mut value = serde_json::to_value(payload).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for (k, field) in PROSE_FIELDS {
            if k == kind {
                map.remove(field);
            }
        }
    }
    let mut text = String::with_capacity(256);
    text.push_str(kind);
    text.push('\n');
    write_canonical(&value, false, &mut text);
    ContentDigest::from_bytes(Sha256::digest(text.as_bytes()).into())
}

/// Writes `value` as compact JSON with object keys sorted; a string is normalized as a
/// decimal amount when `amount` says it is the value of an `amount` key.
fn write_canonical(value: &Value, amount: bool, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(k, out);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, k == "amount", out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, false, out);
            }
            out.push(']');
        }
        Value::String(s) if amount => match domain::types::parse_amount(s) {
            Ok(d) => push_string(&d.normalize().to_string(), out),
            Err(_) => push_string(s, out),
        },
        Value::String(s) => push_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn push_string(s: &str, out: &mut String) {
    out.push_str(&Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::{Lines, Money, OrderRef, OrderSpec, Quantity, StockKey};

    use super::*;

    fn key(sku: &str) -> StockKey {
        StockKey {
            sku: domain::Sku::parse(sku).unwrap(),
            location: domain::Location::parse("main").unwrap(),
        }
    }

    fn order(amount: &str, lines: &[(&str, u64)]) -> EventKind {
        EventKind::OrderRegistered {
            spec: OrderSpec {
                order_ref: OrderRef::parse("o1").unwrap(),
                lines: Lines::new(lines.iter().map(|(s, q)| domain::Line {
                    key: key(s),
                    quantity: Quantity::new(*q).unwrap(),
                }))
                .unwrap(),
                amount: Money::parse(amount, "USD").unwrap(),
            },
            payment_refs: vec![],
        }
    }

    fn receipt(quantity: u64) -> EventKind {
        EventKind::StockReceived {
            key: key("a"),
            quantity: Quantity::new(quantity).unwrap(),
            reference: "po-1001".into(),
        }
    }

    #[test]
    fn the_same_thing_said_differently_has_one_digest() {
        let a = content_digest(&order("40.00", &[("a", 1), ("b", 2)]));
        assert_eq!(a, content_digest(&order("40", &[("b", 2), ("a", 1)])));
        assert_eq!(a, content_digest(&order("40.0", &[("a", 1), ("b", 2)])));
        assert_ne!(a, content_digest(&order("40.01", &[("a", 1), ("b", 2)])));
        assert_ne!(a, content_digest(&order("40", &[("a", 1), ("b", 3)])));
        assert_ne!(content_digest(&receipt(3)), content_digest(&receipt(99)));
    }

    #[test]
    fn times_source_and_merchant_are_not_content() {
        let source = |identity: &str| crate::Source {
            provider: "merchant".into(),
            identity: identity.into(),
        };
        let a = Envelope::new(
            &receipt(3),
            source("merchant:receipt:po-1001"),
            domain::Timestamp(1),
            domain::Timestamp(2),
            None,
        );
        let b = Envelope::new(
            &receipt(3),
            source("merchant:receipt:po-1001"),
            domain::Timestamp(5),
            domain::Timestamp(6),
            Some(b"raw"),
        )
        .with_merchant("shop-2");
        assert_ne!(a.to_json().unwrap(), b.to_json().unwrap());
        assert_eq!(a.content_digest(), b.content_digest());
        assert_eq!(a.content_digest(), content_digest(&receipt(3)));
        let text = String::from_utf8(b.to_json().unwrap()).unwrap();
        assert_eq!(content_digest_of_json(&text), Some(a.content_digest()));
        assert_eq!(content_digest_of_json("{}"), None);
        assert_eq!(a.content_digest().to_string().len(), 64);
    }

    #[test]
    fn the_words_of_a_flag_are_not_its_content() {
        let flag = |detail: &str| EventKind::PaymentFlagged {
            payment: domain::Payment {
                order: domain::OrderLookup::OrderRef(OrderRef::parse("o1").unwrap()),
                amount: None,
            },
            reason: domain::FlagReason::Unverifiable,
            detail: detail.into(),
        };
        assert_eq!(
            content_digest(&flag("not verified after 3 attempts")),
            content_digest(&flag("not verified after 8 attempts"))
        );
    }
}
