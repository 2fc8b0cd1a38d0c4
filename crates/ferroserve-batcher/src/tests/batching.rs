//! How requests are grouped into batches and how their rows come back.

use super::*;

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

/// Starts `count` one-row requests, one after another.
async fn trickle(batcher: &Batcher, count: usize) -> Vec<(usize, RequestTask)> {
    let mut tasks = Vec::new();
    for i in 0..count {
        let handle = batcher.clone();
        let task = tokio::spawn(async move { handle.infer(input(1, i as f32), None).await });
        tasks.push((i, task));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_delay_gathers_requests_until_the_batch_is_full() {
    let model = model();
    let config = BatcherConfig {
        max_batch_size: 4,
        // Far longer than the test: only a full batch can make it run.
        max_queue_delay_us: 10_000_000,
        ..BatcherConfig::default()
    };
    let batcher = start(&model, config);
    for (i, task) in trickle(&batcher, 4).await {
        let outputs = finish(task).await.expect("succeeds");
        assert_eq!(values(&outputs), vec![i as f32 * 2.0; 2]);
    }
    assert_eq!(model.probe.batches(), vec![4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preferred_size_runs_before_the_delay() {
    let model = model();
    let config = BatcherConfig {
        max_batch_size: 8,
        max_queue_delay_us: 10_000_000,
        preferred_batch_sizes: vec![3],
        ..BatcherConfig::default()
    };
    let batcher = start(&model, config);
    for (_, task) in trickle(&batcher, 3).await {
        finish(task).await.expect("succeeds");
    }
    assert_eq!(model.probe.batches(), vec![3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_requests_wait_until_online_ones_are_taken() {
    let (model, gate_tx) = gated(model());
    let batcher = start(&model, BatcherConfig::default());
    let first = occupy(&batcher, &model.probe, 1).await;
    let online_a = submit(&batcher, input(1, 1.0)).await;
    // A poll of the background request looks at the queue, where online
    // rows already wait: counting polls tells when it has looked.
    let polls = Arc::new(AtomicUsize::new(0));
    let background = {
        let batcher = batcher.clone();
        let polls = polls.clone();
        tokio::spawn(async move {
            let mut request = std::pin::pin!(batcher.infer_background(input(3, 7.0), None));
            std::future::poll_fn(|cx| {
                let poll = std::future::Future::poll(request.as_mut(), cx);
                polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                poll
            })
            .await
        })
    };
    let online_b = submit(&batcher, input(1, 2.0)).await;
    // The background request stays off the queue while online rows wait.
    wait_for("the background request to look at the queue", || {
        polls.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    assert_eq!(batcher.queue_depth(), 2);
    assert!(!background.is_finished());
    for _ in 0..3 {
        gate_tx.send(()).expect("gate open");
    }
    finish(first).await.expect("first request succeeds");
    finish(online_a).await.expect("online request succeeds");
    finish(online_b).await.expect("online request succeeds");
    let background = finish(background).await.expect("background succeeds");
    assert_eq!(values(&background), vec![14.0; 6]);
    assert_eq!(model.probe.batches(), vec![1, 2, 3]);
    assert_eq!(
        batcher.max_batch_rows(),
        BatcherConfig::default().max_batch_size
    );
}
