//! Idempotency keys on the inference routes: a request with an
//! `Idempotency-Key` header (or, when enabled, a body `id`) runs at most once
//! per key and client and model; a retry with the same body gets the first
//! answer again, marked `Idempotent-Replayed: true`, and the same key with
//! another body is a 422. A layer on the inference routes: a replay never
//! reaches the handler or the pipeline. The gRPC front end keeps its
//! answers through the same [`once_keyed`] (see `grpc::idempotent`).

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use ferroserve_core::request::INFERENCE_HEADER_CONTENT_LENGTH;
use ferroserve_core::{ErrorKind, InferError};
use ferroserve_serving::guard::idempotency::{Claim, StoredResponse};
use serde::Deserialize;

use crate::body::read_limited;
use crate::client::ClientId;
use crate::error::ApiError;
use crate::inference_headers::{self, IDEMPOTENCY_KEY};
use crate::state::{AppState, SharedState};

/// Response header set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// Longest accepted key.
const MAX_KEY_LEN: usize = 255;

/// `route` behind the idempotency layer when the server honours keys;
/// as it is otherwise (no cost on the request path).
pub(crate) fn once_per_key(
    state: &SharedState,
    route: MethodRouter<SharedState>,
) -> MethodRouter<SharedState> {
    if state.idempotency.is_none() {
        return route;
    }
    route.layer(axum::middleware::from_fn_with_state(state.clone(), layer))
}

/// Middleware of the inference routes: runs the handler at most once per
/// idempotency key (see [`once`]). The body is read here (within the
/// server's limit) and handed on.
async fn layer(
    State(state): State<SharedState>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let (parts, body) = request.into_parts();
    let body = match read_limited(
        &parts.headers,
        body,
        state.config.max_body_bytes,
        &state.body_budget,
    )
    .await
    {
        Ok(body) => body,
        Err(e) => return ApiError(e).into_response(),
    };
    let model = match (params.get("model"), params.get("target")) {
        (Some(model), _) => model.as_str(),
        (None, Some(target)) => target.strip_suffix(":predict").unwrap_or(target),
        (None, None) => "",
    };
    let client = ClientId::of(&parts);
    let route = parts.uri.path().to_owned();
    // The caller's own timeout bounds the wait for a first request still
    // running; the pipeline's deadline bounds that request itself.
    let timeout = inference_headers::timeout(&parts.headers)
        .ok()
        .flatten()
        .unwrap_or(state.config.request_timeout);
    let headers = parts.headers.clone();
    let run = next.run(Request::from_parts(parts, Body::from(body.clone())));
    let scope = Scope {
        client: client.as_str(),
        model,
        route: &route,
    };
    once(&state, scope, &headers, &body, start + timeout, run).await
}

/// Whose key a request's idempotency key is, and where it was sent: a key
/// is only ever replayed to the same client on the same route (protocol,
/// model and pinned version), so `/versions/2/infer` never replays an
/// answer of `/versions/1/infer`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The caller.
    pub(crate) client: &'a str,
    /// The model, for log lines.
    pub(crate) model: &'a str,
    /// The request's path.
    pub(crate) route: &'a str,
}

/// Runs `run` at most once per idempotency key of a client on a route (`scope`):
/// without a store or a key it just runs; the first request with a key runs
/// and its answer is kept (2xx, and 4xx other than 404 — the model may be
/// served by the retry — 408, 409, 425 and 429);
/// a retry with the same request gets that answer, waiting until `deadline`
/// while the first still runs; the same key with another request is a 422.
pub(crate) async fn once<F>(
    state: &AppState,
    scope: Scope<'_>,
    headers: &HeaderMap,
    body: &[u8],
    deadline: Instant,
    run: F,
) -> Response
where
    F: Future<Output = Response>,
{
    if state.idempotency.is_none() {
        return run.await;
    }
    let key = match key_of(headers, body, state.config.idempotency_request_id) {
        Ok(Some(key)) => key,
        Ok(None) => return run.await,
        Err(e) => return ApiError(e).into_response(),
    };
    once_keyed(state, scope, key, fingerprint(headers, body), deadline, run).await
}

/// An answer the idempotency store can keep for retries and give again:
/// an HTTP response here, a gRPC answer in the gRPC front end.
pub(crate) trait Replayable: Sized {
    /// The answer refusing the request (a store failure, a key used with
    /// another request).
    fn refused(error: InferError) -> Self;

