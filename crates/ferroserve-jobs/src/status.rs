//! What a client sees of a job: its state and counts as stored, plus the
//! rate and time left while it runs here.

use ferroserve_registry::{Job, JobState};
use serde::Serialize;

use super::files::Checkpoint;

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// Job id.
    pub id: String,
    /// `batch` or `infer`.
    pub kind: String,
    /// Model the job runs on.
    pub model: String,
    /// Version asked for; the serving one when absent.
    pub version: Option<String>,
    /// Versions that scored the job's rows, in order of first use (more
    /// than one when the serving version changed while the job ran).
    pub scored_by: Vec<String>,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: JobState,
    /// Input rows, when known.
    pub rows_total: Option<i64>,
    /// Rows with a result.
    pub rows_done: i64,
    /// Rows reported bad.
    pub rows_failed: i64,
    /// Share of the input handled, from 0 to 1, when the total is known.
    pub progress: Option<f64>,
    /// Rows per second while running on this server.
    pub rows_per_second: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
    /// Why the job failed.
    pub error: Option<String>,
    /// Runner that runs the job (or ran it last).
    pub owner: Option<String>,
    /// Host that runner runs on.
    pub owner_host: Option<String>,
    /// Process id of that runner on its host.
    pub owner_pid: Option<i64>,
    /// Until when (ms since the Unix epoch) the runner holds the running
    /// job unless it renews its lease; once past, another may take it up.
    pub lease_expires_at: Option<i64>,
    /// A cancel was asked and the job stops at its next checkpoint.
    pub cancel_requested: bool,
    /// Who submitted it.
    pub actor: String,
    /// Times in ms since the Unix epoch.
    pub created_at: i64,
    /// When it first started running.
    pub started_at: Option<i64>,
    /// Last change (a checkpoint, for a running job).
    pub updated_at: i64,
    /// When it reached its final state.
    pub finished_at: Option<i64>,
    /// The job's settings.
    pub spec: serde_json::Value,
}

impl JobStatus {
    /// The status of `job`; `rate` is its rows per second, when running here.
    pub fn new(job: Job, rate: Option<f64>) -> Self {
        let handled = (job.rows_done + job.rows_failed).max(0);
        let read = (Checkpoint::rows_read_of(&job) as i64).max(handled);
        let progress = job.rows_total.map(|total| {
            if total <= 0 {
                1.0
            } else {
                (read as f64 / total as f64).min(1.0)
            }
        });
        let running = job.state == JobState::Running;
        let rate = rate.filter(|_| running);
        let eta_seconds = match (rate, job.rows_total) {
            (Some(rate), Some(total)) if rate > 0.0 => {
                Some(((total - read).max(0) as f64 / rate * 10.0).round() / 10.0)
            }
            _ => None,
        };
        let scored_by = job
            .checkpoint
            .get("versions")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        JobStatus {
            progress,
            scored_by,
            owner: job.owner,
            owner_host: job.owner_host,
            owner_pid: job.owner_pid,
            lease_expires_at: job.lease_expires_at,
            rows_per_second: rate.map(|r| r.round()),
            eta_seconds,
            id: job.id,
            kind: job.kind,
            model: job.model,
            version: job.version,
            state: job.state,
            rows_total: job.rows_total,
            rows_done: job.rows_done,
            rows_failed: job.rows_failed,
            error: job.error,
            cancel_requested: job.cancel_requested,
            actor: job.actor,
            created_at: job.created_at,
            started_at: job.started_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
            spec: job.spec,
        }
    }
}
