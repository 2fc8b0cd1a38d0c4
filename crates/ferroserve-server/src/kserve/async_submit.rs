//! Asynchronous inference requests, as KServe and RFC 7240 have them: a
//! `POST .../infer` with `Prefer: respond-async` is checked, kept as a job
//! and answered at once with 202 and the job's address; the job runs the
//! request through the same pipeline as online requests (at background
//! priority), and its answer is read from `GET /api/v1/jobs/{id}/result`. Without a job service the
//! preference is ignored and the request is answered directly.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ferroserve_core::InferError;
use ferroserve_jobs::JobService;

use super::routes::KserveV2;
use crate::inference::{InferInput, Protocol};
use crate::state::SharedState;

/// Whether the request asks to be answered asynchronously
/// (`Prefer: respond-async`, among other preferences).
pub(crate) fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',').any(|p| {
                p.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("respond-async")
            })
        })
    })
}

/// Checks the request against the model, keeps it as a job and answers
/// 202 with the job (and `Location`, `Preference-Applied`).
pub(crate) async fn submit(
    state: &SharedState,
    jobs: &Arc<JobService>,
    model: &str,
    version: Option<&str>,
    input: &InferInput,
    json_len: Option<usize>,
) -> Result<Response, InferError> {
    let body = &input.body;
    let served = state.pipeline.find(model, version).await?;
    // A request that cannot run is refused now, not reported later.
    let request = KserveV2 { json_len }.decode(&served, body)?.request;
    let signature = served.signature();
    signature.validate_output_names(request.outputs.iter().map(|o| o.name.as_str()))?;
    signature.validate_inputs(request.inputs)?;
    let actor = input.requester.client.to_string();
    jobs.admit(&actor).await?;
    let id = JobService::new_id();
    let files = jobs.files(&id);
    // Stored, where every replica finds it, before the client is told 202.
    if let Err(e) = files.store_request(body.clone()).await {
        let _ = files.remove().await;
        return Err(InferError::internal(format!(
            "cannot keep the asynchronous request: {e}"
        )));
    }
    let status = jobs
        .submit_infer(id, model, version, json_len, &actor)
        .await?;
    let mut response = crate::management::jobs_created(StatusCode::ACCEPTED, &status);
    response.headers_mut().insert(
        "preference-applied",
        HeaderValue::from_static("respond-async"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respond_async_is_found_among_preferences() {
        let mut headers = HeaderMap::new();
        assert!(!prefers_async(&headers));
        headers.insert(
            "prefer",
            HeaderValue::from_static("return=minimal, respond-async; wait=5"),
        );
        assert!(prefers_async(&headers));
        headers.insert("prefer", HeaderValue::from_static("respond-asynchronously"));
        assert!(!prefers_async(&headers));
    }
}
