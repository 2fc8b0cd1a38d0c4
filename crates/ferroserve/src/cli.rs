//! Command-line flags. Every serve flag also reads a `FERROSERVE_*`
//! environment variable and can be set in the TOML config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ferroserve_backend::EngineChoice;

/// Model serving and model lifecycle in one binary.
#[derive(Debug, Parser)]
#[command(name = "ferroserve", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the inference server (registers and serves the bundled iris example on first start).
    Serve(Box<ServeArgs>),
    /// Send one inference request to a running server and print the answer.
    Predict(PredictArgs),
    /// Register, list, show, promote, alias, roll back and configure models.
    Models(crate::models::ModelsArgs),
    /// Build a model version's reference data profile from a training sample (CSV, JSON lines, Parquet) and store it for drift monitoring.
    Profile(crate::profile::ProfileArgs),
    /// Print a served model's drift per feature, data contract violations, online quality and alert rules.
    Drift(DriftArgs),
    /// Load-test a server's KServe v2 infer endpoint (closed or open loop) and report latency percentiles; `bench compare` tests two saved runs against each other.
    Bench(crate::bench::BenchArgs),
    /// Score a whole file (CSV, JSON lines, Parquet) with a model, on a server (--url) or in this process, with a progress bar; interrupted jobs resume from their last checkpoint.
    Batch(crate::batch::BatchArgs),
    /// List, show, cancel and resume batch and async inference jobs, on a server (--url) or a data dir.
    Jobs(crate::jobs::JobsArgs),
}

