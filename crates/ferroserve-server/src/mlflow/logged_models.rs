//! `/api/2.0/mlflow/logged-models`: the models MLflow 3's clients log
//! (`mlflow.<flavor>.log_model`): created pending with their place in the
//! experiment's artifacts, finalized once uploaded, searched, tagged.

use axum::extract::Path;
use axum::Json;
use ferroserve_registry::tracking::{LoggedModel, NewLoggedModel};
use serde::Deserialize;
use serde_json::{json, Value};

use super::experiments::{experiment_ids, page_size};
use super::protocol::{
    key_values, numeric_id, tag_map, KeyValue, MlflowBody, MlflowError, MlflowResult,
};
use super::search::{Entity, Field, Filter, OrderBy, Search, Searchable};
use crate::management::extract::Ctl;

/// Logged models one search page holds by default, and at most.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 10_000;

/// A logged model as MLflow's JSON has it.
pub(super) fn logged_model_json(m: &LoggedModel) -> Value {
    let mut info = json!({
        "model_id": m.model_id,
        "experiment_id": m.experiment_id.to_string(),
        "name": m.name,
        "creation_timestamp_ms": m.creation_time,
        "last_updated_timestamp_ms": m.last_update_time,
        "artifact_uri": m.artifact_uri,
        "status": m.status,
        "tags": key_values(&m.tags),
    });
    for (field, value) in [
        ("source_run_id", &m.source_run_id),
        ("model_type", &m.model_type),
        ("status_message", &m.status_message),
    ] {
        if let Some(value) = value {
            info[field] = json!(value);
        }
    }
    json!({"info": info, "data": {"params": key_values(&m.params), "metrics": []}})
}

impl Searchable for LoggedModel {
    fn field(&self, entity: Entity, key: &str) -> Result<Option<Field>, MlflowError> {
        let text = |s: &str| Some(Field::Text(s.to_owned()));
        Ok(match entity {
            Entity::Param => self.params.get(key).map(|v| Field::Text(v.clone())),
            Entity::Tag => self.tags.get(key).map(|v| Field::Text(v.clone())),
            Entity::Metric => None,
            Entity::Attribute => match key {
                "name" => text(&self.name),
                "model_id" => text(&self.model_id),
                "status" => text(&self.status),
                "source_run_id" => self.source_run_id.as_deref().and_then(text),
                "model_type" => self.model_type.as_deref().and_then(text),
                "creation_timestamp" | "creation_time" | "creation_timestamp_ms" => {
                    Some(Field::Number(self.creation_time as f64))
                }
                "last_updated_timestamp" | "last_updated_timestamp_ms" => {
                    Some(Field::Number(self.last_update_time as f64))
                }
                other => {
                    return Err(MlflowError::invalid(format!(
                        "logged models have no attribute '{other}'"
                    )))
                }
            },
        })
    }
}

#[derive(Deserialize)]
pub(super) struct CreateLoggedModel {
    experiment_id: String,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

/// `POST logged-models`.
pub(super) async fn create(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<CreateLoggedModel>,
) -> MlflowResult {
    let model = c
        .lifecycle()
        .registry()
        .create_logged_model(&NewLoggedModel {
            experiment_id: numeric_id("experiment", &req.experiment_id)?,
            name: req.name,
            source_run_id: req.source_run_id.filter(|r| !r.is_empty()),
            model_type: req.model_type,
            tags: tag_map(req.tags),
            params: tag_map(req.params),
        })
        .await?;
    Ok(Json(json!({"model": logged_model_json(&model)})))
}

/// `GET logged-models/{model_id}`.
pub(super) async fn get(Ctl(c): Ctl, Path(model_id): Path<String>) -> MlflowResult {
    let model = c.lifecycle().registry().logged_model(&model_id).await?;
    Ok(Json(json!({"model": logged_model_json(&model)})))
}

#[derive(Deserialize)]
pub(super) struct Finalize {
    status: Value,
}

/// `PATCH logged-models/{model_id}`: its status, once uploaded.
pub(super) async fn finalize(
    Ctl(c): Ctl,
    Path(model_id): Path<String>,
    MlflowBody(req): MlflowBody<Finalize>,
) -> MlflowResult {
    // The status comes by name, or as its protobuf number.
    let status = match (&req.status, req.status.as_i64()) {
        (Value::String(name), _) => name.clone(),
        (_, Some(1)) => "LOGGED_MODEL_PENDING".to_owned(),
        (_, Some(2)) => "LOGGED_MODEL_READY".to_owned(),
        (_, Some(3)) => "LOGGED_MODEL_UPLOAD_FAILED".to_owned(),
        (other, _) => {
            return Err(MlflowError::invalid(format!(
                "logged model status {other} is not known"
            )))
        }
    };
    let model = c
        .lifecycle()
        .registry()
        .finalize_logged_model(&model_id, &status)
        .await?;
    Ok(Json(json!({"model": logged_model_json(&model)})))
}

/// `DELETE logged-models/{model_id}`.
pub(super) async fn delete(Ctl(c): Ctl, Path(model_id): Path<String>) -> MlflowResult {
    c.lifecycle()
        .registry()
        .delete_logged_model(&model_id)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct Pairs {
    #[serde(default)]
    tags: Vec<KeyValue>,
    #[serde(default)]
    params: Vec<KeyValue>,
}

/// `PATCH logged-models/{model_id}/tags`.
pub(super) async fn set_tags(
    Ctl(c): Ctl,
    Path(model_id): Path<String>,
    MlflowBody(req): MlflowBody<Pairs>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .set_logged_model_tags(&model_id, &tag_map(req.tags))
        .await?;
    Ok(Json(json!({})))
}

/// `POST logged-models/{model_id}/params`.
pub(super) async fn log_params(
    Ctl(c): Ctl,
    Path(model_id): Path<String>,
    MlflowBody(req): MlflowBody<Pairs>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .log_logged_model_params(&model_id, &tag_map(req.params))
        .await?;
    Ok(Json(json!({})))
}

/// `DELETE logged-models/{model_id}/tags/{tag_key}`.
pub(super) async fn delete_tag(
    Ctl(c): Ctl,
    Path((model_id, key)): Path<(String, String)>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .delete_logged_model_tag(&model_id, &key)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct OrderField {
    field_name: String,
    #[serde(default = "ascending")]
    ascending: bool,
}

fn ascending() -> bool {
    true
}

#[derive(Deserialize)]
pub(super) struct SearchLoggedModels {
    #[serde(default)]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: String,
    #[serde(default, deserialize_with = "super::protocol::int64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderField>,
    page_token: Option<String>,
}

/// `POST logged-models/search`.
pub(super) async fn search(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<SearchLoggedModels>,
) -> MlflowResult {
    let search = Search {
        filter: Filter::parse(&req.filter)?,
        order_by: req
            .order_by
            .iter()
            .map(|o| {
                let direction = if o.ascending { "ASC" } else { "DESC" };
                OrderBy::parse(&format!("{} {direction}", o.field_name))
            })
            .collect::<Result<Vec<_>, _>>()?,
        max_results: page_size(req.max_results, DEFAULT_PAGE, MAX_PAGE)?,
        page_token: req.page_token.as_deref(),
    };
    let ids = experiment_ids(&req.experiment_ids)?;
    let models = c.lifecycle().registry().logged_models(&ids).await?;
    let answer = search.answer(models, "models", logged_model_json)?;
    Ok(Json(answer))
}
