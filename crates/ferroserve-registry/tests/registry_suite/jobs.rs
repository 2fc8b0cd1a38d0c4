//! The batch-job store: creating, claiming, checkpointing, cancelling,
//! finishing and cleaning up jobs.

use std::collections::BTreeMap;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{
    Job, JobCheckpointOutcome, JobFilter, JobOwner, JobProgress, JobState, NewJob, Registry,
    RegistryError,
};
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) fn new_job(id: &str, model: &str) -> NewJob {
    NewJob {
        id: id.into(),
        kind: "batch".into(),
        model: model.into(),
        version: Some("2".into()),
        spec: json!({"input": "s3://in/rows.csv", "output": "jsonl", "chunk": 100}),
        rows_total: None,
        actor: ACTOR.into(),
    }
}

pub(crate) fn owner(id: &str) -> JobOwner {
    JobOwner::new(id)
}

pub(crate) fn progress(rows_done: i64, rows_failed: i64, checkpoint: Value) -> JobProgress {
    JobProgress {
        rows_done,
        rows_failed,
        rows_total: None,
        checkpoint,
    }
}

pub(crate) async fn create(reg: &Registry, id: &str, model: &str) -> Job {
    reg.create_job(new_job(id, model))
        .await
        .expect("create job")
}

pub(crate) fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

pub(crate) async fn jobs_create_get_list(reg: Registry, _url: String) {
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create model");
    let before = event_count(&reg).await;
    let a = create(&reg, "job-a", "iris").await;
    assert_eq!(
        (
            a.kind.as_str(),
            a.model.as_str(),
            a.version.as_deref(),
            a.state,
            a.rows_done,
            a.rows_failed,
            &a.checkpoint,
            a.owner.as_deref(),
            a.started_at,
            a.finished_at,
            a.cancel_requested,
        ),
        (
            "batch",
            "iris",
            Some("2"),
            JobState::Queued,
            0,
            0,
            &json!({}),
            None,
            None,
            None,
            false
        )
    );
    assert!(a.created_at > 0 && a.updated_at == a.created_at);
    assert_eq!(reg.job("job-a").await.expect("get"), a);
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.version, ev.actor.as_str(), ev.before),
        ("create_job", Some(2), ACTOR, None)
    );
    assert_eq!(ev.after.expect("after")["spec"]["chunk"], 100);

    // A model the registry does not have (served from files) is accepted
    // and audited under its name.
    let mut b = new_job("job-b", "from files");
    b.kind = "infer".into();
    b.version = None;
    b.rows_total = Some(1);
    let b = reg
        .create_job(b)
        .await
        .expect("job of an unregistered model");
    assert_eq!((b.rows_total, b.version), (Some(1), None));
    assert_eq!(last_event(&reg, "from files").await.action, "create_job");
    let c = create(&reg, "job-c", "iris").await;
    assert_eq!(event_count(&reg).await, before + 3);

    let e = reg
        .create_job(new_job("job-a", "other"))
        .await
        .expect_err("duplicate id");
    assert_eq!(e, RegistryError::JobExists("job-a".into()));
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(reg.job("job-a").await.expect("kept"), a);
    let e = reg.job("nope").await.expect_err("missing");
    assert_eq!(e.to_string(), "job 'nope' does not exist");
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // Newest first, filtered, limited.
    let all = reg.list_jobs(&JobFilter::default()).await.expect("all");
    assert_eq!(ids(&all), ["job-c", "job-b", "job-a"]);
    let iris = JobFilter {
        model: Some("iris".into()),
        ..JobFilter::default()
    };
    assert_eq!(
        ids(&reg.list_jobs(&iris).await.expect("iris")),
        ["job-c", "job-a"]
    );
    reg.claim_job("job-c", &owner("runner-1"))
        .await
        .expect("claim")
        .expect("claimed");
    let running = JobFilter {
        state: Some(JobState::Running),
        ..JobFilter::default()
    };
    assert_eq!(
        ids(&reg.list_jobs(&running).await.expect("running")),
        ["job-c"]
    );
    let queued_iris = JobFilter {
        state: Some(JobState::Queued),
        model: Some("iris".into()),
        limit: 10,
    };
    assert_eq!(
        ids(&reg.list_jobs(&queued_iris).await.expect("queued iris")),
        ["job-a"]
    );
    let one = JobFilter {
        limit: 1,
        ..JobFilter::default()
    };
    assert_eq!(ids(&reg.list_jobs(&one).await.expect("one")), ["job-c"]);
    let e = reg
        .list_jobs(&JobFilter {
            limit: 0,
            ..JobFilter::default()
        })
        .await
        .expect_err("limit 0");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(c.state, JobState::Queued);
}

