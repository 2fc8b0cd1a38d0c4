//! Jobs in this process: the data dir's registry is opened, the model
//! loaded as a server would serve it, and the job run by the same job
//! service a server uses, checkpointed in the same registry and held by
//! this process's lease (so a job cut short here resumes with `--resume`,
//! or is taken up by a server on the same data dir once this process is
//! gone, never while it runs).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::registry::Access;
use anyhow::{anyhow, bail, Context};
use ferroserve_backend::{EngineChoice, Engines};
use ferroserve_batcher::BatcherConfig;
use ferroserve_core::ErrorKind;
use ferroserve_jobs::{JobOptions, JobService};
use ferroserve_serving::lifecycle::Controller;
use ferroserve_serving::repository::ServingDefaults;
use ferroserve_serving::{ModelManager, Pipeline};
use serde_json::Value;
use tokio::runtime::Runtime;

use super::{copy_file, data_dir_flags, BatchArgs, JobRunner, Submission};

/// How long Ctrl-C waits for the job to reach a safe point.
const STOP_PATIENCE: Duration = Duration::from_secs(60);

/// The job service of a data dir, with the one model it needs loaded.
pub struct LocalRunner {
    runtime: Runtime,
    jobs: Arc<JobService>,
    actor: String,
    /// `--data-dir ...` as the user gave it, for hints.
    flags: String,
    /// Keeps the loaded model served while the job runs.
    _controller: Controller,
}

impl LocalRunner {
    /// Opens the data dir of `args` and loads the model the job runs on.
    pub fn open(args: &BatchArgs) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let settings = args.registry.settings();
        let engines = Arc::new(Engines::discover(args.registry.ort_library.as_deref()));
        // The model must be registered already: nothing to create.
        settings.check_exists()?;
        let lifecycle = runtime
            .block_on(crate::registry::open(
                &settings,
                engines.clone(),
                Access::Existing,
            ))
            .with_context(|| format!("cannot open the data dir {}", settings.data_dir.display()))?;
        let registry = lifecycle.registry().clone();
        let model = match (&args.resume, &args.model) {
            (Some(id), _) => {
                runtime
                    .block_on(registry.job(id))
                    .map_err(|e| anyhow!("{e}"))?
                    .model
            }
            (None, Some(model)) => model.clone(),
            (None, None) => bail!("name the model with --model"),
        };
        let manager = Arc::new(ModelManager::new(engines));
        let defaults = ServingDefaults {
            engine: EngineChoice::Auto,
            intra_op_threads: 1,
            batching: BatcherConfig::default(),
        };
        let controller =
            Controller::new(Arc::new(lifecycle), manager.clone(), defaults, Vec::new());
        // "model 'nope' does not exist", as every other command says it.
        runtime
            .block_on(registry.get_model(&model))
            .map_err(|e| anyhow!("{e} in the registry of {}", settings.data_dir.display()))?;
        let status = runtime.block_on(controller.reconcile(&model));
        if let Err(e) = manager.get(&model, args.version.as_deref()) {
            let failures: Vec<String> = status
                .failures
                .iter()
                .map(|f| format!("; version {} failed: {}", f.version, f.reason))
                .collect();
            bail!(
                "cannot load model '{model}' from {}: {}{}",
                settings.data_dir.display(),
                e.message,
                failures.concat()
            );
        }
        let shared = controller.lifecycle().artifacts().named("jobs");
        let options = JobOptions::in_folder(settings.data_dir.join("jobs"), shared, 1)?;
        // Background calls have no default deadline; the timeout is unused.
        let pipeline = Pipeline::for_controller(&controller, std::time::Duration::from_secs(30));
        let jobs = JobService::new(options, registry, Arc::new(pipeline));
        Ok(LocalRunner {
            runtime,
            jobs,
            actor: args.registry.actor(),
            flags: data_dir_flags(&args.registry),
            _controller: controller,
        })
    }
}

impl JobRunner for LocalRunner {
    fn submit(&self, job: &Submission) -> anyhow::Result<String> {
        let id = JobService::new_id();
        let files = self.jobs.files(&id);
        self.runtime.block_on(files.create())?;
        let input = files.input(job.spec.input_format);
        // A link costs nothing; another file system needs a copy.
        if std::fs::hard_link(&job.input, &input).is_err() {
            copy_file(&job.input, &input)?;
        }
        let status = self.runtime.block_on(self.jobs.submit_batch(
            id,
            &job.model,
            job.version.as_deref(),
            job.spec.clone(),
            &self.actor,
        ))?;
        Ok(status.id)
    }

    fn resume(&self, id: &str) -> anyhow::Result<()> {
        match self.runtime.block_on(self.jobs.resume(id)) {
            Ok(_) => Ok(()),
            // Another live process runs it: follow it there.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                eprintln!("{e}; following it until it ends");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn interrupted(&self, id: &str) -> String {
        let status = self.status(id).ok();
        if status
            .as_ref()
            .is_some_and(|s| s["owner"].as_str() != Some(self.jobs.owner_id()))
        {
            return format!("job {id} runs in another process; it goes on there");
        }
        self.runtime.block_on(self.jobs.shutdown(STOP_PATIENCE));
        let status = self.status(id).unwrap_or_default();
        let (read, total) = (
            status["rows_done"].as_i64().unwrap_or(0) + status["rows_failed"].as_i64().unwrap_or(0),
            status["rows_total"].as_i64(),
        );
        let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
        let flags = &self.flags;
        format!(
            "job {id} stopped after {read}{of} rows and can be resumed from there:\n  \
             ferroserve batch --resume {id}{flags}\n  \
             (or ferroserve jobs resume {id}{flags})"
        )
    }

    fn status(&self, id: &str) -> anyhow::Result<Value> {
        if let Some(why) = self.jobs.lost(id) {
            anyhow::bail!("job {id} stopped in this process: {why}");
        }
        let status = self.runtime.block_on(self.jobs.status(id))?;
        Ok(serde_json::to_value(status)?)
    }

    fn save_result(&self, id: &str, out: &Path) -> anyhow::Result<()> {
        let result = self.runtime.block_on(self.jobs.result(id))?;
        self.runtime.block_on(result.save(out))?;
        Ok(())
    }

    fn save_errors(&self, id: &str, out: &Path) -> anyhow::Result<()> {
        let report = self.runtime.block_on(self.jobs.bad_rows(id))?;
        self.runtime.block_on(report.save(out))?;
        Ok(())
    }
}
