//! Job leases: which runner holds a running job, and for how long.
//!
//! A runner claims a job with a lease ([`JobOwner::lease`]) and renews it
//! while the job runs (a heartbeat, and every checkpoint). Another runner
//! may claim the job only once the lease has run out, that is once its
//! holder has stopped renewing it (it died, hung, or lost the database), or
//! take it over at once when it has proved the holder gone (a dead process
//! on its own host). Every change is one `UPDATE` whose `WHERE` names the
//! holder it expects, so two runners never both hold a job, and a runner
//! that lost its job learns it at its next renewal or checkpoint
//! ([`RegistryError::JobLeaseLost`]).
//!
//! Times are the runners' clocks (unix ms): hosts sharing a registry need
//! clocks that agree to well within a lease.

use crate::db;
use crate::error::Result;
use crate::job_types::{Job, JobCheckpointOutcome, JobOwner};
use crate::jobs::{check_owner, job_from_row, lease_end, JOB_COLUMNS};
use crate::registry::Registry;
use sqlx::Row;

impl Registry {
    /// Claims a job for `owner` and returns it `Running`, held until
    /// `owner.lease` from now; `None` when another runner holds it or it
    /// has finished.
    ///
    /// A `Queued` job is claimed; so is a `Running` job whose lease has
    /// run out (or that has none, or no owner): its runner is gone, and
    /// the job resumes from its last checkpoint. A job whose lease is still
    /// running is not, even by its own holder. `started_at` keeps the first
    /// claim's time. A claimed job may carry `cancel_requested`: the runner
    /// should then finish it as `Cancelled` instead of running it.
    pub async fn claim_job(&self, id: &str, owner: &JobOwner) -> Result<Option<Job>> {
        self.claim_where(
            id,
            owner,
            "(state = 'queued' OR (state = 'running' AND \
             (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= $6)))",
            None,
        )
        .await
    }

    /// Takes over a `Running` job from the runner `gone`, whatever its
    /// lease says, for a caller that knows `gone` has stopped (a process
    /// of its own host that is no longer alive); `None` when `gone` no
    /// longer holds the job.
    pub async fn take_over_job(
        &self,
        id: &str,
        owner: &JobOwner,
        gone: &str,
    ) -> Result<Option<Job>> {
        self.claim_where(id, owner, "state = 'running' AND owner = $7", Some(gone))
            .await
    }

    /// Claims job `id` for `owner` where `condition` holds ($6 is now, $7
    /// is `gone`).
    async fn claim_where(
        &self,
        id: &str,
        owner: &JobOwner,
        condition: &str,
        gone: Option<&str>,
    ) -> Result<Option<Job>> {
        check_owner(owner)?;
        let now = db::now_ms();
        let sql = format!(
            "UPDATE jobs SET state = 'running', owner = $1, owner_host = $2, owner_pid = $3, \
             lease_expires_at = $4, started_at = COALESCE(started_at, $6), updated_at = $6 \
             WHERE id = $5 AND {condition} RETURNING {JOB_COLUMNS}"
        );
        let mut query = sqlx::query(&sql)
            .bind(owner.id.as_str())
            .bind(owner.host.clone())
            .bind(owner.pid.map(i64::from))
            .bind(lease_end(now, owner))
            .bind(id)
            .bind(now);
        if let Some(gone) = gone {
            query = query.bind(gone);
        }
        match query.fetch_optional(&self.pool).await? {
            Some(row) => {
                let job = job_from_row(&row)?;
                tracing::info!(
                    job = id,
                    owner = owner.id.as_str(),
                    from = gone.unwrap_or(""),
                    rows_done = job.rows_done,
                    "job claimed"
                );
                Ok(Some(job))
            }
            None => {
                // Only to tell a missing job from one that is taken.
                self.job(id).await?;
                Ok(None)
            }
        }
    }

    /// Renews `owner`'s lease on a running job it holds (the heartbeat):
    /// it is held for `owner.lease` from now. Returns
    /// [`JobCheckpointOutcome::CancelRequested`] once a cancel was asked;
    /// refused with [`RegistryError::JobLeaseLost`] when another runner
    /// holds the job or it is no longer running.
    pub async fn renew_job_lease(
        &self,
        id: &str,
        owner: &JobOwner,
    ) -> Result<JobCheckpointOutcome> {
        let now = db::now_ms();
        let row = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1 \
             WHERE id = $2 AND state = 'running' AND owner = $3 RETURNING cancel_requested",
        )
        .bind(lease_end(now, owner))
        .bind(id)
        .bind(owner.id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(self
                .refused_update(id, owner, "renewed", "its lease was being renewed")
                .await);
        };
        if row.try_get::<i64, _>("cancel_requested")? != 0 {
            Ok(JobCheckpointOutcome::CancelRequested)
        } else {
            Ok(JobCheckpointOutcome::Continue)
        }
    }

    /// Lets go of a running job `owner` holds without finishing it (its
    /// runner stops, and the job is to resume from its last checkpoint):
    /// the lease ends now, so any runner may claim the job at once. The
    /// job keeps `owner` as the runner that ran it last. Nothing happens
    /// when `owner` no longer holds the job.
    pub async fn release_job(&self, id: &str, owner: &JobOwner) -> Result<()> {
        let now = db::now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1, updated_at = $1 \
             WHERE id = $2 AND state = 'running' AND owner = $3",
        )
        .bind(now)
        .bind(id)
        .bind(owner.id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            tracing::info!(job = id, owner = owner.id.as_str(), "job released");
        }
        Ok(())
    }
}
