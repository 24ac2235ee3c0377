//! The exception queue over HTTP, for an ops console (bearer token, like the merchant
//! API): the same reads and actions as `stockctl exceptions`, through the same code
//! (`operator::actions`), each action audited with the `actor` and `reason` of the body.
//!
//! - `GET /v1/exceptions?reason=&state=&older_than=&limit=`: the queue, newest first.
//! - `GET /v1/exceptions/{id}`: one problem with its evidence, actions and outcomes.
//! - `GET /v1/exceptions/{id}/evidence`: the exception's evidence pack as a zip
//!   (`operator::evidence`: its event as received and recorded, the raw body, entries,
//!   outcomes, actions, a chained manifest).
//! - `POST /v1/exceptions/{id}/retry`: decide the exception's event again (safe at any
//!   time; a final outcome never changes).
//! - `POST /v1/exceptions/{id}/resolve`: close as a deliberate no-op.
//! - `POST /v1/exceptions/{id}/dismiss`: close as not a problem.
//! - `POST /v1/exceptions/{id}/release`: `void_after_capture` only; `sold → available` for
//!   the order's lines (the goods never left).
//! - `POST /v1/exceptions/{id}/keep`: `void_after_capture` only; a recorded no-op (the goods
//!   left).
//!
//! Every action's body is `{"actor", "reason"}` (required) and optionally `"evidence"` and
//! `"idempotency_key"`. An action is an event: published through JetStream and applied by
//! the ledger, which writes the row's state and the audit trail; the ingress writes
//! nothing. The answer waits for the ledger's decision (`"result": "pending"` after the
//! confirmation deadline): 200 with the report, 400 without actor or reason, 404 for an
//! unknown exception, 409 for an action that does not fit the exception (`release` of an
//! `oversold`: `not_void_after_capture`) or a retry that cannot be made (`not_retryable`).
//!
//! Input is strict (`docs/decisions.md` §31): an action's `Content-Type` must be JSON
//! (415), a repeated key is a 400, and `actor`, `reason`, `evidence` and `idempotency_key`
//! are checked text (`operator::actions`: no control characters, bounded), refused with
//! a 400 naming the field before anything is read or published. A database or NATS
//! failure is a 503 whose message names neither (the detail is logged).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use domain::OperatorAction;
use operator::actions::{ActionError, ActionReport, ActionRequest, Actions, RetryReport};
use store::{QueueDetail, QueueFilter};

use crate::AppState;
use crate::error::ApiError;
use crate::input::JsonBody;
use crate::publish;
use crate::wire::exceptions::{ActionBody, ExceptionList};

fn actions(state: &AppState) -> Actions {
    Actions {
        bus: state.bus.clone(),
        store: state.store.clone(),
        wait: state.settings.confirmation_deadline,
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(id) => ApiError::NotFound {
                code: "not_found".into(),
                message: format!("no exception {id}"),
            },
            ActionError::Invalid(m) => ApiError::malformed("body", m),
            ActionError::InvalidField { field, message } => ApiError::malformed(field, message),
            ActionError::NotRetryable(m) => ApiError::Refused {
                code: domain::RefusalReason::NotRetryable.as_str().into(),
                message: m,
            },
            ActionError::Refused { code, message } => ApiError::Refused { code, message },
            ActionError::Unavailable(m) => {
                // The detail (NATS or the database, and what its driver said) is logged,
                // never answered.
                tracing::warn!(error = %m, "operator action: unavailable");
                ApiError::Unavailable(crate::error::DATABASE_OR_NATS_UNAVAILABLE.to_owned())
            }
            // Permanent: the same bytes are read on every retry, so 500, not 503.
            ActionError::Corrupt(e) => ApiError::from(e),
        }
    }
}

