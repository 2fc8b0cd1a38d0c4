//! HTTP handlers of the KServe v2 protocol: server and model metadata, model
//! readiness, and inference (JSON or binary tensors).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_core::request::INFERENCE_HEADER_CONTENT_LENGTH;
use ferroserve_core::{InferError, InferResponse};
use ferroserve_kserve::{decode_request, encode_response, timeout_parameter, BinaryChoice};
use ferroserve_serving::{Decoded, ServedVersion};
use serde_json::json;

use super::async_submit;
use crate::error::ApiError;
use crate::inference::{handle, InferInput, Protocol};
use crate::state::{AppState, SharedState};

/// `GET /v2`: server metadata.
pub(crate) async fn server_metadata(State(state): State<SharedState>) -> Json<serde_json::Value> {
    Json(json!({
        "name": SERVER_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": server_extensions(&state),
    }))
}

/// The server's name in its metadata.
pub(crate) const SERVER_NAME: &str = "ferroserve";

/// The protocol extensions implemented (the model repository one only when
/// the registry is enabled), as every protocol's server metadata lists them.
pub(crate) fn server_extensions(state: &AppState) -> Vec<&'static str> {
    let mut extensions = vec!["binary_tensor_data", "model_configuration", "statistics"];
    if state.controller.is_some() {
        extensions.push("model_repository");
    }
    extensions
}

/// `GET /v2/models/{m}`: metadata of the default version.
pub(crate) async fn model_metadata(
    State(state): State<SharedState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    metadata(&state, &model, None).await
}

/// `GET /v2/models/{m}/versions/{v}`: metadata of one version.
pub(crate) async fn version_metadata(
    State(state): State<SharedState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    metadata(&state, &model, Some(&version)).await
}

async fn metadata(
    state: &SharedState,
    model: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let served = state.pipeline.find(model, version).await?;
    let signature = served.signature();
    Ok(Json(json!({
        "name": served.name(),
        "versions": served_versions(state, model),
        "platform": platform_of(&served),
        "inputs": signature.inputs,
        "outputs": signature.outputs,
    }))
    .into_response())
}

/// The versions of `model` that serve, as its metadata lists them.
pub(crate) fn served_versions(state: &AppState, model: &str) -> Vec<String> {
    let snapshot = state.manager().snapshot();
    snapshot
        .get(model)
        .map(|m| {
            m.versions
                .values()
                .filter(|v| v.served.is_some())
                .map(|v| v.version.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The platform a version's metadata names (`ort_onnx`, `tract_onnx`).
pub(crate) fn platform_of(served: &ServedVersion) -> String {
    format!("{}_onnx", served.engine())
}

/// `GET /v2/models/{m}/ready`.
pub(crate) async fn model_ready(
    State(state): State<SharedState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    readiness(&state, &model, None).await
}

/// `GET /v2/models/{m}/versions/{v}/ready`.
pub(crate) async fn version_ready(
    State(state): State<SharedState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    readiness(&state, &model, Some(&version)).await
}

async fn readiness(
    state: &SharedState,
    model: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    match state.pipeline.find(model, version).await {
        Ok(_) => Ok(Json(json!({ "name": model, "ready": true })).into_response()),
        Err(e) if e.kind == ferroserve_core::ErrorKind::Unavailable => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "name": model, "ready": false, "error": e.message })),
        )
            .into_response()),
        Err(e) => Err(ApiError(e)),
    }
}

/// `POST /v2/models/{m}/infer`.
pub(crate) async fn infer(
    State(state): State<SharedState>,
    Path(model): Path<String>,
    input: InferInput,
) -> Response {
    infer_version(&state, &model, None, input).await
}

/// `POST /v2/models/{m}/versions/{v}/infer`.
pub(crate) async fn infer_with_version(
    State(state): State<SharedState>,
    Path((model, version)): Path<(String, String)>,
    input: InferInput,
) -> Response {
    infer_version(&state, &model, Some(&version), input).await
}

async fn infer_version(
    state: &SharedState,
    model: &str,
    version: Option<&str>,
    input: InferInput,
) -> Response {
    let json_len = match header_content_length(&input.headers) {
        Ok(len) => len,
        Err(e) => return ApiError(e).into_response(),
    };
    if let Some(jobs) = state
        .jobs
        .as_ref()
        .filter(|_| async_submit::prefers_async(&input.headers))
    {
        return async_submit::submit(state, jobs, model, version, &input, json_len)
            .await
            .unwrap_or_else(|e| ApiError(e).into_response());
    }
    handle(state, KserveV2 { json_len }, model, version, &input).await
}

fn header_content_length(headers: &HeaderMap) -> Result<Option<usize>, InferError> {
    headers
        .get(INFERENCE_HEADER_CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    InferError::invalid(format!(
                        "header Inference-Header-Content-Length must be a byte count, got {v:?}"
                    ))
                })
        })
        .transpose()
}

/// KServe v2 encoding.
pub(crate) struct KserveV2 {
    /// Length of the JSON header when the body carries binary tensors.
    pub(crate) json_len: Option<usize>,
}

impl Protocol for KserveV2 {
    const LABEL: &'static str = "v2";
    type Context = BinaryChoice;

    fn decode(
        &self,
        _served: &ServedVersion,
        body: &[u8],
    ) -> Result<Decoded<BinaryChoice>, InferError> {
        let request = decode_request(body, self.json_len)?;
        let choice = BinaryChoice::of(&request);
        let timeout = timeout_parameter(&request)?.map(Duration::from_micros);
        Ok(Decoded {
            request,
            timeout,
            context: choice,
        })
    }

    fn encode(
        &self,
        _served: &ServedVersion,
        choice: BinaryChoice,
        response: InferResponse,
    ) -> Result<Response, InferError> {
        let encoded = encode_response(&response, &choice.flags(&response))?;
        Ok(body_response(encoded.body, encoded.json_len))
    }
}

/// Builds the HTTP response for an encoded body.
pub(crate) fn body_response(body: Vec<u8>, json_len: Option<usize>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    match json_len {
        Some(len) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(INFERENCE_HEADER_CONTENT_LENGTH, HeaderValue::from(len));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    response
}
