//! Asynchronous single inference requests (KServe's `Prefer:
//! respond-async`): the request body is kept in the job's folder, run
//! through the server's own request path when the job's turn comes, and its
//! answer kept for `GET /api/v1/jobs/{id}/result`. A request interrupted by
//! a crash runs again on the next start.

use std::fs;

use ferroserve_core::InferError;
use ferroserve_registry::{Job, JobCheckpointOutcome, JobProgress, JobState};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::files::JobFiles;
use super::lease::JobLease;
use super::run::Ending;
use super::service::JobContext;

/// Kind of a job that is one asynchronous inference request.
pub const INFER_KIND: &str = "infer";

/// The answer to an inference request, as the protocol encoded it.
#[derive(Debug, Clone)]
pub struct InferAnswer {
    /// HTTP status.
    pub status: u16,
    /// Content type of the body.
    pub content_type: Option<String>,
    /// The encoded response.
    pub body: Vec<u8>,
}

/// Runs an inference request the way the server answers it online.
pub trait InferExecutor: Send + Sync {
    /// Runs the KServe v2 request `body` on `model` (`version`, else the
    /// serving one) and returns the encoded answer. `json_len` is the
    /// length of its JSON header when the body uses binary tensors.
    fn run<'a>(
        &'a self,
        model: &'a str,
        version: Option<&'a str>,
        json_len: Option<usize>,
        body: Vec<u8>,
    ) -> BoxFuture<'a, InferAnswer>;
}

/// How the stored answer of an inference job is described in its checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredAnswer {
    /// HTTP status of the answer.
    pub status: u16,
    /// Its content type.
    pub content_type: Option<String>,
}

impl StoredAnswer {
    /// The stored answer of `job`, if it has one.
    pub fn of(job_checkpoint: &serde_json::Value) -> Option<StoredAnswer> {
        serde_json::from_value(job_checkpoint.get("answer")?.clone()).ok()
    }
}

/// Runs inference job `job` and stores its answer.
pub(crate) async fn run_infer_job(
    ctx: &JobContext,
    executor: &dyn InferExecutor,
    job: &Job,
    lease: &JobLease,
) -> Result<Ending, InferError> {
    let files = JobFiles::new(ctx.root(), &job.id);
    let body = fs::read(files.request())
        .map_err(|e| InferError::internal(format!("the request of job {} is gone: {e}", job.id)))?;
    let json_len = job
        .spec
        .get("json_len")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize);
    let answer = executor
        .run(&job.model, job.version.as_deref(), json_len, body)
        .await;
    if lease.needs_renewal(ctx.owner().lease) {
        let _ = lease.renew(ctx.registry(), &job.id, ctx.owner()).await;
    }
    if let Some(why) = lease.lost() {
        return Ok(Ending::Lost(why));
    }
    fs::write(files.response(), &answer.body).map_err(|e| {
        InferError::internal(format!("cannot keep the answer of job {}: {e}", job.id))
    })?;
    let ok = (200..300).contains(&answer.status);
    let stored = StoredAnswer {
        status: answer.status,
        content_type: answer.content_type.clone(),
    };
    let progress = JobProgress {
        rows_done: i64::from(ok),
        rows_failed: i64::from(!ok),
        rows_total: Some(1),
        checkpoint: serde_json::json!({ "answer": stored }),
    };
    let outcome = ctx
        .registry()
        .checkpoint_job(&job.id, ctx.owner(), progress)
        .await
        .map_err(|e| InferError::new(e.kind(), e.to_string()))?;
    if outcome == JobCheckpointOutcome::CancelRequested && !ok {
        return Ok(Ending::Finished(JobState::Cancelled, None));
    }
    if ok {
        return Ok(Ending::Finished(JobState::Succeeded, None));
    }
    let message = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
    Ok(Ending::Finished(
        JobState::Failed,
        Some(format!(
            "the request failed with status {}: {message}",
            answer.status
        )),
    ))
}
