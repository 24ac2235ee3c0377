//! Operations endpoints: `/healthz` (the process is up), `/readyz` (NATS connected and the
//! database answering; a load balancer stops sending traffic otherwise) and `/metrics`
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

/// 200 when NATS is connected and the database answers; 503 naming what is down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let nats = state.bus.is_connected();
    let database = state.store.ping().await;
    if nats && database {
        return (
            StatusCode::OK,
            Json(json!({"status": "ready", "nats": true, "database": true})),
        )
            .into_response();
    }
    let down: Vec<&str> = [(!nats).then_some("NATS"), (!database).then_some("database")]
        .into_iter()
        .flatten()
        .collect();
    let body = json!({
        "error": "unavailable",
        "message": format!("not ready: {} unavailable", down.join(" and ")),
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
