//! Stage transitions, with and without archive_existing.

use ferroserve_core::ErrorKind;
use ferroserve_registry::{AuditFilter, Registry, Stage};
use serde_json::json;

use crate::helpers::*;

pub(crate) async fn stage_transitions(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 3).await;
    for stage in [
        Stage::Staging,
        Stage::Production,
        Stage::Archived,
        Stage::None,
        Stage::Production,
    ] {
        let v = reg
            .transition_stage("iris", 1, stage, false, ACTOR)
            .await
            .expect("transition");
        assert_eq!(v.stage, stage);
        assert_eq!(reg.get_version("iris", 1).await.expect("get").stage, stage);
        let ev = last_event(&reg, "iris").await;
        assert_eq!(ev.action, "transition_stage");
        assert_eq!(ev.after.expect("after")["stage"], stage.as_str());
    }
    // Without archive_existing, two versions can share a stage.
    reg.transition_stage("iris", 2, Stage::Production, false, ACTOR)
        .await
        .expect("v2 prod");
    assert_eq!(
        reg.get_version("iris", 1).await.expect("v1").stage,
        Stage::Production
    );
    assert_eq!(
        reg.latest_in_stage("iris", Stage::Production)
            .await
            .expect("latest"),
        Some(2)
    );

    // With it, the others move to Archived, each with an audit event.
    let before = reg
        .audit_events(&AuditFilter::default())
        .await
        .expect("audit")
        .len();
    reg.transition_stage("iris", 3, Stage::Production, true, ACTOR)
        .await
        .expect("v3 prod");
    for v in [1, 2] {
        assert_eq!(
            reg.get_version("iris", v).await.expect("get").stage,
            Stage::Archived
        );
    }
    assert_eq!(
        reg.get_version("iris", 3).await.expect("get").stage,
        Stage::Production
    );
    let events = reg
        .audit_events(&AuditFilter {
            after_id: Some(0),
            limit: Some(1000),
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    let new: Vec<_> = events[before..]
        .iter()
        .map(|e| (e.version, e.after.as_ref().expect("after")["stage"].clone()))
        .collect();
    assert_eq!(
        new,
        [
            (Some(1), json!("Archived")),
            (Some(2), json!("Archived")),
            (Some(3), json!("Production"))
        ]
    );

    // Staging with archive_existing leaves Production alone.
    reg.transition_stage("iris", 1, Stage::Staging, true, ACTOR)
        .await
        .expect("v1 staging");
    assert_eq!(
        reg.get_version("iris", 3).await.expect("get").stage,
        Stage::Production
    );

    // Only ready versions can be promoted; any can be archived.
    reg.create_version("iris", new_version(9), ACTOR)
        .await
        .expect("v4 pending");
    for stage in [Stage::Staging, Stage::Production] {
        let e = reg
            .transition_stage("iris", 4, stage, false, ACTOR)
            .await
            .expect_err("pending");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("is pending, not ready"), "{e}");
    }
    reg.transition_stage("iris", 4, Stage::Archived, true, ACTOR)
        .await
        .expect("archive pending");
    let e = reg
        .transition_stage("iris", 8, Stage::Staging, false, ACTOR)
        .await
        .expect_err("missing");
    assert_eq!(e.to_string(), "model 'iris' has no version 8");
}
