//! A job's files: the input as received, the results and the bad-row
//! report of a batch job, the request and answer of an asynchronous one.
//! They live in the shared job area of the artifact store (a folder or an
//! object store every replica sees), so a job runs, resumes and is read on
//! any replica. Results are written a chunk at a time, each chunk as a part
//! of its own stored before the checkpoint that counts it, so a job that
//! resumes overwrites the parts past its checkpoint and neither loses nor
//! repeats a row. A local working folder keeps a copy of the input for the
//! readers, which need a file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ferroserve_registry::{durable, FileStream, Job, NamedFiles};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::JobError;
use super::spec::OutputFormat;
use ferroserve_tabular::Format;

/// Where one job keeps its files.
#[derive(Debug, Clone)]
pub struct JobFiles {
    id: String,
    /// This process's working folder of the job.
    dir: PathBuf,
    /// The shared job area.
    shared: NamedFiles,
}

/// The two reports a batch job writes in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The results, one line per good row.
    Output,
    /// The bad rows, one JSON object per line.
    Errors,
}

impl JobFiles {
    /// The files of job `id`: its working folder under `root`, its stored
    /// files in `shared`. Job ids are made by the server (UUIDs), never
    /// taken from a client, so they are safe as names.
    pub fn new(root: &Path, shared: &NamedFiles, id: &str) -> Self {
        JobFiles {
            id: id.to_owned(),
            dir: root.join(id),
            shared: shared.clone(),
        }
    }

    /// The job's working folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The working copy of a batch job's input: where a submission puts
    /// it before [`JobFiles::store_input`], and where a runner reads it.
    pub fn input(&self, format: Format) -> PathBuf {
        self.dir.join(format!("input.{format}"))
    }

    fn input_name(&self, format: Format) -> String {
        format!("{}/input.{format}", self.id)
    }

    /// The stored name of part `index` of `report`.
    pub(crate) fn part_name(&self, report: Report, index: u64) -> String {
        let what = match report {
            Report::Output => "output",
            Report::Errors => "errors",
        };
        format!("{}/{what}/{index:08}", self.id)
    }

    fn request_name(&self) -> String {
        format!("{}/request.body", self.id)
    }

    fn response_name(&self) -> String {
        format!("{}/response.body", self.id)
    }

    /// Creates the working folder, and syncs the folders above it. Runs
    /// off the async workers.
    pub async fn create(&self) -> Result<(), JobError> {
        let dir = self.dir.clone();
        off_runtime(move || durable::create_dir_all(&dir).map_err(|e| io_error("create", &dir, &e)))
            .await
    }

    /// Stores the working copy of the input in the shared area, where any
    /// replica can run the job.
    pub async fn store_input(&self, format: Format) -> Result<(), JobError> {
        self.shared
            .put_file(&self.input_name(format), &self.input(format))
            .await
            .map_err(|e| stored_error("store the input of", &self.id, e))
    }

    /// The input as a local file: the stored file itself in a shared
    /// folder, else the working copy, fetched from the store when this
    /// process does not have it yet.
    pub(crate) async fn local_input(&self, format: Format) -> Result<PathBuf, JobError> {
        let name = self.input_name(format);
        let stored = self
            .shared
            .local_path(&name)
            .map_err(|e| stored_error("find the input of", &self.id, e))?;
        if let Some(path) = stored.filter(|p| p.is_file()) {
            return Ok(path);
        }
        let copy = self.input(format);
        if copy.is_file() {
            return Ok(copy);
        }
        self.create().await?;
        // Fetched under another name, then renamed: a copy cut short by a
        // crash is never taken for the whole input.
        let partial = copy.with_extension("fetching");
        let found = self
            .shared
            .fetch(&name, &partial)
            .await
            .map_err(|e| stored_error("fetch the input of", &self.id, e))?;
        if !found {
            return Err(JobError::Internal(format!(
                "the input of job {} is not in the job store {}",
                self.id,
                self.shared.describe()
            )));
        }
        let (from, to) = (partial, copy.clone());
        off_runtime(move || {
            fs::rename(&from, &to)
                .and_then(|()| durable::fsync_parent(&to))
                .map_err(|e| io_error("keep the fetched input as", &to, &e))
        })
        .await?;
        Ok(copy)
    }

    /// Stores the request body of an asynchronous inference request.
    pub async fn store_request(&self, body: Bytes) -> Result<(), JobError> {
        self.shared
            .put(&self.request_name(), body)
            .await
            .map_err(|e| stored_error("store the request of", &self.id, e))
    }

    /// The request body of an asynchronous inference request.
    pub(crate) async fn request(&self) -> Result<Bytes, JobError> {
        self.read_whole(&self.request_name(), "request").await
    }

