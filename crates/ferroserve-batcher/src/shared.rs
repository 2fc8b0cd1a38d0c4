//! What the handles and the worker threads of one batcher share: the
//! commands on the queue, the count of waiting rows, metric handles, and the
//! wording of the batcher's errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferroserve_core::{ErrorKind, InferError, Tensor};
use tokio::sync::oneshot;

use super::metrics::BatcherMetrics;
use super::stats::StatsCollector;
use super::BatcherLabels;

/// Where a request's answer goes.
pub(crate) type ReplySender = oneshot::Sender<Result<Vec<Tensor>, InferError>>;

/// A message on a batcher's queue.
pub(crate) enum BatchCommand {
    /// Run these inputs in a batch and answer on the reply sender.
    Infer(BatchRequest),
    /// Finish what this worker holds, then exit (one per worker).
    Shutdown,
}

/// One request waiting for a batch.
pub(crate) struct BatchRequest {
    /// Inputs in signature order, already validated.
    pub(crate) inputs: Vec<Tensor>,
    /// Rows counted against the queue limit (1 when the model is not batched).
    pub(crate) rows: usize,
    /// Where the result goes; closed when the caller stopped waiting.
    pub(crate) reply_tx: ReplySender,
    /// When the request entered the queue.
    pub(crate) enqueued_at: Instant,
    /// When the caller stops waiting, if it set a limit.
    pub(crate) deadline: Option<Instant>,
    /// The caller's span, linked from the span of the batch that runs it.
    pub(crate) span: tracing::Span,
}

/// State shared by every handle and worker of one batcher.
pub(crate) struct Shared {
    /// Model and version served, for messages and metric labels.
    pub(crate) labels: BatcherLabels,
    /// Rows admitted and not yet taken into a batch (or dropped).
    pub(crate) queued_rows: AtomicUsize,
    /// Limit on `queued_rows`.
    pub(crate) max_queue_size: usize,
    /// Most rows one batch holds (1 when the model is not batched).
    pub(crate) max_batch_size: usize,
    /// Whether requests may share a batch (the model has a dynamic batch
    /// dimension everywhere).
    pub(crate) batching: bool,
    /// Metric handles.
    pub(crate) metrics: BatcherMetrics,
    /// Triton-style timing statistics.
    pub(crate) stats: StatsCollector,
    /// Woken when the queue empties or the batcher closes: background
    /// requests wait on it for their turn.
    pub(crate) drained: tokio::sync::Notify,
}

impl Shared {
    /// Counts `rows` as no longer waiting and publishes the new depth.
    pub(crate) fn release(&self, rows: usize) {
        let before = self.queued_rows.fetch_sub(rows, Ordering::AcqRel);
        let after = before.saturating_sub(rows);
        self.metrics.queue_depth.set(after as f64);
        if after == 0 {
            self.drained.notify_waiters();
        }
    }

    /// Rows waiting now.
    pub(crate) fn queue_depth(&self) -> usize {
        self.queued_rows.load(Ordering::Acquire)
    }

    /// "model M version V: ..." prefix shared by every message.
    fn error(&self, kind: ErrorKind, message: impl std::fmt::Display) -> InferError {
        InferError::new(
            kind,
            format!(
                "model {} version {}: {message}",
                self.labels.model, self.labels.version
            ),
        )
    }

    /// The queue cannot take more rows.
    pub(crate) fn queue_full(&self, waiting: usize) -> InferError {
        self.error(
            ErrorKind::QueueFull,
            format_args!(
                "batch queue full ({waiting} rows waiting, limit {})",
                self.max_queue_size
            ),
        )
    }

    /// A single request larger than the whole queue.
    pub(crate) fn too_many_rows(&self, rows: usize) -> InferError {
        self.error(
            ErrorKind::InvalidInput,
            format_args!(
                "request has {rows} rows but the batch queue holds at most {} rows; split the request",
                self.max_queue_size
            ),
        )
    }

    /// The deadline passed after waiting `waited`.
    pub(crate) fn deadline_exceeded(&self, waited: Duration) -> InferError {
        InferError::new(
            ErrorKind::DeadlineExceeded,
            format!(
                "deadline exceeded after {:.1} ms waiting for model {} version {}",
                waited.as_secs_f64() * 1000.0,
                self.labels.model,
                self.labels.version
            ),
        )
    }

    /// The batcher is shut down or stopped before answering.
    pub(crate) fn unavailable(&self, why: &str) -> InferError {
        self.error(ErrorKind::Unavailable, why)
    }

    /// An engine failure or a batch that cannot be split, for every request
    /// of the batch.
    pub(crate) fn internal(&self, message: impl std::fmt::Display) -> InferError {
        self.error(ErrorKind::Internal, message)
    }

    /// An error reported by the engine, keeping its kind.
    pub(crate) fn engine_error(&self, error: impl Into<InferError>) -> InferError {
        let error = error.into();
        self.error(error.kind, error.message)
    }
}
