//! Rollback targets and recovery of interrupted registrations.

use std::collections::BTreeMap;

use ferroserve_registry::{Registry, RegistryError, Stage, VersionStatus, INTERRUPTED_REASON};

use crate::helpers::*;

async fn to_production(reg: &Registry, model: &str, version: i64, archive_existing: bool) {
    reg.transition_stage(model, version, Stage::Production, archive_existing, ACTOR)
        .await
        .expect("to production");
}

pub(crate) async fn rollback_target_walks_production_history(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 4).await;
    assert_eq!(reg.rollback_target("iris").await.expect("none"), None);
    to_production(&reg, "iris", 1, true).await;
    // Only the current version has been in Production.
    assert_eq!(reg.rollback_target("iris").await.expect("none"), None);
    to_production(&reg, "iris", 2, true).await;
    assert_eq!(reg.rollback_target("iris").await.expect("v1"), Some(1));
    to_production(&reg, "iris", 3, true).await;
    assert_eq!(reg.rollback_target("iris").await.expect("v2"), Some(2));
    // Other stages are not Production history.
    reg.transition_stage("iris", 4, Stage::Staging, false, ACTOR)
        .await
        .expect("staging");
    assert_eq!(reg.rollback_target("iris").await.expect("v2"), Some(2));
    // A deleted version is skipped.
    reg.delete_version("iris", 2, ACTOR).await.expect("delete");
    assert_eq!(reg.rollback_target("iris").await.expect("v1"), Some(1));
    // Every version that was in Production is in it now.
    to_production(&reg, "iris", 1, false).await;
    assert_eq!(reg.rollback_target("iris").await.expect("none"), None);
    // After a rollback to v1, v3 is the way back.
    reg.transition_stage("iris", 3, Stage::Archived, false, ACTOR)
        .await
        .expect("archive v3");
    assert_eq!(reg.rollback_target("iris").await.expect("v3"), Some(3));
    assert_eq!(
        reg.rollback_target("nope").await.expect_err("missing"),
        RegistryError::ModelNotFound("nope".into())
    );

    // The history of a deleted model does not leak into a new model of
    // the same name.
    model_with_ready_versions(&reg, "gone", 2).await;
    to_production(&reg, "gone", 2, true).await;
    to_production(&reg, "gone", 1, true).await;
    assert_eq!(reg.rollback_target("gone").await.expect("v2"), Some(2));
    reg.transition_stage("gone", 1, Stage::Archived, false, ACTOR)
        .await
        .expect("archive");
    reg.delete_model("gone", ACTOR).await.expect("delete");
    model_with_ready_versions(&reg, "gone", 2).await;
    to_production(&reg, "gone", 1, true).await;
    assert_eq!(reg.rollback_target("gone").await.expect("none"), None);
}

pub(crate) async fn stale_pending_versions_fail(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 1).await;
    reg.create_model("mnist", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    for (model, n) in [("iris", 2), ("mnist", 3), ("mnist", 4)] {
        reg.create_version(model, new_version(n), ACTOR)
            .await
            .expect("pending version");
    }
    // Registrations that started within the last minute are left alone.
    assert!(reg
        .fail_stale_pending_versions(60_000, "recovery")
        .await
        .expect("none stale")
        .is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let events_before = event_count(&reg).await;
    let failed = reg
        .fail_stale_pending_versions(5, "recovery")
        .await
        .expect("stale");
    assert_eq!(
        failed,
        [
            ("iris".to_string(), 2),
            ("mnist".to_string(), 1),
            ("mnist".to_string(), 2)
        ]
    );
    let v = reg.get_version("mnist", 2).await.expect("get");
    assert_eq!(
        v.status,
        VersionStatus::Failed {
            reason: INTERRUPTED_REASON.into()
        }
    );
    assert_eq!(
        reg.get_version("iris", 1).await.expect("ready").status,
        VersionStatus::Ready
    );
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.actor.as_str(), ev.version),
        ("mark_version_failed", "recovery", Some(2))
    );
    let events_after = event_count(&reg).await;
    assert_eq!(events_after, events_before + 3);
    // Nothing is left to recover.
    assert!(reg
        .fail_stale_pending_versions(0, "recovery")
        .await
        .expect("again")
        .is_empty());
    let e = reg
        .fail_stale_pending_versions(-1, "recovery")
        .await
        .expect_err("negative");
    assert!(e.to_string().contains("must not be negative"), "{e}");
}
