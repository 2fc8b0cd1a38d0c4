//! Flags of `ferroserve batch`; the registry flags are those of
//! `ferroserve models` (`--url` runs the job on a server, else the data dir
//! is opened and the job runs in this process).

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use ferroserve_jobs::OutputFormat;
use ferroserve_tabular::Format;

use crate::models::RegistryArgs;

/// Flags of `ferroserve batch`.
#[derive(Debug, Args)]
#[command(mut_arg("actor", |a| a.help(
    "Who submits the job, as recorded with it [default: $USER, else \"cli\"]"
)))]
pub struct BatchArgs {
    /// Input file: CSV with a header line, JSON lines, or Parquet.
    pub input: Option<PathBuf>,
    /// Model to run.
    #[arg(long, required_unless_present = "resume")]
    pub model: Option<String>,
    /// Version to run [default: the serving one].
    #[arg(long = "model-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Where to write the results; bad rows go to OUTPUT.errors.jsonl.
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<PathBuf>,
    /// Format of the input [default: from the extension: .csv, .jsonl/.ndjson, .parquet/.pq].
    #[arg(long, value_parser = crate::profile::format_parser())]
    pub format: Option<Format>,
    /// Format of the results [default: from the output's extension, .jsonl/.ndjson, else csv].
    #[arg(long, value_parser = output_format_parser())]
    pub output_format: Option<OutputFormat>,
    /// Output to write, repeatable [default: every output of the model].
    #[arg(long = "output-name", value_name = "NAME")]
    pub outputs: Vec<String>,
    /// Input column that is not a feature (an id, the label), repeatable.
    #[arg(long, value_name = "COL")]
    pub exclude: Vec<String>,
    /// Rows read, run and checkpointed together [default: 10000].
    #[arg(long, value_name = "N")]
    pub chunk_rows: Option<usize>,
    /// Stop at the first bad row instead of reporting it and going on.
    #[arg(long)]
    pub fail_on_error: bool,
    /// Print the job id once the server accepted it and return, without waiting (needs --url: a job run in this process stops with it).
    #[arg(long)]
    pub detach: bool,
    /// Take up the job with this id again from its last checkpoint (one interrupted in this data dir, or on the server with --url) and write its results (to where the job was told, unless -o says otherwise).
    #[arg(long, value_name = "JOB_ID", conflicts_with_all = ["input", "model", "detach"])]
    pub resume: Option<String>,
    /// Do not show a progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Where the registry is (or the server, with --url) and who submits the job.
    #[command(flatten, next_help_heading = "Registry options")]
    pub registry: RegistryArgs,
}

/// `--output-format`: the result formats with their help.
fn output_format_parser() -> impl TypedValueParser<Value = OutputFormat> {
    PossibleValuesParser::new([
        PossibleValue::new("csv").help("A row column, then one column per output value"),
        PossibleValue::new("jsonl").help("One JSON object per row"),
    ])
    .try_map(|name| name.parse::<OutputFormat>().map_err(|e| e.to_string()))
}

impl BatchArgs {
    /// The flags of `batch --resume ID [-o OUTPUT]`.
    pub fn resuming(
        id: String,
        output: Option<PathBuf>,
        quiet: bool,
        registry: RegistryArgs,
    ) -> Self {
        BatchArgs {
            input: None,
            model: None,
            version: None,
            output,
            format: None,
            output_format: None,
            outputs: Vec::new(),
            exclude: Vec::new(),
            chunk_rows: None,
            fail_on_error: false,
            detach: false,
            resume: Some(id),
            quiet,
            registry,
        }
    }
}
