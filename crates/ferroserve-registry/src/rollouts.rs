//! Progressive rollouts: a canary version takes a growing share of a
//! model's traffic, step by step, beside its stable version. The registry
//! keeps each rollout's state, step, step start and settings, and the
//! decisions that moved it, so that every server following the registry
//! sees one rollout and a restarted server resumes it.
//!
//! Starting and moving a rollout are one transaction each, under the
//! model's write lock: the rollout row, its decision, an audit event
//! (`rollout_*`, version = the canary) and the bump of the model's
//! `updated_at`, on which servers following the registry reconcile. At most
//! one rollout per model is active (progressing, paused or awaiting
//! approval): a unique partial index keeps it so. A move is a
//! compare-and-set on (state, step), so of two servers deciding at once
//! only one moves the rollout; an ended rollout never moves again.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// Most decisions kept per rollout. Past it, the registry keeps the first
/// [`KEPT_FIRST_DECISIONS`] (how the rollout began) and the latest ones,
/// dropping the oldest of the rest as new ones come: a long-running
/// rollout that pauses and resumes often stays a bounded row set and a
/// bounded status answer.
pub const MAX_ROLLOUT_DECISIONS: usize = 1000;
/// How many of a rollout's first decisions are always kept.
pub const KEPT_FIRST_DECISIONS: usize = 100;
/// Longest decision reason accepted, in bytes (as a tag value).
pub const MAX_REASON_BYTES: usize = 4096;
/// Largest serialized `settings` or `figures` accepted, in bytes (as a
/// serving config).
pub const MAX_ROLLOUT_JSON_BYTES: usize = 64 * 1024;

/// Where a rollout is in its life: one of the first three while it runs
/// (active), then one of the last three for good.
///
/// Stored and serialized in snake_case: `progressing`, `paused`,
/// `awaiting_approval`, `completed`, `rolled_back`, `aborted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// The canary takes its step's share, and steps on when its gates pass.
    Progressing,
    /// Held at its step by an operator; gates are not acted on.
    Paused,
    /// The step before promotion passed; promotion waits for an operator.
    AwaitingApproval,
    /// The canary was promoted: it is the stable version now.
    Completed,
    /// A gate failed: traffic went back to the stable version.
    RolledBack,
    /// An operator stopped the rollout: traffic went back to stable.
    Aborted,
}

impl RolloutState {
    /// Every state, active ones first.
    pub const ALL: [RolloutState; 6] = [
        RolloutState::Progressing,
        RolloutState::Paused,
        RolloutState::AwaitingApproval,
        RolloutState::Completed,
        RolloutState::RolledBack,
        RolloutState::Aborted,
    ];

    /// The state's name as stored and shown, e.g. `awaiting_approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Progressing => "progressing",
            RolloutState::Paused => "paused",
            RolloutState::AwaitingApproval => "awaiting_approval",
            RolloutState::Completed => "completed",
            RolloutState::RolledBack => "rolled_back",
            RolloutState::Aborted => "aborted",
        }
    }

    /// The state of this stored name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        RolloutState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a rollout in this state still runs (progressing, paused or
    /// awaiting approval); a model has at most one such rollout.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RolloutState::Progressing | RolloutState::Paused | RolloutState::AwaitingApproval
        )
    }
}

impl fmt::Display for RolloutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored rollout with its decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The rollout's id.
    pub id: i64,
    /// The model rolled out.
    pub model: String,
    /// The version serving when the rollout started.
    pub stable_version: i64,
    /// The version rolled out.
    pub canary_version: i64,
    /// Where the rollout is.
    pub state: RolloutState,
    /// Index of the current step into the settings' steps.
    pub step: u32,
    /// When the current step began (unix ms).
    pub step_started_at: i64,
    /// The rollout's settings (their shape is the serving layer's).
    pub settings: Value,
    /// Who started it.
    pub created_by: String,
    /// When it started (unix ms).
    pub created_at: i64,
    /// When it last moved (unix ms).
    pub updated_at: i64,
    /// What moved it and why, oldest first (see [`MAX_ROLLOUT_DECISIONS`]).
    pub decisions: Vec<RolloutDecision>,
}