pub(crate) async fn job_validation(reg: Registry, _url: String) {
    let cases: Vec<(NewJob, &str)> = vec![
        (
            NewJob {
                id: String::new(),
                ..new_job("", "iris")
            },
            "job id '' is invalid: it must have 1 to 128 characters",
        ),
        (new_job(&"x".repeat(129), "iris"), "job id 'xxx"),
        (new_job("a b", "iris"), "character ' ' is not allowed"),
        (
            NewJob {
                kind: "stream".into(),
                ..new_job("j1", "iris")
            },
            "kind of job 'j1' is 'stream'; expected one of batch, infer",
        ),
        (
            NewJob {
                spec: json!([1]),
                ..new_job("j1", "iris")
            },
            "spec of job 'j1' must be a JSON object, not an array",
        ),
        (
            NewJob {
                spec: json!({"notes": "x".repeat(64 * 1024)}),
                ..new_job("j1", "iris")
            },
            "at most 65536 are allowed",
        ),
        (
            NewJob {
                rows_total: Some(-1),
                ..new_job("j1", "iris")
            },
            "rows_total of job 'j1' is -1; it must not be negative",
        ),
        (new_job("j1", " "), "model name ' ' is invalid"),
        (
            NewJob {
                version: Some(String::new()),
                ..new_job("j1", "iris")
            },
            "model version '' is invalid",
        ),
    ];
    for (job, message) in cases {
        let e = reg.create_job(job).await.expect_err(message);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(message), "{e} lacks {message}");
    }
    assert!(reg
        .list_jobs(&JobFilter::default())
        .await
        .expect("list")
        .is_empty());
    assert_eq!(event_count(&reg).await, 0);
}

pub(crate) async fn job_checkpoints(reg: Registry, _url: String) {
    create(&reg, "j1", "iris").await;
    let e = reg
        .checkpoint_job("j1", &owner("runner-a"), progress(1, 0, json!({})))
        .await
        .expect_err("queued job");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        "job 'j1' is not held by this runner: it is queued, not running; claim it before \
         it is checkpointed"
    );
    reg.claim_job("j1", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("claimed");

    let outcome = reg
        .checkpoint_job(
            "j1",
            &owner("runner-a"),
            JobProgress {
                rows_total: Some(1000),
                ..progress(100, 2, json!({"offset": 10, "bad_lines": [7, 9]}))
            },
        )
        .await
        .expect("first checkpoint");
    assert_eq!(outcome, JobCheckpointOutcome::Continue);
    let job = reg.job("j1").await.expect("get");
    assert_eq!(
        (
            job.rows_done,
            job.rows_failed,
            job.rows_total,
            job.checkpoint
        ),
        (
            100,
            2,
            Some(1000),
            json!({"offset": 10, "bad_lines": [7, 9]})
        )
    );

    // rows_total None keeps the stored total; equal rows_done is allowed.
    reg.checkpoint_job(
        "j1",
        &owner("runner-a"),
        progress(100, 3, json!({"offset": 11})),
    )
    .await
    .expect("same rows_done");
    let job = reg.job("j1").await.expect("get");
    assert_eq!(
        (job.rows_done, job.rows_failed, job.rows_total),
        (100, 3, Some(1000))
    );

    let e = reg
        .checkpoint_job(
            "j1",
            &owner("runner-a"),
            progress(99, 3, json!({"offset": 1})),
        )
        .await
        .expect_err("rows_done goes back");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "rows_done of job 'j1' cannot go back from 100 to 99"
    );
    let e = reg
        .checkpoint_job(
            "j1",
            &owner("runner-b"),
            progress(200, 3, json!({"offset": 20})),
        )
        .await
        .expect_err("not the owner");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(
        e.to_string().contains("runner runner-a holds it now"),
        "{e}"
    );
    let e = reg
        .checkpoint_job("j1", &owner("runner-a"), progress(200, 3, json!("offset")))
        .await
        .expect_err("not an object");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = reg
        .checkpoint_job("j1", &owner("runner-a"), progress(-1, 0, json!({})))
        .await
        .expect_err("negative");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = reg
        .checkpoint_job("nope", &owner("runner-a"), progress(1, 0, json!({})))
        .await
        .expect_err("missing");
    assert_eq!(e, RegistryError::JobNotFound("nope".into()));
    // Refused checkpoints changed nothing.
    let job = reg.job("j1").await.expect("get");
    assert_eq!(
        (job.rows_done, job.checkpoint),
        (100, json!({"offset": 11}))
    );

    reg.finish_job("j1", &owner("runner-a"), JobState::Succeeded, None)
        .await
        .expect("finish");
    let e = reg
        .checkpoint_job("j1", &owner("runner-a"), progress(1000, 3, json!({})))
        .await
        .expect_err("finished");
    assert_eq!(
        e.to_string(),
        "job 'j1' is not held by this runner: it already succeeded; it cannot be checkpointed"
    );
}

