//! The batch-job store: batch and async inference jobs with their progress
//! and last checkpoint, so that a job interrupted by a crash resumes from
//! that checkpoint on restart.
//!
//! Every state change is one `UPDATE` whose `WHERE` names the state (and
//! owner) it starts from, or one transaction, so a crash never leaves a
//! half-written job and two runners never both win a claim. A running job
//! is held by its runner's lease (see `job_leases`): checkpoints and the
//! finish are refused to any other runner. Creating and
//! cancelling a job write an audit event in the same transaction; the audit
//! log has no foreign key to models, so this works for models served from
//! files too. Claims, checkpoints and finishes are the runner's bookkeeping
//! and are not audited (a checkpoint per chunk would flood the log).

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::{RegistryError, Result};
use crate::job_types::{
    Job, JobCheckpointOutcome, JobFilter, JobOwner, JobProgress, JobState, NewJob,
};
use crate::registry::Registry;
use crate::validate;

/// Kinds of job a caller may create.
const KINDS: [&str; 2] = ["batch", "infer"];
/// Largest serialized spec accepted, in bytes.
const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Largest serialized checkpoint accepted, in bytes.
const MAX_CHECKPOINT_BYTES: usize = 1024 * 1024;
/// Longest model name, version text or owner accepted, in bytes.
const MAX_LABEL: usize = 128;
const MAX_LIST_LIMIT: i64 = 10_000;

pub(crate) const JOB_COLUMNS: &str = "id, kind, model, version, spec, state, rows_total, \
    rows_done, rows_failed, checkpoint, error, owner, owner_host, owner_pid, lease_expires_at, \
    actor, created_at, started_at, updated_at, finished_at, cancel_requested";
/// SQL list of the finished states.
const FINISHED: &str = "('succeeded', 'failed', 'cancelled')";

impl Registry {
    /// Creates a `Queued` job and records a `create_job` audit event.
    ///
    /// Refused when the id is not 1-128 characters of `[A-Za-z0-9_.-]`,
    /// the kind is not `batch` or `infer`, the spec is not a JSON object of
    /// at most 64 KiB, or a job with this id exists ([`RegistryError::JobExists`]).
    /// The model need not be registered.
    pub async fn create_job(&self, job: NewJob) -> Result<Job> {
        validate_new_job(&job)?;
        let now = db::now_ms();
        let job = Job {
            id: job.id,
            kind: job.kind,
            model: job.model,
            version: job.version,
            spec: job.spec,
            state: JobState::Queued,
            rows_total: job.rows_total,
            rows_done: 0,
            rows_failed: 0,
            checkpoint: Value::Object(Default::default()),
            error: None,
            owner: None,
            owner_host: None,
            owner_pid: None,
            lease_expires_at: None,
            actor: job.actor,
            created_at: now,
            started_at: None,
            updated_at: now,
            finished_at: None,
            cancel_requested: false,
        };
        let mut tx = self.write_transaction().await?;
        let inserted = sqlx::query(
            "INSERT INTO jobs (id, kind, model, version, spec, state, rows_total, checkpoint, \
             actor, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(job.id.as_str())
        .bind(job.kind.as_str())
        .bind(job.model.as_str())
        .bind(job.version.clone())
        .bind(db::to_text(&job.spec)?)
        .bind(job.state.as_str())
        .bind(job.rows_total)
        .bind(db::to_text(&job.checkpoint)?)
        .bind(job.actor.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(RegistryError::JobExists(job.id))
            }
            Err(e) => return Err(e.into()),
        }
        let event = job_audit(
            &job,
            AuditAction::CreateJob,
            None,
            Some(db::snapshot(&job)?),
        );
        db::record(&mut tx, now, event).await?;
        tx.commit().await?;
        tracing::info!(
            job = job.id,
            model = job.model,
            kind = job.kind,
            "job created"
        );
        Ok(job)
    }

    /// Returns one job, or [`RegistryError::JobNotFound`].
    pub async fn job(&self, id: &str) -> Result<Job> {
        let mut conn = self.pool.acquire().await?;
        require_job(&mut conn, id).await
    }

