//! The batch worker: an OS thread that owns one engine runner, gathers
//! requests from the queue into batches, runs them and answers each request
//! with its own rows.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use ferroserve_backend::{LoadedModel, Runner};
use ferroserve_core::telemetry::TRACE_TARGET;
use ferroserve_core::tensor::element_count;
use ferroserve_core::{InferError, Tensor};

use super::shared::{BatchCommand, BatchRequest, ReplySender, Shared};
use super::state::BatchState;
use super::stats::RunTimer;
use super::BatcherConfig;

/// Everything one worker thread owns.
pub(crate) struct Worker {
    /// Source of a fresh runner after an engine panic.
    model: Arc<dyn LoadedModel>,
    runner: Box<dyn Runner>,
    command_rx: Receiver<BatchCommand>,
    state: BatchState<BatchRequest>,
    shared: Arc<Shared>,
    /// Set once this worker got its shutdown command or the queue closed:
    /// it takes nothing more and sends what it holds without waiting.
    closing: bool,
}

impl Worker {
    /// A worker for `model` running batches on `runner`.
    pub(crate) fn new(
        model: Arc<dyn LoadedModel>,
        runner: Box<dyn Runner>,
        command_rx: Receiver<BatchCommand>,
        config: &BatcherConfig,
        shared: Arc<Shared>,
    ) -> Self {
        let state = if shared.batching {
            BatchState::new(
                config.max_batch_size,
                Duration::from_micros(config.max_queue_delay_us),
                &config.preferred_batch_sizes,
            )
        } else {
            // Requests of a model without a batch dimension cannot share a
            // run, so waiting for company would only add latency.
            BatchState::new(1, Duration::ZERO, &[])
        };
        Worker {
            model,
            runner,
            command_rx,
            state,
            shared,
            closing: false,
        }
    }
}

/// The worker loop: runs until shut down, or until every handle is gone and
/// the queue is empty.
pub(crate) fn batch_task(mut worker: Worker) {
    tracing::debug!(
        model = %worker.shared.labels.model,
        version = %worker.shared.labels.version,
        "batch worker started"
    );
    loop {
        if worker.state.is_empty() {
            if worker.closing {
                break;
            }
            match worker.command_rx.recv() {
                Ok(command) => worker.accept(command),
                Err(_) => break,
            }
        }
        worker.receive_waiting();
        worker.wait_for_batch();
        // The engine call is guarded on its own; this catches a bug anywhere
        // else in the batch path, so one bad batch cannot stop the model.
        // Requests of that batch get "stopped before answering".
        if panic::catch_unwind(AssertUnwindSafe(|| worker.run_next_batch())).is_err() {
            tracing::error!(
                model = %worker.shared.labels.model,
                version = %worker.shared.labels.version,
                "a batch failed unexpectedly; the worker goes on"
            );
        }
    }
    tracing::debug!(
        model = %worker.shared.labels.model,
        version = %worker.shared.labels.version,
        "batch worker stopped"
    );
}

impl Worker {
    fn accept(&mut self, command: BatchCommand) {
        match command {
            BatchCommand::Infer(request) => {
                let (rows, enqueued_at, deadline) =
                    (request.rows, request.enqueued_at, request.deadline);
                self.state.append(request, rows, enqueued_at, deadline);
            }
            BatchCommand::Shutdown => self.closing = true,
        }
    }

    /// Takes what is already queued, up to one full batch; the rest stays in
    /// the channel for other instances.
    fn receive_waiting(&mut self) {
        while !self.closing && self.state.rows() < self.state.max_batch_size() {
            match self.command_rx.try_recv() {
                Ok(command) => self.accept(command),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.closing = true,
            }
        }
    }

