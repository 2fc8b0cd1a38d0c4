//! Running one batch job: read a chunk of rows, turn them into the model's
//! inputs, run them a batch at a time behind online traffic, store the
//! chunk's results and bad rows as parts in the job store, checkpoint, and
//! go on until the input ends, the job is cancelled, or the server stops
//! (the job then resumes from its last checkpoint, here or on another
//! replica).
//!
//! Runs on a blocking thread: the reader and the files are plain I/O, and
//! the batcher and registry calls are awaited with the runtime's handle.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferroserve_core::{ErrorKind, InferError, InferRequest, Tensor};
use ferroserve_registry::{Job, JobCheckpointOutcome, JobProgress, JobState};
use tokio::runtime::Handle;

use super::context::JobContext;
use super::error::JobError;
use super::files::{Checkpoint, Report};
use super::lease::JobLease;
use super::output::ResultEncoder;
use super::spec::batch_spec;
use super::spec::BatchJobSpec;
use ferroserve_core::telemetry::JOB_ROWS;
use ferroserve_core::Cell;
use ferroserve_serving::{Call, Decoded, ServedVersion};
use ferroserve_tabular::{Excluded, RowEncoder, SampleReader};

/// Front end label of batch job rows in the request metrics.
const BATCH_PROTOCOL: &str = "batch";

/// How a run of a job ended.
#[derive(Debug, PartialEq)]
pub(crate) enum Ending {
    /// The job reached a final state, with an error message when it failed.
    Finished(JobState, Option<String>),
    /// The server is stopping; the job stays running and resumes later.
    Interrupted,
    /// Another runner holds the job now (why): this one stops without
    /// writing to it again.
    Lost(String),
}

/// Transient refusals (a full queue, a version being swapped) are retried
/// this many times, backing off up to a second between tries.
const RETRIES: u32 = 120;

