//! Limits on the work a server takes in: how many jobs may wait or run, in
//! all and per client, and how much free disk the data folder keeps, so
//! that clients cannot fill the queue or the disk.

use std::path::Path;

use ferroserve_registry::Job;

use super::error::JobError;

/// Limits on new jobs. A job counts from its submission until it finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobQuotas {
    /// Unfinished jobs the server keeps at most; past it new ones get 429.
    pub max_queued: usize,
    /// Unfinished jobs one client may have at most; past it 429.
    pub max_queued_per_client: usize,
    /// Free bytes the data folder's disk must keep; below it new jobs get 507.
    pub min_free_disk_bytes: u64,
}

/// Default of [`JobQuotas::max_queued`].
pub const DEFAULT_MAX_QUEUED_JOBS: usize = 1000;
/// Default of [`JobQuotas::max_queued_per_client`].
pub const DEFAULT_MAX_QUEUED_JOBS_PER_CLIENT: usize = 100;
/// Default of [`JobQuotas::min_free_disk_bytes`]: 1 GiB.
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 1024 * 1024 * 1024;

impl Default for JobQuotas {
    fn default() -> Self {
        JobQuotas {
            max_queued: DEFAULT_MAX_QUEUED_JOBS,
            max_queued_per_client: DEFAULT_MAX_QUEUED_JOBS_PER_CLIENT,
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
        }
    }
}

impl JobQuotas {
    /// Refuses a new job of `actor` when `unfinished` (every job not yet
    /// finished) already holds the most the server or the client may have.
    pub fn check_queue(&self, unfinished: &[Job], actor: &str) -> Result<(), JobError> {
        if unfinished.len() >= self.max_queued {
            return Err(JobError::TooManyJobs(format!(
                "the server has {} unfinished jobs, the most it takes (max_queued_jobs); \
                 retry once some have finished",
                unfinished.len()
            )));
        }
        let mine = unfinished.iter().filter(|job| job.actor == actor).count();
        if mine >= self.max_queued_per_client {
            return Err(JobError::TooManyJobs(format!(
                "client '{actor}' has {mine} unfinished jobs, the most one client may have \
                 (max_queued_jobs_per_client); retry once some have finished"
            )));
        }
        Ok(())
    }

    /// Refuses a new job when the disk of `dir` has less free space than
    /// [`JobQuotas::min_free_disk_bytes`].
    pub fn check_disk(&self, dir: &Path) -> Result<(), JobError> {
        let free = free_bytes(dir).map_err(|e| {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read the free disk space");
            JobError::Internal("cannot read the free space of the data folder".to_owned())
        })?;
        if free < self.min_free_disk_bytes {
            return Err(JobError::DiskFull(format!(
                "the server's data folder has {free} bytes free, less than the {} it keeps \
                 (min_free_disk_bytes); retry later",
                self.min_free_disk_bytes
            )));
        }
        Ok(())
    }
}

/// Bytes an unprivileged process may still write on the disk of `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stats = rustix::fs::statvfs(dir)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(actor: &str) -> Job {
        serde_json::from_value(serde_json::json!({
            "id": "j", "kind": "batch", "model": "m", "version": null, "spec": {},
            "state": "queued", "rows_total": null, "rows_done": 0, "rows_failed": 0,
            "checkpoint": {}, "error": null, "owner": null, "owner_host": null,
            "owner_pid": null, "lease_expires_at": null, "actor": actor,
            "created_at": 0, "started_at": null, "updated_at": 0, "finished_at": null,
            "cancel_requested": false
        }))
        .expect("a job record")
    }

    #[test]
    fn queues_are_capped_in_all_and_per_client() {
        let quotas = JobQuotas {
            max_queued: 3,
            max_queued_per_client: 2,
            min_free_disk_bytes: 0,
        };
        let jobs = vec![job("a"), job("a"), job("b")];
        let e = quotas.check_queue(&jobs, "c").unwrap_err();
        assert_eq!(e.kind(), ferroserve_core::ErrorKind::QueueFull);
        assert!(e.to_string().contains("max_queued_jobs"), "{e}");
        let e = quotas.check_queue(&jobs[..2], "a").unwrap_err();
        assert!(e.to_string().contains("client 'a'"), "{e}");
        quotas.check_queue(&jobs[..2], "b").expect("b has room");
    }

    #[test]
    fn a_disk_below_the_threshold_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let roomy = JobQuotas {
            min_free_disk_bytes: 0,
            ..JobQuotas::default()
        };
        roomy
            .check_disk(dir.path())
            .expect("any disk has 0 bytes free");
        let greedy = JobQuotas {
            min_free_disk_bytes: u64::MAX,
            ..JobQuotas::default()
        };
        let e = greedy.check_disk(dir.path()).unwrap_err();
        assert_eq!(e.kind(), ferroserve_core::ErrorKind::InsufficientStorage);
        assert_eq!(
            ferroserve_core::ErrorKind::InsufficientStorage.http_status(),
            507
        );
    }
}
