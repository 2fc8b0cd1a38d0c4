//! The operations `ferroserve models` needs, behind one trait with two
//! implementations: a server's management API, or a data dir opened directly.

use std::collections::BTreeMap;
use std::path::Path;

use ferroserve_registry::{AuditFilter, AuditPage, ModelVersion, RegisteredModel, Stage};
use ferroserve_serving::lifecycle::{ArtifactInfo, RegisterVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::args::FaultChange;

/// A model with its aliases and versions.
#[derive(Debug, Clone, Serialize)]
pub struct ModelDetail {
    /// The model.
    #[serde(flatten)]
    pub model: RegisteredModel,
    /// Alias → version.
    pub aliases: BTreeMap<String, i64>,
    /// Every version, oldest first.
    pub versions: Vec<ModelVersion>,
}

/// The answer to a change, and what the server serves after it (remote
/// mode only: a server on a directly opened data dir follows by polling).
#[derive(Debug, Clone)]
pub struct Changed<T> {
    /// What the change returned.
    pub value: T,
    /// The server's `ServingStatus` after the change.
    pub serving: Option<Value>,
}

impl<T> Changed<T> {
    /// A change made directly in the registry (no serving status).
    pub fn direct(value: T) -> Self {
        Changed {
            value,
            serving: None,
        }
    }
}

/// A model's serving config and its revision (`None`: never set).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigRevision {
    /// Revision number.
    pub revision: Option<i64>,
    /// The config.
    pub config: Value,
}

/// The registry operations of `ferroserve models`. Blocking: the CLI does
/// one thing at a time.
pub trait ModelStore {
    /// Stores the artifact at `path` and checks that it loads.
    fn upload(&self, path: &Path) -> anyhow::Result<ArtifactInfo>;
    /// Registers a version of an uploaded artifact.
    fn register(
        &self,
        model: &str,
        request: &RegisterVersion,
    ) -> anyhow::Result<Changed<ModelVersion>>;
    /// Every registered model.
    fn list(&self) -> anyhow::Result<Vec<RegisteredModel>>;
    /// One model with its aliases and versions.
    fn model(&self, model: &str) -> anyhow::Result<ModelDetail>;
    /// One version.
    fn version(&self, model: &str, version: i64) -> anyhow::Result<ModelVersion>;
    /// Moves a version to a stage; `unload` allows leaving the model with
    /// nothing to serve.
    fn promote(
        &self,
        model: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
        unload: bool,
    ) -> anyhow::Result<Changed<ModelVersion>>;
    /// Points an alias at a version.
    fn set_alias(&self, model: &str, alias: &str, version: i64) -> anyhow::Result<Changed<()>>;
    /// Removes an alias; `unload` allows removing the one the model serves.
    fn delete_alias(&self, model: &str, alias: &str, unload: bool) -> anyhow::Result<Changed<()>>;
    /// Moves Production back to the previous Production version.
    fn rollback(&self, model: &str) -> anyhow::Result<Changed<ModelVersion>>;
    /// One page of a model's audit events (`filter.model` is ignored); an
    /// error for a name that never had a model.
    fn history_page(&self, model: &str, filter: &AuditFilter) -> anyhow::Result<AuditPage>;
    /// What the server serves of `model` (its `ServingStatus`); `None` in
    /// direct mode, where no server is asked.
    fn serving(&self, model: &str) -> anyhow::Result<Option<Value>>;
    /// Deletes a model with its versions and aliases (its history stays).
    fn delete_model(&self, model: &str) -> anyhow::Result<()>;
    /// Renames a model with its versions, aliases, serving config and
    /// rollout history.
    fn rename_model(&self, model: &str, new_name: &str) -> anyhow::Result<RegisteredModel>;
    /// The serving config in force.
    fn serving_config(&self, model: &str) -> anyhow::Result<ConfigRevision>;
    /// Stores a new serving-config revision; `unload` allows one that
    /// selects nothing to serve.
    fn set_serving_config(
        &self,
        model: &str,
        config: Value,
        unload: bool,
    ) -> anyhow::Result<Changed<ConfigRevision>>;
    /// Shows, sets or clears the faults injected into a served version:
    /// `{"faults": ...}` as the server answers.
    fn faults(&self, model: &str, version: &str, change: &FaultChange) -> anyhow::Result<Value>;
}
