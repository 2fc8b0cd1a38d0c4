//! Flags of `ferroserve profile`; the registry flags are those of
//! `ferroserve models`.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use ferroserve_backend::EngineChoice;
use ferroserve_tabular::Format;

use crate::models::RegistryArgs;

/// Flags of `ferroserve profile`.
#[derive(Debug, Args)]
// The registry flags are those of `ferroserve models`; two of them get
// help that says what they do here.
#[command(
    mut_arg("ort_library", |a| a.help("Path of libonnxruntime.so, for --engine onnxruntime or auto")),
    mut_arg("actor", |a| a.help(
        "Who stores the profile, as recorded in the audit log [default: $USER, else \"cli\"]"
    )),
)]
pub struct ProfileArgs {
    /// Sample file: CSV with a header line, JSON lines, or Parquet.
    pub data: PathBuf,
    /// Model version the profile belongs to: NAME or NAME/VERSION [default version: the newest in Production, else the newest].
    #[arg(long, value_name = "NAME[/VERSION]")]
    pub model: String,
    /// Format of the sample [default: from the extension: .csv, .jsonl/.ndjson, .parquet/.pq].
    #[arg(long, value_parser = format_parser())]
    pub format: Option<Format>,
    /// Feature schema (JSON, like examples/iris/features.json) naming the feature columns [default: the version's registered schema].
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Label column, not a feature (only used without a feature schema).
    #[arg(long, value_name = "COL")]
    pub target: Option<String>,
    /// Column that is not a feature, repeatable (only used without a feature schema).
    #[arg(long, value_name = "COL")]
    pub exclude: Vec<String>,
    /// Histogram bins per numeric feature [default: 10].
    #[arg(long, value_name = "N")]
    pub bins: Option<usize>,
    /// Categories kept per categorical feature before the rest are folded into `__other__` [default: 100].
    #[arg(long, value_name = "N")]
    pub max_categories: Option<usize>,
    /// Do not run the model over the sample (no prediction distribution).
    #[arg(long)]
    pub no_predictions: bool,
    /// Model output profiled as the prediction [default: the first with one value per row].
    #[arg(long, value_name = "NAME", conflicts_with = "no_predictions")]
    pub prediction_output: Option<String>,
    /// Engine that runs the model for the predictions: auto, onnxruntime or tract [default: the version's engine hint, else auto: ONNX Runtime when present, else tract, as serve].
    #[arg(long)]
    pub engine: Option<EngineChoice>,
    /// Also write the profile JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Where the registry is and who stores the profile.
    #[command(flatten, next_help_heading = "Registry options")]
    pub registry: RegistryArgs,
}

/// `--format`: the sample formats with their help (the library's
/// [`Format`] knows nothing of clap).
pub fn format_parser() -> impl TypedValueParser<Value = Format> {
    let value = |format: Format| {
        let help = match format {
            Format::Csv => "Comma-separated values with a header line",
            Format::Jsonl => "One JSON object per line (JSON lines, NDJSON)",
            Format::Parquet => "Apache Parquet",
        };
        PossibleValue::new(format.name()).help(help)
    };
    PossibleValuesParser::new(Format::ALL.map(value)).try_map(|name| name.parse::<Format>())
}
