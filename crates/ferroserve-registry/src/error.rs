//! The one error type of the registry crate and its mapping to [`ErrorKind`].

use ferroserve_core::ErrorKind;

use crate::stage::{Stage, UnknownStage};

/// Everything that can go wrong in the registry store or the artifact store.
///
/// Cloneable (database and I/O errors are kept as text) so that one failure
/// can be handed to several waiters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No registered model has this name.
    #[error("model '{0}' does not exist")]
    ModelNotFound(String),
    /// The model exists but has no such version.
    #[error("model '{model}' has no version {version}")]
    VersionNotFound {
        /// Model name.
        model: String,
        /// Requested version.
        version: i64,
    },
    /// The model has no alias of this name.
    #[error("model '{model}' has no alias '{alias}'")]
    AliasNotFound {
        /// Model name.
        model: String,
        /// Requested alias.
        alias: String,
    },
    /// No version of the model is in the requested stage.
    #[error("model '{model}' has no version in stage {stage}")]
    NoVersionInStage {
        /// Model name.
        model: String,
        /// Requested stage.
        stage: Stage,
    },
    /// The model has no version that is ready to serve.
    #[error("model '{0}' has no ready version")]
    NoReadyVersion(String),
    /// A tag key does not exist on the model or version.
    #[error("{target} has no tag '{key}'")]
    TagNotFound {
        /// What the tag was looked up on, e.g. "model 'iris'".
        target: String,
        /// The missing key.
        key: String,
    },
    /// No batch or async inference job has this id.
    #[error("job '{0}' does not exist")]
    JobNotFound(String),
    /// A runner no longer holds a job it was running: another runner took
    /// it over (its lease had expired), or the job ended meanwhile. The
    /// runner must stop writing to the job.
    #[error("job '{id}' is not held by this runner: {reason}")]
    JobLeaseLost {
        /// The job.
        id: String,
        /// Who holds it now, or what became of it.
        reason: String,
    },
    /// No API key has this id.
    #[error("API key '{0}' does not exist")]
    ApiKeyNotFound(String),
    /// No rollout has this id.
    #[error("rollout {0} does not exist")]
    RolloutNotFound(i64),
    /// No tracking experiment has this id or name.
    #[error("experiment {0} does not exist")]
    ExperimentNotFound(String),
    /// An experiment of this name exists already.
    #[error("experiment '{0}' already exists")]
    ExperimentExists(String),
    /// No logged model has this id.
    #[error("logged model '{0}' does not exist")]
    LoggedModelNotFound(String),
    /// No tracking run has this id.
    #[error("run '{0}' does not exist")]
    RunNotFound(String),
    /// A job with this id was already created.
    #[error("job '{0}' already exists")]
    JobExists(String),
    /// A model of this name is already registered.
    #[error("model '{0}' already exists")]
    ModelExists(String),
    /// A name (model, alias, tag key) does not follow the naming rules.
    #[error("{what} '{name}' is invalid: {reason}")]
    InvalidName {
        /// What kind of name, e.g. "alias name".
        what: &'static str,
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A request that is well-formed but not allowed in the current state
    /// (bad stage transition, bad field value, unparsable model URI).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state of a stored object,
    /// e.g. deleting a version (or model) that is in `Production`.
    #[error("{0}")]
    Conflict(String),
    /// An artifact's bytes do not have the digest the caller expected.
    #[error("artifact digest mismatch: expected sha256 {expected}, got {actual}")]
    DigestMismatch {
        /// Digest given by the caller.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// The artifact file is not in the store.
    #[error("artifact sha256:{digest} is missing from the artifact store")]
    ArtifactMissing {
        /// Digest looked up.
        digest: String,
        /// Where the file should be (for logs: never shown to clients).
        path: String,
    },
    /// A data file (a batch job's input, say) named by URI is not in the
    /// artifact store.
    #[error("data file {uri} does not exist in the artifact store")]
    DataMissing {
        /// Where the file should be, e.g. `s3://bucket/prefix/datasets/day1.csv`.
        uri: String,
    },
    /// The artifact file is present but its bytes no longer match its digest.
    #[error("artifact sha256:{digest} is corrupted in the artifact store: its content hashes to {actual}")]
    ArtifactCorrupted {
        /// Digest the file is stored under.
        digest: String,
        /// Where the file is (for logs: never shown to clients).
        path: String,
        /// Digest of the bytes found.
        actual: String,
    },
    /// A filesystem operation of the artifact store failed.
    #[error("artifact store I/O error: {0}")]
    Io(String),
    /// A stored version row holds a field that does not parse (written by
    /// another program, or by a release that stored it differently).
    #[error("version {version} of model '{model}' has an unreadable {field} in the registry database: {reason}")]
    UnreadableVersion {
        /// Model name.
        model: String,
        /// Version number.
        version: i64,
        /// The column that does not parse.
        field: &'static str,
        /// Why it does not parse.
        reason: String,
    },
    /// The database failed or returned something unexpected.
    #[error("registry database error: {0}")]
    Database(String),
}

impl From<UnknownStage> for RegistryError {
    fn from(e: UnknownStage) -> Self {
        RegistryError::Invalid(e.to_string())
    }
}

impl RegistryError {
    /// The category of this error, which decides the HTTP status and gRPC code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::ModelNotFound(_)
            | RegistryError::VersionNotFound { .. }
            | RegistryError::AliasNotFound { .. }
            | RegistryError::NoVersionInStage { .. }
            | RegistryError::NoReadyVersion(_)
            | RegistryError::TagNotFound { .. }
            | RegistryError::JobNotFound(_)
            | RegistryError::ApiKeyNotFound(_)
            | RegistryError::RolloutNotFound(_)
            | RegistryError::ExperimentNotFound(_)
            | RegistryError::RunNotFound(_)
            | RegistryError::LoggedModelNotFound(_)
            | RegistryError::ArtifactMissing { .. }
            | RegistryError::DataMissing { .. } => ErrorKind::NotFound,
            RegistryError::ModelExists(_)
            | RegistryError::JobExists(_)
            | RegistryError::ExperimentExists(_)
            | RegistryError::JobLeaseLost { .. }
            | RegistryError::Conflict(_) => ErrorKind::Conflict,
            RegistryError::InvalidName { .. }
            | RegistryError::Invalid(_)
            | RegistryError::DigestMismatch { .. } => ErrorKind::InvalidInput,
            RegistryError::ArtifactCorrupted { .. }
            | RegistryError::UnreadableVersion { .. }
            | RegistryError::Io(_)
            | RegistryError::Database(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid_name(what: &'static str, name: &str, reason: impl Into<String>) -> Self {
        RegistryError::InvalidName {
            what,
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn version_not_found(model: &str, version: i64) -> Self {
        RegistryError::VersionNotFound {
            model: model.to_owned(),
            version,
        }
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> Self {
        RegistryError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for RegistryError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        RegistryError::Database(format!("migration failed: {e}"))
    }
}

impl From<serde_json::Error> for RegistryError {
    fn from(e: serde_json::Error) -> Self {
        RegistryError::Database(format!("stored JSON could not be read or written: {e}"))
    }
}

/// Result type of the registry crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_kinds() {
        let e = RegistryError::version_not_found("iris", 7);
        assert_eq!(e.to_string(), "model 'iris' has no version 7");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = RegistryError::invalid_name("alias name", "x y", "only letters");
        assert_eq!(e.to_string(), "alias name 'x y' is invalid: only letters");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            RegistryError::Database("x".into()).kind(),
            ErrorKind::Internal
        );
        assert_eq!(
            RegistryError::ModelExists("iris".into()).kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            RegistryError::Conflict("in Production".into()).kind(),
            ErrorKind::Conflict
        );
        let e = RegistryError::JobNotFound("j-1".into());
        assert_eq!(e.to_string(), "job 'j-1' does not exist");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = RegistryError::JobExists("j-1".into());
        assert_eq!(e.to_string(), "job 'j-1' already exists");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let e = RegistryError::RolloutNotFound(7);
        assert_eq!(e.to_string(), "rollout 7 does not exist");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
