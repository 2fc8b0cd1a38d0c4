//! `/api/v1/models/{model}/versions`: registration, stages, rollback, tags,
//! model cards, lineage and reference profiles of model versions, and
//! `models:/` URI resolution.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_core::InferError;
use ferroserve_registry::{Lineage, ModelVersion, Stage};
use ferroserve_serving::lifecycle::{RegisterVersion, ServingStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::{Actor, Ctl, JsonBody, PathOf, QueryOf, TextBody};
use super::{ModelPath, TagValue, UnloadQuery, VersionPath};
use crate::error::ApiError;

/// A changed version and what the server serves of its model afterwards.
#[derive(Serialize)]
pub(crate) struct VersionChange {
    version: ModelVersion,
    serving: ServingStatus,
}

/// `POST .../versions/{version}/stage` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageChange {
    stage: String,
    #[serde(default = "archive_by_default")]
    archive_existing: bool,
}

fn archive_by_default() -> bool {
    true
}

/// `.../versions/{version}/tags/{key}` path.
#[derive(Deserialize)]
pub(crate) struct VersionTagPath {
    model: String,
    version: i64,
    key: String,
}

/// `GET /api/v1/resolve` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveQuery {
    uri: String,
}

/// `GET /api/v1/models/{model}/versions`.
pub(crate) async fn list(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let versions = c.lifecycle().registry().list_versions(&path.model).await?;
    Ok(Json(json!({ "versions": versions })))
}

/// `POST /api/v1/models/{model}/versions`: registers an uploaded artifact
/// (creating the model when it is new), then brings serving in line.
pub(crate) async fn register(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
    JsonBody(request): JsonBody<RegisterVersion>,
) -> Result<(StatusCode, Json<VersionChange>), ApiError> {
    let version = c.lifecycle().register(&path.model, request, &actor).await?;
    let serving = c.reconcile(&path.model).await;
    Ok((
        StatusCode::CREATED,
        Json(VersionChange { version, serving }),
    ))
}

/// `GET /api/v1/models/{model}/versions/{version}`.
pub(crate) async fn get(
    Ctl(c): Ctl,
    PathOf(path): PathOf<VersionPath>,
) -> Result<Json<ModelVersion>, ApiError> {
    path.fetch(&c).await.map(Json)
}

/// `DELETE /api/v1/models/{model}/versions/{version}[?unload=true]`:
/// refused for a Production version, and for the version the model serves
/// unless `unload`.
pub(crate) async fn delete(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<VersionPath>,
    QueryOf(query): QueryOf<UnloadQuery>,
) -> Result<StatusCode, ApiError> {
    let when_nothing = query.when_nothing();
    c.lifecycle()
        .delete_version(&path.model, path.version, when_nothing, &actor)
        .await?;
    c.reconcile_with(&path.model, when_nothing).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/models/{model}/versions/{version}/stage[?unload=true]`:
/// refused when the model would have nothing to serve (unless `unload`) or
/// would serve a version with another interface.
pub(crate) async fn transition(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<VersionPath>,
    QueryOf(query): QueryOf<UnloadQuery>,
    JsonBody(change): JsonBody<StageChange>,
) -> Result<Json<VersionChange>, ApiError> {
    let when_nothing = query.when_nothing();
    let stage: Stage = change
        .stage
        .parse()
        .map_err(|e| ApiError(InferError::invalid(format!("field 'stage': {e}"))))?;
    let version = c
        .lifecycle()
        .transition_stage(
            &path.model,
            path.version,
            stage,
            change.archive_existing,
            when_nothing,
            &actor,
        )
        .await?;
    let serving = c.reconcile_with(&path.model, when_nothing).await;
    Ok(Json(VersionChange { version, serving }))
}

/// `POST /api/v1/models/{model}/rollback`: Production goes back to the
/// version that held it before the current one.
pub(crate) async fn rollback(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<VersionChange>, ApiError> {
    let version = c.lifecycle().rollback(&path.model, &actor).await?;
    let serving = c.reconcile(&path.model).await;
    Ok(Json(VersionChange { version, serving }))
}

/// `PUT /api/v1/models/{model}/versions/{version}/tags/{key}`.
pub(crate) async fn set_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<VersionTagPath>,
    JsonBody(tag): JsonBody<TagValue>,
) -> Result<StatusCode, ApiError> {
    c.lifecycle()
        .registry()
        .set_version_tag(&path.model, path.version, &path.key, &tag.value, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/models/{model}/versions/{version}/tags/{key}`.
pub(crate) async fn delete_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<VersionTagPath>,
) -> Result<StatusCode, ApiError> {
    c.lifecycle()
        .registry()
        .delete_version_tag(&path.model, path.version, &path.key, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/models/{model}/versions/{version}/card`: Markdown, or
/// HTML (raw HTML in the card shown as text) for `Accept: text/html`.
pub(crate) async fn card(
    Ctl(c): Ctl,
    PathOf(path): PathOf<VersionPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = path.fetch(&c).await?;
    let card = version
        .meta
        .model_card
        .ok_or_else(|| missing(&path, "model card"))?;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    Ok(if wants_html {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::ui::markdown::to_safe_html(&card),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            card,
        )
            .into_response()
    })
}

/// `PUT /api/v1/models/{model}/versions/{version}/card`: Markdown.
pub(crate) async fn set_card(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<VersionPath>,
    TextBody(card): TextBody,
) -> Result<StatusCode, ApiError> {
    c.lifecycle()
        .registry()
        .set_model_card(&path.model, path.version, Some(card), &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/models/{model}/versions/{version}/lineage`.
pub(crate) async fn lineage(
    Ctl(c): Ctl,
    PathOf(path): PathOf<VersionPath>,
) -> Result<Json<Lineage>, ApiError> {
    let version = path.fetch(&c).await?;
    Ok(Json(version.meta.lineage))
}

/// `GET /api/v1/models/{model}/versions/{version}/profile`.
pub(crate) async fn profile(
    Ctl(c): Ctl,
    PathOf(path): PathOf<VersionPath>,
) -> Result<Json<Value>, ApiError> {
    let version = path.fetch(&c).await?;
    version
        .meta
        .reference_profile
        .map(Json)
        .ok_or_else(|| missing(&path, "reference profile"))
}

/// `PUT /api/v1/models/{model}/versions/{version}/profile`.
pub(crate) async fn set_profile(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<VersionPath>,
    JsonBody(profile): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    c.lifecycle()
        .set_reference_profile(&path.model, path.version, profile, &actor)
        .await?;
    // A served version is watched against its new profile from now on.
    c.reconcile(&path.model).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/resolve?uri=models:/NAME@ALIAS` (or `/VERSION`, `/STAGE`, `/latest`).
pub(crate) async fn resolve(
    Ctl(c): Ctl,
    QueryOf(query): QueryOf<ResolveQuery>,
) -> Result<Json<ModelVersion>, ApiError> {
    Ok(Json(c.lifecycle().registry().resolve(&query.uri).await?))
}

fn missing(path: &VersionPath, what: &str) -> ApiError {
    ApiError(InferError::not_found(format!(
        "version {} of model '{}' has no {what}",
        path.version, path.model
    )))
}