/// `GET /v1/exceptions`.
#[utoipa::path(
    get, path = "/v1/exceptions", tag = "exceptions",
    params(
        ("reason" = Option<String>, Query, description = "Only this reason code (`oversold`, `unknown_order`, …)."),
        ("state" = Option<String>, Query, pattern = "^(open|retrying|resolved)$", description = "`open`, `retrying` or `resolved`."),
        ("older_than" = Option<String>, Query, description = "Only problems older than this duration (`10m`, `2h`, `7d`)."),
        ("limit" = Option<i64>, Query, minimum = 1, description = "At most this many rows."),
    ),
    responses(
        (status = 200, description = "The queue, newest first.", body = ExceptionList),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ExceptionList>, ApiError> {
    for key in query.keys() {
        if !["reason", "state", "older_than", "limit"].contains(&key.as_str()) {
            return Err(ApiError::malformed(key.clone(), "unknown query parameter"));
        }
    }
    let state_filter = query.get("state").cloned();
    if let Some(s) = &state_filter
        && !["open", "retrying", "resolved"].contains(&s.as_str())
    {
        return Err(ApiError::malformed(
            "state",
            "expected open, retrying or resolved",
        ));
    }
    let created_before = match query.get("older_than") {
        Some(age) => {
            let d = config::parse_duration(age).ok_or_else(|| {
                ApiError::malformed("older_than", "expected a duration such as 10m")
            })?;
            Some(publish::now().0 - i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        }
        None => None,
    };
    let limit = match query.get("limit") {
        Some(l) => Some(
            l.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::malformed("limit", "expected a positive integer"))?,
        ),
        None => None,
    };
    if let Some(reason) = query.get("reason") {
        domain::check_line("reason", reason, domain::types::IDENTIFIER_LEN_MAX)
            .map_err(|e| ApiError::malformed("reason", e.to_string()))?;
    }
    let filter = QueueFilter {
        reason: query.get("reason").cloned(),
        state: state_filter,
        created_before,
        limit,
    };
    let rows = state.store.queue_list(&filter).await?;
    Ok(Json(ExceptionList { exceptions: rows }))
}

/// `GET /v1/exceptions/{id}`.
#[utoipa::path(
    get, path = "/v1/exceptions/{id}", tag = "exceptions",
    params(("id" = String, Path, description = "The exception's id (its event id).")),
    responses(
        (status = 200, description = "The problem with its evidence, audit trail and outcomes.", body = store::QueueDetail),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QueueDetail>, ApiError> {
    domain::ExceptionId::parse(id.as_str())
        .map_err(|e| ApiError::malformed("id", e.to_string()))?;
    match state.store.queue_item(&id).await? {
        Some(detail) => Ok(Json(detail)),
        None => Err(ActionError::NotFound(id).into()),
    }
}

/// `GET /v1/exceptions/{id}/evidence`.
#[utoipa::path(
    get, path = "/v1/exceptions/{id}/evidence", tag = "exceptions",
    description = "The exception's evidence pack as one zip: the raw provider body as received with its SHA-256 and how the sender was verified, every event envelope, the ledger entries with balances before and after, the outcomes, the exception and its operator actions, a summary.html, and a manifest.json chaining every file's SHA-256 (`stockctl evidence verify`).",
    params(("id" = String, Path, description = "The exception's id (its event id).")),
    responses(
        (status = 200, description = "The evidence pack (a zip file).", content_type = "application/zip", body = crate::wire::exceptions::EvidenceZip),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn evidence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    domain::ExceptionId::parse(id.as_str())
        .map_err(|e| ApiError::malformed("id", e.to_string()))?;
    let input = operator::evidence::gather(
        &state.store,
        &state.bus,
        operator::evidence::Subject::Exception(id.clone()),
        publish::now().0,
    )
    .await
    .map_err(|e| match e {
        operator::evidence::EvidenceError::NotFound(_) => ActionError::NotFound(id.clone()).into(),
        operator::evidence::EvidenceError::Unavailable(m) => {
            tracing::warn!(error = %m, "evidence pack: unavailable");
            ApiError::Unavailable(crate::error::DATABASE_OR_NATS_UNAVAILABLE.to_owned())
        }
        operator::evidence::EvidenceError::Corrupt(e) => ApiError::from(e),
    })?;
    let (_, zip) = operator::evidence::build(&input)
        .to_zip()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"evidence-exception-{name}.zip\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        zip,
    )
        .into_response())
}

/// The action's body ([`ActionBody`]): `actor` and `reason` required, `evidence` and
/// `idempotency_key` optional; their text is checked by `operator::actions`.
fn action_request(body: &JsonBody) -> Result<ActionRequest, ApiError> {
    ActionRequest::try_from(body.read::<ActionBody>()?)
}

/// `POST /v1/exceptions/{id}/retry`.
#[utoipa::path(
    post, path = "/v1/exceptions/{id}/retry", tag = "exceptions",
    description = "Decide the exception's event again (safe at any time).",
    params(("id" = String, Path, description = "The exception's id.")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "What the action did (`pending` when the ledger's decision is not back within the deadline).", body = operator::actions::RetryReport),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<RetryReport>, ApiError> {
    let req = action_request(&body)?;
    Ok(Json(actions(&state).retry_with(&id, &req).await?))
}

async fn act(
    state: &AppState,
    id: &str,
    action: OperatorAction,
    body: &JsonBody,
) -> Result<Json<ActionReport>, ApiError> {
    let req = action_request(body)?;
    Ok(Json(actions(state).act(id, action, &req).await?))
}

/// `POST /v1/exceptions/{id}/resolve`.
#[utoipa::path(
    post, path = "/v1/exceptions/{id}/resolve", tag = "exceptions",
    description = "Close as a deliberate no-op.",
    params(("id" = String, Path, description = "The exception's id.")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "What the action did (`pending` when the ledger's decision is not back within the deadline).", body = operator::actions::ActionReport),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<ActionReport>, ApiError> {
    act(&state, &id, OperatorAction::Resolve, &body).await
}

/// `POST /v1/exceptions/{id}/dismiss`.
#[utoipa::path(
    post, path = "/v1/exceptions/{id}/dismiss", tag = "exceptions",
    description = "Close as not a problem.",
    params(("id" = String, Path, description = "The exception's id.")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "What the action did (`pending` when the ledger's decision is not back within the deadline).", body = operator::actions::ActionReport),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn dismiss(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<ActionReport>, ApiError> {
    act(&state, &id, OperatorAction::Dismiss, &body).await
}

/// `POST /v1/exceptions/{id}/release`.
#[utoipa::path(
    post, path = "/v1/exceptions/{id}/release", tag = "exceptions",
    description = "`void_after_capture` only: `sold → available` for the order's lines.",
    params(("id" = String, Path, description = "The exception's id.")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "What the action did (`pending` when the ledger's decision is not back within the deadline).", body = operator::actions::ActionReport),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<ActionReport>, ApiError> {
    act(&state, &id, OperatorAction::Release, &body).await
}

/// `POST /v1/exceptions/{id}/keep`.
#[utoipa::path(
    post, path = "/v1/exceptions/{id}/keep", tag = "exceptions",
    description = "`void_after_capture` only: the goods left; a recorded no-op.",
    params(("id" = String, Path, description = "The exception's id.")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "What the action did (`pending` when the ledger's decision is not back within the deadline).", body = operator::actions::ActionReport),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn keep(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<ActionReport>, ApiError> {
    act(&state, &id, OperatorAction::Keep, &body).await
}
