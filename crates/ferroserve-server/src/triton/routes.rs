//! HTTP routes of Triton's model configuration and statistics extensions:
//! `GET /v2/models/{m}[/versions/{v}]/config` and
//! `GET /v2/models[/{m}[/versions/{v}]]/stats`, with the access of the
//! model metadata.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::Json;
use ferroserve_core::Access;
use serde_json::{json, Value};

use super::config::{model_config_of, TritonModelConfig};
use super::stats::statistics;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{route, Route};
use crate::state::SharedState;

/// The routes, each readable by whoever may read the model's metadata.
pub(crate) fn table() -> Vec<Route> {
    use Access::Metadata;
    vec![
        route(Method::GET, "/v2/models/{model}/config", Metadata, config),
        route(
            Method::GET,
            "/v2/models/{model}/versions/{version}/config",
            Metadata,
            version_config,
        ),
        // Lists only the models the caller may use.
        route(Method::GET, "/v2/models/stats", Metadata, all_stats).handles_models(),
        route(
            Method::GET,
            "/v2/models/{model}/stats",
            Metadata,
            model_stats,
        ),
        route(
            Method::GET,
            "/v2/models/{model}/versions/{version}/stats",
            Metadata,
            version_stats,
        ),
    ]
}

/// `GET /v2/models/{m}/config`: of the version a call naming none reaches.
async fn config(
    State(state): State<SharedState>,
    Path(model): Path<String>,
) -> Result<Json<TritonModelConfig>, ApiError> {
    Ok(Json(model_config_of(&state, &model, None).await?))
}

/// `GET /v2/models/{m}/versions/{v}/config`.
async fn version_config(
    State(state): State<SharedState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<Json<TritonModelConfig>, ApiError> {
    Ok(Json(model_config_of(&state, &model, Some(&version)).await?))
}

/// `GET /v2/models/stats`: every served version the caller may use.
async fn all_stats(
    State(state): State<SharedState>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let mut stats = statistics(&state, None, None).await?;
    stats.retain(|s| caller.may_use(&s.name));
    Ok(Json(json!({ "model_stats": stats })))
}

/// `GET /v2/models/{m}/stats`: every served version of the model.
async fn model_stats(
    State(state): State<SharedState>,
    Path(model): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let stats = statistics(&state, Some(&model), None).await?;
    Ok(Json(json!({ "model_stats": stats })))
}

/// `GET /v2/models/{m}/versions/{v}/stats`.
async fn version_stats(
    State(state): State<SharedState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let stats = statistics(&state, Some(&model), Some(&version)).await?;
    Ok(Json(json!({ "model_stats": stats })))
}
