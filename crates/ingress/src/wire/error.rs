//! The error bodies: `{"error": "<code>", "message": "<what is wrong>"}`, the one shape of
//! every failure the ingress answers ([`crate::error::ApiError`] renders it), and the
//! refusal PortOne's inventory confirmation expects, `{"reason": "<code>"}` with an
//! optional `message`.

use serde::Serialize;

/// Every 4xx and 5xx of the ingress (except PortOne's confirmation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `malformed`, `unauthorized`, `not_found`, `refused:…`,
    /// `idempotency_key_reused`, `unavailable`, `ledger_behind_stream`, …
    pub error: String,
    /// What is wrong, for a person; a 400 starts with the field's path in backquotes
    /// (`` `lines[2].quantity`: … ``).
    pub message: String,
}

/// A non-200 answer of `POST /portone/inventory-confirmation` (200 has an empty body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConfirmationRefusal {
    /// More to say, when there is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why PortOne must not go on: `unknown_order`, `amount_mismatch`,
    /// `insufficient_inventory`, `decision_timeout`, …
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_their_bytes() {
        let e = ErrorBody {
            error: "malformed".into(),
            message: "`x`: missing".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).ok(),
            Some(serde_json::json!({"error": "malformed", "message": "`x`: missing"}).to_string())
        );
        let r = ConfirmationRefusal {
            message: None,
            reason: "unknown_order".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).ok(),
            Some(r#"{"reason":"unknown_order"}"#.to_owned())
        );
        let r = ConfirmationRefusal {
            message: Some("m".into()),
            reason: "r".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).ok(),
            Some(serde_json::json!({"reason": "r", "message": "m"}).to_string())
        );
    }
}
