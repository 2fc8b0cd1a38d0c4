//! Model registry store of ferroserve: registered models, versions, stages,
//! aliases, lineage, model cards, reference profiles, serving configuration,
//! rollouts, batch and async inference jobs and an audit log, kept in SQLite (the
//! embedded default) or PostgreSQL through `sqlx`, plus a content-addressed
//! artifact store on a local folder or an S3-compatible object store.
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
//! - Every mutation of models, versions, aliases and serving configuration
//!   writes an audit event (actor, time, action, the changed object before
//!   and after) in the same transaction as the change.
//! - Batch and async inference jobs keep their progress and last checkpoint
//!   here; every change of a job is one statement (or one transaction), and
//!   a job is claimed by one runner at a time (`claim_job`) and held by a
//!   lease its runner renews, so a job is taken up by another process only
//!   once its runner is gone, and resumes from its checkpoint. Creating and
//!   cancelling a job are audited; a runner's claims, checkpoints and
//!   finishes are not.
//! - API keys are stored as the SHA-256 hash of their token, never the
//!   token; creating and revoking a key are audited (model `""`).
//! - A model has at most one active rollout (progressing, paused or
//!   awaiting approval). Starting and moving a rollout write its decision,
//!   an audit event and the model's `updated_at` in one transaction; a
//!   move is refused when the rollout moved since the caller read it.
//! - Artifacts are stored before the version that refers to them is
//!   registered; [`ArtifactStore::cleanup`] with
//!   [`Registry::referenced_digests`] removes what a crash left behind.

mod aliases;
pub mod api_keys;
pub mod artifacts;
mod audit;
pub mod audit_action;
pub mod changes;
mod db;
pub mod durable;
pub mod error;
mod job_leases;
mod job_types;
mod jobs;
pub mod leader;
mod monitor_feedback;
mod monitor_pool;
mod recovery;
mod registry;
mod rename;
mod rollback;
mod rollout_checks;
mod rollout_shares;
pub mod rollouts;
mod serving_config;
pub mod stage;
pub mod tracking;
pub mod types;
pub mod uri;
pub mod validate;
mod versions;

pub use api_keys::{ApiKey, NewApiKey};
pub use artifacts::{
    ArtifactStore, CleanupReport, FileStream, LocalArtifactStore, NamedChild, NamedEntry,
    NamedFiles, ObjectArtifactStore, VerifiedArtifact,
};
pub use audit_action::AuditAction;
pub use changes::ChangeFeed;
pub use db::DbKind;
pub use error::{RegistryError, Result};
pub use job_types::{
    Job, JobCheckpointOutcome, JobFilter, JobOwner, JobProgress, JobState, NewJob,
    DEFAULT_JOB_HEARTBEAT, DEFAULT_JOB_LEASE,
};
pub use leader::Leadership;
pub use monitor_feedback::{FoundPrediction, LabelBatch, PredictionKey};
pub use monitor_pool::{PoolWindow, TakenParts};
pub use recovery::INTERRUPTED_REASON;
pub use registry::Registry;
pub use rollout_checks::RolloutCheck;
pub use rollout_shares::MAX_ROLLOUT_SHARE_BYTES;
pub use rollouts::{NewRollout, Rollout, RolloutDecision, RolloutMove, RolloutState};
pub use types::{
    AuditEvent, AuditFilter, AuditOrder, AuditPage, Lineage, ModelQuery, ModelVersion, NewVersion,
    RegisteredModel, ServingConfigRevision, Stage, Tags, VersionMeta, VersionStatus,
};
pub use uri::ModelUri;
