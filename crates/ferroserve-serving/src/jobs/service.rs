//! The job service: takes new jobs, runs a few at a time beside online
//! traffic, resumes the unfinished ones when the server starts, reports
//! progress, and cancels on request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use ferroserve_core::{ErrorKind, InferError};
use ferroserve_registry::{Job, JobFilter, JobState, NewJob, Registry};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::files::{Checkpoint, JobFiles};
use super::infer::{run_infer_job, InferExecutor, StoredAnswer, INFER_KIND};
use super::run::{run_batch_job, Ending, ModelInput};
use super::spec::BatchJobSpec;
use super::status::JobStatus;
use crate::telemetry::{JOBS_FINISHED, JOBS_RUNNING};
use crate::{ModelManager, ServedVersion};

/// Kind of a job that scores a file.
pub const BATCH_KIND: &str = "batch";

/// How long a job waits for its model to be declared (at start, the
/// registry models are still being read) before it fails.
const MODEL_PATIENCE: Duration = Duration::from_secs(60);

/// Settings of the job service.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Folder holding one folder per job.
    pub root: PathBuf,
    /// Name of this server among those sharing the registry; a job is run
    /// by the server that claimed it, which resumes it after a restart.
    pub owner: String,
    /// Jobs running at once; the others wait their turn.
    pub max_running: usize,
}

impl JobOptions {
    /// Options keeping jobs under `root`, named after the server that owns
    /// that folder: an id made once and kept in `root/owner-id`, so a
    /// restarted server takes up its own jobs again.
    pub fn in_folder(root: PathBuf, max_running: usize) -> Result<Self, InferError> {
        let io = |what: &str, e: std::io::Error| {
            InferError::internal(format!("cannot {what} {}: {e}", root.display()))
        };
        std::fs::create_dir_all(&root).map_err(|e| io("create", e))?;
        let path = root.join("owner-id");
        let owner = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
            Ok(_) => return Err(InferError::internal(format!("{} is empty", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let owner = uuid::Uuid::new_v4().to_string();
                std::fs::write(&path, &owner).map_err(|e| io("write the owner id in", e))?;
                owner
            }
            Err(e) => return Err(io("read the owner id in", e)),
        };
        Ok(JobOptions {
            root,
            owner,
            max_running,
        })
    }
}

/// What the running jobs share.
pub(crate) struct JobContext {
    registry: Registry,
    manager: Arc<ModelManager>,
    options: JobOptions,
    stopping: AtomicBool,
    /// Rows per second of the jobs running here, by id.
    live: Mutex<HashMap<String, Live>>,
}

/// Progress of a job since this server started running it.
#[derive(Debug, Clone, Copy)]
struct Live {
    since: Instant,
    rows_at_start: u64,
    rows_now: u64,
}

impl JobContext {
    pub(crate) fn root(&self) -> &Path {
        &self.options.root
    }

