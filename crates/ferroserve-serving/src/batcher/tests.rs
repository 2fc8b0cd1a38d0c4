//! Batcher tests against a small in-process engine: a runner that doubles
//! its input, records the batches it sees, and can be held at a gate so a
//! queue builds up without relying on timing.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use ferroserve_backend::{BackendError, LoadedModel, Runner};
use ferroserve_core::{DataType, Dim, ErrorKind, ModelSignature, TensorData, TensorSpec};

use super::*;

/// An input value that makes the engine return an error.
const FAIL: f32 = -1.0;
/// An input value that makes the engine panic.
const PANIC: f32 = -2.0;
/// Bound on every wait, only so a broken batcher fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// What the test engine saw, shared with the test.
#[derive(Clone, Default)]
struct Probe {
    /// Rows of every batch run, in order.
    batches: Arc<Mutex<Vec<usize>>>,
    /// Names of the threads that ran them.
    threads: Arc<Mutex<Vec<String>>>,
    /// Runners created.
    runners: Arc<AtomicUsize>,
}

impl Probe {
    fn batches(&self) -> Vec<usize> {
        self.batches.lock().expect("not poisoned").clone()
    }
}

#[derive(Clone)]
struct TestModel {
    signature: ModelSignature,
    probe: Probe,
    /// When set, every batch waits for one token before it runs.
    gate: Option<Receiver<()>>,
    fail_runner: bool,
    /// Return a single output row whatever the batch size.
    collapse_rows: bool,
}

struct TestRunner {
    model: TestModel,
}

impl LoadedModel for TestModel {
    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn engine(&self) -> &'static str {
        "test"
    }

    fn runner(&self) -> Result<Box<dyn Runner>, BackendError> {
        if self.fail_runner {
            return Err(BackendError::Load("no session for you".into()));
        }
        self.probe.runners.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(TestRunner {
            model: self.clone(),
        }))
    }
}

impl Runner for TestRunner {
    fn infer(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        let probe = &self.model.probe;
        probe
            .batches
            .lock()
            .expect("not poisoned")
            .push(inputs[0].rows());
        let name = std::thread::current().name().unwrap_or("").to_string();
        probe.threads.lock().expect("not poisoned").push(name);
        if let Some(gate) = &self.model.gate {
            let _ = gate.recv_timeout(PATIENCE);
        }
        let TensorData::Fp32(values) = &inputs[0].data else {
            return Err(BackendError::Input("expected FP32".into()));
        };
        if values.contains(&FAIL) {
            return Err(BackendError::Inference("the test engine refuses -1".into()));
        }
        assert!(!values.contains(&PANIC), "the test engine panics on -2");
        let doubled: Vec<f32> = values.iter().map(|v| v * 2.0).collect();
        let output = Tensor::new("y", inputs[0].shape.clone(), TensorData::Fp32(doubled))
            .map_err(|e| BackendError::Inference(e.message))?;
        if self.model.collapse_rows {
            return Ok(vec![output
                .slice_rows(0, 1)
                .map_err(|e| BackendError::Inference(e.message))?]);
        }
        Ok(vec![output])
    }
}

fn signature(batch_dim: Dim, inner_dim: Dim) -> ModelSignature {
    ModelSignature {
        inputs: vec![TensorSpec::new(
            "x",
            DataType::Fp32,
            vec![batch_dim, inner_dim],
        )],
        outputs: vec![TensorSpec::new(
            "y",
            DataType::Fp32,
            vec![batch_dim, inner_dim],
        )],
    }
}

fn model() -> TestModel {
    TestModel {
        signature: signature(Dim::Dynamic, Dim::Fixed(2)),
        probe: Probe::default(),
        gate: None,
        fail_runner: false,
        collapse_rows: false,
    }
}

/// A model whose batches wait at a gate; send one token per batch to let it run.
fn gated(mut model: TestModel) -> (TestModel, Sender<()>) {
    let (gate_tx, gate_rx) = crossbeam_channel::unbounded();
    model.gate = Some(gate_rx);
    (model, gate_tx)
}

