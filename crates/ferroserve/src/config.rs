//! The serve configuration: one typed struct, layered as built-in defaults <
//! TOML file < environment < flags (clap merges the last two).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use ferroserve_backend::EngineChoice;
use ferroserve_batcher::BatcherConfig;
use ferroserve_monitor::MonitorOptions;
use ferroserve_serving::cache::CacheConfig;
use ferroserve_serving::guard::idempotency::IdempotencyConfig;
use ferroserve_serving::guard::rate_limit::{Limit, RateLimitConfig};
use ferroserve_serving::redis_link::RedisSettings;
use serde::{Deserialize, Serialize};

use crate::cli::ServeArgs;
use crate::logging::LogFormat;

/// Everything `ferroserve serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on for HTTP.
    pub http: SocketAddr,
    /// Folder for ferroserve's own state (registry, artifacts).
    pub data_dir: PathBuf,
    /// Registry database URL (default: SQLite in the data dir).
    pub registry_url: Option<String>,
    /// Artifact store URL (default: `artifacts` in the data dir).
    pub artifact_store: Option<String>,
    /// How often the registry is polled for changes made elsewhere, in ms.
    pub registry_poll_ms: u64,
    /// Largest artifact accepted by the upload API, in bytes.
    pub max_artifact_bytes: usize,
    /// Largest batch job input accepted by `POST /api/v1/jobs`, in bytes.
    pub max_job_input_bytes: usize,
    /// Batch and asynchronous jobs run at once; the others wait their turn.
    pub max_running_jobs: usize,
    /// How long finished jobs and their results are kept, in hours.
    pub job_retention_hours: u64,
    /// Models served from single files: name → path.
    pub models: BTreeMap<String, PathBuf>,
    /// Triton-layout model repository.
    pub model_repository: Option<PathBuf>,
    /// Default engine.
    pub engine: EngineChoice,
    /// Explicit path of libonnxruntime.so.
    pub ort_library: Option<PathBuf>,
    /// Do not serve the bundled example when no model is given.
    pub no_example: bool,
    /// Intra-op threads per engine session.
    pub intra_op_threads: usize,
    /// Default batching knobs.
    pub batching: BatcherConfig,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Default request deadline in ms.
    pub request_timeout_ms: u64,
    /// Drain time at shutdown in seconds.
    pub drain_timeout_s: u64,
    /// HTTP threads (None: cores - 1).
    pub http_threads: Option<usize>,
    /// `auto` (text on a terminal, JSON otherwise), `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Redis URL of the shared result cache (secret: never logged in full).
    pub redis_url: Option<String>,
    /// Result cache settings (`[cache]`).
    pub cache: CacheSettings,
    /// Inference requests served at once (none: no limit).
    pub max_concurrent_requests: Option<usize>,
    /// Server-wide rate limits (`[rate_limit]`).
    pub rate_limit: RateLimitSettings,
    /// Idempotency keys (`[idempotency]`).
    pub idempotency: IdempotencySettings,
    /// Allow fault injection through the management API (tests, drills).
    pub enable_fault_injection: bool,
    /// Drift and quality monitoring (`[monitoring]`).
    pub monitoring: MonitoringSettings,
}

/// The `[monitoring]` section.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringSettings {
    /// Watch served versions at all.
    pub enabled: bool,
    /// Observations waiting for the monitor at most.
    pub queue_size: usize,
    /// How long a prediction waits for its feedback, in seconds.
    pub feedback_ttl_s: u64,
    /// Predictions kept for feedback at most.
    pub max_pending: usize,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        let defaults = MonitorOptions::default();
        MonitoringSettings {
            enabled: true,
            queue_size: defaults.queue_capacity,
            feedback_ttl_s: defaults.feedback_ttl.as_secs(),
            max_pending: defaults.max_pending,
        }
    }
}

