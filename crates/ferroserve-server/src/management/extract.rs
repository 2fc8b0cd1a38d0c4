//! Extractors of the management and repository APIs: the controller, the
//! acting principal, and bodies, paths and queries whose errors are JSON
//! `{"error"}` saying what was wrong and where.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use ferroserve_core::{ErrorKind, InferError};
use ferroserve_serving::lifecycle::Controller;
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::SharedState;

/// Largest JSON or Markdown body of a management route, in bytes.
pub(crate) const MAX_JSON_BYTES: usize = 1024 * 1024;

/// The lifecycle controller; 503 when the registry is not enabled.
pub(crate) struct Ctl(pub(crate) Arc<Controller>);

impl FromRequestParts<SharedState> for Ctl {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        state
            .controller
            .clone()
            .map(Ctl)
            .ok_or_else(registry_disabled)
    }
}

/// The answer of a route that needs the registry on a server without one.
pub(crate) fn registry_disabled() -> ApiError {
    ApiError(InferError::new(
        ErrorKind::Unavailable,
        "the model registry is not enabled on this server",
    ))
}

/// Who makes a change, as the audit log records it: the authenticated
/// principal's name (a key's name, a JWT's subject, or `anonymous`).
pub(crate) struct Actor(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        Ok(Actor(principal.name().to_owned()))
    }
}

/// A JSON body decoded into `T`; errors name the offending field.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let BodyBytes(bytes) = BodyBytes::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A UTF-8 text body (a Markdown model card).
pub(crate) struct TextBody(pub(crate) String);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let BodyBytes(bytes) = BodyBytes::from_request(request, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(TextBody)
            .map_err(|e| ApiError(InferError::invalid(format!("body is not UTF-8 text: {e}"))))
    }
}

/// The raw body, under the route's body limit.
pub(crate) struct BodyBytes(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(BodyBytes)
            .map_err(body_rejection)
    }
}

fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(InferError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body exceeds the limit of {MAX_JSON_BYTES} bytes for this route"),
        ))
    } else {
        ApiError(crate::body::read_error("request body", &e))
    }
}

/// Decodes JSON, naming the field where decoding failed.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| ApiError(InferError::invalid(describe("JSON body", e))))?;
    deserializer.end().map_err(|e| {
        ApiError(InferError::invalid(format!(
            "invalid JSON body: trailing data: {e}"
        )))
    })?;
    Ok(value)
}

fn describe<E: std::fmt::Display>(what: &str, e: serde_path_to_error::Error<E>) -> String {
    let path = e.path().to_string();
    if path == "." {
        format!("invalid {what}: {}", e.into_inner())
    } else {
        format!("invalid {what}: field '{path}': {}", e.into_inner())
    }
}

/// Path parameters decoded into `T`; a bad one is a 400 naming it.
pub(crate) struct PathOf<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathOf(value))
            .map_err(|e| ApiError(InferError::invalid(e.body_text())))
    }
}

/// Query parameters decoded into `T`; a bad one is a 400 naming it.
pub(crate) struct QueryOf<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryOf(value))
            .map_err(|e| ApiError(InferError::invalid(e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            version: i64,
        }
        let err = parse_json::<Body>(br#"{"version": "x"}"#).unwrap_err();
        assert!(
            err.0.message.contains("field 'version'"),
            "{}",
            err.0.message
        );
        let err = parse_json::<Body>(br#"{"version": 1} x"#).unwrap_err();
        assert!(err.0.message.contains("trailing"), "{}", err.0.message);
        let err = parse_json::<Body>(b"").unwrap_err();
        assert!(
            err.0.message.contains("invalid JSON body"),
            "{}",
            err.0.message
        );
    }
}
