//! Reads a request body under the configured size limit, into memory or as
//! a stream, so an oversized upload is refused with 413 before it is
//! buffered or stored; bodies read into memory also draw on a server-wide
//! budget, and a body that stalls is answered 408.

use std::io;
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use ferroserve_core::{ErrorKind, InferError};
use futures::{Stream, StreamExt};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
                let _ = stopped.set(read_error(&format!("the {}", self.what), &e));
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

/// Bytes of request bodies being read into memory at once, server-wide
/// (`max_body_memory_bytes`): many slow or large bodies cannot pin more.
#[derive(Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    limit: usize,
}

impl BodyBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
            limit,
        }
    }

    /// Takes `bytes` more of the budget into `held`, or refuses (429) when
    /// the server is already reading that much.
    fn take(
        &self,
        bytes: usize,
        held: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), InferError> {
        let permit = u32::try_from(bytes)
            .ok()
            .and_then(|n| self.bytes.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                InferError::new(
                    ErrorKind::Overloaded,
                    format!(
                        "the server is reading too many request bodies at once (max_body_memory_bytes = {}); retry later",
                        self.limit
                    ),
                )
            })?;
        match held {
            Some(taken) => taken.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

/// Collects `body`, failing with [`ErrorKind::PayloadTooLarge`] past
/// `limit` bytes, with [`ErrorKind::Overloaded`] when `budget` is spent and
/// with [`ErrorKind::RequestTimeout`] when the client stalls. The budget is
/// held while the body is read.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    budget: &BodyBudget,
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
    let mut body = body;
    let mut held = None;
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| read_error("request body", &e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if collected.len().saturating_add(data.len()) > limit {
            return Err(too_large());
        }
        budget.take(data.len(), &mut held)?;
        collected.extend_from_slice(&data);
    }
    Ok(Bytes::from(collected))
}

/// The error for a body that could not be read: 408 when it stalled past
/// the body read timeout, else 400.
pub(crate) fn read_error(what: &str, error: &(dyn std::error::Error + 'static)) -> InferError {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current.is::<tower_http::timeout::TimeoutError>() {
            return InferError::new(
                ErrorKind::RequestTimeout,
                format!(
                    "{what} stalled: no data within the body read timeout (body_read_timeout_ms)"
                ),
            );
        }
        cause = current.source();
    }
    InferError::invalid(format!("cannot read {what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_draw_on_the_budget_while_read() {
        let budget = BodyBudget::new(10);
        let headers = HeaderMap::new();
        let read = read_limited(&headers, Body::from("0123456789"), 100, &budget).await;
        assert_eq!(read.unwrap().len(), 10);
        // Released once read: another body of the same size fits.
        let mut held = None;
        budget.take(6, &mut held).unwrap();
        let error = read_limited(&headers, Body::from("0123456789"), 100, &budget)
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Overloaded);
        assert!(error.message.contains("max_body_memory_bytes"), "{error}");
    }

    #[tokio::test]
    async fn a_stalled_body_is_a_request_timeout() {
        let (_sender, stalled) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(1);
        let stream = tokio_stream_of(stalled);
        let body = tower_http::timeout::TimeoutBody::new(
            std::time::Duration::from_millis(20),
            Body::from_stream(stream),
        );
        let error = read_limited(
            &HeaderMap::new(),
            Body::new(body),
            100,
            &BodyBudget::new(100),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::RequestTimeout, "{error}");
    }

    fn tokio_stream_of(
        mut receiver: tokio::sync::mpsc::Receiver<Result<Bytes, io::Error>>,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> {
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