impl MonitoringSettings {
    /// The monitor's options, or `None` when monitoring is off.
    pub fn options(&self) -> Option<MonitorOptions> {
        self.enabled.then(|| MonitorOptions {
            queue_capacity: self.queue_size,
            max_pending: self.max_pending,
            feedback_ttl: Duration::from_secs(self.feedback_ttl_s),
            ..MonitorOptions::default()
        })
    }
}

/// The `[rate_limit]` section: `per_client` (each client across all
/// models) and `per_model` (each model without its own), each
/// `{ requests_per_s = .., burst = .. }`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Each client across all models.
    pub per_client: Option<Limit>,
    /// Each model that sets no limit of its own.
    pub per_model: Option<Limit>,
}

/// The `[idempotency]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// Honour `Idempotency-Key` headers.
    pub enabled: bool,
    /// How long a key is remembered, in seconds.
    pub window_s: u64,
    /// Bytes of keys and kept answers held in process at most.
    pub max_bytes: u64,
    /// Use the request body `id` as the key when no header is sent.
    pub use_request_id: bool,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        let d = IdempotencyConfig::default();
        IdempotencySettings {
            enabled: true,
            window_s: d.window.as_secs(),
            max_bytes: d.max_bytes,
            use_request_id: false,
        }
    }
}

/// The `[cache]` section: result cache defaults. Models opt in or out in
/// their own serving config; `enabled` is the default for those that do not say.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Cache models that do not say (off by default: caching assumes a
    /// deterministic model, which the model owner should confirm).
    pub enabled: bool,
    /// Bytes of outputs held in process at most.
    pub max_bytes: u64,
    /// Entry lifetime in seconds for models that set none.
    pub ttl_s: u64,
    /// Skip Redis for models faster than a Redis round trip.
    pub cost_aware: bool,
    /// Longest wait for one Redis call, in ms.
    pub redis_timeout_ms: u64,
    /// Consecutive Redis failures that open the breaker.
    pub redis_breaker_failures: u32,
    /// Cool-down of the open breaker, in ms.
    pub redis_breaker_cooldown_ms: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        let d = CacheConfig::default();
        let r = RedisSettings::new("");
        CacheSettings {
            enabled: d.enabled_by_default,
            max_bytes: d.max_bytes,
            ttl_s: d.ttl.as_secs(),
            cost_aware: d.cost_aware,
            redis_timeout_ms: r.timeout.as_millis() as u64,
            redis_breaker_failures: r.failures_to_open,
            redis_breaker_cooldown_ms: r.cooldown.as_millis() as u64,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            registry_url: None,
            artifact_store: None,
            registry_poll_ms: 2000,
            max_artifact_bytes: 1024 * 1024 * 1024,
            max_job_input_bytes: 16 * 1024 * 1024 * 1024,
            max_running_jobs: 1,
            job_retention_hours: 168,
            models: BTreeMap::new(),
            model_repository: None,
            engine: EngineChoice::Auto,
            ort_library: None,
            no_example: false,
            intra_op_threads: 1,
            batching: BatcherConfig::default(),
            max_body_bytes: 64 * 1024 * 1024,
            request_timeout_ms: 30_000,
            drain_timeout_s: 30,
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
        }
    }
}

