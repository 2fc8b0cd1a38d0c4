//! Shared state of the HTTP server: the model manager, settings, the metrics
//! handle, the startup flag and, when the registry is enabled, the lifecycle
//! controller behind the management API.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferroserve_jobs::JobService;
use ferroserve_serving::guard::idempotency::IdempotencyStore;
use ferroserve_serving::lifecycle::Controller;
use ferroserve_serving::{ModelManager, Pipeline};
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
            max_job_input_bytes: 1024 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            idempotency_request_id: false,
        }
    }
}

/// State shared by every handler.
pub struct AppState {
    /// The request pipeline: served models, protections, cache, monitor.
    pub pipeline: Arc<Pipeline>,
    /// Settings.
    pub config: ServerConfig,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Registry-driven lifecycle; `None` when the registry is not enabled,
    /// and the management and repository APIs answer 503.
    pub controller: Option<Arc<Controller>>,
    /// Idempotency keys; `None`: the header is ignored.
    pub idempotency: Option<Arc<IdempotencyStore>>,
    /// Batch and asynchronous inference jobs; `None` without a registry.
    pub jobs: Option<Arc<JobService>>,
    startup_done: AtomicBool,
}

impl AppState {
    /// New state serving through `pipeline`; startup is not complete until
    /// [`AppState::mark_started`].
    pub fn new(pipeline: Arc<Pipeline>, config: ServerConfig, metrics: PrometheusHandle) -> Self {
        AppState {
            pipeline,
            config,
            metrics,
            controller: None,
            idempotency: None,
            jobs: None,
            startup_done: AtomicBool::new(false),
        }
    }

    /// Enables the management and repository APIs over `controller` (whose
    /// model manager the pipeline must serve from, see
    /// [`Pipeline::for_controller`]).
    pub fn with_controller(mut self, controller: Arc<Controller>) -> Self {
        self.controller = Some(controller);
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

    /// The served models.
    pub fn manager(&self) -> &Arc<ModelManager> {
        self.pipeline.manager()
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
