//! What the server serves of one model, as reported by the management API
//! and the KServe repository index.

use serde::Serialize;

use crate::guard::breaker::BreakerState;
use crate::manager::{ModelEntry, VersionState};

/// Where a served model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelOrigin {
    /// Registered in the model registry; serving follows its stages, aliases and config.
    Registry,
    /// A file or model repository folder given at start.
    Repository,
}

/// Load state of one served version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionServing {
    /// Version label.
    pub version: String,
    /// Load state.
    #[serde(flatten)]
    pub state: VersionState,
    /// Circuit breaker state, when the version is loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerState>,
}

/// A version that should serve but could not be loaded, warmed up or swapped in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServingFailure {
    /// Version number.
    pub version: i64,
    /// What went wrong.
    pub reason: String,
}

/// What the server serves of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServingStatus {
    /// Model name.
    pub model: String,
    /// Where the model comes from.
    pub origin: ModelOrigin,
    /// The version answering requests that name none.
    pub serving_version: Option<String>,
    /// The version the registry selects to serve (registry models): its
    /// stages, aliases and serving config; `null` when they select none
    /// (and for models served from files).
    pub target_version: Option<i64>,
    /// Set while the model serves another version than the registry
    /// selects: what serves and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// Every version in the serving table.
    pub versions: Vec<VersionServing>,
    /// Versions that should serve but failed, with the reason.
    pub failures: Vec<ServingFailure>,
    /// Revision of the serving config in force (registry models).
    pub config_revision: Option<i64>,
    /// The model is served from a file given at start and a registry model
    /// of the same name exists: the file wins, the registry's versions are
    /// not served. Shown only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadows_registry_model: bool,
}

impl ServingStatus {
    /// Builds the status from a serving-table entry.
    pub fn new(model: &str, origin: ModelOrigin, entry: Option<&ModelEntry>) -> Self {
        ServingStatus {
            model: model.to_owned(),
            origin,
            serving_version: entry
                .and_then(ModelEntry::default_version)
                .map(|s| s.version().to_owned()),
            versions: entry
                .map(|e| {
                    e.versions
                        .values()
                        .map(|v| VersionServing {
                            version: v.version.clone(),
                            state: v.state.clone(),
                            breaker: v.served.as_ref().map(|s| s.protection().breaker.state()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            failures: Vec::new(),
            config_revision: None,
            target_version: None,
            degraded: None,
            shadows_registry_model: false,
        }
    }
}

/// One row of the KServe / Triton repository index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    /// Model name.
    pub name: String,
    /// Version label, when the row is about one version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `READY`, `LOADING` or `UNAVAILABLE`.
    pub state: &'static str,
    /// Why the model is not ready.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl IndexEntry {
    /// The index rows of one serving-table entry.
    pub fn rows(name: &str, entry: &ModelEntry) -> Vec<IndexEntry> {
        entry
            .versions
            .values()
            .map(|v| {
                let (state, reason) = match &v.state {
                    VersionState::Ready => ("READY", String::new()),
                    VersionState::Loading => ("LOADING", String::new()),
                    VersionState::Failed { reason } => ("UNAVAILABLE", reason.clone()),
                    VersionState::Unloaded => ("UNAVAILABLE", "unloaded".to_owned()),
                };
                IndexEntry {
                    name: name.to_owned(),
                    version: Some(v.version.clone()),
                    state,
                    reason,
                }
            })
            .collect()
    }
}
