//! The request path shared by every inference protocol: find the served
//! version, decode, apply the deadline, run, hand the answer to the monitor,
//! encode, and count the outcome.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use ferroserve_core::{InferError, InferRequest, InferResponse};
use ferroserve_monitor::RequestKeys;
use ferroserve_serving::cache::CacheDirective;
use ferroserve_serving::guard::infer_protected;
use ferroserve_serving::request_metrics::RequestMetrics;
use ferroserve_serving::ServedVersion;

use crate::client::Caller;
use crate::error::ApiError;
use crate::idempotency;
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

/// Response header naming the fallback that answered while the version's
/// circuit breaker was open: `cache`, `version=N` or `static`.
pub const FALLBACK_HEADER: &str = "x-ferroserve-fallback";

/// Runs one inference request end to end and records its metrics: find the
/// version, then (once per idempotency key) the server's concurrency limit,
/// the rate limits, the version's concurrency limit, and the protected path.
pub(crate) async fn handle<P: Protocol>(
    state: &AppState,
    protocol: P,
    model: &str,
    version: Option<&str>,
    caller: &Caller<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let start = Instant::now();
    let served = match crate::not_served::find(state, model, version).await {
        Ok(served) => served,
        Err(e) => {
            let response = ApiError(e).into_response();
            unknown_model_metrics().record(P::LABEL, response.status().as_u16(), start.elapsed());
            return response;
        }
    };
    let wait_until = start
        + served
            .request_timeout()
            .unwrap_or(state.config.request_timeout);
    let guarded = async {
        match admit_and_run(state, &protocol, &served, caller, headers, body, start).await {
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
        }
    };
    let response = idempotency::once(
        state,
        caller,
        served.name(),
        headers,
        body,
        wait_until,
        guarded,
    )
    .await;
    served
        .metrics()
        .record(P::LABEL, response.status().as_u16(), start.elapsed());
    response
}

/// The admission checks, cheapest first, then the request itself; the
/// permits are held until the answer is encoded.
async fn admit_and_run<P: Protocol>(
    state: &AppState,
    protocol: &P,
    served: &Arc<ServedVersion>,
    caller: &Caller<'_>,
    headers: &HeaderMap,
    body: &[u8],
    start: Instant,
) -> Result<Response, InferError> {
    let _server_permit = match &state.concurrency {
        Some(limit) => Some(limit.try_enter(served.name())?),
        None => None,
    };
    let protection = served.protection();
    if let Some(limiter) = &state.rate_limiter {
        if !limiter.is_unlimited(&protection.rate_limit) {
            limiter
                .check(caller.id().as_str(), served.name(), &protection.rate_limit)
                .await
                .map_err(|refused| refused.into_error(served.name()))?;
        }
    }
    let _model_permit = match &protection.concurrency {
        Some(limit) => Some(limit.try_enter(served.name())?),
        None => None,
    };
    run(state, protocol, served, headers, body, start).await
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
    let watch = state
        .monitor
        .as_ref()
        .and_then(|m| m.watch(served.name(), served.version()));
    let observed = match &watch {
        Some(watch) => {
            watch.admit(&request.inputs)?;
            watch
                .sample(&request.inputs)
                .then(|| (request.inputs.clone(), request_keys(headers, &request)))
        }
        None => None,
    };
    let directive = CacheDirective::from_cache_control(
        headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let answer = infer_protected(
        &state.manager,
        state.cache.as_deref(),
        served,
        request,
        Some(deadline),
        directive,
    )
    .await?;
    if let (Some(watch), Some((inputs, keys)), None) = (&watch, observed, &answer.fallback) {
        watch.observe(inputs, &answer.response.outputs, keys);
    }
    let mut response = protocol.encode(served, context, answer.response)?;
    if let Some(value) = answer.cache.header_value() {
        response
            .headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static(value));
    }
    if let Some(used) = answer.fallback {
        if let Ok(value) = HeaderValue::from_str(&used.header_value()) {
            response.headers_mut().insert(FALLBACK_HEADER, value);
        }
    }
    Ok(response)
}

/// What feedback can name this request by: its `x-request-id`, its body
/// `id` and its `Idempotency-Key`.
fn request_keys(headers: &HeaderMap, request: &InferRequest) -> RequestKeys {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut request_ids: Vec<String> = header(crate::request_id::REQUEST_ID).into_iter().collect();
    if let Some(id) = request.id.as_ref().filter(|id| !id.is_empty()) {
        if !request_ids.contains(id) {
            request_ids.push(id.clone());
        }
    }
    RequestKeys {
        request_ids,
        idempotency_key: header(idempotency::IDEMPOTENCY_KEY),
    }
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
