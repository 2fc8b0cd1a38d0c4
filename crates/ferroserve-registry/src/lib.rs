//! Model registry store of ferroserve: registered models, versions, stages,
//! aliases, lineage, model cards, reference profiles and an audit log, kept
//! in SQLite (the embedded default) or PostgreSQL through `sqlx`, plus a
//! content-addressed artifact store.
//!
//! The registry knows nothing of serving: it records what exists and who
//! changed what; the serving layer reads it.
//!
//! Rules the store keeps:
//! - Versions are numbered 1, 2, 3... per model; a new version is `Pending`
//!   until its artifact is verified (`mark_version_ready`) or rejected
//!   (`mark_version_failed`). Only `Ready` versions enter `Staging` or
//!   `Production`, so a half-registered version is never served.
//! - `models:/NAME/latest` is the newest `Ready` version;
//!   `models:/NAME/STAGE` the newest version in that stage.
//! - A model with a version in `Production` cannot be deleted.
//! - Every mutation writes an audit event (actor, time, action, the changed
//!   object before and after) in the same transaction as the change.
//! - Artifacts are stored before the version that refers to them is
//!   registered; [`LocalArtifactStore::cleanup`] with
//!   [`Registry::referenced_digests`] removes what a crash left behind.

mod aliases;
pub mod artifacts;
mod audit;
mod db;
pub mod error;
mod registry;
pub mod types;
pub mod uri;
pub mod validate;
mod versions;

pub use artifacts::{CleanupReport, LocalArtifactStore};
pub use db::Backend;
pub use error::{RegistryError, Result};
pub use registry::Registry;
pub use types::{
    AuditEvent, AuditFilter, Lineage, ModelQuery, ModelVersion, NewVersion, RegisteredModel, Stage,
    Tags, VersionStatus,
};
pub use uri::ModelUri;
