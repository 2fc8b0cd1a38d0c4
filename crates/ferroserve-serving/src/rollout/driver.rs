//! The rollout driver: a task that checks each running rollout at its
//! interval — the gates over every replica's window added up, the step's
//! minimum time and requests — and moves it on: next step, awaiting approval,
//! completed, or rolled back with the gate and figures that failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroserve_registry::{AuditAction, Rollout, RolloutState};
use serde_json::{json, Value};

use super::fleet::SHARE_EVERY;
use super::gates::{judge, step_done, Decision, GateTracker};
use super::live::LiveRollout;
use super::service::{gates_json, settings_of, Checks, Rollouts};
use crate::error::Result;
use crate::lifecycle::Controller;

/// How often the driver looks for rollouts due a check.
const TICK: Duration = Duration::from_millis(100);

/// How long the driver trusts its list of running rollouts before it reads
/// them from the registry again (changes made by this server drop it at
/// once; those of other servers are seen within this).
const REREAD: Duration = Duration::from_secs(1);

/// Actor of the driver's decisions in the audit log.
pub const ROLLOUT_ACTOR: &str = "ferroserve-rollout";

/// The live side of `rollout` on this server, when it routes it.
pub(super) fn live_of(controller: &Controller, rollout: &Rollout) -> Option<Arc<LiveRollout>> {
    let live = controller
        .manager()
        .routing(&rollout.model)?
        .rollout()?
        .clone();
    (live.id == rollout.id && live.step == rollout.step).then_some(live)
}

