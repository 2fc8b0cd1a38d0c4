//! The serve configuration: one typed struct that is both the flags of
//! `ferroserve serve` and its TOML config file, layered as built-in
//! defaults < file < environment (`FERROSERVE_*`) < flags.
//!
//! clap reads the flags and the environment (a flag beats its variable);
//! only the settings given there are laid over the file, so the file keeps
//! everything else.

mod derived;
mod file;
mod sections;
mod traces;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{value_parser, Arg, ArgMatches, Args, Command, FromArgMatches};
use ferroserve_backend::EngineChoice;
use ferroserve_server::grpc::GrpcListen;
use serde::{Deserialize, Serialize};

pub use sections::{
    AuthSettings, BatchingSettings, CacheSettings, IdempotencySettings, ModelFiles,
    MonitoringSettings, RateLimitSettings,
};

pub use traces::{OtlpExport, TracesSettings};

use crate::logging::LogFormat;

/// Everything `ferroserve serve` needs: each field is a flag, a
/// `FERROSERVE_*` variable and a key of the config file (sections are
/// tables, their flags listed with them).
/// Its `Debug` hides the passwords of the registry and Redis URLs.
#[derive(Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on for HTTP [default: 127.0.0.1:8080].
    #[arg(long, env = "FERROSERVE_HTTP")]
    pub http: SocketAddr,
    /// Also serve GET /metrics, without credentials, on this address (e.g. 0.0.0.0:9090 for a scraper); on the main address /metrics needs a reader key [default: none].
    #[arg(long, env = "FERROSERVE_METRICS_HTTP")]
    pub metrics_http: Option<SocketAddr>,
    /// Address to listen on for gRPC (KServe v2 with Triton's extensions), or off [default: 127.0.0.1:8081].
    #[arg(long, env = "FERROSERVE_GRPC")]
    pub grpc: GrpcListen,
    /// Largest gRPC message accepted, in bytes; larger ones are refused with RESOURCE_EXHAUSTED [default: max_body_bytes].
    #[arg(long, env = "FERROSERVE_GRPC_MAX_MESSAGE_BYTES")]
    pub grpc_max_message_bytes: Option<usize>,
    /// Folder for ferroserve's own state (created if missing) [default: data].
    #[arg(long, env = "FERROSERVE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Model registry database: postgres://USER@HOST/DB [default: sqlite in the data dir].
    #[arg(long, env = "FERROSERVE_REGISTRY_URL")]
    pub registry_url: Option<String>,
    /// Artifact store: s3://BUCKET/PREFIX (AWS_* variables), file:///DIR or a path [default: DATA_DIR/artifacts].
    #[arg(long, env = "FERROSERVE_ARTIFACT_STORE")]
    pub artifact_store: Option<String>,
    /// How often to poll the registry for changes made elsewhere, in ms [default: 2000].
    #[arg(long, env = "FERROSERVE_REGISTRY_POLL_MS")]
    pub registry_poll_ms: u64,
    /// Largest artifact accepted by the upload API, in bytes [default: 1073741824].
    #[arg(long, env = "FERROSERVE_MAX_ARTIFACT_BYTES")]
    pub max_artifact_bytes: usize,
    /// Largest batch job input accepted by POST /api/v1/jobs, in bytes [default: 1073741824].
    #[arg(long, env = "FERROSERVE_MAX_JOB_INPUT_BYTES")]
    pub max_job_input_bytes: usize,
    /// Batch jobs run at once, and apart from them asynchronous inference requests; the others wait [default: 1].
    #[arg(long, env = "FERROSERVE_MAX_RUNNING_JOBS")]
    pub max_running_jobs: usize,
    /// Unfinished jobs the server keeps at most; more are refused with 429 [default: 1000].
    #[arg(long, env = "FERROSERVE_MAX_QUEUED_JOBS")]
    pub max_queued_jobs: usize,
    /// Unfinished jobs one client may have at most; more are refused with 429 [default: 100].
    #[arg(long, env = "FERROSERVE_MAX_QUEUED_JOBS_PER_CLIENT")]
    pub max_queued_jobs_per_client: usize,
    /// Free bytes the data dir's disk keeps; below it new jobs are refused with 507 [default: 1073741824].
    #[arg(long, env = "FERROSERVE_MIN_FREE_DISK_BYTES")]
    pub min_free_disk_bytes: u64,
    /// How long finished jobs and their results are kept, in hours [default: 168].
    #[arg(long, env = "FERROSERVE_JOB_RETENTION_HOURS")]
    pub job_retention_hours: u64,
    /// How long a running job stays with its runner without a heartbeat before another replica takes it over, in ms; renewed every third of it [default: 30000].
    #[arg(long, env = "FERROSERVE_JOB_LEASE_MS")]
    pub job_lease_ms: u64,
    /// Models served from single files (`[models]`: name = path).
    #[command(flatten)]
    pub models: ModelFiles,
    /// Serve every model of a Triton-layout repository (DIR/<name>/<version>/model.onnx).
    #[arg(long, env = "FERROSERVE_MODEL_REPOSITORY")]
    pub model_repository: Option<PathBuf>,
    /// Engine for models that do not choose one: auto, onnxruntime or tract [default: auto].
    #[arg(long, env = "FERROSERVE_ENGINE")]
    pub engine: EngineChoice,
    /// Path of libonnxruntime.so (else ORT_DYLIB_PATH, the project's .venv, python3's onnxruntime, system folders).
    #[arg(long, env = "FERROSERVE_ORT_LIBRARY")]
    pub ort_library: Option<PathBuf>,
    /// Do not register the bundled iris example in an empty registry when no model file is given.
    #[arg(long, env = "FERROSERVE_NO_EXAMPLE")]
    pub no_example: bool,
    /// Threads per engine session for one operator [default: 1].
    #[arg(long, env = "FERROSERVE_INTRA_OP_THREADS")]
    pub intra_op_threads: usize,
    /// Default batching knobs (`[batching]`).
    #[command(flatten)]
    pub batching: BatchingSettings,
    /// Largest request body in bytes [default: 67108864].
    #[arg(long, env = "FERROSERVE_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
    /// Deadline for requests that set none, in ms [default: 30000].
    #[arg(long, env = "FERROSERVE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests, in seconds [default: 30].
    #[arg(long, env = "FERROSERVE_DRAIN_TIMEOUT_S")]
    pub drain_timeout_s: u64,
    /// Time a client has to send a request's headers (and an idle keep-alive connection stays open), in ms [default: 10000].
    #[arg(long, env = "FERROSERVE_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: u64,
    /// Longest wait for the next piece of a request body, in ms; a body that stalls longer is answered 408 [default: 30000].
    #[arg(long, env = "FERROSERVE_BODY_READ_TIMEOUT_MS")]
    pub body_read_timeout_ms: u64,
    /// Open HTTP connections at most; more wait to be accepted [default: 4096].
    #[arg(long, env = "FERROSERVE_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Headers a request may have at most [default: 100].
    #[arg(long, env = "FERROSERVE_MAX_HEADER_COUNT")]
    pub max_header_count: usize,
    /// Bytes a request's headers may take at most [default: 65536].
    #[arg(long, env = "FERROSERVE_MAX_HEADER_BYTES")]
    pub max_header_bytes: usize,
    /// Bytes of request bodies being read into memory at once, server-wide; a body beyond is refused with 429 [default: 1073741824].
    #[arg(long, env = "FERROSERVE_MAX_BODY_MEMORY_BYTES")]
    pub max_body_memory_bytes: usize,
    /// Origin allowed to call the API from a browser (CORS), e.g. https://app.example.com; repeat for more [default: none].
    #[arg(
        long = "cors-origin",
        env = "FERROSERVE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Internal host name, IP address or CIDR network that model webhooks may reach (by default only public addresses); repeat for more [default: none].
    #[arg(
        long = "webhook-allow",
        env = "FERROSERVE_WEBHOOK_ALLOW",
        value_delimiter = ','
    )]
    pub webhook_allow: Vec<String>,
    /// PEM certificate chain to serve HTTPS with (needs --tls-key); re-read on SIGHUP and when the file changes [default: none, plain HTTP].
    #[arg(long, env = "FERROSERVE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "FERROSERVE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of CAs: clients must present a certificate signed by one of them (needs --tls-cert) [default: none, no client certificates].
    #[arg(long, env = "FERROSERVE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Threads handling HTTP [default: cores - 1, at least 2].
    #[arg(long, env = "FERROSERVE_HTTP_THREADS")]
    pub http_threads: Option<usize>,
    /// Log format: auto (text when standard error is a terminal, JSON otherwise), text or json [default: auto].
    #[arg(long, env = "FERROSERVE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter, e.g. info or ferroserve=debug [default: info; RUST_LOG also works].
    #[arg(long, env = "FERROSERVE_LOG_LEVEL")]
    pub log_level: String,
    /// Redis shared by replicas for cached answers, rate limits and idempotency keys, e.g. redis://127.0.0.1:6379 [default: none, in-process only]. A secret: never logged in full.
    #[arg(long, env = "FERROSERVE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Result cache settings (`[cache]`).
    #[command(flatten)]
    pub cache: CacheSettings,
    /// Inference requests served at once; more are refused with 429 [default: no limit].
    #[arg(long, env = "FERROSERVE_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Server-wide rate limits (`[rate_limit]`).
    #[command(flatten)]
    pub rate_limit: RateLimitSettings,
    /// Idempotency keys (`[idempotency]`).
    #[command(flatten)]
    pub idempotency: IdempotencySettings,
    /// Allow faults (latency, errors) to be injected into served versions through the management API; for tests and drills, never production [default: off].
    #[arg(long, env = "FERROSERVE_ENABLE_FAULT_INJECTION")]
    pub enable_fault_injection: bool,
    /// Drift and quality monitoring (`[monitoring]`).
    #[command(flatten)]
    pub monitoring: MonitoringSettings,
    /// Who may call without credentials, and JWTs (`[auth]`).
    #[command(flatten)]
    pub auth: AuthSettings,
    /// OpenTelemetry traces (`[traces]`).
    #[command(flatten)]
    pub traces: TracesSettings,
}