    pub(crate) fn owner(&self) -> &str {
        &self.options.owner
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The version to run a job's rows on, waiting while it loads; `None`
    /// when the server is stopping meanwhile.
    pub(crate) async fn served(
        &self,
        model: &str,
        version: Option<&str>,
    ) -> Result<Option<Arc<ServedVersion>>, InferError> {
        let started = Instant::now();
        loop {
            if self.is_stopping() {
                return Ok(None);
            }
            match self.manager.get(model, version) {
                Ok(served) => return Ok(Some(served)),
                Err(e) if e.kind == ErrorKind::Unavailable => {}
                Err(e) if started.elapsed() < MODEL_PATIENCE => {
                    tracing::debug!(model, error = %e.message, "job waits for its model");
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Notes that job `id` has read `rows` input rows.
    pub(crate) fn record_progress(&self, id: &str, rows: u64) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.entry(id.to_owned())
            .and_modify(|l| l.rows_now = rows)
            .or_insert(Live {
                since: Instant::now(),
                rows_at_start: rows,
                rows_now: rows,
            });
    }

    /// Rows per second of job `id` since this server took it up.
    fn rate(&self, id: &str) -> Option<f64> {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let l = live.get(id)?;
        let seconds = l.since.elapsed().as_secs_f64();
        (seconds > 0.0 && l.rows_now > l.rows_at_start)
            .then(|| (l.rows_now - l.rows_at_start) as f64 / seconds)
    }

    fn forget(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// Batch and asynchronous inference jobs of one server.
pub struct JobService {
    ctx: Arc<JobContext>,
    slots: Arc<Semaphore>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    infer: OnceLock<Arc<dyn InferExecutor>>,
}

impl JobService {
    /// A service keeping jobs in `registry` and their files under
    /// `options.root`, running rows on the models of `manager`.
    pub fn new(options: JobOptions, registry: Registry, manager: Arc<ModelManager>) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(options.max_running.max(1)));
        Arc::new(JobService {
            ctx: Arc::new(JobContext {
                registry,
                manager,
                options,
                stopping: AtomicBool::new(false),
                live: Mutex::new(HashMap::new()),
            }),
            slots,
            tasks: Mutex::new(Vec::new()),
            infer: OnceLock::new(),
        })
    }

    /// Sets what runs asynchronous inference requests (the server's own
    /// request path); until it is set, such jobs wait.
    pub fn set_infer_executor(&self, executor: Arc<dyn InferExecutor>) {
        let _ = self.infer.set(executor);
    }

    /// A fresh job id.
    pub fn new_id() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// Where job `id` keeps its files.
    pub fn files(&self, id: &str) -> JobFiles {
        JobFiles::new(self.ctx.root(), id)
    }

    /// Starts every job this server left queued or running (after a crash
    /// or a restart), oldest first.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<usize, InferError> {
        let jobs = self
            .ctx
            .registry
            .unfinished_jobs()
            .await
            .map_err(registry_error)?;
        let mut resumed = 0;
        for job in jobs {
            if job.owner.as_deref().is_some_and(|o| o != self.ctx.owner()) {
                continue;
            }
            tracing::info!(job = %job.id, kind = %job.kind, model = %job.model, rows_done = job.rows_done, "resuming job");
            self.spawn(job.id);
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Runs job `id` again when it is unfinished (its runner was
    /// interrupted); a finished job is left as it is. Returns its status.
    pub async fn resume(self: &Arc<Self>, id: &str) -> Result<JobStatus, InferError> {
        let job = self.ctx.registry.job(id).await.map_err(registry_error)?;
        if !job.state.is_finished() {
            if let Some(owner) = job.owner.as_deref().filter(|o| *o != self.ctx.owner()) {
                return Err(InferError::new(
                    ErrorKind::Conflict,
                    format!("job {id} is run by another server ({owner}); resume it there"),
                ));
            }
            self.spawn(job.id.clone());
        }
        Ok(self.status_of(job))
    }

    /// Creates a batch job whose input is already in
    /// [`JobFiles::input`] of `id`, after checking that the input can be
    /// read and fills the model's inputs; the job then runs in turn.
    pub async fn submit_batch(
        self: &Arc<Self>,
        id: String,
        model: &str,
        version: Option<&str>,
        spec: BatchJobSpec,
        actor: &str,
    ) -> Result<JobStatus, InferError> {
        let files = self.files(&id);
        let checked = self.check_batch(&files, model, version, &spec);
        if let Err(e) = checked {
            let _ = files.remove();
            return Err(e);
        }
        let spec_json = serde_json::to_value(&spec)
            .map_err(|e| InferError::internal(format!("cannot store the job settings: {e}")))?;
        self.create(id, BATCH_KIND, model, version, spec_json, actor)
            .await
    }

    /// Creates an asynchronous inference job whose KServe v2 request body is
    /// already in [`JobFiles::request`] of `id`; `json_len` is the length of
    /// its JSON header when it carries binary tensors.
    pub async fn submit_infer(
        self: &Arc<Self>,
        id: String,
        model: &str,
        version: Option<&str>,
        json_len: Option<usize>,
        actor: &str,
    ) -> Result<JobStatus, InferError> {
        let spec = serde_json::json!({ "protocol": "v2", "json_len": json_len });
        self.create(id, INFER_KIND, model, version, spec, actor)
            .await
    }

    async fn create(
        self: &Arc<Self>,
        id: String,
        kind: &str,
        model: &str,
        version: Option<&str>,
        spec: serde_json::Value,
        actor: &str,
    ) -> Result<JobStatus, InferError> {
        let new = NewJob {
            id: id.clone(),
            kind: kind.to_owned(),
            model: model.to_owned(),
            version: version.map(str::to_owned),
            spec,
            rows_total: None,
            actor: actor.to_owned(),
        };
        let job = match self.ctx.registry.create_job(new).await {
            Ok(job) => job,
            Err(e) => {
                let _ = self.files(&id).remove();
                return Err(registry_error(e));
            }
        };
        tracing::info!(job = %job.id, kind, model, "job accepted");
        self.spawn(job.id.clone());
        Ok(self.status_of(job))
    }

    /// Refuses a batch job whose model is not served, or whose input cannot
    /// be read or does not fill the model's inputs.
    fn check_batch(
        &self,
        files: &JobFiles,
        model: &str,
        version: Option<&str>,
        spec: &BatchJobSpec,
    ) -> Result<(), InferError> {
        spec.validate()?;
        let served = self.ctx.manager.get(model, version)?;
        spec.output_indexes(served.signature())?;
        ModelInput::open(&files.input(spec.input_format), spec, &served)?;
        Ok(())
    }

    /// Job `id` as a client sees it.
    pub async fn status(&self, id: &str) -> Result<JobStatus, InferError> {
        let job = self.ctx.registry.job(id).await.map_err(registry_error)?;
        Ok(self.status_of(job))
    }

    /// Jobs, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<JobStatus>, InferError> {
        let jobs = self
            .ctx
            .registry
            .list_jobs(filter)
            .await
            .map_err(registry_error)?;
        Ok(jobs.into_iter().map(|job| self.status_of(job)).collect())
    }

    /// Cancels job `id`: a queued job at once, a running one at its next
    /// checkpoint. A finished job cannot be cancelled.
    pub async fn cancel(&self, id: &str, actor: &str) -> Result<JobStatus, InferError> {
        let job = self
            .ctx
            .registry
            .cancel_job(id, actor)
            .await
            .map_err(registry_error)?;
        Ok(self.status_of(job))
    }

    /// Where the results of job `id` are: a batch job's result file, or an
    /// asynchronous request's answer. Only a succeeded job has results.
    pub async fn result(&self, id: &str) -> Result<JobResult, InferError> {
        let job = self.ctx.registry.job(id).await.map_err(registry_error)?;
        if job.state != JobState::Succeeded {
            let why = match &job.error {
                Some(error) => format!(": {error}"),
                None if !job.state.is_finished() => {
                    "; its results are ready once it succeeds".to_owned()
                }
                None => String::new(),
            };
            return Err(InferError::new(
                ErrorKind::Conflict,
                format!("job {id} is {}{why}", job.state.as_str()),
            ));
        }
        let files = self.files(id);
        if job.kind == INFER_KIND {
            let answer = StoredAnswer::of(&job.checkpoint);
            return Ok(JobResult {
                path: files.response(),
                content_type: answer
                    .and_then(|a| a.content_type)
                    .unwrap_or_else(|| "application/json".to_owned()),
            });
        }
        let spec = batch_spec(&job)?;
        Ok(JobResult {
            path: files.output(spec.output_format),
            content_type: spec.output_format.content_type().to_owned(),
        })
    }

    /// The bad-row report of batch job `id` so far, one JSON object per line.
    pub async fn bad_rows(&self, id: &str) -> Result<JobResult, InferError> {
        let job = self.ctx.registry.job(id).await.map_err(registry_error)?;
        if job.kind != BATCH_KIND {
            return Err(InferError::not_found(format!(
                "job {id} is an inference request; only batch jobs report bad rows"
            )));
        }
        Ok(JobResult {
            path: self.files(id).errors(),
            content_type: "application/x-ndjson".to_owned(),
        })
    }

    fn status_of(&self, job: Job) -> JobStatus {
        let rate = self.ctx.rate(&job.id);
        JobStatus::new(job, rate)
    }

    /// Forgets the jobs that finished more than `retention` ago, with their
    /// files (up to 10 000 per state at a time), and removes job folders the registry does not know once they
    /// are an hour old (a submission cut short by a crash leaves one).
    /// Returns how many jobs and folders went.
    pub async fn purge(&self, retention: Duration) -> Result<(u64, usize), InferError> {
        let cutoff = now_ms().saturating_sub(retention.as_millis().min(i64::MAX as u128) as i64);
        for state in JobState::ALL.into_iter().filter(|s| s.is_finished()) {
            let filter = JobFilter {
                state: Some(state),
                model: None,
                limit: PURGE_BATCH,
            };
            let listed = self
                .ctx
                .registry
                .list_jobs(&filter)
                .await
                .map_err(registry_error)?;
            for job in listed {
                if job.finished_at.is_some_and(|at| at < cutoff) {
                    self.files(&job.id).remove()?;
                }
            }
        }
        let jobs = self
            .ctx
            .registry
            .delete_finished_jobs(cutoff)
            .await
            .map_err(registry_error)?;
        let mut folders = 0;
        for (id, age) in job_folders(self.ctx.root()) {
            if age < ORPHAN_AGE {
                continue;
            }
            match self.ctx.registry.job(&id).await {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    self.files(&id).remove()?;
                    folders += 1;
                }
                _ => {}
            }
        }
        if jobs > 0 || folders > 0 {
            tracing::info!(jobs, folders, "finished jobs purged");
        }
        Ok((jobs, folders))
    }

    /// Purges every `every` (the first time at once), keeping finished
    /// jobs for `retention`.
    pub fn spawn_housekeeping(
        self: &Arc<Self>,
        retention: Duration,
        every: Duration,
    ) -> JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                if service.ctx.is_stopping() {
                    return;
                }
                if let Err(e) = service.purge(retention).await {
                    tracing::warn!(error = %e.message, "cannot purge finished jobs");
                }
            }
        })
    }