    /// Stores the answer of an asynchronous inference request.
    pub(crate) async fn store_response(&self, body: Bytes) -> Result<(), JobError> {
        self.shared
            .put(&self.response_name(), body)
            .await
            .map_err(|e| stored_error("store the answer of", &self.id, e))
    }

    /// The stored answer of an asynchronous inference request, streamed.
    pub(crate) async fn response(&self) -> Result<FileStream, JobError> {
        self.stream(vec![self.response_name()])
    }

    async fn read_whole(&self, name: &str, what: &str) -> Result<Bytes, JobError> {
        self.shared
            .get(name)
            .await
            .map_err(|e| stored_error(&format!("read the {what} of"), &self.id, e))?
            .ok_or_else(|| {
                JobError::Internal(format!(
                    "the {what} of job {} is not in the job store {}",
                    self.id,
                    self.shared.describe()
                ))
            })
    }

    /// Stores `bytes` as part `index` of `report`, replacing a part of that
    /// number written before an interruption.
    pub(crate) async fn put_part(
        &self,
        report: Report,
        index: u64,
        bytes: Bytes,
    ) -> Result<(), JobError> {
        self.shared
            .put(&self.part_name(report, index), bytes)
            .await
            .map_err(|e| stored_error("store the results of", &self.id, e))
    }

    /// The first `parts` parts of `report`, one after the other.
    pub(crate) async fn report(&self, report: Report, parts: u64) -> Result<FileStream, JobError> {
        let names = (0..parts).map(|i| self.part_name(report, i)).collect();
        self.stream(names)
    }

    /// Streams the stored files `names` one after the other. A missing
    /// file is an error in the stream: a checkpoint counted it.
    fn stream(&self, names: Vec<String>) -> Result<FileStream, JobError> {
        let shared = self.shared.clone();
        let id = self.id.clone();
        let streams = futures::stream::iter(names).then(move |name| {
            let (shared, id) = (shared.clone(), id.clone());
            async move {
                match shared.open(&name).await {
                    Ok(Some(stream)) => stream,
                    Ok(None) => futures::stream::once(async move {
                        Err(ferroserve_registry::RegistryError::Io(format!(
                            "{name} of job {id} is missing from the job store {}",
                            shared.describe()
                        )))
                    })
                    .boxed(),
                    Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                }
            }
        });
        Ok(streams.flatten().boxed())
    }

    /// Removes the job's working folder and its stored files (missing
    /// ones are fine).
    pub async fn remove(&self) -> Result<(), JobError> {
        self.remove_working().await?;
        self.shared
            .remove_all(&self.id)
            .await
            .map_err(|e| stored_error("remove the files of", &self.id, e))
    }

    /// Removes this process's working folder of the job (missing is fine),
    /// off the async workers: it may hold gigabytes.
    pub(crate) async fn remove_working(&self) -> Result<(), JobError> {
        let dir = self.dir.clone();
        off_runtime(move || match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", &dir, &e)),
            _ => Ok(()),
        })
        .await
    }

    /// Takes up the results of a job checkpointed by an older release,
    /// which appended them to one file in the working folder: the counted
    /// bytes become part 0 of each report (already stored when the working
    /// folder is gone).
    pub(crate) async fn adopt_appended(
        &self,
        checkpoint: &mut Checkpoint,
        output: OutputFormat,
    ) -> Result<(), JobError> {
        let files = [
            (
                Report::Output,
                format!("output.{}", output.extension()),
                checkpoint.output_bytes,
            ),
            (
                Report::Errors,
                "errors.jsonl".to_owned(),
                checkpoint.errors_bytes,
            ),
        ];
        for (report, file, counted) in files {
            if counted == 0 {
                continue;
            }
            let path = self.dir.join(file);
            let read = path.clone();
            let bytes = off_runtime(move || match fs::read(&read) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_error("read", &read, &e)),
            })
            .await?;
            match bytes {
                Some(bytes) => {
                    let Some(kept) = bytes.get(..counted as usize) else {
                        return Err(JobError::Internal(format!(
                            "{} has {} bytes but the job's checkpoint counts {counted}; \
                             the results were changed outside ferroserve",
                            job_relative(&path),
                            bytes.len()
                        )));
                    };
                    self.put_part(report, 0, Bytes::copy_from_slice(kept))
                        .await?;
                }
                None => {
                    let stored = self
                        .shared
                        .open(&self.part_name(report, 0))
                        .await
                        .map_err(|e| stored_error("read the results of", &self.id, e))?;
                    if stored.is_none() {
                        return Err(JobError::Internal(format!(
                            "the results of job {} are neither in {} nor in the job store",
                            self.id,
                            job_relative(&path)
                        )));
                    }
                }
            }
            match report {
                Report::Output => checkpoint.output_parts = 1,
                Report::Errors => checkpoint.errors_parts = 1,
            }
        }
        Ok(())
    }
}