pub(crate) async fn job_cancels(reg: Registry, _url: String) {
    // Queued: cancelled at once, audited with before and after.
    create(&reg, "queued", "iris").await;
    let cancelled = reg
        .cancel_job("queued", "bob")
        .await
        .expect("cancel queued");
    assert_eq!(
        (cancelled.state, cancelled.cancel_requested),
        (JobState::Cancelled, true)
    );
    assert!(cancelled.finished_at.is_some());
    assert_eq!(reg.job("queued").await.expect("get"), cancelled);
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.actor.as_str()),
        ("cancel_job", "bob")
    );
    assert_eq!(ev.before.expect("before")["state"], "queued");
    assert_eq!(ev.after.expect("after")["state"], "cancelled");
    assert_eq!(
        reg.claim_job("queued", &owner("runner-a"))
            .await
            .expect("claim"),
        None
    );

    // Running: only flagged; the runner learns it at its next checkpoint
    // and finishes the job itself.
    create(&reg, "running", "iris").await;
    reg.claim_job("running", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("claimed");
    let flagged = reg
        .cancel_job("running", "bob")
        .await
        .expect("cancel running");
    assert_eq!(
        (flagged.state, flagged.cancel_requested, flagged.finished_at),
        (JobState::Running, true, None)
    );
    let events = event_count(&reg).await;
    let again = reg
        .cancel_job("running", "carol")
        .await
        .expect("cancel again");
    assert_eq!(again, flagged);
    assert_eq!(
        event_count(&reg).await,
        events,
        "a repeated cancel is not audited"
    );
    // The runner that takes the job up after its runner stopped sees the
    // request on its claim.
    reg.release_job("running", &owner("runner-a"))
        .await
        .expect("release");
    let reclaimed = reg
        .claim_job("running", &owner("runner-b"))
        .await
        .expect("re-claim")
        .expect("released job");
    assert!(reclaimed.cancel_requested);
    let outcome = reg
        .checkpoint_job(
            "running",
            &owner("runner-b"),
            progress(5, 0, json!({"offset": 5})),
        )
        .await
        .expect("checkpoint");
    assert_eq!(outcome, JobCheckpointOutcome::CancelRequested);
    let done = reg
        .finish_job("running", &owner("runner-b"), JobState::Cancelled, None)
        .await
        .expect("finish cancelled");
    assert_eq!((done.state, done.rows_done), (JobState::Cancelled, 5));

    // Finished: refused, naming the state.
    let e = reg
        .cancel_job("running", "bob")
        .await
        .expect_err("finished");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        "job 'running' already cancelled; only queued or running jobs can be cancelled"
    );
    create(&reg, "ok", "iris").await;
    reg.claim_job("ok", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("claimed");
    reg.finish_job("ok", &owner("runner-a"), JobState::Succeeded, None)
        .await
        .expect("finish");
    let e = reg.cancel_job("ok", "bob").await.expect_err("succeeded");
    assert!(
        e.to_string().starts_with("job 'ok' already succeeded"),
        "{e}"
    );
    let e = reg.cancel_job("nope", "bob").await.expect_err("missing");
    assert_eq!(e, RegistryError::JobNotFound("nope".into()));
}

