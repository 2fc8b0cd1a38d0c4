//! `/api/2.0/mlflow/model-versions/...`: versions of ferroserve's models as
//! MLflow sees them. A version created from an MLflow model with an ONNX
//! flavor (`MLmodel` and the ONNX file, in ferroserve's artifact store) is
//! loaded by an engine, registered with its signature (and the feature
//! names its MLflow signature or input example give) and the run's
//! params, metrics and datasets as lineage, and served like any other; a
//! model without one is registered as not servable, saying why.

use std::collections::BTreeMap;

use axum::Json;
use ferroserve_registry::tracking::Run;
use ferroserve_registry::{Lineage, ModelVersion, NewVersion, VersionMeta};
use ferroserve_serving::lifecycle::{Controller, RegisterVersion, WhenNothingServes};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio_util::io::StreamReader;

use super::artifacts::files;
use super::mlmodel::MlModel;
use super::protocol::{tag_map, KeyValue, MlflowBody, MlflowError, MlflowQuery, MlflowResult};
use super::registered_models::{
    parse_stage, serve_newest, version_json, version_number, ModelView, RegistrySearch,
    MODEL_ID_TAG, SOURCE_TAG,
};
use super::search::{Entity, Field, Searchable};
use crate::management::extract::{Actor, Ctl};

/// Model versions one search page holds by default, and at most.
const DEFAULT_PAGE: usize = 200;
const MAX_PAGE: usize = 10_000;
/// The prefix of the artifact proxy's URIs.
const PROXY: &str = "mlflow-artifacts:/";

/// Where an MLflow source's files are: its `mlflow-artifacts:/` URI and
/// the folder of the proxy's area it names.
async fn source_folder(c: &Controller, source: &str) -> Result<(String, String), MlflowError> {
    let registry = c.lifecycle().registry();
    let uri = if let Some(model_id) = source.strip_prefix("models:/m-") {
        let model = registry.logged_model(&format!("m-{model_id}")).await?;
        model.artifact_uri
    } else if let Some(rest) = source.strip_prefix("runs:/") {
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        let run = registry.run(run_id).await?;
        format!("{}/{}", run.info.artifact_uri, path.trim_matches('/'))
    } else {
        source.to_owned()
    };
    let folder = uri.strip_prefix(PROXY).ok_or_else(|| {
        MlflowError::invalid(format!(
            "source '{source}' is not in this server's artifact store: log the model to \
             an experiment of this server (mlflow-artifacts:/), or give models:/m-ID or runs:/RUN/PATH"
        ))
    })?;
    Ok((uri.clone(), folder.trim_matches('/').to_owned()))
}

/// The run's params, latest metrics, code commit and dataset digests as a
/// version's lineage.
fn lineage_of(run: &Run, meta: &mut VersionMeta) {
    meta.params = run.params.clone();
    meta.metrics = run
        .metrics
        .iter()
        .filter(|(_, m)| m.value.is_finite())
        .map(|(key, m)| (key.clone(), m.value))
        .collect();
    meta.lineage = Lineage {
        run_id: Some(run.info.run_id.clone()),
        code_commit: run.tags.get("mlflow.source.git.commit").cloned(),
        data_uri: run.inputs.first().map(|i| i.dataset.source.clone()),
        ..Lineage::default()
    };
    for input in &run.inputs {
        meta.tags.insert(
            format!("mlflow.dataset.{}", input.dataset.name),
            input.dataset.digest.clone(),
        );
    }
}

#[derive(Deserialize)]
pub(super) struct CreateVersion {
    name: String,
    source: String,
    run_id: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    description: Option<String>,
    model_id: Option<String>,
}