/// One decision of a rollout: a start or a move, why, and on what figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutDecision {
    /// When it was taken (unix ms).
    pub at: i64,
    /// `started`, `stepped`, `paused`, `resumed`, `awaiting_approval`,
    /// `rolled_back`, `completed` or `aborted`.
    pub action: String,
    /// Why, for people.
    pub reason: String,
    /// The figures behind it (gate values, window counts), as JSON.
    pub figures: Value,
    /// Who took it: an operator, or the server that drives the rollout.
    pub actor: String,
}

/// A rollout to start.
#[derive(Debug, Clone)]
pub struct NewRollout<'a> {
    /// The model; it must exist.
    pub model: &'a str,
    /// The version serving now; it must exist.
    pub stable_version: i64,
    /// The version to roll out; it must exist and differ from the stable one.
    pub canary_version: i64,
    /// The rollout's settings: a JSON object of at most 64 KiB.
    pub settings: Value,
    /// Why it starts (at most 4096 bytes).
    pub reason: String,
    /// Figures recorded with the start (at most 64 KiB of JSON).
    pub figures: Value,
    /// Who starts it.
    pub actor: &'a str,
}

/// A move of an active rollout to another state or step.
#[derive(Debug, Clone)]
pub struct RolloutMove<'a> {
    /// The state the caller saw: the move is refused when the rollout is no
    /// longer in it.
    pub from_state: RolloutState,
    /// The step the caller saw: the move is refused when the rollout is no
    /// longer at it.
    pub from_step: u32,
    /// The state to move to; it must be the one `action` names.
    pub state: RolloutState,
    /// The step to move to; a change resets `step_started_at` to now.
    pub step: u32,
    /// The audit action: any `Rollout*` action but `RolloutStarted`.
    pub action: AuditAction,
    /// Why (at most 4096 bytes).
    pub reason: String,
    /// The figures behind the move (at most 64 KiB of JSON).
    pub figures: Value,
    /// Who moves it.
    pub actor: &'a str,
}

const ROLLOUT_COLUMNS: &str = "id, model, stable_version, canary_version, state, step, \
    step_started_at, settings, created_by, created_at, updated_at";
/// SQL list of the active states (as in the unique index of migration 0006).
const ACTIVE: &str = "('progressing', 'paused', 'awaiting_approval')";

impl Registry {
    /// Starts a rollout of `new.canary_version` beside `new.stable_version`,
    /// progressing at step 0, with its `started` decision and a
    /// `rollout_started` audit event.
    ///
    /// Refused with [`RegistryError::Conflict`] while the model has an
    /// active rollout, or when the canary is the stable version; with
    /// [`RegistryError::ModelNotFound`] or
    /// [`RegistryError::VersionNotFound`] for what does not exist; with
    /// [`RegistryError::Invalid`] for settings, reason or figures out of
    /// bounds.
    pub async fn start_rollout(&self, new: NewRollout<'_>) -> Result<Rollout> {
        let model = new.model;
        if new.canary_version == new.stable_version {
            return Err(RegistryError::Conflict(format!(
                "version {} is the stable version of model '{model}': a rollout needs \
                 another version as its canary",
                new.canary_version
            )));
        }
        if !new.settings.is_object() {
            return Err(RegistryError::Invalid(format!(
                "settings of a rollout of model '{model}' must be a JSON object, not {}",
                ferroserve_core::json::type_name(&new.settings)
            )));
        }
        let settings = bounded_json("settings", &new.settings)?;
        let figures = bounded_json("figures", &new.figures)?;
        check_reason(&new.reason)?;

        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        db::require_version(&mut tx, model, new.stable_version).await?;
        db::require_version(&mut tx, model, new.canary_version).await?;
        if let Some(running) = active(&mut tx, model).await? {
            return Err(already_active(&running));
        }
        let now = db::now_ms();
        let inserted = sqlx::query(
            "INSERT INTO rollouts (model, stable_version, canary_version, state, step, \
             step_started_at, settings, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $5, $5) RETURNING id",
        )
        .bind(model)
        .bind(new.stable_version)
        .bind(new.canary_version)
        .bind(RolloutState::Progressing.as_str())
        .bind(now)
        .bind(settings)
        .bind(new.actor)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            // Every writer holds the model's lock, so this is a writer
            // that does not: still the same answer.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(RegistryError::Conflict(format!(
                    "model '{model}' already has an active rollout; abort it or let it \
                     finish before starting another"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let decision = RolloutDecision {
            at: now,
            action: "started".to_owned(),
            reason: new.reason,
            figures: new.figures,
            actor: new.actor.to_owned(),
        };
        insert_decision(&mut tx, id, &decision, &figures).await?;
        let rollout = Rollout {
            id,
            model: model.to_owned(),
            stable_version: new.stable_version,
            canary_version: new.canary_version,
            state: RolloutState::Progressing,
            step: 0,
            step_started_at: now,
            settings: new.settings,
            created_by: new.actor.to_owned(),
            created_at: now,
            updated_at: now,
            decisions: vec![decision],
        };
        let mut details = decision_details(&rollout);
        details["stable_version"] = json!(rollout.stable_version);
        details["settings"] = rollout.settings.clone();
        let event = Audit {
            actor: new.actor,
            action: AuditAction::RolloutStarted,
            model,
            version: Some(rollout.canary_version),
            before: None,
            after: Some(details),
        };
        db::commit_model_change(tx, now, event).await?;
        tracing::info!(
            model,
            rollout = id,
            stable = rollout.stable_version,
            canary = rollout.canary_version,
            "rollout started"
        );
        Ok(rollout)
    }

