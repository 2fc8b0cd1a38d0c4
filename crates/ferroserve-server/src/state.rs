//! Shared state of the HTTP server: the model manager, settings, the metrics
//! handle, the startup flag and, when the registry is enabled, the lifecycle
//! controller behind the management API.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferroserve_serving::cache::ResultCache;
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
    /// Deadline applied to a request that brings none of its own.
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024 * 1024,
            max_artifact_bytes: 1024 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
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
    startup_done: AtomicBool,
}

impl AppState {
    /// New state; startup is not complete until [`AppState::mark_started`].
    pub fn new(
        manager: Arc<ModelManager>,
        config: ServerConfig,
        metrics: PrometheusHandle,
    ) -> Self {
        AppState {
            manager,
            config,
            metrics,
            controller: None,
            cache: None,
            startup_done: AtomicBool::new(false),
        }
    }

    /// Enables the management and repository APIs over `controller`. The
    /// server then serves from the controller's model manager, so that what
    /// the controller swaps in is what requests reach.
    pub fn with_controller(mut self, controller: Arc<Controller>) -> Self {
        self.manager = controller.manager().clone();
        self.controller = Some(controller);
        self
    }

    /// Caches answers of the models whose cache policy allows it.
    pub fn with_cache(mut self, cache: Arc<ResultCache>) -> Self {
        self.cache = Some(cache);
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
