//! `/api/2.0/mlflow/registered-models/...`: MLflow's view of ferroserve's
//! own registry (the same models, versions, stages and aliases as
//! `/api/v1` and the CLI): create, get, search, rename, update, delete, tags,
//! aliases and the latest version of each stage.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use ferroserve_registry::{ModelVersion, RegisteredModel, Stage, VersionStatus};
use ferroserve_serving::lifecycle::{Controller, WhenNothingServes};
use serde::Deserialize;
use serde_json::{json, Value};

use super::experiments::page_size;
use super::protocol::{
    int64, key_values, tag_map, KeyValue, MlflowBody, MlflowError, MlflowQuery, MlflowResult,
};
use super::search::{Entity, Field, Filter, OrderBy, Search, Searchable};
use crate::auth::Caller;
use crate::management::extract::{Actor, Ctl};
use crate::state::SharedState;

/// The version tag keeping the MLflow source a version was registered from.
pub(super) const SOURCE_TAG: &str = "mlflow.source";
/// The version tag keeping the MLflow logged model a version came from.
pub(super) const MODEL_ID_TAG: &str = "mlflow.model_id";

/// Registered models one search page holds by default, and at most.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// A version as MLflow's JSON has it, with the aliases pointing at it.
pub(super) fn version_json(v: &ModelVersion, aliases: &BTreeMap<String, i64>) -> Value {
    let (status, message) = match &v.status {
        VersionStatus::Ready => ("READY", String::new()),
        VersionStatus::Pending => ("PENDING_REGISTRATION", String::new()),
        VersionStatus::Failed { reason } => ("FAILED_REGISTRATION", reason.clone()),
    };
    let pointing: Vec<&String> = aliases
        .iter()
        .filter(|(_, version)| **version == v.version)
        .map(|(alias, _)| alias)
        .collect();
    let source = v
        .meta
        .tags
        .get(SOURCE_TAG)
        .cloned()
        .unwrap_or_else(|| format!("models:/{}/{}", v.model, v.version));
    let mut json = json!({
        "name": v.model,
        "version": v.version.to_string(),
        "creation_timestamp": v.created_at,
        "last_updated_timestamp": v.created_at,
        "current_stage": v.stage.as_str(),
        "description": v.meta.model_card.clone().unwrap_or_default(),
        "user_id": v.registered_by,
        "source": source,
        "run_id": v.meta.lineage.run_id.clone().unwrap_or_default(),
        "status": status,
        "status_message": message,
        "tags": key_values(&v.meta.tags),
        "aliases": pointing,
    });
    if let Some(model_id) = v.meta.tags.get(MODEL_ID_TAG) {
        json["model_id"] = json!(model_id);
    }
    json
}

/// Everything MLflow shows of a registered model: its latest version in
/// each stage and its aliases.
pub(super) struct ModelView {
    model: RegisteredModel,
    versions: Vec<ModelVersion>,
    aliases: BTreeMap<String, i64>,
}

impl ModelView {
    pub(super) async fn load(c: &Controller, name: &str) -> Result<ModelView, MlflowError> {
        let registry = c.lifecycle().registry();
        Ok(ModelView {
            model: registry.get_model(name).await?,
            versions: registry.list_versions(name).await?,
            aliases: registry.aliases(name).await?,
        })
    }

    /// The view of every model, by name, in three reads of the registry
    /// (not three per model).
    pub(super) async fn all(c: &Controller) -> Result<Vec<ModelView>, MlflowError> {
        let registry = c.lifecycle().registry();
        let models = registry.list_models().await?;
        let mut versions: BTreeMap<String, Vec<ModelVersion>> = BTreeMap::new();
        for version in registry.all_versions().await? {
            versions
                .entry(version.model.clone())
                .or_default()
                .push(version);
        }
        let mut aliases = registry.all_aliases().await?;
        Ok(models
            .into_iter()
            .map(|model| ModelView {
                versions: versions.remove(&model.name).unwrap_or_default(),
                aliases: aliases.remove(&model.name).unwrap_or_default(),
                model,
            })
            .collect())
    }

    /// Which version each alias names.
    pub(super) fn aliases(&self) -> &BTreeMap<String, i64> {
        &self.aliases
    }

    /// Its versions, oldest first.
    pub(super) fn into_versions(self) -> Vec<ModelVersion> {
        self.versions
    }

    /// The highest version in each of `stages` (every stage when empty).
    fn latest(&self, stages: &[Stage]) -> Vec<&ModelVersion> {
        let mut latest: BTreeMap<&str, &ModelVersion> = BTreeMap::new();
        for v in &self.versions {
            if !stages.is_empty() && !stages.contains(&v.stage) {
                continue;
            }
            let entry = latest.entry(v.stage.as_str()).or_insert(v);
            if v.version > entry.version {
                *entry = v;
            }
        }
        latest.into_values().collect()
    }

