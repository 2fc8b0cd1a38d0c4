//! A job's folder: the input as received, the results and the bad-row
//! report. Results are appended a chunk at a time and made durable before
//! the checkpoint that counts them is stored, so a job that resumes cuts
//! them back to the checkpoint and neither loses nor repeats a row.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ferroserve_registry::{durable, Job};
use serde::{Deserialize, Serialize};

use super::error::JobError;
use super::spec::OutputFormat;
use ferroserve_tabular::Format;

/// Where one job keeps its files.
#[derive(Debug, Clone)]
pub struct JobFiles {
    dir: PathBuf,
}

impl JobFiles {
    /// The folder of job `id` under `root`. Job ids are made by the server
    /// (UUIDs), never taken from a client, so they are safe as folder names.
    pub fn new(root: &Path, id: &str) -> Self {
        JobFiles { dir: root.join(id) }
    }

    /// The job's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The input file of a batch job.
    pub fn input(&self, format: Format) -> PathBuf {
        self.dir.join(format!("input.{format}"))
    }

    /// The results of a batch job.
    pub fn output(&self, format: OutputFormat) -> PathBuf {
        self.dir.join(format!("output.{}", format.extension()))
    }

    /// The bad rows of a batch job, one JSON object per line.
    pub fn errors(&self) -> PathBuf {
        self.dir.join("errors.jsonl")
    }

    /// The request body of an asynchronous inference request.
    pub fn request(&self) -> PathBuf {
        self.dir.join("request.body")
    }

    /// The response body of an asynchronous inference request.
    pub fn response(&self) -> PathBuf {
        self.dir.join("response.body")
    }

    /// Creates the folder, and syncs the folders above it, so that a job
    /// the registry counts never loses its folder in a crash. Runs off the
    /// async workers.
    pub async fn create(&self) -> Result<(), JobError> {
        let dir = self.dir.clone();
        off_runtime(move || durable::create_dir_all(&dir).map_err(|e| io_error("create", &dir, &e)))
            .await
    }

    /// Writes `bytes` to `path` (one of this job's files), syncing the file
    /// and the folder before returning: once a job counts on a file, a
    /// crash must not take it back. Runs off the async workers.
    pub async fn write_durably(
        &self,
        path: PathBuf,
        bytes: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<(), JobError> {
        off_runtime(move || {
            durable::write_synced(&path, bytes.as_ref()).map_err(|e| io_error("write", &path, &e))
        })
        .await
    }

    /// Reads the whole of `path` (one of this job's small files: an
    /// asynchronous request or answer) off the async workers.
    pub async fn read(&self, path: PathBuf) -> Result<Vec<u8>, JobError> {
        off_runtime(move || fs::read(&path).map_err(|e| io_error("read", &path, &e))).await
    }

    /// Removes the folder and everything in it (a missing folder is fine),
    /// off the async workers: a job's folder may hold gigabytes.
    pub async fn remove(&self) -> Result<(), JobError> {
        let dir = self.dir.clone();
        off_runtime(move || match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", &dir, &e)),
            _ => Ok(()),
        })
        .await
    }
}

/// How far a batch job got: what its last checkpoint in the registry says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Input rows consumed (written or reported bad).
    pub(crate) rows_read: u64,
    /// Length of the results file holding those rows.
    pub(crate) output_bytes: u64,
    /// Length of the bad-row report holding those rows.
    pub(crate) errors_bytes: u64,
}

impl Checkpoint {
    /// Reads the checkpoint stored with a job (`{}` for a job not started).
    pub(crate) fn from_json(value: &serde_json::Value) -> Result<Self, JobError> {
        if value.as_object().is_some_and(|o| o.is_empty()) || value.is_null() {
            return Ok(Checkpoint::default());
        }
        serde_json::from_value(value.clone())
            .map_err(|e| JobError::Internal(format!("the job's checkpoint is unreadable: {e}")))
    }

    /// Input rows `job` had consumed at its last checkpoint (0 when its
    /// checkpoint cannot be read).
    pub(crate) fn rows_read_of(job: &Job) -> u64 {
        Checkpoint::from_json(&job.checkpoint).map_or(0, |c| c.rows_read)
    }