    /// The jobs matching `filter`, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        if !(1..=MAX_LIST_LIMIT).contains(&filter.limit) {
            return Err(RegistryError::Invalid(format!(
                "job list limit is {}; it must be between 1 and {MAX_LIST_LIMIT}",
                filter.limit
            )));
        }
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if filter.state.is_some() {
            sql += &format!(" AND state = ${}", next());
        }
        if filter.model.is_some() {
            sql += &format!(" AND model = ${}", next());
        }
        sql += &format!(" ORDER BY created_at DESC, seq DESC LIMIT ${}", next());
        let mut query = sqlx::query(&sql);
        if let Some(state) = filter.state {
            query = query.bind(state.as_str());
        }
        if let Some(model) = &filter.model {
            query = query.bind(model.as_str());
        }
        let rows = query.bind(filter.limit).fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Saves the progress of a `Running` job held by `owner`: counters,
    /// total, checkpoint and `updated_at` in one `UPDATE`, which also
    /// renews the owner's lease.
    ///
    /// Refused with [`RegistryError::JobLeaseLost`] when another runner
    /// holds the job or it is no longer running, and refused when
    /// `rows_done` would decrease. Returns
    /// [`JobCheckpointOutcome::CancelRequested`] once a cancel was asked.
    pub async fn checkpoint_job(
        &self,
        id: &str,
        owner: &JobOwner,
        progress: JobProgress,
    ) -> Result<JobCheckpointOutcome> {
        validate_progress(id, &progress)?;
        let checkpoint = db::to_text(&progress.checkpoint)?;
        if checkpoint.len() > MAX_CHECKPOINT_BYTES {
            return Err(RegistryError::Invalid(format!(
                "checkpoint of job '{id}' has {} bytes serialized; \
                 at most {MAX_CHECKPOINT_BYTES} are allowed",
                checkpoint.len()
            )));
        }
        let now = db::now_ms();
        let row = sqlx::query(
            "UPDATE jobs SET rows_done = $1, rows_failed = $2, \
             rows_total = COALESCE($3, rows_total), checkpoint = $4, updated_at = $5, \
             lease_expires_at = $6 \
             WHERE id = $7 AND state = 'running' AND owner = $8 AND rows_done <= $1 \
             RETURNING cancel_requested",
        )
        .bind(progress.rows_done)
        .bind(progress.rows_failed)
        .bind(progress.rows_total)
        .bind(checkpoint)
        .bind(now)
        .bind(lease_end(now, owner))
        .bind(id)
        .bind(owner.id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            let job = self.job(id).await?;
            check_held(&job, owner, "checkpointed")?;
            if job.rows_done > progress.rows_done {
                return Err(RegistryError::Invalid(format!(
                    "rows_done of job '{id}' cannot go back from {} to {}",
                    job.rows_done, progress.rows_done
                )));
            }
            return Err(RegistryError::Conflict(format!(
                "job '{id}' changed while its checkpoint was being saved; try again"
            )));
        };
        if row.try_get::<i64, _>("cancel_requested")? != 0 {
            Ok(JobCheckpointOutcome::CancelRequested)
        } else {
            Ok(JobCheckpointOutcome::Continue)
        }
    }

    /// Ends a `Running` job held by `owner` in `state` (`Succeeded`,
    /// `Failed` or `Cancelled`) with an optional error text; sets
    /// `finished_at` and ends the lease. Counters and checkpoint stay as
    /// last saved. Refused with [`RegistryError::JobLeaseLost`] when
    /// another runner holds the job or it is no longer running.
    pub async fn finish_job(
        &self,
        id: &str,
        owner: &JobOwner,
        state: JobState,
        error: Option<String>,
    ) -> Result<Job> {
        if !state.is_finished() {
            return Err(RegistryError::Invalid(format!(
                "job '{id}' cannot be finished as {state}: \
                 expected succeeded, failed or cancelled"
            )));
        }
        let now = db::now_ms();
        let sql = format!(
            "UPDATE jobs SET state = $1, error = $2, finished_at = $3, updated_at = $3, \
             lease_expires_at = NULL \
             WHERE id = $4 AND state = 'running' AND owner = $5 RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(state.as_str())
            .bind(error)
            .bind(now)
            .bind(id)
            .bind(owner.id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Err(self
                .refused_update(id, owner, "finished", "it was being finished")
                .await);
        };
        let job = job_from_row(&row)?;
        tracing::info!(job = id, owner = owner.id.as_str(), state = %state, rows_done = job.rows_done, "job finished");
        Ok(job)
    }

    /// Cancels a job: a `Queued` job becomes `Cancelled` at once; a
    /// `Running` job gets `cancel_requested`, and its runner finishes it at
    /// its next checkpoint. Records a `cancel_job` audit event, except when
    /// a cancel was already requested (nothing changes then).
    ///
    /// Refused with a conflict when the job has already finished.
    pub async fn cancel_job(&self, id: &str, actor: &str) -> Result<Job> {
        let mut tx = self.write_transaction().await?;
        // Writes first so that the read below is of a locked row.
        let locked = sqlx::query("UPDATE jobs SET updated_at = updated_at WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(RegistryError::JobNotFound(id.to_owned()));
        }
        let before = require_job(&mut tx, id).await?;
        let now = db::now_ms();
        let mut after = before.clone();
        match before.state {
            state if state.is_finished() => {
                return Err(RegistryError::Conflict(format!(
                    "job '{id}' already {state}; only queued or running jobs can be cancelled"
                )))
            }
            JobState::Running if before.cancel_requested => return Ok(before),
            JobState::Queued => {
                after.state = JobState::Cancelled;
                after.finished_at = Some(now);
            }
            _ => {}
        }
        after.cancel_requested = true;
        after.updated_at = now;
        sqlx::query(
            "UPDATE jobs SET state = $1, finished_at = $2, cancel_requested = 1, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(after.state.as_str())
        .bind(after.finished_at)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let event = job_audit(
            &after,
            AuditAction::CancelJob,
            Some(db::snapshot(&before)?),
            Some(db::snapshot(&after)?),
        );
        let event = Audit { actor, ..event };
        db::record(&mut tx, now, event).await?;
        tx.commit().await?;
        tracing::info!(job = id, state = %after.state, "job cancel requested");
        Ok(after)
    }

    /// Every `Queued` or `Running` job, oldest first: what a runner resumes
    /// (with [`Registry::claim_job`]) when it starts.
    pub async fn unfinished_jobs(&self) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') \
             ORDER BY created_at, seq"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Deletes the finished jobs whose `finished_at` is before
    /// `finished_before_ms`; returns how many. Unfinished jobs are never
    /// deleted.
    pub async fn delete_finished_jobs(&self, finished_before_ms: i64) -> Result<u64> {
        let sql = format!("DELETE FROM jobs WHERE state IN {FINISHED} AND finished_at < $1");
        let done = sqlx::query(&sql)
            .bind(finished_before_ms)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() > 0 {
            tracing::info!(deleted = done.rows_affected(), "finished jobs deleted");
        }
        Ok(done.rows_affected())
    }
}

/// An audit event about `job`, by the job's actor; the audit version is the
/// job's version when that is a number.
fn job_audit<'a>(
    job: &'a Job,
    action: AuditAction,
    before: Option<Value>,
    after: Option<Value>,
) -> Audit<'a> {
    Audit {
        actor: &job.actor,
        action,
        model: &job.model,
        version: job.version.as_deref().and_then(|v| v.parse().ok()),
        before,
        after,
    }
}

