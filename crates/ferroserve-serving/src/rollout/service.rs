//! Rollouts as operators drive them: start one (checked against what the
//! model serves), pause, resume, abort or promote it, and read its status
//! with the live figures of this server. Every change is a compare-and-set
//! in the registry, so servers sharing it never make the same move twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferroserve_core::InferError;
use ferroserve_registry::{
    AuditAction, NewRollout, Rollout, RolloutMove, RolloutState, Stage, VersionStatus,
};
use serde_json::{json, Value};

use super::gates::{GateResult, GateTracker};
use super::settings::RolloutSettings;
use super::window::Side;
use crate::error::{Result, ServingError};
use crate::lifecycle::{same_interface, Controller, ServeTarget, WhenNothingServes};

/// What an operator asks of a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutAction {
    /// Hold the canary at its weight; no step advances and no gate judges.
    Pause,
    /// Go on after a pause.
    Resume,
    /// Send all traffic back to stable, without promoting.
    Abort,
    /// Promote the canary now (also approves a rollout awaiting approval).
    Promote,
}

impl std::str::FromStr for RolloutAction {
    type Err = ServingError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "pause" => Ok(RolloutAction::Pause),
            "resume" => Ok(RolloutAction::Resume),
            "abort" => Ok(RolloutAction::Abort),
            "promote" => Ok(RolloutAction::Promote),
            other => Err(ServingError::Invalid(format!(
                "unknown rollout action '{other}'; use pause, resume, abort or promote"
            ))),
        }
    }
}

/// Gate results as a status shows them: each with its failures in a row.
pub(super) fn gates_json(results: &[GateResult], tracker: &GateTracker) -> Value {
    Value::Array(
        results
            .iter()
            .map(|r| {
                let mut value = serde_json::to_value(r).unwrap_or_default();
                value["consecutive_failures"] = json!(tracker.consecutive(r.gate));
                value
            })
            .collect(),
    )
}

/// The gate checks of one rollout on this server.
pub(super) struct Checks {
    pub(super) tracker: GateTracker,
    pub(super) last_check: Instant,
    pub(super) results: Vec<GateResult>,
    /// The rollout's `updated_at` at the last check: once the rollout
    /// moves (through any replica), its results are no longer current.
    pub(super) moved_at: i64,
}

/// Starts, changes and reports rollouts, and (with
/// [`Rollouts::spawn_driver`]) moves them along from live figures.
pub struct Rollouts {
    pub(super) controller: Arc<Controller>,
    pub(super) checks: Mutex<HashMap<i64, Checks>>,
    /// The running rollouts as last read from the registry, and when;
    /// `None` after a change here, so the driver reads them again.
    pub(super) running: Mutex<Option<(Instant, Vec<Rollout>)>>,
    /// This process's id among the replicas sharing rollout figures.
    pub(super) replica: String,
}

