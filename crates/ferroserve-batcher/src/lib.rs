//! Dynamic batching: one queue per served model version, drained by worker
//! threads that stack waiting requests into batches for the engine.
//!
//! A [`Batcher`] is a cheap, cloneable handle. [`Batcher::infer`] admits a
//! request if the queue has room (else it fails at once with `QueueFull`,
//! HTTP 429), puts it on the queue and awaits the answer, bounded by the
//! caller's deadline. Each worker thread owns one engine
//! [`Runner`](ferroserve_backend::Runner): it blocks for the first request,
//! takes whatever else is already waiting up to `max_batch_size` rows and,
//! when `max_queue_delay_us` is set, keeps gathering until the batch is full,
//! reaches a preferred size, or the oldest request has waited the delay.
//! The inputs are stacked along the batch dimension, run once, and each
//! request gets its own rows of every output back.
//!
//! Requests whose deadline passed, or whose caller stopped waiting, are
//! dropped before they reach the engine. An engine error or panic fails
//! the requests of that batch only; the worker carries on.

mod config;
mod metrics;
mod shared;
mod state;
pub mod stats;
mod worker;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::Sender;
use ferroserve_backend::LoadedModel;
use ferroserve_core::{InferError, Tensor};
use tokio::sync::oneshot;

pub use config::{
    BatcherConfig, MAX_INSTANCE_COUNT, MAX_QUEUE_DELAY_US_LIMIT, MAX_QUEUE_SIZE_LIMIT,
};

use self::metrics::BatcherMetrics;
use self::shared::{BatchCommand, BatchRequest, Shared};
use self::stats::{BatcherStats, StatsCollector};
use self::worker::{batch_task, Worker};

/// Which queue position a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A client is waiting: the request joins the queue at once.
    Online,
    /// Jobs: the request joins only once no rows are waiting, so online
    /// requests wait behind at most one background batch.
    Background,
}

/// The model version a batcher serves, used in thread names, error messages
/// and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatcherLabels {
    /// Served model name.
    pub model: String,
    /// Served version.
    pub version: String,
}

/// Handle to the batch queue of one served model version.
///
/// Clones share the same queue and workers. The workers stop after
/// [`close`](Batcher::close), or once every handle is dropped, in both cases
/// after answering what was already queued.
#[derive(Clone)]
pub struct Batcher {
    inner: Arc<Inner>,
}