/// A stored-file error for clients: the job, not the server's folders.
fn stored_error(what: &str, id: &str, error: ferroserve_registry::RegistryError) -> JobError {
    tracing::error!(job = id, error = %error, "cannot {what} a job");
    JobError::Internal(format!("cannot {what} job {id}: {error}"))
}

/// How far a batch job got: what its last checkpoint in the registry says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Input rows consumed (written or reported bad).
    pub(crate) rows_read: u64,
    /// Parts of the results holding those rows.
    #[serde(default)]
    pub(crate) output_parts: u64,
    /// Parts of the bad-row report holding those rows.
    #[serde(default)]
    pub(crate) errors_parts: u64,
    /// Bytes of results in those parts.
    #[serde(default)]
    pub(crate) output_bytes: u64,
    /// Bytes of bad-row report in those parts.
    #[serde(default)]
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

    /// Whether it was stored by an older release that appended results to
    /// one file instead of writing parts.
    pub(crate) fn is_appended(&self) -> bool {
        self.output_parts == 0
            && self.errors_parts == 0
            && (self.output_bytes > 0 || self.errors_bytes > 0)
    }

    /// The checkpoint as stored.
    pub(crate) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "rows_read": self.rows_read,
            "output_parts": self.output_parts,
            "errors_parts": self.errors_parts,
            "output_bytes": self.output_bytes,
            "errors_bytes": self.errors_bytes,
        })
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

    use futures::TryStreamExt;

    async fn read(stream: FileStream) -> String {
        let chunks: Vec<Bytes> = stream.try_collect().await.expect("read");
        String::from_utf8(chunks.concat()).expect("utf-8")
    }

    #[tokio::test]
    async fn reports_are_the_counted_parts_in_order_and_a_rewritten_part_replaces_the_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = NamedFiles::local(dir.path().join("store"));
        let files = JobFiles::new(&dir.path().join("work"), &shared, "j1");
        files
            .put_part(Report::Output, 0, Bytes::from_static(b"row\n1\n"))
            .await
            .expect("0");
        files
            .put_part(Report::Output, 1, Bytes::from_static(b"2\n"))
            .await
            .expect("1");
        // Interrupted before its checkpoint, the chunk is written again.
        files
            .put_part(Report::Output, 1, Bytes::from_static(b"2\n3\n"))
            .await
            .expect("again");
        files
            .put_part(Report::Output, 2, Bytes::from_static(b"not counted\n"))
            .await
            .expect("2");
        assert_eq!(
            read(files.report(Report::Output, 2).await.expect("report")).await,
            "row\n1\n2\n3\n"
        );
        assert_eq!(
            read(files.report(Report::Errors, 0).await.expect("none")).await,
            ""
        );
        let missing: Result<Vec<Bytes>, _> = files
            .report(Report::Errors, 1)
            .await
            .expect("stream")
            .try_collect()
            .await;
        assert!(missing.unwrap_err().to_string().contains("missing"));
        files.remove().await.expect("remove");
        assert_eq!(shared.entries().await.expect("list"), vec![]);
    }

    #[tokio::test]
    async fn results_appended_by_an_older_release_become_the_first_part() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = NamedFiles::local(dir.path().join("store"));
        let files = JobFiles::new(&dir.path().join("work"), &shared, "j1");
        files.create().await.expect("folder");
        fs::write(files.dir().join("output.csv"), "row\n1\nuncounted\n").expect("output");
        let mut checkpoint = Checkpoint {
            rows_read: 1,
            output_bytes: 6,
            ..Checkpoint::default()
        };
        assert!(checkpoint.is_appended());
        files
            .adopt_appended(&mut checkpoint, OutputFormat::Csv)
            .await
            .expect("adopt");
        assert_eq!(checkpoint.output_parts, 1);
        assert_eq!(
            read(files.report(Report::Output, 1).await.expect("report")).await,
            "row\n1\n"
        );
        let mut short = Checkpoint {
            output_bytes: 100,
            ..Checkpoint::default()
        };
        let e = files
            .adopt_appended(&mut short, OutputFormat::Csv)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("checkpoint counts 100"), "{e}");
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
    fn checkpoints_round_trip_and_start_empty() {
        let empty = Checkpoint::from_json(&serde_json::json!({})).expect("empty");
        assert_eq!(empty, Checkpoint::default());
        let checkpoint = Checkpoint {
            rows_read: 5,
            output_parts: 2,
            errors_parts: 1,
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
