//! The exception queue on the wire: the body of every operator action
//! (`POST /v1/exceptions/{id}/retry|resolve|dismiss|release|keep`) and the queue list.
//!
//! The action's text (`actor`, `reason`, `evidence`, `idempotency_key`) is checked by
//! `operator::actions`, the one place its rules live (shared with `stockctl`): no control
//! characters, bounded, a refusal naming the field, before anything is read or published.
//! Here only its shape: strings, `actor` and `reason` present, nothing else.
//!
//! The answers of `show` and of the actions are the operator crate's and the store's own
//! serializable types (`store::QueueDetail`, `operator::actions::ActionReport`,
//! `operator::actions::RetryReport`), answered as they are.

use operator::actions::ActionRequest;
use serde::{Deserialize, Serialize};

use super::required;
use crate::error::ApiError;

/// An operator action's body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an action: an object with `actor`, `reason` and optionally `evidence` and `idempotency_key`"
)]
#[schema(example = json!({"actor": "ann@example.com", "reason": "the warehouse confirmed the count"}))]
pub struct ActionBody {
    /// Required. Who acts (a person or a console login), recorded in the audit trail.
    #[schema(required = true, value_type = String)]
    pub actor: Option<String>,
    /// Required. Why, recorded.
    #[schema(required = true, value_type = String)]
    pub reason: Option<String>,
    /// Optional. What shows the action is right (a ticket, a note); may span lines.
    pub evidence: Option<String>,
    /// Optional. Makes a repeat of the same action one event; a fresh key is made when
    /// absent.
    pub idempotency_key: Option<String>,
}

impl TryFrom<ActionBody> for ActionRequest {
    type Error = ApiError;

    fn try_from(body: ActionBody) -> Result<ActionRequest, ApiError> {
        Ok(ActionRequest {
            actor: required(body.actor, "actor")?,
            reason: required(body.reason, "reason")?,
            evidence: body.evidence,
            idempotency_key: body.idempotency_key,
        })
    }
}

/// `GET /v1/exceptions`: the queue, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ExceptionList {
    pub exceptions: Vec<store::QueueItem>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::read;

    fn request(body: &str) -> Result<ActionRequest, ApiError> {
        ActionRequest::try_from(read::<ActionBody>(body.as_bytes())?)
    }

    #[test]
    fn actions_need_actor_and_reason_and_nothing_unknown() {
        let r = request(r#"{"actor":"ann","reason":"why","evidence":null}"#).expect("request");
        assert_eq!((r.actor.as_str(), r.evidence), ("ann", None));
        for (body, field) in [
            (r#"{"reason":"why"}"#, "actor"),
            (r#"{"actor":"ann","reason":null}"#, "reason"),
            (r#"{"actor":"ann","reason":"why","note":"x"}"#, "note"),
            (r#"{"actor":5,"reason":"why"}"#, "actor"),
            (r#"{"actor":"ann","actor":"bob","reason":"why"}"#, "body"),
        ] {
            match request(body) {
                Err(ApiError::Malformed { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}

/// An evidence pack as downloaded (`GET /v1/exceptions/{id}/evidence`): the bytes of a zip
/// file, described as a binary string.
#[derive(Debug, Clone, utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct EvidenceZip(pub Vec<u8>);