fn start(model: &TestModel, config: BatcherConfig) -> Batcher {
    let labels = BatcherLabels {
        model: "m".into(),
        version: "1".into(),
    };
    Batcher::start(Arc::new(model.clone()), config, labels).expect("batcher starts")
}

/// `rows` rows of two values each, all equal to `value`.
fn input(rows: usize, value: f32) -> Vec<Tensor> {
    let data = TensorData::Fp32(vec![value; rows * 2]);
    vec![Tensor::new("x", vec![rows, 2], data).expect("valid tensor")]
}

fn values(outputs: &[Tensor]) -> Vec<f32> {
    match &outputs[0].data {
        TensorData::Fp32(values) => values.clone(),
        other => panic!("unexpected output {other:?}"),
    }
}

/// Polls `done` until it holds; panics after [`PATIENCE`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Starts `inputs` as a task and waits until its request is on the queue
/// (the worker must be held at the gate, or it may take it first).
async fn submit(
    batcher: &Batcher,
    inputs: Vec<Tensor>,
) -> tokio::task::JoinHandle<Result<Vec<Tensor>, InferError>> {
    let queued = batcher.inner.command_tx.len();
    let handle = batcher.clone();
    let task = tokio::spawn(async move { handle.infer(inputs, None).await });
    wait_for("the request to be queued", || {
        batcher.inner.command_tx.len() > queued
    })
    .await;
    task
}

/// Submits a request of `rows` rows that the worker takes and holds at the
/// gate, so that later requests stay on the queue.
async fn occupy(
    batcher: &Batcher,
    probe: &Probe,
    rows: usize,
) -> tokio::task::JoinHandle<Result<Vec<Tensor>, InferError>> {
    let seen = probe.batches().len();
    let handle = batcher.clone();
    let task = tokio::spawn(async move { handle.infer(input(rows, 0.5), None).await });
    wait_for("the engine to start a batch", || {
        probe.batches().len() > seen
    })
    .await;
    task
}

