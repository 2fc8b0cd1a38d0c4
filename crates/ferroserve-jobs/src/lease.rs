//! A running job's lease as its runner sees it: renewed by a heartbeat
//! task (and by every checkpoint), and checked before the runner writes
//! anything, so that a runner that lost its job to another process stops
//! without touching the job's files or record again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferroserve_registry::{JobCheckpointOutcome, JobOwner, Registry, RegistryError};
use tokio::task::JoinHandle;

/// The lease this process holds on one running job.
#[derive(Debug)]
pub(crate) struct JobLease {
    state: Mutex<LeaseState>,
}

#[derive(Debug)]
struct LeaseState {
    /// When the lease was last renewed (or claimed).
    renewed: Instant,
    /// Why the job was lost, once it was.
    lost: Option<String>,
}

impl JobLease {
    /// A lease just claimed.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(JobLease {
            state: Mutex::new(LeaseState {
                renewed: Instant::now(),
                lost: None,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a renewal that started at `at`.
    pub(crate) fn renewed(&self, at: Instant) {
        let mut state = self.state();
        state.renewed = state.renewed.max(at);
    }

    /// Notes that the job was lost, and why.
    pub(crate) fn lose(&self, why: String) {
        self.state().lost.get_or_insert(why);
    }

    /// Why the job was lost, if it was.
    pub(crate) fn lost(&self) -> Option<String> {
        self.state().lost.clone()
    }

    /// Whether the last renewal is old enough (half of `lease`) that the
    /// runner should renew before it writes: a process that was paused
    /// longer than its heartbeat must not write on a lease that may be
    /// another's by now.
    pub(crate) fn needs_renewal(&self, lease: Duration) -> bool {
        self.state().renewed.elapsed() >= lease / 2
    }

    /// Renews the lease now; a lost job is noted (and reported as an
    /// error), a cancel request is returned.
    pub(crate) async fn renew(
        &self,
        registry: &Registry,
        id: &str,
        owner: &JobOwner,
    ) -> Result<JobCheckpointOutcome, RegistryError> {
        let at = Instant::now();
        match registry.renew_job_lease(id, owner).await {
            Ok(outcome) => {
                self.renewed(at);
                Ok(outcome)
            }
            Err(e @ RegistryError::JobLeaseLost { .. }) => {
                self.lose(e.to_string());
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// Renews `lease` on job `id` every `every` until the job is lost or the
/// task is aborted (when the runner is done).
pub(crate) fn heartbeat_task(
    registry: Registry,
    id: String,
    owner: JobOwner,
    lease: Arc<JobLease>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match lease.renew(&registry, &id, &owner).await {
                Ok(_) => {}
                Err(RegistryError::JobLeaseLost { .. }) => {
                    tracing::error!(job = %id, owner = %owner.id, "job lost: another runner holds it now; this process stops running it");
                    return;
                }
                // The next beat tries again; the lease outlives two misses.
                Err(e) => tracing::warn!(job = %id, error = %e, "cannot renew the lease of a job"),
            }
        }
    })
}
