//! `/api/2.0/mlflow/experiments/...`: create, get (by id or name), search,
//! rename, delete, restore and tag experiments.

use axum::Json;
use ferroserve_registry::tracking::{Experiment, ViewType};
use serde::Deserialize;
use serde_json::{json, Value};

use super::protocol::{
    key_values, numeric_id, tag_map, KeyValue, MlflowBody, MlflowError, MlflowQuery, MlflowResult,
};
use super::search::{Entity, Field, Filter, OrderBy, Search, Searchable};
use crate::management::extract::Ctl;

/// Experiments one search page holds at most by default, and at most.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 50_000;

/// An experiment as MLflow's JSON has it.
pub(super) fn experiment_json(e: &Experiment) -> Value {
    json!({
        "experiment_id": e.id.to_string(),
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage.as_str(),
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": key_values(&e.tags),
    })
}

impl Searchable for Experiment {
    fn field(&self, entity: Entity, key: &str) -> Result<Option<Field>, MlflowError> {
        Ok(match entity {
            Entity::Tag => self.tags.get(key).map(|v| Field::Text(v.clone())),
            Entity::Attribute => match key {
                "name" => Some(Field::Text(self.name.clone())),
                "experiment_id" => Some(Field::Number(self.id as f64)),
                "creation_time" => Some(Field::Number(self.creation_time as f64)),
                "last_update_time" => Some(Field::Number(self.last_update_time as f64)),
                other => {
                    return Err(MlflowError::invalid(format!(
                        "experiments have no attribute '{other}' (name, experiment_id, \
                         creation_time, last_update_time)"
                    )))
                }
            },
            Entity::Metric | Entity::Param => {
                return Err(MlflowError::invalid(
                    "experiments are searched by attributes and tags only",
                ))
            }
        })
    }
}

