//! Rollouts: one active per model, compare-and-set moves, decisions in
//! order (capped), audit events and model bumps in the same transaction,
//! gone with their model.

use ferroserve_core::ErrorKind;
use ferroserve_registry::api_keys::now_ms;
use ferroserve_registry::rollouts::{KEPT_FIRST_DECISIONS, MAX_ROLLOUT_DECISIONS};
use ferroserve_registry::{
    AuditAction, NewRollout, Registry, RegistryError, RolloutMove, RolloutState,
};
use serde_json::{json, Value};
use sqlx::{Connection, Row};

use crate::helpers::*;
use crate::rollout_fixtures::{move_of, new_rollout, settings, started_iris_rollout};

/// Waits until the registry's millisecond clock has moved past `t`, so
/// that the next write is stamped later than anything stamped at `t`.
async fn clock_past(t: i64) {
    while now_ms() <= t {
        tokio::task::yield_now().await;
    }
}

async fn rollout_events(reg: &Registry, model: &str) -> Vec<(String, Option<i64>, Value)> {
    model_events(reg, model)
        .await
        .into_iter()
        .filter(|e| e.action.as_str().starts_with("rollout_"))
        .map(|e| (e.action.to_string(), e.version, e.after.unwrap_or_default()))
        .collect()
}

pub(crate) async fn rollout_start_and_read(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 2).await;
    assert_eq!(reg.active_rollout("iris").await.expect("active"), None);
    assert_eq!(reg.latest_rollout("iris").await.expect("latest"), None);
    let before = reg.get_model("iris").await.expect("model");
    clock_past(before.updated_at).await;

    let started = reg
        .start_rollout(NewRollout {
            figures: json!({"stable_p99_ms": 3.1}),
            ..new_rollout("iris", 1, 2)
        })
        .await
        .expect("start");
    assert_eq!(
        (
            started.model.as_str(),
            started.stable_version,
            started.canary_version,
            started.state,
            started.step,
            &started.settings,
            started.created_by.as_str(),
        ),
        (
            "iris",
            1,
            2,
            RolloutState::Progressing,
            0,
            &settings(),
            ACTOR
        )
    );
    assert_eq!(started.step_started_at, started.created_at);
    assert_eq!(started.updated_at, started.created_at);
    assert_eq!(started.decisions.len(), 1);
    let first = &started.decisions[0];
    assert_eq!(
        (
            first.action.as_str(),
            first.reason.as_str(),
            &first.figures,
            first.actor.as_str(),
            first.at
        ),
        (
            "started",
            "started by an operator",
            &json!({"stable_p99_ms": 3.1}),
            ACTOR,
            started.created_at
        )
    );

    let active = reg.active_rollout("iris").await.expect("active");
    assert_eq!(active.as_ref(), Some(&started), "read back as started");
    let latest = reg.latest_rollout("iris").await.expect("latest");
    assert_eq!(latest.as_ref(), Some(&started));
    assert_eq!(
        reg.active_rollouts().await.expect("all active"),
        std::slice::from_ref(&started)
    );

    let after = reg.get_model("iris").await.expect("model");
    assert!(after.updated_at > before.updated_at, "model bumped");
    assert_eq!(after.updated_at, started.created_at);

    let ev = last_event(&reg, "iris").await;
    assert_eq!(
        (ev.action, ev.version, ev.actor.as_str()),
        (AuditAction::RolloutStarted, Some(2), ACTOR)
    );
    assert_eq!(
        ev.after,
        Some(json!({
            "rollout_id": started.id, "state": "progressing", "step": 0, "weight": 10,
            "reason": "started by an operator", "figures": {"stable_p99_ms": 3.1},
            "stable_version": 1, "settings": settings(),
        }))
    );

    let json = serde_json::to_value(&started).expect("serializes");
    assert_eq!(json["state"], "progressing");
    assert_eq!(json["decisions"][0]["action"], "started");

    let e = reg.active_rollout("nope").await.expect_err("no model");
    assert_eq!(e, RegistryError::ModelNotFound("nope".into()));
    let e = reg.latest_rollout("nope").await.expect_err("no model");
    assert_eq!(e, RegistryError::ModelNotFound("nope".into()));
}

