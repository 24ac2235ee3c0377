//! Pure parsing and signature verification of the payment providers' wire formats.
//!
//! This crate knows the bytes each provider sends (PortOne, Stripe, Adyen, iPint) and nothing
//! else: no I/O, no clock, no async. Callers pass the raw request body, headers, secrets and the
//! current time in; they get typed messages, a verification verdict, a classification that maps
//! the message onto a contract-event intent (see `providers.md` part 1), and the deterministic
//! dedupe key for that message.
//!
//! Every parser accepts arbitrary bytes and returns either a value or a typed [`Error`]; none of
//! them panic. Money is never a float: amounts are [`rust_decimal::Decimal`] or integer minor
//! units.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod json;
pub mod mac;
pub mod money;

pub mod adyen;
pub mod events;
pub mod ipint;
pub mod portone;
pub mod stripe;

pub use json::parse_object;
pub use money::MinorAmount;

/// Everything that can go wrong while parsing or verifying a provider message.
///
/// Callers branch on the variant (see [`Error::http_status`]); the message text is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The body (or one field in it) is not what the provider's format allows. `field` names the
    /// offending field as a dotted path (`"body"` when the body is not JSON at all).
    #[error("malformed field `{field}`: {message}")]
    Malformed {
        /// Dotted path of the offending field, e.g. `notificationItems[0].NotificationRequestItem.amount.value`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The message carries no signature, an unparseable one, or one that does not match any
    /// configured secret.
    #[error("signature missing or does not match")]
    BadSignature,
    /// The signature is valid but its timestamp is outside the allowed tolerance (replay guard).
    #[error("signed timestamp outside the tolerance window")]
    StaleTimestamp,
    /// No secret (key, password) is configured for this check, so it cannot pass.
    #[error("no secret configured for this provider check")]
    MissingSecret,
    /// A shared credential (HTTP Basic auth, PortOne key) is missing or does not match.
    #[error("credentials missing or do not match")]
    BadCredentials,
}

impl Error {
    /// The HTTP status an ingress should answer with: 400 for [`Error::Malformed`], 401 for
    /// every authentication failure. Decided here once so every route agrees.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Malformed { .. } => 400,
            Error::BadSignature
            | Error::StaleTimestamp
            | Error::MissingSecret
            | Error::BadCredentials => 401,
        }
    }

    /// Shorthand constructor for [`Error::Malformed`].
    pub(crate) fn malformed(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Malformed {
            field: field.into(),
            message: message.into(),
        }
    }
}
