//! The operations endpoints' JSON answers: `/healthz` and `/readyz`. (`/metrics` is
//! OpenMetrics text, not JSON.)
//!
//! Fields are declared alphabetically: the order the former `json!` answers printed (see
//! [`crate::wire`]).

use serde::Serialize;

/// `/healthz`: the process serves requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

impl Health {
    /// The only answer.
    pub const OK: Health = Health { status: "ok" };
}

/// Why the ingress is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotReadyReason {
    /// NATS is not connected, or the event stream could not be read.
    NatsUnavailable,
    /// The ledger database does not answer.
    DatabaseUnavailable,
    /// The ledger lacks events the stream acknowledged, or is being rebuilt
    /// (`operator::standing::BEHIND_REASON`).
    LedgerBehindStream,
}

/// `/readyz`: 200 with `ready: true` and `status: "ready"`, or 503 with `ready: false`,
/// every reason, and the error shape's `error` and `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Whether the database answers.
    pub database: bool,
    /// `unavailable` when not ready; absent when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// `not ready: …` with every reason in words; absent when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether NATS is connected.
    pub nats: bool,
    pub ready: bool,
    /// Empty when ready.
    pub reasons: Vec<NotReadyReason>,
    /// `ready` when ready; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

impl Readiness {
    /// Ready: NATS connected, the database answering, the ledger current.
    pub fn ready() -> Readiness {
        Readiness {
            database: true,
            error: None,
            message: None,
            nats: true,
            ready: true,
            reasons: Vec::new(),
            status: Some("ready"),
        }
    }

    /// Not ready, for `reasons` (non-empty), described by `message`.
    pub fn not_ready(
        nats: bool,
        database: bool,
        reasons: Vec<NotReadyReason>,
        message: String,
    ) -> Readiness {
        Readiness {
            database,
            error: Some("unavailable"),
            message: Some(message),
            nats,
            ready: false,
            reasons,
            status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &impl Serialize) -> Option<String> {
        serde_json::to_string(v).ok()
    }

    #[test]
    fn answers_keep_their_bytes() {
        assert_eq!(
            text(&Health::OK),
            Some(serde_json::json!({"status": "ok"}).to_string())
        );
        let old = serde_json::json!({"ready": true, "reasons": [], "status": "ready", "nats": true, "database": true});
        assert_eq!(text(&Readiness::ready()), Some(old.to_string()));
        let not = Readiness::not_ready(
            true,
            false,
            vec![
                NotReadyReason::DatabaseUnavailable,
                NotReadyReason::LedgerBehindStream,
            ],
            "not ready: x".into(),
        );
        let old = serde_json::json!({"ready": false,
            "reasons": ["database_unavailable", operator::standing::BEHIND_REASON],
            "error": "unavailable", "message": "not ready: x", "nats": true, "database": false});
        assert_eq!(text(&not), Some(old.to_string()));
    }
}
