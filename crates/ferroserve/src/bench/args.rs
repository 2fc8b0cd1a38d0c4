//! Flags of `ferroserve bench` and `ferroserve bench compare`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

/// Flags of `ferroserve bench`: a load run, or `compare` of two saved runs.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    /// Compare two saved runs instead of sending load.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Load run settings.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Subcommands of `ferroserve bench`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Compare two `--output` files: differences with a Welch t-test and a 95 % confidence interval per metric.
    Compare(CompareArgs),
}

/// Wire format of the inference requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// KServe v2 JSON over HTTP.
    HttpJson,
    /// KServe v2 binary tensor extension over HTTP (JSON header + raw little-endian bytes; outputs asked in binary too).
    HttpBinary,
    /// KServe v2 gRPC `ModelInfer` calls with raw input contents (to --grpc-url).
    Grpc,
    /// KServe v2 gRPC requests over long-lived `ModelStreamInfer` streams, one request in flight per stream (to --grpc-url).
    GrpcStream,
}

impl Protocol {
    /// The flag value naming this protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpJson => "http-json",
            Protocol::HttpBinary => "http-binary",
            Protocol::Grpc => "grpc",
            Protocol::GrpcStream => "grpc-stream",
        }
    }

    /// Whether requests go over gRPC.
    pub fn is_grpc(self) -> bool {
        matches!(self, Protocol::Grpc | Protocol::GrpcStream)
    }
}

/// How repeated inputs are picked among the `--keys` distinct bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDist {
    /// Every body equally likely.
    Uniform,
    /// Body k (1-based) with probability proportional to 1/k^s (hot keys).
    Zipf,
}

/// Flags of a load run.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Server base URL (HTTP: model metadata and metrics come from here with every protocol).
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "FERROSERVE_URL")]
    pub url: String,
    /// The server's gRPC address, for --protocol grpc and grpc-stream.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8081",
        env = "FERROSERVE_GRPC_URL"
    )]
    pub grpc_url: String,
    /// HTTP/2 connections the gRPC requests share, in turn (grpc and grpc-stream).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub grpc_connections: usize,
    /// Model to load, as NAME or NAME=WEIGHT; repeat for a weighted mix of models (e.g. --model a=3 --model b=1).
    #[arg(long = "model", value_name = "NAME[=WEIGHT]", required = true)]
    pub models: Vec<String>,
    /// Wire format: http-json, http-binary, grpc or grpc-stream.
    #[arg(long, value_enum, default_value = "http-json")]
    pub protocol: Protocol,
    /// Closed loop: clients each sending their next request as soon as the last is answered [default: 1 unless --rate].
    #[arg(long, short = 'c', value_name = "N", conflicts_with = "rate")]
    pub concurrency: Option<usize>,
    /// Open loop: requests per second sent at fixed intended times; latency counts from the intended time.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Open loop: requests in flight at most; a request due while the cap is reached waits and is counted late.
    #[arg(long, value_name = "N", default_value_t = 1024, requires = "rate")]
    pub max_in_flight: usize,
    /// Length of each measured run, e.g. 10s, 500ms, 2m [default: 10s unless --requests].
    #[arg(long, value_name = "TIME", conflicts_with = "requests")]
    pub duration: Option<String>,
    /// Requests per measured run instead of a duration.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Load sent before the first run, not recorded.
    #[arg(long, value_name = "TIME", default_value = "2s")]
    pub warmup: String,
    /// Measured runs, each recorded separately (compare needs at least 2 per side for its tests).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub runs: usize,
    /// Client-side limit on each exchange (sending the request and reading the whole answer); one over it counts as the error "timeout".
    #[arg(long, value_name = "TIME", default_value = "30s")]
    pub timeout: String,
    /// Rows per request: the size given to each input's dynamic first (batch) dimension.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch_rows: usize,
    /// Full shape of an input, as NAME=D1,D2,... (repeatable); needed for dynamic dimensions other than the first.
    #[arg(long = "shape", value_name = "NAME=DIMS")]
    pub shapes: Vec<String>,
    /// Rows from a file instead of random tensors: CSV with a header line, JSON lines (arrays of features in order, or objects keyed by column name) or Parquet.
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Format of --input-file [default: from its extension: .csv, .jsonl/.ndjson/.json, .parquet/.pq].
    #[arg(long, requires = "input_file", value_parser = crate::profile::format_parser())]
    pub format: Option<ferroserve_tabular::Format>,
    /// Column of --input-file that is not a model input, e.g. the label (repeatable).
    #[arg(
        long,
        value_name = "COL",
        requires = "input_file",
        conflicts_with = "schema"
    )]
    pub exclude: Vec<String>,
    /// Feature schema (JSON, like examples/iris/features.json): the columns of --input-file that are features, in the model's order.
    #[arg(long, value_name = "FILE", requires = "input_file")]
    pub schema: Option<PathBuf>,
    /// Distinct request bodies built per model (random inputs), or at most this many from --input-file [default: 1000].
    #[arg(long, value_name = "K")]
    pub keys: Option<usize>,
    /// How requests pick among the distinct bodies: uniform or zipf.
    #[arg(long, value_enum, default_value = "uniform")]
    pub key_dist: KeyDist,
    /// Exponent s of the Zipf key distribution (larger: fewer, hotter keys).
    #[arg(long, value_name = "S", default_value_t = 1.1)]
    pub zipf_s: f64,
    /// Client-side tail latency: with probability P hold a request MS milliseconds before sending it (counted in its latency), as P:MS.
    #[arg(long, value_name = "P:MS")]
    pub inject_delay: Option<String>,
    /// Extra HTTP header (gRPC metadata) on every request, as "NAME: VALUE" (repeatable), e.g. an Authorization header.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Send no API key (by default the CLI's key goes on every request: FERROSERVE_API_KEY, else the data dir's admin.key, if any).
    #[arg(long)]
    pub anonymous: bool,
    /// Client worker threads [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seed of the random inputs, key picks and injected delays.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the run (settings, per-run summaries and histograms, server figures) as JSON to this file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Flags of `ferroserve bench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline run (an `--output` file of `ferroserve bench`).
    pub a: PathBuf,
    /// Candidate run compared with the baseline; differences are B − A.
    pub b: PathBuf,
    /// Significance level of the verdicts.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