/// Runs `job` from its last checkpoint, while `lease` holds it.
pub(crate) fn run_batch_job(
    ctx: &Arc<JobContext>,
    runtime: &Handle,
    job: &Job,
    lease: &JobLease,
) -> Result<Ending, JobError> {
    let spec = batch_spec(job)?;
    let files = ctx.files(&job.id);
    let input = runtime.block_on(files.local_input(spec.input_format))?;
    let name = spec.input_name();
    // Messages name the user's input, never the copy in the server's folder.
    let named = |text: String| text.replace(&input.display().to_string(), &name);
    let mut checkpoint = Checkpoint::from_json(&job.checkpoint)?;
    if checkpoint.is_appended() {
        runtime.block_on(files.adopt_appended(&mut checkpoint, spec.output_format))?;
    }
    let Some(served) = runtime.block_on(ctx.served(&job.model, job.version.as_deref()))? else {
        return Ok(Ending::Interrupted);
    };

    let mut rows_total = job.rows_total;
    if rows_total.is_none() {
        rows_total = count_rows(&input, spec.input_format);
    }
    let ModelInput {
        mut reader,
        picks,
        encoder,
    } = ModelInput::open(&input, &spec, &served).map_err(|e| match e {
        JobError::Invalid(message) => JobError::Invalid(named(message)),
        other => other,
    })?;
    let output_indexes = spec.output_indexes(served.signature())?;
    let names = output_indexes
        .iter()
        .map(|&i| served.signature().outputs[i].name.clone())
        .collect();
    let results = ResultEncoder::new(spec.output_format, names);

    let mut cells: Vec<Cell> = Vec::new();
    for _ in 0..checkpoint.rows_read {
        // Rows before the checkpoint were handled; bad ones were reported.
        if let Ok(false) = reader.next_row(&picks, &mut cells) {
            return Err(JobError::Internal(format!(
                "the input has fewer rows than the {} the job's checkpoint counts",
                checkpoint.rows_read
            )));
        }
    }

    let mut chunk = Chunk {
        output: String::new(),
        errors: String::new(),
        pending: Vec::new(),
        encoder,
        results,
        has_header: checkpoint.output_bytes > 0,
        rows_done: job.rows_done.max(0) as u64,
        rows_failed: job.rows_failed.max(0) as u64,
        first_bad: None,
    };
    let batch_rows = served.max_batch_rows().max(1);
    let batch = BatchTarget {
        ctx,
        version: job.version.as_deref(),
        output_indexes: &output_indexes,
    };
    let mut served = served;
    // The versions that scored the job's rows, in order of first use.
    let mut versions: Vec<String> = job
        .checkpoint
        .get("versions")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let (mut chunk_start_done, mut chunk_start_failed) = (chunk.rows_done, chunk.rows_failed);
    loop {
        let mut at_end = false;
        let mut last_error_at: Option<u64> = None;
        for _ in 0..spec.chunk_rows {
            let row = checkpoint.rows_read + 1;
            let read = reader.next_row(&picks, &mut cells);
            let at = || place(reader.as_ref(), &input);
            match read {
                Ok(false) => {
                    at_end = true;
                    break;
                }
                Ok(true) => match chunk.encoder.push(&cells, &at) {
                    Ok(()) => chunk.pending.push(row),
                    Err(e) => chunk.bad_row(row, &at(), &named(e.to_string())),
                },
                Err(e) => {
                    // A reader that fails twice without moving on is stuck.
                    let here = reader.progress();
                    if last_error_at == Some(here) {
                        return Err(JobError::Invalid(named(format!(
                            "cannot read the input: {e}"
                        ))));
                    }
                    chunk.bad_row(row, &at(), &named(e.to_string()));
                    last_error_at = Some(here);
                }
            }
            checkpoint.rows_read = row;
            if chunk.encoder.rows() >= batch_rows {
                served = runtime.block_on(chunk.run_pending(&batch, served))?;
            }
            if spec.fail_on_error && chunk.first_bad.is_some() {
                break;
            }
            // Stop at the next safe point: what was read is checkpointed.
            if ctx.is_stopping() || lease.lost().is_some() {
                break;
            }
        }
        served = runtime.block_on(chunk.run_pending(&batch, served))?;
        if lease.needs_renewal(ctx.owner().lease) {
            // A paused process must not write on a lease that may have
            // passed to another runner meanwhile.
            let _ = runtime.block_on(lease.renew(ctx.registry(), &job.id, ctx.owner()));
        }
        if let Some(why) = lease.lost() {
            return Ok(Ending::Lost(why));
        }
        // Stored before the checkpoint that counts them; a part past the
        // checkpoint is written again by whoever resumes.
        for (report, text) in [
            (Report::Output, std::mem::take(&mut chunk.output)),
            (Report::Errors, std::mem::take(&mut chunk.errors)),
        ] {
            if text.is_empty() {
                continue;
            }
            let (parts, bytes) = match report {
                Report::Output => (&mut checkpoint.output_parts, &mut checkpoint.output_bytes),
                Report::Errors => (&mut checkpoint.errors_parts, &mut checkpoint.errors_bytes),
            };
            *bytes += text.len() as u64;
            runtime.block_on(files.put_part(report, *parts, bytes::Bytes::from(text)))?;
            *parts += 1;
        }
        let before = (chunk_start_done, chunk_start_failed);
        let (done, failed) = chunk.finish();
        (chunk_start_done, chunk_start_failed) = (done, failed);
        count_rows_handled(&job.model, done - before.0, failed - before.1);
        if done > before.0 && !versions.iter().any(|v| v == served.version()) {
            versions.push(served.version().to_owned());
        }
        let mut saved = checkpoint.to_json();
        saved["versions"] = serde_json::json!(versions);
        let progress = JobProgress {
            rows_done: done as i64,
            rows_failed: failed as i64,
            rows_total,
            checkpoint: saved,
        };
        let saved_at = std::time::Instant::now();
        let outcome = match runtime.block_on(ctx.registry().checkpoint_job(
            &job.id,
            ctx.owner(),
            progress,
        )) {
            Ok(outcome) => outcome,
            Err(e @ ferroserve_registry::RegistryError::JobLeaseLost { .. }) => {
                lease.lose(e.to_string());
                return Ok(Ending::Lost(e.to_string()));
            }
            Err(e) => return Err(JobError::from(e)),
        };
        lease.renewed(saved_at);
        ctx.record_progress(&job.id, checkpoint.rows_read);
        if outcome == JobCheckpointOutcome::CancelRequested {
            return Ok(Ending::Finished(JobState::Cancelled, None));
        }
        if spec.fail_on_error {
            if let Some(first) = chunk.first_bad.take() {
                return Ok(Ending::Finished(JobState::Failed, Some(first)));
            }
        }
        if at_end {
            return Ok(Ending::Finished(JobState::Succeeded, None));
        }
        if ctx.is_stopping() {
            return Ok(Ending::Interrupted);
        }
    }
}