pub(crate) async fn one_active_rollout_per_model(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 3).await;
    model_with_ready_versions(&reg, "wine", 2).await;
    let first = reg
        .start_rollout(new_rollout("iris", 1, 2))
        .await
        .expect("start");
    let events = event_count(&reg).await;
    let e = reg
        .start_rollout(new_rollout("iris", 1, 3))
        .await
        .expect_err("one is active");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let text = e.to_string();
    for part in [
        "model 'iris'",
        &format!("rollout {}", first.id),
        "version 2",
        "progressing",
        "abort it or let it finish",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    assert_eq!(
        event_count(&reg).await,
        events,
        "a refused start writes nothing"
    );

    let paused = reg
        .move_rollout(
            first.id,
            move_of(&first, AuditAction::RolloutPaused, RolloutState::Paused, 0),
        )
        .await
        .expect("pause");
    let e = reg
        .start_rollout(new_rollout("iris", 1, 3))
        .await
        .expect_err("a paused rollout is active");
    assert!(e.to_string().contains("is paused at step 0"), "{e}");

    let wine = reg
        .start_rollout(new_rollout("wine", 1, 2))
        .await
        .expect("another model's rollout");
    let all = reg.active_rollouts().await.expect("all active");
    assert_eq!(
        all.iter()
            .map(|r| (r.model.as_str(), r.id))
            .collect::<Vec<_>>(),
        [("iris", first.id), ("wine", wine.id)]
    );

    let aborted = reg
        .move_rollout(
            first.id,
            move_of(
                &paused,
                AuditAction::RolloutAborted,
                RolloutState::Aborted,
                0,
            ),
        )
        .await
        .expect("abort");
    assert_eq!(aborted.state, RolloutState::Aborted);
    assert_eq!(reg.active_rollout("iris").await.expect("active"), None);
    assert_eq!(
        reg.latest_rollout("iris")
            .await
            .expect("latest")
            .map(|r| r.id),
        Some(first.id)
    );

    let second = reg
        .start_rollout(new_rollout("iris", 1, 3))
        .await
        .expect("allowed once the first ended");
    assert!(second.id > first.id);
    assert_eq!(
        reg.latest_rollout("iris").await.expect("latest"),
        Some(second.clone())
    );
    assert_eq!(
        reg.active_rollout("iris").await.expect("active"),
        Some(second.clone())
    );

    // Starts at once: exactly one wins, the others are conflicts.
    reg.move_rollout(
        second.id,
        move_of(
            &second,
            AuditAction::RolloutAborted,
            RolloutState::Aborted,
            0,
        ),
    )
    .await
    .expect("abort");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let reg = reg.clone();
            tokio::spawn(async move { reg.start_rollout(new_rollout("iris", 1, 2)).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(won, 1);
}

pub(crate) async fn rollout_moves_compare_and_set(reg: Registry, _url: String) {
    let started = started_iris_rollout(&reg).await;
    let stepped = reg
        .move_rollout(
            started.id,
            move_of(
                &started,
                AuditAction::RolloutStepped,
                RolloutState::Progressing,
                1,
            ),
        )
        .await
        .expect("step");
    let events = event_count(&reg).await;

    // A server that still saw step 0 decides on old figures.
    let e = reg
        .move_rollout(
            started.id,
            move_of(
                &started,
                AuditAction::RolloutStepped,
                RolloutState::Progressing,
                1,
            ),
        )
        .await
        .expect_err("stale step");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!(
            "rollout {} of model 'iris' moved: it was expected progressing at step 0, and is \
             now progressing at step 1; read it again before deciding",
            started.id
        )
    );
    let stale_state = RolloutMove {
        from_state: RolloutState::Paused,
        ..move_of(
            &stepped,
            AuditAction::RolloutResumed,
            RolloutState::Progressing,
            1,
        )
    };
    let e = reg
        .move_rollout(started.id, stale_state)
        .await
        .expect_err("stale state");
    assert!(
        e.to_string()
            .contains("expected paused at step 1, and is now progressing at step 1"),
        "{e}"
    );
    assert_eq!(
        event_count(&reg).await,
        events,
        "refused moves write nothing"
    );
    assert_eq!(
        reg.active_rollout("iris").await.expect("active"),
        Some(stepped.clone())
    );

    // Moves at once from the same place: exactly one wins.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let reg = reg.clone();
            let change = move_of(
                &stepped,
                AuditAction::RolloutPaused,
                RolloutState::Paused,
                1,
            );
            tokio::spawn(async move { reg.move_rollout(stepped.id, change).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(e) => assert!(e.to_string().contains("moved"), "{e}"),
        }
    }
    assert_eq!(won, 1);
    let paused = reg
        .active_rollout("iris")
        .await
        .expect("active")
        .expect("still active");
    assert_eq!(paused.decisions.len(), 3, "started, stepped, paused");

    let done = reg
        .move_rollout(
            paused.id,
            move_of(
                &paused,
                AuditAction::RolloutCompleted,
                RolloutState::Completed,
                2,
            ),
        )
        .await
        .expect("complete");
    let e = reg
        .move_rollout(
            done.id,
            move_of(
                &done,
                AuditAction::RolloutResumed,
                RolloutState::Progressing,
                2,
            ),
        )
        .await
        .expect_err("ended");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("has ended (completed)"), "{e}");

    let e = reg
        .move_rollout(
            done.id + 1000,
            move_of(&done, AuditAction::RolloutAborted, RolloutState::Aborted, 2),
        )
        .await
        .expect_err("unknown id");
    assert_eq!(e, RegistryError::RolloutNotFound(done.id + 1000));
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

pub(crate) async fn rollout_steps_decisions_and_audit(reg: Registry, _url: String) {
    let started = started_iris_rollout(&reg).await;
    let plan = [
        (AuditAction::RolloutStepped, RolloutState::Progressing, 1),
        (AuditAction::RolloutPaused, RolloutState::Paused, 1),
        (AuditAction::RolloutResumed, RolloutState::Progressing, 1),
        (
            AuditAction::RolloutAwaitingApproval,
            RolloutState::AwaitingApproval,
            1,
        ),
        (AuditAction::RolloutCompleted, RolloutState::Completed, 2),
    ];
    let mut current = started.clone();
    for (action, state, step) in plan.clone() {
        let model_before = reg.get_model("iris").await.expect("model");
        clock_past(current.updated_at.max(model_before.updated_at)).await;
        let moved = reg
            .move_rollout(current.id, move_of(&current, action.clone(), state, step))
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        assert_eq!((moved.state, moved.step), (state, step), "{action}");
        assert!(moved.updated_at > current.updated_at, "{action}");
        if step == current.step {
            assert_eq!(
                moved.step_started_at, current.step_started_at,
                "{action} keeps the step's start"
            );
        } else {
            assert_eq!(
                moved.step_started_at, moved.updated_at,
                "{action} starts the step now"
            );
            assert!(moved.step_started_at > current.step_started_at);
        }
        let model_after = reg.get_model("iris").await.expect("model");
        assert_eq!(
            model_after.updated_at, moved.updated_at,
            "{action} bumps the model"
        );
        let ev = last_event(&reg, "iris").await;
        assert_eq!(
            (&ev.action, ev.version, ev.actor.as_str()),
            (&action, Some(2), "server-a")
        );
        assert_eq!(
            ev.before,
            Some(json!({"rollout_id": current.id, "state": current.state, "step": current.step}))
        );
        current = moved;
    }

    let stored = reg
        .latest_rollout("iris")
        .await
        .expect("latest")
        .expect("one rollout");
    assert_eq!(
        stored, current,
        "what move_rollout returns is what is stored"
    );
    assert_eq!(
        stored
            .decisions
            .iter()
            .map(|d| (d.action.as_str(), d.actor.as_str()))
            .collect::<Vec<_>>(),
        [
            ("started", ACTOR),
            ("stepped", "server-a"),
            ("paused", "server-a"),
            ("resumed", "server-a"),
            ("awaiting_approval", "server-a"),
            ("completed", "server-a"),
        ]
    );
    assert!(stored.decisions.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(stored.decisions[1].figures, json!({"step": 1}));
    assert_eq!(stored.decisions[5].reason, "to completed at step 2");
    assert_eq!(stored.decisions[5].at, stored.updated_at);

    let events = rollout_events(&reg, "iris").await;
    assert_eq!(
        events
            .iter()
            .map(|(a, _, _)| a.as_str())
            .collect::<Vec<_>>(),
        [
            "rollout_started",
            "rollout_stepped",
            "rollout_paused",
            "rollout_resumed",
            "rollout_awaiting_approval",
            "rollout_completed",
        ]
    );
    assert!(events.iter().all(|(_, version, _)| *version == Some(2)));
    assert_eq!(
        events[1].2,
        json!({"rollout_id": started.id, "state": "progressing", "step": 1, "weight": 50,
               "reason": "to progressing at step 1", "figures": {"step": 1}})
    );
    assert_eq!(events[2].2["weight"], 50, "a paused canary keeps its share");
    assert!(
        events[5].2.get("weight").is_none(),
        "an ended rollout has no weight"
    );
}

pub(crate) async fn rollout_validation(reg: Registry, _url: String) {
    model_with_ready_versions(&reg, "iris", 2).await;
    let events = event_count(&reg).await;
    let e = reg
        .start_rollout(new_rollout("iris", 2, 2))
        .await
        .expect_err("canary is stable");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(
        e.to_string().contains("version 2 is the stable version"),
        "{e}"
    );
    let e = reg
        .start_rollout(new_rollout("iris", 1, 9))
        .await
        .expect_err("no such canary");
    assert_eq!(
        e,
        RegistryError::VersionNotFound {
            model: "iris".into(),
            version: 9
        }
    );
    let e = reg
        .start_rollout(new_rollout("iris", 7, 2))
        .await
        .expect_err("no such stable");
    assert_eq!(
        e,
        RegistryError::VersionNotFound {
            model: "iris".into(),
            version: 7
        }
    );
    let e = reg
        .start_rollout(new_rollout("nope", 1, 2))
        .await
        .expect_err("no such model");
    assert_eq!(e, RegistryError::ModelNotFound("nope".into()));
    let e = reg
        .start_rollout(NewRollout {
            settings: json!([10, 50]),
            ..new_rollout("iris", 1, 2)
        })
        .await
        .expect_err("settings not an object");
    assert!(
        e.to_string().contains("settings") && e.to_string().contains("JSON object"),
        "{e}"
    );
    let e = reg
        .start_rollout(NewRollout {
            settings: json!({"note": "x".repeat(70_000)}),
            ..new_rollout("iris", 1, 2)
        })
        .await
        .expect_err("settings too large");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("rollout settings has"), "{e}");
    let e = reg
        .start_rollout(NewRollout {
            figures: json!({"note": "x".repeat(70_000)}),
            ..new_rollout("iris", 1, 2)
        })
        .await
        .expect_err("figures too large");
    assert!(e.to_string().contains("rollout figures has"), "{e}");
    let e = reg
        .start_rollout(NewRollout {
            reason: "x".repeat(5000),
            ..new_rollout("iris", 1, 2)
        })
        .await
        .expect_err("reason too long");
    assert!(e.to_string().contains("reason has 5000 bytes"), "{e}");
    assert_eq!(
        event_count(&reg).await,
        events,
        "refused starts write nothing"
    );
    assert_eq!(reg.latest_rollout("iris").await.expect("latest"), None);

    let started = reg
        .start_rollout(new_rollout("iris", 1, 2))
        .await
        .expect("start");
    let e = reg
        .move_rollout(
            started.id,
            move_of(
                &started,
                AuditAction::RolloutPaused,
                RolloutState::Progressing,
                0,
            ),
        )
        .await
        .expect_err("action names another state");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string()
            .contains("rollout_paused moves a rollout to state paused, not progressing"),
        "{e}"
    );
    for action in [AuditAction::RolloutStarted, AuditAction::SetAlias] {
        let e = reg
            .move_rollout(
                started.id,
                move_of(&started, action.clone(), RolloutState::Progressing, 1),
            )
            .await
            .expect_err("not a move");
        assert!(e.to_string().contains("does not move a rollout"), "{e}");
    }
    let e = reg
        .move_rollout(
            started.id,
            RolloutMove {
                reason: "x".repeat(5000),
                ..move_of(
                    &started,
                    AuditAction::RolloutPaused,
                    RolloutState::Paused,
                    0,
                )
            },
        )
        .await
        .expect_err("reason too long");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        reg.active_rollout("iris").await.expect("active"),
        Some(started),
        "refused moves change nothing"
    );
}

