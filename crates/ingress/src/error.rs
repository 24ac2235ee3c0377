//! The one error type of the HTTP edge and the one place it becomes a response:
//! `{"error": "<code>", "message": "<what is wrong, naming the field>"}`
//! ([`crate::wire::error::ErrorBody`]) with the status
//! `docs/interface.md` lists. Every failure is classified here once: 4xx is
//! permanent (the caller must change the request), 503 is transient (nothing was accepted;
//! retry later).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::wire::error::ErrorBody;

/// Why a request was not accepted. Handlers return it; [`IntoResponse`] renders it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or a parameter is not what the endpoint accepts. `field` names it.
    #[error("malformed field `{field}`: {message}")]
    Malformed { field: String, message: String },
    /// 401: missing or wrong credentials, or a signature that does not verify.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: the caller's address is not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: the thing named does not exist. `code` is `not_found` or the ledger's
    /// `refused:unknown_order` / `refused:unknown_return`.
    #[error("{code}: {message}")]
    NotFound { code: String, message: String },
    /// 409: the ledger refused the command; `code` is its reason (`refused:*`).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// 413: the body is larger than `STOCKLEDGER_MAX_BODY_BYTES`.
    #[error("body larger than {max} bytes")]
    TooLarge { max: usize },
    /// 415: a merchant API write whose `Content-Type` is not JSON (or is missing).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 503: NATS or the database is unavailable; nothing was accepted.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 503 `ledger_behind_stream`: the ledger database lacks events the stream has
    /// acknowledged (lost, or restored from an older backup) or is being rebuilt; no
    /// answer is computed from it (`docs/operations.md`, "Recovery").
    #[error("ledger behind the event stream: {0}")]
    LedgerBehind(String),
    /// 500: anything else (NATS refused a message it should have taken, a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn malformed(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Malformed {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Refused { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::LedgerBehind(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `error` code of the body.
    pub fn code(&self) -> &str {
        match self {
            ApiError::Malformed { .. } => "malformed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound { code, .. } | ApiError::Refused { code, .. } => code,
            ApiError::TooLarge { .. } => "body_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::LedgerBehind(_) => operator::standing::BEHIND_REASON,
            ApiError::Internal(_) => "internal",
        }
    }

    /// The human `message` of the body. Never contains a secret: callers only put field
    /// names, limits and the reasons the ledger or NATS gave.
    pub fn message(&self) -> String {
        match self {
            ApiError::Malformed { field, message } => format!("`{field}`: {message}"),
            ApiError::NotFound { message, .. } | ApiError::Refused { message, .. } => {
                message.clone()
            }
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unavailable(m)
            | ApiError::LedgerBehind(m)
            | ApiError::Internal(m) => m.clone(),
            ApiError::TooLarge { max } => format!("the request body is larger than {max} bytes"),
        }
    }
}

impl From<providers::Error> for ApiError {
    fn from(e: providers::Error) -> Self {
        match e {
            providers::Error::Malformed { field, message } => {
                ApiError::Malformed { field, message }
            }
            providers::Error::MissingSecret => {
                ApiError::Unauthorized("this provider's secret is not configured".into())
            }
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

/// What a caller is told when the database fails: nothing about which database, where,
/// or what the driver said (that goes to the log only).
pub const DATABASE_UNAVAILABLE: &str =
    "the ledger database is unavailable; nothing was accepted: retry later";

/// What a caller is told when an operator action could not reach NATS or the database.
pub const DATABASE_OR_NATS_UNAVAILABLE: &str =
    "the ledger database or NATS is unavailable; nothing changed: retry later";

/// What a caller is told when stored data is not what this release reads (a bug or a
/// damaged database); the detail is in the log.
pub const DATABASE_INTERNAL: &str = "internal error reading the ledger database; see the log";

impl From<store::StoreError> for ApiError {
    /// By [`store::StoreError::is_transient`], the store's one classification: a transient
    /// failure (database unreachable, pool timeout, conflicts that outlasted the retries)
    /// is a 503 with [`DATABASE_UNAVAILABLE`] (nothing was accepted; a retry may succeed);
    /// a permanent one (data this release cannot read, a statement the database rejects)
    /// is a 500 with [`DATABASE_INTERNAL`], since repeating the request cannot help. The
    /// driver's text (database name, host, SQL state) is logged here, never answered.
    fn from(e: store::StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "ledger database unavailable");
            ApiError::Unavailable(DATABASE_UNAVAILABLE.to_owned())
        } else {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "ledger database error");
            ApiError::Internal(DATABASE_INTERNAL.to_owned())
        }
    }
}

impl From<bus::BusError> for ApiError {
    /// By [`bus::BusError::is_transient`]: NATS unavailable (or its stream full) is a 503,
    /// a refusal a 500 (the ingress built a message NATS will never take).
    fn from(e: bus::BusError) -> Self {
        let (bus::BusError::Unavailable(cause) | bus::BusError::Refused(cause)) = &e;
        if e.is_transient() {
            ApiError::Unavailable(format!("NATS: {cause}"))
        } else {
            ApiError::Internal(format!("NATS refused the event: {cause}"))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Internal(_) | ApiError::Unavailable(_)) {
            tracing::warn!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: self.code().to_owned(),
            message: self.message(),
        };
        (self.status(), Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a caller is told after a failure: retry later (503) only when a retry can
    /// succeed; a 500 when repeating the request cannot help. Never the driver's text.
    #[test]
    fn transient_failures_are_503_and_permanent_ones_500() {
        let cases = [
            (
                ApiError::from(store::StoreError::from(store::sqlx::Error::PoolTimedOut)),
                503,
            ),
            (ApiError::from(store::StoreError::Conflict), 503),
            (
                ApiError::from(store::StoreError::Corrupt("secret-db-name: bad".into())),
                500,
            ),
            (ApiError::from(bus::BusError::unavailable("nats down")), 503),
            (
                ApiError::from(bus::BusError::refused("message too large")),
                500,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert!(!error.message().contains("secret-db-name"), "{error:?}");
        }
    }
}
