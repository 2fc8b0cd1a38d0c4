//! What the running jobs share: the job service's settings, the registry,
//! the pipeline their requests go through, the stop signal, and live
//! progress; and waiting for a job's model to be served.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferroserve_core::ErrorKind;
use ferroserve_registry::{
    JobOwner, NamedFiles, Registry, DEFAULT_JOB_HEARTBEAT, DEFAULT_JOB_LEASE,
};
use ferroserve_serving::{Pipeline, ServedVersion};

use super::error::JobError;
use super::files::JobFiles;
use super::owner::ProcessOwner;
use super::quota::JobQuotas;

/// How long a job waits for its model to be declared (at start, the
/// registry models are still being read) before it fails.
const MODEL_PATIENCE: Duration = Duration::from_secs(60);

/// Settings of the job service.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// This process's working folder: one folder per job it ran, holding a
    /// copy of the job's input, and the lock files of the runners of this host.
    pub root: PathBuf,
    /// Where the jobs' files are kept, for every replica to read: the job
    /// area of the artifact store.
    pub shared: NamedFiles,
    /// Jobs of each kind (batch, asynchronous inference) running at once;
    /// the others wait their turn. Each kind has slots of its own, so a
    /// long batch job never holds up asynchronous requests.
    pub max_running: usize,
    /// Limits on the jobs waiting or running, and on the free disk kept.
    pub quotas: JobQuotas,
    /// How often the leases of running jobs are renewed, and unfinished
    /// jobs whose runner is gone looked for.
    pub heartbeat: Duration,
    /// This process as a runner: an id of its own for this start, and the
    /// lock that tells other processes on this host it is alive.
    process: ProcessOwner,
}

impl JobOptions {
    /// Options keeping jobs' files in `shared` and working copies under `root`, run by this process under an id
    /// of its own (a restarted server is another runner: it takes up the
    /// jobs of the one before once that is provably gone), with the
    /// default lease (30 s) and heartbeat (10 s).
    pub fn in_folder(
        root: PathBuf,
        shared: NamedFiles,
        max_running: usize,
    ) -> Result<Self, JobError> {
        Self::with_lease(
            root,
            shared,
            max_running,
            DEFAULT_JOB_LEASE,
            DEFAULT_JOB_HEARTBEAT,
        )
    }

    /// Options as [`JobOptions::in_folder`], with leases of `lease` renewed
    /// every `heartbeat` (which must be shorter).
    pub fn with_lease(
        root: PathBuf,
        shared: NamedFiles,
        max_running: usize,
        lease: Duration,
        heartbeat: Duration,
    ) -> Result<Self, JobError> {
        if heartbeat.is_zero() || heartbeat >= lease {
            return Err(JobError::Invalid(format!(
                "the job heartbeat ({heartbeat:?}) must be above zero and shorter than the \
                 lease ({lease:?})"
            )));
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| JobError::Internal(format!("cannot create {}: {e}", root.display())))?;
        let process = ProcessOwner::start(&root, lease)?;
        Ok(JobOptions {
            root,
            shared,
            max_running,
            quotas: JobQuotas::default(),
            heartbeat,
            process,
        })
    }

    /// This process as a job runner.
    pub fn owner(&self) -> &JobOwner {
        &self.process.owner
    }
}

/// What the running jobs share.
pub(crate) struct JobContext {
    pub(crate) registry: Registry,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) options: JobOptions,
    /// Set once the server stops taking up work.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// Rows per second of the jobs running here, by id.
    pub(crate) live: Mutex<HashMap<String, Live>>,
    /// Why a job stopped here without finishing (its lease was lost).
    pub(crate) lost: Mutex<HashMap<String, String>>,
}

/// Progress of a job since this server started running it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    since: Instant,
    rows_at_start: u64,
    rows_now: u64,
}

impl JobContext {
    pub(crate) fn root(&self) -> &Path {
        &self.options.root
    }

    /// The files of job `id`.
    pub(crate) fn files(&self, id: &str) -> JobFiles {
        JobFiles::new(&self.options.root, &self.options.shared, id)
    }

    pub(crate) fn owner(&self) -> &JobOwner {
        self.options.owner()
    }

    /// How often leases are renewed and gone runners looked for.
    pub(crate) fn heartbeat(&self) -> Duration {
        self.options.heartbeat
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// The pipeline that runs the jobs' requests.
    pub(crate) fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The version to run a job's rows on, waiting while it loads; `None`
    /// when the server is stopping meanwhile.
    pub(crate) async fn served(
        &self,
        model: &str,
        version: Option<&str>,
    ) -> Result<Option<Arc<ServedVersion>>, JobError> {
        let patience = tokio::time::Instant::now() + MODEL_PATIENCE;
        let mut changes = self.pipeline.manager().changes();
        let mut stopping = self.stopping.subscribe();
        loop {
            if self.is_stopping() {
                return Ok(None);
            }
            // Marked seen before the lookup: a change after it wakes the wait.
            changes.borrow_and_update();
            match self.pipeline.find(model, version).await {
                Ok(served) => return Ok(Some(served)),
                Err(e) if e.kind == ErrorKind::Unavailable => {}
                Err(e) if tokio::time::Instant::now() < patience => {
                    tracing::debug!(model, error = %e.message, "job waits for its model");
                }
                Err(e) => return Err(e.into()),
            }
            // Woken by a change of the served models or by the stop; an
            // unknown model is looked up once more when its patience ends.
            tokio::select! {
                _ = changes.changed() => {}
                _ = stopping.changed() => {}
                _ = tokio::time::sleep_until(patience) => {}
            }
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
    pub(crate) fn rate(&self, id: &str) -> Option<f64> {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let l = live.get(id)?;
        let seconds = l.since.elapsed().as_secs_f64();
        (seconds > 0.0 && l.rows_now > l.rows_at_start)
            .then(|| (l.rows_now - l.rows_at_start) as f64 / seconds)
    }

    pub(crate) fn forget(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