/// The command line of `ferroserve serve`: `--config` and the settings
/// given as flags or variables, kept as clap matched them so that only
/// those given are laid over the file.
#[derive(Debug, Clone)]
pub struct ServeFlags {
    matches: ArgMatches,
}

impl Args for ServeFlags {
    fn augment_args(cmd: Command) -> Command {
        let config = Arg::new("config")
            .long("config")
            .env("FERROSERVE_CONFIG")
            .value_name("FILE")
            .value_parser(value_parser!(PathBuf))
            .help("TOML config file (see examples/ferroserve.toml)");
        // Every setting is optional here: what is not given comes from the
        // file or the defaults.
        ServeConfig::augment_args_for_update(cmd.arg(config))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ServeFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ServeFlags {
            matches: matches.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.matches = matches.clone();
        Ok(())
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_http: None,
            grpc: GrpcListen::default(),
            grpc_max_message_bytes: None,
            data_dir: PathBuf::from("data"),
            registry_url: None,
            artifact_store: None,
            registry_poll_ms: 2000,
            max_artifact_bytes: 1024 * 1024 * 1024,
            max_job_input_bytes: 1024 * 1024 * 1024,
            max_running_jobs: 1,
            max_queued_jobs: ferroserve_jobs::DEFAULT_MAX_QUEUED_JOBS,
            max_queued_jobs_per_client: ferroserve_jobs::DEFAULT_MAX_QUEUED_JOBS_PER_CLIENT,
            min_free_disk_bytes: ferroserve_jobs::DEFAULT_MIN_FREE_DISK_BYTES,
            job_retention_hours: 168,
            job_lease_ms: ferroserve_registry::DEFAULT_JOB_LEASE.as_millis() as u64,
            models: ModelFiles::default(),
            model_repository: None,
            engine: EngineChoice::Auto,
            ort_library: None,
            no_example: false,
            intra_op_threads: 1,
            batching: BatchingSettings::default(),
            max_body_bytes: 64 * 1024 * 1024,
            request_timeout_ms: 30_000,
            drain_timeout_s: 30,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_connections: 4096,
            max_header_count: 100,
            max_header_bytes: 64 * 1024,
            max_body_memory_bytes: 1024 * 1024 * 1024,
            cors_origins: Vec::new(),
            webhook_allow: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            http_threads: None,
            log_format: LogFormat::Auto,
            log_level: "info".to_string(),
            redis_url: None,
            cache: CacheSettings::default(),
            max_concurrent_requests: None,
            rate_limit: RateLimitSettings::default(),
            idempotency: IdempotencySettings::default(),
            enable_fault_injection: false,
            monitoring: MonitoringSettings::default(),
            auth: AuthSettings::default(),
            traces: TracesSettings::default(),
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        for secret in ["registry_url", "redis_url"] {
            if let Some(url) = shown[secret].as_str() {
                shown[secret] = ferroserve_core::secrets::redacted_credentials(url).into();
            }
        }
        write!(f, "ServeConfig {shown}")
    }
}

impl ServeConfig {
    /// Builds the configuration from the defaults, the config file named
    /// by `--config` (if any), and the settings given as flags or variables.
    pub fn load(flags: &ServeFlags) -> anyhow::Result<ServeConfig> {
        let mut config = match flags.matches.get_one::<PathBuf>("config") {
            Some(path) => Self::from_file(path)?,
            None => ServeConfig::default(),
        };
        config
            .update_from_arg_matches(&given(&flags.matches))
            .context("invalid flags")?;
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        file::parse(&text)
            .map_err(|message| anyhow::anyhow!("invalid config file {}: {message}", path.display()))
    }
}

/// The settings given as flags or variables: `matches` less the values
/// clap filled in itself (an absent switch reads `false`), which must not
/// hide the file's.
fn given(matches: &ArgMatches) -> ArgMatches {
    let mut given = matches.clone();
    let defaulted: Vec<String> = matches
        .ids()
        .map(|id| id.as_str().to_owned())
        .filter(|id| matches.value_source(id) == Some(ValueSource::DefaultValue))
        .collect();
    for id in defaulted {
        // The id comes from these matches, so it is known to them.
        let _ = given.try_clear_id(&id);
    }
    given
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ferroserve_batcher::BatcherConfig;

    use super::*;

    /// `serve`'s command line parsed from `argv`.
    pub(super) fn parse(argv: &[&str]) -> Result<ServeFlags, clap::Error> {
        let matches = ServeFlags::augment_args(Command::new("serve"))
            .try_get_matches_from(std::iter::once("serve").chain(argv.iter().copied()))?;
        ServeFlags::from_arg_matches(&matches)
    }

    pub(super) fn load(argv: &[&str]) -> anyhow::Result<ServeConfig> {
        ServeConfig::load(&parse(argv)?)
    }

    pub(super) fn config_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ferroserve.toml");
        std::fs::write(&file, text).expect("write");
        let path = file.to_str().expect("utf-8").to_owned();
        (dir, path)
    }