    fn json(&self) -> Value {
        let m = &self.model;
        let latest: Vec<Value> = self
            .latest(&[])
            .into_iter()
            .map(|v| version_json(v, &self.aliases))
            .collect();
        let aliases: Vec<Value> = self
            .aliases
            .iter()
            .map(|(alias, version)| json!({"alias": alias, "version": version.to_string()}))
            .collect();
        json!({
            "name": m.name,
            "creation_timestamp": m.created_at,
            "last_updated_timestamp": m.updated_at,
            "description": m.description,
            "latest_versions": latest,
            "tags": key_values(&m.tags),
            "aliases": aliases,
        })
    }
}

impl Searchable for ModelView {
    fn field(&self, entity: Entity, key: &str) -> Result<Option<Field>, MlflowError> {
        let m = &self.model;
        Ok(match entity {
            Entity::Tag => m.tags.get(key).map(|v| Field::Text(v.clone())),
            Entity::Attribute => match key {
                "name" => Some(Field::Text(m.name.clone())),
                "creation_timestamp" => Some(Field::Number(m.created_at as f64)),
                "last_updated_timestamp" => Some(Field::Number(m.updated_at as f64)),
                other => {
                    return Err(MlflowError::invalid(format!(
                        "registered models have no attribute '{other}' (name, \
                         creation_timestamp, last_updated_timestamp)"
                    )))
                }
            },
            Entity::Metric | Entity::Param => {
                return Err(MlflowError::invalid(
                    "registered models are searched by name and tags only",
                ))
            }
        })
    }
}

/// Gives a model created through MLflow a serving config that serves its
/// newest ready version, so that what MLflow registers is served at once
/// (ferroserve's own default waits for Production); a serving config
/// (`{"serve": {"alias": "champion"}}`, say) changes that.
pub(super) async fn serve_newest(
    c: &Controller,
    name: &str,
    actor: &str,
) -> Result<(), MlflowError> {
    c.lifecycle()
        .set_serving_config(
            name,
            json!({"serve": "latest"}),
            WhenNothingServes::Refuse,
            actor,
        )
        .await?;
    Ok(())
}

/// A stage as MLflow names it (any case).
pub(super) fn parse_stage(text: &str) -> Result<Stage, MlflowError> {
    text.parse::<Stage>().map_err(|_| {
        MlflowError::invalid(format!(
            "stage '{text}' is not one of None, Staging, Production, Archived"
        ))
    })
}

#[derive(Deserialize)]
pub(super) struct CreateModel {
    name: String,
    #[serde(default)]
    tags: Vec<KeyValue>,
    #[serde(default)]
    description: String,
}

/// `POST registered-models/create`.
pub(super) async fn create(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<CreateModel>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .create_model(&req.name, &req.description, tag_map(req.tags), &actor)
        .await?;
    serve_newest(&c, &req.name, &actor).await?;
    let view = ModelView::load(&c, &req.name).await?;
    Ok(Json(json!({"registered_model": view.json()})))
}

#[derive(Deserialize)]
pub(super) struct ModelName {
    name: String,
}

/// `GET registered-models/get?name=`.
pub(super) async fn get(Ctl(c): Ctl, MlflowQuery(req): MlflowQuery<ModelName>) -> MlflowResult {
    let view = ModelView::load(&c, &req.name).await?;
    Ok(Json(json!({"registered_model": view.json()})))
}

/// The query of the registry's searches (GET): a filter, one `order_by`
/// clause, a page.
#[derive(Deserialize)]
pub(super) struct RegistrySearch {
    #[serde(default)]
    filter: String,
    #[serde(default, deserialize_with = "int64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Option<String>,
    page_token: Option<String>,
}

impl RegistrySearch {
    /// The search it asks for, ordered by `default_order` unless it says,
    /// `default_page` items a page unless it says (at most `max_page`).
    pub(super) fn search(
        &self,
        default_order: &[&str],
        default_page: usize,
        max_page: usize,
    ) -> Result<Search<'_>, MlflowError> {
        let mut order_by = Vec::new();
        for clause in self.order_by.iter().filter(|o| !o.is_empty()) {
            order_by.push(OrderBy::parse(clause)?);
        }
        if order_by.is_empty() {
            for clause in default_order {
                order_by.push(OrderBy::parse(clause)?);
            }
        }
        Ok(Search {
            filter: Filter::parse(&self.filter)?,
            order_by,
            max_results: page_size(self.max_results, default_page, max_page)?,
            page_token: self.page_token.as_deref(),
        })
    }
}

/// `GET registered-models/search`.
pub(super) async fn search(
    Ctl(c): Ctl,
    MlflowQuery(req): MlflowQuery<RegistrySearch>,
) -> MlflowResult {
    let search = req.search(&["name ASC"], DEFAULT_PAGE, MAX_PAGE)?;
    Ok(Json(search.answer(
        ModelView::all(&c).await?,
        "registered_models",
        ModelView::json,
    )?))
}