impl Rollouts {
    /// Rollouts of the models `controller` serves.
    pub fn new(controller: Arc<Controller>) -> Arc<Rollouts> {
        Arc::new(Rollouts {
            controller,
            checks: Mutex::new(HashMap::new()),
            running: Mutex::new(None),
            replica: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Starts rolling out the version `body.version` of `model` with the
    /// settings in `body` (every other field optional), and returns its
    /// status.
    pub async fn start(&self, model: &str, body: &Value, actor: &str) -> Result<Value> {
        let (version, settings) = parse_start(body)?;
        let lifecycle = self.controller.lifecycle();
        let registry = lifecycle.registry();
        registry.get_model(model).await?;
        let canary = registry.get_version(model, version).await?;
        let plan = lifecycle.plan(model).await?;
        if matches!(
            plan.config.serve,
            ServeTarget::Latest | ServeTarget::Version(_)
        ) {
            return Err(ServingError::conflict(format!(
                "model '{model}' serves {} (its serving config's `serve`); a rollout promotes \
                 its canary to the stage or alias the model serves, so set `serve` to \
                 \"production\", \"staging\" or an alias first",
                plan.config.serve
            )));
        }
        if !plan.config.traffic.split.is_empty() {
            return Err(ServingError::conflict(format!(
                "model '{model}' has a static traffic split in its serving config; remove \
                 `traffic.split` before starting a rollout"
            )));
        }
        if canary.status != VersionStatus::Ready {
            return Err(ServingError::conflict(format!(
                "version {version} of model '{model}' is {}; only a ready version can be rolled out",
                canary.status.as_str()
            )));
        }
        let stable = plan.target().ok_or_else(|| {
            ServingError::conflict(format!(
                "model '{model}' serves no version to compare a canary with: {}",
                plan.why_nothing_serves()
            ))
        })?;
        if stable == version {
            return Err(ServingError::conflict(format!(
                "version {version} already serves model '{model}'; roll out another version"
            )));
        }
        if !plan.config.allow_interface_change {
            let signature = |n: i64| {
                plan.versions
                    .iter()
                    .find(|v| v.version == n)
                    .and_then(|v| v.signature.clone())
            };
            if let (Some(old), Some(new)) = (signature(stable), signature(version)) {
                if let Err(difference) = same_interface(&old, &new) {
                    return Err(ServingError::conflict(format!(
                        "version {version} of model '{model}' has another interface than \
                         version {stable} serving now ({difference}); clients would break. Set \
                         allow_interface_change in the serving config to allow it"
                    )));
                }
            }
        }
        let reason = format!("{actor} started rolling out version {version} in place of {stable}");
        let rollout = registry
            .start_rollout(NewRollout {
                model,
                stable_version: stable,
                canary_version: version,
                settings: serde_json::to_value(&settings).unwrap_or_default(),
                reason: reason.clone(),
                figures: json!({ "weights": settings.weights() }),
                actor,
            })
            .await?;
        self.forget_running();
        self.controller.reconcile(model).await;
        self.announce(&rollout, "started", &reason, &json!({}))
            .await;
        self.status(model).await
    }

    /// The status of `model`'s running rollout, else of its latest one.
    pub async fn status(&self, model: &str) -> Result<Value> {
        let registry = self.controller.lifecycle().registry();
        registry.get_model(model).await?;
        let rollout = registry.latest_rollout(model).await?.ok_or_else(|| {
            ServingError::Infer(InferError::not_found(format!(
                "model '{model}' has never had a rollout; start one with `ferroserve rollout start {model} VERSION`"
            )))
        })?;
        Ok(self.describe(&rollout).await)
    }

    /// Applies `action` to `model`'s running rollout and returns its status.
    pub async fn act(&self, model: &str, action: RolloutAction, actor: &str) -> Result<Value> {
        let registry = self.controller.lifecycle().registry();
        registry.get_model(model).await?;
        let rollout = registry.active_rollout(model).await?.ok_or_else(|| {
            ServingError::conflict(format!("model '{model}' has no running rollout"))
        })?;
        let who = format!("asked by {actor}");
        match (action, rollout.state) {
            (RolloutAction::Pause, RolloutState::Paused)
            | (RolloutAction::Resume, RolloutState::Progressing) => {}
            (RolloutAction::Pause, _) => {
                self.change(
                    &rollout,
                    RolloutState::Paused,
                    rollout.step,
                    AuditAction::RolloutPaused,
                    &who,
                    json!({}),
                    actor,
                )
                .await?;
            }
            (RolloutAction::Resume, RolloutState::Paused) => {
                self.change(
                    &rollout,
                    RolloutState::Progressing,
                    rollout.step,
                    AuditAction::RolloutResumed,
                    &who,
                    json!({}),
                    actor,
                )
                .await?;
            }
            (RolloutAction::Resume, state) => {
                return Err(ServingError::conflict(format!(
                    "the rollout of model '{model}' is {}; only a paused rollout resumes \
                     (one awaiting approval goes on with `rollout promote`)",
                    state.as_str()
                )))
            }
            (RolloutAction::Abort, _) => {
                self.change(
                    &rollout,
                    RolloutState::Aborted,
                    rollout.step,
                    AuditAction::RolloutAborted,
                    &who,
                    json!({}),
                    actor,
                )
                .await?;
            }
            (RolloutAction::Promote, _) => {
                self.complete(&rollout, &who, json!({}), actor).await?;
            }
        }
        self.status(model).await
    }

    /// Moves `rollout` to `state` at `step`, records why, reconciles what
    /// the model serves and tells its webhook.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn change(
        &self,
        rollout: &Rollout,
        state: RolloutState,
        step: u32,
        action: AuditAction,
        reason: &str,
        figures: Value,
        actor: &str,
    ) -> Result<Rollout> {
        let registry = self.controller.lifecycle().registry();
        let moved = registry
            .move_rollout(
                rollout.id,
                RolloutMove {
                    from_state: rollout.state,
                    from_step: rollout.step,
                    state,
                    step,
                    action: action.clone(),
                    reason: reason.to_owned(),
                    figures: figures.clone(),
                    actor,
                },
            )
            .await?;
        if let Ok(mut checks) = self.checks.lock() {
            checks.remove(&rollout.id);
        }
        self.forget_running();
        tracing::info!(model = %rollout.model, rollout = rollout.id, state = state.as_str(), step, reason, "rollout moved");
        self.controller.reconcile(&rollout.model).await;
        super::gauges::publish(&moved, None);
        self.announce(&moved, &decision_name(&action), reason, &figures)
            .await;
        Ok(moved)
    }

    /// Drops the driver's list of running rollouts, so its next pass
    /// reads them from the registry.
    pub(super) fn forget_running(&self) {
        if let Ok(mut running) = self.running.lock() {
            *running = None;
        }
    }

    /// Promotes the canary of `rollout` to what the model serves (its
    /// stage, or its alias), then marks the rollout completed.
    pub(super) async fn complete(
        &self,
        rollout: &Rollout,
        reason: &str,
        figures: Value,
        actor: &str,
    ) -> Result<Rollout> {
        let lifecycle = self.controller.lifecycle();
        let plan = lifecycle.plan(&rollout.model).await?;
        let model = rollout.model.as_str();
        let canary = rollout.canary_version;
        if plan.target() != Some(canary) {
            match &plan.config.serve {
                ServeTarget::Production | ServeTarget::Staging => {
                    let stage = if plan.config.serve == ServeTarget::Staging {
                        Stage::Staging
                    } else {
                        Stage::Production
                    };
                    lifecycle
                        .transition_stage(
                            model,
                            canary,
                            stage,
                            true,
                            WhenNothingServes::Refuse,
                            actor,
                        )
                        .await?;
                }
                ServeTarget::Alias(alias) => {
                    lifecycle.set_alias(model, alias, canary, actor).await?;
                }
                other => {
                    return Err(ServingError::conflict(format!(
                        "model '{model}' now serves {other}; the canary cannot be promoted to it"
                    )))
                }
            }
            // Serve the canary everywhere before the rollout says it is done.
            self.controller.reconcile(model).await;
        }
        let settings = settings_of(rollout);
        self.change(
            rollout,
            RolloutState::Completed,
            settings.final_step(),
            AuditAction::RolloutCompleted,
            reason,
            figures,
            actor,
        )
        .await
    }

    /// The gates of the last check of `rollout` since its last move: this
    /// replica's when it judges the rollout, else (replicas sharing a
    /// registry) the ones the judging replica kept in the registry; empty
    /// before the first check after a move.
    async fn last_gates(&self, rollout: &Rollout) -> Value {
        let here = self.checks.lock().ok().and_then(|checks| {
            checks
                .get(&rollout.id)
                .filter(|c| c.moved_at == rollout.updated_at)
                .map(|c| gates_json(&c.results, &c.tracker))
        });
        if let Some(gates) = here {
            return gates;
        }
        if !self.shares_figures() || !rollout.state.is_active() {
            return json!([]);
        }
        match self
            .controller
            .lifecycle()
            .registry()
            .rollout_check(rollout.id)
            .await
        {
            // A check from before the rollout's last move (a step, a
            // pause) is stale: the judging replica forgot it too.
            Ok(Some(check)) if check.moved_at == rollout.updated_at => check.gates,
            Ok(_) => json!([]),
            Err(e) => {
                tracing::warn!(rollout = rollout.id, error = %e, "cannot read the rollout's last gate check");
                json!([])
            }
        }
    }

    /// The status of `rollout` as JSON, with the live window of every
    /// replica added up and the last gate results (the judging replica's).
    async fn describe(&self, rollout: &Rollout) -> Value {
        let settings = settings_of(rollout);
        let weights = settings.weights();
        let weight = match rollout.state {
            RolloutState::Completed => 100,
            RolloutState::RolledBack | RolloutState::Aborted => 0,
            _ => settings.weight_at(rollout.step),
        };
        let live = super::driver::live_of(&self.controller, rollout);
        let window = match &live {
            Some(live) => {
                let (stable, canary, replicas) = match self.fleet_figures(rollout, live).await {
                    Ok(fleet) => (fleet.stable, fleet.canary, fleet.replicas),
                    Err(e) => {
                        tracing::warn!(rollout = rollout.id, error = %e, "cannot read the other replicas' rollout figures; showing this one's");
                        let window = live.window();
                        (
                            window.figures(Side::Stable),
                            window.figures(Side::Canary),
                            1,
                        )
                    }
                };
                Some(json!({
                    "seconds": live.window().started().elapsed().as_secs_f64(),
                    "replicas": replicas,
                    "stable": stable,
                    "canary": canary,
                }))
            }
            None => None,
        };
        let gates = self.last_gates(rollout).await;
        let decisions: Vec<Value> = rollout
            .decisions
            .iter()
            .map(|d| {
                json!({
                    "at": d.at,
                    "action": d.action.strip_prefix("rollout_").unwrap_or(&d.action),
                    "reason": d.reason,
                    "figures": d.figures,
                    "actor": d.actor,
                })
            })
            .collect();
        json!({
            "id": rollout.id,
            "model": rollout.model,
            "state": rollout.state.as_str(),
            "stable_version": rollout.stable_version,
            "canary_version": rollout.canary_version,
            "step": rollout.step,
            "steps": weights,
            "weight": weight,
            "step_started_at": rollout.step_started_at,
            "created_by": rollout.created_by,
            "created_at": rollout.created_at,
            "updated_at": rollout.updated_at,
            "settings": settings,
            "window": window,
            "gates": gates,
            "decisions": decisions,
        })
    }

    /// Sends a rollout event to the model's webhook, when it has one.
    async fn announce(&self, rollout: &Rollout, event: &str, reason: &str, figures: &Value) {
        let Some(monitor) = self.controller.monitor() else {
            return;
        };
        let webhook = match self
            .controller
            .lifecycle()
            .serving_config(&rollout.model)
            .await
        {
            Ok((config, _)) => config.monitoring.webhook,
            Err(_) => None,
        };
        if let Some(webhook) = webhook {
            let settings = settings_of(rollout);
            let body = json!({
                "kind": "rollout",
                "event": event,
                "model": rollout.model,
                "rollout_id": rollout.id,
                "state": rollout.state.as_str(),
                "stable_version": rollout.stable_version,
                "canary_version": rollout.canary_version,
                "step": rollout.step,
                "weight": settings.weight_at(rollout.step),
                "reason": reason,
                "figures": figures,
                "at_ms": ferroserve_registry::api_keys::now_ms(),
            });
            monitor.notify(&rollout.model, webhook, body);
        }
    }
}

/// The settings stored with `rollout`; a row this build cannot read runs
/// with the defaults (and says so in the log).
pub(super) fn settings_of(rollout: &Rollout) -> RolloutSettings {
    RolloutSettings::from_value(&rollout.settings).unwrap_or_else(|e| {
        tracing::warn!(model = %rollout.model, rollout = rollout.id, error = %e, "rollout settings unreadable; using the defaults");
        RolloutSettings::default()
    })
}

/// The version and settings of a start request.
fn parse_start(body: &Value) -> Result<(i64, RolloutSettings)> {
    let Some(object) = body.as_object() else {
        return Err(ServingError::Invalid(
            "rollout: the body must be a JSON object, e.g. {\"version\": 2}".into(),
        ));
    };
    let mut rest = object.clone();
    let version = rest.remove("version").ok_or_else(|| {
        ServingError::Invalid(
            "rollout: field 'version' (the version to roll out) is required".into(),
        )
    })?;
    let version = version.as_i64().filter(|v| *v >= 1).ok_or_else(|| {
        ServingError::Invalid(format!(
            "rollout: field 'version' must be a version number (1 or more), got {version}"
        ))
    })?;
    let settings = RolloutSettings::from_value(&Value::Object(rest))
        .map_err(|e| ServingError::Invalid(format!("rollout: {e}")))?;
    Ok((version, settings))
}

/// The decision name of `action` in statuses and webhooks (`stepped`, ...).
fn decision_name(action: &AuditAction) -> String {
    let name = action.to_string();
    name.strip_prefix("rollout_").unwrap_or(&name).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_body_needs_a_version_and_valid_settings() {
        let (version, settings) =
            parse_start(&json!({"version": 3, "steps": [20, 100]})).expect("valid");
        assert_eq!(version, 3);
        assert_eq!(settings.steps, vec![20, 100]);
        let missing = parse_start(&json!({"steps": [20]}))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("'version'"), "{missing}");
        let bad = parse_start(&json!({"version": 0})).unwrap_err().to_string();
        assert!(bad.contains("version number"), "{bad}");
        let unknown = parse_start(&json!({"version": 2, "stepz": [1]}))
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("stepz"), "{unknown}");
        assert!(parse_start(&json!([1])).is_err());
    }

    #[test]
    fn actions_parse_by_name() {
        assert_eq!(
            "pause".parse::<RolloutAction>().ok(),
            Some(RolloutAction::Pause)
        );
        assert!("stop".parse::<RolloutAction>().is_err());
    }
}
