//! The worker task of a shadow lane: runs each queued copy on the shadow
//! version the way the pipeline's batch stage runs a request (its breaker
//! around its batcher) at background priority, without the result cache
//! or fallbacks, then compares the answer with the primary's.

use std::sync::{Arc, Weak};
use std::time::Instant;

use ferroserve_batcher::Priority;
use ferroserve_core::{InferRequest, Tensor};
use tokio::sync::mpsc;

use super::compare::{compare, prediction_source, Comparison, Incomparable};
use super::stats::ShadowStats;
use super::SHADOW_TIMEOUT;
use crate::cache::CacheDirective;
use crate::manager::InFlight;
use crate::pipeline::breaker::protect;
use crate::pipeline::{Deadline, SetBy};
use crate::{ModelManager, ServedVersion};

/// One copy waiting for the shadow.
pub(super) struct ShadowJob {
    /// The request, as the primary got it.
    pub(super) request: InferRequest,
    /// Label of the version that answered it.
    pub(super) primary_version: String,
    /// Outputs of the primary's answer.
    pub(super) primary_outputs: Vec<Tensor>,
}

/// What the worker runs copies with.
pub(super) struct ShadowWorker {
    model: String,
    /// Label of the shadow version.
    version: String,
    /// The shadow version, while something else keeps it.
    served: Weak<ServedVersion>,
    manager: Arc<ModelManager>,
    stats: Arc<ShadowStats>,
}

/// Runs the copies of `jobs_rx` one at a time until the lane is dropped.
pub(super) async fn shadow_task(mut jobs_rx: mpsc::Receiver<ShadowJob>, mut worker: ShadowWorker) {
    while let Some(job) = jobs_rx.recv().await {
        worker.run(job).await;
    }
}

impl ShadowWorker {
    pub(super) fn new(
        model: String,
        served: &Arc<ServedVersion>,
        manager: Arc<ModelManager>,
        stats: Arc<ShadowStats>,
    ) -> Self {
        ShadowWorker {
            model,
            version: served.version().to_string(),
            served: Arc::downgrade(served),
            manager,
            stats,
        }
    }

    async fn run(&mut self, job: ShadowJob) {
        let Some(held) = self.enter() else {
            self.stats.record_error();
            tracing::debug!(
                model = %self.model, version = %self.version,
                "shadow version is not served any more; copy counted as an error"
            );
            return;
        };
        let start = Instant::now();
        // The lane's own deadline, not the model's default: a copy waiting
        // behind online traffic at background priority says nothing about
        // the version's health, so its timeout must not open the breaker.
        let deadline = Deadline {
            at: start + SHADOW_TIMEOUT,
            set_by: SetBy::Client,
        };
        let result = protect(
            &self.manager,
            None,
            held.served(),
            job.request,
            Some(deadline),
            CacheDirective::default(),
            Priority::Background,
        )
        .await;
        match result {
            Ok(reached) => {
                self.stats.record_ok(start.elapsed());
                let comparison = self.compare(
                    &job.primary_version,
                    &reached.response.outputs,
                    &job.primary_outputs,
                );
                self.stats.record_comparison(&comparison);
            }
            Err(error) => {
                self.stats.record_error();
                tracing::debug!(model = %self.model, version = held.version(),
                    error = %error.message, "shadow copy failed");
            }
        }
    }

    /// Enters the shadow version: the one the lane was made with while it
    /// is alive and open, else the one the manager serves under its label
    /// now. The hold lets a swap drain the copy like any request.
    fn enter(&mut self) -> Option<InFlight> {
        if let Some(held) = self.served.upgrade().and_then(|served| served.enter()) {
            return Some(held);
        }
        let fresh = self.manager.get(&self.model, Some(&self.version)).ok()?;
        let held = fresh.enter()?;
        self.served = Arc::downgrade(&fresh);
        Some(held)
    }

    /// Compares the shadow's `shadow` outputs with the primary's, on the
    /// prediction output of the primary version (`primary_version`).
    fn compare(&self, primary_version: &str, shadow: &[Tensor], primary: &[Tensor]) -> Comparison {
        let source = self
            .manager
            .get(&self.model, Some(primary_version))
            .ok()
            .and_then(|served| prediction_source(served.signature()));
        match source {
            Some(source) => compare(&source, shadow, primary),
            None => Comparison::Incomparable(Incomparable::NoPredictionOutput),
        }
    }
}
