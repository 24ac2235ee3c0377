//! # contract: the versioned wire shapes of contract events
//!
//! Serialization is a boundary, and this crate is it. It owns the event envelope
//! (`schema`, `version`, `event_id`, `kind`, times, source, raw digest, payload), one
//! payload shape per contract event kind, the upcasters from older versions, and the
//! decoder every consumer uses. The domain never sees JSON; the wire never sees a domain
//! type's derived serde.
//!
//! - [`v1`]: the released version 1, never edited; its payloads are v2's too.
//! - [`v2`]: version 2 (v1 plus `merchant` and `causation_id`), what this release writes:
//!   [`Envelope`] is v2's. [`v2::upcast`] turns a v1 envelope into a v2 one.
//! - [`decode`] / [`decode_event`] / [`decode_received`]: bytes to an envelope of the
//!   current version (older versions upcast) and its domain event, in one pass over one
//!   parsed document, with one error type, [`DecodeError`], whose variants a consumer
//!   branches on. The event id is read from the envelope and checked against
//!   `source.identity` once, there; the envelope carries it after.
//! - [`Envelope::to_json`]: the one encoding, fallible ([`EncodeError`]) so that a bug is
//!   an error and never an empty payload.
//! - [`content_digest`] / [`Envelope::content_digest`]: what "the same content" means for
//!   one event id (`docs/decisions.md` §26): kind and payload, canonical, without times,
//!   source, merchant or raw digest.
//! - [`withdrawal`]: the `reservation.expired` that withdraws a synchronous confirmation
//!   answered "no" (`docs/decisions.md` §29), one event whoever writes it.
//! - The JSON Schemas and golden examples live in `schemas/v<N>/` at the repository root;
//!   the tests keep every golden example of every version decoding forever. How to add a
//!   version: `docs/schema-evolution.md`.

mod de;
mod digest;
mod error;
pub mod stock_change;
pub mod v1;
pub mod v2;
pub mod wire_time;
pub mod withdrawal;

use domain::Event;
use serde_json::Value;

pub use digest::{MERCHANT_API, content_digest, content_digest_of_json};
pub use error::{ContractError, DecodeError, EncodeError};
pub use v1::Source;
pub use v2::Envelope;

/// The `schema` name every envelope carries.
pub const SCHEMA: &str = "stockledger.event";

/// The envelope version this release writes.
pub const CURRENT_VERSION: u32 = v2::VERSION;

/// The merchant scope of a deployment that serves one merchant, and of every v1 event
/// (which has no `merchant`) once upcast.
pub const DEFAULT_MERCHANT: &str = "default";

/// The largest envelope [`decode`] reads, in bytes. Bigger than any valid event (500
/// lines of the longest identifiers are about 250 KiB) and no bigger than the bus's
/// default message size.
pub const ENVELOPE_LEN_MAX_BYTES: usize = 1024 * 1024;

/// Decodes and fully validates an envelope of any known version (older ones upcast to the
/// current one): the shape, the event id against the identity, and every value against
/// the domain's rules.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    decode_event(bytes).map(|(envelope, _)| envelope)
}

/// Like [`decode`], and also returns the domain event the envelope says.
pub fn decode_event(bytes: &[u8]) -> Result<(Envelope, Event), DecodeError> {
    decode_received(bytes).map(|r| (r.envelope, r.event))
}

/// A message decoded by [`decode_received`]: the envelope, the domain event it says, and
/// the message itself as text.
#[derive(Debug)]
pub struct Received<'a> {
    /// The envelope, of the current version (an older one upcast).
    pub envelope: Envelope,
    /// The domain event the envelope says; its id is the envelope's `event_id`.
    pub event: Event,
    /// The bytes as received, as text: a decoded message is JSON, and JSON is UTF-8, so
    /// this is exactly what was received (nothing replaced), for a store that keeps the
    /// envelope as text.
    pub text: &'a str,
}

