//! Headers of an inference request that the server itself reads: the
//! caller's timeout and its idempotency key.

use std::time::Duration;

use axum::http::HeaderMap;
use ferroserve_core::InferError;

/// Header giving a per-request timeout in milliseconds.
pub const TIMEOUT_HEADER: &str = "x-request-timeout-ms";

/// Header naming the idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The `x-request-timeout-ms` header, if sent.
pub fn timeout(headers: &HeaderMap) -> Result<Option<Duration>, InferError> {
    let Some(value) = headers.get(TIMEOUT_HEADER) else {
        return Ok(None);
    };
    let ms = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            InferError::invalid(format!(
                "header {TIMEOUT_HEADER} must be a whole number of milliseconds, got {value:?}"
            ))
        })?;
    Ok(Some(Duration::from_millis(ms)))
}
