//! Each replica's share of a rollout step's figures: kept apart per
//! replica and step, replaced whole, bounded, and dropped when the step is
//! left or the rollout ends.

use ferroserve_core::ErrorKind;
use ferroserve_registry::{AuditAction, Registry, RolloutState};
use serde_json::json;

use crate::rollout_fixtures::{move_of, started_iris_rollout, step_to};

/// Each replica's share of a step is kept apart and replaced whole; the
/// shares of other steps and rollouts are not mixed in.
pub(crate) async fn rollout_shares_per_replica_and_step(reg: Registry, _url: String) {
    let rollout = started_iris_rollout(&reg).await;
    assert_eq!(reg.rollout_shares(rollout.id, 0).await.expect("none"), []);
    for (replica, requests) in [("replica-b", 5), ("replica-a", 1), ("replica-a", 7)] {
        reg.put_rollout_share(rollout.id, 0, replica, &json!({"requests": requests}))
            .await
            .expect("share");
    }
    reg.put_rollout_share(rollout.id, 1, "replica-a", &json!({"requests": 100}))
        .await
        .expect("next step");
    assert_eq!(
        reg.rollout_shares(rollout.id, 0).await.expect("shares"),
        [
            ("replica-a".to_owned(), json!({"requests": 7})),
            ("replica-b".to_owned(), json!({"requests": 5})),
        ]
    );
    assert_eq!(
        reg.rollout_shares(rollout.id, 1)
            .await
            .expect("step 1")
            .len(),
        1
    );
    assert_eq!(
        reg.rollout_shares(rollout.id + 1, 0).await.expect("other"),
        []
    );

    // Moving on drops the shares of the step left; ending drops the rest.
    let stepped = step_to(&reg, &rollout, 1).await;
    assert_eq!(reg.rollout_shares(rollout.id, 0).await.expect("left"), []);
    assert_eq!(
        reg.rollout_shares(rollout.id, 1)
            .await
            .expect("running")
            .len(),
        1
    );
    reg.move_rollout(
        rollout.id,
        move_of(
            &stepped,
            AuditAction::RolloutAborted,
            RolloutState::Aborted,
            1,
        ),
    )
    .await
    .expect("abort");
    assert_eq!(reg.rollout_shares(rollout.id, 1).await.expect("ended"), []);

    let huge = json!({"latency_us": vec![[1_000_000u64, 1_000_000u64]; 20_000]});
    let e = reg
        .put_rollout_share(rollout.id, 0, "replica-a", &huge)
        .await
        .expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("at most"), "{e}");
    let e = reg
        .put_rollout_share(rollout.id, 0, "", &json!({}))
        .await
        .expect_err("no replica");
    assert!(e.to_string().contains("replica"), "{e}");
}
