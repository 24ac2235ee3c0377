//! Operations endpoints: `/healthz` (the process is up), `/readyz` (NATS connected, the
//! database answering and the ledger not behind the event stream; a load balancer stops
//! sending traffic otherwise) and `/metrics`
//! (OpenMetrics text, which Prometheus scrapes).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::wire::ops::{Health, NotReadyReason, Readiness};

/// 200 while the process serves requests.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process serves requests.", body = Health))
)]
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(Health::OK)).into_response()
}

/// 200 when NATS is connected, the database answers and the ledger is not behind the
/// event stream; otherwise 503 with every reason (`nats_unavailable`,
/// `database_unavailable`, `ledger_behind_stream`).
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "NATS connected, the database answering, the ledger current.", body = Readiness),
        (status = 503, description = "Not ready, with every reason.", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let nats = state.bus.is_connected();
    let database = state.store.ping().await;
    let mut reasons = Vec::new();
    let mut message = Vec::new();
    if !nats {
        reasons.push(NotReadyReason::NatsUnavailable);
        message.push("NATS unavailable".to_owned());
    }
    if !database {
        reasons.push(NotReadyReason::DatabaseUnavailable);
        message.push("database unavailable".to_owned());
    }
    if nats && database {
        match state.standing.refresh(&state).await {
            Ok(None) => {}
            Ok(Some(line)) => {
                reasons.push(NotReadyReason::LedgerBehindStream);
                message.push(line);
            }
            // The stream or the database could not be read: not ready, and why.
            Err(e) => {
                reasons.push(
                    if matches!(e, crate::ApiError::Unavailable(ref m) if m.starts_with("NATS")) {
                        NotReadyReason::NatsUnavailable
                    } else {
                        NotReadyReason::DatabaseUnavailable
                    },
                );
                message.push(e.message());
            }
        }
    }
    if reasons.is_empty() {
        return (StatusCode::OK, Json(Readiness::ready())).into_response();
    }
    let body = Readiness::not_ready(
        nats,
        database,
        reasons,
        format!("not ready: {}", message.join("; ")),
    );
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// The metrics registry in OpenMetrics text format.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text).", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