/// The end of a lease of `owner` taken at `now` (unix ms).
pub(crate) fn lease_end(now: i64, owner: &JobOwner) -> i64 {
    let lease = i64::try_from(owner.lease.as_millis()).unwrap_or(i64::MAX);
    now.saturating_add(lease)
}

/// Explains why `owner` cannot change a job: it is not running, or another
/// runner holds it ([`RegistryError::JobLeaseLost`]). `Ok` when neither
/// holds.
impl Registry {
    /// Why a guarded `UPDATE` of a job held by `owner` matched no row: the
    /// job is gone, `owner` no longer holds it, or it changed meanwhile
    /// (`doing` says what was under way, e.g. "it was being finished").
    pub(crate) async fn refused_update(
        &self,
        id: &str,
        owner: &JobOwner,
        verb: &str,
        doing: &str,
    ) -> RegistryError {
        let job = match self.job(id).await {
            Ok(job) => job,
            Err(e) => return e,
        };
        match check_held(&job, owner, verb) {
            Err(e) => e,
            Ok(()) => {
                RegistryError::Conflict(format!("job '{id}' changed while {doing}; try again"))
            }
        }
    }
}

pub(crate) fn check_held(job: &Job, owner: &JobOwner, verb: &str) -> Result<()> {
    let id = &job.id;
    let lost = |reason: String| {
        Err(RegistryError::JobLeaseLost {
            id: id.clone(),
            reason,
        })
    };
    if job.state.is_finished() {
        return lost(format!("it already {}; it cannot be {verb}", job.state));
    }
    if job.state != JobState::Running {
        return lost(format!(
            "it is {}, not running; claim it before it is {verb}",
            job.state
        ));
    }
    match job.owner.as_deref() {
        Some(holder) if holder == owner.id => Ok(()),
        holder => lost(format!(
            "runner {} holds it now, so it cannot be {verb} by '{}'",
            JobOwner::describe(
                holder.unwrap_or("(none)"),
                job.owner_host.as_deref(),
                job.owner_pid
            ),
            owner.id
        )),
    }
}

