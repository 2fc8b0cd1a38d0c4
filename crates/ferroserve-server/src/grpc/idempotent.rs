//! Idempotency keys on gRPC inference, as on HTTP: a `ModelInfer` call with
//! `idempotency-key` metadata (or, when the server takes request ids as
//! keys, a request `id`, also per request of a stream) runs at most once
//! per key, client and model version; a retry with the same message gets
//! the first answer again, marked `idempotent-replayed: true`, and the
//! same key with another message is `INVALID_ARGUMENT`. What is kept is an
//! answer or an `INVALID_ARGUMENT` refusal (the request's own fault); any
//! other refusal is one a retry may not meet again.

use std::future::Future;
use std::time::Instant;

use axum::http::HeaderMap;
use ferroserve_core::InferError;
use ferroserve_serving::guard::idempotency::StoredResponse;
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use super::errors::status_of;
use super::infer::Inferred;
use super::proto::{ModelInferRequest, ModelInferResponse};
use crate::idempotency::{header_key, once_keyed, request_id_key, Replayable, Scope, REPLAYED};
use crate::state::AppState;

/// Stored status of a kept answer (and of a kept refusal, which also
/// keeps its gRPC code).
const ANSWERED: u16 = 200;
const REFUSED: u16 = 400;

/// Where a kept refusal's gRPC code is stored.
const GRPC_STATUS: &str = "grpc-status";

/// Where an idempotency key comes from: the call's metadata for
/// `ModelInfer`; only the request's own `id` for a request of a stream
/// (the stream's metadata is shared by all of its requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    Call,
    StreamRequest,
}

/// The idempotency key of `message`, if the server honours keys and the
/// call brings one; an unusable metadata key is an error.
pub(crate) fn key_of(
    state: &AppState,
    headers: &HeaderMap,
    source: KeySource,
    message: &ModelInferRequest,
) -> Result<Option<String>, Status> {
    if state.idempotency.is_none() {
        return Ok(None);
    }
    if source == KeySource::Call {
        if let Some(key) = header_key(headers).map_err(|e| status_of(&e))? {
            return Ok(Some(key));
        }
    }
    if !state.config.idempotency_request_id || message.id.is_empty() {
        return Ok(None);
    }
    Ok(request_id_key(message.id.clone()))
}

/// What makes two requests the same: the whole message.
pub(crate) fn fingerprint(message: &ModelInferRequest) -> [u8; 32] {
    *blake3::hash(&message.encode_to_vec()).as_bytes()
}

/// The caller, model and version a key belongs to.
pub(crate) struct KeyScope<'a> {
    pub(crate) client: &'a str,
    pub(crate) model: &'a str,
    pub(crate) version: Option<&'a str>,
}

/// Runs `run` at most once for `key` in `scope` (see the module).
pub(crate) async fn once<F>(
    state: &AppState,
    scope: KeyScope<'_>,
    key: String,
    fingerprint: [u8; 32],
    deadline: Instant,
    run: F,
) -> Result<Inferred, Status>
where
    F: Future<Output = Result<Inferred, Status>>,
{
    let route = format!("grpc {}/{}", scope.model, scope.version.unwrap_or(""));
    let scope = Scope {
        client: scope.client,
        model: scope.model,
        route: &route,
    };
    once_keyed(state, scope, key, fingerprint, deadline, run).await
}

impl Replayable for Result<Inferred, Status> {
    fn refused(error: InferError) -> Self {
        Err(status_of(&error))
    }

    async fn kept(self) -> (Self, Option<StoredResponse>) {
        let kept = match &self {
            Ok(inferred) => Some(StoredResponse {
                status: ANSWERED,
                headers: inferred
                    .metadata
                    .clone()
                    .into_headers()
                    .iter()
                    .filter(|(name, _)| name.as_str().starts_with("x-ferroserve-"))
                    .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                    .collect(),
                body: inferred.response.encode_to_vec(),
            }),
            Err(status) if status.code() == Code::InvalidArgument => Some(StoredResponse {
                status: REFUSED,
                headers: vec![(
                    GRPC_STATUS.to_owned(),
                    (status.code() as i32).to_string().into_bytes(),
                )],
                body: status.message().as_bytes().to_vec(),
            }),
            Err(_) => None,
        };
        (self, kept)
    }

    fn replayed(stored: StoredResponse) -> Self {
        if stored.status != ANSWERED {
            let code = stored
                .headers
                .iter()
                .find(|(name, _)| name == GRPC_STATUS)
                .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse::<i32>().ok())
                .map_or(Code::Internal, Code::from_i32);
            return Err(Status::new(code, String::from_utf8_lossy(&stored.body)));
        }
        let response = ModelInferResponse::decode(stored.body.as_slice()).map_err(|e| {
            Status::internal(format!(
                "the kept answer of this idempotency key is unreadable: {e}"
            ))
        })?;
        let mut metadata = MetadataMap::new();
        for (name, value) in &stored.headers {
            if let (Ok(name), Ok(value)) = (
                tonic::metadata::AsciiMetadataKey::from_bytes(name.as_bytes()),
                MetadataValue::try_from(value.as_slice()),
            ) {
                metadata.insert(name, value);
            }
        }
        metadata.insert(REPLAYED, MetadataValue::from_static("true"));
        Ok(Inferred { response, metadata })
    }
}