    /// The active rollout of `model`, if it has one.
    pub async fn active_rollout(&self, model: &str) -> Result<Option<Rollout>> {
        let mut conn = self.pool.acquire().await?;
        let found = active(&mut conn, model).await?;
        found_for_model(&mut conn, model, found).await
    }

    /// The newest rollout of `model`, in any state.
    pub async fn latest_rollout(&self, model: &str) -> Result<Option<Rollout>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE model = $1 ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(model)
            .fetch_optional(&mut *conn)
            .await?;
        let found = row.as_ref().map(rollout_from_row).transpose()?;
        found_for_model(&mut conn, model, found).await
    }

    /// Every active rollout, ordered by model.
    pub async fn active_rollouts(&self) -> Result<Vec<Rollout>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE state IN {ACTIVE} ORDER BY model"
        );
        let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
        let mut rollouts = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut rollout = rollout_from_row(row)?;
            rollout.decisions = decisions(&mut conn, rollout.id).await?;
            rollouts.push(rollout);
        }
        Ok(rollouts)
    }

    /// Moves active rollout `id` from (`change.from_state`,
    /// `change.from_step`) to (`change.state`, `change.step`), with its
    /// decision and a `change.action` audit event; returns the rollout as
    /// it now is.
    ///
    /// Refused with [`RegistryError::Conflict`] when the rollout is no
    /// longer where the caller saw it, or has ended; with
    /// [`RegistryError::RolloutNotFound`] for an unknown id; with
    /// [`RegistryError::Invalid`] when the action is not a move or names
    /// another state, or the reason or figures are out of bounds.
    pub async fn move_rollout(&self, id: i64, change: RolloutMove<'_>) -> Result<Rollout> {
        let decided = decision_of(&change.action, change.state)?;
        let figures = bounded_json("figures", &change.figures)?;
        check_reason(&change.reason)?;

        let mut tx = self.write_transaction().await?;
        let model: String = sqlx::query("SELECT model FROM rollouts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(RegistryError::RolloutNotFound(id))?
            .try_get("model")?;
        // Every rollout writer holds the model's lock: from here on the
        // row stays as read until this transaction ends.
        db::lock_model(&mut tx, &model).await?;
        let before = fetch(&mut tx, id)
            .await?
            .ok_or(RegistryError::RolloutNotFound(id))?;
        if (before.state, before.step) != (change.from_state, change.from_step) {
            return Err(RegistryError::Conflict(format!(
                "rollout {id} of model '{model}' moved: it was expected {} at step {}, and is \
                 now {} at step {}; read it again before deciding",
                change.from_state, change.from_step, before.state, before.step
            )));
        }
        if !before.state.is_active() {
            return Err(RegistryError::Conflict(format!(
                "rollout {id} of model '{model}' has ended ({}); start a new rollout instead",
                before.state
            )));
        }
        let now = db::now_ms();
        let step_started_at = if change.step == before.step {
            before.step_started_at
        } else {
            now
        };
        let moved = sqlx::query(
            "UPDATE rollouts SET state = $1, step = $2, step_started_at = $3, updated_at = $4 \
             WHERE id = $5 AND state = $6 AND step = $7",
        )
        .bind(change.state.as_str())
        .bind(i64::from(change.step))
        .bind(step_started_at)
        .bind(now)
        .bind(id)
        .bind(before.state.as_str())
        .bind(i64::from(before.step))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Err(RegistryError::Database(format!(
                "rollout {id} of model '{model}' changed while its model's write lock was held"
            )));
        }
        // The replicas' figures of a step that no longer runs are read no
        // more (a replica may still store one more share of it, later).
        if !change.state.is_active() || change.step != before.step {
            sqlx::query("DELETE FROM rollout_shares WHERE rollout_id = $1 AND step = $2")
                .bind(id)
                .bind(i64::from(before.step))
                .execute(&mut *tx)
                .await?;
        }
        let decision = RolloutDecision {
            at: now,
            action: decided.to_owned(),
            reason: change.reason,
            figures: change.figures,
            actor: change.actor.to_owned(),
        };
        insert_decision(&mut tx, id, &decision, &figures).await?;
        let mut after = before.clone();
        after.state = change.state;
        after.step = change.step;
        after.step_started_at = step_started_at;
        after.updated_at = now;
        after.decisions = decisions(&mut tx, id).await?;
        let event = Audit {
            actor: change.actor,
            action: change.action,
            model: &model,
            version: Some(after.canary_version),
            before: Some(json!({
                "rollout_id": id,
                "state": before.state,
                "step": before.step,
            })),
            after: Some(decision_details(&after)),
        };
        db::commit_model_change(tx, now, event).await?;
        tracing::info!(
            model,
            rollout = id,
            state = after.state.as_str(),
            step = after.step,
            "rollout moved"
        );
        Ok(after)
    }
}