fn validate_new_job(job: &NewJob) -> Result<()> {
    validate::job_id(&job.id)?;
    let id = &job.id;
    if !KINDS.contains(&job.kind.as_str()) {
        return Err(RegistryError::Invalid(format!(
            "kind of job '{id}' is '{}'; expected one of {}",
            job.kind,
            KINDS.join(", ")
        )));
    }
    check_label("model name", &job.model)?;
    if let Some(version) = &job.version {
        check_label("model version", version)?;
    }
    if !job.spec.is_object() {
        return Err(RegistryError::Invalid(format!(
            "spec of job '{id}' must be a JSON object, not {}",
            ferroserve_core::json::type_name(&job.spec)
        )));
    }
    let spec_len = db::to_text(&job.spec)?.len();
    if spec_len > MAX_SPEC_BYTES {
        return Err(RegistryError::Invalid(format!(
            "spec of job '{id}' has {spec_len} bytes serialized; \
             at most {MAX_SPEC_BYTES} are allowed"
        )));
    }
    if let Some(total) = job.rows_total.filter(|&t| t < 0) {
        return Err(RegistryError::Invalid(format!(
            "rows_total of job '{id}' is {total}; it must not be negative"
        )));
    }
    Ok(())
}

fn validate_progress(id: &str, p: &JobProgress) -> Result<()> {
    for (field, value) in [
        ("rows_done", Some(p.rows_done)),
        ("rows_failed", Some(p.rows_failed)),
        ("rows_total", p.rows_total),
    ] {
        if let Some(v) = value.filter(|&v| v < 0) {
            return Err(RegistryError::Invalid(format!(
                "{field} of job '{id}' is {v}; it must not be negative"
            )));
        }
    }
    if !p.checkpoint.is_object() {
        return Err(RegistryError::Invalid(format!(
            "checkpoint of job '{id}' must be a JSON object, not {}",
            ferroserve_core::json::type_name(&p.checkpoint)
        )));
    }
    Ok(())
}

pub(crate) fn check_owner(owner: &JobOwner) -> Result<()> {
    check_label("job owner", &owner.id)?;
    if let Some(host) = &owner.host {
        check_label("job owner host", host)?;
    }
    if owner.lease.is_zero() {
        return Err(RegistryError::Invalid(format!(
            "the lease of job owner '{}' must be longer than zero",
            owner.id
        )));
    }
    Ok(())
}

/// Checks a free-form name: 1-128 bytes, not blank, no control characters.
/// Model names are not held to the registry's naming rules here, since a
/// job may run a model served from a folder of any name.
fn check_label(what: &'static str, value: &str) -> Result<()> {
    let reason = if value.trim().is_empty() || value.len() > MAX_LABEL {
        format!("it must have 1 to {MAX_LABEL} characters and not be blank")
    } else if let Some(c) = value.chars().find(|c| c.is_control()) {
        format!("control character {c:?} is not allowed")
    } else {
        return Ok(());
    };
    Err(RegistryError::invalid_name(what, value, reason))
}

pub(crate) async fn require_job(conn: &mut AnyConnection, id: &str) -> Result<Job> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => job_from_row(&row),
        None => Err(RegistryError::JobNotFound(id.to_owned())),
    }
}

pub(crate) fn job_from_row(row: &AnyRow) -> Result<Job> {
    let state: String = row.try_get("state")?;
    let spec: String = row.try_get("spec")?;
    let checkpoint: String = row.try_get("checkpoint")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        model: row.try_get("model")?,
        version: row.try_get("version")?,
        spec: serde_json::from_str(&spec)?,
        state: state
            .parse()
            .map_err(|e: RegistryError| RegistryError::Database(e.to_string()))?,
        rows_total: row.try_get("rows_total")?,
        rows_done: row.try_get("rows_done")?,
        rows_failed: row.try_get("rows_failed")?,
        checkpoint: serde_json::from_str(&checkpoint)?,
        error: row.try_get("error")?,
        owner: row.try_get("owner")?,
        owner_host: row.try_get("owner_host")?,
        owner_pid: row.try_get("owner_pid")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        actor: row.try_get("actor")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
    })
}
