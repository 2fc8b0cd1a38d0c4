//! The rollout gauges: the canary's and stable's weight, the state, and
//! each gate's last value and consecutive failures.

use ferroserve_core::telemetry;
use ferroserve_registry::{Rollout, RolloutState};

use super::gates::{GateResult, GateTracker};
use super::service::settings_of;

/// Sets the gauges of `rollout`, and of its last gate check when given.
pub(super) fn publish(rollout: &Rollout, gates: Option<(&[GateResult], &GateTracker)>) {
    let model = rollout.model.clone();
    let canary_weight = match rollout.state {
        RolloutState::Completed => 100.0,
        RolloutState::RolledBack | RolloutState::Aborted => 0.0,
        _ => f64::from(settings_of(rollout).weight_at(rollout.step)),
    };
    metrics::gauge!(telemetry::ROLLOUT_WEIGHT, "model" => model.clone(),
        "version" => rollout.canary_version.to_string())
    .set(canary_weight);
    metrics::gauge!(telemetry::ROLLOUT_WEIGHT, "model" => model.clone(),
        "version" => rollout.stable_version.to_string())
    .set(100.0 - canary_weight);
    for state in RolloutState::ALL {
        let on = if state == rollout.state { 1.0 } else { 0.0 };
        metrics::gauge!(telemetry::ROLLOUT_STATE, "model" => model.clone(), "state" => state.as_str())
            .set(on);
    }
    if let Some((results, tracker)) = gates {
        for result in results {
            if let Some(value) = result.value {
                metrics::gauge!(telemetry::ROLLOUT_GATE_VALUE, "model" => model.clone(), "gate" => result.gate)
                    .set(value);
            }
            metrics::gauge!(telemetry::ROLLOUT_GATE_FAILURES, "model" => model.clone(), "gate" => result.gate)
                .set(f64::from(tracker.consecutive(result.gate)));
        }
    }
}
