//! Headers of an inference request that the server itself reads: the
//! caller's timeout, its idempotency key and the version it pins.

use std::time::Duration;

use axum::http::HeaderMap;
use ferroserve_core::InferError;

/// Header giving a per-request timeout in milliseconds.
pub const TIMEOUT_HEADER: &str = "x-request-timeout-ms";

/// Header naming the idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Header pinning a version (when the path names none).
pub const MODEL_VERSION_HEADER: &str = "x-model-version";

/// Response header naming the variant of a split or rollout that answered.
pub const VARIANT_HEADER: &str = "x-ferroserve-variant";

/// The version to call: the path's, else the `x-model-version` header's;
/// a header that is not a version label is refused. A path and a header
/// that disagree are refused too: the caller meant one of them.
pub fn pinned_version(
    headers: &HeaderMap,
    path: Option<&str>,
) -> Result<Option<String>, InferError> {
    let Some(value) = headers.get(MODEL_VERSION_HEADER) else {
        return Ok(path.map(str::to_owned));
    };
    let header = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .ok_or_else(|| {
            InferError::invalid(format!(
                "header {MODEL_VERSION_HEADER} must be a version label such as 3, got {value:?}"
            ))
        })?;
    match path {
        Some(path) if path != header => Err(InferError::invalid(format!(
            "the path names version {path} but header {MODEL_VERSION_HEADER} names {header}; send one"
        ))),
        _ => Ok(Some(header.to_owned())),
    }
}

/// The `x-request-timeout-ms` header, if sent; at least 1 ms (a zero
/// timeout could only ever fail, so it is refused as a mistake).
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
    if ms == 0 {
        return Err(InferError::invalid(format!(
            "header {TIMEOUT_HEADER} must be at least 1 millisecond, got 0"
        )));
    }
    Ok(Some(Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_timeout(value: &str) -> Result<Option<Duration>, InferError> {
        let mut headers = HeaderMap::new();
        headers.insert(TIMEOUT_HEADER, value.parse().expect("header value"));
        timeout(&headers)
    }

    #[test]
    fn a_zero_timeout_is_refused_and_one_millisecond_is_the_floor() {
        let e = with_timeout("0").expect_err("zero");
        assert!(
            e.message.contains("at least 1 millisecond"),
            "{}",
            e.message
        );
        assert_eq!(
            with_timeout("1").expect("floor"),
            Some(Duration::from_millis(1))
        );
    }
}
