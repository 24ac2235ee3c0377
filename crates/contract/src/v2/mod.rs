//! Version 2 of the contract event envelope: version 1 plus who the event belongs to and
//! what caused it.
//!
//! - `merchant` (required): the merchant scope, for marketplace platforms that run one
//!   stockledger for many merchants. A non-empty identifier (1 to 200 bytes, no control
//!   characters); a single-merchant deployment writes [`crate::DEFAULT_MERCHANT`].
//! - `causation_id` (required, nullable): the id of the event that caused this one (the
//!   authorization a `reservation.expired` releases), or `null` when an outside party
//!   caused it.
//!
//! Everything else is v1's, unchanged: the same fields, v1's payloads and payload schemas
//! ([`Payload::V1`]), and the same event id rule (derived from `source.identity` alone),
//! so a v1 and a v2 encoding of one delivery are one event. Before its release v2 also
//! gained the kind `exception.action` and an optional `actor` on `stock.corrected`
//! ([`payload`], `docs/decisions.md` §27), an optional `answer_by` on a confirmation's
//! `payment.authorized` (§29), and the kind `policy.changed` (issue 15). [`upcast`] is the v1 → v2 rule. Objects are
//! closed, as in v1. Once released, this module and `schemas/v2/` are never edited; see
//! `docs/schema-evolution.md`.

pub mod payload;
mod read;

use ::domain::{Event, EventId, EventKind, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ContractError, EncodeError};
use crate::v1::{self, Source};
use crate::wire_time;

pub use self::payload::{
    ExceptionAction, KINDS, Payload, PaymentAuthorized, PolicyChanged, StockCorrected,
};

pub(crate) use self::read::envelope as read_envelope;

/// This module's version number, written in every envelope it encodes.
pub const VERSION: u32 = 2;

/// The longest `merchant` accepted, in bytes (the domain's identifier limit).
pub const MERCHANT_LEN_MAX: usize = ::domain::types::IDENTIFIER_LEN_MAX;

/// A v2 contract event envelope.
///
/// As in v1, `schema`, `version` and `kind` are not stored: they are constants of the
/// version and decided by the payload's variant. `event_id` is stored, derived once from
/// `source.identity` by [`Envelope::new`] or checked against it once by [`crate::decode`]
/// (see [`v1::Envelope`]); [`upcast`] carries it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The event id: derived from `source.identity`, never chosen (v1's rule).
    pub event_id: EventId,
    /// The merchant scope the event belongs to ([`crate::DEFAULT_MERCHANT`] when the
    /// deployment serves one merchant, and for every upcast v1 event).
    pub merchant: String,
    /// The event that caused this one, if stockledger knows it (the sweeper's and the
    /// PortOne compensation's `reservation.expired` name the authorization).
    pub causation_id: Option<EventId>,
    /// When the provider says the thing happened.
    pub occurred_at: Timestamp,
    /// When the ingress (or the emitting process) recorded the event.
    pub recorded_at: Timestamp,
    /// Who sent it, and the identity it is deduplicated by.
    pub source: Source,
    /// `sha256:<hex>` of the provider's raw payload, or `None` when there was none.
    pub raw_digest: Option<String>,
    /// What the event says: v1's payloads, unchanged, and the kinds v2 added.
    pub payload: Payload,
}

/// The envelope as written: borrowed, in the field order of the documentation.
#[derive(Serialize)]
struct Wire<'a> {
    schema: &'static str,
    version: u32,
    event_id: EventId,
    causation_id: Option<EventId>,
    kind: &'static str,
    merchant: &'a str,
    #[serde(serialize_with = "wire_time::serialize")]
    occurred_at: Timestamp,
    #[serde(serialize_with = "wire_time::serialize")]
    recorded_at: Timestamp,
    source: &'a Source,
    raw_digest: &'a Option<String>,
    payload: &'a Payload,
}

/// The v1 → v2 upcaster: a v1 event belongs to [`crate::DEFAULT_MERCHANT`] and has no
/// known cause. Every other field is carried over as it is, so the event id, the payload
/// and the domain event are those of the v1 envelope.
pub fn upcast(v1: v1::Envelope) -> Envelope {
    let v1::Envelope {
        event_id,
        occurred_at,
        recorded_at,
        source,
        raw_digest,
        payload,
    } = v1;
    Envelope {
        event_id,
        merchant: crate::DEFAULT_MERCHANT.to_owned(),
        causation_id: None,
        occurred_at,
        recorded_at,
        source,
        raw_digest,
        payload: Payload::V1(payload),
    }
}

impl From<v1::Envelope> for Envelope {
    fn from(v1: v1::Envelope) -> Envelope {
        upcast(v1)
    }
}

impl Envelope {
    /// The envelope of a domain event kind, for [`crate::DEFAULT_MERCHANT`] and with no
    /// cause; [`Envelope::with_merchant`] and [`Envelope::caused_by`] change those. The
    /// event id follows from `source.identity`; of `raw`, the provider's payload, only the
    /// digest is kept.
    pub fn new(
        kind: &EventKind,
        source: Source,
        occurred_at: Timestamp,
        recorded_at: Timestamp,
        raw: Option<&[u8]>,
    ) -> Envelope {
        Envelope {
            // The one derivation of this event's id; everything after reads the field.
            event_id: EventId::from_dedupe_key(&source.identity),
            merchant: crate::DEFAULT_MERCHANT.to_owned(),
            causation_id: None,
            occurred_at,
            recorded_at,
            source,
            raw_digest: raw.map(v1::raw_digest),
            payload: Payload::from_domain(kind),
        }
    }

