//! `/api/v1/models/{model}/serving-config` and `/serving`: which version of
//! a model serves and how, as stored revisions, and what serves now.

use axum::Json;
use ferroserve_core::secrets::redact_serving_config;
use ferroserve_registry::ServingConfigRevision;
use ferroserve_serving::lifecycle::ServingStatus;
use serde_json::{json, Value};

use super::extract::{Actor, Ctl, JsonBody, PathOf, QueryOf};
use super::{ModelPath, UnloadQuery};
use crate::error::ApiError;

/// `GET /api/v1/models/{model}/serving-config`: the revision in force
/// (`null` and `{}` when none was ever set), its secrets redacted.
pub(crate) async fn get(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let current = c.lifecycle().registry().serving_config(&path.model).await?;
    Ok(Json(match current {
        Some(r) => json!({ "revision": r.revision, "config": redact_serving_config(&r.config) }),
        None => json!({ "revision": null, "config": {} }),
    }))
}

/// `PUT /api/v1/models/{model}/serving-config[?unload=true]`: checks a new
/// revision against the registry (refused when it selects nothing to
/// serve, unless `unload`, or swaps in another interface), stores it and
/// brings serving in line with it. A webhook header sent as `"***"` (as
/// a GET shows it) keeps its stored value.
pub(crate) async fn set(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
    QueryOf(query): QueryOf<UnloadQuery>,
    JsonBody(config): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let when_nothing = query.when_nothing();
    let revision = c
        .lifecycle()
        .set_serving_config(&path.model, config, when_nothing, &actor)
        .await?;
    let serving = c.reconcile_with(&path.model, when_nothing).await;
    Ok(Json(
        json!({ "revision": redacted(revision), "serving": serving }),
    ))
}

/// `GET /api/v1/models/{model}/serving-config/history`: newest first,
/// secrets redacted.
pub(crate) async fn history(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let revisions = c
        .lifecycle()
        .registry()
        .serving_config_history(&path.model)
        .await?;
    let revisions: Vec<ServingConfigRevision> = revisions.into_iter().map(redacted).collect();
    Ok(Json(json!({ "revisions": revisions })))
}

/// `revision` with its config's secrets redacted.
fn redacted(mut revision: ServingConfigRevision) -> ServingConfigRevision {
    revision.config = redact_serving_config(&revision.config);
    revision
}

/// `GET /api/v1/models/{model}/serving`: what the server serves of a model.
pub(crate) async fn status(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<ServingStatus>, ApiError> {
    Ok(Json(c.status(&path.model).await?))
}
