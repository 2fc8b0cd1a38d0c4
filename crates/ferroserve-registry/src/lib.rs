//! Model registry store of ferroserve: registered models, versions, stages,
//! aliases, lineage, model cards, reference profiles, serving configuration
//! and an audit log, kept in SQLite (the embedded default) or PostgreSQL
//! through `sqlx`, plus a content-addressed artifact store on a local folder
//! or an S3-compatible object store.
//!
//! The registry knows nothing of serving: it records what exists and who
//! changed what; the serving layer reads it, and records its own events
//! (`Registry::record_event`) in the same audit log.
//!
//! Rules the store keeps:
//! - Versions are numbered 1, 2, 3... per model, and a number is never given
//!   twice, even after its version is deleted. A new version is `Pending`
//!   until its artifact is verified (`mark_version_ready`) or rejected
//!   (`mark_version_failed`), or `Ready` at once when the caller verified it
//!   first (`create_ready_version`). Only `Ready` versions enter `Staging` or
//!   `Production`, so a half-registered version is never served; versions a
//!   crash left `Pending` are failed by `fail_stale_pending_versions`.
//! - `models:/NAME/latest` is the newest `Ready` version;
//!   `models:/NAME/STAGE` the newest version in that stage.
//! - A model, or a version, in `Production` cannot be deleted.
//! - Every mutation writes an audit event (actor, time, action, the changed
//!   object before and after) in the same transaction as the change.
//! - Artifacts are stored before the version that refers to them is
//!   registered; [`ArtifactStore::cleanup`] with
//!   [`Registry::referenced_digests`] removes what a crash left behind.

mod aliases;
pub mod artifacts;
mod audit;
mod db;
pub mod error;
mod recovery;
mod registry;
mod rollback;
mod serving_config;
pub mod types;
pub mod uri;
pub mod validate;
mod versions;

pub use artifacts::{ArtifactStore, CleanupReport, LocalArtifactStore, ObjectArtifactStore};
pub use db::Backend;
pub use error::{RegistryError, Result};
pub use recovery::INTERRUPTED_REASON;
pub use registry::Registry;
pub use types::{
    AuditEvent, AuditFilter, Lineage, ModelQuery, ModelVersion, NewVersion, RegisteredModel,
    ServingConfigRevision, Stage, Tags, VersionStatus,
};
pub use uri::ModelUri;
