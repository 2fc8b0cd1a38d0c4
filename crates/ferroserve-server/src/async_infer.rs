//! Asynchronous inference requests, as KServe and RFC 7240 have them: a
//! `POST .../infer` with `Prefer: respond-async` is checked, kept as a job
//! and answered at once with 202 and the job's address; the job runs the
//! request through the same path as online requests, and its answer is read
//! from `GET /api/v1/jobs/{id}/result`. Without a job service the
//! preference is ignored and the request is answered directly.

use std::sync::{Arc, Weak};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferroserve_core::InferError;
use ferroserve_serving::jobs::{InferAnswer, InferExecutor, JobService};
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::client::Caller;
use crate::error::ApiError;
use crate::inference::{handle, Protocol};
use crate::kserve::routes::KserveV2;
use crate::state::{AppState, SharedState};
use ferroserve_core::request::INFERENCE_HEADER_CONTENT_LENGTH;

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
    caller: &Caller<'_>,
    body: &[u8],
    json_len: Option<usize>,
) -> Result<Response, InferError> {
    let served = crate::not_served::find(state, model, version).await?;
    // A request that cannot run is refused now, not reported later.
    let (request, _) = KserveV2 { json_len }.decode(&served, body)?;
    let signature = served.signature();
    signature.validate_output_names(request.outputs.iter().map(|o| o.name.as_str()))?;
    signature.validate_inputs(request.inputs)?;
    let id = JobService::new_id();
    let files = jobs.files(&id);
    files.create()?;
    if let Err(e) = tokio::fs::write(files.request(), body).await {
        let _ = files.remove();
        return Err(InferError::internal(format!(
            "cannot keep the asynchronous request: {e}"
        )));
    }
    let actor = caller.id().to_string();
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

/// Runs the asynchronous requests of `state`'s job service through the
/// server's request path (admission, cache, monitoring included).
pub fn executor(state: &SharedState) -> Arc<dyn InferExecutor> {
    Arc::new(Executor {
        state: Arc::downgrade(state),
    })
}

struct Executor {
    /// Weak: the state owns the job service, which owns this.
    state: Weak<AppState>,
}

impl InferExecutor for Executor {
    fn run<'a>(
        &'a self,
        model: &'a str,
        version: Option<&'a str>,
        json_len: Option<usize>,
        body: Vec<u8>,
    ) -> BoxFuture<'a, InferAnswer> {
        async move {
            let Some(state) = self.state.upgrade() else {
                return answer_of(
                    ApiError(InferError::new(
                        ferroserve_core::ErrorKind::Unavailable,
                        "the server is stopping",
                    ))
                    .into_response(),
                )
                .await;
            };
            let mut headers = HeaderMap::new();
            if let Some(len) = json_len {
                headers.insert(INFERENCE_HEADER_CONTENT_LENGTH, HeaderValue::from(len));
            }
            let caller = Caller::new(&headers, None);
            let response = handle(
                &state,
                KserveV2 { json_len },
                model,
                version,
                &caller,
                &headers,
                &body,
            )
            .await;
            answer_of(response).await
        }
        .boxed()
    }
}

async fn answer_of(response: Response) -> InferAnswer {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(response.into_body(), usize::MAX).await {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => {
            return InferAnswer {
                status: 500,
                content_type: Some("application/json".to_owned()),
                body: serde_json::json!({ "error": format!("cannot read the answer: {e}") })
                    .to_string()
                    .into_bytes(),
            }
        }
    };
    InferAnswer {
        status,
        content_type,
        body,
    }
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
