//! The error types of the contract: [`DecodeError`], what a consumer of bytes branches
//! on, [`ContractError`], a field of a known version that is missing or invalid, and
//! [`EncodeError`], a value that could not be written as JSON.

/// Why bytes could not become a contract event.
///
/// The variants are the ones a consumer branches on, and they are deliberately exhaustive:
/// a new variant must break every `match` so each consumer decides again whether it is
/// transient or permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a stockledger event at all: not JSON, not an object, too large, no `schema` or a
    /// different schema name, no readable `version`. No release will ever read it.
    #[error("undecodable event: {message}")]
    Undecodable {
        /// What was wrong, for the exception queue's evidence.
        message: String,
    },
    /// A stockledger event of a version this release does not know, probably written by a
    /// newer producer. A newer consumer may read it.
    #[error("unknown envelope version {version}")]
    UnknownVersion {
        /// The version the envelope claims.
        version: u64,
    },
    /// A known version whose field is missing or invalid.
    #[error("invalid field `{field}`: {message}")]
    Invalid {
        /// A JSON path to the field, such as `payload.lines[0].sku` or `event_id`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A field of a known envelope version that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field `{field}`: {message}")]
pub struct ContractError {
    /// A JSON path to the field, such as `payload.lines[0].sku` or `event_id`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ContractError {
    /// The error for the field at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<ContractError> for DecodeError {
    fn from(e: ContractError) -> Self {
        DecodeError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// A contract value that could not be written as JSON.
///
/// No value this crate builds fails to encode today (plain strings, integers and clamped
/// times), but the encoders return this rather than an empty payload: a bug here must stop
/// a publish or a write, never send zero bytes that a consumer would record as an
/// undecodable exception.
#[derive(Debug, thiserror::Error)]
#[error("could not encode {what} as JSON")]
pub struct EncodeError {
    /// What was being encoded (`an event envelope`, `a stock change`).
    pub what: &'static str,
    /// Why serde_json refused it.
    #[source]
    pub source: serde_json::Error,
}
