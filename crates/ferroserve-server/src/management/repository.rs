//! The KServe / Triton model repository extension: `/v2/repository/index`
//! lists every model the server knows, `.../load` and `.../unload` start
//! and stop serving one, as `tritonclient`'s repository calls expect.

use axum::Json;
use ferroserve_registry::AuditAction;
use ferroserve_serving::lifecycle::{Controller, IndexEntry};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{parse_json, Actor, BodyBytes, Ctl, PathOf};
use super::ModelPath;
use crate::error::ApiError;

/// `POST /v2/repository/index` body; unknown fields are ignored, as Triton does.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct IndexRequest {
    /// Only models that are ready.
    ready: bool,
}

/// `GET /v2/repository/index`.
pub(crate) async fn index(Ctl(c): Ctl) -> Result<Json<Vec<IndexEntry>>, ApiError> {
    Ok(Json(c.index().await?))
}

/// `POST /v2/repository/index` with an optional `{"ready": true}`.
pub(crate) async fn index_filtered(
    Ctl(c): Ctl,
    BodyBytes(body): BodyBytes,
) -> Result<Json<Vec<IndexEntry>>, ApiError> {
    let request: IndexRequest = if body.iter().all(u8::is_ascii_whitespace) {
        IndexRequest::default()
    } else {
        parse_json(&body)?
    };
    let mut rows = c.index().await?;
    if request.ready {
        rows.retain(|row| row.state == "READY");
    }
    Ok(Json(rows))
}

/// `POST /v2/repository/models/{model}/load`: serves the model again
/// (after an unload) or reloads it; the error says why it cannot serve.
/// Recorded in the audit log as `model_loaded`.
pub(crate) async fn load(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let status = c.load(&path.model).await?;
    let version = status
        .serving_version
        .as_deref()
        .and_then(|v| v.parse().ok());
    let details = json!({ "via": "repository_api", "serving_version": status.serving_version });
    audit(
        &c,
        &path.model,
        version,
        AuditAction::ModelLoaded,
        details,
        &actor,
    )
    .await;
    Ok(Json(json!({})))
}

/// `POST /v2/repository/models/{model}/unload`: in-flight requests finish.
/// Recorded in the audit log as `model_unloaded`.
pub(crate) async fn unload(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    c.unload(&path.model).await?;
    let details = json!({ "via": "repository_api" });
    audit(
        &c,
        &path.model,
        None,
        AuditAction::ModelUnloaded,
        details,
        &actor,
    )
    .await;
    Ok(Json(json!({})))
}

/// Records a load or unload that took place; a failure to record it is
/// logged, and the change stands.
async fn audit(
    c: &Controller,
    model: &str,
    version: Option<i64>,
    action: AuditAction,
    details: Value,
    actor: &str,
) {
    let registry = c.lifecycle().registry();
    if let Err(e) = registry
        .record_event(model, version, action.clone(), details, actor)
        .await
    {
        tracing::warn!(model, action = %action, error = %e, "cannot record the change in the audit log");
    }
}
