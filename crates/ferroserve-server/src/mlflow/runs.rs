//! `/api/2.0/mlflow/runs/...` and `metrics/get-history`: runs created,
//! read, updated, deleted, restored and searched, and what they log
//! (metrics, params, tags, batches, inputs, models).

use axum::Json;
use ferroserve_registry::tracking::{
    Dataset, MetricValue, NewRun, Run, RunInput, RunStatus, RunUpdate,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::experiments::{experiment_ids, page_size, parse_view};
use super::protocol::{
    double, double_json, int64, key_values, tag_map, KeyValue, MlflowBody, MlflowError,
    MlflowQuery, MlflowResult,
};
use super::search::{Entity, Field, Filter, OrderBy, Search, Searchable};
use crate::management::extract::Ctl;

/// Runs one search page holds by default, and at most (MLflow's limits).
const DEFAULT_RUNS_PAGE: usize = 1000;
const MAX_RUNS_PAGE: usize = 50_000;
/// Metric values one history page holds by default, and at most.
const DEFAULT_HISTORY_PAGE: usize = 25_000;
const MAX_HISTORY_PAGE: usize = 25_000;
/// The tag MLflow keeps the models logged by a run in.
const LOGGED_MODELS_TAG: &str = "mlflow.log-model.history";

/// A run as MLflow's JSON has it.
pub(super) fn run_json(run: &Run) -> Value {
    let metrics: Vec<Value> = run
        .metrics
        .iter()
        .map(|(key, m)| metric_json(key, m))
        .collect();
    let inputs: Vec<Value> = run
        .inputs
        .iter()
        .map(|input| {
            let d = &input.dataset;
            let mut dataset = json!({
                "name": d.name, "digest": d.digest,
                "source_type": d.source_type, "source": d.source,
            });
            if let Some(schema) = &d.schema {
                dataset["schema"] = json!(schema);
            }
            if let Some(profile) = &d.profile {
                dataset["profile"] = json!(profile);
            }
            json!({"tags": key_values(&input.tags), "dataset": dataset})
        })
        .collect();
    json!({
        "info": info_json(&run.info),
        "data": {
            "metrics": metrics,
            "params": key_values(&run.params),
            "tags": key_values(&run.tags),
        },
        "inputs": {"dataset_inputs": inputs},
    })
}

fn info_json(info: &ferroserve_registry::tracking::RunInfo) -> Value {
    let mut json = json!({
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id.to_string(),
        "user_id": info.user_id,
        "status": info.status.as_str(),
        "start_time": info.start_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage.as_str(),
    });
    if let Some(end) = info.end_time {
        json["end_time"] = json!(end);
    }
    json
}

fn metric_json(key: &str, m: &MetricValue) -> Value {
    json!({"key": key, "value": double_json(m.value), "timestamp": m.timestamp, "step": m.step})
}

impl Searchable for Run {
    fn field(&self, entity: Entity, key: &str) -> Result<Option<Field>, MlflowError> {
        let text = |s: &str| Some(Field::Text(s.to_owned()));
        Ok(match entity {
            Entity::Metric => self.metrics.get(key).map(|m| Field::Number(m.value)),
            Entity::Param => self.params.get(key).map(|v| Field::Text(v.clone())),
            Entity::Tag => self.tags.get(key).map(|v| Field::Text(v.clone())),
            Entity::Attribute => match key {
                "run_id" | "run_uuid" => text(&self.info.run_id),
                "run_name" => text(&self.info.run_name),
                "user_id" => text(&self.info.user_id),
                "status" => text(self.info.status.as_str()),
                "artifact_uri" => text(&self.info.artifact_uri),
                "lifecycle_stage" => text(self.info.lifecycle_stage.as_str()),
                "start_time" | "created" | "Created" => {
                    Some(Field::Number(self.info.start_time as f64))
                }
                "end_time" => self.info.end_time.map(|t| Field::Number(t as f64)),
                other => {
                    return Err(MlflowError::invalid(format!(
                        "runs have no attribute '{other}' (run_id, run_name, user_id, status, \
                         artifact_uri, lifecycle_stage, start_time, end_time)"
                    )))
                }
            },
        })
    }
}

/// The run id of a request: `run_id`, or the older `run_uuid`.
#[derive(Deserialize)]
pub(super) struct RunId {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

impl RunId {
    fn get(&self) -> Result<&str, MlflowError> {
        self.run_id
            .as_deref()
            .or(self.run_uuid.as_deref())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| MlflowError::invalid("missing value for required parameter 'run_id'"))
    }
}

#[derive(Deserialize)]
pub(super) struct CreateRun {
    experiment_id: Option<String>,
    #[serde(default)]
    user_id: String,
    #[serde(default, deserialize_with = "int64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    #[serde(default)]
    run_name: String,
}

/// `POST runs/create`.
pub(super) async fn create(Ctl(c): Ctl, MlflowBody(req): MlflowBody<CreateRun>) -> MlflowResult {
    let experiment = req.experiment_id.unwrap_or_else(|| "0".to_owned());
    let run = c
        .lifecycle()
        .registry()
        .create_run(&NewRun {
            experiment_id: experiment_ids(&[experiment])?[0],
            run_name: req.run_name,
            user_id: req.user_id,
            start_time: req.start_time,
            tags: tag_map(req.tags),
        })
        .await?;
    Ok(Json(json!({"run": run_json(&run)})))
}

/// `GET runs/get?run_id=`.
pub(super) async fn get(Ctl(c): Ctl, MlflowQuery(req): MlflowQuery<RunId>) -> MlflowResult {
    let run = c.lifecycle().registry().run(req.get()?).await?;
    Ok(Json(json!({"run": run_json(&run)})))
}

#[derive(Deserialize)]
pub(super) struct UpdateRun {
    #[serde(flatten)]
    id: RunId,
    status: Option<String>,
    #[serde(default, deserialize_with = "int64")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

/// `POST runs/update`.
pub(super) async fn update(Ctl(c): Ctl, MlflowBody(req): MlflowBody<UpdateRun>) -> MlflowResult {
    let status = req.status.as_deref().map(RunStatus::parse).transpose()?;
    let info = c
        .lifecycle()
        .registry()
        .update_run(
            req.id.get()?,
            &RunUpdate {
                status,
                end_time: req.end_time,
                run_name: req.run_name,
            },
        )
        .await?;
    Ok(Json(json!({"run_info": info_json(&info)})))
}

/// `POST runs/delete`.
pub(super) async fn delete(Ctl(c): Ctl, MlflowBody(req): MlflowBody<RunId>) -> MlflowResult {
    c.lifecycle().registry().delete_run(req.get()?).await?;
    Ok(Json(json!({})))
}

/// `POST runs/restore`.
pub(super) async fn restore(Ctl(c): Ctl, MlflowBody(req): MlflowBody<RunId>) -> MlflowResult {
    c.lifecycle().registry().restore_run(req.get()?).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct LoggedMetric {
    key: String,
    #[serde(deserialize_with = "double")]
    value: f64,
    #[serde(default, deserialize_with = "int64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    step: Option<i64>,
}

impl LoggedMetric {
    fn into_pair(self) -> (String, MetricValue) {
        (
            self.key,
            MetricValue {
                value: self.value,
                timestamp: self.timestamp.unwrap_or(0),
                step: self.step.unwrap_or(0),
            },
        )
    }
}

/// `runs/log-metric`: the run's ids spelled out, since a metric's value
/// is read from its JSON text (no `flatten`).
#[derive(Deserialize)]
pub(super) struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
    #[serde(deserialize_with = "double")]
    value: f64,
    #[serde(default, deserialize_with = "int64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "int64")]
    step: Option<i64>,
}

/// `POST runs/log-metric`.
pub(super) async fn log_metric(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<LogMetric>,
) -> MlflowResult {
    let id = RunId {
        run_id: req.run_id,
        run_uuid: req.run_uuid,
    };
    let metric = LoggedMetric {
        key: req.key,
        value: req.value,
        timestamp: req.timestamp,
        step: req.step,
    };
    c.lifecycle()
        .registry()
        .log_batch(id.get()?, &[metric.into_pair()], &[], &[])
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct LogKeyValue {
    #[serde(flatten)]
    id: RunId,
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST runs/log-parameter`.
pub(super) async fn log_param(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<LogKeyValue>,
) -> MlflowResult {
    let param = [(req.key.clone(), req.value.clone())];
    c.lifecycle()
        .registry()
        .log_batch(req.id.get()?, &[], &param, &[])
        .await?;
    Ok(Json(json!({})))
}

/// `POST runs/set-tag`.
pub(super) async fn set_tag(Ctl(c): Ctl, MlflowBody(req): MlflowBody<LogKeyValue>) -> MlflowResult {
    let tag = [(req.key.clone(), req.value.clone())];
    c.lifecycle()
        .registry()
        .log_batch(req.id.get()?, &[], &[], &tag)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct DeleteTag {
    #[serde(flatten)]
    id: RunId,
    key: String,
}

/// `POST runs/delete-tag`.
pub(super) async fn delete_tag(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<DeleteTag>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .delete_run_tag(req.id.get()?, &req.key)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct LogBatch {
    /// Spelled out rather than flattened (see [`LogMetric`]).
    run_id: Option<String>,
    #[serde(default)]
    metrics: Vec<LoggedMetric>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

/// `POST runs/log-batch`.
pub(super) async fn log_batch(Ctl(c): Ctl, MlflowBody(req): MlflowBody<LogBatch>) -> MlflowResult {
    let run_id = RunId {
        run_id: req.run_id,
        run_uuid: None,
    }
    .get()?
    .to_owned();
    let metrics: Vec<(String, MetricValue)> = req
        .metrics
        .into_iter()
        .map(LoggedMetric::into_pair)
        .collect();
    let pairs = |list: Vec<KeyValue>| -> Vec<(String, String)> {
        list.into_iter().map(|kv| (kv.key, kv.value)).collect()
    };
    c.lifecycle()
        .registry()
        .log_batch(&run_id, &metrics, &pairs(req.params), &pairs(req.tags))
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct DatasetJson {
    name: String,
    digest: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    source: String,
    schema: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DatasetInput {
    #[serde(default)]
    tags: Vec<KeyValue>,
    dataset: DatasetJson,
}

#[derive(Deserialize)]
pub(super) struct LogInputs {
    #[serde(flatten)]
    id: RunId,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
}

/// `POST runs/log-inputs`.
pub(super) async fn log_inputs(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<LogInputs>,
) -> MlflowResult {
    let run_id = req.id.get()?.to_owned();
    let inputs: Vec<RunInput> = req
        .datasets
        .into_iter()
        .map(|input| RunInput {
            tags: tag_map(input.tags),
            dataset: Dataset {
                name: input.dataset.name,
                digest: input.dataset.digest,
                source_type: input.dataset.source_type,
                source: input.dataset.source,
                schema: input.dataset.schema,
                profile: input.dataset.profile,
            },
        })
        .collect();
    c.lifecycle()
        .registry()
        .log_inputs(&run_id, &inputs)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct LogModel {
    #[serde(flatten)]
    id: RunId,
    model_json: Option<String>,
}

/// `POST runs/log-model`: the model's `MLmodel` (as JSON) joins the run's
/// `mlflow.log-model.history` tag, as MLflow keeps it.
pub(super) async fn log_model(Ctl(c): Ctl, MlflowBody(req): MlflowBody<LogModel>) -> MlflowResult {
    let run_id = req.id.get()?.to_owned();
    let model: Value = serde_json::from_str(req.model_json.as_deref().unwrap_or("null"))
        .map_err(|e| MlflowError::invalid(format!("model_json is not JSON: {e}")))?;
    let registry = c.lifecycle().registry();
    let run = registry.run(&run_id).await?;
    let mut history: Vec<Value> = run
        .tags
        .get(LOGGED_MODELS_TAG)
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default();
    history.push(model);
    let tag = [(
        LOGGED_MODELS_TAG.to_owned(),
        Value::from(history).to_string(),
    )];
    registry.log_batch(&run_id, &[], &[], &tag).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct SearchRuns {
    #[serde(default)]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: String,
    run_view_type: Option<Value>,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

/// `POST runs/search`.
pub(super) async fn search(Ctl(c): Ctl, MlflowBody(req): MlflowBody<SearchRuns>) -> MlflowResult {
    let view = parse_view(req.run_view_type.as_ref())?;
    let search = Search {
        filter: Filter::parse(&req.filter)?,
        order_by: req
            .order_by
            .iter()
            .map(|c| OrderBy::parse(c))
            .collect::<Result<Vec<_>, _>>()?,
        max_results: page_size(req.max_results, DEFAULT_RUNS_PAGE, MAX_RUNS_PAGE)?,
        page_token: req.page_token.as_deref(),
    };
    // The store gives the newest first: the order when none is asked for,
    // and the tie-break of any other.
    let runs = c
        .lifecycle()
        .registry()
        .runs_of(&experiment_ids(&req.experiment_ids)?, view)
        .await?;
    let answer = search.answer(runs, "runs", run_json)?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub(super) struct MetricHistory {
    #[serde(flatten)]
    id: RunId,
    metric_key: String,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

/// `GET metrics/get-history?run_id=&metric_key=`.
pub(super) async fn metric_history(
    Ctl(c): Ctl,
    MlflowQuery(req): MlflowQuery<MetricHistory>,
) -> MlflowResult {
    let max = page_size(req.max_results, DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE)?;
    let page = c
        .lifecycle()
        .registry()
        .metric_history(
            req.id.get()?,
            &req.metric_key,
            max,
            req.page_token.as_deref(),
        )
        .await?;
    let metrics: Vec<Value> = page
        .metrics
        .iter()
        .map(|m| metric_json(&req.metric_key, m))
        .collect();
    let mut answer = json!({ "metrics": metrics });
    if let Some(next) = page.next_page_token {
        answer["next_page_token"] = json!(next);
    }
    Ok(Json(answer))
}

/// `POST runs/outputs` (MLflow 3 links logged models to runs with it):
/// accepted and checked against the run, which keeps no outputs.
pub(super) async fn log_outputs(Ctl(c): Ctl, MlflowBody(req): MlflowBody<RunId>) -> MlflowResult {
    c.lifecycle().registry().run(req.get()?).await?;
    Ok(Json(json!({})))
}
