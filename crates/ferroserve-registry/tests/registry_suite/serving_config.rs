//! Serving configuration revisions.

use std::collections::BTreeMap;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{Registry, RegistryError};
use serde_json::json;

use crate::helpers::*;

pub(crate) async fn serving_config_revisions(reg: Registry, _url: String) {
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    assert_eq!(reg.serving_config("iris").await.expect("none yet"), None);
    assert!(reg
        .serving_config_history("iris")
        .await
        .expect("history")
        .is_empty());

    let first = json!({"max_batch_size": 8});
    let r1 = reg
        .set_serving_config("iris", first.clone(), ACTOR)
        .await
        .expect("r1");
    assert_eq!(
        (
            r1.model.as_str(),
            r1.revision,
            &r1.config,
            r1.actor.as_str()
        ),
        ("iris", 1, &first, ACTOR)
    );
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.version, ev.before, ev.after),
        ("set_serving_config", None, None, Some(first.clone()))
    );

    let second = json!({"max_batch_size": 16, "canary": {"version": 2, "weight": 0.1}});
    let r2 = reg
        .set_serving_config("iris", second.clone(), "bob")
        .await
        .expect("r2");
    assert_eq!((r2.revision, r2.actor.as_str()), (2, "bob"));
    let ev = last_event(&reg, "iris").await;
    assert_eq!((ev.before, ev.after), (Some(first), Some(second)));
    assert_eq!(
        reg.serving_config("iris").await.expect("latest"),
        Some(r2.clone())
    );
    assert_eq!(
        reg.serving_config_history("iris").await.expect("history"),
        [r2, r1]
    );

    let e = reg
        .set_serving_config("iris", json!([1, 2]), ACTOR)
        .await
        .expect_err("not an object");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "serving config of model 'iris' must be a JSON object, not an array"
    );
    let big = json!({"notes": "x".repeat(64 * 1024)});
    let e = reg
        .set_serving_config("iris", big, ACTOR)
        .await
        .expect_err("too large");
    assert!(e.to_string().contains("at most 65536 are allowed"), "{e}");
    // Refused configurations consumed no revision.
    let r3 = reg
        .set_serving_config("iris", json!({}), ACTOR)
        .await
        .expect("r3");
    assert_eq!(r3.revision, 3);

    let missing = RegistryError::ModelNotFound("nope".into());
    assert_eq!(
        reg.set_serving_config("nope", json!({}), ACTOR)
            .await
            .expect_err("missing model"),
        missing
    );
    assert_eq!(
        reg.serving_config("nope").await.expect_err("missing"),
        missing
    );
    assert_eq!(
        reg.serving_config_history("nope")
            .await
            .expect_err("missing"),
        missing
    );

    // Deleting the model deletes its configuration, not its history.
    reg.delete_model("iris", ACTOR).await.expect("delete");
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("recreate");
    assert_eq!(reg.serving_config("iris").await.expect("fresh"), None);
    assert_eq!(
        reg.set_serving_config("iris", json!({"a": 1}), ACTOR)
            .await
            .expect("r1 again")
            .revision,
        1
    );
}

pub(crate) async fn concurrent_serving_configs_get_distinct_revisions(reg: Registry, _url: String) {
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let reg = reg.clone();
            tokio::spawn(async move {
                reg.set_serving_config("iris", json!({ "writer": i }), ACTOR)
                    .await
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for t in tasks {
        revisions.push(t.await.expect("task").expect("set config").revision);
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=8).collect::<Vec<i64>>());
    let history = reg.serving_config_history("iris").await.expect("history");
    assert_eq!(
        history.iter().map(|r| r.revision).collect::<Vec<_>>(),
        (1..=8).rev().collect::<Vec<i64>>()
    );
}
