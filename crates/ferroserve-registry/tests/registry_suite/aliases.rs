//! Aliases and resolution of models:/ URIs.

use std::collections::BTreeMap;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{Registry, RegistryError, Stage, VersionStatus};
use serde_json::json;

use crate::helpers::*;

pub(crate) async fn aliases_and_resolve(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 3).await;
    reg.set_alias("iris", "champion", 1, ACTOR)
        .await
        .expect("set");
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.before.clone(), ev.after.clone()),
        (
            "set_alias",
            None,
            Some(json!({"alias": "champion", "version": 1}))
        )
    );
    assert_eq!(
        reg.resolve("models:/iris@champion")
            .await
            .expect("resolve")
            .version,
        1
    );
    // The whole registry in one read each, as every model's own reads give it.
    model_with_ready_versions(&reg, "wine", 1).await;
    let all = reg.all_aliases().await.expect("all aliases");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all["iris"], reg.aliases("iris").await.expect("iris"));
    let versions = reg.all_versions().await.expect("all versions");
    let mut each = reg.list_versions("iris").await.expect("iris");
    each.extend(reg.list_versions("wine").await.expect("wine"));
    assert_eq!(versions, each);
    reg.set_alias("iris", "champion", 2, ACTOR)
        .await
        .expect("move");
    let ev = last_event(&reg, "iris").await;
    assert_eq!(ev.before, Some(json!({"alias": "champion", "version": 1})));
    assert_eq!(ev.after, Some(json!({"alias": "champion", "version": 2})));
    assert_eq!(
        reg.resolve("models:/iris@champion")
            .await
            .expect("resolve")
            .version,
        2
    );
    reg.set_alias("iris", "challenger", 3, ACTOR)
        .await
        .expect("set");
    assert_eq!(
        reg.aliases("iris").await.expect("aliases"),
        BTreeMap::from([("challenger".to_string(), 3), ("champion".to_string(), 2)])
    );
    reg.delete_alias("iris", "challenger", ACTOR)
        .await
        .expect("delete");
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.after.clone()),
        ("delete_alias", None)
    );
    assert_eq!(
        ev.before,
        Some(json!({"alias": "challenger", "version": 3}))
    );
    let e = reg
        .delete_alias("iris", "challenger", ACTOR)
        .await
        .expect_err("gone");
    assert_eq!(e.to_string(), "model 'iris' has no alias 'challenger'");
    let e = reg
        .resolve("models:/iris@challenger")
        .await
        .expect_err("gone");
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let e = reg
        .set_alias("iris", "x y", 1, ACTOR)
        .await
        .expect_err("invalid");
    assert!(
        e.to_string().starts_with("alias name 'x y' is invalid: "),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(reg.set_alias("iris", "latest", 1, ACTOR).await.is_err());
    let e = reg
        .set_alias("iris", "champion", 9, ACTOR)
        .await
        .expect_err("no version");
    assert_eq!(e.to_string(), "model 'iris' has no version 9");
    assert!(reg.set_alias("nope", "champion", 1, ACTOR).await.is_err());

    assert_eq!(
        reg.resolve("models:/iris/3")
            .await
            .expect("resolve")
            .version,
        3
    );
    assert_eq!(
        reg.resolve("models:/iris/latest")
            .await
            .expect("resolve")
            .version,
        3
    );
    // A pending version is not "latest".
    reg.create_version("iris", new_version(7), ACTOR)
        .await
        .expect("v4");
    assert_eq!(
        reg.resolve("models:/iris/latest")
            .await
            .expect("resolve")
            .version,
        3
    );
    let e = reg
        .resolve("models:/iris/Production")
        .await
        .expect_err("empty stage");
    assert_eq!(
        e.to_string(),
        "model 'iris' has no version in stage Production"
    );
    reg.transition_stage("iris", 1, Stage::Production, false, ACTOR)
        .await
        .expect("prod");
    reg.transition_stage("iris", 2, Stage::Production, false, ACTOR)
        .await
        .expect("prod");
    assert_eq!(
        reg.resolve("models:/iris/Production")
            .await
            .expect("resolve")
            .version,
        2
    );
    assert_eq!(
        reg.resolve("models:/iris/production")
            .await
            .expect("resolve")
            .version,
        2
    );
    assert_eq!(
        reg.resolve("models:/iris/4").await.expect("resolve").status,
        VersionStatus::Pending
    );
    assert_eq!(
        reg.resolve("models:/nope/1").await.expect_err("no model"),
        RegistryError::ModelNotFound("nope".into())
    );
    assert_eq!(
        reg.resolve("models:/nope/latest")
            .await
            .expect_err("no model"),
        RegistryError::ModelNotFound("nope".into())
    );
    assert_eq!(
        reg.resolve("models:/nope@champion")
            .await
            .expect_err("no model"),
        RegistryError::ModelNotFound("nope".into())
    );
    assert_eq!(
        reg.resolve("iris/1").await.expect_err("bad uri").kind(),
        ErrorKind::InvalidInput
    );
}