/// The decision name a move's `action` records, once the action is known
/// to be a move to `state`.
fn decision_of(action: &AuditAction, state: RolloutState) -> Result<&'static str> {
    let (name, implied) = match action {
        AuditAction::RolloutStepped => ("stepped", RolloutState::Progressing),
        AuditAction::RolloutPaused => ("paused", RolloutState::Paused),
        AuditAction::RolloutResumed => ("resumed", RolloutState::Progressing),
        AuditAction::RolloutAwaitingApproval => {
            ("awaiting_approval", RolloutState::AwaitingApproval)
        }
        AuditAction::RolloutRolledBack => ("rolled_back", RolloutState::RolledBack),
        AuditAction::RolloutCompleted => ("completed", RolloutState::Completed),
        AuditAction::RolloutAborted => ("aborted", RolloutState::Aborted),
        other => {
            return Err(RegistryError::Invalid(format!(
                "action {other} does not move a rollout: use rollout_stepped, rollout_paused, \
                 rollout_resumed, rollout_awaiting_approval, rollout_rolled_back, \
                 rollout_completed or rollout_aborted"
            )))
        }
    };
    if state != implied {
        return Err(RegistryError::Invalid(format!(
            "action {action} moves a rollout to state {implied}, not {state}"
        )));
    }
    Ok(name)
}

/// `value` serialized, or an error naming `field` when it exceeds
/// [`MAX_ROLLOUT_JSON_BYTES`].
fn bounded_json(field: &str, value: &Value) -> Result<String> {
    let text = db::to_text(value)?;
    if text.len() > MAX_ROLLOUT_JSON_BYTES {
        return Err(RegistryError::Invalid(format!(
            "rollout {field} has {} bytes serialized; at most {MAX_ROLLOUT_JSON_BYTES} are allowed",
            text.len()
        )));
    }
    Ok(text)
}

