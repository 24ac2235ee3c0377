//! The exception queue over HTTP, for an ops console (bearer token, like the merchant
//! API): the same reads and actions as `stockctl exceptions`, through the same code
//! (`exceptions::actions`), each action audited with the `actor` and `reason` of the body.
//!
//! - `GET /v1/exceptions?reason=&state=&older_than=&limit=`: the queue, newest first.
//! - `GET /v1/exceptions/{id}`: one problem with its evidence, actions and outcomes.
//! - `POST /v1/exceptions/{id}/retry` `{"actor","reason"}`: re-publish the original event
//!   (safe at any time; a final outcome never changes).
//! - `POST /v1/exceptions/{id}/resolve` `{"actor","reason"}`: close as a deliberate no-op.
//!
//! These writes touch only the exception queue's workflow (its state and audit trail),
//! never the ledger: a retry reaches the ledger as an event through JetStream.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use exceptions::actions::{ActionError, Actions};
use serde_json::{Value, json};
use store::QueueFilter;

use crate::error::ApiError;
use crate::input::{Obj, parse_body};
use crate::{AppState, RawBody};

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
            ActionError::NotRetryable(m) => ApiError::Refused {
                code: "not_retryable".into(),
                message: m,
            },
            ActionError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

/// `GET /v1/exceptions`.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
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
            Some(exceptions::now().0 - i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
    let filter = QueueFilter {
        reason: query.get("reason").cloned(),
        state: state_filter,
        created_before,
        limit,
    };
    let rows = state.store.queue_list(&filter).await?;
    Ok(Json(json!({ "exceptions": rows })))
}

/// `GET /v1/exceptions/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.store.queue_item(&id).await? {
        Some(detail) => Ok(Json(
            serde_json::to_value(detail).map_err(|e| ApiError::Internal(e.to_string()))?,
        )),
        None => Err(ActionError::NotFound(id).into()),
    }
}

/// `{"actor": "...", "reason": "..."}`, both required.
fn who_and_why(raw: &[u8]) -> Result<(String, String), ApiError> {
    let body = parse_body(raw)?;
    let o = Obj::root(&body)?;
    o.only(&["actor", "reason"])?;
    Ok((o.str("actor")?.to_owned(), o.str("reason")?.to_owned()))
}

/// `POST /v1/exceptions/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(raw): RawBody,
) -> Result<Json<Value>, ApiError> {
    let (actor, reason) = who_and_why(&raw)?;
    let report = actions(&state).retry(&id, &actor, &reason).await?;
    Ok(Json(
        serde_json::to_value(report).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// `POST /v1/exceptions/{id}/resolve`.
pub async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(raw): RawBody,
) -> Result<Json<Value>, ApiError> {
    let (actor, reason) = who_and_why(&raw)?;
    let report = actions(&state).resolve(&id, &actor, &reason).await?;
    Ok(Json(
        serde_json::to_value(report).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}