/// Owned by the handles only: dropping the last one drops the sender, which
/// is how idle workers learn that no more requests can come.
struct Inner {
    shared: Arc<Shared>,
    command_tx: Sender<BatchCommand>,
    closed: AtomicBool,
    instances: usize,
    /// The settings it started with.
    config: BatcherConfig,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Batcher {
    /// Validates `config`, creates one runner per instance (any failure is
    /// returned and no thread is started) and starts one worker thread per
    /// runner, named `ferroserve-batch-<model>-<version>-<i>`.
    ///
    /// When the model's signature has no dynamic batch dimension, every
    /// request runs alone.
    pub fn start(
        model: Arc<dyn LoadedModel>,
        config: BatcherConfig,
        labels: BatcherLabels,
    ) -> Result<Batcher, InferError> {
        let context = |error: InferError| {
            InferError::new(
                error.kind,
                format!(
                    "model {} version {}: {}",
                    labels.model, labels.version, error.message
                ),
            )
        };
        config.validate().map_err(context)?;
        let runners = (0..config.instance_count)
            .map(|_| model.runner().map_err(|e| context(e.into())))
            .collect::<Result<Vec<_>, _>>()?;

        let shared = Arc::new(Shared {
            metrics: BatcherMetrics::new(&labels),
            stats: StatsCollector::default(),
            labels: labels.clone(),
            queued_rows: AtomicUsize::new(0),
            max_queue_size: config.max_queue_size,
            max_batch_size: if model.signature().supports_batching() {
                config.max_batch_size
            } else {
                1
            },
            batching: model.signature().supports_batching(),
            drained: tokio::sync::Notify::new(),
        });
        shared.metrics.queue_depth.set(0.0);
        let (command_tx, command_rx) = crossbeam_channel::unbounded();
        let mut workers = Vec::with_capacity(runners.len());
        for (index, runner) in runners.into_iter().enumerate() {
            let worker = Worker::new(
                model.clone(),
                runner,
                command_rx.clone(),
                &config,
                shared.clone(),
            );
            let spawned = thread::Builder::new()
                .name(format!(
                    "ferroserve-batch-{}-{}-{index}",
                    labels.model, labels.version
                ))
                .spawn(move || batch_task(worker));
            match spawned {
                Ok(handle) => workers.push(handle),
                // Returning drops the sender, so workers already started exit.
                Err(error) => {
                    return Err(context(InferError::internal(format!(
                        "cannot start batch worker thread {index}: {error}"
                    ))))
                }
            }
        }
        Ok(Batcher {
            inner: Arc::new(Inner {
                shared,
                command_tx,
                closed: AtomicBool::new(false),
                instances: config.instance_count,
                config,
                workers: Mutex::new(workers),
            }),
        })
    }

    /// Runs `inputs` (validated against the signature, in signature order)
    /// in a batch and returns this request's outputs, in signature order.
    ///
    /// Errors, by [`ErrorKind`](ferroserve_core::ErrorKind): `QueueFull` at
    /// once when the queue has no room for these rows; `InvalidInput` when
    /// the request alone has more rows than the queue holds;
    /// `DeadlineExceeded` when `deadline` passes first (the request is then
    /// dropped before it reaches the engine); `Unavailable` after
    /// [`close`](Batcher::close); and the engine's own errors. Dropping the
    /// returned future withdraws the request. Needs a Tokio runtime with
    /// timers enabled when a deadline is given.
    pub async fn infer(
        &self,
        inputs: Vec<Tensor>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Tensor>, InferError> {
        let shared = &self.inner.shared;
        if self.is_closed() {
            return Err(shared.unavailable("the model version is shutting down"));
        }
        let rows = self.rows_of(&inputs)?;
        let enqueued_at = Instant::now();
        if deadline.is_some_and(|deadline| deadline <= enqueued_at) {
            shared.metrics.dropped_deadline.increment(1);
            return Err(shared.deadline_exceeded(std::time::Duration::ZERO));
        }
        self.admit(rows)?;

        let (reply_tx, reply_rx) = oneshot::channel();
        let request = BatchRequest {
            inputs,
            rows,
            reply_tx,
            enqueued_at,
            deadline,
            span: tracing::Span::current(),
        };
        if self
            .inner
            .command_tx
            .send(BatchCommand::Infer(request))
            .is_err()
        {
            shared.release(rows);
            return Err(shared.unavailable("the batch workers have stopped"));
        }

        let reply = match deadline {
            None => reply_rx.await,
            Some(deadline) => match tokio::time::timeout_at(deadline.into(), reply_rx).await {
                Ok(reply) => reply,
                Err(_) => return Err(shared.deadline_exceeded(enqueued_at.elapsed())),
            },
        };
        reply.unwrap_or_else(|_| {
            Err(shared.unavailable("the batch worker stopped before answering"))
        })
    }

    /// Runs `inputs` like [`infer`](Batcher::infer) (without a deadline),
    /// at a lower priority than online requests: the request joins the
    /// queue only once no rows are waiting, so an online request waits
    /// behind at most one background batch. Batch jobs send their rows this
    /// way, at most [`max_batch_rows`](Batcher::max_batch_rows) per call.
    pub async fn infer_background(
        &self,
        inputs: Vec<Tensor>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Tensor>, InferError> {
        let waited_from = Instant::now();
        let turn = async {
            loop {
                // Registered before the check, so a wake-up in between is not lost.
                let drained = self.inner.shared.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if self.queue_depth() == 0 || self.is_closed() {
                    break;
                }
                drained.await;
            }
        };
        if let Some(deadline) = deadline {
            if tokio::time::timeout_at(deadline.into(), turn)
                .await
                .is_err()
            {
                return Err(self.inner.shared.deadline_exceeded(waited_from.elapsed()));
            }
        } else {
            turn.await;
        }
        self.infer(inputs, deadline).await
    }

    /// Runs `inputs` at `priority`: [`infer`](Batcher::infer) or
    /// [`infer_background`](Batcher::infer_background).
    pub async fn infer_at(
        &self,
        priority: Priority,
        inputs: Vec<Tensor>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Tensor>, InferError> {
        match priority {
            Priority::Online => self.infer(inputs, deadline).await,
            Priority::Background => self.infer_background(inputs, deadline).await,
        }
    }

    /// The rows `inputs` would queue, or the refusal when they are more
    /// than the queue can ever hold (`max_queue_size`).
    pub fn rows_of(&self, inputs: &[Tensor]) -> Result<usize, InferError> {
        let shared = &self.inner.shared;
        let rows = if shared.batching {
            inputs.first().map_or(0, Tensor::rows)
        } else {
            1
        };
        if rows > shared.max_queue_size {
            return Err(shared.too_many_rows(rows));
        }
        Ok(rows)
    }

    /// Most rows one batch holds: `max_batch_size`, or 1 when the model
    /// has no batch dimension.
    pub fn max_batch_rows(&self) -> usize {
        self.inner.shared.max_batch_size
    }

    /// The settings this batcher started with.
    pub fn config(&self) -> &BatcherConfig {
        &self.inner.config
    }

    /// What the workers counted so far: rows and runs, queue waits, and
    /// the time batches took to assemble, run and split, also per batch
    /// size.
    pub fn stats(&self) -> BatcherStats {
        self.inner.shared.stats.read()
    }

    /// Forgets the statistics counted so far (the warm-up runs are not
    /// traffic).
    pub fn reset_stats(&self) {
        self.inner.shared.stats.reset();
    }

    /// Counts `rows` as waiting, or refuses them if the queue would exceed
    /// its limit.
    fn admit(&self, rows: usize) -> Result<(), InferError> {
        let shared = &self.inner.shared;
        shared
            .queued_rows
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                let after = waiting + rows;
                (after <= shared.max_queue_size).then_some(after)
            })
            .map(|before| shared.metrics.queue_depth.set((before + rows) as f64))
            .map_err(|waiting| {
                shared.metrics.dropped_queue_full.increment(1);
                shared.queue_full(waiting)
            })
    }

    /// Rows waiting in the queue (admitted, not yet in a running batch).
    pub fn queue_depth(&self) -> usize {
        self.inner.shared.queue_depth()
    }

    /// The model version this batcher serves.
    pub fn labels(&self) -> &BatcherLabels {
        &self.inner.shared.labels
    }

    /// Whether [`close`](Batcher::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Stops taking requests (new ones fail with `Unavailable`);
    /// the workers answer everything already queued, then exit. Returns at
    /// once; see [`join`](Batcher::join) and [`shutdown`](Batcher::shutdown)
    /// to wait for them.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.shared.drained.notify_waiters();
        // Each worker exits on the first shutdown command it receives, and
        // the queue is first in, first out: requests admitted before these
        // are answered first.
        for _ in 0..self.inner.instances {
            if self.inner.command_tx.send(BatchCommand::Shutdown).is_err() {
                break;
            }
        }
    }

    /// Closes the batcher and blocks until its worker threads have exited,
    /// having answered every queued request. If another handle is already
    /// joining, returns without waiting. In async code use
    /// [`shutdown`](Batcher::shutdown), which does not block a runtime
    /// thread.
    pub fn join(self) {
        self.close();
        join_workers(self.take_workers(), self.labels());
    }

    /// Closes the batcher and waits, without blocking the runtime, until its
    /// worker threads have exited, having answered every queued request (used
    /// to drain an old version after a hot swap). Like [`join`](Batcher::join),
    /// returns at once if another handle is already waiting.
    pub async fn shutdown(self) {
        self.close();
        let workers = self.take_workers();
        let labels = self.labels().clone();
        let joined = tokio::task::spawn_blocking(move || join_workers(workers, &labels)).await;
        if joined.is_err() {
            tracing::error!(
                model = %self.labels().model,
                version = %self.labels().version,
                "waiting for batch workers failed"
            );
        }
    }

    fn take_workers(&self) -> Vec<JoinHandle<()>> {
        let mut workers = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *workers)
    }
}

fn join_workers(workers: Vec<JoinHandle<()>>, labels: &BatcherLabels) {
    for worker in workers {
        if worker.join().is_err() {
            tracing::error!(
                model = %labels.model,
                version = %labels.version,
                "a batch worker thread panicked"
            );
        }
    }
}

impl fmt::Debug for Batcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("model", &self.labels().model)
            .field("version", &self.labels().version)
            .field("instances", &self.inner.instances)
            .field("queue_depth", &self.queue_depth())
            .field("closed", &self.is_closed())
            .finish()
    }
}
