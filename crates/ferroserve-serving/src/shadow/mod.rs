//! Shadow traffic: a copy of a share of a model's answered requests runs on
//! another version in the background, and its answers are compared with
//! the primary's and never returned. A [`ShadowLane`] owns one bounded
//! queue and one worker task; offering a copy never waits (a full queue
//! drops it and counts the drop), so the primary path pays for a random
//! draw and, when sampled, a clone.

pub mod compare;
pub mod policy;
pub mod stats;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use ferroserve_core::{InferRequest, InferResponse};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{ModelManager, ServedVersion};

pub use compare::{Comparison, Incomparable};
pub use policy::{ShadowPolicy, DEFAULT_SHADOW_QUEUE, MAX_SHADOW_QUEUE};
pub use stats::{ComparisonReport, Quantiles, ShadowReport, ShadowStats};

use worker::{shadow_task, ShadowJob, ShadowWorker};

/// How long the shadow may take for one copy.
pub const SHADOW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Copies a share of one model's traffic to its shadow version and keeps
/// the figures of how the shadow answers. Dropping the lane stops its
/// worker at once (a copy in flight is abandoned).
pub struct ShadowLane {
    version: String,
    policy: ShadowPolicy,
    queue_capacity: usize,
    jobs_tx: mpsc::Sender<ShadowJob>,
    stats: Arc<ShadowStats>,
    worker: JoinHandle<()>,
}

impl ShadowLane {
    /// A lane copying `model`'s traffic to `served` (the shadow version)
    /// as `policy` says, with its worker spawned on the current Tokio
    /// runtime. The worker holds `served` only weakly: a version that was
    /// retired or reloaded is looked up again in `manager` by its label,
    /// and a lane never keeps a version alive. `policy` is expected to be
    /// validated; a queue size out of range is brought into it.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn new(
        model: &str,
        served: Arc<ServedVersion>,
        policy: &ShadowPolicy,
        manager: Arc<ModelManager>,
    ) -> Arc<ShadowLane> {
        let version = served.version().to_string();
        let queue_capacity = policy.queue.clamp(1, MAX_SHADOW_QUEUE);
        let (jobs_tx, jobs_rx) = mpsc::channel(queue_capacity);
        let stats = Arc::new(ShadowStats::new(model, &version));
        let worker = ShadowWorker::new(model.to_string(), &served, manager, stats.clone());
        let worker = tokio::spawn(shadow_task(jobs_rx, worker));
        Arc::new(ShadowLane {
            version,
            policy: policy.clone(),
            queue_capacity,
            jobs_tx,
            stats,
            worker,
        })
    }

    /// One draw against the policy's percent: whether this request is
    /// copied to the shadow.
    pub fn sampled(&self) -> bool {
        // `random` is in [0, 1): percent 100 always samples; NaN never does.
        rand::random::<f64>() * 100.0 < self.policy.percent
    }

    /// Queues a copy of `request`, answered by the primary with `primary`,
    /// for the shadow. Never waits: when the queue is full (or the lane is
    /// stopping) the copy is dropped and counted. The primary's answer is
    /// only read.
    pub fn offer(&self, request: InferRequest, primary: &InferResponse) {
        // Room is reserved first, so a full queue costs no clone.
        match self.jobs_tx.try_reserve() {
            Ok(permit) => {
                permit.send(ShadowJob {
                    request,
                    primary_version: primary.model_version.clone(),
                    primary_outputs: primary.outputs.clone(),
                });
                self.stats.record_queued();
            }
            Err(_full_or_closed) => self.stats.record_dropped(),
        }
    }

    /// The figures so far.
    pub fn report(&self) -> ShadowReport {
        let queued_now = self.queue_capacity - self.jobs_tx.capacity();
        self.stats
            .report(&self.policy, self.queue_capacity, queued_now)
    }

    /// Label of the shadow version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The policy the lane runs.
    pub fn policy(&self) -> &ShadowPolicy {
        &self.policy
    }

    /// The lane's figures, as its worker updates them.
    pub fn stats(&self) -> &ShadowStats {
        &self.stats
    }
}

impl Drop for ShadowLane {
    fn drop(&mut self) {
        // Closing the queue alone would let the worker drain it first, up
        // to `queue` copies of up to ten seconds each, holding the version.
        self.worker.abort();
    }
}
