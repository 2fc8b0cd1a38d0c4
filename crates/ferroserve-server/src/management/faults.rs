//! Fault injection on a served version (`/api/v1/models/{m}/versions/{v}/faults`):
//! extra latency and an error rate for tests and drills, refused unless the
//! server was started with fault injection allowed.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use ferroserve_core::{ErrorKind, InferError};
use ferroserve_serving::guard::faults::{FaultSlot, FaultSpec};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Actor, JsonBody, PathOf};
use crate::error::ApiError;
use crate::state::SharedState;

/// `{model}/versions/{version}` of a served version (any label).
#[derive(Deserialize)]
pub(crate) struct ServedPath {
    model: String,
    version: String,
}

/// The fault slot of a served version, or why there is none.
fn slot(state: &SharedState, path: &ServedPath) -> Result<Arc<FaultSlot>, ApiError> {
    if !state.manager().fault_injection_allowed() {
        return Err(ApiError(InferError::new(
            ErrorKind::Conflict,
            "fault injection is off on this server; start it with --enable-fault-injection (never in production)",
        )));
    }
    let served = state.manager().get(&path.model, Some(&path.version))?;
    served.protection().faults.clone().ok_or_else(|| {
        ApiError(InferError::new(
            ErrorKind::Conflict,
            format!(
                "model '{}' version {} was loaded before fault injection was allowed; reload it",
                path.model, path.version
            ),
        ))
    })
}

/// `GET .../faults`: the faults in force (`{"faults": null}` when none).
pub(crate) async fn get(
    State(state): State<SharedState>,
    PathOf(path): PathOf<ServedPath>,
) -> Result<Json<Value>, ApiError> {
    let slot = slot(&state, &path)?;
    Ok(Json(json!({ "faults": slot.get() })))
}

/// `PUT .../faults`: sets the faults of the version.
pub(crate) async fn set(
    State(state): State<SharedState>,
    PathOf(path): PathOf<ServedPath>,
    actor: Actor,
    JsonBody(spec): JsonBody<FaultSpec>,
) -> Result<Json<Value>, ApiError> {
    spec.validate()?;
    let slot = slot(&state, &path)?;
    slot.set(Some(spec));
    let latency = spec
        .latency
        .map_or_else(|| "none".to_owned(), |latency| latency.to_string());
    tracing::warn!(
        model = %path.model,
        version = %path.version,
        actor = %actor.0,
        latency = %latency,
        error_rate = spec.error_rate,
        "faults injected"
    );
    Ok(Json(json!({ "faults": spec })))
}

/// `DELETE .../faults`: clears the faults of the version.
pub(crate) async fn clear(
    State(state): State<SharedState>,
    PathOf(path): PathOf<ServedPath>,
    actor: Actor,
) -> Result<Json<Value>, ApiError> {
    slot(&state, &path)?.set(None);
    tracing::warn!(model = %path.model, version = %path.version, actor = %actor.0, "faults cleared");
    Ok(Json(json!({ "faults": null })))
}
