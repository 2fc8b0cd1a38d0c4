//! The one error type of the serving crate (lifecycle operations, the model
//! repository, cache and Redis settings) and its mapping to [`ErrorKind`].

use std::path::PathBuf;
use std::sync::Arc;

use ferroserve_backend::{BackendError, EngineChoice};
use ferroserve_core::{ErrorKind, InferError};
use ferroserve_registry::RegistryError;

/// Everything that can go wrong in serving outside a request's own path:
/// registering and promoting versions, changing what a model serves,
/// reading a model repository, and cache and Redis settings.
///
/// Cloneable (I/O errors are shared) so that one failure can be handed to
/// several waiters.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServingError {
    /// A request, config or artifact that cannot be used, saying what was
    /// wrong and where.
    #[error("{0}")]
    Invalid(String),
    /// A change refused because of what the model serves now: it would
    /// leave nothing to serve, or swap in another interface.
    #[error("{0}")]
    Conflict(String),
    /// A model asked to serve has no version it can serve.
    #[error("model '{model}' has nothing to serve: {why}")]
    NothingToServe {
        /// The model.
        model: String,
        /// Why no version serves.
        why: String,
    },
    /// An uploaded artifact that the engine cannot load.
    #[error("artifact {digest} is not an ONNX model that {engine} can load: {source}")]
    ArtifactUnloadable {
        /// sha256 of the artifact.
        digest: String,
        /// The engine that tried.
        engine: EngineChoice,
        /// What the engine said.
        #[source]
        source: BackendError,
    },
    /// The task that loaded an artifact to check it did not finish.
    #[error("the artifact check did not finish: {0}")]
    CheckLost(String),
    /// The registry or the artifact store failed or refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A model could not be loaded or a value did not pass a check of the
    /// inference path.
    #[error(transparent)]
    Infer(#[from] InferError),
    /// A model repository whose layout or files cannot be served.
    #[error("model repository: {0}")]
    Repository(String),
    /// A repository `config.toml` that cannot be used.
    #[error("model repository: {}: {reason}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where in the file when known.
        reason: String,
    },
    /// A file or folder of a model repository that cannot be read.
    #[error("model repository: cannot read {}: {source}", path.display())]
    RepositoryRead {
        /// The file or folder.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A result cache setting that cannot work.
    #[error("result cache: {0}")]
    Cache(&'static str),
    /// A Redis setting that cannot work.
    #[error("redis: {reason}")]
    Redis {
        /// What is wrong, e.g. the URL and why it does not parse.
        reason: String,
    },
}

impl ServingError {
    /// The category of this error, which decides the HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServingError::Invalid(_)
            | ServingError::ArtifactUnloadable { .. }
            | ServingError::Repository(_)
            | ServingError::ConfigFile { .. }
            | ServingError::Cache(_)
            | ServingError::Redis { .. } => ErrorKind::InvalidInput,
            // Asking to serve a model that has nothing to serve conflicts
            // with its registry state: retrying will not help.
            ServingError::Conflict(_) | ServingError::NothingToServe { .. } => ErrorKind::Conflict,
            ServingError::CheckLost(_) | ServingError::RepositoryRead { .. } => ErrorKind::Internal,
            ServingError::Registry(e) => e.kind(),
            ServingError::Infer(e) => e.kind,
        }
    }

    /// A [`ServingError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        ServingError::Invalid(message.into())
    }

    /// A [`ServingError::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        ServingError::Conflict(message.into())
    }

    /// A [`ServingError::RepositoryRead`] of `path`.
    pub fn repository_read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ServingError::RepositoryRead {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

impl From<ServingError> for InferError {
    /// The wire error: the kind and the message; an [`InferError`] inside
    /// is handed on as it is (with its retry hint).
    fn from(e: ServingError) -> Self {
        match e {
            ServingError::Infer(e) => e,
            other => InferError::new(other.kind(), other.to_string()),
        }
    }
}

/// Result of serving operations.
pub type Result<T, E = ServingError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_messages() {
        let e = ServingError::NothingToServe {
            model: "iris".into(),
            why: "no ready version".into(),
        };
        assert_eq!(
            e.to_string(),
            "model 'iris' has nothing to serve: no ready version"
        );
        assert_eq!(InferError::from(e).kind, ErrorKind::Conflict);
        let e = ServingError::repository_read(
            "/models/a",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(
            e.to_string(),
            "model repository: cannot read /models/a: gone"
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = ServingError::from(RegistryError::ModelNotFound("iris".into()));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "model 'iris' does not exist");
        let e = ServingError::from(InferError::new(ErrorKind::Overloaded, "busy"));
        assert_eq!(InferError::from(e).kind, ErrorKind::Overloaded);
    }
}