/// A job's input opened for a model: the reader, the columns holding the
/// model's features, and the encoder that turns them into its inputs.
pub(crate) struct ModelInput {
    pub(crate) reader: Box<dyn SampleReader>,
    /// Column indexes of the features, in feature order.
    pub(crate) picks: Vec<usize>,
    pub(crate) encoder: RowEncoder,
}

impl ModelInput {
    /// Opens `input` and matches its columns to the inputs of `served`
    /// (feature schema names, else every column but the excluded ones).
    /// Errors name the file "the input", never the server's folder.
    pub(crate) fn open(
        input: &Path,
        spec: &BatchJobSpec,
        served: &ServedVersion,
    ) -> Result<Self, JobError> {
        let invalid = |e: ferroserve_tabular::TabularError| {
            JobError::Invalid(
                e.to_string()
                    .replace(&input.display().to_string(), "the input"),
            )
        };
        let reader = ferroserve_tabular::open(input, spec.input_format).map_err(invalid)?;
        let excluded = Excluded {
            target: None,
            exclude: &spec.exclude,
        };
        let features =
            ferroserve_tabular::select("the input", reader.columns(), served.schema(), &excluded)
                .map_err(invalid)?;
        let picks = features.iter().map(|f| f.index).collect();
        let encoder = RowEncoder::new(served.signature(), features).map_err(invalid)?;
        Ok(ModelInput {
            reader,
            picks,
            encoder,
        })
    }
}

/// Where a batch goes and which of its outputs are kept.
struct BatchTarget<'a> {
    ctx: &'a JobContext,
    /// The version the job asked for; the serving one when `None`.
    version: Option<&'a str>,
    output_indexes: &'a [usize],
}

/// The work of one chunk not yet stored.
struct Chunk {
    /// Result lines.
    output: String,
    /// Bad-row lines.
    errors: String,
    /// Row numbers of the rows waiting in the encoder.
    pending: Vec<u64>,
    /// The model inputs of the pending rows.
    encoder: RowEncoder,
    /// Writes result lines.
    results: ResultEncoder,
    /// Whether the results file has its header.
    has_header: bool,
    rows_done: u64,
    rows_failed: u64,
    /// The first bad row of the job, which fails a job that stops on errors.
    first_bad: Option<String>,
}

impl Chunk {
    /// Reports row `row` as bad.
    fn bad_row(&mut self, row: u64, at: &str, error: &str) {
        let line = serde_json::json!({"row": row, "at": at, "error": error});
        self.errors.push_str(&line.to_string());
        self.errors.push('\n');
        self.rows_failed += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some(format!("row {row} ({at}): {error}"));
        }
    }

    /// Runs the pending rows, if any, as one batch and writes their
    /// results; when the model refuses the batch, its rows are reported
    /// bad. Returns the version that answered (a newer one after a swap).
    async fn run_pending(
        &mut self,
        target: &BatchTarget<'_>,
        served: Arc<ServedVersion>,
    ) -> Result<Arc<ServedVersion>, JobError> {
        if self.encoder.rows() == 0 {
            return Ok(served);
        }
        let tensors = self.encoder.take().map_err(invalid)?;
        let rows = std::mem::take(&mut self.pending);
        let (served, answer) = infer_with_retry(target, served, tensors).await?;
        let written = answer.map_err(JobError::from).and_then(|outputs| {
            let mut outputs: Vec<Option<Tensor>> = outputs.into_iter().map(Some).collect();
            let chosen = target
                .output_indexes
                .iter()
                .map(|&i| {
                    outputs.get_mut(i).and_then(Option::take).ok_or_else(|| {
                        JobError::Internal(format!("the model returned no output number {i}"))
                    })
                })
                .collect::<Result<Vec<Tensor>, JobError>>()?;
            let mut text = String::new();
            if !self.has_header {
                if let Some(header) = self.results.header(&chosen)? {
                    text.push_str(&header);
                }
            }
            self.results.encode(&chosen, &rows, &mut text)?;
            Ok(text)
        });
        match written {
            Ok(text) => {
                self.has_header = true;
                self.output.push_str(&text);
                self.rows_done += rows.len() as u64;
            }
            Err(error) => {
                let (first, last) = (rows[0], rows[rows.len() - 1]);
                let message =
                    format!("the model failed on the batch of rows {first} to {last}: {error}");
                for row in rows {
                    self.bad_row(row, "inference", &message);
                }
            }
        }
        Ok(served)
    }

    /// The job's row counts after this chunk; the chunk's text is cleared.
    fn finish(&mut self) -> (u64, u64) {
        self.output.clear();
        self.errors.clear();
        (self.rows_done, self.rows_failed)
    }
}