    /// The same envelope in `merchant`'s scope.
    #[must_use]
    pub fn with_merchant(self, merchant: impl Into<String>) -> Envelope {
        Envelope {
            merchant: merchant.into(),
            ..self
        }
    }

    /// The same envelope, caused by the event `cause`.
    #[must_use]
    pub fn caused_by(self, cause: EventId) -> Envelope {
        Envelope {
            causation_id: Some(cause),
            ..self
        }
    }

    /// The same envelope with the instant its answer is due, when it is a confirmation's
    /// `payment.authorized` (`docs/decisions.md` §29); any other envelope is returned
    /// unchanged. Not content: the domain event, and so the content digest, are the same.
    #[must_use]
    pub fn with_answer_by(self, answer_by: Timestamp) -> Envelope {
        let payload = match self.payload {
            Payload::V1(v1::Payload::PaymentAuthorized(authorization))
                if authorization.mode == v1::AuthorizationMode::Confirmation =>
            {
                Payload::PaymentAuthorized(payload::PaymentAuthorized {
                    authorization,
                    answer_by: Some(answer_by),
                    payment_method: None,
                })
            }
            Payload::PaymentAuthorized(p)
                if p.authorization.mode == v1::AuthorizationMode::Confirmation =>
            {
                Payload::PaymentAuthorized(payload::PaymentAuthorized {
                    answer_by: Some(answer_by),
                    ..p
                })
            }
            other => other,
        };
        Envelope { payload, ..self }
    }

    /// The instant the answer to this event is due: a confirmation's `answer_by`, else
    /// `None`.
    pub fn answer_by(&self) -> Option<Timestamp> {
        self.payload.answer_by()
    }

    /// The event id, as derived from `source.identity` when the envelope was built or
    /// checked against it when it was decoded (v1's rule).
    pub fn event_id(&self) -> EventId {
        self.event_id
    }

    /// The contract name of the kind (`payment.captured`, …).
    pub fn kind_name(&self) -> &'static str {
        self.payload.kind_name()
    }

    /// The envelope as JSON bytes. An error is a bug in an encoder, surfaced rather than
    /// published as an empty payload.
    pub fn to_json(&self) -> Result<Vec<u8>, EncodeError> {
        serde_json::to_vec(self).map_err(|source| EncodeError {
            what: "an event envelope",
            source,
        })
    }

    /// The envelope as JSON bytes in `merchant`'s scope: what
    /// `self.clone().with_merchant(merchant).to_json()` writes, without copying the
    /// envelope (a publisher stamps its own scope on every event it sends).
    pub fn to_json_in(&self, merchant: &str) -> Result<Vec<u8>, EncodeError> {
        serde_json::to_vec(&self.wire(merchant)).map_err(|source| EncodeError {
            what: "an event envelope",
            source,
        })
    }

    /// The borrowed wire shape, in `merchant`'s scope.
    fn wire<'a>(&'a self, merchant: &'a str) -> Wire<'a> {
        Wire {
            schema: crate::SCHEMA,
            version: VERSION,
            // EventId serializes as its lowercase hyphenated UUID, as the wire writes it,
            // without a String per id.
            event_id: self.event_id,
            causation_id: self.causation_id,
            kind: self.kind_name(),
            merchant,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            source: &self.source,
            raw_digest: &self.raw_digest,
            payload: &self.payload,
        }
    }

    /// The domain event this envelope says, or the first field that breaks a rule: v1's
    /// checks, then the merchant and the cause. This is the full check [`crate::decode`]
    /// runs; call it on envelopes built by hand. The event id is the envelope's (see
    /// [`Envelope`]), not derived again.
    pub fn to_domain(&self) -> Result<Event, ContractError> {
        // Only debug builds pay for re-deriving the id: it catches an envelope whose
        // `source` was changed by hand after it was built.
        debug_assert_eq!(
            self.event_id,
            EventId::from_dedupe_key(&self.source.identity),
            "an envelope's event id must be its identity's"
        );
        let provider = v1::check_source(&self.source.provider, &self.source.identity)?;
        if let Some(d) = &self.raw_digest {
            v1::check_raw_digest(d)?;
        }
        let event = Event {
            id: self.event_id,
            provider,
            recorded_at: self.recorded_at,
            kind: self.payload.to_domain()?,
        };
        check_added(&self.merchant, self.causation_id, event.id)?;
        Ok(event)
    }
}

/// Checks a merchant scope: what `merchant` must be on the wire, and what
/// `STOCKLEDGER_MERCHANT` must be for the ingress to start.
pub fn check_merchant(merchant: &str) -> Result<(), ContractError> {
    let refuse = |m: &str| Err(ContractError::new("merchant", m));
    if merchant.is_empty() {
        return refuse("must not be empty");
    }
    if merchant.len() > MERCHANT_LEN_MAX {
        return refuse(&format!("is longer than {MERCHANT_LEN_MAX} bytes"));
    }
    if merchant.chars().any(char::is_control) {
        return refuse("must not contain control characters");
    }
    Ok(())
}

/// The rules of the fields v2 added, once v1's have passed for the event `event_id`.
fn check_added(
    merchant: &str,
    causation_id: Option<EventId>,
    event_id: EventId,
) -> Result<(), ContractError> {
    check_merchant(merchant)?;
    if causation_id == Some(event_id) {
        return Err(ContractError::new(
            "causation_id",
            "must not be the event's own id",
        ));
    }
    Ok(())
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire(&self.merchant).serialize(s)
    }
}

/// Deserializing goes through [`crate::decode_value`]: every known version (v1 upcast),
/// with the same checks as [`crate::decode`].
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        crate::decode_value::<Envelope>(&value)
            .map(|(e, _)| e)
            .map_err(serde::de::Error::custom)
    }
}
