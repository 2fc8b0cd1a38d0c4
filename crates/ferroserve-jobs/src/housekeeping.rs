//! Housekeeping of the job service: unfinished jobs whose runner is gone
//! are taken up every heartbeat; finished jobs are forgotten with their
//! files after the retention time (by the leader), and so are stored files
//! no job owns, working folders no running job needs and the lock files of
//! runners that are gone.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferroserve_core::ErrorKind;
use ferroserve_registry::{JobFilter, JobState};
use tokio::task::JoinHandle;

use super::context::now_ms;
use super::error::JobError;
use super::files::off_runtime;
use super::owner::{remove_gone, OWNERS_DIR};
use super::service::JobService;

impl JobService {
    /// Forgets the jobs that finished more than `retention` ago, with
    /// their stored files (up to 10 000 per state at a time), and stored
    /// files no job owns once they are an hour old (a submission cut short
    /// by a crash leaves some): work for one replica, the leader, done here
    /// only while this process leads. Every replica then removes its own
    /// working folders of jobs that are finished or unknown. Returns how
    /// many jobs and folders went.
    pub async fn purge(&self, retention: Duration) -> Result<(u64, usize), JobError> {
        let (mut jobs, mut folders) = (0, 0);
        if self.ctx.registry().leadership().is_leader() {
            jobs = self.purge_finished(retention).await?;
            folders += self.purge_stored_orphans().await?;
        }
        let root = self.ctx.root().to_owned();
        let found = off_runtime(move || Ok(job_folders(&root))).await?;
        for (id, age) in found {
            if id == OWNERS_DIR {
                continue;
            }
            let unneeded = match self.ctx.registry().job(&id).await {
                Err(e) if e.kind() == ErrorKind::NotFound => age >= ORPHAN_AGE,
                // Results an older release appended there are stored first.
                Ok(job) if job.state.is_finished() => self.keep_appended(&job).await.is_ok(),
                Ok(_) => false,
                Err(_) => false,
            };
            if unneeded {
                self.files(&id).remove_working().await?;
                folders += 1;
            }
        }
        let (root, mine) = (self.ctx.root().to_owned(), self.ctx.owner().id.clone());
        let owners = off_runtime(move || Ok(remove_gone(&root, &mine))).await?;
        if jobs > 0 || folders > 0 || owners > 0 {
            tracing::info!(jobs, folders, owners, "finished jobs purged");
        }
        Ok((jobs, folders))
    }

    /// Forgets the jobs that finished before `retention`, with their files.
    async fn purge_finished(&self, retention: Duration) -> Result<u64, JobError> {
        let cutoff = now_ms().saturating_sub(retention.as_millis().min(i64::MAX as u128) as i64);
        for state in JobState::ALL.into_iter().filter(|s| s.is_finished()) {
            let filter = JobFilter {
                state: Some(state),
                model: None,
                limit: PURGE_BATCH,
            };
            let listed = self
                .ctx
                .registry()
                .list_jobs(&filter)
                .await
                .map_err(JobError::from)?;
            for job in listed {
                if job.finished_at.is_some_and(|at| at < cutoff) {
                    self.files(&job.id).remove().await?;
                }
            }
        }
        self.ctx
            .registry()
            .delete_finished_jobs(cutoff)
            .await
            .map_err(JobError::from)
    }

    /// Removes the stored files of jobs the registry does not know, once
    /// nothing under them changed for an hour.
    async fn purge_stored_orphans(&self) -> Result<usize, JobError> {
        let entries = self
            .ctx
            .options
            .shared
            .entries()
            .await
            .map_err(JobError::from)?;
        let mut removed = 0;
        let young = now_ms().saturating_sub(ORPHAN_AGE.as_millis() as i64);
        for entry in entries.into_iter().filter(|e| e.modified_ms < young) {
            if let Err(e) = self.ctx.registry().job(&entry.name).await {
                if e.kind() == ErrorKind::NotFound {
                    self.files(&entry.name).remove().await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Takes up, every heartbeat, the unfinished jobs whose runner is gone
    /// (see [`JobService::resume_unfinished`]); the first look is at once.
    pub fn spawn_lease_watch(self: &Arc<Self>) -> JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(service.ctx.heartbeat());
            loop {
                ticks.tick().await;
                if service.ctx.is_stopping() {
                    return;
                }
                match service.resume_unfinished().await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "resuming unfinished jobs"),
                    Err(e) => tracing::warn!(error = %e, "cannot look for jobs to take up"),
                }
            }
        })
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
                    tracing::warn!(error = %e, "cannot purge finished jobs");
                }
            }
        })
    }
}

/// Finished jobs of each state looked at by one purge.
const PURGE_BATCH: i64 = 10_000;

/// How old a job folder without a job must be before it is removed: a
/// submission writes its folder before the job exists.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobKind, JobOptions};
    use ferroserve_backend::Engines;
    use ferroserve_registry::{NewJob, Registry};
    use ferroserve_serving::ModelManager;

    async fn service(dir: &Path) -> Arc<JobService> {
        let url = format!("sqlite://{}?mode=rwc", dir.join("registry.db").display());
        let registry = Registry::connect(&url).await.expect("registry");
        let shared = ferroserve_registry::NamedFiles::local(dir.join("store"));
        let options = JobOptions::in_folder(dir.join("jobs"), shared, 1).expect("options");
        let manager = Arc::new(ModelManager::new(Arc::new(Engines::discover(None))));
        JobService::new(
            options,
            registry,
            Arc::new(ferroserve_serving::Pipeline::new(
                manager,
                Duration::from_secs(30),
            )),
        )
    }

    #[tokio::test]
    async fn purging_forgets_old_finished_jobs_and_their_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jobs = service(dir.path()).await;
        let registry = jobs.ctx.registry();
        let owner = jobs.ctx.owner().to_owned();
        for id in ["old", "running"] {
            jobs.files(id).create().await.expect("folder");
            jobs.files(id)
                .store_request(bytes::Bytes::from_static(b"{}"))
                .await
                .expect("stored file");
            registry
                .create_job(NewJob {
                    id: id.into(),
                    kind: JobKind::Batch.as_str().into(),
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
        jobs.files("orphan").create().await.expect("orphan");

        // Within the retention time the job and its stored files stay; the
        // working folder of a finished job goes.
        assert_eq!(
            jobs.purge(Duration::from_secs(3600)).await.expect("purge"),
            (0, 1)
        );
        assert!(!jobs.files("old").dir().exists());
        assert!(jobs.files("old").request().await.is_ok());
        assert_eq!(jobs.purge(Duration::ZERO).await.expect("purge"), (1, 0));
        let status = jobs.status("old").await.unwrap_err();
        assert_eq!(status.kind(), ErrorKind::NotFound);
        assert!(
            jobs.files("old").request().await.is_err(),
            "the stored files of a purged job go at once"
        );
        assert!(jobs.files("running").dir().exists());
        assert!(jobs.files("running").request().await.is_ok());
        assert!(jobs.files("orphan").dir().exists());
        assert_eq!(
            jobs.status("running").await.expect("kept").state,
            JobState::Running
        );
    }
}
