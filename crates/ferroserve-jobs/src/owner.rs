//! This process as a job runner: an id of its own for each start, the host
//! and process id it runs on, and a lock file it holds while it lives, so
//! that another process on the same host and data dir can prove it gone
//! (the kernel drops the lock when a process dies, even by SIGKILL, and a
//! lock cannot be confused by a reused pid).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferroserve_registry::{Job, JobOwner, JobState};

use super::error::JobError;

/// The folder under the jobs root holding one lock file per live runner.
pub(crate) const OWNERS_DIR: &str = "owners";

/// This process as a runner: its identity and the lock it holds.
#[derive(Debug, Clone)]
pub(crate) struct ProcessOwner {
    pub(crate) owner: JobOwner,
    /// Held (locked) for as long as this process lives.
    _lock: Arc<File>,
}

impl ProcessOwner {
    /// A new runner for the jobs under `root`, holding leases of `lease`:
    /// a fresh id, this host and pid, and its lock file, locked.
    pub(crate) fn start(root: &Path, lease: Duration) -> Result<Self, JobError> {
        let dir = root.join(OWNERS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| JobError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let id = uuid::Uuid::new_v4().to_string();
        let path = lock_path(root, &id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| JobError::Internal(format!("cannot create {}: {e}", path.display())))?;
        file.try_lock()
            .map_err(|e| JobError::Internal(format!("cannot lock {}: {e}", path.display())))?;
        let owner = JobOwner {
            id,
            host: Some(host_name()),
            pid: Some(std::process::id()),
            lease,
        };
        Ok(ProcessOwner {
            owner,
            _lock: Arc::new(file),
        })
    }
}

/// The lock file of runner `id`.
fn lock_path(root: &Path, id: &str) -> PathBuf {
    root.join(OWNERS_DIR).join(format!("{id}.lock"))
}

/// Whether runner `id`, which ran on this host over the jobs under `root`,
/// is provably gone: its lock file is there and nobody holds its lock.
/// `false` when that cannot be told (no lock file: another data dir, or a
/// runner of an older release).
fn is_gone(root: &Path, id: &str) -> bool {
    let Ok(file) = File::open(lock_path(root, id)) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(_)) => false,
    }
}

/// Removes the lock files of runners that are gone, except `mine`; returns
/// how many went.
pub(crate) fn remove_gone(root: &Path, mine: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(root.join(OWNERS_DIR)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".lock") else {
            continue;
        };
        if id != mine && is_gone(root, id) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a runner may take up a job.
#[derive(Debug, PartialEq)]
pub(crate) enum Claim {
    /// It is queued, or its lease has run out: claim it.
    Now,
    /// Its runner, on this host, is gone: take it over from that runner.
    TakeOver(String),
    /// Leave it: why.
    No(String),
}

/// Whether `me` may take up unfinished `job` now (`now` in unix ms).
pub(crate) fn claim_of(root: &Path, me: &JobOwner, job: &Job, now: i64) -> Claim {
    let Some(holder) = job
        .owner
        .as_deref()
        .filter(|_| job.state == JobState::Running)
    else {
        return Claim::Now;
    };
    let live = job.lease_expires_at.is_some_and(|end| end > now);
    let who = JobOwner::describe(holder, job.owner_host.as_deref(), job.owner_pid);
    if holder == me.id {
        return Claim::No("this process runs it".to_owned());
    }
    if !live {
        return Claim::Now;
    }
    if job.owner_host.is_some() && job.owner_host == me.host && is_gone(root, holder) {
        return Claim::TakeOver(holder.to_owned());
    }
    let left = job
        .lease_expires_at
        .map_or(0, |end| (end - now + 999) / 1000);
    Claim::No(format!(
        "runner {who} is running it (its lease runs {left} s more unless renewed)"
    ))
}

/// This host's name.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            let name = std::fs::read_to_string(path).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_start_is_a_runner_of_its_own_and_a_dropped_one_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ProcessOwner::start(dir.path(), Duration::from_secs(30)).expect("first");
        let second = ProcessOwner::start(dir.path(), Duration::from_secs(30)).expect("second");
        assert_ne!(first.owner.id, second.owner.id);
        assert_eq!(first.owner.pid, Some(std::process::id()));
        assert!(!is_gone(dir.path(), &first.owner.id), "its lock is held");
        assert!(
            !is_gone(dir.path(), "unknown"),
            "no lock file proves nothing"
        );
        let gone = first.owner.id.clone();
        drop(first);
        assert!(is_gone(dir.path(), &gone));
        assert_eq!(remove_gone(dir.path(), &second.owner.id), 1);
        assert!(!lock_path(dir.path(), &gone).exists());
        assert!(lock_path(dir.path(), &second.owner.id).exists());
    }

    /// A running batch job held by `owner` on `host` until `lease`.
    fn job(owner: Option<&str>, host: &str, lease: Option<i64>) -> Job {
        Job {
            id: "j1".into(),
            kind: "batch".into(),
            model: "iris".into(),
            version: None,
            spec: serde_json::json!({"input_format": "csv"}),
            state: if owner.is_some() {
                JobState::Running
            } else {
                JobState::Queued
            },
            rows_total: None,
            rows_done: 0,
            rows_failed: 0,
            checkpoint: serde_json::json!({}),
            error: None,
            owner: owner.map(str::to_owned),
            owner_host: Some(host.to_owned()),
            owner_pid: Some(7),
            lease_expires_at: lease,
            actor: "t".into(),
            created_at: 0,
            started_at: None,
            updated_at: 0,
            finished_at: None,
            cancel_requested: false,
        }
    }

    #[test]
    fn a_job_is_taken_up_only_from_a_runner_that_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = ProcessOwner::start(dir.path(), Duration::from_secs(30)).expect("me");
        let other = ProcessOwner::start(dir.path(), Duration::from_secs(30)).expect("other");
        let host = me.owner.host.clone().expect("host");
        let now = 1_000_000;
        let (live, ended) = (Some(now + 10_000), Some(now - 1));
        let claim = |job: &Job| claim_of(dir.path(), &me.owner, job, now);

        assert_eq!(claim(&job(None, &host, None)), Claim::Now, "queued");
        let theirs = other.owner.id.as_str();
        let held = claim(&job(Some(theirs), &host, live));
        assert!(
            matches!(&held, Claim::No(why) if why.contains(theirs) && why.contains("pid 7")),
            "{held:?}"
        );
        assert_eq!(
            claim(&job(Some(theirs), &host, ended)),
            Claim::Now,
            "lease ran out"
        );
        assert_eq!(
            claim(&job(Some(theirs), &host, None)),
            Claim::Now,
            "no lease"
        );
        assert!(matches!(
            claim(&job(Some(&me.owner.id), &host, live)),
            Claim::No(_)
        ));
        // A runner of another host cannot be proved gone: its lease decides.
        let gone = other.owner.id.clone();
        drop(other);
        assert_eq!(
            claim(&job(Some(&gone), &host, live)),
            Claim::TakeOver(gone.clone())
        );
        assert!(matches!(
            claim(&job(Some(&gone), "elsewhere", live)),
            Claim::No(_)
        ));
        assert!(matches!(
            claim(&job(Some("unknown-runner"), &host, live)),
            Claim::No(_)
        ));
    }
}
