//! The error of lifecycle operations: a kind (deciding the HTTP status) and a
//! message saying what was wrong and where.

use ferroserve_core::{ErrorKind, InferError};
use ferroserve_registry::RegistryError;

/// A registration, promotion or serving change that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LifecycleError {
    /// Category, deciding the status code.
    pub kind: ErrorKind,
    /// Human-readable explanation.
    pub message: String,
}

impl LifecycleError {
    /// Builds an error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        LifecycleError {
            kind,
            message: message.into(),
        }
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
}

impl From<RegistryError> for LifecycleError {
    fn from(e: RegistryError) -> Self {
        LifecycleError::new(e.kind(), e.to_string())
    }
}

impl From<InferError> for LifecycleError {
    fn from(e: InferError) -> Self {
        LifecycleError::new(e.kind, e.message)
    }
}

impl From<LifecycleError> for InferError {
    fn from(e: LifecycleError) -> Self {
        InferError::new(e.kind, e.message)
    }
}

/// Result of lifecycle operations.
pub type Result<T, E = LifecycleError> = std::result::Result<T, E>;