/// Flags of `ferroserve serve`; unset flags fall back to the environment,
/// then the config file, then built-in defaults.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, env = "FERROSERVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on for HTTP [default: 127.0.0.1:8080].
    #[arg(long, env = "FERROSERVE_HTTP")]
    pub http: Option<SocketAddr>,
    /// Folder for ferroserve's own state (created if missing) [default: data].
    #[arg(long, env = "FERROSERVE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Model registry database: postgres://USER@HOST/DB [default: sqlite in the data dir].
    #[arg(long, env = "FERROSERVE_REGISTRY_URL")]
    pub registry_url: Option<String>,
    /// Artifact store: s3://BUCKET/PREFIX (AWS_* variables), file:///DIR or a path [default: DATA_DIR/artifacts].
    #[arg(long, env = "FERROSERVE_ARTIFACT_STORE")]
    pub artifact_store: Option<String>,
    /// How often to poll the registry for changes made elsewhere, in ms [default: 2000].
    #[arg(long, env = "FERROSERVE_REGISTRY_POLL_MS")]
    pub registry_poll_ms: Option<u64>,
    /// Largest artifact accepted by the upload API, in bytes [default: 1073741824].
    #[arg(long, env = "FERROSERVE_MAX_ARTIFACT_BYTES")]
    pub max_artifact_bytes: Option<usize>,
    /// Largest batch job input accepted by POST /api/v1/jobs, in bytes [default: 17179869184].
    #[arg(long, env = "FERROSERVE_MAX_JOB_INPUT_BYTES")]
    pub max_job_input_bytes: Option<usize>,
    /// Batch and asynchronous inference jobs run at once; the others wait [default: 1].
    #[arg(long, env = "FERROSERVE_MAX_RUNNING_JOBS")]
    pub max_running_jobs: Option<usize>,
    /// How long finished jobs and their results are kept, in hours [default: 168].
    #[arg(long, env = "FERROSERVE_JOB_RETENTION_HOURS")]
    pub job_retention_hours: Option<u64>,
    /// Serve an ONNX file under a name, as NAME=PATH (repeatable).
    #[arg(long = "model", env = "FERROSERVE_MODEL", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Serve every model of a Triton-layout repository (DIR/<name>/<version>/model.onnx).
    #[arg(long, env = "FERROSERVE_MODEL_REPOSITORY")]
    pub model_repository: Option<PathBuf>,
    /// Engine for models that do not choose one [default: auto].
    #[arg(long, env = "FERROSERVE_ENGINE")]
    pub engine: Option<EngineChoice>,
    /// Path of libonnxruntime.so (else ORT_DYLIB_PATH, the project's .venv, python3's onnxruntime, system folders).
    #[arg(long, env = "FERROSERVE_ORT_LIBRARY")]
    pub ort_library: Option<PathBuf>,
    /// Do not register the bundled iris example in an empty registry when no model file is given.
    #[arg(long, env = "FERROSERVE_NO_EXAMPLE")]
    pub no_example: bool,
    /// Threads per engine session for one operator [default: 1].
    #[arg(long, env = "FERROSERVE_INTRA_OP_THREADS")]
    pub intra_op_threads: Option<usize>,
    /// Rows per batch at most [default: 32].
    #[arg(long, env = "FERROSERVE_MAX_BATCH_SIZE")]
    pub max_batch_size: Option<usize>,
    /// How long a request may wait for others to join its batch, in µs [default: 0].
    #[arg(long, env = "FERROSERVE_MAX_QUEUE_DELAY_US")]
    pub max_queue_delay_us: Option<u64>,
    /// Rows allowed to wait per model version before answering 429 [default: 1024].
    #[arg(long, env = "FERROSERVE_MAX_QUEUE_SIZE")]
    pub max_queue_size: Option<usize>,
    /// Batch worker threads per model version [default: 1].
    #[arg(long, env = "FERROSERVE_INSTANCE_COUNT")]
    pub instance_count: Option<usize>,
    /// Largest request body in bytes [default: 67108864].
    #[arg(long, env = "FERROSERVE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Deadline for requests that set none, in ms [default: 30000].
    #[arg(long, env = "FERROSERVE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// How long shutdown waits for in-flight requests, in seconds [default: 30].
    #[arg(long, env = "FERROSERVE_DRAIN_TIMEOUT_S")]
    pub drain_timeout_s: Option<u64>,
    /// Threads handling HTTP [default: cores - 1, at least 1].
    #[arg(long, env = "FERROSERVE_HTTP_THREADS")]
    pub http_threads: Option<usize>,
    /// Cache the answers of every model whose serving config does not say otherwise [default: off].
    #[arg(long, env = "FERROSERVE_CACHE")]
    pub cache: bool,
    /// Bytes of cached outputs held in process at most [default: 268435456].
    #[arg(long, env = "FERROSERVE_CACHE_MAX_BYTES")]
    pub cache_max_bytes: Option<u64>,
    /// Lifetime of a cached answer for models that set none, in seconds [default: 300].
    #[arg(long, env = "FERROSERVE_CACHE_TTL_S")]
    pub cache_ttl_s: Option<u64>,
    /// Skip Redis for models that compute faster than a Redis round trip [default: true].
    #[arg(long, env = "FERROSERVE_CACHE_COST_AWARE")]
    pub cache_cost_aware: Option<bool>,
    /// Redis shared by replicas for cached answers, e.g. redis://127.0.0.1:6379 [default: none, in-process only].
    #[arg(long, env = "FERROSERVE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Longest wait for one Redis call before it counts as failed, in ms [default: 5].
    #[arg(long, env = "FERROSERVE_REDIS_TIMEOUT_MS")]
    pub redis_timeout_ms: Option<u64>,
    /// Consecutive Redis failures after which Redis is left alone for a cool-down [default: 5].
    #[arg(long, env = "FERROSERVE_REDIS_BREAKER_FAILURES")]
    pub redis_breaker_failures: Option<u32>,
    /// How long Redis is left alone after the breaker opens, in ms [default: 2000].
    #[arg(long, env = "FERROSERVE_REDIS_BREAKER_COOLDOWN_MS")]
    pub redis_breaker_cooldown_ms: Option<u64>,
    /// Inference requests served at once; more are refused with 429 [default: no limit].
    #[arg(long, env = "FERROSERVE_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Requests per second each client (API key, else IP address) may send across all models [default: no limit].
    #[arg(long, env = "FERROSERVE_CLIENT_RATE_LIMIT")]
    pub client_rate_limit: Option<f64>,
    /// Burst of the per-client rate limit [default: the rate, at least 1].
    #[arg(
        long,
        env = "FERROSERVE_CLIENT_RATE_BURST",
        requires = "client_rate_limit"
    )]
    pub client_rate_burst: Option<u32>,
    /// Requests per second each model takes from all clients together, unless its serving config sets its own [default: no limit].
    #[arg(long, env = "FERROSERVE_MODEL_RATE_LIMIT")]
    pub model_rate_limit: Option<f64>,
    /// Burst of the per-model rate limit [default: the rate, at least 1].
    #[arg(
        long,
        env = "FERROSERVE_MODEL_RATE_BURST",
        requires = "model_rate_limit"
    )]
    pub model_rate_burst: Option<u32>,
    /// How long an Idempotency-Key is remembered, in seconds [default: 600].
    #[arg(long, env = "FERROSERVE_IDEMPOTENCY_WINDOW_S")]
    pub idempotency_window_s: Option<u64>,
    /// Treat the request body `id` as the idempotency key when no Idempotency-Key header is sent [default: off].
    #[arg(long, env = "FERROSERVE_IDEMPOTENCY_REQUEST_ID")]
    pub idempotency_request_id: bool,
    /// Allow faults (latency, errors) to be injected into served versions through the management API; for tests and drills, never production [default: off].
    #[arg(long, env = "FERROSERVE_ENABLE_FAULT_INJECTION")]
    pub enable_fault_injection: bool,
    /// Do not watch served versions for drift, data contract breaches and online quality [default: watched].
    #[arg(long, env = "FERROSERVE_DISABLE_MONITORING")]
    pub disable_monitoring: bool,
    /// Observations waiting for the monitor at most; more are dropped and counted, never slowing requests [default: 65536].
    #[arg(long, env = "FERROSERVE_MONITOR_QUEUE_SIZE")]
    pub monitor_queue_size: Option<usize>,
    /// How long a prediction waits for its feedback (ground truth), in seconds [default: 86400].
    #[arg(long, env = "FERROSERVE_FEEDBACK_TTL_S")]
    pub feedback_ttl_s: Option<u64>,
    /// Log format: auto (text when standard error is a terminal, JSON otherwise), text or json [default: auto].
    #[arg(long, env = "FERROSERVE_LOG_FORMAT")]
    pub log_format: Option<crate::logging::LogFormat>,
    /// Log filter, e.g. info or ferroserve=debug [default: info; RUST_LOG also works].
    #[arg(long, env = "FERROSERVE_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// Flags of `ferroserve drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Model name.
    pub model: String,
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "FERROSERVE_URL")]
    pub url: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `ferroserve predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "FERROSERVE_URL")]
    pub url: String,
    /// Model name.
    #[arg(long)]
    pub model: String,
    /// Model version (default: the one the server picks).
    #[arg(long)]
    pub version: Option<String>,
    /// Request as JSON, or @FILE: a KServe v2 request ({"inputs": ...}), a v1
    /// request ({"instances": ...}), or a bare list of rows for the model's first input.
    #[arg(long)]
    pub data: String,
}
