//! Liveness, readiness and startup probes (Kubernetes and KServe v2), and
//! the Prometheus scrape endpoint.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::{AppState, SharedState};

/// `GET /livez`, `GET /v2/health/live`: the process answers.
pub async fn live() -> Response {
    Json(json!({ "live": true })).into_response()
}

/// `GET /readyz`, `GET /v2/health/ready`: every configured model is loaded
/// and warmed up. Models that serve, but not the version the registry
/// selects, are listed under `degraded` with the reason (still ready).
pub async fn ready(State(state): State<SharedState>) -> Response {
    let ready = server_ready(&state);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let degraded = state
        .controller
        .as_ref()
        .map(|c| c.degraded())
        .unwrap_or_default();
    let body = if degraded.is_empty() {
        json!({ "ready": ready })
    } else {
        json!({ "ready": ready, "degraded": degraded })
    };
    (status, Json(body)).into_response()
}

/// Whether the server is ready: startup loading has finished and every
/// configured model serves (HTTP's readiness probe and gRPC's
/// `ServerReady` and health check answer the same).
pub fn server_ready(state: &AppState) -> bool {
    state.started() && state.manager().all_ready()
}

/// `GET /startupz`: initial model loading has finished (successfully or not).
pub async fn startup(State(state): State<SharedState>) -> Response {
    let started = state.started();
    let status = if started {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "started": started }))).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