    /// The checkpoint as stored.
    pub(crate) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "rows_read": self.rows_read,
            "output_bytes": self.output_bytes,
            "errors_bytes": self.errors_bytes,
        })
    }
}

/// A file appended in chunks, each synced to disk before it is counted.
#[derive(Debug)]
pub(crate) struct AppendFile {
    file: File,
    path: PathBuf,
    len: u64,
}

impl AppendFile {
    /// Opens `path` (created if missing) cut back to `len` bytes, the length
    /// the last checkpoint counted. A file shorter than that lost rows that
    /// were reported done, which is an error.
    pub(crate) fn resume(path: &Path, len: u64) -> Result<Self, JobError> {
        let open = || -> io::Result<(File, u64)> {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(path)?;
            let found = file.metadata()?.len();
            if found >= len {
                file.set_len(len)?;
                file.seek(SeekFrom::Start(len))?;
            }
            Ok((file, found))
        };
        let (file, found) = open().map_err(|e| io_error("open", path, &e))?;
        if found == 0 {
            // Perhaps just created: its name must outlive a crash like its rows.
            durable::fsync_parent(path).map_err(|e| io_error("sync the folder of", path, &e))?;
        }
        if found < len {
            return Err(JobError::Internal(format!(
                "{} has {found} bytes but the job's checkpoint counts {len}; \
                 the results were changed outside ferroserve",
                job_relative(path)
            )));
        }
        Ok(AppendFile {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Appends `bytes` and waits until they are on disk.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), JobError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_error("write", &self.path, &e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

/// A file error for clients: the server's folders are logged, and the
/// message names the file within the jobs folder only (`<job id>/output.csv`).
pub(crate) fn io_error(what: &str, path: &Path, error: &io::Error) -> JobError {
    tracing::error!(path = %path.display(), error = %error, "cannot {what} a job file");
    JobError::Internal(format!("cannot {what} {}: {error}", job_relative(path)))
}

/// The last two parts of `path`: the job's id and the file's name.
fn job_relative(path: &Path) -> String {
    let parts: Vec<_> = path.iter().rev().take(2).collect();
    parts
        .iter()
        .rev()
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs blocking file work of a job off the async workers.
pub(crate) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| JobError::Internal(format!("a job file task stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_cuts_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv");
        let mut file = AppendFile::resume(&path, 0).expect("new file");
        file.append(b"row\n1\n").expect("append");
        let counted = file.len();
        file.append(b"2\n").expect("append");
        drop(file);
        // The last chunk was written but its checkpoint never stored.
        let mut file = AppendFile::resume(&path, counted).expect("resume");
        file.append(b"2\n3\n").expect("append");
        assert_eq!(fs::read_to_string(&path).expect("read"), "row\n1\n2\n3\n");
    }

    #[test]
    fn file_errors_name_the_job_file_not_the_server_folder() {
        let error = io_error(
            "write",
            Path::new("/var/lib/ferroserve/jobs/1234/output.csv"),
            &io::Error::other("disk full"),
        );
        let message = error.to_string();
        assert!(message.contains("1234/output.csv"), "{message}");
        assert!(!message.contains("/var/lib"), "{message}");
    }

    #[test]
    fn a_file_shorter_than_its_checkpoint_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.csv");
        fs::write(&path, "row\n").expect("write");
        let err = AppendFile::resume(&path, 100).unwrap_err();
        assert!(err.to_string().contains("checkpoint counts 100"), "{}", err);
    }

    #[test]
    fn checkpoints_round_trip_and_start_empty() {
        let empty = Checkpoint::from_json(&serde_json::json!({})).expect("empty");
        assert_eq!(empty, Checkpoint::default());
        let checkpoint = Checkpoint {
            rows_read: 5,
            output_bytes: 40,
            errors_bytes: 3,
        };
        assert_eq!(
            Checkpoint::from_json(&checkpoint.to_json()).expect("read"),
            checkpoint
        );
        assert!(Checkpoint::from_json(&serde_json::json!({"rows_read": "x"})).is_err());
    }
}
