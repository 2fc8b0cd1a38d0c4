//! Starting, closing and dropping a batcher, and several instances.

use super::*;

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
