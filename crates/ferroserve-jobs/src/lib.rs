//! Batch and asynchronous inference jobs. A batch job scores a whole file
//! (CSV, JSON lines, Parquet) a chunk at a time through the request pipeline
//! at background priority, behind online requests, and checkpoints in the registry after each chunk
//! so that a job interrupted by a crash resumes where it was, without
//! repeating or losing a row. Bad rows are reported with their place in the
//! file. An asynchronous request is a job of one request.

mod context;
mod error;
mod files;
mod housekeeping;
mod infer;
mod kind;
mod lease;
mod output;
mod owner;
mod quota;
mod run;
mod service;
mod spec;
mod status;

pub use error::JobError;
pub use files::JobFiles;
pub use infer::StoredAnswer;
pub use kind::JobKind;
pub use quota::{
    JobQuotas, DEFAULT_MAX_QUEUED_JOBS, DEFAULT_MAX_QUEUED_JOBS_PER_CLIENT,
    DEFAULT_MIN_FREE_DISK_BYTES,
};
pub use service::{JobOptions, JobResult, JobService};
pub use spec::{BatchJobSpec, OutputFormat, DEFAULT_CHUNK_ROWS, MAX_CHUNK_ROWS, MAX_NAMES};
pub use status::JobStatus;
