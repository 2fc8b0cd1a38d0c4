//! Shadow lanes over real models from `examples/` and `testdata/`, served
//! by a model manager that allows fault injection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferroserve_backend::{EngineChoice, Engines};
use ferroserve_batcher::{BatcherConfig, Priority};
use ferroserve_core::{InferRequest, InferResponse, Tensor, TensorData};

use super::*;
use crate::guard::faults::{FaultSpec, LatencyFault};
use crate::repository::{single_file, ServingDefaults};
use crate::ModelSpec;

/// `file` (relative to the repository root) served as `name` version `version`.
fn spec(name: &str, version: &str, file: &str) -> ModelSpec {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let defaults = ServingDefaults {
        engine: EngineChoice::Auto,
        intra_op_threads: 1,
        batching: BatcherConfig::default(),
    };
    let mut spec = single_file(name, &root.join(file), &defaults).expect("a committed model");
    spec.version = version.to_string();
    spec
}

/// A manager serving `specs`, every one loaded.
async fn serve(specs: Vec<ModelSpec>) -> Arc<ModelManager> {
    let manager =
        Arc::new(ModelManager::new(Arc::new(Engines::discover(None))).with_fault_injection(true));
    for spec in specs {
        manager.load(spec).await.expect("the model loads");
    }
    manager
}

/// Iris served as version 1 (primary) and version 2 (shadow), the same model.
async fn iris_twice() -> Arc<ModelManager> {
    serve(vec![
        spec("iris", "1", "examples/iris/model.onnx"),
        spec("iris", "2", "examples/iris/model.onnx"),
    ])
    .await
}

fn served(manager: &ModelManager, model: &str, version: &str) -> Arc<ServedVersion> {
    manager.get(model, Some(version)).expect("served")
}

fn policy(version: i64, queue: usize) -> ShadowPolicy {
    ShadowPolicy {
        version,
        percent: 100.0,
        queue,
    }
}

/// The three classic iris rows, one of each class.
fn iris_rows() -> InferRequest {
    let values = vec![5.1, 3.5, 1.4, 0.2, 6.4, 3.2, 4.5, 1.5, 6.3, 3.3, 6.0, 2.5];
    InferRequest {
        inputs: vec![Tensor::new("input", vec![3, 4], TensorData::Fp32(values)).expect("tensor")],
        ..InferRequest::default()
    }
}

/// Four rows of five features for the regressors.
fn regression_rows() -> InferRequest {
    let values = (0..20).map(|i| (i as f32 - 10.0) / 4.0).collect();
    InferRequest {
        inputs: vec![Tensor::new("input", vec![4, 5], TensorData::Fp32(values)).expect("tensor")],
        ..InferRequest::default()
    }
}

async fn primary_answer(primary: &ServedVersion, request: &InferRequest) -> InferResponse {
    primary
        .infer(request.clone(), None, Priority::Online)
        .await
        .expect("the primary answers")
}

