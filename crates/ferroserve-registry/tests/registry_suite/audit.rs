//! The audit log, and reconnecting to an existing registry.

use ferroserve_core::ErrorKind;
use ferroserve_registry::{AuditAction, AuditFilter, AuditOrder, Registry};
use serde_json::json;
use sqlx::Connection;

use crate::helpers::*;

pub(crate) async fn audit_log(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 2).await;
    model_with_ready_versions(&reg, "mnist", 1).await;
    reg.set_alias("iris", "champion", 2, "bob")
        .await
        .expect("alias");
    let all = reg
        .audit_events(&AuditFilter::default())
        .await
        .expect("all");
    // create_model + (create_version + mark_ready) per version, then the alias.
    assert_eq!(all.len(), 1 + 4 + 1 + 2 + 1);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let actions: Vec<_> = all
        .iter()
        .filter(|e| e.model == "iris")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "create_model",
            "create_version",
            "mark_version_ready",
            "create_version",
            "mark_version_ready",
            "set_alias"
        ]
    );
    let first = &all[0];
    assert_eq!(
        (
            first.before.clone(),
            first.after.as_ref().expect("after")["name"].clone()
        ),
        (None, json!("iris"))
    );
    let created = &all[1];
    assert_eq!(created.version, Some(1));
    assert_eq!(
        created.after.as_ref().expect("after")["artifact_digest"],
        digest(1)
    );
    for e in &all {
        assert!(e.before.is_some() || e.after.is_some(), "{e:?}");
        assert!(e.at > 0);
    }
    assert_eq!(all.last().expect("last").actor, "bob");

    let iris = AuditFilter {
        model: Some("mnist".into()),
        ..AuditFilter::default()
    };
    assert_eq!(reg.audit_events(&iris).await.expect("mnist").len(), 3);
    let page = AuditFilter {
        after_id: Some(all[2].id),
        limit: Some(2),
        ..AuditFilter::default()
    };
    let got: Vec<_> = reg
        .audit_events(&page)
        .await
        .expect("page")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(got, [all[3].id, all[4].id]);
    let future = AuditFilter {
        since: Some(all.last().expect("last").at + 60_000),
        ..AuditFilter::default()
    };
    assert!(reg.audit_events(&future).await.expect("none").is_empty());
    let since = AuditFilter {
        since: Some(all[0].at),
        ..AuditFilter::default()
    };
    assert_eq!(
        reg.audit_events(&since).await.expect("all").len(),
        all.len()
    );
}