/// `POST model-versions/create`: the ONNX file of the source's MLflow
/// model is stored, checked by an engine and registered; the version is
/// READY and served as the model's stages and aliases say.
pub(super) async fn create(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<CreateVersion>,
) -> MlflowResult {
    let (uri, folder) = source_folder(&c, &req.source).await?;
    let area = files(&c);
    let mlmodel = MlModel::read(&area, &folder).await?;
    let mut meta = VersionMeta {
        model_card: req.description.filter(|d| !d.is_empty()),
        tags: tag_map(req.tags),
        ..VersionMeta::default()
    };
    let run_id = req
        .run_id
        .filter(|r| !r.is_empty())
        .or(mlmodel.run_id.clone());
    if let Some(run_id) = run_id {
        lineage_of(&c.lifecycle().registry().run(&run_id).await?, &mut meta);
    }
    meta.tags.insert(SOURCE_TAG.to_owned(), uri);
    if let Some(model_id) = req.model_id.or(mlmodel.model_id.clone()) {
        meta.tags.insert(MODEL_ID_TAG.to_owned(), model_id);
    }
    let is_new = matches!(
        c.lifecycle().registry().get_model(&req.name).await,
        Err(ferroserve_registry::RegistryError::ModelNotFound(_))
    );
    let version = match mlmodel.onnx_file() {
        Some(onnx_file) => {
            let stream = area
                .open(&format!("{folder}/{onnx_file}"))
                .await?
                .ok_or_else(|| {
                    MlflowError::invalid(format!("the ONNX file {onnx_file} is missing"))
                })?;
            let reader = StreamReader::new(stream.map_err(std::io::Error::other));
            let artifact = c.lifecycle().upload(reader, None).await?;
            let described = mlmodel
                .describe(&area, &folder, &artifact.signature)
                .await?;
            meta.feature_schema = described.feature_schema;
            let request = RegisterVersion {
                artifact_digest: artifact.sha256,
                description: None,
                engine: None,
                meta,
                stage: None,
            };
            c.lifecycle().register(&req.name, request, &actor).await?
        }
        None => {
            let reason = format!(
                "not servable: the MLflow model has no ONNX flavor (it has {:?}); \
                 ferroserve serves ONNX models: log it with mlflow.onnx.log_model",
                mlmodel.flavor_names()
            );
            let text = mlmodel.text.clone();
            register_unservable(&c, &req.name, text, meta, &reason, &actor).await?
        }
    };
    if is_new {
        serve_newest(&c, &req.name, &actor).await?;
    }
    c.reconcile(&req.name).await;
    let aliases = c.lifecycle().registry().aliases(&req.name).await?;
    Ok(Json(
        json!({"model_version": version_json(&version, &aliases)}),
    ))
}

