//! `ferroserve batch`: score a whole file with a model, either on a server
//! (`--url`: the file is uploaded as a job, followed, and its results
//! downloaded) or in this process over the data dir's registry, through
//! the same job runner, with a progress bar. An interrupted job is taken
//! up again with `--resume JOB_ID`, from its last checkpoint.

mod args;
mod interrupt;
mod local;
mod progress;
mod remote;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ferroserve_jobs::{BatchJobSpec, OutputFormat, DEFAULT_CHUNK_ROWS};
use ferroserve_tabular::Format;
use serde_json::Value;

pub use args::BatchArgs;
use interrupt::{Interrupt, EXIT_INTERRUPTED};
use progress::Followed;

/// A job to submit.
pub struct Submission {
    /// The input file.
    pub input: PathBuf,
    /// Model to run.
    pub model: String,
    /// Version to run; the serving one when `None`.
    pub version: Option<String>,
    /// The job's settings.
    pub spec: BatchJobSpec,
}

/// Where jobs run: a server, or this process.
pub trait JobRunner {
    /// Submits `job`; returns its id.
    fn submit(&self, job: &Submission) -> anyhow::Result<String>;
    /// Makes sure an interrupted job runs again (or is followed where it
    /// runs).
    fn resume(&self, id: &str) -> anyhow::Result<()>;
    /// The job as the API shows it.
    fn status(&self, id: &str) -> anyhow::Result<Value>;
    /// Writes the job's results to `out`.
    fn save_result(&self, id: &str, out: &Path) -> anyhow::Result<()>;
    /// Writes the job's bad-row report to `out`.
    fn save_errors(&self, id: &str, out: &Path) -> anyhow::Result<()>;
    /// After Ctrl-C: stops the job at a safe point when it runs here
    /// (leaving it resumable), and says what became of it.
    fn interrupted(&self, id: &str) -> String;
}

/// Runs `ferroserve batch`.
pub fn run(args: BatchArgs) -> anyhow::Result<()> {
    if args.detach && args.registry.url().is_none() {
        bail!(
            "--detach needs a server: pass --url URL (or set FERROSERVE_URL); without one the \
             job runs in this process and would stop with it"
        );
    }
    // Before anything runs, so that Ctrl-C never kills a job mid-chunk.
    let interrupt = Interrupt::watch();
    let runner: Box<dyn JobRunner> = match args.registry.url() {
        Some(url) => Box::new(remote::RemoteRunner::new(url)?),
        None => Box::new(local::LocalRunner::open(&args)?),
    };
    let place = match args.registry.url() {
        Some(url) => format!("on {url}"),
        None => "in this process".to_owned(),
    };
    let id = match &args.resume {
        Some(id) => {
            runner.resume(id)?;
            eprintln!("job {id}: resumed {place}");
            id.clone()
        }
        None => {
            let job = submission(&args)?;
            let id = runner.submit(&job)?;
            eprintln!(
                "job {id}: scoring {} with model {} {place}",
                job.input.display(),
                job.model
            );
            id
        }
    };
    if args.detach {
        println!("{id}");
        return Ok(());
    }
    let output = match &args.output {
        Some(output) => output.clone(),
        // A resumed job remembers where its results go.
        None => match runner.status(&id)?["spec"]["output_path"].as_str() {
            Some(path) => PathBuf::from(path),
            None => bail!("say where the results go with -o OUTPUT (or pass --detach with --url)"),
        },
    };
    let last = match progress::follow(runner.as_ref(), &id, args.quiet, &interrupt)? {
        Followed::Finished(last) => last,
        Followed::Interrupted => {
            eprintln!("\ninterrupted: {}", runner.interrupted(&id));
            std::process::exit(EXIT_INTERRUPTED);
        }
    };
    let count = |key: &str| last[key].as_i64().unwrap_or(0);
    let errors_path = errors_path(&output);
    if count("rows_failed") > 0 {
        runner.save_errors(&id, &errors_path)?;
    }
    match last["state"].as_str().unwrap_or("") {
        "succeeded" => {
            runner.save_result(&id, &output)?;
            eprintln!(
                "job {id}: {} rows scored into {}{}",
                count("rows_done"),
                output.display(),
                match count("rows_failed") {
                    0 => String::new(),
                    n => format!("; {n} bad rows reported in {}", errors_path.display()),
                }
            );
            Ok(())
        }
        "cancelled" => bail!("job {id} was cancelled"),
        state => bail!(
            "job {id} {state}: {}",
            last["error"].as_str().unwrap_or("no reason given")
        ),
    }
}

/// The flags that name the data dir, to repeat in a hint (none for the
/// default one).
fn data_dir_flags(args: &crate::models::RegistryArgs) -> String {
    let mut flags = String::new();
    if args.data_dir != Path::new("data") {
        flags.push_str(&format!(" --data-dir {}", args.data_dir.display()));
    }
    if let Some(url) = &args.registry_url {
        flags.push_str(&format!(" --registry-url {url}"));
    }
    flags
}

/// The job the flags describe.
fn submission(args: &BatchArgs) -> anyhow::Result<Submission> {
    let Some(input) = args.input.clone() else {
        bail!("name the input file (or pass --resume JOB_ID)");
    };
    let Some(model) = args.model.clone() else {
        bail!("name the model with --model");
    };
    if !input.is_file() {
        bail!("{} is not a file", input.display());
    }
    let input_format = match args.format {
        Some(format) => format,
        None => Format::from_path(&input)?,
    };
    let output_format = match (args.output_format, &args.output) {
        (Some(format), _) => format,
        (None, Some(output)) => output_format_of(output),
        (None, None) => OutputFormat::Csv,
    };
    let spec = BatchJobSpec {
        input_format,
        input_source: input.display().to_string(),
        output_path: args
            .output
            .as_ref()
            .and_then(|o| std::path::absolute(o).ok())
            .map(|o| o.display().to_string()),
        output_format,
        outputs: args.outputs.clone(),
        exclude: args.exclude.clone(),
        chunk_rows: args.chunk_rows.unwrap_or(DEFAULT_CHUNK_ROWS),
        fail_on_error: args.fail_on_error,
    };
    spec.validate()?;
    Ok(Submission {
        input,
        model,
        version: args.version.clone(),
        spec,
    })
}

/// JSON lines for `.jsonl` and `.ndjson` results, else CSV.
fn output_format_of(path: &Path) -> OutputFormat {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl" | "ndjson") => OutputFormat::Jsonl,
        _ => OutputFormat::Csv,
    }
}

/// Where the bad rows of a job writing `output` go.
fn errors_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".errors.jsonl");
    PathBuf::from(name)
}

/// Copies the file at `from` to `to`, naming both in errors.
fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_format_and_error_report_follow_the_output_name() {
        assert_eq!(
            output_format_of(Path::new("a/out.JSONL")),
            OutputFormat::Jsonl
        );
        assert_eq!(output_format_of(Path::new("out.csv")), OutputFormat::Csv);
        assert_eq!(output_format_of(Path::new("out")), OutputFormat::Csv);
        assert_eq!(
            errors_path(Path::new("x/out.csv")),
            PathBuf::from("x/out.csv.errors.jsonl")
        );
    }
}