pub(crate) async fn audit_pages_newest_first_with_a_cursor(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 3).await;
    model_with_ready_versions(&reg, "mnist", 1).await;
    let oldest_first = reg
        .audit_events(&AuditFilter {
            model: Some("iris".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("all");
    let ids: Vec<i64> = oldest_first.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 7);
    let mut filter = AuditFilter {
        order: AuditOrder::Desc,
        limit: Some(3),
        ..AuditFilter::default()
    };
    let mut newest_first = Vec::new();
    let mut remaining = Vec::new();
    loop {
        let page = reg.model_history("iris", &filter).await.expect("page");
        newest_first.extend(page.events.iter().map(|e| e.id));
        remaining.push(page.remaining);
        match page.next_cursor {
            Some(cursor) => filter.before_id = Some(cursor),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(newest_first, expected);
    assert_eq!(remaining, [4, 1, 0]);
    // Oldest first, from a cursor, and since a time.
    let page = reg
        .audit_page(&AuditFilter {
            model: Some("iris".into()),
            after_id: Some(ids[4]),
            ..AuditFilter::default()
        })
        .await
        .expect("after");
    assert_eq!(
        page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[5..]
    );
    assert_eq!((page.remaining, page.next_cursor), (0, None));
    let future = AuditFilter {
        since: Some(oldest_first[6].at + 60_000),
        ..AuditFilter::default()
    };
    let page = reg.model_history("iris", &future).await.expect("empty");
    assert!(page.events.is_empty() && page.remaining == 0);
    // A name that never had a model is not found; a deleted one keeps its
    // history.
    let err = reg
        .model_history("nope", &AuditFilter::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    reg.delete_model("mnist", ACTOR).await.expect("delete");
    let page = reg
        .model_history("mnist", &AuditFilter::default())
        .await
        .expect("kept");
    assert_eq!(page.events.last().expect("event").action, "delete_model");
}

pub(crate) async fn reconnect_keeps_data(reg: Registry, url: String) {
    model_with_ready_versions(&reg, "iris", 1).await;
    reg.set_alias("iris", "champion", 1, ACTOR)
        .await
        .expect("alias");
    if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().expect("path");
        let mode = sqlx::query_scalar::<_, String>("PRAGMA journal_mode")
            .fetch_one(&mut sqlx::AnyConnection::connect(&url).await.expect("connect"))
            .await;
        // The journal mode is stored in the file: a new connection sees it.
        assert_eq!(mode.expect("journal mode").to_lowercase(), "wal", "{file}");
    }
    reg.close().await;
    // Connecting again runs the migrations on an up-to-date schema: a no-op.
    let again = Registry::connect(&url).await.expect("reconnect");
    assert_eq!(
        again
            .resolve("models:/iris@champion")
            .await
            .expect("resolve")
            .version,
        1
    );
    assert_eq!(
        again
            .create_version("iris", new_version(2), ACTOR)
            .await
            .expect("v2")
            .version,
        2
    );
}

pub(crate) async fn recorded_events(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 1).await;
    let details = json!({"from": 1, "to": 2, "reason": "warm-up failed"});
    let ev = reg
        .record_event(
            "iris",
            Some(2),
            AuditAction::ServingFailed,
            details.clone(),
            "server",
        )
        .await
        .expect("record");
    assert_eq!(
        (
            ev.model.as_str(),
            ev.version,
            ev.action.as_str(),
            ev.actor.as_str()
        ),
        ("iris", Some(2), "serving_failed", "server")
    );
    assert_eq!((ev.before.clone(), ev.after.clone()), (None, Some(details)));
    assert_eq!(last_event(&reg, "iris").await, ev);

    // History outlives models: the model need not exist.
    let gone = reg
        .record_event(
            "retired",
            None,
            AuditAction::ServingSwapped,
            json!({}),
            "server",
        )
        .await
        .expect("no such model");
    assert!(gone.id > ev.id);
    assert_eq!(last_event(&reg, "retired").await, gone);

    for action in ["", "Serving", "serving-failed", &"a".repeat(65)] {
        let e = reg
            .record_event("iris", None, AuditAction::from(action), json!({}), "server")
            .await
            .expect_err(action);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{action}");
        assert!(e.to_string().starts_with("audit action"), "{e}");
    }
    let e = reg
        .record_event("a b", None, AuditAction::ServingFailed, json!({}), "server")
        .await
        .expect_err("bad model name");
    assert!(e.to_string().starts_with("model name 'a b'"), "{e}");
    assert_eq!(last_event(&reg, "iris").await, ev);
    // An action this build has no name for is kept as it was recorded.
    let other = reg
        .record_event(
            "iris",
            None,
            AuditAction::Other("retrained".into()),
            json!({}),
            "trainer",
        )
        .await
        .expect("record");
    let read = last_event(&reg, "iris").await;
    assert_eq!(read, other);
    assert_eq!(read.action, AuditAction::Other("retrained".into()));
    assert_eq!(read.action, "retrained");
}

pub(crate) async fn audit_pages_are_bounded_by_bytes(reg: Registry, _url: String) {
    // Five events of 3 MiB each: one page of "limit 100" holds what fits in
    // 8 MiB of snapshots, and the cursor goes on from its last event.
    let big = "x".repeat(3 * 1024 * 1024);
    for _ in 0..5 {
        reg.record_event(
            "big",
            None,
            AuditAction::ModelLoaded,
            json!({ "blob": big }),
            ACTOR,
        )
        .await
        .expect("event");
    }
    let filter = AuditFilter {
        model: Some("big".into()),
        limit: Some(100),
        order: AuditOrder::Asc,
        ..AuditFilter::default()
    };
    let page = reg.audit_page(&filter).await.expect("page");
    assert_eq!(page.events.len(), 2, "8 MiB hold two 3 MiB events");
    assert_eq!(page.remaining, 3);
    let next = AuditFilter {
        after_id: page.next_cursor,
        ..filter
    };
    let rest = reg.audit_page(&next).await.expect("page");
    assert_eq!((rest.events.len(), rest.remaining), (2, 1));
}
