//! An [`InferError`] as a gRPC status: the code from its kind
//! ([`grpc_code_of`]), the message HTTP puts in `{"error": ...}`, and for a
//! refusal to retry later the delay in `retry-after` (seconds, as HTTP's
//! header) and `grpc-retry-pushback-ms` (gRPC's retry pushback). A message
//! over the size limit is `RESOURCE_EXHAUSTED`, as the gRPC protocol has
//! it (tonic's own refusal says `OUT_OF_RANGE`).

use axum::http::HeaderValue;
use ferroserve_core::InferError;
use tonic::metadata::MetadataValue;
use tonic::Status;

use crate::error::grpc_code_of;

/// Metadata key of the retry delay in whole seconds.
pub const RETRY_AFTER: &str = "retry-after";

/// Metadata key of gRPC's retry pushback, in milliseconds.
pub const RETRY_PUSHBACK_MS: &str = "grpc-retry-pushback-ms";

/// The gRPC status answering `error`.
pub fn status_of(error: &InferError) -> Status {
    let mut status = Status::new(grpc_code_of(error.kind), error.message.clone());
    if let Some(seconds) = error.retry_after_secs() {
        let metadata = status.metadata_mut();
        metadata.insert(RETRY_AFTER, MetadataValue::from(seconds));
        metadata.insert(
            RETRY_PUSHBACK_MS,
            MetadataValue::from(seconds.saturating_mul(1000)),
        );
    }
    status
}

/// Shorthand for handlers: `Err(error)` as a status.
pub fn to_status(error: InferError) -> Status {
    status_of(&error)
}

/// What tonic's refusal of a message over the size limit says.
const TOO_LARGE: &str = "message length too large";

/// Whether `status` is tonic's refusal of a message over the size limit.
fn is_size_refusal(code: tonic::Code, message: &str) -> bool {
    code == tonic::Code::OutOfRange && message.contains(TOO_LARGE)
}

/// `status` with a refused oversized message as `RESOURCE_EXHAUSTED`.
pub(crate) fn size_limit_exhausted(status: Status) -> Status {
    if is_size_refusal(status.code(), status.message()) {
        return Status::resource_exhausted(status.message());
    }
    status
}

/// An answer of the gRPC routes with a refused oversized request message
/// (answered in its headers, before the handler runs) as
/// `RESOURCE_EXHAUSTED`.
pub(crate) fn size_limit_answer<B>(
    mut response: axum::http::Response<B>,
) -> axum::http::Response<B> {
    let headers = response.headers_mut();
    let refused = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .zip(headers.get("grpc-message").and_then(|v| v.to_str().ok()))
        // The message travels percent-encoded (its spaces as %20).
        .is_some_and(|(code, message)| is_size_refusal(code, &message.replace("%20", " ")));
    if refused {
        headers.insert(
            "grpc-status",
            HeaderValue::from(tonic::Code::ResourceExhausted as i32),
        );
    }
    response
}
