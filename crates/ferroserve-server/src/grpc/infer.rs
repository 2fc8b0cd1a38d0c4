//! One `ModelInferRequest` through the pipeline, for `ModelInfer` and each
//! request of `ModelStreamInfer`: the caller authorized for the model, the
//! call built from the metadata by the same function as HTTP's headers
//! (plus `grpc-timeout`), one `Pipeline::infer`, the answer encoded with
//! the metadata HTTP sends as headers (`x-ferroserve-cache`, `-variant`,
//! `-fallback`).

use std::time::Duration;

use axum::http::HeaderMap;
use ferroserve_core::InferError;
use ferroserve_kserve::timeout_parameter;
use ferroserve_serving::{Call, Decoded};
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::access::{named_model, Incoming, Method, Models};
use super::errors::{status_of, to_status};
use super::idempotent::{self, KeyScope, KeySource};
use super::infer_codec::{decode_request, encode_response};
use super::proto::{ModelInferRequest, ModelInferResponse};
use crate::inference::{answer_headers, call_from_headers};
use crate::state::AppState;

/// Label of gRPC calls in the request metrics (`protocol="grpc"`).
pub const PROTOCOL: &str = "grpc";

/// The metadata key of gRPC's deadline.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// An answer and the metadata that goes with it.
pub(crate) struct Inferred {
    pub(crate) response: ModelInferResponse,
    pub(crate) metadata: MetadataMap,
}

/// Answers `message` for the caller `incoming` describes, as `method`
/// (`ModelInfer`, or `ModelStreamInfer` for a request of a stream), at
/// most once per idempotency key.
pub(crate) async fn infer(
    state: &AppState,
    incoming: &Incoming,
    method: Method,
    message: ModelInferRequest,
) -> Result<Inferred, Status> {
    let model = named_model(&message.model_name, "model_name")?.to_owned();
    let requester = incoming.authorize(state, method, Models::One(&model))?;
    let version = Some(message.model_version.clone()).filter(|v| !v.is_empty());
    let mut call = call_from_headers(
        state,
        PROTOCOL,
        (&model, version.as_deref()),
        &incoming.headers,
        &requester,
    )
    .map_err(to_status)?;
    if let Some(deadline) = grpc_timeout(&incoming.headers).map_err(to_status)? {
        call.timeout = Some(call.timeout.map_or(deadline, |own| own.min(deadline)));
    }
    let source = match method {
        Method::ModelStreamInfer => KeySource::StreamRequest,
        _ => KeySource::Call,
    };
    let Some(key) = idempotent::key_of(state, &incoming.headers, source, &message)? else {
        return run(state, call, message).await;
    };
    let deadline = requester.start + call.timeout.unwrap_or(state.config.request_timeout);
    let scope = KeyScope {
        client: requester.client.as_str(),
        model: &model,
        version: version.as_deref(),
    };
    let fingerprint = idempotent::fingerprint(&message);
    idempotent::once(
        state,
        scope,
        key,
        fingerprint,
        deadline,
        run(state, call, message),
    )
    .await
}

/// `message` through the pipeline as `call`.
async fn run(state: &AppState, call: Call, message: ModelInferRequest) -> Result<Inferred, Status> {
    let answer = state
        .pipeline
        .infer(call, move |_served| {
            let request = decode_request(message)?;
            let timeout = timeout_parameter(&request)?.map(Duration::from_micros);
            Ok(Decoded {
                request,
                timeout,
                context: (),
            })
        })
        .await
        .map_err(to_status)?;
    let metadata = MetadataMap::from_headers(answer_headers(&answer));
    let response = encode_response(answer.response).map_err(|e| status_of(&e))?;
    Ok(Inferred { response, metadata })
}

/// The deadline a client's `grpc-timeout` sets: up to 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`), as the gRPC protocol spells it.
pub(crate) fn grpc_timeout(headers: &HeaderMap) -> Result<Option<Duration>, InferError> {
    let Some(value) = headers.get(GRPC_TIMEOUT) else {
        return Ok(None);
    };
    let invalid = || {
        InferError::invalid(format!(
            "metadata {GRPC_TIMEOUT} must be up to 8 digits and a unit (H, M, S, m, u or n), got {value:?}"
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    let duration = match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return Err(invalid()),
    };
    Ok(Some(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<Option<Duration>, InferError> {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_TIMEOUT, value.parse().expect("header value"));
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_reads_every_unit_and_refuses_malformed_values() {
        assert_eq!(parse("2S").expect("S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("150m").expect("m"), Some(Duration::from_millis(150)));
        assert_eq!(parse("1H").expect("H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("7n").expect("n"), Some(Duration::from_nanos(7)));
        for bad in ["", "S", "123456789S", "10x", "-1S", "1.5S"] {
            let e = parse(bad).expect_err(bad);
            assert!(e.message.contains("grpc-timeout"), "{bad}: {}", e.message);
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()).expect("absent"), None);
    }
}
