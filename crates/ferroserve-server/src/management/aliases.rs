//! `/api/v1/models/{model}/aliases`: named pointers (`champion`,
//! `challenger`) to versions; serving follows them when a serving config
//! says `{"serve": {"alias": ...}}`.

use axum::Json;
use ferroserve_serving::lifecycle::ServingStatus;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::{Actor, Ctl, JsonBody, PathOf, QueryOf};
use super::{ModelPath, UnloadQuery};
use crate::error::ApiError;

/// `.../aliases/{alias}` path.
#[derive(Deserialize)]
pub(crate) struct AliasPath {
    model: String,
    alias: String,
}

/// `PUT .../aliases/{alias}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AliasTarget {
    version: i64,
}

/// An alias after it was set, and what the model serves afterwards.
#[derive(Serialize)]
pub(crate) struct AliasSet {
    alias: String,
    version: i64,
    serving: ServingStatus,
}

/// `GET /api/v1/models/{model}/aliases`.
pub(crate) async fn list(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<Value>, ApiError> {
    let aliases = c.lifecycle().registry().aliases(&path.model).await?;
    Ok(Json(json!({ "aliases": aliases })))
}

/// `PUT /api/v1/models/{model}/aliases/{alias}`.
pub(crate) async fn set(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<AliasPath>,
    JsonBody(target): JsonBody<AliasTarget>,
) -> Result<Json<AliasSet>, ApiError> {
    c.lifecycle()
        .set_alias(&path.model, &path.alias, target.version, &actor)
        .await?;
    let serving = c.reconcile(&path.model).await;
    Ok(Json(AliasSet {
        alias: path.alias,
        version: target.version,
        serving,
    }))
}

/// `DELETE /api/v1/models/{model}/aliases/{alias}[?unload=true]`: refused
/// when the serving config serves that alias, unless `unload`.
pub(crate) async fn delete(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<AliasPath>,
    QueryOf(query): QueryOf<UnloadQuery>,
) -> Result<Json<Value>, ApiError> {
    let when_nothing = query.when_nothing();
    c.lifecycle()
        .delete_alias(&path.model, &path.alias, when_nothing, &actor)
        .await?;
    let serving = c.reconcile_with(&path.model, when_nothing).await;
    Ok(Json(json!({ "serving": serving })))
}
