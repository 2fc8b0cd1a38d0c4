//! Domain types of the registry: models, versions, stages, lineage, audit
//! events and serving configuration revisions.
//!
//! Times are unix milliseconds (UTC) everywhere.

use std::collections::BTreeMap;

use ferroserve_core::{EngineChoice, FeatureSchema, ModelSignature};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit_action::AuditAction;
pub use crate::stage::Stage;

/// String key → string value tags on a model or a version.
pub type Tags = BTreeMap<String, String>;

/// A registered model: a name under which versions are registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    /// Unique name, 1-128 characters of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// Free-text description.
    pub description: String,
    /// Tags on the model.
    pub tags: Tags,
    /// When the model was created (unix ms).
    pub created_at: i64,
    /// When the model or one of its versions last changed (unix ms).
    pub updated_at: i64,
}

/// Whether a version's artifact has been checked and can be served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum VersionStatus {
    /// Registered; the artifact is not yet verified.
    Pending,
    /// Verified and servable.
    Ready,
    /// Verification failed.
    Failed {
        /// Why it failed.
        reason: String,
    },
}

impl VersionStatus {
    /// The status name as stored ("pending", "ready", "failed").
    pub fn as_str(&self) -> &'static str {
        match self {
            VersionStatus::Pending => "pending",
            VersionStatus::Ready => "ready",
            VersionStatus::Failed { .. } => "failed",
        }
    }
}

/// Where a version came from: training data, code and run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// URI of the training data.
    pub data_uri: Option<String>,
    /// sha256 (hex) of the training data.
    pub data_sha256: Option<String>,
    /// Commit of the code that trained the model.
    pub code_commit: Option<String>,
    /// Identifier of the training run.
    pub run_id: Option<String>,
    /// Version of the same model this one was derived from.
    pub parent_version: Option<i64>,
}

/// What describes a version beyond its artifact: the fields a client
/// supplies when it registers one. Flattened into [`ModelVersion`],
/// [`NewVersion`] and the serving layer's registration request, so each
/// field is a top-level field of their JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionMeta {
    /// Named features with types, ranges or categories and defaults.
    pub feature_schema: Option<FeatureSchema>,
    /// Training parameters.
    pub params: BTreeMap<String, String>,
    /// Evaluation metrics (finite numbers).
    pub metrics: BTreeMap<String, f64>,
    /// Where the version came from.
    pub lineage: Lineage,
    /// Model card, Markdown.
    pub model_card: Option<String>,
    /// Reference data profile used by drift monitoring (its format belongs
    /// to the monitor, which checks it).
    pub reference_profile: Option<Value>,
    /// Tags on the version.
    pub tags: Tags,
}

/// One registered version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Name of the model.
    pub model: String,
    /// Version number, 1, 2, 3... per model.
    pub version: i64,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Verification status.
    pub status: VersionStatus,
    /// sha256 of the artifact, lowercase hex.
    pub artifact_digest: String,
    /// Size of the artifact in bytes.
    pub artifact_size: i64,
    /// Artifact format, e.g. "onnx".
    pub format: String,
    /// Preferred engine.
    pub engine_hint: Option<EngineChoice>,
    /// Inputs and outputs of the model.
    pub signature: Option<ModelSignature>,
    /// Descriptive fields.
    #[serde(flatten)]
    pub meta: VersionMeta,
    /// Who registered the version.
    pub registered_by: String,
    /// When it was registered (unix ms).
    pub created_at: i64,
}

/// What the caller supplies to register a new version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewVersion {
    /// Descriptive fields.
    #[serde(flatten)]
    pub meta: VersionMeta,
    /// sha256 of the artifact, lowercase hex (64 characters).
    pub artifact_digest: String,
    /// Size of the artifact in bytes.
    pub artifact_size: i64,
    /// Artifact format, e.g. "onnx".
    pub format: String,
    /// Preferred engine.
    pub engine_hint: Option<EngineChoice>,
    /// Inputs and outputs of the model.
    pub signature: Option<ModelSignature>,
}

/// One recorded change of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increasing id; events are ordered by it.
    pub id: i64,
    /// When the change happened (unix ms).
    pub at: i64,
    /// Who made the change.
    pub actor: String,
    /// What was done, e.g. `create_version` or `transition_stage`.
    pub action: AuditAction,
    /// Model the change applies to.
    pub model: String,
    /// Version the change applies to, if any.
    pub version: Option<i64>,
    /// State of the changed object before (absent when created).
    pub before: Option<Value>,
    /// State of the changed object after (absent when deleted).
    pub after: Option<Value>,
}

/// Which audit events to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events of this model.
    pub model: Option<String>,
    /// Only events at or after this time (unix ms).
    pub since: Option<i64>,
    /// Only events with an id greater than this (paging oldest first).
    pub after_id: Option<i64>,
    /// Only events with an id less than this (paging newest first).
    pub before_id: Option<i64>,
    /// At most this many events (default 100, at most 10 000).
    pub limit: Option<i64>,
    /// In which order the events come (by id, i.e. by time).
    pub order: AuditOrder,
}

/// The order of audit events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOrder {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// One page of audit events, and how to get the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The events, in the order asked for.
    pub events: Vec<AuditEvent>,
    /// Events that match the filter but are beyond this page.
    pub remaining: i64,
    /// When more remain: the id to pass as `before_id` (newest first) or
    /// `after_id` (oldest first) for the next page.
    pub next_cursor: Option<i64>,
}

/// Which models [`Registry::search_models`](crate::Registry::search_models) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelQuery {
    /// Only models whose name contains this text (case-sensitive).
    pub name_contains: Option<String>,
    /// Only models that carry every one of these tags with these values.
    pub tags: Tags,
}

/// One stored revision of a model's serving configuration.
///
/// The registry keeps the configuration as opaque JSON; the serving layer
/// gives it meaning and validates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingConfigRevision {
    /// Name of the model.
    pub model: String,
    /// Revision number, 1, 2, 3... per model.
    pub revision: i64,
    /// The configuration, a JSON object.
    pub config: Value,
    /// Who stored this revision.
    pub actor: String,
    /// When it was stored (unix ms).
    pub created_at: i64,
}