pub(crate) async fn rollout_decisions_are_capped(reg: Registry, _url: String) {
    let mut current = started_iris_rollout(&reg).await;
    let moves = MAX_ROLLOUT_DECISIONS + 4;
    for i in 1..=moves {
        let (action, state) = if current.state == RolloutState::Paused {
            (AuditAction::RolloutResumed, RolloutState::Progressing)
        } else {
            (AuditAction::RolloutPaused, RolloutState::Paused)
        };
        current = reg
            .move_rollout(
                current.id,
                RolloutMove {
                    reason: format!("move {i}"),
                    ..move_of(&current, action, state, 0)
                },
            )
            .await
            .unwrap_or_else(|e| panic!("move {i}: {e}"));
        if i == MAX_ROLLOUT_DECISIONS - 1 {
            assert_eq!(
                current.decisions.len(),
                MAX_ROLLOUT_DECISIONS,
                "all kept up to the cap"
            );
        }
    }
    let kept = &current.decisions;
    assert_eq!(kept.len(), MAX_ROLLOUT_DECISIONS);
    assert_eq!(kept[0].action, "started");
    assert_eq!(
        kept[KEPT_FIRST_DECISIONS - 1].reason,
        format!("move {}", KEPT_FIRST_DECISIONS - 1)
    );
    // The 5 decisions past the cap dropped moves 100..=104.
    assert_eq!(
        kept[KEPT_FIRST_DECISIONS].reason,
        format!("move {}", KEPT_FIRST_DECISIONS + 5)
    );
    assert_eq!(kept[kept.len() - 1].reason, format!("move {moves}"));
    assert_eq!(
        reg.latest_rollout("iris")
            .await
            .expect("latest")
            .expect("one")
            .decisions,
        *kept
    );
}