impl ServeConfig {
    /// Builds the configuration from defaults, the config file named by the
    /// flags (if any), and the flags and environment.
    pub fn load(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
        let mut config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => ServeConfig::default(),
        };
        config.apply(args)?;
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> anyhow::Result<ServeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        crate::config_file::parse(&text)
            .map_err(|message| anyhow::anyhow!("invalid config file {}: {message}", path.display()))
    }

    fn apply(&mut self, args: &ServeArgs) -> anyhow::Result<()> {
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = &args.$field { self.$field = v.clone(); })* };
        }
        set!(
            http,
            data_dir,
            registry_poll_ms,
            max_artifact_bytes,
            max_job_input_bytes,
            max_running_jobs,
            job_retention_hours,
            engine,
            intra_op_threads,
            max_body_bytes,
            request_timeout_ms,
            drain_timeout_s,
            log_format,
            log_level
        );
        if args.model_repository.is_some() {
            self.model_repository = args.model_repository.clone();
        }
        if args.registry_url.is_some() {
            self.registry_url = args.registry_url.clone();
        }
        if args.artifact_store.is_some() {
            self.artifact_store = args.artifact_store.clone();
        }
        if args.ort_library.is_some() {
            self.ort_library = args.ort_library.clone();
        }
        if args.http_threads.is_some() {
            self.http_threads = args.http_threads;
        }
        self.no_example |= args.no_example;
        self.enable_fault_injection |= args.enable_fault_injection;
        self.monitoring.enabled &= !args.disable_monitoring;
        if let Some(size) = args.monitor_queue_size {
            self.monitoring.queue_size = size;
        }
        if let Some(ttl) = args.feedback_ttl_s {
            self.monitoring.feedback_ttl_s = ttl;
        }
        if args.max_concurrent_requests.is_some() {
            self.max_concurrent_requests = args.max_concurrent_requests;
        }
        let flag_limit = |rate: f64, burst: Option<u32>| Limit {
            requests_per_s: rate,
            burst: burst.unwrap_or_else(|| rate.ceil().max(1.0) as u32),
        };
        if let Some(rate) = args.client_rate_limit {
            self.rate_limit.per_client = Some(flag_limit(rate, args.client_rate_burst));
        }
        if let Some(rate) = args.model_rate_limit {
            self.rate_limit.per_model = Some(flag_limit(rate, args.model_rate_burst));
        }
        if let Some(window) = args.idempotency_window_s {
            self.idempotency.window_s = window;
        }
        self.idempotency.use_request_id |= args.idempotency_request_id;
        if args.redis_url.is_some() {
            self.redis_url = args.redis_url.clone();
        }
        let c = &mut self.cache;
        c.enabled |= args.cache;
        macro_rules! set_cache {
            ($($flag:ident => $field:ident),*) => { $(if let Some(v) = args.$flag { c.$field = v; })* };
        }
        set_cache!(
            cache_max_bytes => max_bytes,
            cache_ttl_s => ttl_s,
            cache_cost_aware => cost_aware,
            redis_timeout_ms => redis_timeout_ms,
            redis_breaker_failures => redis_breaker_failures,
            redis_breaker_cooldown_ms => redis_breaker_cooldown_ms
        );
        let b = &mut self.batching;
        if let Some(v) = args.max_batch_size {
            b.max_batch_size = v;
        }
        if let Some(v) = args.max_queue_delay_us {
            b.max_queue_delay_us = v;
        }
        if let Some(v) = args.max_queue_size {
            b.max_queue_size = v;
        }
        if let Some(v) = args.instance_count {
            b.instance_count = v;
        }
        for pair in &args.models {
            let (name, path) = pair
                .split_once('=')
                .with_context(|| format!("--model expects NAME=PATH, got {pair:?}"))?;
            self.models
                .insert(name.trim().to_string(), PathBuf::from(path.trim()));
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.batching
            .validate()
            .context("invalid batching settings")?;
        if self.intra_op_threads == 0 {
            bail!("intra_op_threads must be at least 1");
        }
        if self.registry_poll_ms == 0 {
            bail!("registry_poll_ms must be at least 1");
        }
        if self.http_threads == Some(0) {
            bail!("http_threads must be at least 1");
        }
        if self.max_running_jobs == 0 {
            bail!("max_running_jobs must be at least 1");
        }
        if self.max_concurrent_requests == Some(0) {
            bail!("max_concurrent_requests must be at least 1");
        }
        if self.monitoring.queue_size == 0 || self.monitoring.feedback_ttl_s == 0 {
            bail!("monitoring.queue_size and monitoring.feedback_ttl_s must be at least 1");
        }
        for (what, limit) in [
            ("rate_limit.per_client", self.rate_limit.per_client),
            ("rate_limit.per_model", self.rate_limit.per_model),
        ] {
            if let Some(limit) = limit {
                limit
                    .validate(what)
                    .map_err(|e| anyhow::anyhow!(e.message))?;
            }
        }
        if self.idempotency.window_s == 0 || self.idempotency.max_bytes == 0 {
            bail!("idempotency: window_s and max_bytes must each be at least 1");
        }
        let c = &self.cache;
        if c.max_bytes == 0 || c.ttl_s == 0 || c.redis_timeout_ms == 0 {
            bail!("cache: max_bytes, ttl_s and redis_timeout_ms must each be at least 1");
        }
        Ok(())
    }

    /// Where the registry and its artifacts live.
    pub fn registry_settings(&self) -> crate::registry::RegistrySettings {
        crate::registry::RegistrySettings {
            data_dir: self.data_dir.clone(),
            registry_url: self.registry_url.clone(),
            artifact_store: self.artifact_store.clone(),
        }
    }

    /// Result cache settings for the serving layer.
    pub fn cache_config(&self) -> CacheConfig {
        let c = &self.cache;
        CacheConfig {
            enabled_by_default: c.enabled,
            max_bytes: c.max_bytes,
            ttl: Duration::from_secs(c.ttl_s),
            cost_aware: c.cost_aware,
        }
    }

    /// Server-wide rate limits for the serving layer.
    pub fn rate_limit_config(&self) -> RateLimitConfig {
        RateLimitConfig {
            per_client: self.rate_limit.per_client,
            per_model: self.rate_limit.per_model,
        }
    }

    /// Idempotency settings for the serving layer; `None` when disabled.
    pub fn idempotency_config(&self) -> Option<IdempotencyConfig> {
        let i = &self.idempotency;
        i.enabled.then(|| IdempotencyConfig {
            window: Duration::from_secs(i.window_s),
            max_bytes: i.max_bytes,
        })
    }

    /// How to reach the Redis shared by the cache, limits and idempotency
    /// keys; `None` when no URL is configured.
    pub fn redis_settings(&self) -> Option<RedisSettings> {
        let c = &self.cache;
        let timeout = Duration::from_millis(c.redis_timeout_ms);
        self.redis_url.as_ref().map(|url| RedisSettings {
            timeout,
            connect_timeout: timeout.max(Duration::from_millis(500)),
            failures_to_open: c.redis_breaker_failures,
            cooldown: Duration::from_millis(c.redis_breaker_cooldown_ms),
            ..RedisSettings::new(url.clone())
        })
    }

    /// Default deadline of a request.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Threads for the HTTP runtime: cores minus one engine thread by default.
    pub fn http_threads(&self) -> usize {
        self.http_threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ferroserve.toml");
        std::fs::write(
            &file,
            "http = \"0.0.0.0:9000\"\nrequest_timeout_ms = 5\n[batching]\nmax_batch_size = 8\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file),
            request_timeout_ms: Some(7),
            models: vec!["a=/x/a.onnx".into()],
            ..ServeArgs::default()
        };
        let config = ServeConfig::load(&args).expect("valid");
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.request_timeout_ms, 7);
        assert_eq!(config.batching.max_batch_size, 8);
        assert_eq!(
            config.batching.max_queue_size,
            BatcherConfig::default().max_queue_size
        );
        assert_eq!(config.models["a"], PathBuf::from("/x/a.onnx"));
    }

    #[test]
    fn bad_values_are_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "htp = \"x\"\n").expect("write");
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let err = format!("{:#}", ServeConfig::load(&args).unwrap_err());
        assert!(err.contains("unknown field `htp`"), "{err}");
        let args = ServeArgs {
            models: vec!["nopath".into()],
            ..ServeArgs::default()
        };
        let err = format!("{:#}", ServeConfig::load(&args).unwrap_err());
        assert!(err.contains("NAME=PATH"), "{err}");
    }
}
