//! Registered models: create, get, list, search, tags, delete.

use std::collections::BTreeMap;

use ferroserve_core::{ErrorKind, ModelPattern, Role};
use ferroserve_registry::{ModelQuery, NewApiKey, Registry, RegistryError, Stage};
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

/// Rows of `table` that belong to `model`.
async fn rows_of(url: &str, table: &str, model: &str) -> i64 {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE model = $1"
    ))
    .bind(model)
    .fetch_one(&mut conn)
    .await
    .expect("count")
    .try_get("n")
    .expect("n")
}

pub(crate) async fn rename_moves_the_model_and_refuses_while_it_runs(reg: Registry, url: String) {
    use crate::jobs::new_job;
    use crate::rollout_fixtures::{move_of, new_rollout};
    use ferroserve_registry::{AuditAction, RolloutState};

    model_with_ready_versions(&reg, "iris", 2).await;
    reg.create_model("mnist", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    reg.set_alias("iris", "champion", 2, ACTOR)
        .await
        .expect("alias");
    reg.set_serving_config("iris", json!({"serve": "latest"}), ACTOR)
        .await
        .expect("config");
    reg.add_window_part("iris", "1", "replica-a", 3, &json!({}))
        .await
        .expect("window part");
    let rollout = reg
        .start_rollout(new_rollout("iris", 1, 2))
        .await
        .expect("rollout");
    reg.create_job(new_job("job-1", "iris")).await.expect("job");

    let e = reg.rename_model("iris", "mnist", ACTOR).await.unwrap_err();
    assert!(e.to_string().contains("rollout"), "{e}");
    reg.move_rollout(
        rollout.id,
        move_of(
            &rollout,
            AuditAction::RolloutAborted,
            RolloutState::Aborted,
            0,
        ),
    )
    .await
    .expect("abort");
    let e = reg.rename_model("iris", "iris2", ACTOR).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("1 job(s) for it are queued"), "{e}");
    reg.cancel_job("job-1", ACTOR).await.expect("cancel");
    let e = reg.rename_model("iris", "mnist", ACTOR).await.unwrap_err();
    assert_eq!(e, RegistryError::ModelExists("mnist".into()));
    let e = reg
        .rename_model("iris", "bad name", ACTOR)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("model name 'bad name' is invalid"),
        "{e}"
    );
    let e = reg.rename_model("iris", "iris", ACTOR).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = reg.rename_model("nope", "other", ACTOR).await.unwrap_err();
    assert_eq!(e, RegistryError::ModelNotFound("nope".into()));
    // Refusals changed nothing.
    assert_eq!(reg.list_versions("iris").await.expect("versions").len(), 2);

    // Keys limited to the model by name follow it; wildcards stay.
    let limited = |name: &str, patterns: &[&str]| NewApiKey {
        name: name.into(),
        role: Role::Deployer,
        models: patterns
            .iter()
            .map(|p| ModelPattern::new(p).expect("pattern"))
            .collect(),
        expires_at: None,
    };
    for (name, patterns) in [
        ("by-name", &["iris", "wine-*"][..]),
        ("family", &["iri*"]),
        ("both", &["iris2", "iris"]),
        ("other", &["mnist"]),
    ] {
        reg.create_api_key(&limited(name, patterns), ACTOR)
            .await
            .expect("key");
    }

    let renamed = reg
        .rename_model("iris", "iris2", ACTOR)
        .await
        .expect("rename");
    assert_eq!(renamed.name, "iris2");
    let patterns: BTreeMap<String, Vec<String>> = reg
        .list_api_keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| (k.name, k.models.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(patterns["by-name"], ["iris2", "wine-*"]);
    assert_eq!(patterns["family"], ["iri*"]);
    assert_eq!(patterns["both"], ["iris2"]);
    assert_eq!(patterns["other"], ["mnist"]);
    assert_eq!(renamed.description, "test model");
    assert_eq!(
        reg.get_model("iris").await.unwrap_err(),
        RegistryError::ModelNotFound("iris".into())
    );
    let versions = reg.list_versions("iris2").await.expect("versions");
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.model.as_str(), v.version))
            .collect::<Vec<_>>(),
        [("iris2", 1), ("iris2", 2)]
    );
    assert_eq!(reg.aliases("iris2").await.expect("aliases")["champion"], 2);
    let config = reg
        .serving_config("iris2")
        .await
        .expect("config")
        .expect("set");
    assert_eq!(config.config, json!({"serve": "latest"}));
    let moved = reg
        .latest_rollout("iris2")
        .await
        .expect("rollouts")
        .expect("one");
    assert_eq!((moved.id, moved.state), (rollout.id, RolloutState::Aborted));
    assert_eq!(rows_of(&url, "monitor_window_parts", "iris2").await, 1);
    assert_eq!(rows_of(&url, "monitor_window_parts", "iris").await, 0);
    // The history stays where it happened; the rename is under both names.
    for name in ["iris", "iris2"] {
        let last = last_event(&reg, name).await;
        assert_eq!(last.action, "rename_model");
        assert_eq!(last.before.as_ref().expect("before")["name"], "iris");
        assert_eq!(last.after.as_ref().expect("after")["name"], "iris2");
        assert_eq!(
            last.after.as_ref().expect("after")["api_keys_moved"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }
    assert!(model_events(&reg, "iris")
        .await
        .iter()
        .any(|e| e.action == "create_version"));
    // Numbers go on from the renamed model's.
    let next = reg
        .create_version("iris2", new_version(3), ACTOR)
        .await
        .expect("version");
    assert_eq!(next.version, 3);
    // The old name is free.
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("the old name again");

    // A deleted model's pooled monitoring goes with it.
    reg.delete_model("iris2", ACTOR).await.expect("delete");
    assert_eq!(rows_of(&url, "monitor_window_parts", "iris2").await, 0);
}
