//! Batcher tests against a small in-process engine: a runner that doubles
//! its input, records the batches it sees, and can be held at a gate so a
//! queue builds up without relying on timing.

mod batching;
mod lifecycle;
mod refusals;

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
/// An input value that makes the engine return an output whose data does
/// not fill its shape.
const MALFORMED: f32 = -3.0;
/// Bound on every wait, only so a broken batcher fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// A request running as its own task.
type RequestTask = tokio::task::JoinHandle<Result<Vec<Tensor>, InferError>>;

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
        if values.contains(&MALFORMED) {
            let shape = inputs[0].shape.clone();
            let data = TensorData::Fp32(Vec::new());
            return Ok(vec![Tensor {
                name: "y".into(),
                shape,
                data,
            }]);
        }
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
async fn submit(batcher: &Batcher, inputs: Vec<Tensor>) -> RequestTask {
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
async fn occupy(batcher: &Batcher, probe: &Probe, rows: usize) -> RequestTask {
    let seen = probe.batches().len();
    let handle = batcher.clone();
    let task = tokio::spawn(async move { handle.infer(input(rows, 0.5), None).await });
    wait_for("the engine to start a batch", || {
        probe.batches().len() > seen
    })
    .await;
    task
}

async fn finish(task: RequestTask) -> Result<Vec<Tensor>, InferError> {
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("request answered")
        .expect("task did not panic")
}
