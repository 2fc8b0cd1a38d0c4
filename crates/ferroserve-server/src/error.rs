//! The one place where an [`InferError`] becomes an answer: over HTTP the
//! status from its kind and a KServe-style JSON body `{"error": "..."}`,
//! over gRPC the code from its kind ([`grpc_code_of`]) with the same message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferroserve_core::{ErrorKind, InferError};
use ferroserve_jobs::JobError;
use ferroserve_registry::RegistryError;
use ferroserve_serving::ServingError;

/// An error returned by a handler.
#[derive(Debug)]
pub struct ApiError(pub InferError);

impl From<InferError> for ApiError {
    fn from(e: InferError) -> Self {
        ApiError(e)
    }
}

impl From<ServingError> for ApiError {
    fn from(e: ServingError) -> Self {
        ApiError(e.into())
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        ApiError(e.into())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError(InferError::new(e.kind(), e.to_string()))
    }
}

impl ApiError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        status_of(self.0.kind)
    }
}

/// HTTP status code of an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// gRPC status code of an error kind: the same kinds as [`status_of`],
/// spelled as gRPC codes (a full queue or a rate limit is
/// `RESOURCE_EXHAUSTED`, a conflict with the current state
/// `FAILED_PRECONDITION`).
pub fn grpc_code_of(kind: ErrorKind) -> tonic::Code {
    use tonic::Code;
    match kind {
        ErrorKind::InvalidInput | ErrorKind::Unprocessable => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Conflict => Code::FailedPrecondition,
        ErrorKind::PayloadTooLarge
        | ErrorKind::QueueFull
        | ErrorKind::RateLimited
        | ErrorKind::Overloaded
        | ErrorKind::InsufficientStorage => Code::ResourceExhausted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded | ErrorKind::RequestTimeout => Code::DeadlineExceeded,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Internal => Code::Internal,
    }
}

/// A JSON error answer `{"error": message}` with `status`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .expect("serializing a string map cannot fail");
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_error(self.status(), &self.0.message);
        if self.0.kind == ErrorKind::Unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.0.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
