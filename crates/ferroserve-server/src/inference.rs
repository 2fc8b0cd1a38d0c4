//! The HTTP side of inference, shared by every protocol: read the call from
//! the request ([`InferInput`]), decode, make the one call into the serving
//! pipeline, and encode. Request ids and idempotency keys are layers in
//! front of it.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use ferroserve_core::{InferError, InferResponse, Principal};
use ferroserve_monitor::RequestKeys;
use ferroserve_serving::cache::CacheDirective;
use ferroserve_serving::{Answer, Call, Decoded, ServedVersion};

use crate::auth::Caller;
use crate::body::read_limited;
use crate::client::ClientId;
use crate::error::ApiError;
use crate::inference_headers;
use crate::state::{AppState, SharedState};

/// Response header telling how the result cache took part:
/// `hit-l1`, `hit-l2`, `miss` or `bypass` (absent when the model does not cache).
pub const CACHE_HEADER: &str = "x-ferroserve-cache";

/// Response header naming the fallback that answered while the version's
/// circuit breaker was open: `cache`, `version=N` or `static`.
pub const FALLBACK_HEADER: &str = "x-ferroserve-fallback";

/// One protocol's decode and encode steps around the pipeline.
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
    ) -> Result<Decoded<Self::Context>, InferError>;
    /// Encodes a successful answer.
    fn encode(
        &self,
        served: &ServedVersion,
        context: Self::Context,
        response: InferResponse,
    ) -> Result<Response, InferError>;
}

/// Who sent an inference request and when it arrived, whatever the
/// protocol carried it.
#[derive(Clone)]
pub(crate) struct Requester {
    pub(crate) client: ClientId,
    pub(crate) principal: Option<Arc<Principal>>,
    pub(crate) start: Instant,
}

/// What an inference request brings besides its path: the caller, the
/// headers and the body (read up to the server's limit).
pub(crate) struct InferInput {
    pub(crate) requester: Requester,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl FromRequest<SharedState> for InferInput {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, ApiError> {
        let start = Instant::now();
        let (parts, body) = request.into_parts();
        let client = ClientId::of(&parts);
        let principal = Caller::of(&parts);
        let body = read_limited(
            &parts.headers,
            Body::new(body),
            state.config.max_body_bytes,
            &state.body_budget,
        )
        .await?;
        Ok(InferInput {
            requester: Requester {
                client,
                principal,
                start,
            },
            headers: parts.headers,
            body,
        })
    }
}

impl InferInput {
    /// The pipeline call of this request to `model` (`version`) over
    /// `protocol`.
    pub(crate) fn call(
        &self,
        state: &AppState,
        protocol: &'static str,
        model: &str,
        version: Option<&str>,
    ) -> Result<Call, InferError> {
        call_from_headers(
            state,
            protocol,
            (model, version),
            &self.headers,
            &self.requester,
        )
    }
}

/// The pipeline call of a request to `target` (model and the version its
/// path or message names) over `protocol`, from the headers it sent (gRPC
/// metadata included): the pinned version, the sticky header, the timeout,
/// the cache directive and the request keys. Every front end builds its
/// calls here.
pub(crate) fn call_from_headers(
    state: &AppState,
    protocol: &'static str,
    (model, version): (&str, Option<&str>),
    headers: &HeaderMap,
    requester: &Requester,
) -> Result<Call, InferError> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let version = inference_headers::pinned_version(headers, version)?;
    let mut call = Call::online(protocol, model, version, requester.client.shared());
    call.sticky = state
        .pipeline
        .sticky_header(model)
        .and_then(|name| text(&name));
    call.start = requester.start;
    call.principal = requester.principal.clone();
    call.timeout = inference_headers::timeout(headers)?;
    call.cache = Some(CacheDirective::from_cache_control(
        headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    ));
    call.keys = RequestKeys {
        request_ids: text(crate::request_id::REQUEST_ID).into_iter().collect(),
        idempotency_key: text(inference_headers::IDEMPOTENCY_KEY),
        // The pipeline adds the call's client.
        client: None,
    };
    Ok(call)
}

/// Answers one inference request: decode, one call into the pipeline
/// (which routes, admits, checks, caches, protects, batches and
/// observes), encode.
pub(crate) async fn handle<P: Protocol>(
    state: &AppState,
    protocol: P,
    model: &str,
    version: Option<&str>,
    input: &InferInput,
) -> Response {
    let call = match input.call(state, P::LABEL, model, version) {
        Ok(call) => call,
        Err(e) => return ApiError(e).into_response(),
    };
    infer(state, &protocol, call, &input.body)
        .await
        .unwrap_or_else(|e| ApiError(e).into_response())
}

async fn infer<P: Protocol>(
    state: &AppState,
    protocol: &P,
    call: Call,
    body: &[u8],
) -> Result<Response, InferError> {
    let answer = state
        .pipeline
        .infer(call, |served| protocol.decode(served, body))
        .await?;
    let headers = answer_headers(&answer);
    let served = answer.served().clone();
    let mut response = protocol.encode(&served, answer.context, answer.response)?;
    response.headers_mut().extend(headers);
    Ok(response)
}

/// The headers (gRPC: metadata) telling how the pipeline reached an
/// answer: the cache's part, the variant of a split or rollout, the
/// fallback of an open circuit breaker.
pub(crate) fn answer_headers<C>(answer: &Answer<C>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = answer.cache.header_value() {
        headers.insert(CACHE_HEADER, HeaderValue::from_static(value));
    }
    if let Some(variant) = answer.variant().and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(inference_headers::VARIANT_HEADER, variant);
    }
    if let Some(used) = &answer.fallback {
        if let Ok(value) = HeaderValue::from_str(&used.header_value()) {
            headers.insert(FALLBACK_HEADER, value);
        }
    }
    headers
}