    /// Stops taking up work: running jobs stop at their next checkpoint
    /// (and resume on the next start); waits for them up to `patience`.
    pub async fn shutdown(&self, patience: Duration) {
        self.ctx.stopping.store(true, Ordering::Release);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(patience, all).await.is_err() {
            tracing::warn!("jobs still running at shutdown resume on the next start");
        }
    }

    /// Runs job `id` when a slot is free.
    fn spawn(self: &Arc<Self>, id: String) {
        let service = self.clone();
        let task = tokio::spawn(async move {
            let Ok(_slot) = service.slots.clone().acquire_owned().await else {
                return;
            };
            if service.ctx.is_stopping() {
                return;
            }
            if let Err(e) = service.run(&id).await {
                tracing::error!(job = %id, error = %e.message, "job failed");
            }
            service.ctx.forget(&id);
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    async fn run(&self, id: &str) -> Result<(), InferError> {
        let claimed = self
            .ctx
            .registry
            .claim_job(id, self.ctx.owner())
            .await
            .map_err(registry_error)?;
        let Some(job) = claimed else {
            return Ok(());
        };
        let running = metrics::gauge!(JOBS_RUNNING);
        running.increment(1.0);
        let ended = self.run_claimed(&job).await;
        running.decrement(1.0);
        ended
    }

    /// Runs a job this server has claimed, to its end or until the server
    /// stops.
    async fn run_claimed(&self, job: &Job) -> Result<(), InferError> {
        let ending = match job.kind.as_str() {
            // Cancelled while this server was down.
            _ if job.cancel_requested => Ok(Ending::Finished(JobState::Cancelled, None)),
            BATCH_KIND => {
                let ctx = self.ctx.clone();
                let runtime = tokio::runtime::Handle::current();
                let job = job.clone();
                self.ctx
                    .record_progress(&job.id, Checkpoint::rows_read_of(&job));
                tokio::task::spawn_blocking(move || run_batch_job(&ctx, &runtime, &job))
                    .await
                    .unwrap_or_else(|e| Err(InferError::internal(format!("the job panicked: {e}"))))
            }
            INFER_KIND => {
                let executor = loop {
                    if let Some(executor) = self.infer.get() {
                        break executor.clone();
                    }
                    if self.ctx.is_stopping() {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                run_infer_job(&self.ctx, executor.as_ref(), job).await
            }
            other => Ok(Ending::Finished(
                JobState::Failed,
                Some(format!("unknown job kind '{other}'")),
            )),
        };
        let (state, error) = match ending {
            Ok(Ending::Interrupted) => return Ok(()),
            Ok(Ending::Finished(state, error)) => (state, error),
            Err(e) => (JobState::Failed, Some(e.message)),
        };
        if let Some(error) = &error {
            tracing::warn!(job = %job.id, error, "job failed");
        } else {
            tracing::info!(job = %job.id, state = state.as_str(), "job finished");
        }
        self.ctx
            .registry
            .finish_job(&job.id, self.ctx.owner(), state, error)
            .await
            .map_err(registry_error)?;
        metrics::counter!(JOBS_FINISHED, "kind" => job.kind.clone(), "state" => state.as_str())
            .increment(1);
        Ok(())
    }
}

/// Finished jobs of each state looked at by one purge.
const PURGE_BATCH: i64 = 10_000;

/// How old a job folder without a job must be before it is removed: a
/// submission writes its folder before the job exists.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The job folders under `root` with their age (since last modified).
fn job_folders(root: &Path) -> Vec<(String, Duration)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| {
            let age = entry
                .metadata()
                .ok()?
                .modified()
                .ok()?
                .elapsed()
                .unwrap_or_default();
            Some((entry.file_name().into_string().ok()?, age))
        })
        .collect()
}

/// A file to send back for a job.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// Where it is (it may not exist yet for a report with no bad row).
    pub path: PathBuf,
    /// Its HTTP content type.
    pub content_type: String,
}

/// The settings of a batch job.
pub(crate) fn batch_spec(job: &Job) -> Result<BatchJobSpec, InferError> {
    serde_json::from_value(job.spec.clone()).map_err(|e| {
        InferError::internal(format!(
            "the settings of job {} are unreadable: {e}",
            job.id
        ))
    })
}

fn registry_error(e: ferroserve_registry::RegistryError) -> InferError {
    InferError::new(e.kind(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroserve_backend::Engines;

    async fn service(dir: &Path) -> Arc<JobService> {
        let url = format!("sqlite://{}?mode=rwc", dir.join("registry.db").display());
        let registry = Registry::connect(&url).await.expect("registry");
        let options = JobOptions::in_folder(dir.join("jobs"), 1).expect("options");
        let manager = Arc::new(ModelManager::new(Arc::new(Engines::discover(None))));
        JobService::new(options, registry, manager)
    }

    #[tokio::test]
    async fn the_owner_id_is_kept_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = JobOptions::in_folder(dir.path().join("jobs"), 1).expect("first");
        let again = JobOptions::in_folder(dir.path().join("jobs"), 1).expect("again");
        assert_eq!(first.owner, again.owner);
        assert!(!first.owner.is_empty());
    }

    #[tokio::test]
    async fn purging_forgets_old_finished_jobs_and_their_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jobs = service(dir.path()).await;
        let registry = &jobs.ctx.registry;
        let owner = jobs.ctx.owner().to_owned();
        for id in ["old", "running"] {
            jobs.files(id).create().expect("folder");
            registry
                .create_job(NewJob {
                    id: id.into(),
                    kind: BATCH_KIND.into(),
                    model: "m".into(),
                    version: None,
                    spec: serde_json::json!({}),
                    rows_total: None,
                    actor: "t".into(),
                })
                .await
                .expect("create");
            registry.claim_job(id, &owner).await.expect("claim");
        }
        registry
            .finish_job("old", &owner, JobState::Succeeded, None)
            .await
            .expect("finish");
        // An orphan folder is left alone while it is young.
        jobs.files("orphan").create().expect("orphan");

        assert_eq!(
            jobs.purge(Duration::from_secs(3600)).await.expect("purge"),
            (0, 0)
        );
        assert_eq!(jobs.purge(Duration::ZERO).await.expect("purge"), (1, 0));
        let status = jobs.status("old").await.unwrap_err();
        assert_eq!(status.kind, ErrorKind::NotFound);
        assert!(
            !jobs.files("old").dir().exists(),
            "the folder of a purged job goes at once"
        );
        assert!(jobs.files("running").dir().exists());
        assert!(jobs.files("orphan").dir().exists());
        assert_eq!(
            jobs.status("running").await.expect("kept").state,
            JobState::Running
        );
    }
}
