//! Shared state of the HTTP server: the model manager, settings, the metrics
//! handle, the startup flag and, when the registry is enabled, the lifecycle
//! controller behind the management API.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use ferroserve_core::Role;
use ferroserve_jobs::JobService;
use ferroserve_serving::guard::idempotency::IdempotencyStore;
use ferroserve_serving::lifecycle::Controller;
use ferroserve_serving::rollout::Rollouts;
use ferroserve_serving::{ModelManager, Pipeline};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::Auth;
use crate::body::BodyBudget;

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
    /// Limits of connections and requests.
    pub limits: HttpLimits,
}

/// Limits of HTTP connections and requests, and who may call from a browser.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Time a client has to send a request's headers; a keep-alive
    /// connection idle that long is closed too.
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body (408 after).
    pub body_read_timeout: Duration,
    /// Connections open at once at most; more wait to be accepted.
    pub max_connections: usize,
    /// Headers a request may have at most.
    pub max_header_count: usize,
    /// Bytes a request's start line and headers may take at most.
    pub max_header_bytes: usize,
    /// Bytes of request bodies read into memory at once, server-wide.
    pub max_body_memory_bytes: usize,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_origins: Vec<HeaderValue>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_header_count: 100,
            max_header_bytes: 64 * 1024,
            max_body_memory_bytes: 1024 * 1024 * 1024,
            cors_origins: Vec::new(),
        }
    }
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
            limits: HttpLimits::default(),
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
    /// Rollouts of new versions; `None` without a registry.
    pub rollouts: Option<Arc<Rollouts>>,
    /// Idempotency keys; `None`: the header is ignored.
    pub idempotency: Option<Arc<IdempotencyStore>>,
    /// Batch and asynchronous inference jobs; `None` without a registry.
    pub jobs: Option<Arc<JobService>>,
    /// Who may call, and how they prove it.
    pub auth: Arc<Auth>,
    /// Memory for request bodies being read, server-wide.
    pub body_budget: BodyBudget,
    startup_done: AtomicBool,
}

impl AppState {
    /// New state serving through `pipeline`; startup is not complete until
    /// [`AppState::mark_started`]. Until [`AppState::with_auth`], callers
    /// are anonymous predictors and no credentials are accepted.
    pub fn new(pipeline: Arc<Pipeline>, config: ServerConfig, metrics: PrometheusHandle) -> Self {
        AppState {
            pipeline,
            body_budget: BodyBudget::new(config.limits.max_body_memory_bytes),
            config,
            metrics,
            controller: None,
            rollouts: None,
            idempotency: None,
            jobs: None,
            auth: Arc::new(Auth::new(Some(Role::Predictor))),
            startup_done: AtomicBool::new(false),
        }
    }

    /// Enables the management and repository APIs over `controller` (whose
    /// model manager the pipeline must serve from, see
    /// [`Pipeline::for_controller`]).
    pub fn with_controller(mut self, controller: Arc<Controller>) -> Self {
        self.rollouts = Some(Rollouts::new(controller.clone()));
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

    /// Authenticates callers with `auth`.
    pub fn with_auth(mut self, auth: Arc<Auth>) -> Self {
        self.auth = auth;
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
