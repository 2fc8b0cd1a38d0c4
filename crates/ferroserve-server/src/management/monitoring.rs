//! `/api/v1/models/{model}/drift` and `/feedback`: what the monitor sees of
//! a model's served versions, and ground truth for their predictions.

use std::sync::Arc;

use axum::Json;
use ferroserve_core::{ErrorKind, InferError};
use ferroserve_monitor::{Feedback, FeedbackOutcome, Monitor};
use ferroserve_serving::lifecycle::Controller;
use serde_json::Value;

use super::extract::{Ctl, JsonBody, PathOf};
use super::ModelPath;
use crate::client::ClientId;
use crate::error::ApiError;

fn monitor(c: &Controller) -> Result<&Arc<Monitor>, ApiError> {
    c.monitor().ok_or_else(|| {
        ApiError(InferError::new(
            ErrorKind::Unavailable,
            "monitoring is off on this server (started with --disable-monitoring)",
        ))
    })
}

/// The error for a model none of whose versions is watched.
fn not_watched(c: &Controller, model: &str) -> ApiError {
    let reason = match c.manager().get(model, None) {
        Err(e) => return ApiError(e),
        Ok(_) => {
            "none of its served versions is watched: register a reference profile \
                  (`ferroserve profile`) or set monitoring.enabled in its serving config"
        }
    };
    ApiError(InferError::not_found(format!(
        "model '{model}' is not monitored: {reason}"
    )))
}

/// `GET /api/v1/models/{model}/drift`: per served version, the last closed
/// window per feature and overall, recent windows, contract violations,
/// online quality and alert rules.
pub(crate) async fn drift(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    monitor(&c)?
        .report_json(&path.model)
        .map(Json)
        .ok_or_else(|| not_watched(&c, &path.model))
}

/// `POST /api/v1/models/{model}/feedback`: true labels or values for
/// served predictions, named by request id or idempotency key; late and
/// batched feedback is fine while the prediction is remembered. Only the
/// client that made a prediction may label it; others' ids are unknown.
pub(crate) async fn feedback(
    Ctl(c): Ctl,
    client: ClientId,
    PathOf(path): PathOf<ModelPath>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<FeedbackOutcome>, ApiError> {
    let monitor = monitor(&c)?;
    let feedback = Feedback::from_json(&body).map_err(|e| ApiError(InferError::invalid(e)))?;
    if monitor.report(&path.model).is_none() {
        return Err(not_watched(&c, &path.model));
    }
    let outcome = monitor
        .feedback(&path.model, client.shared(), feedback)
        .await
        .map_err(|e| ApiError(InferError::new(ErrorKind::Unavailable, e)))?;
    Ok(Json(outcome))
}
