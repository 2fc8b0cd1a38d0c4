//! Rollout fixtures shared by the registry's rollout tests (rollouts,
//! their per-replica shares and gate checks, renames): a rollout to
//! start, a move from where a rollout is, a step on.

use ferroserve_registry::{AuditAction, NewRollout, Registry, Rollout, RolloutMove, RolloutState};
use serde_json::{json, Value};

use crate::helpers::*;

/// The settings of the rollouts [`new_rollout`] starts.
pub(crate) fn settings() -> Value {
    json!({"steps": [10, 50, 100], "step_seconds": 60})
}

pub(crate) fn new_rollout(model: &str, stable: i64, canary: i64) -> NewRollout<'_> {
    NewRollout {
        model,
        stable_version: stable,
        canary_version: canary,
        settings: settings(),
        reason: "started by an operator".into(),
        figures: json!({}),
        actor: ACTOR,
    }
}

/// A move of `rollout` from where it is now.
pub(crate) fn move_of(
    rollout: &Rollout,
    action: AuditAction,
    state: RolloutState,
    step: u32,
) -> RolloutMove<'static> {
    RolloutMove {
        from_state: rollout.state,
        from_step: rollout.step,
        state,
        step,
        action,
        reason: format!("to {state} at step {step}"),
        figures: json!({"step": step}),
        actor: "server-a",
    }
}

/// Moves the progressing `rollout` on to step `step`.
pub(crate) async fn step_to(reg: &Registry, rollout: &Rollout, step: u32) -> Rollout {
    reg.move_rollout(
        rollout.id,
        move_of(
            rollout,
            AuditAction::RolloutStepped,
            RolloutState::Progressing,
            step,
        ),
    )
    .await
    .expect("step")
}

/// Iris with versions 1 and 2, and a rollout of 2 over 1 started.
pub(crate) async fn started_iris_rollout(reg: &Registry) -> Rollout {
    model_with_ready_versions(reg, "iris", 2).await;
    reg.start_rollout(new_rollout("iris", 1, 2))
        .await
        .expect("start")
}
