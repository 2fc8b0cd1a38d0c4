//! Reads a request body under the configured size limit, into memory or as
//! a stream, so an oversized upload is refused with 413 before it is
//! buffered or stored.

use std::io;
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use ferroserve_core::{ErrorKind, InferError};
use futures::{Stream, StreamExt};

/// What a streamed upload is, for its errors: `what` names it ("artifact
/// upload") and `setting` the limit that stops it ("max_artifact_bytes").
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    /// The upload, in messages.
    pub what: &'static str,
    /// The setting holding the limit.
    pub setting: &'static str,
    /// Largest body accepted, in bytes.
    pub limit: usize,
}

impl Upload {
    /// The body's chunks, failing once more than the limit went through (or
    /// the client's body failed), with the reason left in `stopped`.
    pub fn stream(
        self,
        body: Body,
        stopped: Arc<OnceLock<InferError>>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Unpin + Send {
        let mut received = 0usize;
        body.into_data_stream().map(move |chunk| {
            let chunk = chunk.map_err(|e| {
                let _ = stopped.set(InferError::invalid(format!(
                    "cannot read the {}: {e}",
                    self.what
                )));
                io::Error::other(e)
            })?;
            received = received.saturating_add(chunk.len());
            if received > self.limit {
                let _ = stopped.set(self.too_large());
                return Err(io::Error::other(format!("{} limit exceeded", self.what)));
            }
            Ok(chunk)
        })
    }

    /// Refuses a body whose declared length is over the limit.
    pub fn check_declared(&self, headers: &HeaderMap) -> Result<(), InferError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limit as u64) {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// The error for a body over the limit.
    pub fn too_large(&self) -> InferError {
        InferError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "{} exceeds the limit of {} bytes ({})",
                self.what, self.limit, self.setting
            ),
        )
    }
}

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
