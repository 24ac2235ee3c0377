//! The merchant API's authentication: `Authorization: Bearer $STOCKLEDGER_API_TOKEN`,
//! compared in constant time. Both sides are hashed first, so the comparison takes the
//! same time whatever the length of the presented token.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::AppState;
use crate::error::ApiError;

/// Lets the request through only with the right bearer token; 401 otherwise. The token is
/// never logged.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
            .into_response();
    };
    if !token_matches(presented, state.settings.api_token.expose()) {
        return ApiError::Unauthorized("the bearer token is not valid".into()).into_response();
    }
    next.run(req).await
}

/// Constant-time comparison of a presented token with the configured one.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    !expected.is_empty() && bool::from(a.ct_eq(&b))
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("", ""));
        assert!(!token_matches("abcd", "abc"));
    }
}
