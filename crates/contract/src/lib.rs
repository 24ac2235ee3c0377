//! # contract: the versioned wire shapes of contract events
//!
//! Serialization is a boundary, and this crate is it. It owns the event envelope
//! (`schema`, `version`, `event_id`, `kind`, times, source, raw digest, payload), one
//! payload shape per contract event kind, and the decoder every consumer uses. The domain
//! never sees JSON; the wire never sees a domain type's derived serde.
//!
//! - [`v1`]: the released version 1, never edited. A future `v2` sits beside it with an
//!   upcaster, and [`Envelope`] becomes v2's.
//! - [`decode`] / [`decode_event`]: bytes to an envelope (and its domain event) with one
//!   error type, [`DecodeError`], whose variants a consumer branches on.
//! - The JSON Schemas and golden examples live in `schemas/v1/` at the repository root;
//!   the tests keep every golden example decoding forever.

mod error;
mod json;
pub mod stock_change;
pub mod v1;
pub mod wire_time;

use domain::Event;
use serde_json::Value;

pub use error::{ContractError, DecodeError};
pub use v1::{Envelope, Source};

/// The `schema` name every envelope carries.
pub const SCHEMA: &str = "stockledger.event";

/// The envelope version this release writes.
pub const CURRENT_VERSION: u32 = v1::VERSION;

/// The largest envelope [`decode`] reads, in bytes. Bigger than any valid event (500
/// lines of the longest identifiers are about 250 KiB) and no bigger than the bus's
/// default message size.
pub const ENVELOPE_LEN_MAX_BYTES: usize = 1024 * 1024;

/// Decodes and fully validates an envelope: the shape, the event id against the identity,
/// and every value against the domain's rules.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    decode_event(bytes).map(|(envelope, _)| envelope)
}

/// Like [`decode`], and also returns the domain event the envelope says.
pub fn decode_event(bytes: &[u8]) -> Result<(Envelope, Event), DecodeError> {
    if bytes.len() > ENVELOPE_LEN_MAX_BYTES {
        return Err(DecodeError::Undecodable {
            message: format!(
                "{} bytes is more than {ENVELOPE_LEN_MAX_BYTES}",
                bytes.len()
            ),
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError::Undecodable {
        message: format!("not JSON: {e}"),
    })?;
    decode_value(&value)
}

/// Decodes and fully validates an envelope already parsed as JSON.
pub fn decode_value(value: &Value) -> Result<(Envelope, Event), DecodeError> {
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
    // One arm per released version; older versions are upcast to the current one here.
    let envelope = match version {
        1 => v1::read_envelope(map)?,
        other => return Err(DecodeError::UnknownVersion { version: other }),
    };
    let event = envelope.to_domain()?;
    Ok((envelope, event))
}