pub(crate) async fn rollouts_go_with_their_model(reg: Registry, url: String) {
    model_with_ready_versions(&reg, "iris", 2).await;
    model_with_ready_versions(&reg, "wine", 2).await;
    let iris = reg
        .start_rollout(new_rollout("iris", 1, 2))
        .await
        .expect("start");
    reg.move_rollout(
        iris.id,
        move_of(
            &iris,
            AuditAction::RolloutStepped,
            RolloutState::Progressing,
            1,
        ),
    )
    .await
    .expect("step");
    let wine = reg
        .start_rollout(new_rollout("wine", 1, 2))
        .await
        .expect("start");
    reg.put_rollout_share(iris.id, 1, "replica-a", &json!({"n": 1}))
        .await
        .expect("share");
    reg.put_rollout_check(&iris, &json!([]))
        .await
        .expect("check");

    reg.delete_model("iris", ACTOR).await.expect("delete");
    let e = reg.latest_rollout("iris").await.expect_err("model gone");
    assert_eq!(e, RegistryError::ModelNotFound("iris".into()));
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    for (table, column) in [
        ("rollouts", "id"),
        ("rollout_decisions", "rollout_id"),
        ("rollout_shares", "rollout_id"),
        ("rollout_checks", "rollout_id"),
    ] {
        let left: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1"
        ))
        .bind(iris.id)
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .try_get("n")
        .expect("n");
        assert_eq!(left, 0, "{table} rows of the deleted model's rollout");
    }
    conn.close().await.expect("close");
    let e = reg
        .move_rollout(
            iris.id,
            move_of(&iris, AuditAction::RolloutAborted, RolloutState::Aborted, 1),
        )
        .await
        .expect_err("rollout gone");
    assert_eq!(e, RegistryError::RolloutNotFound(iris.id));
    assert_eq!(
        reg.active_rollouts().await.expect("all active"),
        [wine],
        "the other model's rollout stays"
    );
    assert_eq!(
        rollout_events(&reg, "iris").await.len(),
        2,
        "the history outlives the model"
    );

    model_with_ready_versions(&reg, "iris", 2).await;
    assert_eq!(
        reg.latest_rollout("iris").await.expect("latest"),
        None,
        "a model created again starts without rollouts"
    );
}
