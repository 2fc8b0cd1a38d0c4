//! Types of the batch-job store: batch and async inference jobs, their
//! state, progress and checkpoint.
//!
//! Times are unix milliseconds (UTC), as everywhere in the registry.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RegistryError;

/// Where a job is in its life.
///
/// `Queued` → `Running` → one of the finished states; a `Queued` job may
/// also be cancelled directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Created, not yet claimed by a runner.
    Queued,
    /// Claimed by a runner (or left by one that stopped: see
    /// [`Registry::claim_job`](crate::Registry::claim_job)).
    Running,
    /// Every row was processed.
    Succeeded,
    /// Stopped on an error.
    Failed,
    /// Stopped at a caller's request.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state's name as stored and shown ("queued", "running", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended (succeeded, failed or cancelled) and will
    /// not change any more.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = RegistryError;

    /// Parses a state name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                RegistryError::Invalid(format!(
                    "unknown job state '{s}': expected one of queued, running, succeeded, \
                     failed, cancelled"
                ))
            })
    }
}

/// What the caller supplies to create a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Id chosen by the caller (a UUID): 1-128 characters of `[A-Za-z0-9_.-]`.
    pub id: String,
    /// What the job does: `batch` (a whole input file) or `infer` (one
    /// asynchronous request).
    pub kind: String,
    /// Model the job runs; it need not be registered (models served from
    /// files have no registry entry).
    pub model: String,
    /// Version, stage or alias of the model, as the caller gave it.
    pub version: Option<String>,
    /// Settings of the job (input, output, options), a JSON object of at
    /// most 64 KiB; opaque to the registry.
    pub spec: Value,
    /// Number of input rows, when known up front.
    pub rows_total: Option<i64>,
    /// Who asked for the job.
    pub actor: String,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Id chosen by the caller.
    pub id: String,
    /// `batch` or `infer`.
    pub kind: String,
    /// Model the job runs.
    pub model: String,
    /// Version, stage or alias of the model, as the caller gave it.
    pub version: Option<String>,
    /// Settings of the job, a JSON object.
    pub spec: Value,
    /// Where the job is in its life.
    pub state: JobState,
    /// Number of input rows, when known.
    pub rows_total: Option<i64>,
    /// Rows processed up to the last checkpoint; never decreases.
    pub rows_done: i64,
    /// Rows that failed up to the last checkpoint.
    pub rows_failed: i64,
    /// Runner state saved at the last checkpoint, a JSON object (`{}`
    /// before the first); opaque to the registry.
    pub checkpoint: Value,
    /// Why the job failed (or a note left by the runner when it finished).
    pub error: Option<String>,
    /// Runner that claimed the job last (a [`JobOwner::id`]).
    pub owner: Option<String>,
    /// Host the runner that claimed the job last runs on.
    pub owner_host: Option<String>,
    /// Process id of that runner on its host.
    pub owner_pid: Option<i64>,
    /// Until when (unix ms) the runner holds a running job unless it
    /// renews its lease; `None` or past: any runner may claim it.
    pub lease_expires_at: Option<i64>,
    /// Who asked for the job.
    pub actor: String,
    /// When the job was created (unix ms).
    pub created_at: i64,
    /// When a runner first claimed the job (unix ms).
    pub started_at: Option<i64>,
    /// When the job last changed (unix ms).
    pub updated_at: i64,
    /// When the job finished (unix ms).
    pub finished_at: Option<i64>,
    /// Whether a cancel was asked while the job was running; the runner
    /// learns it from its next checkpoint.
    pub cancel_requested: bool,
}

/// How long a runner holds a job without renewing its lease, unless it
/// says otherwise: long enough to ride out a slow database, short enough
/// that a job left by a vanished runner is resumed soon.
pub const DEFAULT_JOB_LEASE: Duration = Duration::from_secs(30);

/// How often a runner renews the leases of its running jobs by default:
/// a third of the lease, so two renewals may fail before it is lost.
pub const DEFAULT_JOB_HEARTBEAT: Duration = Duration::from_secs(10);

/// A runner of jobs: one process, with an id of its own for each start
/// (never shared with another process, nor with its own next start), and
/// where it runs, recorded with each claim for people and for telling a
/// dead runner on the same host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOwner {
    /// Unique id of this runner (a UUID made at start): 1-128 characters.
    pub id: String,
    /// Host name the runner runs on.
    pub host: Option<String>,
    /// Process id of the runner on its host.
    pub pid: Option<u32>,
    /// How long a claim, renewal or checkpoint holds the job.
    pub lease: Duration,
}

impl JobOwner {
    /// A runner called `id`, on no named host, with the default lease.
    pub fn new(id: impl Into<String>) -> Self {
        JobOwner {
            id: id.into(),
            host: None,
            pid: None,
            lease: DEFAULT_JOB_LEASE,
        }
    }

    /// The same runner with leases of `lease`.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The runner as people read it: `ID (pid PID on HOST)`.
    pub fn describe(id: &str, host: Option<&str>, pid: Option<i64>) -> String {
        match (host, pid) {
            (Some(host), Some(pid)) => format!("{id} (pid {pid} on {host})"),
            (Some(host), None) => format!("{id} (on {host})"),
            (None, Some(pid)) => format!("{id} (pid {pid})"),
            (None, None) => id.to_owned(),
        }
    }
}

/// Which jobs [`Registry::list_jobs`](crate::Registry::list_jobs) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this model.
    pub model: Option<String>,
    /// At most this many jobs, 1 to 10 000 (default 100).
    pub limit: i64,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            state: None,
            model: None,
            limit: 100,
        }
    }
}

/// Progress a runner saves after each chunk with
/// [`Registry::checkpoint_job`](crate::Registry::checkpoint_job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Rows processed so far; must not be lower than the stored value.
    pub rows_done: i64,
    /// Rows that failed so far.
    pub rows_failed: i64,
    /// Number of input rows once known; `None` keeps the stored value.
    pub rows_total: Option<i64>,
    /// Runner state to resume from, a JSON object of at most 1 MiB.
    pub checkpoint: Value,
}

/// What a runner does after a checkpoint was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCheckpointOutcome {
    /// Go on with the next chunk.
    Continue,
    /// A cancel was asked: stop and finish the job as
    /// [`JobState::Cancelled`].
    CancelRequested,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            assert_eq!(
                serde_json::to_value(state).expect("serialize"),
                Value::String(state.as_str().to_owned())
            );
        }
        assert_eq!("RUNNING".parse::<JobState>(), Ok(JobState::Running));
        let e = "done".parse::<JobState>().expect_err("unknown");
        assert!(e.to_string().starts_with("unknown job state 'done'"), "{e}");
        let finished: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(
            finished,
            [JobState::Succeeded, JobState::Failed, JobState::Cancelled]
        );
    }
}
