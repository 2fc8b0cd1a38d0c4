//! `/api/v1/models`: registered models, their description and tags.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferroserve_core::InferError;
use ferroserve_registry::{ModelQuery, RegisteredModel, Tags};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::{Actor, Ctl, JsonBody, PathOf, QueryOf};
use super::{ModelPath, TagValue};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::SharedState;

/// `POST /api/v1/models` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewModel {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Tags,
}

/// `PATCH /api/v1/models/{model}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelPatch {
    description: String,
}

/// `POST /api/v1/models/{model}/rename` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewName {
    name: String,
}

/// A model with its aliases (`GET /api/v1/models/{model}`).
#[derive(Serialize)]
pub(crate) struct ModelDetails {
    #[serde(flatten)]
    model: RegisteredModel,
    aliases: BTreeMap<String, i64>,
}

/// `PUT /api/v1/models/{model}/tags/{key}` path.
#[derive(Deserialize)]
pub(crate) struct ModelTagPath {
    model: String,
    key: String,
}

/// `GET /api/v1/models[?name_contains=X&tag=key=value...]`.
pub(crate) async fn list(
    Ctl(c): Ctl,
    Caller(caller): Caller,
    QueryOf(pairs): QueryOf<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = model_query(pairs)?;
    let mut models = c.lifecycle().registry().search_models(&query).await?;
    models.retain(|m| caller.may_use(&m.name));
    Ok(Json(json!({ "models": models })))
}

/// `tag` repeats, so the query is read as pairs rather than a struct.
fn model_query(pairs: Vec<(String, String)>) -> Result<ModelQuery, InferError> {
    let mut query = ModelQuery::default();
    for (key, value) in pairs {
        match key.as_str() {
            "name_contains" => query.name_contains = Some(value),
            "tag" => {
                let (k, v) = value.split_once('=').ok_or_else(|| {
                    InferError::invalid(format!(
                        "query parameter tag must be key=value, got '{value}'"
                    ))
                })?;
                query.tags.insert(k.to_owned(), v.to_owned());
            }
            other => {
                return Err(InferError::invalid(format!(
                    "unknown query parameter '{other}': expected name_contains or tag"
                )))
            }
        }
    }
    Ok(query)
}

/// `POST /api/v1/models`.
pub(crate) async fn create(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    JsonBody(new): JsonBody<NewModel>,
) -> Result<(StatusCode, Json<RegisteredModel>), ApiError> {
    let model = c
        .lifecycle()
        .registry()
        .create_model(&new.name, &new.description, new.tags, &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(model)))
}

/// `GET /api/v1/models/{model}`.
pub(crate) async fn get(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
) -> Result<Json<ModelDetails>, ApiError> {
    let registry = c.lifecycle().registry();
    let model = registry.get_model(&path.model).await?;
    let aliases = registry.aliases(&path.model).await?;
    Ok(Json(ModelDetails { model, aliases }))
}

/// `PATCH /api/v1/models/{model}`.
pub(crate) async fn update(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
    JsonBody(patch): JsonBody<ModelPatch>,
) -> Result<Json<RegisteredModel>, ApiError> {
    let model = c
        .lifecycle()
        .registry()
        .set_model_description(&path.model, &patch.description, &actor)
        .await?;
    Ok(Json(model))
}

/// `DELETE /api/v1/models/{model}`: refused while a version is in
/// Production; serving of the model stops once it is gone.
pub(crate) async fn delete(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelPath>,
) -> Result<StatusCode, ApiError> {
    c.lifecycle()
        .registry()
        .delete_model(&path.model, &actor)
        .await?;
    c.reconcile(&path.model).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/models/{model}/rename`: the model, its versions, aliases,
/// serving config, rollout history and the API keys limited to it by name
/// take the new name, which serves from then on; the old name serves
/// nothing. Refused while a rollout or a job of the model runs. A key
/// limited to some models must cover both names.
pub(crate) async fn rename(
    State(state): State<SharedState>,
    Ctl(c): Ctl,
    Actor(actor): Actor,
    caller: Caller,
    PathOf(path): PathOf<ModelPath>,
    JsonBody(new): JsonBody<NewName>,
) -> Result<Json<RegisteredModel>, ApiError> {
    caller.may_use(&new.name)?;
    let model = c.rename_model(&path.model, &new.name, &actor).await?;
    state.auth.reread_keys().await;
    Ok(Json(model))
}

/// `PUT /api/v1/models/{model}/tags/{key}`.
pub(crate) async fn set_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelTagPath>,
    JsonBody(tag): JsonBody<TagValue>,
) -> Result<StatusCode, ApiError> {
    c.lifecycle()
        .registry()
        .set_model_tag(&path.model, &path.key, &tag.value, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/models/{model}/tags/{key}`.
pub(crate) async fn delete_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<ModelTagPath>,
) -> Result<StatusCode, ApiError> {
    c.lifecycle()
        .registry()
        .delete_model_tag(&path.model, &path.key, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tags_repeat_and_split_at_the_first_equals() {
        let query = model_query(pairs(&[
            ("name_contains", "ir"),
            ("tag", "team=fraud"),
            ("tag", "expr=a=b"),
        ]))
        .expect("valid");
        assert_eq!(query.name_contains.as_deref(), Some("ir"));
        assert_eq!(query.tags["team"], "fraud");
        assert_eq!(query.tags["expr"], "a=b");
    }

    #[test]
    fn bad_queries_say_which_parameter() {
        let err = model_query(pairs(&[("tag", "team")])).unwrap_err();
        assert!(err.message.contains("tag must be key=value"));
        let err = model_query(pairs(&[("nam", "x")])).unwrap_err();
        assert!(err.message.contains("'nam'"));
    }
}
