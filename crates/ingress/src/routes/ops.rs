//! Operations endpoints: `/healthz` (the process is up), `/readyz` (NATS connected, the
//! database answering and the ledger not behind the event stream; a load balancer stops
//! sending traffic otherwise) and `/metrics`
//! (Prometheus text format).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

/// 200 while the process serves requests.
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

/// 200 when NATS is connected, the database answers and the ledger is not behind the
/// event stream; otherwise 503 with every reason (`nats_unavailable`,
/// `database_unavailable`, `ledger_behind_stream`).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let nats = state.bus.is_connected();
    let database = state.store.ping().await;
    let mut reasons = Vec::new();
    let mut message = Vec::new();
    if !nats {
        reasons.push("nats_unavailable");
        message.push("NATS unavailable".to_owned());
    }
    if !database {
        reasons.push("database_unavailable");
        message.push("database unavailable".to_owned());
    }
    if nats && database {
        match state.standing.refresh(&state).await {
            Ok(None) => {}
            Ok(Some(line)) => {
                reasons.push(ledger::position::BEHIND_REASON);
                message.push(line);
            }
            // The stream or the database could not be read: not ready, and why.
            Err(e) => {
                reasons.push(
                    if matches!(e, crate::ApiError::Unavailable(ref m) if m.starts_with("NATS")) {
                        "nats_unavailable"
                    } else {
                        "database_unavailable"
                    },
                );
                message.push(e.message());
            }
        }
    }
    if reasons.is_empty() {
        return (
            StatusCode::OK,
            Json(json!({"ready": true, "reasons": [], "status": "ready", "nats": true, "database": true})),
        )
            .into_response();
    }
    let body = json!({
        "ready": false,
        "reasons": reasons,
        "error": "unavailable",
        "message": format!("not ready: {}", message.join("; ")),
        "nats": nats,
        "database": database,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// The metrics registry in Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
