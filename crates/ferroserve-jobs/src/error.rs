//! What can go wrong with a job, and the error kind (hence the HTTP
//! status) of each.

use ferroserve_core::{ErrorKind, InferError};
use ferroserve_registry::RegistryError;

/// An error of the job service.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job's settings, request or input are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No such job, or no such result of one.
    #[error("{0}")]
    NotFound(String),
    /// The job is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The model cannot take the job's rows now (the server is stopping,
    /// or the model kept refusing).
    #[error("{0}")]
    Unavailable(String),
    /// Too many jobs are waiting, in all or for this client; retry later.
    #[error("{0}")]
    TooManyJobs(String),
    /// The data folder is too full to take a new job.
    #[error("{0}")]
    DiskFull(String),
    /// The registry that keeps the job records failed or refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The request pipeline refused the job's request (no such model...).
    #[error(transparent)]
    Pipeline(#[from] InferError),
    /// A file of the job could not be written or read back, or a stored
    /// record is unreadable: the server's own fault.
    #[error("{0}")]
    Internal(String),
}

impl JobError {
    /// The kind of this error: what status an API answers it with.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Invalid(_) => ErrorKind::InvalidInput,
            JobError::NotFound(_) => ErrorKind::NotFound,
            JobError::Conflict(_) => ErrorKind::Conflict,
            JobError::Unavailable(_) => ErrorKind::Unavailable,
            JobError::TooManyJobs(_) => ErrorKind::QueueFull,
            JobError::DiskFull(_) => ErrorKind::InsufficientStorage,
            JobError::Registry(e) => e.kind(),
            JobError::Pipeline(e) => e.kind,
            JobError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// The wire form of a job error, for the API front ends.
impl From<JobError> for InferError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::Pipeline(e) => e,
            other => InferError::new(other.kind(), other.to_string()),
        }
    }
}
