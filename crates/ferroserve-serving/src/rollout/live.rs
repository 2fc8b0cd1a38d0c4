//! A rollout as one server routes it: which step and weight are in force,
//! and the window of figures its requests leave (stable and canary side
//! by side), with the predicted classes of classifiers.

use std::time::Duration;

use ferroserve_core::Tensor;
use ferroserve_monitor::features::PredictionSource;
use ferroserve_monitor::quality::Task;

use super::window::{Outcome, RolloutWindow, Side};
use crate::ServedVersion;

/// The routed side of a rollout on this server.
pub struct LiveRollout {
    /// Registry id of the rollout.
    pub id: i64,
    /// Step in force.
    pub step: u32,
    /// Canary percent of the requests naming no version.
    pub weight: u32,
    /// Stable version label.
    pub stable: String,
    /// Canary version label.
    pub canary: String,
    window: RolloutWindow,
    /// Where a classifier's predicted class is read (`None`: not a classifier).
    classes: Option<PredictionSource>,
}

impl LiveRollout {
    /// Step `step` (at `weight` percent) of rollout `id` from `stable` to
    /// `canary`, with an empty window.
    pub fn new(
        id: i64,
        step: u32,
        weight: u32,
        stable: &ServedVersion,
        canary: &ServedVersion,
    ) -> LiveRollout {
        let classes = PredictionSource::find(stable.signature(), None)
            .filter(|source| source.task == Task::Classification);
        LiveRollout {
            id,
            step,
            weight,
            stable: stable.version().to_owned(),
            canary: canary.version().to_owned(),
            window: RolloutWindow::new(),
            classes,
        }
    }

    /// Whether this is step `step` of rollout `id` at `weight`.
    pub fn is(&self, id: i64, step: u32, weight: u32) -> bool {
        self.id == id && self.step == step && self.weight == weight
    }

    /// Counts one call answered (`outputs`) or failed with `status`.
    pub fn record(
        &self,
        side: Side,
        status: u16,
        elapsed: Duration,
        fallback: bool,
        outputs: Option<&[Tensor]>,
    ) {
        let classes: Vec<String> = match (&self.classes, outputs) {
            (Some(source), Some(outputs)) if !fallback => source
                .read(outputs)
                .map(|outcomes| outcomes.iter().map(|o| o.to_label()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        self.window.record(
            side,
            &Outcome {
                status,
                elapsed,
                fallback,
                classes: &classes,
            },
        );
    }

    /// The figures since the step began on this server.
    pub fn window(&self) -> &RolloutWindow {
        &self.window
    }
}
