//! Versions: numbering, fields, status, tags, cards and profiles.

use std::collections::BTreeMap;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{AuditFilter, Registry, RegistryError, Stage, VersionStatus};
use serde_json::json;
use sqlx::Connection;

use crate::helpers::*;

pub(crate) async fn version_numbers_and_fields(reg: Registry, _url: String) {
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    let v1 = reg
        .create_version("iris", new_version(1), ACTOR)
        .await
        .expect("v1");
    assert_eq!(
        (v1.version, v1.stage, v1.status.clone()),
        (1, Stage::None, VersionStatus::Pending)
    );
    assert_eq!(v1.registered_by, ACTOR);
    let mut nv = new_version(2);
    nv.meta.lineage.parent_version = Some(1);
    let v2 = reg.create_version("iris", nv, ACTOR).await.expect("v2");
    assert_eq!(v2.version, 2);
    assert_eq!(reg.get_version("iris", 1).await.expect("get"), v1);
    let all = reg.list_versions("iris").await.expect("list");
    assert_eq!(all.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(all[1].meta.lineage.parent_version, Some(1));
    assert_eq!(all[1].meta.metrics["accuracy"], 0.97);
    assert_eq!(all[1].meta.model_card.as_deref(), Some("# Iris\nA forest."));

    // Versions are numbered per model.
    reg.create_model("other", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    let o1 = reg
        .create_version("other", new_version(3), ACTOR)
        .await
        .expect("o1");
    assert_eq!(o1.version, 1);

    let e = reg.get_version("iris", 7).await.expect_err("missing");
    assert_eq!(e.to_string(), "model 'iris' has no version 7");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = reg.get_version("nope", 1).await.expect_err("missing model");
    assert_eq!(e, RegistryError::ModelNotFound("nope".into()));
    let e = reg
        .create_version("nope", new_version(1), ACTOR)
        .await
        .expect_err("missing model");
    assert_eq!(e, RegistryError::ModelNotFound("nope".into()));
    assert!(reg.list_versions("nope").await.is_err());

    let mut bad = new_version(1);
    bad.artifact_digest = "xyz".into();
    let e = reg
        .create_version("iris", bad, ACTOR)
        .await
        .expect_err("bad digest");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let mut bad = new_version(1);
    bad.meta.metrics.insert("loss".into(), f64::NAN);
    let e = reg
        .create_version("iris", bad, ACTOR)
        .await
        .expect_err("nan metric");
    assert!(e.to_string().contains("metric 'loss'"), "{e}");
    let mut bad = new_version(1);
    bad.meta.lineage.parent_version = Some(9);
    let e = reg
        .create_version("iris", bad, ACTOR)
        .await
        .expect_err("bad parent");
    assert!(e.to_string().contains("parent_version 9"), "{e}");
    // Failed registrations consumed no version number.
    let v3 = reg
        .create_version("iris", new_version(4), ACTOR)
        .await
        .expect("v3");
    assert_eq!(v3.version, 3);
}

pub(crate) async fn concurrent_versions_get_distinct_numbers(reg: Registry, _url: String) {
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    let tasks: Vec<_> = (0..12u8)
        .map(|i| {
            let reg = reg.clone();
            tokio::spawn(async move { reg.create_version("iris", new_version(i), ACTOR).await })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.expect("task").expect("create version").version);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=12).collect::<Vec<i64>>());
}

pub(crate) async fn status_changes(reg: Registry, _url: String) {
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    reg.create_version("iris", new_version(1), ACTOR)
        .await
        .expect("v1");
    reg.create_version("iris", new_version(2), ACTOR)
        .await
        .expect("v2");
    let r = reg
        .mark_version_ready("iris", 1, ACTOR)
        .await
        .expect("ready");
    assert_eq!(r.status, VersionStatus::Ready);
    let f = reg
        .mark_version_failed("iris", 2, "bad ONNX: no graph", "verifier")
        .await
        .expect("failed");
    assert_eq!(
        f.status,
        VersionStatus::Failed {
            reason: "bad ONNX: no graph".into()
        }
    );
    assert_eq!(
        reg.get_version("iris", 2).await.expect("get").status,
        f.status
    );
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.actor.as_str(), ev.version),
        ("mark_version_failed", "verifier", Some(2))
    );
    assert_eq!(
        ev.before.expect("before")["status"],
        json!({"state": "pending"})
    );
    assert_eq!(
        ev.after.expect("after")["status"]["reason"],
        "bad ONNX: no graph"
    );
    let e = reg
        .mark_version_ready("iris", 2, ACTOR)
        .await
        .expect_err("failed stays failed");
    assert!(e.to_string().contains("is failed, not pending"), "{e}");
    assert!(reg.mark_version_ready("iris", 9, ACTOR).await.is_err());
}