#[derive(Deserialize)]
pub(super) struct CreateExperiment {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

/// `POST experiments/create`.
pub(super) async fn create(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<CreateExperiment>,
) -> MlflowResult {
    let name = req
        .name
        .ok_or_else(|| MlflowError::invalid("missing value for required parameter 'name'"))?;
    let tags = tag_map(req.tags);
    let location = req.artifact_location.filter(|l| !l.is_empty());
    let id = c
        .lifecycle()
        .registry()
        .create_experiment(&name, location.as_deref(), &tags)
        .await?;
    Ok(Json(json!({"experiment_id": id.to_string()})))
}

#[derive(Deserialize)]
pub(super) struct ExperimentId {
    experiment_id: String,
}

/// `GET experiments/get?experiment_id=`.
pub(super) async fn get(Ctl(c): Ctl, MlflowQuery(req): MlflowQuery<ExperimentId>) -> MlflowResult {
    let id = numeric_id("experiment", &req.experiment_id)?;
    let experiment = c.lifecycle().registry().experiment(id).await?;
    Ok(Json(json!({"experiment": experiment_json(&experiment)})))
}

#[derive(Deserialize)]
pub(super) struct ExperimentName {
    experiment_name: String,
}

/// `GET experiments/get-by-name?experiment_name=`.
pub(super) async fn get_by_name(
    Ctl(c): Ctl,
    MlflowQuery(req): MlflowQuery<ExperimentName>,
) -> MlflowResult {
    let experiment = c
        .lifecycle()
        .registry()
        .experiment_by_name(&req.experiment_name)
        .await?;
    Ok(Json(json!({"experiment": experiment_json(&experiment)})))
}

#[derive(Deserialize)]
pub(super) struct SearchExperiments {
    #[serde(default, deserialize_with = "super::protocol::int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    order_by: Vec<String>,
    view_type: Option<Value>,
}

/// `POST experiments/search`.
pub(super) async fn search(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<SearchExperiments>,
) -> MlflowResult {
    let view = parse_view(req.view_type.as_ref())?;
    let mut order_by = req
        .order_by
        .iter()
        .map(|c| OrderBy::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    if order_by.is_empty() {
        // Newest first unless told otherwise, as MLflow lists them.
        order_by.push(OrderBy::parse("last_update_time DESC")?);
    }
    let search = Search {
        filter: Filter::parse(&req.filter)?,
        order_by,
        max_results: page_size(req.max_results, DEFAULT_PAGE, MAX_PAGE)?,
        page_token: req.page_token.as_deref(),
    };
    let experiments = c.lifecycle().registry().experiments(view).await?;
    let answer = search.answer(experiments, "experiments", experiment_json)?;
    Ok(Json(answer))
}

/// `max_results` checked against `max`, or `default`.
pub(super) fn page_size(
    asked: Option<i64>,
    default: usize,
    max: usize,
) -> Result<usize, MlflowError> {
    match asked {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 || n as u64 > max as u64 => Err(MlflowError::invalid(format!(
            "max_results must be between 1 and {max}; it was {n}"
        ))),
        Some(n) => Ok(n as usize),
    }
}

#[derive(Deserialize)]
pub(super) struct UpdateExperiment {
    experiment_id: String,
    new_name: Option<String>,
}

/// `POST experiments/update` (a rename).
pub(super) async fn update(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<UpdateExperiment>,
) -> MlflowResult {
    let id = numeric_id("experiment", &req.experiment_id)?;
    if let Some(name) = req.new_name.filter(|n| !n.is_empty()) {
        c.lifecycle()
            .registry()
            .rename_experiment(id, &name)
            .await?;
    }
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct ExperimentIdBody {
    experiment_id: String,
}

/// `POST experiments/delete`.
pub(super) async fn delete(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<ExperimentIdBody>,
) -> MlflowResult {
    let id = numeric_id("experiment", &req.experiment_id)?;
    c.lifecycle().registry().delete_experiment(id).await?;
    Ok(Json(json!({})))
}

/// `POST experiments/restore`.
pub(super) async fn restore(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<ExperimentIdBody>,
) -> MlflowResult {
    let id = numeric_id("experiment", &req.experiment_id)?;
    c.lifecycle().registry().restore_experiment(id).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct SetExperimentTag {
    experiment_id: String,
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST experiments/set-experiment-tag`.
pub(super) async fn set_tag(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<SetExperimentTag>,
) -> MlflowResult {
    let id = numeric_id("experiment", &req.experiment_id)?;
    c.lifecycle()
        .registry()
        .set_experiment_tag(id, &req.key, &req.value)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct DeleteExperimentTag {
    experiment_id: String,
    key: String,
}

/// `POST experiments/delete-experiment-tag`.
pub(super) async fn delete_tag(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<DeleteExperimentTag>,
) -> MlflowResult {
    let id = numeric_id("experiment", &req.experiment_id)?;
    c.lifecycle()
        .registry()
        .delete_experiment_tag(id, &req.key)
        .await?;
    Ok(Json(json!({})))
}

/// Experiment ids (strings of digits) as the store's.
pub(super) fn experiment_ids(ids: &[String]) -> Result<Vec<i64>, MlflowError> {
    ids.iter().map(|id| numeric_id("experiment", id)).collect()
}

/// `view_type` of a search: `ACTIVE_ONLY` (the default), `DELETED_ONLY`,
/// `ALL`, or their protobuf numbers 1, 2, 3.
pub(super) fn parse_view(value: Option<&Value>) -> Result<ViewType, MlflowError> {
    match value {
        None | Some(Value::Null) => Ok(ViewType::ActiveOnly),
        Some(v) => match (v.as_str(), v.as_i64()) {
            (Some("ACTIVE_ONLY"), _) | (_, Some(1)) => Ok(ViewType::ActiveOnly),
            (Some("DELETED_ONLY"), _) | (_, Some(2)) => Ok(ViewType::DeletedOnly),
            (Some("ALL"), _) | (_, Some(3)) => Ok(ViewType::All),
            _ => Err(MlflowError::invalid(format!(
                "view type {v} is not one of ACTIVE_ONLY, DELETED_ONLY, ALL"
            ))),
        },
    }
}