    /// The answer again, and what of it to keep for retries (`None`: a
    /// transient refusal the retry should try again).
    async fn kept(self) -> (Self, Option<StoredResponse>);

    /// The answer a retry gets from what was kept.
    fn replayed(stored: StoredResponse) -> Self;
}

/// Runs `run` at most once per `key` of a client on a route (`scope`) when
/// the server honours keys: the first request runs and what [`Replayable::kept`]
/// says is kept; a retry with the same `fingerprint` gets it back, waiting
/// until `deadline` while the first still runs; the same key with another
/// fingerprint is refused as unprocessable.
pub(crate) async fn once_keyed<A, F>(
    state: &AppState,
    scope: Scope<'_>,
    key: String,
    fingerprint: [u8; 32],
    deadline: Instant,
    run: F,
) -> A
where
    A: Replayable,
    F: Future<Output = A>,
{
    let Some(store) = &state.idempotency else {
        return run.await;
    };
    let scoped = format!("{}\n{}\n{key}", scope.client, scope.route);
    match store.claim(&scoped, fingerprint, deadline).await {
        Err(e) => A::refused(e),
        Ok(Claim::Mismatch) => A::refused(mismatch(&key)),
        Ok(Claim::Replay(stored)) => {
            tracing::debug!(model = scope.model, "replaying an idempotent answer");
            A::replayed(stored)
        }
        Ok(Claim::First(guard)) => {
            let (answer, kept) = run.await.kept().await;
            guard.complete(kept).await;
            answer
        }
    }
}

impl Replayable for Response {
    fn refused(error: InferError) -> Self {
        ApiError(error).into_response()
    }

    async fn kept(self) -> (Self, Option<StoredResponse>) {
        let (parts, body) = self.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => bytes,
            Err(e) => {
                let error = InferError::internal(format!("cannot buffer the response: {e}"));
                return (ApiError(error).into_response(), None);
            }
        };
        let kept = keep(parts.status).then(|| StoredResponse {
            status: parts.status.as_u16(),
            headers: replayable_headers(&parts.headers),
            body: bytes.to_vec(),
        });
        (Response::from_parts(parts, Body::from(bytes)), kept)
    }

    fn replayed(stored: StoredResponse) -> Self {
        let mut response = rebuild(stored);
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
        response
    }
}

/// The key of this request: the header, else (when `use_request_id`) the
/// JSON body's `id`; an unusable header is an error, an unusable `id` is no
/// key (it was not written as one).
fn key_of(
    headers: &HeaderMap,
    body: &[u8],
    use_request_id: bool,
) -> Result<Option<String>, InferError> {
    if let Some(key) = header_key(headers)? {
        return Ok(Some(key));
    }
    if !use_request_id {
        return Ok(None);
    }
    Ok(body_id(headers, body).and_then(request_id_key))
}