fn check_reason(reason: &str) -> Result<()> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(RegistryError::Invalid(format!(
            "rollout decision reason has {} bytes; at most {MAX_REASON_BYTES} are allowed",
            reason.len()
        )));
    }
    Ok(())
}

fn already_active(running: &Rollout) -> RegistryError {
    RegistryError::Conflict(format!(
        "model '{}' already has an active rollout: rollout {} of version {} is {} at step {}; \
         abort it or let it finish before starting another",
        running.model, running.id, running.canary_version, running.state, running.step
    ))
}

/// The details of a decision's audit event: `{rollout_id, state, step,
/// weight?, reason, figures}` of the rollout's latest decision. `weight`
/// (the canary's percent) is there while the rollout runs and its
/// settings' `steps` hold a number at its step.
fn decision_details(rollout: &Rollout) -> Value {
    let latest = rollout.decisions.last();
    let mut details = json!({
        "rollout_id": rollout.id,
        "state": rollout.state,
        "step": rollout.step,
        "reason": latest.map(|d| d.reason.as_str()),
        "figures": latest.map(|d| &d.figures),
    });
    let weight = rollout.settings["steps"]
        .get(rollout.step as usize)
        .filter(|w| w.is_number());
    if let (true, Some(weight)) = (rollout.state.is_active(), weight) {
        details["weight"] = weight.clone();
    }
    details
}

/// `found` with its decisions; `None` when the model exists but has no
/// such rollout, [`RegistryError::ModelNotFound`] when it does not exist.
async fn found_for_model(
    conn: &mut AnyConnection,
    model: &str,
    found: Option<Rollout>,
) -> Result<Option<Rollout>> {
    match found {
        Some(mut rollout) => {
            rollout.decisions = decisions(conn, rollout.id).await?;
            Ok(Some(rollout))
        }
        None => {
            db::require_model(conn, model).await?;
            Ok(None)
        }
    }
}

/// The active rollout of `model` (without its decisions), if any.
async fn active(conn: &mut AnyConnection, model: &str) -> Result<Option<Rollout>> {
    let sql =
        format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE model = $1 AND state IN {ACTIVE}");
    let row = sqlx::query(&sql)
        .bind(model)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(rollout_from_row).transpose()
}

/// Rollout `id` (without its decisions), if it exists.
async fn fetch(conn: &mut AnyConnection, id: i64) -> Result<Option<Rollout>> {
    let sql = format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(rollout_from_row).transpose()
}

fn rollout_from_row(row: &AnyRow) -> Result<Rollout> {
    let id: i64 = row.try_get("id")?;
    let unreadable = |field: &str, reason: String| {
        RegistryError::Database(format!(
            "rollout {id} has an unreadable {field} in the registry database: {reason}"
        ))
    };
    let state: String = row.try_get("state")?;
    let state = RolloutState::parse(&state)
        .ok_or_else(|| unreadable("state", format!("unknown state '{state}'")))?;
    let step: i64 = row.try_get("step")?;
    let step = u32::try_from(step).map_err(|_| unreadable("step", format!("{step}")))?;
    let settings: String = row.try_get("settings")?;
    let settings =
        serde_json::from_str(&settings).map_err(|e| unreadable("settings", e.to_string()))?;
    Ok(Rollout {
        id,
        model: row.try_get("model")?,
        stable_version: row.try_get("stable_version")?,
        canary_version: row.try_get("canary_version")?,
        state,
        step,
        step_started_at: row.try_get("step_started_at")?,
        settings,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        decisions: Vec::new(),
    })
}

/// The kept decisions of rollout `id`, oldest first.
async fn decisions(conn: &mut AnyConnection, id: i64) -> Result<Vec<RolloutDecision>> {
    let rows = sqlx::query(
        "SELECT at, action, reason, figures, actor FROM rollout_decisions \
         WHERE rollout_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let figures: String = row.try_get("figures")?;
            Ok(RolloutDecision {
                at: row.try_get("at")?,
                action: row.try_get("action")?,
                reason: row.try_get("reason")?,
                figures: serde_json::from_str(&figures)?,
                actor: row.try_get("actor")?,
            })
        })
        .collect()
}