impl Rollouts {
    /// Checks the running rollouts until the task is dropped, while this
    /// replica leads (one replica drives every rollout; the others serve
    /// its decisions and take over when it dies; see
    /// [`Leadership`](ferroserve_registry::Leadership)).
    pub fn spawn_driver(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let leadership = self.controller.lifecycle().registry().leadership();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(TICK);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut shared = Instant::now();
            loop {
                ticker.tick().await;
                // Every replica shares its figures, the leader too: the
                // next leader adds them up.
                if self.shares_figures() && shared.elapsed() >= SHARE_EVERY {
                    shared = Instant::now();
                    self.share_figures().await;
                }
                if leadership.is_leader() {
                    self.tick().await;
                }
            }
        })
    }

    /// One pass over the running rollouts.
    pub async fn tick(&self) {
        let Some(active) = self.running_rollouts().await else {
            return;
        };
        for rollout in active {
            if let Err(e) = self.check(&rollout).await {
                // Moved elsewhere meanwhile, say: read them all again.
                self.forget_running();
                tracing::warn!(model = %rollout.model, rollout = rollout.id, error = %e, "rollout check failed; trying again at the next check");
            }
        }
    }

    /// The running rollouts: from the registry when the list is older than
    /// [`REREAD`] or a change here dropped it, else as last read.
    pub(super) async fn running_rollouts(&self) -> Option<Vec<Rollout>> {
        if let Ok(running) = self.running.lock() {
            if let Some((read_at, rollouts)) = running.as_ref() {
                if read_at.elapsed() < REREAD {
                    return Some(rollouts.clone());
                }
            }
        }
        let registry = self.controller.lifecycle().registry();
        let active = match registry.active_rollouts().await {
            Ok(active) => active,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the running rollouts; checking them later");
                return None;
            }
        };
        if let Ok(mut checks) = self.checks.lock() {
            checks.retain(|id, _| active.iter().any(|r| r.id == *id));
        }
        if let Ok(mut running) = self.running.lock() {
            *running = Some((Instant::now(), active.clone()));
        }
        Some(active)
    }

    /// Checks `rollout` when its interval has passed, and moves it when
    /// the figures say so.
    async fn check(&self, rollout: &Rollout) -> Result<()> {
        let settings = settings_of(rollout);
        let interval = Duration::from_millis(settings.check_interval_ms);
        let due = self.checks.lock().is_ok_and(|checks| {
            checks
                .get(&rollout.id)
                .is_none_or(|c| c.last_check.elapsed() >= interval)
        });
        if !due {
            return Ok(());
        }
        let plan = self.controller.lifecycle().plan(&rollout.model).await?;
        match plan.target() {
            Some(target) if target == rollout.stable_version => {}
            Some(target) if target == rollout.canary_version => {
                let reason =
                    format!("version {target} was made the serving version outside the rollout");
                self.complete(rollout, &reason, json!({}), ROLLOUT_ACTOR)
                    .await?;
                return Ok(());
            }
            moved => {
                let now = moved.map_or_else(|| "nothing".to_owned(), |v| format!("version {v}"));
                let reason = format!(
                    "the model's serving target moved from version {} to {now} outside the rollout",
                    rollout.stable_version
                );
                self.end(rollout, RolloutState::Aborted, &reason, json!({}))
                    .await?;
                return Ok(());
            }
        }
        if !plan
            .versions
            .iter()
            .any(|v| v.version == rollout.canary_version)
        {
            let reason = format!(
                "canary version {} was deleted from the registry",
                rollout.canary_version
            );
            self.end(rollout, RolloutState::Aborted, &reason, json!({}))
                .await?;
            return Ok(());
        }
        if rollout.state == RolloutState::Paused {
            return Ok(());
        }
        if let Some(reason) = self
            .controller
            .version_failure(&rollout.model, rollout.canary_version)
            .await
        {
            let reason = format!("the canary cannot serve: {reason}");
            self.end(rollout, RolloutState::RolledBack, &reason, json!({}))
                .await?;
            return Ok(());
        }
        let Some(live) = live_of(&self.controller, rollout) else {
            // Not routed here yet (still loading): nothing to judge.
            return Ok(());
        };
        let fleet = self.fleet_figures(rollout, &live).await?;
        let results = judge(&settings, &fleet.stable, &fleet.canary);
        let figures = json!({
            "stable": fleet.stable,
            "canary": fleet.canary,
            "replicas": fleet.replicas,
            "gates": results,
        });
        let (decision, gates) = {
            let Ok(mut checks) = self.checks.lock() else {
                return Ok(());
            };
            let fresh = || Checks {
                tracker: GateTracker::new(settings.failure_threshold),
                last_check: Instant::now(),
                results: Vec::new(),
                moved_at: rollout.updated_at,
            };
            let entry = checks.entry(rollout.id).or_insert_with(fresh);
            if entry.moved_at != rollout.updated_at {
                // Moved since (a step, a pause and resume), maybe through
                // another replica: failures in a row start again, as they
                // do after a move made here.
                *entry = fresh();
            }
            entry.last_check = Instant::now();
            let decision = entry.tracker.observe(&results);
            entry.results = results;
            super::gauges::publish(rollout, Some((&entry.results, &entry.tracker)));
            (decision, gates_json(&entry.results, &entry.tracker))
        };
        if self.shares_figures() {
            // For the status reads of the other replicas.
            if let Err(e) = self
                .controller
                .lifecycle()
                .registry()
                .put_rollout_check(rollout, &gates)
                .await
            {
                tracing::warn!(model = %rollout.model, rollout = rollout.id, error = %e, "cannot keep the rollout's gate check for the other replicas");
            }
        }
        match decision {
            Decision::Rollback { reason, .. } => {
                let reason = format!("gate {reason}");
                self.end(rollout, RolloutState::RolledBack, &reason, figures)
                    .await?;
            }
            Decision::Advance if rollout.state == RolloutState::Progressing => {
                let age_ms = ferroserve_registry::api_keys::now_ms() - rollout.step_started_at;
                let age = Duration::from_millis(u64::try_from(age_ms).unwrap_or(0));
                if step_done(&settings, age, canary_requests(&figures), true) {
                    self.advance(rollout, figures).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends `rollout` in `state` (aborted or rolled back) at its step,
    /// with the driver as the actor.
    async fn end(
        &self,
        rollout: &Rollout,
        state: RolloutState,
        reason: &str,
        figures: Value,
    ) -> Result<()> {
        let action = match state {
            RolloutState::RolledBack => AuditAction::RolloutRolledBack,
            _ => AuditAction::RolloutAborted,
        };
        self.change(
            rollout,
            state,
            rollout.step,
            action,
            reason,
            figures,
            ROLLOUT_ACTOR,
        )
        .await
        .map(drop)
    }

    /// Moves `rollout` past a step that passed: to the next step, to
    /// awaiting approval before the last, or to completion.
    async fn advance(&self, rollout: &Rollout, figures: Value) -> Result<()> {
        let settings = settings_of(rollout);
        let next = rollout.step + 1;
        let weight = settings.weight_at(rollout.step);
        if next < settings.final_step() {
            let reason = format!(
                "step {} ({weight}%) passed every gate; canary to {}%",
                rollout.step,
                settings.weight_at(next)
            );
            self.change(
                rollout,
                RolloutState::Progressing,
                next,
                AuditAction::RolloutStepped,
                &reason,
                figures,
                ROLLOUT_ACTOR,
            )
            .await?;
        } else if settings.approve_final {
            let reason = format!(
                "step {} ({weight}%) passed every gate; waiting for `rollout promote` to promote the canary",
                rollout.step
            );
            self.change(
                rollout,
                RolloutState::AwaitingApproval,
                rollout.step,
                AuditAction::RolloutAwaitingApproval,
                &reason,
                figures,
                ROLLOUT_ACTOR,
            )
            .await?;
        } else {
            let reason = format!(
                "step {} ({weight}%) passed every gate; canary promoted",
                rollout.step
            );
            self.complete(rollout, &reason, figures, ROLLOUT_ACTOR)
                .await?;
        }
        Ok(())
    }
}

/// The canary's request count in a check's figures.
fn canary_requests(figures: &Value) -> u64 {
    figures["canary"]["requests"].as_u64().unwrap_or(0)
}
