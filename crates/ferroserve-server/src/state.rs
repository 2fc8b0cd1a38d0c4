//! Shared state of the HTTP server: the model manager, settings, the metrics
//! handle, the startup flag and, when the registry is enabled, the lifecycle
//! controller behind the management API.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferroserve_monitor::Monitor;
use ferroserve_serving::cache::ResultCache;
use ferroserve_serving::guard::concurrency::{ConcurrencyLimit, ConcurrencyScope};
use ferroserve_serving::guard::idempotency::IdempotencyStore;
use ferroserve_serving::guard::rate_limit::RateLimiter;
use ferroserve_serving::jobs::JobService;
use ferroserve_serving::lifecycle::Controller;
use ferroserve_serving::ModelManager;
use metrics_exporter_prometheus::PrometheusHandle;

/// HTTP server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub http: SocketAddr,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Largest model artifact accepted by `POST /api/v1/artifacts`, in bytes.
    pub max_artifact_bytes: usize,
    /// Largest batch job input accepted by `POST /api/v1/jobs`, in bytes.
    pub max_job_input_bytes: usize,
    /// Deadline applied to a request that brings none of its own.
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Inference requests served at once; more are refused (429).
    pub max_concurrent_requests: Option<usize>,
    /// Use the request body `id` as the idempotency key when no
    /// Idempotency-Key header is sent.
    pub idempotency_request_id: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024 * 1024,
            max_artifact_bytes: 1024 * 1024 * 1024,
            max_job_input_bytes: 16 * 1024 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            max_concurrent_requests: None,
            idempotency_request_id: false,
        }
    }
}

/// State shared by every handler.
pub struct AppState {
    /// Loaded models.
    pub manager: Arc<ModelManager>,
    /// Settings.
    pub config: ServerConfig,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Registry-driven lifecycle; `None` when the registry is not enabled,
    /// and the management and repository APIs answer 503.
    pub controller: Option<Arc<Controller>>,
    /// Result cache; `None`: no answer is ever cached.
    pub cache: Option<Arc<ResultCache>>,
    /// Rate limits; `None`: none are enforced.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// The server-wide concurrency limit, if configured.
    pub concurrency: Option<ConcurrencyLimit>,
    /// Idempotency keys; `None`: the header is ignored.
    pub idempotency: Option<Arc<IdempotencyStore>>,
    /// Drift, data contract and online quality of served versions; `None`:
    /// nothing is observed.
    pub monitor: Option<Arc<Monitor>>,
    /// Batch and asynchronous inference jobs; `None` without a registry.
    pub jobs: Option<Arc<JobService>>,
    startup_done: AtomicBool,
}

impl AppState {
    /// New state; startup is not complete until [`AppState::mark_started`].
    pub fn new(
        manager: Arc<ModelManager>,
        config: ServerConfig,
        metrics: PrometheusHandle,
    ) -> Self {
        let concurrency = config
            .max_concurrent_requests
            .map(|n| ConcurrencyLimit::new(n, ConcurrencyScope::Server));
        AppState {
            manager,
            config,
            metrics,
            controller: None,
            cache: None,
            rate_limiter: None,
            concurrency,
            idempotency: None,
            monitor: None,
            jobs: None,
            startup_done: AtomicBool::new(false),
        }
    }

    /// Enables the management and repository APIs over `controller`. The
    /// server then serves from the controller's model manager, so that what
    /// the controller swaps in is what requests reach.
    pub fn with_controller(mut self, controller: Arc<Controller>) -> Self {
        self.manager = controller.manager().clone();
        self.monitor = controller.monitor().cloned();
        self.controller = Some(controller);
        self
    }

    /// Enforces the rate limits of `limiter`.
    pub fn with_rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Caches answers of the models whose cache policy allows it.
    pub fn with_cache(mut self, cache: Arc<ResultCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Honours idempotency keys with `store`.
    pub fn with_idempotency(mut self, store: Arc<IdempotencyStore>) -> Self {
        self.idempotency = Some(store);
        self
    }

    /// Runs batch and asynchronous inference jobs with `jobs`.
    pub fn with_jobs(mut self, jobs: Arc<JobService>) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Records that every configured model has been tried once.
    pub fn mark_started(&self) {
        self.startup_done.store(true, Ordering::Release);
    }

    /// Whether startup loading has finished.
    pub fn started(&self) -> bool {
        self.startup_done.load(Ordering::Acquire)
    }
}

/// Handler state type.
pub type SharedState = Arc<AppState>;