/// The lane's report once `done` holds (the worker runs on its own).
async fn report_when(lane: &ShadowLane, done: impl Fn(&ShadowReport) -> bool) -> ShadowReport {
    let waiting = async {
        loop {
            let report = lane.report();
            if done(&report) {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the shadow worker gets there")
}

/// Waits until `holds` is true of the strong count of `served`.
async fn strong_count_until(served: &Arc<ServedVersion>, holds: impl Fn(usize) -> bool) {
    let waiting = async {
        while !holds(Arc::strong_count(served)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the strong count gets there");
}

fn inject(served: &ServedVersion, spec: FaultSpec) {
    served
        .protection()
        .faults
        .as_ref()
        .expect("the manager allows fault injection")
        .set(Some(spec));
}

#[tokio::test]
async fn the_same_model_as_shadow_answers_every_copy_and_agrees_on_every_row() {
    let manager = iris_twice().await;
    let primary = served(&manager, "iris", "1");
    let lane = ShadowLane::new(
        "iris",
        served(&manager, "iris", "2"),
        &policy(2, 256),
        manager.clone(),
    );
    assert_eq!(lane.version(), "2");
    assert_eq!(lane.policy(), &policy(2, 256));
    assert!((0..1000).all(|_| lane.sampled()), "percent 100 samples all");
    let request = iris_rows();
    let answer = primary_answer(&primary, &request).await;
    for _ in 0..20 {
        lane.offer(request.clone(), &answer);
    }
    let report = report_when(&lane, |r| r.ok + r.errors == 20).await;
    assert_eq!((report.offered, report.dropped), (20, 0));
    assert_eq!((report.ok, report.errors, report.error_rate), (20, 0, 0.0));
    assert_eq!(
        report.comparison,
        ComparisonReport::Classification {
            rows: 60,
            agree: 60,
            agreement_rate: 1.0
        }
    );
    assert_eq!(report.incomparable, 0);
    assert_eq!((report.queue_capacity, report.queued_now), (256, 0));
    assert!(report.latency_ms.max > 0.0, "{:?}", report.latency_ms);
    assert!(report.latency_ms.p50 <= report.latency_ms.max);
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["comparison"]["kind"], "classification");
    assert_eq!(json["version"], 2);

    let rare = ShadowLane::new(
        "iris",
        served(&manager, "iris", "2"),
        &ShadowPolicy {
            percent: 1e-9,
            ..policy(2, 256)
        },
        manager.clone(),
    );
    assert!(
        (0..1000).all(|_| !rare.sampled()),
        "percent 1e-9 samples none"
    );
}

#[tokio::test]
async fn a_regressor_shadow_reports_absolute_and_relative_differences() {
    let manager = serve(vec![
        spec("price", "1", "testdata/models/gbr.onnx"),
        spec("price", "2", "testdata/models/hgbr.onnx"),
    ])
    .await;
    let primary = served(&manager, "price", "1");
    let request = regression_rows();
    let answer = primary_answer(&primary, &request).await;
    let same = ShadowLane::new("price", primary.clone(), &policy(1, 8), manager.clone());
    let other = ShadowLane::new(
        "price",
        served(&manager, "price", "2"),
        &policy(2, 8),
        manager.clone(),
    );
    for lane in [&same, &other] {
        for _ in 0..5 {
            lane.offer(request.clone(), &answer);
        }
    }
    let rows_of = |report: &ShadowReport| match report.comparison {
        ComparisonReport::Regression { rows, .. } => rows,
        _ => 0,
    };
    let same = report_when(&same, |r| rows_of(r) == 20).await;
    let ComparisonReport::Regression {
        abs_difference,
        rel_difference,
        ..
    } = same.comparison
    else {
        panic!("a regression comparison: {same:?}");
    };
    assert_eq!(abs_difference.max, 0.0);
    assert_eq!(rel_difference.max, 0.0);
    let other = report_when(&other, |r| rows_of(r) == 20).await;
    let ComparisonReport::Regression {
        abs_difference,
        rel_difference,
        ..
    } = other.comparison
    else {
        panic!("a regression comparison: {other:?}");
    };
    assert!(abs_difference.max > 0.0, "{abs_difference:?}");
    assert!(rel_difference.max > 0.0, "{rel_difference:?}");
    assert!(abs_difference.p50 <= abs_difference.p99);
    assert_eq!((other.ok, other.errors, other.incomparable), (5, 0, 0));
}

#[tokio::test]
async fn a_failing_shadow_counts_errors_and_offers_never_wait() {
    let manager = iris_twice().await;
    let primary = served(&manager, "iris", "1");
    let shadow = served(&manager, "iris", "2");
    inject(
        &shadow,
        FaultSpec {
            error_rate: 1.0,
            ..FaultSpec::default()
        },
    );
    let lane = ShadowLane::new("iris", shadow, &policy(2, 256), manager.clone());
    let request = iris_rows();
    let answer = primary_answer(&primary, &request).await;
    for _ in 0..10 {
        lane.offer(request.clone(), &answer);
    }
    // No await since the first offer: every one was settled on the spot.
    assert_eq!(lane.stats().offered(), 10);
    assert_eq!(lane.stats().queued() + lane.stats().dropped(), 10);
    let report = report_when(&lane, |r| r.ok + r.errors == 10).await;
    assert_eq!((report.ok, report.errors, report.error_rate), (0, 10, 1.0));
    assert_eq!(report.comparison, ComparisonReport::None);
    // The primary never saw the shadow's faults.
    let again = primary_answer(&primary, &request).await;
    assert_eq!(again.outputs, answer.outputs);
}

#[tokio::test]
async fn a_full_queue_drops_copies_instead_of_waiting() {
    let manager = iris_twice().await;
    let primary = served(&manager, "iris", "1");
    let shadow = served(&manager, "iris", "2");
    inject(
        &shadow,
        FaultSpec {
            latency: Some(LatencyFault::Fixed { ms: 300.0 }),
            error_rate: 0.0,
        },
    );
    let lane = ShadowLane::new("iris", shadow, &policy(2, 1), manager.clone());
    let request = iris_rows();
    let answer = primary_answer(&primary, &request).await;
    for _ in 0..6 {
        lane.offer(request.clone(), &answer);
    }
    // The test's runtime has one thread and nothing awaited since the
    // first offer, so the worker has not taken a copy yet: one fits the
    // queue, the others were dropped on the spot.
    let report = lane.report();
    assert_eq!((report.offered, report.dropped), (6, 5));
    assert_eq!((report.queue_capacity, report.queued_now), (1, 1));
    let report = report_when(&lane, |r| r.ok == 1).await;
    assert_eq!((report.dropped, report.errors), (5, 0));
}

#[tokio::test]
async fn dropping_the_lane_stops_its_worker_and_lets_the_version_go() {
    let manager = iris_twice().await;
    let primary = served(&manager, "iris", "1");
    let shadow = served(&manager, "iris", "2");
    inject(
        &shadow,
        FaultSpec {
            // Each copy then runs into the lane's 10 s deadline: a worker
            // that drained its 8 copies would hold the version for 80 s,
            // longer than the wait below; only one that stops at once
            // lets it go in time.
            latency: Some(LatencyFault::Fixed { ms: 120_000.0 }),
            error_rate: 0.0,
        },
    );
    let baseline = Arc::strong_count(&shadow);
    let lane = ShadowLane::new("iris", shadow.clone(), &policy(2, 8), manager.clone());
    assert_eq!(
        Arc::strong_count(&shadow),
        baseline,
        "an idle lane holds no strong reference"
    );
    let request = iris_rows();
    let answer = primary_answer(&primary, &request).await;
    for _ in 0..8 {
        lane.offer(request.clone(), &answer);
    }
    assert_eq!(lane.report().queued_now, 8);
    // The worker holds the version while a copy runs...
    strong_count_until(&shadow, |count| count > baseline).await;
    drop(lane);
    // ...and lets it go once the lane is dropped, with copies still queued.
    strong_count_until(&shadow, |count| count == baseline).await;
}

#[tokio::test]
async fn a_reloaded_shadow_version_is_looked_up_again() {
    let manager = iris_twice().await;
    let primary = served(&manager, "iris", "1");
    let first = served(&manager, "iris", "2");
    let first_weak = Arc::downgrade(&first);
    let lane = ShadowLane::new("iris", first, &policy(2, 8), manager.clone());
    manager
        .load(spec("iris", "2", "examples/iris/model.onnx"))
        .await
        .expect("reloads");
    // The displaced instance is retired and closed, then let go.
    let gone = async {
        while first_weak.upgrade().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), gone)
        .await
        .expect("the displaced version is let go");
    let request = iris_rows();
    let answer = primary_answer(&primary, &request).await;
    lane.offer(request, &answer);
    let report = report_when(&lane, |r| r.ok + r.errors == 1).await;
    assert_eq!((report.ok, report.errors), (1, 0));
}
