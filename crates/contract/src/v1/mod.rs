//! Version 1 of the contract event envelope and its payloads.
//!
//! A released version is never edited: not a field renamed, not a rule loosened or
//! tightened. A change is a new module (`v2`) beside this one, plus an upcaster from v1 to
//! v2 so that every v1 event already stored or in flight keeps decoding. The golden
//! examples under `schemas/v1/examples/` pin this module's shape forever.
//!
//! Objects are closed: a field v1 does not define is refused, because a new field means a
//! new version.

mod domain;
mod payload;
mod read;

use ::domain::{Event, EventId, EventKind, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

pub use self::domain::IDENTITY_LEN_MAX;
pub(crate) use self::domain::{check_raw_digest, check_source};
pub use self::payload::{
    AuthorizationMode, ChargebackClosed, ChargebackOpened, ChargebackOutcome, FlagReason,
    InspectionOutcome, KINDS, Line, Money, OrderLookup, OrderRegistered, Payload,
    PaymentAuthorized, PaymentEvent, PaymentFlagged, PaymentNoted, PaymentRefAttached,
    PaymentRefEntry, ReservationExpired, ReturnInspected, ReturnReceived, StockCorrected,
    StockReceived,
};
pub(crate) use self::read::{
    check_event_id, envelope as read_envelope, payload as read_payload, unknown_kind,
};
use crate::error::{ContractError, EncodeError};
use crate::wire_time;

/// This module's version number, written in every envelope it encodes.
pub const VERSION: u32 = 1;

/// Who sent the event and the delivery identity it is deduplicated by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The provider or producer: `portone`, `stripe`, `merchant`, `operator`, `stockledger`.
    pub provider: String,
    /// The dedupe key of the delivery (`portone:ord_1:Success:200`); the event id is
    /// derived from it.
    pub identity: String,
}

/// A v1 contract event envelope.
///
/// `schema`, `version` and `kind` are not stored: they are constants of the version and
/// decided by the payload's variant, so an envelope cannot disagree with itself about
/// them. They are written by [`Envelope::to_json`] and checked by [`crate::decode`].
///
/// `event_id` is stored, derived once: by [`Envelope::new`] from `source.identity`, or read
/// from the wire and checked against the identity once by [`crate::decode`]. Every later
/// reader (the domain event, the encoder, the publisher's `Nats-Msg-Id`) takes this field
/// rather than hashing the identity again. Code that changes `source` by hand builds a
/// new envelope with [`Envelope::new`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The event id: derived from `source.identity`, never chosen.
    pub event_id: EventId,
    /// When the provider says the thing happened.
    pub occurred_at: Timestamp,
    /// When the ingress (or the emitting process) recorded the event.
    pub recorded_at: Timestamp,
    /// Who sent it, and the identity it is deduplicated by.
    pub source: Source,
    /// `sha256:<hex>` of the provider's raw payload, or `None` when there was none
    /// (merchant API, operator, stockledger's own events).
    pub raw_digest: Option<String>,
    /// What the event says.
    pub payload: Payload,
}

/// The envelope as written: borrowed, in the field order of the documentation.
#[derive(Serialize)]
struct Wire<'a> {
    schema: &'static str,
    version: u32,
    event_id: EventId,
    kind: &'static str,
    #[serde(serialize_with = "wire_time::serialize")]
    occurred_at: Timestamp,
    #[serde(serialize_with = "wire_time::serialize")]
    recorded_at: Timestamp,
    source: &'a Source,
    raw_digest: &'a Option<String>,
    payload: &'a Payload,
}

/// `sha256:` and the lowercase hex SHA-256 of `raw`.
pub fn raw_digest(raw: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw)))
}

impl Envelope {
    /// The envelope of a domain event kind. The event id follows from `source.identity`;
    /// `raw` is the provider's payload, if any, of which only the digest is kept. Refused
    /// for a kind v1 cannot say (see [`Payload::from_domain`]).
    pub fn new(
        kind: &EventKind,
        source: Source,
        occurred_at: Timestamp,
        recorded_at: Timestamp,
        raw: Option<&[u8]>,
    ) -> Result<Envelope, ContractError> {
        Ok(Envelope {
            // The one derivation of this event's id; everything after reads the field.
            event_id: EventId::from_dedupe_key(&source.identity),
            occurred_at,
            recorded_at,
            source,
            raw_digest: raw.map(raw_digest),
            payload: Payload::from_domain(kind)?,
        })
    }

    /// The event id, as derived from `source.identity` when the envelope was built or
    /// checked against it when it was decoded.
    pub fn event_id(&self) -> EventId {
        self.event_id
    }

    /// The contract name of the kind (`payment.captured`, …).
    pub fn kind_name(&self) -> &'static str {
        self.payload.kind_name()
    }

    /// The envelope as JSON bytes. An error is a bug in an encoder, surfaced rather than
    /// written as an empty payload.
    pub fn to_json(&self) -> Result<Vec<u8>, EncodeError> {
        serde_json::to_vec(self).map_err(|source| EncodeError {
            what: "a v1 event envelope",
            source,
        })
    }

    /// The domain event this envelope says, or the first field that breaks a rule. This
    /// is the full check [`crate::decode`] runs; call it on envelopes built by hand. The
    /// event id is the envelope's (see [`Envelope`]), not derived again.
    pub fn to_domain(&self) -> Result<Event, ContractError> {
        // Only debug builds pay for re-deriving the id: it catches an envelope whose
        // `source` was changed by hand after it was built.
        debug_assert_eq!(
            self.event_id,
            EventId::from_dedupe_key(&self.source.identity),
            "an envelope's event id must be its identity's"
        );
        let provider = self::domain::check_source(&self.source.provider, &self.source.identity)?;
        if let Some(d) = &self.raw_digest {
            self::domain::check_raw_digest(d)?;
        }
        Ok(Event {
            id: self.event_id,
            provider,
            recorded_at: self.recorded_at,
            kind: self.payload.to_domain()?,
        })
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            schema: crate::SCHEMA,
            version: VERSION,
            // EventId serializes as its lowercase hyphenated UUID, as the wire writes it.
            event_id: self.event_id,
            kind: self.kind_name(),
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            source: &self.source,
            raw_digest: &self.raw_digest,
            payload: &self.payload,
        }
        .serialize(s)
    }
}

/// Deserializing goes through [`crate::decode_value`]: the same checks as
/// [`crate::decode`], so serde users cannot skip them.
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        crate::decode_value(&value)
            .map(|(e, _)| e)
            .map_err(serde::de::Error::custom)
    }
}
