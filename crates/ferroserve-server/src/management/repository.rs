//! The KServe / Triton model repository extension: `/v2/repository/index`
//! lists every model the server knows, `.../load` and `.../unload` start
//! and stop serving one, as `tritonclient`'s repository calls expect. The
//! operations themselves ([`index_rows`], [`load_model`], [`unload_model`])
//! serve the gRPC repository calls too.

use axum::Json;
use ferroserve_core::InferError;
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
    Ok(Json(index_rows(&c, false).await?))
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
    Ok(Json(index_rows(&c, request.ready).await?))
}

/// `POST /v2/repository/models/{model}/load`.
pub(crate) async fn load(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    load_model(&c, &path.model, &actor).await?;
    Ok(Json(json!({})))
}

/// `POST /v2/repository/models/{model}/unload`.
pub(crate) async fn unload(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    unload_model(&c, &path.model, &actor).await?;
    Ok(Json(json!({})))
}

/// Every model the server knows, one row per version; only the ready
/// ones when `ready_only`.
pub(crate) async fn index_rows(
    c: &Controller,
    ready_only: bool,
) -> Result<Vec<IndexEntry>, InferError> {
    let mut rows = c.index().await?;
    if ready_only {
        rows.retain(|row| row.state == "READY");
    }
    Ok(rows)
}

/// Serves `model` again (after an unload) or reloads it; the error says
/// why it cannot serve. Recorded in the audit log as `model_loaded` by
/// `actor`.
pub(crate) async fn load_model(c: &Controller, model: &str, actor: &str) -> Result<(), InferError> {
    let status = c.load(model).await?;
    let version = status
        .serving_version
        .as_deref()
        .and_then(|v| v.parse().ok());
    let details = json!({ "via": "repository_api", "serving_version": status.serving_version });
    audit(c, model, version, AuditAction::ModelLoaded, details, actor).await;
    Ok(())
}

/// Stops serving `model`; in-flight requests finish. Recorded in the
/// audit log as `model_unloaded` by `actor`.
pub(crate) async fn unload_model(
    c: &Controller,
    model: &str,
    actor: &str,
) -> Result<(), InferError> {
    c.unload(model).await?;
    let details = json!({ "via": "repository_api" });
    audit(c, model, None, AuditAction::ModelUnloaded, details, actor).await;
    Ok(())
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
