//! A rollout's last gate check: one per rollout, replaced whole, bounded
//! (it goes with its model: `rollouts::rollouts_go_with_their_model`).

use ferroserve_core::ErrorKind;
use ferroserve_registry::Registry;
use serde_json::json;

use crate::rollout_fixtures::{started_iris_rollout, step_to};

/// The last check of each rollout is kept in place of the one before.
pub(crate) async fn rollout_checks_keep_the_last_per_rollout(reg: Registry, _url: String) {
    let rollout = started_iris_rollout(&reg).await;
    assert_eq!(reg.rollout_check(rollout.id).await.expect("none"), None);
    let gate = |failures: u32| json!([{"gate": "error_rate", "passed": failures == 0, "consecutive_failures": failures}]);
    reg.put_rollout_check(&rollout, &gate(1))
        .await
        .expect("first");
    let stepped = step_to(&reg, &rollout, 1).await;
    reg.put_rollout_check(&stepped, &gate(0))
        .await
        .expect("second");
    let kept = reg
        .rollout_check(rollout.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (kept.step, kept.moved_at, kept.gates),
        (1, stepped.updated_at, gate(0))
    );
    assert!(kept.checked_at > 0);
    assert_eq!(
        reg.rollout_check(rollout.id + 1).await.expect("other"),
        None
    );

    let huge = json!(vec!["a gate figure"; 30_000]);
    let e = reg
        .put_rollout_check(&stepped, &huge)
        .await
        .expect_err("too large");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("at most"), "{e}");
}