/// The `Idempotency-Key` header (or gRPC metadata key) of a request: none,
/// or one key of 1 to 255 visible ASCII characters; anything else is an
/// error saying so.
pub(crate) fn header_key(headers: &HeaderMap) -> Result<Option<String>, InferError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(InferError::invalid(
            "the Idempotency-Key header was sent more than once; send one key",
        ));
    }
    let bytes = value.as_bytes();
    if !valid_key(bytes) {
        return Err(InferError::invalid(format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters \
             (no spaces); got {} bytes",
            bytes.len()
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// A request's own id as its key, when it could be one (an id that could
/// not was not written as a key, and is no key).
pub(crate) fn request_id_key(id: String) -> Option<String> {
    valid_key(id.as_bytes()).then_some(id)
}

fn valid_key(bytes: &[u8]) -> bool {
    (1..=MAX_KEY_LEN).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The `id` of a JSON body (or of the JSON part of a binary-tensor body).
fn body_id(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    let json = match headers.get(INFERENCE_HEADER_CONTENT_LENGTH) {
        Some(length) => {
            let length: usize = length.to_str().ok()?.trim().parse().ok()?;
            body.get(..length)?
        }
        None => body,
    };
    serde_json::from_slice::<IdOnly>(json).ok()?.id
}

/// Hash of what makes two requests the same: the body and the headers that
/// decide how it is read.
fn fingerprint(headers: &HeaderMap, body: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for name in [
        header::CONTENT_TYPE.as_str(),
        INFERENCE_HEADER_CONTENT_LENGTH,
    ] {
        let value = headers.get(name).map(HeaderValue::as_bytes).unwrap_or(b"");
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value);
    }
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

/// Whether an answer is the request's own (kept for retries), not a
/// transient refusal that a retry should try again.
fn keep(status: StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error() && !matches!(status.as_u16(), 404 | 408 | 409 | 425 | 429))
}

/// Headers that describe the body; per-request ones (`x-request-id`, the
/// length, dates) are left to the replay.
fn replayable_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name == header::CONTENT_TYPE.as_str()
                || name == INFERENCE_HEADER_CONTENT_LENGTH
                || name.starts_with("x-ferroserve-")
        })
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

fn rebuild(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

/// 422: the key was first used with another request.
fn mismatch(key: &str) -> InferError {
    InferError::new(
        ErrorKind::Unprocessable,
        format!(
            "Idempotency-Key '{key}' was already used with a different request; \
             use a new key for a new request"
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use ferroserve_backend::Engines;
    use ferroserve_serving::guard::idempotency::{IdempotencyConfig, IdempotencyStore};
    use ferroserve_serving::{ModelManager, Pipeline};

    use super::*;
    use crate::state::ServerConfig;

    fn state(config: ServerConfig, with_store: bool) -> AppState {
        let manager = Arc::new(ModelManager::new(Arc::new(Engines::discover(None))));
        let pipeline = Arc::new(Pipeline::new(manager, config.request_timeout));
        let state = AppState::new(pipeline, config, crate::telemetry::prometheus());
        if with_store {
            state.with_idempotency(Arc::new(IdempotencyStore::new(
                IdempotencyConfig::default(),
                None,
            )))
        } else {
            state
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    struct Outcome {
        status: StatusCode,
        replayed: bool,
        body: String,
    }

    /// Calls `once` with a handler that counts its runs and answers `status`
    /// with the run number in the body.
    async fn call(
        state: &AppState,
        headers: &HeaderMap,
        body: &str,
        status: StatusCode,
        runs: &AtomicUsize,
    ) -> Outcome {
        call_on("/v2/models/iris/infer", state, headers, body, status, runs).await
    }

    /// [`call`] on the route `route`.
    async fn call_on(
        route: &str,
        state: &AppState,
        headers: &HeaderMap,
        body: &str,
        status: StatusCode,
        runs: &AtomicUsize,
    ) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(5);
        let scope = Scope {
            client: "ip:1.2.3.4",
            model: "iris",
            route,
        };
        let response = once(state, scope, headers, body.as_bytes(), deadline, async {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let mut r = (status, format!("run {n}")).into_response();
            r.headers_mut()
                .insert("x-request-id", HeaderValue::from_static("first-id"));
            r.headers_mut()
                .insert("x-ferroserve-cache", HeaderValue::from_static("miss"));
            r
        })
        .await;
        let status = response.status();
        let replayed = response.headers().get(REPLAYED).is_some();
        if replayed {
            assert!(response.headers().get("x-request-id").is_none());
            assert_eq!(response.headers()["x-ferroserve-cache"], "miss");
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Outcome {
            status,
            replayed,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_retry_replays_the_first_answer() {
        let state = state(ServerConfig::default(), true);
        let runs = AtomicUsize::new(0);
        let h = headers(&[(IDEMPOTENCY_KEY, "abc-1")]);
        let first = call(&state, &h, "{}", StatusCode::OK, &runs).await;
        assert!(!first.replayed);
        let second = call(&state, &h, "{}", StatusCode::OK, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(second.replayed);
        assert_eq!(second.status, StatusCode::OK);
        assert_eq!(second.body, "run 1");
    }

    #[tokio::test]
    async fn a_key_is_replayed_only_on_its_own_route() {
        let state = state(ServerConfig::default(), true);
        let runs = AtomicUsize::new(0);
        let h = headers(&[(IDEMPOTENCY_KEY, "same-key")]);
        let v1 = "/v2/models/iris/versions/1/infer";
        let v2 = "/v2/models/iris/versions/2/infer";
        let first = call_on(v1, &state, &h, "{}", StatusCode::OK, &runs).await;
        assert_eq!(first.body, "run 1");
        let other_version = call_on(v2, &state, &h, "{}", StatusCode::OK, &runs).await;
        assert!(!other_version.replayed, "version 2 ran itself");
        assert_eq!(other_version.body, "run 2");
        let other_protocol = call_on(
            "/v1/models/iris:predict",
            &state,
            &h,
            "{}",
            StatusCode::OK,
            &runs,
        )
        .await;
        assert!(!other_protocol.replayed);
        let retry = call_on(v2, &state, &h, "{}", StatusCode::OK, &runs).await;
        assert!(retry.replayed);
        assert_eq!(retry.body, "run 2");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn another_body_with_the_same_key_is_422() {
        let state = state(ServerConfig::default(), true);
        let runs = AtomicUsize::new(0);
        let h = headers(&[(IDEMPOTENCY_KEY, "abc")]);
        call(&state, &h, r#"{"a":1}"#, StatusCode::OK, &runs).await;
        let other = call(&state, &h, r#"{"a":2}"#, StatusCode::OK, &runs).await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            other
                .body
                .contains("Idempotency-Key 'abc' was already used"),
            "{}",
            other.body
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_bad_key_is_400() {
        let state = state(ServerConfig::default(), true);
        let runs = AtomicUsize::new(0);
        let long = "k".repeat(256);
        for bad in [
            headers(&[(IDEMPOTENCY_KEY, "has space")]),
            headers(&[(IDEMPOTENCY_KEY, "")]),
            headers(&[(IDEMPOTENCY_KEY, &long)]),
            headers(&[(IDEMPOTENCY_KEY, "a"), (IDEMPOTENCY_KEY, "b")]),
        ] {
            let reply = call(&state, &bad, "{}", StatusCode::OK, &runs).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST);
            assert!(reply.body.contains("Idempotency-Key"), "{}", reply.body);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn without_a_key_or_a_store_every_request_runs() {
        let runs = AtomicUsize::new(0);
        let with_store = state(ServerConfig::default(), true);
        for _ in 0..2 {
            let no_key = HeaderMap::new();
            call(&with_store, &no_key, r#"{"id":"x"}"#, StatusCode::OK, &runs).await;
        }
        let without = state(ServerConfig::default(), false);
        let h = headers(&[(IDEMPOTENCY_KEY, "abc")]);
        call(&without, &h, "{}", StatusCode::OK, &runs).await;
        call(&without, &h, "{}", StatusCode::OK, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_429_is_not_kept_but_a_400_is() {
        let state = state(ServerConfig::default(), true);
        let runs = AtomicUsize::new(0);
        let h = headers(&[(IDEMPOTENCY_KEY, "busy")]);
        let first = call(&state, &h, "{}", StatusCode::TOO_MANY_REQUESTS, &runs).await;
        assert_eq!(first.status, StatusCode::TOO_MANY_REQUESTS);
        let retry = call(&state, &h, "{}", StatusCode::OK, &runs).await;
        assert!(!retry.replayed);
        assert_eq!(retry.body, "run 2");

        let h = headers(&[(IDEMPOTENCY_KEY, "bad-input")]);
        call(&state, &h, "{}", StatusCode::BAD_REQUEST, &runs).await;
        let again = call(&state, &h, "{}", StatusCode::OK, &runs).await;
        assert!(again.replayed);
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_body_id_is_the_key_when_enabled() {
        let config = ServerConfig {
            idempotency_request_id: true,
            ..Default::default()
        };
        let state = state(config, true);
        let runs = AtomicUsize::new(0);
        let none = HeaderMap::new();
        call(
            &state,
            &none,
            r#"{"id":"req-1","inputs":[]}"#,
            StatusCode::OK,
            &runs,
        )
        .await;
        let again = call(
            &state,
            &none,
            r#"{"id":"req-1","inputs":[]}"#,
            StatusCode::OK,
            &runs,
        )
        .await;
        assert!(again.replayed);
        // A binary-tensor body: the id comes from the JSON prefix.
        let json = r#"{"id":"req-2"}"#;
        let binary = headers(&[(INFERENCE_HEADER_CONTENT_LENGTH, &json.len().to_string())]);
        let body = format!("{json}\u{1}\u{2}");
        call(&state, &binary, &body, StatusCode::OK, &runs).await;
        assert!(
            call(&state, &binary, &body, StatusCode::OK, &runs)
                .await
                .replayed
        );
        // Not JSON: no key, runs every time.
        call(&state, &none, "not json", StatusCode::OK, &runs).await;
        call(&state, &none, "not json", StatusCode::OK, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }
}