pub(crate) async fn job_finishes(reg: Registry, _url: String) {
    create(&reg, "j1", "iris").await;
    let e = reg
        .finish_job("j1", &owner("runner-a"), JobState::Succeeded, None)
        .await
        .expect_err("never claimed");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    reg.claim_job("j1", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("claimed");
    let e = reg
        .finish_job("j1", &owner("runner-a"), JobState::Queued, None)
        .await
        .expect_err("not a finished state");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = reg
        .finish_job("j1", &owner("runner-b"), JobState::Failed, None)
        .await
        .expect_err("not the owner");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(reg.job("j1").await.expect("get").state, JobState::Running);

    reg.checkpoint_job(
        "j1",
        &owner("runner-a"),
        progress(7, 1, json!({"offset": 7})),
    )
    .await
    .expect("checkpoint");
    let failed = reg
        .finish_job(
            "j1",
            &owner("runner-a"),
            JobState::Failed,
            Some("line 8: 3 values, expected 4".into()),
        )
        .await
        .expect("fail");
    assert_eq!(
        (
            failed.state,
            failed.error.as_deref(),
            failed.rows_done,
            failed.owner.as_deref()
        ),
        (
            JobState::Failed,
            Some("line 8: 3 values, expected 4"),
            7,
            Some("runner-a")
        )
    );
    let finished_at = failed.finished_at.expect("finished_at");
    assert!(finished_at >= failed.started_at.expect("started_at"));
    assert_eq!(reg.job("j1").await.expect("get"), failed);
    let e = reg
        .finish_job("j1", &owner("runner-a"), JobState::Succeeded, None)
        .await
        .expect_err("already finished");
    assert_eq!(
        e.to_string(),
        "job 'j1' is not held by this runner: it already failed; it cannot be finished"
    );
    assert_eq!(reg.job("j1").await.expect("get").state, JobState::Failed);
}

pub(crate) async fn unfinished_and_cleanup(reg: Registry, _url: String) {
    for id in ["j1", "j2", "j3", "j4"] {
        create(&reg, id, "iris").await;
    }
    reg.claim_job("j3", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("claimed");
    reg.claim_job("j2", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("claimed");
    reg.finish_job("j2", &owner("runner-a"), JobState::Succeeded, None)
        .await
        .expect("finish");
    reg.cancel_job("j4", ACTOR).await.expect("cancel");
    let unfinished = reg.unfinished_jobs().await.expect("unfinished");
    assert_eq!(ids(&unfinished), ["j1", "j3"], "oldest first");
    assert_eq!(
        (unfinished[0].state, unfinished[1].state),
        (JobState::Queued, JobState::Running)
    );

    let earliest = reg
        .job("j2")
        .await
        .expect("j2")
        .finished_at
        .expect("finished");
    assert_eq!(
        reg.delete_finished_jobs(
            earliest.min(
                reg.job("j4")
                    .await
                    .expect("j4")
                    .finished_at
                    .expect("finished")
            )
        )
        .await
        .expect("nothing finished before"),
        0
    );
    let latest = reg
        .list_jobs(&JobFilter::default())
        .await
        .expect("list")
        .iter()
        .filter_map(|j| j.finished_at)
        .max()
        .expect("some finished");
    assert_eq!(
        reg.delete_finished_jobs(latest + 1).await.expect("delete"),
        2
    );
    let left = reg.list_jobs(&JobFilter::default()).await.expect("list");
    assert_eq!(ids(&left), ["j3", "j1"]);
    assert_eq!(reg.delete_finished_jobs(i64::MAX).await.expect("again"), 0);
    let e = reg.job("j2").await.expect_err("deleted");
    assert_eq!(e, RegistryError::JobNotFound("j2".into()));
    // A deleted id may be used again.
    create(&reg, "j2", "iris").await;
}
