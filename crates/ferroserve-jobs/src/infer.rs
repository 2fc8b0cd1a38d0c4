//! Asynchronous single inference requests (KServe's `Prefer:
//! respond-async`): the request body is kept in the job's folder, decoded
//! and run through the request pipeline at background priority when the
//! job's turn comes, and its answer kept, encoded as the online answer
//! would have been, for `GET /api/v1/jobs/{id}/result`. A request
//! interrupted by a crash runs again on the next start.

use std::sync::Arc;

use ferroserve_core::InferRequest;
use ferroserve_kserve::{decode_request, encode_response, timeout_parameter, BinaryChoice};
use ferroserve_registry::{Job, JobCheckpointOutcome, JobProgress, JobState};
use serde::{Deserialize, Serialize};

use super::context::JobContext;
use super::error::JobError;
use super::lease::JobLease;
use super::run::Ending;
use ferroserve_serving::{Call, Decoded};

/// Front end label of asynchronous requests in the request metrics.
const INFER_PROTOCOL: &str = "v2";

/// The answer to an inference request, encoded as the online answer.
#[derive(Debug, Clone)]
struct InferAnswer {
    /// HTTP status.
    status: u16,
    /// Content type of the body.
    content_type: Option<String>,
    /// The encoded response.
    body: Vec<u8>,
}

/// Decodes the stored request, runs it through the pipeline and encodes
/// the outcome: the KServe v2 response (binary tensors where asked), or
/// the error with its status, as `{"error": ...}`.
async fn answer(ctx: &JobContext, call: Call, body: &[u8], json_len: Option<usize>) -> InferAnswer {
    let decode = |_: &_| {
        let request: InferRequest = decode_request(body, json_len)?;
        let choice = BinaryChoice::of(&request);
        let timeout = timeout_parameter(&request)?.map(std::time::Duration::from_micros);
        Ok(Decoded {
            request,
            timeout,
            context: choice,
        })
    };
    let encoded = ctx.pipeline().infer(call, decode).await.and_then(|answer| {
        let flags = answer.context.flags(&answer.response);
        encode_response(&answer.response, &flags)
    });
    match encoded {
        Ok(encoded) => {
            let content_type = match encoded.json_len {
                Some(_) => "application/octet-stream",
                None => "application/json",
            };
            InferAnswer {
                status: 200,
                content_type: Some(content_type.to_owned()),
                body: encoded.body,
            }
        }
        Err(e) => InferAnswer {
            status: e.kind.http_status(),
            content_type: Some("application/json".to_owned()),
            body: serde_json::json!({ "error": e.message })
                .to_string()
                .into_bytes(),
        },
    }
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
    job: &Job,
    lease: &JobLease,
) -> Result<Ending, JobError> {
    let files = ctx.files(&job.id);
    let body = files.request().await?;
    let json_len = job
        .spec
        .get("json_len")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize);
    let mut call = Call::background(INFER_PROTOCOL, &job.model, job.version.clone());
    // The submitting client's prediction: only it may give the feedback.
    call.client = Arc::from(job.actor.as_str());
    let answer = answer(ctx, call, &body, json_len).await;
    if lease.needs_renewal(ctx.owner().lease) {
        let _ = lease.renew(ctx.registry(), &job.id, ctx.owner()).await;
    }
    if let Some(why) = lease.lost() {
        return Ok(Ending::Lost(why));
    }
    let ok = (200..300).contains(&answer.status);
    let failure = (!ok).then(|| error_message(&answer.body));
    // Stored before the checkpoint says the job succeeded.
    files.store_response(answer.body.into()).await?;
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
        .map_err(JobError::from)?;
    if outcome == JobCheckpointOutcome::CancelRequested && !ok {
        return Ok(Ending::Finished(JobState::Cancelled, None));
    }
    let Some(message) = failure else {
        return Ok(Ending::Finished(JobState::Succeeded, None));
    };
    Ok(Ending::Finished(
        JobState::Failed,
        Some(format!(
            "the request failed with status {}: {message}",
            answer.status
        )),
    ))
}

/// The `error` of a failed answer's JSON body, else the body as text.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}
