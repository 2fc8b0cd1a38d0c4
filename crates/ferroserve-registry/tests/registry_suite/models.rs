//! Registered models: create, get, list, search, tags, delete.

use std::collections::BTreeMap;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{ModelQuery, Registry, RegistryError, Stage};
use serde_json::json;

use crate::helpers::*;

pub(crate) async fn models_crud(reg: Registry, _url: String) {
    let tags = BTreeMap::from([("team".to_string(), "vision".to_string())]);
    let m = reg
        .create_model("iris", "flowers", tags, ACTOR)
        .await
        .expect("create");
    assert_eq!(m.name, "iris");
    let e = reg
        .create_model("iris", "again", BTreeMap::new(), ACTOR)
        .await
        .expect_err("duplicate");
    assert_eq!(e, RegistryError::ModelExists("iris".into()));
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let e = reg
        .create_model("bad name", "", BTreeMap::new(), ACTOR)
        .await
        .expect_err("invalid name");
    assert!(
        e.to_string()
            .starts_with("model name 'bad name' is invalid"),
        "{e}"
    );
    reg.create_model("mnist", "digits", BTreeMap::new(), ACTOR)
        .await
        .expect("create");

    assert_eq!(reg.get_model("iris").await.expect("get"), m);
    let e = reg.get_model("nope").await.expect_err("missing");
    assert_eq!(e.to_string(), "model 'nope' does not exist");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let names: Vec<_> = reg
        .list_models()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["iris", "mnist"]);

    let by_name = ModelQuery {
        name_contains: Some("nis".into()),
        ..ModelQuery::default()
    };
    let found = reg.search_models(&by_name).await.expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "mnist");
    let by_tag = ModelQuery {
        tags: BTreeMap::from([("team".to_string(), "vision".to_string())]),
        ..ModelQuery::default()
    };
    let found = reg.search_models(&by_tag).await.expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "iris");

    let after = reg
        .set_model_tag("mnist", "team", "vision", ACTOR)
        .await
        .expect("tag");
    assert_eq!(after.tags["team"], "vision");
    let ev = last_event(&reg, "mnist").await;
    assert_eq!(ev.action, "set_model_tag");
    assert_eq!(ev.before.expect("before")["tags"], json!({}));
    assert_eq!(ev.after.expect("after")["tags"], json!({"team": "vision"}));
    reg.delete_model_tag("mnist", "team", ACTOR)
        .await
        .expect("untag");
    let e = reg
        .delete_model_tag("mnist", "team", ACTOR)
        .await
        .expect_err("gone");
    assert_eq!(e.to_string(), "model 'mnist' has no tag 'team'");
    let d = reg
        .set_model_description("mnist", "handwritten digits", ACTOR)
        .await
        .expect("describe");
    assert_eq!(d.description, "handwritten digits");
    assert!(reg.set_model_tag("nope", "a", "b", ACTOR).await.is_err());
}

pub(crate) async fn delete_model_rules(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 2).await;
    reg.set_alias("iris", "champion", 2, ACTOR)
        .await
        .expect("alias");
    reg.transition_stage("iris", 2, Stage::Production, false, ACTOR)
        .await
        .expect("prod");
    let e = reg
        .delete_model("iris", ACTOR)
        .await
        .expect_err("in production");
    assert!(e.to_string().contains("version 2 is in Production"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        reg.list_versions("iris").await.expect("still there").len(),
        2
    );
    reg.transition_stage("iris", 2, Stage::Archived, false, ACTOR)
        .await
        .expect("archive");
    assert_eq!(reg.referenced_digests().await.expect("digests").len(), 2);
    reg.delete_model("iris", ACTOR).await.expect("delete");
    assert!(reg.get_model("iris").await.is_err());
    assert!(reg.referenced_digests().await.expect("digests").is_empty());
    let ev = last_event(&reg, "iris").await;
    assert_eq!(ev.action, "delete_model");
    assert_eq!(ev.before.expect("before")["versions"], json!([1, 2]));
    assert_eq!(ev.after, None);
    // The name is free again and numbering restarts.
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("recreate");
    assert_eq!(
        reg.create_version("iris", new_version(1), ACTOR)
            .await
            .expect("v1")
            .version,
        1
    );
    assert_eq!(
        reg.delete_model("nope", ACTOR).await.expect_err("missing"),
        RegistryError::ModelNotFound("nope".into())
    );
}