    /// Keeps receiving until a batch is due. Blocks on the channel with a
    /// deadline, whose resolution is far finer than an async timer's.
    fn wait_for_batch(&mut self) {
        while !self.closing && !self.state.ready(Instant::now()) {
            let Some(until) = self.state.wait_until() else {
                return;
            };
            match self.command_rx.recv_deadline(until) {
                Ok(command) => {
                    self.accept(command);
                    self.receive_waiting();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.closing = true,
            }
        }
    }

    fn run_next_batch(&mut self) {
        let now = Instant::now();
        self.drop_stale(now);
        let batch = if self.closing {
            self.state.take_batch()
        } else {
            self.state.next_batch(now)
        };
        if let Some(batch) = batch {
            self.run_batch(batch);
        }
    }

    /// Answers requests whose deadline passed and forgets those whose caller
    /// left, so that neither costs engine time.
    fn drop_stale(&mut self, now: Instant) {
        for request in self.state.drain_expired(now) {
            self.shared.release(request.rows);
            self.shared.metrics.dropped_deadline.increment(1);
            let error = self
                .shared
                .deadline_exceeded(now.saturating_duration_since(request.enqueued_at));
            // The caller may have left already; then nobody needs the answer.
            let _ = request.reply_tx.send(Err(error));
        }
        for request in self.state.drain_where(|r| r.reply_tx.is_closed()) {
            self.shared.release(request.rows);
            self.shared.metrics.dropped_cancelled.increment(1);
        }
    }

    fn run_batch(&mut self, batch: Vec<BatchRequest>) {
        let started = Instant::now();
        let metrics = &self.shared.metrics;
        let mut total_rows = 0;
        let mut rows = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        let mut inputs = Vec::with_capacity(batch.len());
        // The root of a trace of its own, linked to the span of every
        // request it serves (their traces are many; a span has one parent).
        let span = tracing::debug_span!(
            target: TRACE_TARGET,
            "batch",
            otel.name = "engine batch",
            model = %self.shared.labels.model,
            version = %self.shared.labels.version,
            requests = batch.len(),
            rows = tracing::field::Empty,
        );
        for request in batch {
            let waited = started.saturating_duration_since(request.enqueued_at);
            metrics.queue_duration.record(waited);
            self.shared.stats.queued(waited);
            if !span.is_disabled() {
                span.follows_from(&request.span);
            }
            total_rows += request.rows;
            rows.push(request.rows);
            replies.push(request.reply_tx);
            inputs.push(request.inputs);
        }
        self.shared.release(total_rows);
        span.record("rows", total_rows);
        let _entered = span.enter();

        if inputs.len() == 1 {
            let only = inputs.pop().unwrap_or_default();
            if let Some(reply_tx) = replies.pop() {
                self.run_alone(&only, reply_tx, total_rows, started);
            }
            return;
        }
        match join_rows(&inputs) {
            Ok(joined) => self.run_joined(&joined, replies, &rows, RunTimer::from(started)),
            // Requests that are each valid may still not stack (another
            // dynamic dimension differs): they run one at a time instead.
            Err(_) => {
                for ((request_inputs, reply_tx), rows) in inputs.into_iter().zip(replies).zip(rows)
                {
                    self.run_alone(&request_inputs, reply_tx, rows, Instant::now());
                }
            }
        }
    }

    /// Runs the stacked inputs of several requests once and answers each
    /// with its rows; `timer` started when the batch did.
    fn run_joined(
        &mut self,
        joined: &[Tensor],
        replies: Vec<ReplySender>,
        rows: &[usize],
        mut timer: RunTimer,
    ) {
        let total_rows = rows.iter().sum();
        timer.input_done();
        let ran = self.infer(joined, total_rows);
        timer.infer_done();
        match ran.and_then(|outputs| split_rows(outputs, rows, total_rows, &self.shared)) {
            Ok(per_request) => {
                // Counted before answering: whoever reads the statistics
                // after its answer finds its run in them.
                self.shared
                    .stats
                    .ran(total_rows, rows.len(), timer.finish());
                answer(replies, per_request.into_iter().map(Ok).collect());
            }
            Err(error) => answer(replies, vec![Err(error); rows.len()]),
        }
    }

    /// Runs one request's inputs on their own; its phases are timed from
    /// `started`.
    fn run_alone(
        &mut self,
        inputs: &[Tensor],
        reply_tx: ReplySender,
        rows: usize,
        started: Instant,
    ) {
        let mut timer = RunTimer::from(started);
        timer.input_done();
        let result = self.infer(inputs, rows);
        timer.infer_done();
        if result.is_ok() {
            self.shared.stats.ran(rows, 1, timer.finish());
        }
        let _ = reply_tx.send(result);
    }

    /// Runs one batch on the engine; an engine panic becomes an error for
    /// this batch and the runner is replaced with a fresh one.
    fn infer(&mut self, inputs: &[Tensor], rows: usize) -> Result<Vec<Tensor>, InferError> {
        let started = Instant::now();
        let runner = &mut self.runner;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| runner.infer(inputs)));
        let metrics = &self.shared.metrics;
        metrics.inference_duration.record(started.elapsed());
        metrics.batch_size.record(rows as f64);
        match outcome {
            Ok(Ok(outputs)) => match outputs
                .iter()
                .find(|output| element_count(&output.shape) != Some(output.data.len()))
            {
                // Slicing such a tensor would panic, and encoding it is wrong.
                Some(odd) => Err(self.shared.internal(format_args!(
                    "engine returned output '{}' with {} elements, which does not match its shape {:?}",
                    odd.name,
                    odd.data.len(),
                    odd.shape
                ))),
                None => Ok(outputs),
            },
            Ok(Err(error)) => {
                tracing::debug!(%error, rows, "batch failed");
                Err(self.shared.engine_error(error))
            }
            Err(payload) => {
                let message = ferroserve_backend::panic_message(payload.as_ref());
                tracing::error!(
                    model = %self.shared.labels.model,
                    version = %self.shared.labels.version,
                    panic = %message,
                    rows,
                    "engine panicked while running a batch"
                );
                self.replace_runner();
                Err(self.shared.internal(format_args!(
                    "engine panicked while running a batch of {rows} rows: {message}"
                )))
            }
        }
    }

    /// A runner that panicked may hold broken state; a fresh one is used
    /// when the engine can make one, else the old one is kept.
    fn replace_runner(&mut self) {
        match panic::catch_unwind(AssertUnwindSafe(|| self.model.runner())) {
            Ok(Ok(runner)) => self.runner = runner,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot replace the runner after a panic; keeping it");
            }
            Err(_) => tracing::warn!("creating a runner panicked; keeping the old one"),
        }
    }
}

