//! The request path shared by every inference protocol: find the served
//! version, decode, apply the deadline, run, encode, and count the outcome.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use ferroserve_core::{InferError, InferRequest, InferResponse};
use ferroserve_serving::cache::{infer_cached, CacheDirective};
use ferroserve_serving::request_metrics::RequestMetrics;
use ferroserve_serving::ServedVersion;

use crate::error::ApiError;
use crate::state::AppState;

/// Header giving a per-request timeout in milliseconds.
pub const TIMEOUT_HEADER: &str = "x-request-timeout-ms";

/// Response header telling how the result cache took part:
/// `hit-l1`, `hit-l2`, `miss` or `bypass` (absent when the model does not cache).
pub const CACHE_HEADER: &str = "x-ferroserve-cache";

/// One protocol's decode and encode steps around the shared path.
pub(crate) trait Protocol {
    /// Label in metrics (`v2`, `v1`).
    const LABEL: &'static str;
    /// What the encoder needs to remember from the request.
    type Context;
    /// Decodes the body for `served`.
    fn decode(
        &self,
        served: &ServedVersion,
        body: &[u8],
    ) -> Result<(InferRequest, Self::Context), InferError>;
    /// Encodes a successful answer.
    fn encode(
        &self,
        served: &ServedVersion,
        context: Self::Context,
        response: InferResponse,
    ) -> Result<Response, InferError>;
}

/// Runs one inference request end to end and records its metrics.
pub(crate) async fn handle<P: Protocol>(
    state: &AppState,
    protocol: P,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let start = Instant::now();
    let served = match state.manager.get(model, version) {
        Ok(served) => served,
        Err(e) => {
            let response = ApiError(e).into_response();
            unknown_model_metrics().record(P::LABEL, response.status().as_u16(), start.elapsed());
            return response;
        }
    };
    let response = match run(state, &protocol, &served, headers, body, start).await {
        Ok(response) => response,
        Err(e) => {
            let request_id = headers
                .get(crate::request_id::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if e.kind.http_status() >= 500 {
                tracing::warn!(model, version = served.version(), request_id, kind = e.kind.as_label(), error = %e.message, "request failed");
            } else {
                tracing::debug!(model, request_id, error = %e.message, "request rejected");
            }
            ApiError(e).into_response()
        }
    };
    served
        .metrics()
        .record(P::LABEL, response.status().as_u16(), start.elapsed());
    response
}

async fn run<P: Protocol>(
    state: &AppState,
    protocol: &P,
    served: &Arc<ServedVersion>,
    headers: &HeaderMap,
    body: &[u8],
    start: Instant,
) -> Result<Response, InferError> {
    let (request, context) = protocol.decode(served, body)?;
    let deadline = start + request_timeout(state, served, headers, &request)?;
    let directive = CacheDirective::from_cache_control(
        headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let (response, status) = infer_cached(
        state.cache.as_deref(),
        served,
        request,
        Some(deadline),
        directive,
    )
    .await?;
    let mut response = protocol.encode(served, context, response)?;
    if let Some(value) = status.header_value() {
        response
            .headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// The tightest of: the request's `timeout` parameter (µs), the
/// `x-request-timeout-ms` header, and the model's (else the server's) default.
fn request_timeout(
    state: &AppState,
    served: &ServedVersion,
    headers: &HeaderMap,
    request: &InferRequest,
) -> Result<Duration, InferError> {
    let mut timeout = served
        .request_timeout()
        .unwrap_or(state.config.request_timeout);
    if let Some(us) = crate::kserve::request::timeout_parameter(request)? {
        timeout = timeout.min(Duration::from_micros(us));
    }
    if let Some(value) = headers.get(TIMEOUT_HEADER) {
        let ms = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                InferError::invalid(format!(
                    "header {TIMEOUT_HEADER} must be a whole number of milliseconds, got {value:?}"
                ))
            })?;
        timeout = timeout.min(Duration::from_millis(ms));
    }
    Ok(timeout)
}

/// Metrics for requests naming a model that does not exist (one bounded label).
fn unknown_model_metrics() -> &'static RequestMetrics {
    static METRICS: OnceLock<RequestMetrics> = OnceLock::new();
    METRICS.get_or_init(|| RequestMetrics::new("_unknown", "_unknown"))
}
