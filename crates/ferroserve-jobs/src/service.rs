//! The job service: takes new jobs, runs a few at a time beside online
//! traffic, holds each running job by a lease it renews, takes up the
//! unfinished jobs whose runner is gone (at start, and then every
//! heartbeat), reports progress, and cancels on request.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{FileStream, Job, JobFilter, JobState, NewJob, Registry, RegistryError};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

pub use super::context::JobOptions;
use super::context::{now_ms, JobContext};
use super::error::JobError;
use super::files::{off_runtime, Checkpoint, JobFiles, Report};
use super::infer::{run_infer_job, StoredAnswer};
use super::lease::{heartbeat_task, JobLease};
use super::owner::{claim_of, Claim};
use super::run::{run_batch_job, Ending, ModelInput};
use super::spec::{batch_spec, BatchJobSpec};
use super::status::JobStatus;
use super::JobKind;
use ferroserve_core::telemetry::{JOBS_FINISHED, JOBS_RUNNING};
use ferroserve_serving::Pipeline;

/// Batch and asynchronous inference jobs of one server.
pub struct JobService {
    pub(super) ctx: Arc<JobContext>,
    /// Jobs this process runs or has queued for a slot.
    local: Mutex<HashSet<String>>,
    /// Run slots of batch jobs.
    batch_slots: Arc<Semaphore>,
    /// Run slots of asynchronous inference requests, apart from the batch
    /// jobs' so that one long batch job does not hold them up.
    infer_slots: Arc<Semaphore>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl JobService {
    /// A service keeping jobs in `registry` and their files under
    /// `options.root`, running their requests through `pipeline` at
    /// background priority.
    pub fn new(options: JobOptions, registry: Registry, pipeline: Arc<Pipeline>) -> Arc<Self> {
        let slots = || Arc::new(Semaphore::new(options.max_running.max(1)));
        let (batch_slots, infer_slots) = (slots(), slots());
        Arc::new(JobService {
            ctx: Arc::new(JobContext {
                registry,
                pipeline,
                options,
                stopping: tokio::sync::watch::Sender::new(false),
                live: Mutex::new(HashMap::new()),
                lost: Mutex::new(HashMap::new()),
            }),
            local: Mutex::new(HashSet::new()),
            batch_slots,
            infer_slots,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// This process's id as a job runner (the `owner` of the jobs it runs).
    pub fn owner_id(&self) -> &str {
        &self.ctx.owner().id
    }

    /// A fresh job id.
    pub fn new_id() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// Where job `id` keeps its files.
    pub fn files(&self, id: &str) -> JobFiles {
        self.ctx.files(id)
    }

    /// Takes up every unfinished job whose runner is gone (its lease ran
    /// out, or it was a process of this host that is no longer alive) and
    /// every queued job nobody took up within a lease, oldest first; jobs
    /// held by a live runner are left to it. Returns how many were taken.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<usize, JobError> {
        let jobs = self
            .ctx
            .registry
            .unfinished_jobs()
            .await
            .map_err(JobError::from)?;
        let now = now_ms();
        let patience = i64::try_from(self.ctx.owner().lease.as_millis()).unwrap_or(i64::MAX);
        let mut resumed = 0;
        for job in jobs {
            if self.is_local(&job.id) {
                continue;
            }
            // A new job is its submitter's to claim first.
            if job.state == JobState::Queued && job.created_at.saturating_add(patience) > now {
                continue;
            }
            let claim = claim_of(self.ctx.root(), self.ctx.owner(), &job, now);
            let takeover = match claim {
                Claim::Now => None,
                Claim::TakeOver(gone) => Some(gone),
                Claim::No(why) => {
                    tracing::debug!(job = %job.id, why = %why, "unfinished job left to its runner");
                    continue;
                }
            };
            tracing::info!(job = %job.id, kind = %job.kind, model = %job.model, rows_done = job.rows_done, from = takeover.as_deref().unwrap_or(""), "resuming job");
            self.spawn(job.id, &job.kind, takeover);
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Runs job `id` again when it is unfinished and no live runner holds
    /// it (its runner was interrupted, or is gone); a finished job, or one
    /// this process runs, is left as it is. Returns its status; a conflict
    /// names the runner when another live process holds the job.
    pub async fn resume(self: &Arc<Self>, id: &str) -> Result<JobStatus, JobError> {
        let job = self.ctx.registry.job(id).await.map_err(JobError::from)?;
        if !job.state.is_finished() && !self.is_local(id) {
            match claim_of(self.ctx.root(), self.ctx.owner(), &job, now_ms()) {
                Claim::Now => self.spawn(job.id.clone(), &job.kind, None),
                Claim::TakeOver(gone) => self.spawn(job.id.clone(), &job.kind, Some(gone)),
                Claim::No(why) => {
                    return Err(JobError::Conflict(format!(
                        "job {id} cannot be resumed here: {why}"
                    )))
                }
            }
        }
        Ok(self.status_of(job))
    }

    /// Why job `id` stopped in this process without finishing (another
    /// runner took it over), if it did.
    pub fn lost(&self, id: &str) -> Option<String> {
        self.ctx
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn is_local(&self, id: &str) -> bool {
        self.local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    /// Creates a batch job whose input is already in
    /// [`JobFiles::input`] of `id`, after checking that the input can be
    /// read and fills the model's inputs, and storing it where every
    /// replica finds it; the job then runs in turn.
    pub async fn submit_batch(
        self: &Arc<Self>,
        id: String,
        model: &str,
        version: Option<&str>,
        spec: BatchJobSpec,
        actor: &str,
    ) -> Result<JobStatus, JobError> {
        let files = self.files(&id);
        let checked = match self.check_batch(&files, model, version, &spec).await {
            Ok(()) => files.store_input(spec.input_format).await,
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            let _ = files.remove().await;
            return Err(e);
        }
        let spec_json = serde_json::to_value(&spec)
            .map_err(|e| JobError::Internal(format!("cannot store the job settings: {e}")))?;
        self.create(id, JobKind::Batch, model, version, spec_json, actor)
            .await
    }

    /// Creates an asynchronous inference job whose KServe v2 request body
    /// was stored by [`JobFiles::store_request`] of `id`; `json_len` is the length of
    /// its JSON header when it carries binary tensors.
    pub async fn submit_infer(
        self: &Arc<Self>,
        id: String,
        model: &str,
        version: Option<&str>,
        json_len: Option<usize>,
        actor: &str,
    ) -> Result<JobStatus, JobError> {
        let spec = serde_json::json!({ "protocol": "v2", "json_len": json_len });
        self.create(id, JobKind::Infer, model, version, spec, actor)
            .await
    }

    async fn create(
        self: &Arc<Self>,
        id: String,
        kind: JobKind,
        model: &str,
        version: Option<&str>,
        spec: serde_json::Value,
        actor: &str,
    ) -> Result<JobStatus, JobError> {
        let new = NewJob {
            id: id.clone(),
            kind: kind.as_str().to_owned(),
            model: model.to_owned(),
            version: version.map(str::to_owned),
            spec,
            rows_total: None,
            actor: actor.to_owned(),
        };
        let job = match self.ctx.registry.create_job(new).await {
            Ok(job) => job,
            Err(e) => {
                let _ = self.files(&id).remove().await;
                return Err(JobError::from(e));
            }
        };
        tracing::info!(job = %job.id, kind = kind.as_str(), model, "job accepted");
        self.spawn(job.id.clone(), &job.kind, None);
        Ok(self.status_of(job))
    }

    /// Refuses a batch job whose model is not served, or whose input cannot
    /// be read or does not fill the model's inputs.
    async fn check_batch(
        &self,
        files: &JobFiles,
        model: &str,
        version: Option<&str>,
        spec: &BatchJobSpec,
    ) -> Result<(), JobError> {
        spec.validate()?;
        let served = self.ctx.pipeline.find(model, version).await?;
        spec.output_indexes(served.signature())?;
        // Opening reads the header line, the first object or the Parquet
        // footer: file I/O and parsing, off the async workers.
        let (input, spec) = (files.input(spec.input_format), spec.clone());
        tokio::task::spawn_blocking(move || ModelInput::open(&input, &spec, &served).map(drop))
            .await
            .map_err(|e| JobError::Internal(format!("the input check stopped: {e}")))?
    }

    /// Job `id` as a client sees it.
    pub async fn status(&self, id: &str) -> Result<JobStatus, JobError> {
        let job = self.ctx.registry.job(id).await.map_err(JobError::from)?;
        Ok(self.status_of(job))
    }

    /// Jobs, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<JobStatus>, JobError> {
        let jobs = self
            .ctx
            .registry
            .list_jobs(filter)
            .await
            .map_err(JobError::from)?;
        Ok(jobs.into_iter().map(|job| self.status_of(job)).collect())
    }

    /// Cancels job `id`: a queued job at once, a running one at its next
    /// checkpoint. A finished job cannot be cancelled.
    pub async fn cancel(&self, id: &str, actor: &str) -> Result<JobStatus, JobError> {
        let job = self
            .ctx
            .registry
            .cancel_job(id, actor)
            .await
            .map_err(JobError::from)?;
        Ok(self.status_of(job))
    }

    /// Where the results of job `id` are: a batch job's result file, or an
    /// asynchronous request's answer. Only a succeeded job has results.
    pub async fn result(&self, id: &str) -> Result<JobResult, JobError> {
        let job = self.ctx.registry.job(id).await.map_err(JobError::from)?;
        if job.state != JobState::Succeeded {
            let why = match &job.error {
                Some(error) => format!(": {error}"),
                None if !job.state.is_finished() => {
                    "; its results are ready once it succeeds".to_owned()
                }
                None => String::new(),
            };
            return Err(JobError::Conflict(format!(
                "job {id} is {}{why}",
                job.state.as_str()
            )));
        }
        let files = self.files(id);
        if job.kind == JobKind::Infer.as_str() {
            let answer = StoredAnswer::of(&job.checkpoint);
            return Ok(JobResult {
                body: files.response().await?,
                content_type: answer
                    .and_then(|a| a.content_type)
                    .unwrap_or_else(|| "application/json".to_owned()),
            });
        }
        let spec = batch_spec(&job)?;
        let parts = self.stored_parts(&job, &spec).await?;
        Ok(JobResult {
            body: files.report(Report::Output, parts.output_parts).await?,
            content_type: spec.output_format.content_type().to_owned(),
        })
    }

    /// The bad-row report of batch job `id` so far, one JSON object per line.
    pub async fn bad_rows(&self, id: &str) -> Result<JobResult, JobError> {
        let job = self.ctx.registry.job(id).await.map_err(JobError::from)?;
        if job.kind != JobKind::Batch.as_str() {
            return Err(JobError::NotFound(format!(
                "job {id} is an inference request; only batch jobs report bad rows"
            )));
        }
        let spec = batch_spec(&job)?;
        let parts = self.stored_parts(&job, &spec).await?;
        Ok(JobResult {
            body: self
                .files(id)
                .report(Report::Errors, parts.errors_parts)
                .await?,
            content_type: "application/x-ndjson".to_owned(),
        })
    }

    /// Stores the results a finished batch job of an older release
    /// appended to its working folder, before that folder goes.
    pub(crate) async fn keep_appended(&self, job: &Job) -> Result<(), JobError> {
        let appended = Checkpoint::from_json(&job.checkpoint).is_ok_and(|c| c.is_appended());
        if job.kind != JobKind::Batch.as_str() || !appended {
            return Ok(());
        }
        let spec = batch_spec(job)?;
        self.stored_parts(job, &spec).await.map(drop)
    }

    /// The stored parts the checkpoint of batch job `job` counts; the
    /// results of a job checkpointed by an older release are stored as
    /// parts first.
    async fn stored_parts(&self, job: &Job, spec: &BatchJobSpec) -> Result<Checkpoint, JobError> {
        let mut checkpoint = Checkpoint::from_json(&job.checkpoint)?;
        if checkpoint.is_appended() {
            self.files(&job.id)
                .adopt_appended(&mut checkpoint, spec.output_format)
                .await?;
        }
        Ok(checkpoint)
    }

    fn status_of(&self, job: Job) -> JobStatus {
        let rate = self.ctx.rate(&job.id);
        JobStatus::new(job, rate)
    }

    /// Stops taking up work: running jobs stop at their next checkpoint
    /// (and resume on the next start); waits for them up to `patience`.
    pub async fn shutdown(&self, patience: Duration) {
        self.ctx.stopping.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(patience, all).await.is_err() {
            tracing::warn!("jobs still running at shutdown resume on the next start");
        }
    }

    /// Refuses a new job of `actor` when the server or the client has as
    /// many unfinished jobs as it may (429), or the data folder's disk is
    /// nearly full (507). Called before a submission stores anything.
    pub async fn admit(&self, actor: &str) -> Result<(), JobError> {
        let quotas = self.ctx.options.quotas;
        let root = self.ctx.root().to_owned();
        off_runtime(move || quotas.check_disk(&root)).await?;
        let unfinished = self
            .ctx
            .registry
            .unfinished_jobs()
            .await
            .map_err(JobError::from)?;
        quotas.check_queue(&unfinished, actor)
    }

    /// Runs job `id` (of kind `kind`) when a slot of its kind is free:
    /// claims it, or takes it over from the runner `takeover` that is known
    /// to be gone.
    fn spawn(self: &Arc<Self>, id: String, kind: &str, takeover: Option<String>) {
        if !self
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone())
        {
            return;
        }
        let service = self.clone();
        let slots = match kind.parse::<JobKind>() {
            Ok(JobKind::Infer) => self.infer_slots.clone(),
            _ => self.batch_slots.clone(),
        };
        let task = tokio::spawn(async move {
            if let Ok(_slot) = slots.acquire_owned().await {
                if !service.ctx.is_stopping() {
                    if let Err(e) = service.run(&id, takeover.as_deref()).await {
                        tracing::error!(job = %id, error = %e, "job failed");
                    }
                }
            }
            service.ctx.forget(&id);
            service
                .local
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    async fn run(&self, id: &str, takeover: Option<&str>) -> Result<(), JobError> {
        let registry = &self.ctx.registry;
        let owner = self.ctx.owner();
        let claimed = match takeover {
            Some(gone) => registry.take_over_job(id, owner, gone).await,
            None => registry.claim_job(id, owner).await,
        };
        let Some(job) = claimed.map_err(JobError::from)? else {
            return Ok(());
        };
        let lease = JobLease::new();
        let heartbeat = heartbeat_task(
            registry.clone(),
            id.to_owned(),
            owner.clone(),
            lease.clone(),
            self.ctx.options.heartbeat,
        );
        let running = metrics::gauge!(JOBS_RUNNING);
        running.increment(1.0);
        let ended = self.run_claimed(&job, &lease).await;
        running.decrement(1.0);
        heartbeat.abort();
        ended
    }

    /// Runs a job this server has claimed, to its end or until the server
    /// stops.
    async fn run_claimed(&self, job: &Job, lease: &Arc<JobLease>) -> Result<(), JobError> {
        let ending = match job.kind.parse::<JobKind>() {
            // Cancelled while this server was down.
            _ if job.cancel_requested => Ok(Ending::Finished(JobState::Cancelled, None)),
            Ok(JobKind::Batch) => {
                let ctx = self.ctx.clone();
                let runtime = tokio::runtime::Handle::current();
                let job = job.clone();
                let lease = lease.clone();
                self.ctx
                    .record_progress(&job.id, Checkpoint::rows_read_of(&job));
                tokio::task::spawn_blocking(move || run_batch_job(&ctx, &runtime, &job, &lease))
                    .await
                    .unwrap_or_else(|e| Err(JobError::Internal(format!("the job panicked: {e}"))))
            }
            Ok(JobKind::Infer) => run_infer_job(&self.ctx, job, lease).await,
            Err(unknown) => Ok(Ending::Finished(
                JobState::Failed,
                Some(unknown.to_string()),
            )),
        };
        let lost = |why: String| {
            tracing::error!(job = %job.id, why = %why, "job stopped here: another runner took it over");
            self.ctx
                .lost
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(job.id.clone(), why);
            Ok(())
        };
        let (state, error) = match ending {
            Ok(Ending::Interrupted) => {
                // Whoever starts next may take the job up at once.
                if let Err(e) = self
                    .ctx
                    .registry
                    .release_job(&job.id, self.ctx.owner())
                    .await
                {
                    tracing::warn!(job = %job.id, error = %e, "cannot release the job; it resumes once its lease ends");
                }
                return Ok(());
            }
            Ok(Ending::Lost(why)) => return lost(why),
            Err(e) if e.kind() == ErrorKind::Conflict && lease.lost().is_some() => {
                return lost(lease.lost().unwrap_or(e.to_string()))
            }
            Ok(Ending::Finished(state, error)) => (state, error),
            Err(e) => (JobState::Failed, Some(e.to_string())),
        };
        if let Some(error) = &error {
            tracing::warn!(job = %job.id, error, "job failed");
        } else {
            tracing::info!(job = %job.id, state = state.as_str(), "job finished");
        }
        match self
            .ctx
            .registry
            .finish_job(&job.id, self.ctx.owner(), state, error)
            .await
        {
            Ok(_) => {}
            Err(e @ RegistryError::JobLeaseLost { .. }) => return lost(e.to_string()),
            Err(e) => return Err(JobError::from(e)),
        }
        metrics::counter!(JOBS_FINISHED, "kind" => job.kind.clone(), "state" => state.as_str())
            .increment(1);
        Ok(())
    }
}

/// A file to send back for a job: its bytes, streamed from the job store.
pub struct JobResult {
    /// The bytes, one stored part after the other.
    pub body: FileStream,
    /// Its HTTP content type.
    pub content_type: String,
}

impl std::fmt::Debug for JobResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobResult")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl JobResult {
    /// Writes the bytes to the local file `to` (created or truncated);
    /// returns how many there were.
    pub async fn save(self, to: &Path) -> Result<u64, JobError> {
        use futures::TryStreamExt;
        use tokio::io::AsyncWriteExt;
        let failed =
            |e: std::io::Error| JobError::Internal(format!("cannot write {}: {e}", to.display()));
        let mut file = tokio::fs::File::create(to).await.map_err(failed)?;
        let mut body = self.body;
        let mut size = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(JobError::from)? {
            file.write_all(&chunk).await.map_err(failed)?;
            size += chunk.len() as u64;
        }
        file.flush().await.map_err(failed)?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_start_runs_jobs_under_an_owner_of_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = || ferroserve_registry::NamedFiles::local(dir.path().join("store"));
        let first = JobOptions::in_folder(dir.path().join("jobs"), shared(), 1).expect("first");
        let again = JobOptions::in_folder(dir.path().join("jobs"), shared(), 1).expect("again");
        assert_ne!(first.owner().id, again.owner().id);
        assert_eq!(first.owner().lease, ferroserve_registry::DEFAULT_JOB_LEASE);
        let e = JobOptions::with_lease(
            dir.path().join("jobs"),
            shared(),
            1,
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.to_string().contains("heartbeat"), "{e}");
    }
}
