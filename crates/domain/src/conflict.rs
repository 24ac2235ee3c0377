//! One event id, one content (`docs/decisions.md` §26). An event id names one content:
//! what the event says, apart from when and through whom it arrived. A second delivery
//! under a known id with *different* content is not a duplicate:
//!
//! - from the merchant API it is an idempotency key reused for something else, refused
//!   (the store records nothing; the ingress answers 409 `idempotency_key_reused`);
//! - from anyone else (a provider) it is recorded as the no-op `conflicting_duplicate`,
//!   under an id of its own ([`conflict_id`]) so that the first event keeps its one
//!   outcome, with both digests as evidence ([`ConflictEvidence`]) for a person to see.
//!
//! The digest itself is computed by the contract crate (`contract::content_digest`), the
//! one definition of "content"; here it is an opaque value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::outcome::{NoOpReason, Outcome, Resolution};
use crate::types::EventId;

/// The length of a content digest, in bytes (SHA-256).
pub const CONTENT_DIGEST_LEN: usize = 32;

/// The digest of an event's content (`contract::content_digest`): written as 64 lowercase
/// hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentDigest([u8; CONTENT_DIGEST_LEN]);

impl ContentDigest {
    /// Wraps the bytes of a digest.
    pub fn from_bytes(bytes: [u8; CONTENT_DIGEST_LEN]) -> Self {
        Self(bytes)
    }

    /// The bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; CONTENT_DIGEST_LEN] {
        &self.0
    }
}

/// Why a text is not a content digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a content digest is {} lowercase hex digits", CONTENT_DIGEST_LEN * 2)]
pub struct InvalidDigest;

impl FromStr for ContentDigest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, InvalidDigest> {
        let text = s.as_bytes();
        if text.len() != CONTENT_DIGEST_LEN * 2 {
            return Err(InvalidDigest);
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(InvalidDigest),
        };
        let mut bytes = [0u8; CONTENT_DIGEST_LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({self})")
    }
}

impl Serialize for ContentDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a person needs to see of a conflicting duplicate: the event id both contents
/// claimed, and the digest of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictEvidence {
    /// The id the first content was recorded under and the second one claimed.
    pub event_id: EventId,
    /// The digest of the content recorded first.
    pub first_digest: ContentDigest,
    /// The digest of the content that arrived later under the same id.
    pub second_digest: ContentDigest,
}

/// The id under which the second content `second` of event `event_id` is recorded: UUID
/// v5 of `<event id>:conflict:<second digest>`. Deterministic, so a redelivery of the same
/// conflicting content is a plain duplicate of that record.
pub fn conflict_id(event_id: EventId, second: ContentDigest) -> EventId {
    EventId::from_dedupe_key(&format!("{event_id}:conflict:{second}"))
}

/// The resolution of a conflicting duplicate: a no-op `conflicting_duplicate` carrying
/// the evidence, which changes nothing else.
pub fn conflicting_duplicate(evidence: ConflictEvidence) -> Resolution {
    crate::matrix::base(
        None,
        Outcome::NoOp {
            reason: NoOpReason::ConflictingDuplicate(evidence),
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_digest_reads_back_what_it_writes() {
        let d = ContentDigest::from_bytes([0xab; CONTENT_DIGEST_LEN]);
        let text = d.to_string();
        assert_eq!(text, "ab".repeat(CONTENT_DIGEST_LEN));
        assert_eq!(text.parse::<ContentDigest>().unwrap(), d);
        assert!("AB".repeat(32).parse::<ContentDigest>().is_err());
        assert!("ab".parse::<ContentDigest>().is_err());
    }

    #[test]
    fn the_conflict_id_depends_on_the_second_content_only() {
        let id = EventId::from_dedupe_key("stripe:evt_1");
        let a = ContentDigest::from_bytes([1; CONTENT_DIGEST_LEN]);
        let b = ContentDigest::from_bytes([2; CONTENT_DIGEST_LEN]);
        assert_eq!(conflict_id(id, a), conflict_id(id, a));
        assert_ne!(conflict_id(id, a), conflict_id(id, b));
        assert_ne!(conflict_id(id, a), id);
    }
}