    #[test]
    fn debug_text_hides_connection_passwords() {
        let config = ServeConfig {
            registry_url: Some("postgres://u:pw1@db/x".into()),
            redis_url: Some("redis://:pw2@cache:6379".into()),
            ..ServeConfig::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("pw1") && !text.contains("pw2"), "{text}");
        assert!(text.contains("postgres://u:***@db/x"), "{text}");
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let (_dir, file) = config_file(
            "http = \"0.0.0.0:9000\"\nrequest_timeout_ms = 5\n\
             [batching]\nmax_batch_size = 8\n[models]\nb = \"/x/b.onnx\"\n",
        );
        let config = load(&[
            "--config",
            &file,
            "--request-timeout-ms",
            "7",
            "--model",
            "a=/x/a.onnx",
            "--max-queue-size",
            "9",
        ])
        .expect("valid");
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.request_timeout_ms, 7);
        assert_eq!(config.batching.0.max_batch_size, 8);
        assert_eq!(config.batching.0.max_queue_size, 9);
        assert_eq!(
            config.batching.0.instance_count,
            BatcherConfig::default().instance_count
        );
        // `--model` adds to the file's models.
        assert_eq!(config.models.0["a"], PathBuf::from("/x/a.onnx"));
        assert_eq!(config.models.0["b"], PathBuf::from("/x/b.onnx"));
        assert_eq!(config.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn switches_left_out_keep_the_files_choice() {
        let (_dir, file) = config_file(
            "no_example = true\n[cache]\nenabled = true\n[monitoring]\nenabled = false\n\
             [idempotency]\nuse_request_id = true\n",
        );
        let config = load(&["--config", &file]).expect("valid");
        assert!(config.no_example && config.cache.enabled);
        assert!(!config.monitoring.enabled && config.idempotency.use_request_id);

        let config = load(&[
            "--cache",
            "--disable-monitoring",
            "--cache-cost-aware",
            "false",
        ])
        .expect("valid");
        assert!(config.cache.enabled && !config.cache.cost_aware);
        assert!(!config.monitoring.enabled);
        let config = load(&[]).expect("defaults");
        assert!(!config.cache.enabled && config.cache.cost_aware);
        assert!(config.monitoring.enabled && !config.no_example);
    }

    #[test]
    fn a_rate_flag_sets_the_whole_limit() {
        let (_dir, file) =
            config_file("[rate_limit]\nper_client = { requests_per_s = 50, burst = 100 }\n");
        let config = load(&["--config", &file, "--client-rate-limit", "2.5"]).expect("valid");
        let limit = config.rate_limit.per_client.expect("set");
        assert_eq!((limit.requests_per_s, limit.burst), (2.5, 3));
        assert!(config.rate_limit.per_model.is_none());
        let config = load(&["--model-rate-limit", "10", "--model-rate-burst", "4"]).expect("valid");
        let limit = config.rate_limit.per_model.expect("set");
        assert_eq!((limit.requests_per_s, limit.burst), (10.0, 4));
        let err = parse(&["--client-rate-burst", "4"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--client-rate-limit"), "{err}");
    }

    #[test]
    fn edge_limits_and_allow_lists_are_read_and_checked() {
        let config = load(&[
            "--webhook-allow",
            "127.0.0.1",
            "--webhook-allow",
            "10.0.0.0/8",
            "--cors-origin",
            "https://app.example.com/",
            "--header-read-timeout-ms",
            "500",
            "--max-connections",
            "7",
        ])
        .expect("valid");
        assert_eq!(config.webhook_allow, ["127.0.0.1", "10.0.0.0/8"]);
        config.webhook_allow_list().expect("allow list");
        let limits = config.http_limits().expect("limits");
        assert_eq!(limits.max_connections, 7);
        assert_eq!(limits.header_read_timeout, Duration::from_millis(500));
        assert_eq!(limits.body_read_timeout, Duration::from_secs(30));
        assert_eq!(limits.cors_origins, ["https://app.example.com"]);

        let (_dir, file) = config_file(
            "webhook_allow = [\"hooks.internal\"]\ncors_origins = [\"http://localhost:3000\"]\n",
        );
        let config = load(&["--config", &file]).expect("valid");
        assert_eq!(config.webhook_allow, ["hooks.internal"]);
        assert_eq!(config.cors_origins, ["http://localhost:3000"]);
        let defaults = load(&[]).expect("defaults");
        assert!(defaults.webhook_allow.is_empty() && defaults.cors_origins.is_empty());

        for (argv, words) in [
            (["--webhook-allow", "http://x/"], "webhook_allow"),
            (["--cors-origin", "app.example.com"], "cors_origins"),
            (
                ["--max-connections", "0"],
                "max_connections must be at least 1",
            ),
            (
                ["--body-read-timeout-ms", "0"],
                "body_read_timeout_ms must be at least 1",
            ),
        ] {
            let err = format!("{:#}", load(&argv).unwrap_err());
            assert!(err.contains(words), "{argv:?}: {err}");
        }
    }

    #[test]
    fn tls_files_come_in_pairs_and_a_client_ca_needs_them() {
        assert!(load(&[])
            .expect("defaults")
            .tls_files()
            .expect("plain")
            .is_none());
        let config = load(&[
            "--tls-cert",
            "/x/cert.pem",
            "--tls-key",
            "/x/key.pem",
            "--tls-client-ca",
            "/x/ca.pem",
        ])
        .expect("valid");
        let files = config.tls_files().expect("valid").expect("TLS");
        assert_eq!(files.cert, PathBuf::from("/x/cert.pem"));
        assert_eq!(files.client_ca, Some(PathBuf::from("/x/ca.pem")));
        let (_dir, file) = config_file("tls_cert = \"/x/c.pem\"\ntls_key = \"/x/k.pem\"\n");
        let config = load(&["--config", &file]).expect("valid");
        assert_eq!(config.tls_key, Some(PathBuf::from("/x/k.pem")));
        for (argv, words) in [
            (&["--tls-cert", "/x/c.pem"][..], "needs tls_key"),
            (&["--tls-key", "/x/k.pem"][..], "needs tls_cert"),
            (
                &["--tls-client-ca", "/x/ca.pem"][..],
                "needs tls_cert and tls_key",
            ),
        ] {
            let err = format!("{:#}", load(argv).unwrap_err());
            assert!(err.contains(words), "{argv:?}: {err}");
        }
    }

    #[test]
    fn bad_values_are_explained() {
        let (_dir, file) = config_file("htp = \"x\"\n");
        let err = format!("{:#}", load(&["--config", &file]).unwrap_err());
        assert!(err.contains("unknown field `htp`"), "{err}");
        let err = format!("{:#}", load(&["--model", "nopath"]).unwrap_err());
        assert!(err.contains("NAME=PATH"), "{err}");
        let err = format!("{:#}", load(&["--intra-op-threads", "0"]).unwrap_err());
        assert!(err.contains("intra_op_threads must be at least 1"), "{err}");
    }
}