pub(crate) async fn version_metadata(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 1).await;
    let v = reg
        .set_version_tag("iris", 1, "validated", "yes", ACTOR)
        .await
        .expect("tag");
    assert_eq!(v.meta.tags["validated"], "yes");
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        ev.after.expect("after")["tags"],
        json!({"validated": "yes"})
    );
    reg.delete_version_tag("iris", 1, "validated", ACTOR)
        .await
        .expect("untag");
    let e = reg
        .delete_version_tag("iris", 1, "validated", ACTOR)
        .await
        .expect_err("gone");
    assert_eq!(
        e.to_string(),
        "version 1 of model 'iris' has no tag 'validated'"
    );
    assert!(reg
        .set_version_tag("iris", 1, " ", "x", ACTOR)
        .await
        .is_err());

    let card = "# Iris v1\n\nTrained on 150 flowers.";
    let v = reg
        .set_model_card("iris", 1, Some(card.into()), ACTOR)
        .await
        .expect("card");
    assert_eq!(v.meta.model_card.as_deref(), Some(card));
    let profile = json!({"features": {"sepal_length": {"mean": 5.8, "histogram": [1, 2, 3]}}});
    reg.set_reference_profile("iris", 1, Some(profile.clone()), ACTOR)
        .await
        .expect("profile");
    let got = reg.get_version("iris", 1).await.expect("get");
    assert_eq!(got.meta.reference_profile, Some(profile.clone()));
    let ev = last_event(&reg, "iris").await;
    assert_eq!(ev.action, "set_reference_profile");
    assert_eq!(ev.before.expect("before")["reference_profile"], json!(null));
    assert_eq!(ev.after.expect("after")["reference_profile"], profile);
    assert!(reg.set_model_card("iris", 5, None, ACTOR).await.is_err());
}