/// Like [`decode_event`], and also returns the message as text, checked as UTF-8 once on
/// the way in (a consumer that stores the envelope needs no lossy conversion of its own).
pub fn decode_received(bytes: &[u8]) -> Result<Received<'_>, DecodeError> {
    if bytes.len() > ENVELOPE_LEN_MAX_BYTES {
        return Err(DecodeError::Undecodable {
            message: format!(
                "{} bytes is more than {ENVELOPE_LEN_MAX_BYTES}",
                bytes.len()
            ),
        });
    }
    // JSON is UTF-8: checking it here, once, lets the parser skip its own check and gives
    // the caller the text it stores.
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::Undecodable {
        message: format!("not JSON: {e}"),
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| DecodeError::Undecodable {
        message: format!("not JSON: {e}"),
    })?;
    let (envelope, event) = decode_value::<Envelope>(&value)?;
    Ok(Received {
        envelope,
        event,
        text,
    })
}

/// Decodes and fully validates an envelope already parsed as JSON, into `E`: [`Envelope`]
/// reads every known version; [`v1::Envelope`] reads version 1 only, exactly as the release
/// that wrote v1 did (its `Deserialize` calls this), and answers `UnknownVersion` for newer
/// ones.
pub fn decode_value<E: Decodable>(value: &Value) -> Result<(E, Event), DecodeError> {
    let Some(map) = value.as_object() else {
        return Err(DecodeError::Undecodable {
            message: "not a JSON object".to_owned(),
        });
    };
    match map.get("schema") {
        Some(Value::String(s)) if s == SCHEMA => {}
        Some(other) => {
            return Err(DecodeError::Undecodable {
                message: format!("schema is {other}, not {SCHEMA:?}"),
            });
        }
        None => {
            return Err(DecodeError::Undecodable {
                message: "no schema".to_owned(),
            });
        }
    }
    let version = match map.get("version") {
        Some(v) => v.as_u64().ok_or_else(|| DecodeError::Undecodable {
            message: format!("version {v} is not a non-negative integer"),
        })?,
        None => {
            return Err(DecodeError::Undecodable {
                message: "no version".to_owned(),
            });
        }
    };
    E::read_version(value, version)
}

/// An envelope type [`decode_value`] can read into: [`Envelope`] or [`v1::Envelope`].
/// Sealed: the versions are this crate's.
///
/// Why generic: the frozen `v1` module's `Deserialize` calls `crate::decode_value` and
/// needs a `v1::Envelope` back. Making the target a parameter keeps v1's reading exactly
/// as released while the current decoder returns v2.
pub trait Decodable: sealed::Sealed + Sized {
    /// Reads a `stockledger.event` object (`value`) that claims `version`, with its domain
    /// event.
    #[doc(hidden)]
    fn read_version(value: &Value, version: u64) -> Result<(Self, Event), DecodeError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::v1::Envelope {}
    impl Sealed for crate::v2::Envelope {}
}

impl Decodable for v2::Envelope {
    fn read_version(value: &Value, version: u64) -> Result<(Self, Event), DecodeError> {
        // One arm per released version; older versions are upcast to the current one here,
        // the only step a v1 envelope takes that a v2 one does not.
        match version {
            1 => read_v1(value).map(|(envelope, event)| (v2::upcast(envelope), event)),
            2 => Ok(v2::read_envelope(value)?),
            other => Err(DecodeError::UnknownVersion { version: other }),
        }
    }
}

impl Decodable for v1::Envelope {
    fn read_version(value: &Value, version: u64) -> Result<(Self, Event), DecodeError> {
        match version {
            1 => read_v1(value),
            other => Err(DecodeError::UnknownVersion { version: other }),
        }
    }
}

fn read_v1(value: &Value) -> Result<(v1::Envelope, Event), DecodeError> {
    let envelope = v1::read_envelope(value)?;
    let event = envelope.to_domain()?;
    Ok((envelope, event))
}
