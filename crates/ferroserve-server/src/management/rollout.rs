//! `/api/v1/models/{model}/rollout` and `/shadow`: start a rollout of a new
//! version, pause, resume, abort or promote it, read its status with this
//! server's live figures; and the figures of the model's shadow version.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferroserve_serving::rollout::{RolloutAction, Rollouts};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{registry_disabled, Actor, JsonBody, PathOf};
use super::ModelPath;
use crate::error::ApiError;
use crate::state::SharedState;

/// `{model}/rollout/{action}` path parameters.
#[derive(Deserialize)]
pub(crate) struct ActionPath {
    model: String,
    action: String,
}

/// The rollouts of this server, or 503 without a registry.
fn rollouts(state: &SharedState) -> Result<Arc<Rollouts>, ApiError> {
    state.rollouts.clone().ok_or_else(registry_disabled)
}

/// `POST /api/v1/models/{model}/rollout`: starts rolling out `version`.
pub(crate) async fn start(
    State(state): State<SharedState>,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let status = rollouts(&state)?.start(&path.model, &body, &actor).await?;
    Ok((StatusCode::CREATED, Json(status)))
}

/// `GET /api/v1/models/{model}/rollout`: the running rollout, else the latest.
pub(crate) async fn status(
    State(state): State<SharedState>,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(rollouts(&state)?.status(&path.model).await?))
}

/// `POST /api/v1/models/{model}/rollout/{pause|resume|abort|promote}`.
pub(crate) async fn act(
    State(state): State<SharedState>,
    Actor(actor): Actor,
    PathOf(path): PathOf<ActionPath>,
) -> Result<Json<Value>, ApiError> {
    let rollouts = rollouts(&state)?;
    let action: RolloutAction = path.action.parse()?;
    Ok(Json(rollouts.act(&path.model, action, &actor).await?))
}

/// `GET /api/v1/models/{model}/shadow`: the shadow version's figures on
/// this server (`null` when the model has no shadow).
pub(crate) async fn shadow(
    State(state): State<SharedState>,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    // Traffic rules live in registry serving configs.
    rollouts(&state)?;
    state.pipeline.find(&path.model, None).await?;
    let report = state.pipeline.shadow(&path.model).map(|lane| lane.report());
    Ok(Json(json!({ "model": path.model, "shadow": report })))
}
