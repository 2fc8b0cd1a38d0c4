//! Who runs a job: claims, leases with their heartbeat and expiry, and
//! the refusals a runner gets once it no longer holds its job.

use ferroserve_core::ErrorKind;
use ferroserve_registry::{JobCheckpointOutcome, JobState, Registry, RegistryError};
use serde_json::json;

use crate::helpers::*;
use crate::jobs::{create, ids, owner, progress};

pub(crate) async fn job_claims(reg: Registry, url: String) {
    create(&reg, "j1", "iris").await;
    let claimed = reg
        .claim_job("j1", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("queued job is claimed");
    assert_eq!(
        (claimed.state, claimed.owner.as_deref()),
        (JobState::Running, Some("runner-a"))
    );
    let started = claimed.started_at.expect("started_at set");
    assert_eq!(
        reg.claim_job("j1", &owner("runner-b"))
            .await
            .expect("claim by b"),
        None
    );
    reg.checkpoint_job(
        "j1",
        &owner("runner-a"),
        progress(40, 1, json!({"offset": 4096})),
    )
    .await
    .expect("checkpoint");

    // "kill -9" and restart: a fresh connection and a new runner, which
    // must not take the job while runner-a's lease runs.
    let restarted = Registry::connect(&url).await.expect("reconnect");
    let unfinished = restarted.unfinished_jobs().await.expect("unfinished");
    assert_eq!(ids(&unfinished), ["j1"]);
    let lease = unfinished[0]
        .lease_expires_at
        .expect("a claimed job has a lease");
    assert!(lease > claimed.updated_at, "{lease}");
    assert_eq!(
        restarted
            .claim_job("j1", &owner("runner-c"))
            .await
            .expect("c"),
        None,
        "a live lease keeps the job with its holder"
    );
    // runner-a stops renewing: once its lease has run out, runner-c takes
    // the job, from its last checkpoint.
    let short = owner("runner-a").with_lease(std::time::Duration::from_millis(300));
    restarted
        .renew_job_lease("j1", &short)
        .await
        .expect("renew with a short lease");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let mut c = owner("runner-c");
    c.host = Some("host-c".into());
    c.pid = Some(42);
    let resumed = restarted
        .claim_job("j1", &c)
        .await
        .expect("re-claim")
        .expect("a job whose lease ran out is claimed");
    assert_eq!(
        (
            resumed.state,
            resumed.started_at,
            resumed.rows_done,
            resumed.rows_failed,
            resumed.checkpoint.clone(),
            resumed.owner.as_deref(),
            resumed.owner_host.as_deref(),
            resumed.owner_pid,
        ),
        (
            JobState::Running,
            Some(started),
            40,
            1,
            json!({"offset": 4096}),
            Some("runner-c"),
            Some("host-c"),
            Some(42),
        )
    );
    assert!(resumed.updated_at >= claimed.updated_at);
    assert_eq!(
        restarted
            .claim_job("j1", &owner("runner-b"))
            .await
            .expect("b"),
        None
    );
    // The runner that lost the job learns it, and can no longer write.
    let e = reg
        .checkpoint_job("j1", &owner("runner-a"), progress(50, 1, json!({})))
        .await
        .expect_err("runner-a lost the job");
    assert!(
        matches!(&e, RegistryError::JobLeaseLost { id, reason } if id == "j1" && reason.contains("runner-c (pid 42 on host-c)")),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let e = reg
        .renew_job_lease("j1", &owner("runner-a"))
        .await
        .expect_err("no renewal either");
    assert!(matches!(e, RegistryError::JobLeaseLost { .. }), "{e}");
    let e = reg
        .finish_job("j1", &owner("runner-a"), JobState::Failed, None)
        .await
        .expect_err("nor a finish");
    assert!(matches!(e, RegistryError::JobLeaseLost { .. }), "{e}");
    assert_eq!(reg.job("j1").await.expect("get").rows_done, 40);
    // Back to runner-a, the way a runner is released and reclaimed.
    restarted
        .release_job("j1", &owner("runner-c"))
        .await
        .expect("release");
    reg.claim_job("j1", &owner("runner-a"))
        .await
        .expect("claim")
        .expect("a released job is claimed at once");
    restarted.close().await;

    let e = reg
        .claim_job("nope", &owner("runner-a"))
        .await
        .expect_err("missing");
    assert_eq!(e, RegistryError::JobNotFound("nope".into()));
    let e = reg
        .claim_job("j1", &owner(""))
        .await
        .expect_err("blank owner");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    reg.finish_job("j1", &owner("runner-a"), JobState::Succeeded, None)
        .await
        .expect("finish");
    assert_eq!(
        reg.claim_job("j1", &owner("runner-a"))
            .await
            .expect("finished"),
        None
    );
    assert_eq!(reg.job("j1").await.expect("get").state, JobState::Succeeded);

    // Many runners race for one queued job: exactly one wins.
    create(&reg, "race", "iris").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let reg = reg.clone();
            tokio::spawn(async move { reg.claim_job("race", &owner(&format!("runner-{i}"))).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(job) = task.await.expect("join").expect("claim") {
            winners.push(job.owner.expect("owner"));
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        reg.job("race").await.expect("get").owner,
        Some(winners[0].clone())
    );
}

pub(crate) async fn job_leases(reg: Registry, _url: String) {
    use std::time::Duration;
    let a = owner("runner-a").with_lease(Duration::from_millis(600));
    let b = owner("runner-b");
    create(&reg, "j1", "iris").await;
    let claimed = reg
        .claim_job("j1", &a)
        .await
        .expect("claim")
        .expect("claimed");
    let first_lease = claimed.lease_expires_at.expect("lease");
    assert!(first_lease >= claimed.updated_at + 600, "{claimed:?}");

    // The heartbeat extends the lease: past the first lease's end, the job
    // is still held, because it was renewed meanwhile.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            reg.renew_job_lease("j1", &a).await.expect("renew"),
            JobCheckpointOutcome::Continue
        );
    }
    let renewed = reg.job("j1").await.expect("get").lease_expires_at;
    assert!(renewed.expect("lease") > first_lease + 500, "{renewed:?}");
    assert_eq!(reg.claim_job("j1", &b).await.expect("b"), None);

    // A checkpoint renews the lease too.
    tokio::time::sleep(Duration::from_millis(400)).await;
    reg.checkpoint_job("j1", &a, progress(10, 0, json!({"offset": 1})))
        .await
        .expect("checkpoint");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        reg.claim_job("j1", &b).await.expect("b"),
        None,
        "held thanks to the checkpoint"
    );

    // A runner proved gone is taken over at once, lease or not; a takeover
    // naming a runner that no longer holds the job does nothing.
    assert_eq!(
        reg.take_over_job("j1", &b, "runner-x").await.expect("x"),
        None
    );
    let taken = reg
        .take_over_job("j1", &b, "runner-a")
        .await
        .expect("take over")
        .expect("taken");
    assert_eq!(
        (taken.owner.as_deref(), taken.rows_done),
        (Some("runner-b"), 10)
    );
    let e = reg
        .checkpoint_job("j1", &a, progress(20, 0, json!({})))
        .await
        .expect_err("a is no longer the owner");
    assert!(matches!(e, RegistryError::JobLeaseLost { .. }), "{e}");
    assert_eq!(reg.job("j1").await.expect("get").rows_done, 10);

    // A cancel reaches the holder through its heartbeat.
    reg.cancel_job("j1", ACTOR).await.expect("cancel");
    assert_eq!(
        reg.renew_job_lease("j1", &b).await.expect("renew"),
        JobCheckpointOutcome::CancelRequested
    );
    let done = reg
        .finish_job("j1", &b, JobState::Cancelled, None)
        .await
        .expect("finish");
    assert_eq!(done.lease_expires_at, None, "a finished job holds no lease");
    let e = reg.renew_job_lease("j1", &b).await.expect_err("finished");
    assert!(matches!(e, RegistryError::JobLeaseLost { .. }), "{e}");
    let e = reg.renew_job_lease("nope", &b).await.expect_err("missing");
    assert_eq!(e, RegistryError::JobNotFound("nope".into()));
    let e = reg
        .claim_job("j1", &owner("runner-c").with_lease(Duration::ZERO))
        .await
        .expect_err("no lease");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