/// Appends a decision (`figures` is its serialized figures) to rollout
/// `id`, then drops what [`MAX_ROLLOUT_DECISIONS`] does not keep: the
/// decisions after the first [`KEPT_FIRST_DECISIONS`] and before the
/// latest `MAX - FIRST`. One insert drops at most one row once the
/// rollout is at the cap.
async fn insert_decision(
    conn: &mut AnyConnection,
    id: i64,
    decision: &RolloutDecision,
    figures: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO rollout_decisions (rollout_id, at, action, reason, figures, actor) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(decision.at)
    .bind(decision.action.as_str())
    .bind(decision.reason.as_str())
    .bind(figures)
    .bind(decision.actor.as_str())
    .execute(&mut *conn)
    .await?;
    // With fewer than KEPT_FIRST rows the first bound is NULL and nothing
    // matches; with at most MAX rows the range between the bounds is empty.
    let first_kept = KEPT_FIRST_DECISIONS as i64 - 1;
    let latest_kept = (MAX_ROLLOUT_DECISIONS - KEPT_FIRST_DECISIONS) as i64 - 1;
    sqlx::query(
        "DELETE FROM rollout_decisions WHERE rollout_id = $1 \
         AND id > (SELECT id FROM rollout_decisions WHERE rollout_id = $1 \
                   ORDER BY id LIMIT 1 OFFSET $2) \
         AND id < (SELECT id FROM rollout_decisions WHERE rollout_id = $1 \
                   ORDER BY id DESC LIMIT 1 OFFSET $3)",
    )
    .bind(id)
    .bind(first_kept)
    .bind(latest_kept)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_three_are_active() {
        for state in RolloutState::ALL {
            assert_eq!(RolloutState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).expect("serializes");
            assert_eq!(json, format!("\"{state}\""));
        }
        assert_eq!(RolloutState::parse("Paused"), None);
        let active: Vec<_> = RolloutState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .map(RolloutState::as_str)
            .collect();
        assert_eq!(active, ["progressing", "paused", "awaiting_approval"]);
    }

    #[test]
    fn moves_name_their_state() {
        assert_eq!(
            decision_of(&AuditAction::RolloutPaused, RolloutState::Paused).expect("a move"),
            "paused"
        );
        assert_eq!(
            decision_of(&AuditAction::RolloutResumed, RolloutState::Progressing).expect("a move"),
            "resumed"
        );
        let e = decision_of(&AuditAction::RolloutPaused, RolloutState::Aborted)
            .expect_err("wrong state");
        assert!(
            e.to_string().contains("to state paused, not aborted"),
            "{e}"
        );
        let e = decision_of(&AuditAction::RolloutStarted, RolloutState::Progressing)
            .expect_err("a start is not a move");
        assert!(
            e.to_string().contains("rollout_started does not move"),
            "{e}"
        );
    }

    #[test]
    fn details_carry_the_weight_while_active() {
        let mut rollout = Rollout {
            id: 4,
            model: "iris".into(),
            stable_version: 1,
            canary_version: 2,
            state: RolloutState::Progressing,
            step: 1,
            step_started_at: 0,
            settings: json!({"steps": [10, 50, 100]}),
            created_by: "alice".into(),
            created_at: 0,
            updated_at: 0,
            decisions: vec![RolloutDecision {
                at: 0,
                action: "stepped".into(),
                reason: "gates passed".into(),
                figures: json!({"error_rate": 0.0}),
                actor: "server".into(),
            }],
        };
        let details = decision_details(&rollout);
        assert_eq!(
            details,
            json!({"rollout_id": 4, "state": "progressing", "step": 1, "weight": 50,
                   "reason": "gates passed", "figures": {"error_rate": 0.0}})
        );
        rollout.state = RolloutState::Aborted;
        assert!(decision_details(&rollout).get("weight").is_none());
    }
}