/// Sends each request its result; a caller that left is skipped.
fn answer(replies: Vec<ReplySender>, results: Vec<Result<Vec<Tensor>, InferError>>) {
    for (reply_tx, result) in replies.into_iter().zip(results) {
        let _ = reply_tx.send(result);
    }
}

/// Stacks the requests' inputs, input by input, along the batch dimension.
fn join_rows(inputs: &[Vec<Tensor>]) -> Result<Vec<Tensor>, InferError> {
    let count = inputs.first().map_or(0, Vec::len);
    if inputs.iter().any(|request| request.len() != count) {
        return Err(InferError::internal(
            "requests in one batch have different numbers of inputs",
        ));
    }
    let mut parts = Vec::with_capacity(inputs.len());
    (0..count)
        .map(|index| {
            parts.clear();
            parts.extend(inputs.iter().map(|request| &request[index]));
            Tensor::concat_rows(&parts)
        })
        .collect()
}

/// Cuts every output back into one slice of rows per request.
fn split_rows(
    outputs: Vec<Tensor>,
    rows: &[usize],
    total_rows: usize,
    shared: &Shared,
) -> Result<Vec<Vec<Tensor>>, InferError> {
    if let Some(odd) = outputs
        .iter()
        .find(|output| output.shape.is_empty() || output.rows() != total_rows)
    {
        return Err(shared.internal(format_args!(
            "output '{}' has shape {:?}, whose first dimension is not the batch's {total_rows} rows, so it cannot be split between requests",
            odd.name, odd.shape
        )));
    }
    let mut start = 0;
    rows.iter()
        .map(|&count| {
            let end = start + count;
            let slices = outputs
                .iter()
                .map(|output| output.slice_rows(start, end))
                .collect();
            start = end;
            slices
        })
        .collect()
}