async fn finish(
    task: tokio::task::JoinHandle<Result<Vec<Tensor>, InferError>>,
) -> Result<Vec<Tensor>, InferError> {
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("request answered")
        .expect("task did not panic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_rows_back() {
    let model = model();
    let batcher = start(&model, BatcherConfig::default());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                let rows = 1 + i % 3;
                let outputs = batcher.infer(input(rows, i as f32), None).await;
                (rows, i as f32, outputs)
            })
        })
        .collect();
    for task in tasks {
        let (rows, value, outputs) = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("answered")
            .expect("task did not panic");
        let outputs = outputs.expect("inference succeeds");
        assert_eq!(outputs[0].shape, vec![rows, 2]);
        assert_eq!(values(&outputs), vec![value * 2.0; rows * 2]);
    }
    let total_rows: usize = (0..64).map(|i| 1 + i % 3).sum();
    assert_eq!(model.probe.batches().iter().sum::<usize>(), total_rows);
    assert_eq!(batcher.queue_depth(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_form_while_the_engine_is_busy() {
    let (model, gate_tx) = gated(model());
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let mut waiting = Vec::new();
    for i in 0..5 {
        waiting.push((i, submit(&batcher, input(1, i as f32)).await));
    }
    assert_eq!(batcher.queue_depth(), 5);
    gate_tx.send(()).expect("gate open");
    gate_tx.send(()).expect("gate open");
    finish(first).await.expect("first request succeeds");
    for (i, task) in waiting {
        assert_eq!(
            values(&finish(task).await.expect("succeeds")),
            vec![i as f32 * 2.0; 2]
        );
    }
    assert_eq!(model.probe.batches(), vec![1, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_max_batch_size_wait_for_the_next_batch() {
    let (model, gate_tx) = gated(model());
    let config = BatcherConfig {
        max_batch_size: 4,
        ..BatcherConfig::default()
    };
    let batcher = start(&model, config);
    let first = occupy(&batcher, &model.probe, 1).await;
    let mut waiting = Vec::new();
    for rows in [3, 2, 1, 9] {
        waiting.push((rows, submit(&batcher, input(rows, rows as f32)).await));
    }
    for _ in 0..4 {
        gate_tx.send(()).expect("gate open");
    }
    finish(first).await.expect("first request succeeds");
    for (rows, task) in waiting {
        let outputs = finish(task).await.expect("succeeds");
        assert_eq!(values(&outputs), vec![rows as f32 * 2.0; rows * 2]);
    }
    // In arrival order: 3 alone (2 does not fit), then 2 + 1, then the
    // oversize request alone.
    assert_eq!(model.probe.batches(), vec![1, 3, 3, 9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once() {
    let (model, gate_tx) = gated(model());
    let config = BatcherConfig {
        max_batch_size: 2,
        max_queue_size: 3,
        ..BatcherConfig::default()
    };
    let batcher = start(&model, config);
    let first = occupy(&batcher, &model.probe, 1).await;
    let queued = submit(&batcher, input(2, 1.0)).await;
    assert_eq!(batcher.queue_depth(), 2);

    let err = batcher
        .infer(input(2, 1.0), None)
        .await
        .expect_err("queue is full");
    assert_eq!(err.kind, ErrorKind::QueueFull);
    assert_eq!(
        err.message,
        "model m version 1: batch queue full (2 rows waiting, limit 3)"
    );
    let err = batcher
        .infer(input(4, 1.0), None)
        .await
        .expect_err("too large");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("request has 4 rows"), "{err}");
    // One more row still fits.
    let last = submit(&batcher, input(1, 1.0)).await;

    for _ in 0..3 {
        gate_tx.send(()).expect("gate open");
    }
    for task in [first, queued, last] {
        finish(task).await.expect("queued requests succeed");
    }
    assert_eq!(batcher.queue_depth(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_is_refused_without_inference() {
    let model = model();
    let batcher = start(&model, BatcherConfig::default());
    let past = Instant::now()
        .checked_sub(Duration::from_millis(5))
        .expect("the clock started more than 5 ms ago");
    let err = batcher
        .infer(input(1, 1.0), Some(past))
        .await
        .expect_err("late");
    assert_eq!(err.kind, ErrorKind::DeadlineExceeded);
    assert!(
        err.message.contains("waiting for model m version 1"),
        "{err}"
    );
    assert!(model.probe.batches().is_empty());
    assert_eq!(batcher.queue_depth(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_expires_in_the_queue_is_not_computed() {
    let (model, gate_tx) = gated(model());
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let deadline = Instant::now() + Duration::from_millis(20);
    let err = batcher
        .infer(input(1, 7.0), Some(deadline))
        .await
        .expect_err("the engine is held past the deadline");
    assert_eq!(err.kind, ErrorKind::DeadlineExceeded);
    assert!(err.message.starts_with("deadline exceeded after "), "{err}");

    gate_tx.send(()).expect("gate open");
    gate_tx.send(()).expect("gate open");
    finish(first).await.expect("first request succeeds");
    let later = batcher.infer(input(1, 1.0), None);
    tokio::time::timeout(PATIENCE, later)
        .await
        .expect("answered")
        .expect("succeeds");
    assert_eq!(model.probe.batches(), vec![1, 1]);
    assert_eq!(batcher.queue_depth(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_is_not_computed() {
    let (model, gate_tx) = gated(model());
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let abandoned = submit(&batcher, input(3, 7.0)).await;
    abandoned.abort();
    assert!(abandoned.await.expect_err("aborted").is_cancelled());

    gate_tx.send(()).expect("gate open");
    gate_tx.send(()).expect("gate open");
    finish(first).await.expect("first request succeeds");
    let later = batcher.infer(input(1, 1.0), None);
    tokio::time::timeout(PATIENCE, later)
        .await
        .expect("answered")
        .expect("succeeds");
    assert_eq!(model.probe.batches(), vec![1, 1]);
    assert_eq!(batcher.queue_depth(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_error_reaches_every_request_of_the_batch() {
    let (model, gate_tx) = gated(model());
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let bad = submit(&batcher, input(1, FAIL)).await;
    let innocent = submit(&batcher, input(1, 3.0)).await;
    for _ in 0..3 {
        gate_tx.send(()).expect("gate open");
    }
    finish(first).await.expect("first request succeeds");
    let bad = finish(bad).await.expect_err("engine error");
    let innocent = finish(innocent).await.expect_err("same batch, same error");
    assert_eq!(bad, innocent);
    assert_eq!(bad.kind, ErrorKind::Internal);
    assert_eq!(
        bad.message,
        "model m version 1: inference failed: the test engine refuses -1"
    );
    // The worker carries on.
    let outputs = batcher.infer(input(1, 3.0), None).await.expect("succeeds");
    assert_eq!(values(&outputs), vec![6.0; 2]);
    assert_eq!(model.probe.batches(), vec![1, 2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_panic_becomes_an_internal_error() {
    let model = model();
    let batcher = start(&model, BatcherConfig::default());
    let err = batcher
        .infer(input(2, PANIC), None)
        .await
        .expect_err("panics");
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(
        err.message
            .contains("engine panicked while running a batch of 2 rows"),
        "{err}"
    );
    assert!(
        err.message.contains("the test engine panics on -2"),
        "{err}"
    );
    // The worker survived, with a fresh runner.
    let outputs = batcher.infer(input(1, 4.0), None).await.expect("succeeds");
    assert_eq!(values(&outputs), vec![8.0; 2]);
    assert_eq!(model.probe.runners.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_that_cannot_be_split_fail_the_batch() {
    let (mut model, gate_tx) = gated(model());
    model.collapse_rows = true;
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let a = submit(&batcher, input(1, 1.0)).await;
    let b = submit(&batcher, input(2, 1.0)).await;
    gate_tx.send(()).expect("gate open");
    gate_tx.send(()).expect("gate open");
    finish(first).await.expect("a batch of one needs no split");
    for task in [a, b] {
        let err = finish(task).await.expect_err("cannot split");
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(
            err.message.contains(
                "output 'y' has shape [1, 2], whose first dimension is not the batch's 3 rows"
            ),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_do_not_stack_run_one_at_a_time() {
    let (mut model, gate_tx) = gated(model());
    model.signature = signature(Dim::Dynamic, Dim::Dynamic);
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let wide = Tensor::new("x", vec![1, 3], TensorData::Fp32(vec![1.0; 3])).expect("valid");
    let wide = submit(&batcher, vec![wide]).await;
    let narrow = submit(&batcher, input(2, 2.0)).await;
    for _ in 0..3 {
        gate_tx.send(()).expect("gate open");
    }
    finish(first).await.expect("succeeds");
    assert_eq!(finish(wide).await.expect("succeeds")[0].shape, vec![1, 3]);
    assert_eq!(
        values(&finish(narrow).await.expect("succeeds")),
        vec![4.0; 4]
    );
    assert_eq!(model.probe.batches(), vec![1, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbatched_model_runs_one_request_per_batch() {
    let (mut model, gate_tx) = gated(model());
    model.signature = signature(Dim::Fixed(1), Dim::Fixed(2));
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let mut waiting = Vec::new();
    for i in 0..3 {
        waiting.push((i, submit(&batcher, input(1, i as f32)).await));
    }
    assert_eq!(batcher.queue_depth(), 3);
    for _ in 0..4 {
        gate_tx.send(()).expect("gate open");
    }
    finish(first).await.expect("succeeds");
    for (i, task) in waiting {
        assert_eq!(
            values(&finish(task).await.expect("succeeds")),
            vec![i as f32 * 2.0; 2]
        );
    }
    assert_eq!(model.probe.batches(), vec![1, 1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_answers_queued_requests_then_workers_exit() {
    let (model, gate_tx) = gated(model());
    let config = BatcherConfig {
        max_batch_size: 4,
        max_queue_delay_us: 10_000_000,
        ..BatcherConfig::default()
    };
    let batcher = start(&model, config);
    // A full batch runs at once despite the delay, and holds the engine.
    let first = occupy(&batcher, &model.probe, 4).await;
    let queued = submit(&batcher, input(1, 1.0)).await;
    let also_queued = submit(&batcher, input(2, 2.0)).await;
    batcher.close();
    assert!(batcher.is_closed());
    let err = batcher
        .infer(input(1, 1.0), None)
        .await
        .expect_err("closed");
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(err.message.contains("shutting down"), "{err}");

    gate_tx.send(()).expect("gate open");
    gate_tx.send(()).expect("gate open");
    finish(first).await.expect("succeeds");
    // Closing sends what is waiting without waiting for the long delay.
    assert_eq!(
        values(&finish(queued).await.expect("answered")),
        vec![2.0; 2]
    );
    assert_eq!(
        values(&finish(also_queued).await.expect("answered")),
        vec![4.0; 4]
    );
    tokio::time::timeout(PATIENCE, batcher.shutdown())
        .await
        .expect("workers exit");
    assert_eq!(model.probe.batches(), vec![4, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_waits_for_every_instance() {
    let model = model();
    let config = BatcherConfig {
        instance_count: 2,
        ..BatcherConfig::default()
    };
    let batcher = start(&model, config);
    let other = batcher.clone();
    other.infer(input(1, 1.0), None).await.expect("succeeds");
    let joined = tokio::task::spawn_blocking(move || batcher.join());
    tokio::time::timeout(PATIENCE, joined)
        .await
        .expect("workers exit")
        .expect("join did not panic");
    assert!(other.is_closed());
    assert_eq!(model.probe.runners.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_workers() {
    let model = model();
    let batcher = start(&model, BatcherConfig::default());
    batcher.infer(input(1, 1.0), None).await.expect("succeeds");
    let workers = batcher.take_workers();
    drop(batcher.clone());
    drop(batcher);
    let joined = tokio::task::spawn_blocking(move || {
        workers.into_iter().all(|worker| worker.join().is_ok())
    });
    let clean = tokio::time::timeout(PATIENCE, joined)
        .await
        .expect("workers exit")
        .expect("join did not panic");
    assert!(clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_queue_on_named_threads() {
    let model = model();
    let config = BatcherConfig {
        instance_count: 2,
        ..BatcherConfig::default()
    };
    let batcher = start(&model, config);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let batcher = batcher.clone();
            tokio::spawn(async move { (i, batcher.infer(input(1, i as f32), None).await) })
        })
        .collect();
    for task in tasks {
        let (i, outputs) = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("answered")
            .expect("task did not panic");
        assert_eq!(values(&outputs.expect("succeeds")), vec![i as f32 * 2.0; 2]);
    }
    let threads = model.probe.threads.lock().expect("not poisoned").clone();
    assert!(
        threads
            .iter()
            .all(|name| name == "ferroserve-batch-m-1-0" || name == "ferroserve-batch-m-1-1"),
        "{threads:?}"
    );
}

#[test]
fn a_runner_that_cannot_be_created_fails_the_start() {
    let mut model = model();
    model.fail_runner = true;
    let labels = BatcherLabels {
        model: "m".into(),
        version: "1".into(),
    };
    let err =
        Batcher::start(Arc::new(model), BatcherConfig::default(), labels).expect_err("no runner");
    assert_eq!(
        err.message,
        "model m version 1: cannot load model: no session for you"
    );
}

#[test]
fn an_invalid_config_fails_the_start() {
    let config = BatcherConfig {
        preferred_batch_sizes: vec![64],
        ..BatcherConfig::default()
    };
    let labels = BatcherLabels {
        model: "m".into(),
        version: "1".into(),
    };
    let err = Batcher::start(Arc::new(model()), config, labels).expect_err("invalid");
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        err.message
            .starts_with("model m version 1: batcher: preferred_batch_sizes[0]"),
        "{err}"
    );
}