pub(crate) async fn ready_versions(reg: Registry, _url: String) {
    reg.create_model("iris", "", BTreeMap::new(), ACTOR)
        .await
        .expect("create");
    let v1 = reg
        .create_ready_version("iris", new_version(1), "uploader")
        .await
        .expect("ready v1");
    assert_eq!(
        (v1.version, v1.stage, v1.status.clone()),
        (1, Stage::None, VersionStatus::Ready)
    );
    assert_eq!(reg.get_version("iris", 1).await.expect("get"), v1);
    // One event, which shows the version ready.
    let events = reg
        .audit_events(&AuditFilter {
            model: Some("iris".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create_model", "create_version"]);
    assert_eq!(
        events[1].after.as_ref().expect("after")["status"],
        json!({"state": "ready"})
    );
    assert_eq!(events[1].actor, "uploader");
    // Servable at once.
    assert_eq!(
        reg.resolve("models:/iris/latest").await.expect("latest"),
        v1
    );
    reg.transition_stage("iris", 1, Stage::Production, false, ACTOR)
        .await
        .expect("promote");
    let e = reg
        .mark_version_ready("iris", 1, ACTOR)
        .await
        .expect_err("not pending");
    assert!(e.to_string().contains("is ready, not pending"), "{e}");
    // Numbering and checks are shared with create_version.
    let v2 = reg
        .create_version("iris", new_version(2), ACTOR)
        .await
        .expect("pending v2");
    assert_eq!(v2.version, 2);
    let mut bad = new_version(3);
    bad.format = " ".into();
    let e = reg
        .create_ready_version("iris", bad, ACTOR)
        .await
        .expect_err("bad format");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        reg.create_ready_version("nope", new_version(1), ACTOR)
            .await
            .expect_err("missing model"),
        RegistryError::ModelNotFound("nope".into())
    );
}

pub(crate) async fn delete_version_rules(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 3).await;
    for (alias, version) in [("champion", 2), ("challenger", 2), ("stable", 1)] {
        reg.set_alias("iris", alias, version, ACTOR)
            .await
            .expect("alias");
    }
    reg.transition_stage("iris", 3, Stage::Production, false, ACTOR)
        .await
        .expect("prod");
    let e = reg
        .delete_version("iris", 3, ACTOR)
        .await
        .expect_err("in production");
    assert!(matches!(e, RegistryError::Conflict(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "version 3 of model 'iris' cannot be deleted: it is in Production \
         (transition it to Archived first)"
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);

    reg.delete_version("iris", 2, "bob").await.expect("delete");
    assert_eq!(
        reg.get_version("iris", 2).await.expect_err("gone"),
        RegistryError::VersionNotFound {
            model: "iris".into(),
            version: 2
        }
    );
    assert_eq!(
        reg.aliases("iris").await.expect("aliases"),
        BTreeMap::from([("stable".to_string(), 1)])
    );
    assert!(matches!(
        reg.resolve("models:/iris@champion").await,
        Err(RegistryError::AliasNotFound { .. })
    ));
    assert!(!reg
        .referenced_digests()
        .await
        .expect("digests")
        .contains(&digest(2)));
    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action.as_str(), ev.actor.as_str(), ev.version, &ev.after),
        ("delete_version", "bob", Some(2), &None)
    );
    let before = ev.before.expect("before");
    assert_eq!(before["version"], 2);
    assert_eq!(before["artifact_digest"], digest(2));
    assert_eq!(before["aliases"], json!(["challenger", "champion"]));

    // Numbers of deleted versions are never given again.
    let v4 = reg
        .create_version("iris", new_version(4), ACTOR)
        .await
        .expect("v4");
    assert_eq!(v4.version, 4);
    reg.delete_version("iris", 4, ACTOR)
        .await
        .expect("delete newest");
    let v5 = reg
        .create_version("iris", new_version(5), ACTOR)
        .await
        .expect("v5");
    assert_eq!(v5.version, 5);

    assert_eq!(
        reg.delete_version("iris", 2, ACTOR)
            .await
            .expect_err("already gone")
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        reg.delete_version("nope", 1, ACTOR)
            .await
            .expect_err("missing model"),
        RegistryError::ModelNotFound("nope".into())
    );
}

pub(crate) async fn unreadable_stored_fields_name_the_version(reg: Registry, url: String) {
    model_with_ready_versions(&reg, "iris", 2).await;
    let got = reg.get_version("iris", 1).await.expect("get");
    assert_eq!(got.signature, new_version(1).signature, "typed round trip");
    assert_eq!(got.engine_hint, new_version(1).engine_hint);
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    for (column, text, said) in [
        ("signature", "{\"inputs\": 3}", "signature"),
        (
            "feature_schema",
            "{\"features\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
            "appears twice",
        ),
        ("engine_hint", "cuda", "unknown engine \"cuda\""),
    ] {
        sqlx::query(&format!(
            "UPDATE model_versions SET {column} = $1 WHERE model = 'iris' AND version = 2"
        ))
        .bind(text)
        .execute(&mut conn)
        .await
        .expect("corrupt the row");
        let err = reg.get_version("iris", 2).await.expect_err(column);
        assert!(
            matches!(&err, RegistryError::UnreadableVersion { model, version: 2, field, .. }
                if model == "iris" && *field == column),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Internal);
        let message = err.to_string();
        assert!(
            message.starts_with("version 2 of model 'iris' has an unreadable")
                && message.contains(said),
            "{message}"
        );
        sqlx::query(&format!(
            "UPDATE model_versions SET {column} = NULL WHERE model = 'iris' AND version = 2"
        ))
        .execute(&mut conn)
        .await
        .expect("clear the column");
    }
    // Version 1 was never touched and still reads.
    assert_eq!(reg.get_version("iris", 1).await.expect("get"), got);
}