#[derive(Deserialize)]
pub(super) struct Rename {
    name: String,
    new_name: String,
}

/// `POST registered-models/rename`: ferroserve's own rename (the
/// versions, aliases, serving config and rollout history move; the new
/// name serves; keys limited to the model by name follow it). A key
/// limited to some models must cover the new name.
pub(super) async fn rename(
    State(state): State<SharedState>,
    Ctl(c): Ctl,
    Actor(actor): Actor,
    caller: Caller,
    MlflowBody(req): MlflowBody<Rename>,
) -> MlflowResult {
    caller.may_use(&req.new_name)?;
    c.rename_model(&req.name, &req.new_name, &actor).await?;
    state.auth.reread_keys().await;
    let view = ModelView::load(&c, &req.new_name).await?;
    Ok(Json(json!({"registered_model": view.json()})))
}

#[derive(Deserialize)]
pub(super) struct UpdateModel {
    name: String,
    #[serde(default)]
    description: String,
}

/// `PATCH registered-models/update` (the description).
pub(super) async fn update(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<UpdateModel>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .set_model_description(&req.name, &req.description, &actor)
        .await?;
    let view = ModelView::load(&c, &req.name).await?;
    Ok(Json(json!({"registered_model": view.json()})))
}

/// `DELETE registered-models/delete`: refused while a version is in
/// Production, as ferroserve's own delete.
pub(super) async fn delete(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<ModelName>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .delete_model(&req.name, &actor)
        .await?;
    c.reconcile(&req.name).await;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct ModelTag {
    name: String,
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST registered-models/set-tag`.
pub(super) async fn set_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<ModelTag>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .set_model_tag(&req.name, &req.key, &req.value, &actor)
        .await?;
    Ok(Json(json!({})))
}

/// `DELETE registered-models/delete-tag`.
pub(super) async fn delete_tag(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<ModelTag>,
) -> MlflowResult {
    c.lifecycle()
        .registry()
        .delete_model_tag(&req.name, &req.key, &actor)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct SetAlias {
    name: String,
    alias: String,
    version: String,
}

/// `POST registered-models/alias`: what the alias names is served at once.
pub(super) async fn set_alias(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<SetAlias>,
) -> MlflowResult {
    let version = version_number(&req.version)?;
    c.lifecycle()
        .set_alias(&req.name, &req.alias, version, &actor)
        .await?;
    c.reconcile(&req.name).await;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub(super) struct AliasName {
    name: String,
    alias: String,
}

/// `DELETE registered-models/alias`: refused when the model would be left
/// with nothing to serve, as ferroserve's own delete.
pub(super) async fn delete_alias(
    Ctl(c): Ctl,
    Actor(actor): Actor,
    MlflowBody(req): MlflowBody<AliasName>,
) -> MlflowResult {
    c.lifecycle()
        .delete_alias(&req.name, &req.alias, WhenNothingServes::Refuse, &actor)
        .await?;
    c.reconcile(&req.name).await;
    Ok(Json(json!({})))
}

/// `GET registered-models/alias?name=&alias=`: the version it names.
pub(super) async fn get_by_alias(
    Ctl(c): Ctl,
    MlflowQuery(req): MlflowQuery<AliasName>,
) -> MlflowResult {
    let view = ModelView::load(&c, &req.name).await?;
    let version = view.aliases.get(&req.alias).copied().ok_or_else(|| {
        MlflowError::not_found(format!(
            "registered model '{}' has no alias '{}'",
            req.name, req.alias
        ))
    })?;
    let found = view
        .versions
        .iter()
        .find(|v| v.version == version)
        .ok_or_else(|| MlflowError::not_found(format!("version {version} is gone")))?;
    Ok(Json(
        json!({"model_version": version_json(found, &view.aliases)}),
    ))
}

#[derive(Deserialize)]
pub(super) struct LatestVersions {
    name: String,
    #[serde(default)]
    stages: Vec<String>,
}

/// `POST registered-models/get-latest-versions`.
pub(super) async fn latest_versions(
    Ctl(c): Ctl,
    MlflowBody(req): MlflowBody<LatestVersions>,
) -> MlflowResult {
    let stages = req
        .stages
        .iter()
        .map(|s| parse_stage(s))
        .collect::<Result<Vec<_>, _>>()?;
    let view = ModelView::load(&c, &req.name).await?;
    let versions: Vec<Value> = view
        .latest(&stages)
        .into_iter()
        .map(|v| version_json(v, &view.aliases))
        .collect();
    Ok(Json(json!({ "model_versions": versions })))
}

/// A version number as MLflow sends it (a string of digits).
pub(super) fn version_number(text: &str) -> Result<i64, MlflowError> {
    text.trim()
        .parse()
        .map_err(|_| MlflowError::invalid(format!("version '{text}' is not a version number")))
}
