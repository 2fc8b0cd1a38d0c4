//! A rollout step's figures over the whole service. Each replica stores
//! its window's share every second (on a PostgreSQL registry that several
//! replicas use), and the leader judges the sum of every replica's share,
//! so gates see all the traffic however unevenly it reaches the replicas.
//! A share stays after its replica stops: the requests it answered count.

use std::time::Duration;

use ferroserve_registry::{DbKind, Rollout};

use super::driver::live_of;
use super::live::LiveRollout;
use super::service::Rollouts;
use super::window::{Side, SideFigures, WindowShare};
use crate::error::Result;

/// How often a replica stores its share of each running rollout.
pub(super) const SHARE_EVERY: Duration = Duration::from_secs(1);

/// Stable's and the canary's figures over every replica.
#[derive(Debug, Clone)]
pub(super) struct FleetFigures {
    pub(super) stable: SideFigures,
    pub(super) canary: SideFigures,
    /// Replicas whose shares were added up (this one included).
    pub(super) replicas: usize,
}

impl Rollouts {
    /// Whether replicas share their figures: the registry is PostgreSQL,
    /// which several replicas may use (SQLite serves one node).
    pub(super) fn shares_figures(&self) -> bool {
        self.controller.lifecycle().registry().db_kind() == DbKind::Postgres
    }

    /// Stores this replica's share of every running rollout it routes.
    pub(super) async fn share_figures(&self) {
        let Some(active) = self.running_rollouts().await else {
            return;
        };
        let registry = self.controller.lifecycle().registry();
        for rollout in active {
            let Some(live) = live_of(&self.controller, &rollout) else {
                continue;
            };
            let share = match serde_json::to_value(live.window().share()) {
                Ok(share) => share,
                Err(e) => {
                    tracing::warn!(rollout = rollout.id, error = %e, "cannot serialize a rollout share");
                    continue;
                }
            };
            if let Err(e) = registry
                .put_rollout_share(rollout.id, rollout.step, &self.replica, &share)
                .await
            {
                tracing::warn!(model = %rollout.model, rollout = rollout.id, error = %e, "cannot store this replica's rollout figures; trying again in a second");
            }
        }
    }

    /// The figures of `rollout`'s current step over every replica: this
    /// one's live window, and the shares the others stored.
    pub(super) async fn fleet_figures(
        &self,
        rollout: &Rollout,
        live: &LiveRollout,
    ) -> Result<FleetFigures> {
        let mut shares = vec![live.window().share()];
        if self.shares_figures() {
            let stored = self
                .controller
                .lifecycle()
                .registry()
                .rollout_shares(rollout.id, rollout.step)
                .await?;
            for (replica, share) in stored {
                if replica == self.replica {
                    continue;
                }
                match serde_json::from_value::<WindowShare>(share) {
                    Ok(share) => shares.push(share),
                    Err(e) => {
                        tracing::warn!(rollout = rollout.id, replica, error = %e, "unreadable rollout share left out")
                    }
                }
            }
        }
        Ok(FleetFigures {
            stable: WindowShare::merged(&shares, Side::Stable),
            canary: WindowShare::merged(&shares, Side::Canary),
            replicas: shares.len(),
        })
    }
}