/// Registers a version that cannot be served, kept with its `MLmodel`
/// file as its artifact and `reason` as its failure, so that MLflow shows
/// it (FAILED_REGISTRATION, with the reason) and nothing serves it.
async fn register_unservable(
    c: &Controller,
    name: &str,
    mlmodel: axum::body::Bytes,
    meta: VersionMeta,
    reason: &str,
    actor: &str,
) -> Result<ModelVersion, MlflowError> {
    let registry = c.lifecycle().registry();
    match registry
        .create_model(name, "", Default::default(), actor)
        .await
    {
        Ok(_) | Err(ferroserve_registry::RegistryError::ModelExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let (digest, size) = c.lifecycle().artifacts().put_stream(&mlmodel[..]).await?;
    let new = NewVersion {
        artifact_digest: digest,
        artifact_size: i64::try_from(size).unwrap_or(i64::MAX),
        format: "mlflow".to_owned(),
        engine_hint: None,
        signature: None,
        meta,
    };
    let pending = registry.create_version(name, new, actor).await?;
    Ok(registry
        .mark_version_failed(name, pending.version, reason, actor)
        .await?)
}

#[derive(Deserialize)]
pub(super) struct VersionRef {
    name: String,
    version: String,
}

impl VersionRef {
    async fn fetch(&self, c: &Controller) -> Result<ModelVersion, MlflowError> {
        let version = version_number(&self.version)?;
        Ok(c.lifecycle()
            .registry()
            .get_version(&self.name, version)
            .await?)
    }
}

async fn answer(c: &Controller, version: &ModelVersion) -> MlflowResult {
    let aliases = c.lifecycle().registry().aliases(&version.model).await?;
    Ok(Json(
        json!({"model_version": version_json(version, &aliases)}),
    ))
}

/// `GET model-versions/get?name=&version=`.
pub(super) async fn get(Ctl(c): Ctl, MlflowQuery(req): MlflowQuery<VersionRef>) -> MlflowResult {
    let version = req.fetch(&c).await?;
    answer(&c, &version).await
}

#[derive(Deserialize)]
pub(super) struct UpdateVersion {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
}

/// `PATCH model-versions/update` (the description: the model card).
pub(super) async fn update(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<UpdateVersion>,
) -> MlflowResult {
    let number = version_number(&req.version)?;
    let version = c
        .lifecycle()
        .registry()
        .set_model_card(
            &req.name,
            number,
            Some(req.description).filter(|d| !d.is_empty()),
            &actor,
        )
        .await?;
    answer(&c, &version).await
}

/// `DELETE model-versions/delete`: refused when the model would be left
/// with nothing to serve, as ferroserve's own delete.
pub(super) async fn delete(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<VersionRef>,
) -> MlflowResult {
    let number = version_number(&req.version)?;
    c.lifecycle()
        .delete_version(&req.name, number, WhenNothingServes::Refuse, &actor)
        .await?;
    c.reconcile(&req.name).await;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct Transition {
    name: String,
    version: String,
    stage: String,
    #[serde(default)]
    archive_existing_versions: bool,
}

/// `POST model-versions/transition-stage`.
pub(super) async fn transition_stage(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<Transition>,
) -> MlflowResult {
    let number = version_number(&req.version)?;
    let stage = parse_stage(&req.stage)?;
    let version = c
        .lifecycle()
        .transition_stage(
            &req.name,
            number,
            stage,
            req.archive_existing_versions,
            WhenNothingServes::Refuse,
            &actor,
        )
        .await?;
    c.reconcile(&req.name).await;
    answer(&c, &version).await
}

#[derive(Deserialize)]
pub(super) struct VersionTag {
    name: String,
    version: String,
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST model-versions/set-tag`.
pub(super) async fn set_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<VersionTag>,
) -> MlflowResult {
    let number = version_number(&req.version)?;
    c.lifecycle()
        .registry()
        .set_version_tag(&req.name, number, &req.key, &req.value, &actor)
        .await?;
    Ok(Json(json!({})))
}

/// `DELETE model-versions/delete-tag`.
pub(super) async fn delete_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<VersionTag>,
) -> MlflowResult {
    let number = version_number(&req.version)?;
    c.lifecycle()
        .registry()
        .delete_version_tag(&req.name, number, &req.key, &actor)
        .await?;
    Ok(Json(json!({})))
}

/// `GET model-versions/get-download-uri?name=&version=`: where MLflow's
/// client downloads the version's MLflow model from.
pub(super) async fn download_uri(
    Ctl(c): Ctl,
    MlflowQuery(req): MlflowQuery<VersionRef>,
) -> MlflowResult {
    let version = req.fetch(&c).await?;
    let source = version.meta.tags.get(SOURCE_TAG).ok_or_else(|| {
        MlflowError::invalid(format!(
            "version {} of '{}' was not registered from an MLflow model; download its \
             artifact from /api/v1/models/{}/versions/{}/artifact",
            version.version, version.model, version.model, version.version
        ))
    })?;
    Ok(Json(json!({"artifact_uri": source})))
}

/// A version as searches see it.
struct Listed {
    version: ModelVersion,
    aliases: BTreeMap<String, i64>,
}

impl Searchable for Listed {
    fn field(&self, entity: Entity, key: &str) -> Result<Option<Field>, MlflowError> {
        let v = &self.version;
        let text = |s: &str| Some(Field::Text(s.to_owned()));
        Ok(match entity {
            Entity::Tag => v.meta.tags.get(key).map(|t| Field::Text(t.clone())),
            Entity::Attribute => match key {
                "name" => text(&v.model),
                "version" | "version_number" => Some(Field::Number(v.version as f64)),
                "run_id" => v.meta.lineage.run_id.as_deref().and_then(text),
                "source" => v.meta.tags.get(SOURCE_TAG).and_then(|s| text(s)),
                "current_stage" => text(v.stage.as_str()),
                "creation_timestamp" => Some(Field::Number(v.created_at as f64)),
                other => {
                    return Err(MlflowError::invalid(format!(
                        "model versions have no attribute '{other}' (name, version_number, \
                         run_id, source, current_stage, creation_timestamp)"
                    )))
                }
            },
            Entity::Metric | Entity::Param => {
                return Err(MlflowError::invalid(
                    "model versions are searched by attributes and tags only",
                ))
            }
        })
    }
}

/// `GET model-versions/search`.
pub(super) async fn search(
    Ctl(c): Ctl,
    MlflowQuery(req): MlflowQuery<RegistrySearch>,
) -> MlflowResult {
    let search = req.search(&["name ASC", "version_number DESC"], DEFAULT_PAGE, MAX_PAGE)?;
    let mut listed = Vec::new();
    for view in ModelView::all(&c).await? {
        let aliases = view.aliases().clone();
        for version in view.into_versions() {
            listed.push(Listed {
                version,
                aliases: aliases.clone(),
            });
        }
    }
    let answer = search.answer(listed, "model_versions", |l: &Listed| {
        version_json(&l.version, &l.aliases)
    })?;
    Ok(Json(answer))
}