/// Runs `tensors` behind online traffic; a full queue or a version being
/// swapped out is retried with backoff, on the version serving by then.
/// The outer error stops the job; the inner one fails this batch only.
async fn infer_with_retry(
    target: &BatchTarget<'_>,
    mut served: Arc<ServedVersion>,
    tensors: Vec<Tensor>,
) -> Result<(Arc<ServedVersion>, Result<Vec<Tensor>, InferError>), JobError> {
    let mut pause = Duration::from_millis(10);
    let model = served.name().to_string();
    for _ in 0..RETRIES {
        let call = Call::rows(BATCH_PROTOCOL, &model, target.version.map(str::to_owned));
        let request = InferRequest {
            inputs: tensors.clone(),
            ..InferRequest::default()
        };
        let answer = target
            .ctx
            .pipeline()
            .infer(call, |_| Ok(Decoded::new(request, ())))
            .await;
        match answer {
            Err(e) if is_transient(e.kind) => {
                // Backing off after a refusal, then on the version serving by then.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                match target.ctx.served(&model, target.version).await? {
                    Some(now) => served = now,
                    None => return Err(JobError::Unavailable("the server is stopping".into())),
                }
            }
            Err(e) => return Ok((served, Err(e))),
            Ok(answer) => {
                let answered_by = answer.served().clone();
                return Ok((answered_by, Ok(answer.response.outputs)));
            }
        }
    }
    Err(JobError::Unavailable(format!(
        "model '{}' kept refusing the job's rows after {RETRIES} tries",
        served.name()
    )))
}

fn is_transient(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::QueueFull | ErrorKind::Unavailable | ErrorKind::Overloaded
    )
}

/// Counts the rows of one chunk in the job metrics.
fn count_rows_handled(model: &str, done: u64, failed: u64) {
    for (result, rows) in [("done", done), ("failed", failed)] {
        if rows > 0 {
            metrics::counter!(JOB_ROWS, "model" => model.to_owned(), "result" => result)
                .increment(rows);
        }
    }
}

/// Where the reader is, without the server's folder: `line N` or `row N`.
fn place(reader: &dyn SampleReader, input: &Path) -> String {
    let location = reader.location();
    let prefix = format!("{}, ", input.display());
    location
        .strip_prefix(&prefix)
        .map(str::to_owned)
        .unwrap_or(location)
}

/// Rows in the input, for progress; `None` when they cannot be counted.
/// Exact: from the file's metadata where it has a row count (Parquet),
/// else by reading every row (a bad row counts too).
fn count_rows(input: &Path, format: ferroserve_tabular::Format) -> Option<i64> {
    let mut reader = ferroserve_tabular::open(input, format).ok()?;
    if reader.progress_unit() == ferroserve_tabular::ProgressUnit::Rows {
        return i64::try_from(reader.progress_total()).ok();
    }
    let mut cells = Vec::new();
    let mut rows = 0i64;
    let mut last_error_at = None;
    loop {
        match reader.next_row(&[], &mut cells) {
            Ok(true) => rows += 1,
            Ok(false) => return Some(rows),
            // A bad row still counts; a stuck reader leaves the total unknown.
            Err(_) => {
                let here = reader.progress();
                if last_error_at == Some(here) {
                    return None;
                }
                last_error_at = Some(here);
                rows += 1;
            }
        }
    }
}

fn invalid(error: ferroserve_tabular::TabularError) -> JobError {
    JobError::Invalid(error.to_string())
}
