//! Requests refused, dropped or failed: full queue, deadlines, callers that
//! left, engine errors and panics.

use super::*;

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

    release_first_then_serve_one_more(&batcher, &model, &gate_tx, first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_is_not_computed() {
    let (model, gate_tx) = gated(model());
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let abandoned = submit(&batcher, input(3, 7.0)).await;
    abandoned.abort();
    assert!(abandoned.await.expect_err("aborted").is_cancelled());

    release_first_then_serve_one_more(&batcher, &model, &gate_tx, first).await;
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
async fn a_malformed_engine_output_is_an_internal_error() {
    let (model, gate_tx) = gated(model());
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let bad = submit(&batcher, input(1, MALFORMED)).await;
    let innocent = submit(&batcher, input(1, 3.0)).await;
    for _ in 0..3 {
        gate_tx.send(()).expect("gate open");
    }
    finish(first).await.expect("first request succeeds");
    for task in [bad, innocent] {
        let err = finish(task).await.expect_err("malformed output");
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.message.contains("output 'y' with 0 elements"), "{err}");
    }
    // Alone too, where nothing needs splitting.
    let err = batcher
        .infer(input(1, MALFORMED), None)
        .await
        .expect_err("malformed");
    assert!(
        err.message.contains("does not match its shape [1, 2]"),
        "{err}"
    );
    assert_eq!(model.probe.batches(), vec![1, 2, 1]);
}

/// Opens the gate for the request occupying the engine and for one more,
/// and checks that only those two ran: the refused request never reached
/// the engine, and the batcher still serves.
async fn release_first_then_serve_one_more(
    batcher: &Batcher,
    model: &TestModel,
    gate_tx: &Sender<()>,
    first: RequestTask,
) {
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
