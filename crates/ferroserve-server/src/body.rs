//! Reads a request body into memory under the configured size limit, so an
//! oversized upload is refused with 413 before it is buffered.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use ferroserve_core::{ErrorKind, InferError};

/// Collects `body`, failing with [`ErrorKind::PayloadTooLarge`] past `limit` bytes.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, InferError> {
    let too_large = || {
        InferError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let source: Box<dyn std::error::Error + Send + Sync> = e.into_inner();
        if source.is::<http_body_util::LengthLimitError>() {
            too_large()
        } else {
            InferError::invalid(format!("cannot read request body: {source}"))
        }
    })
}
