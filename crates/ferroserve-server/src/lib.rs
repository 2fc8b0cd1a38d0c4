//! HTTP front end of ferroserve: KServe v2 (JSON and binary tensors) and v1
//! predict, the management API and model repository extension, Kubernetes
//! probes, Prometheus metrics, authentication with roles, request ids, and
//! graceful shutdown. Handlers
//! decode, call the serving layer once, and encode.

pub mod auth;
pub mod body;
pub mod client;
pub mod cors;
pub mod error;
pub mod error_body;
pub mod grpc;
pub mod health;
pub mod idempotency;
pub mod inference;
pub mod inference_headers;
pub mod kserve;
pub mod listener;
mod management;
pub mod request_guard;
pub mod request_id;
mod routes;

pub use routes::access_table;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod trace_context;
pub mod triton;
pub mod v1;

use axum::Router;
use ferroserve_core::InferError;
use ferroserve_serving::ModelSpec;

pub use state::{AppState, HttpLimits, ServerConfig, SharedState};

/// The whole HTTP API as a router, so tests can drive it without a socket.
/// Error answers are made JSON around the finished router, where they carry
/// every header the router adds (`Allow` on a 405). Outside it: the CORS
/// answers (when origins are configured), the checks against cross-site
/// requests, and the body read timeout.
pub fn app(state: SharedState) -> Router {
    let limits = state.config.limits.clone();
    let router = Router::new()
        .fallback_service(routes(state.clone()))
        .layer(axum::middleware::from_fn(error_body::json_errors))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_read_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            request_guard::guard,
        ));
    match cors::layer(&limits.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn routes(state: SharedState) -> Router {
    routes::router(&state)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(request_id::request_id_layer))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError(InferError::not_found(format!(
        "no route for {}",
        uri.path()
    )))
}

/// Loads `specs` in the background, marking startup complete when every one
/// has been tried; a model that fails is reported and the others still serve.
pub fn spawn_model_loading(
    state: SharedState,
    specs: Vec<ModelSpec>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        state.manager().load_all(specs).await;
        state.mark_started();
        tracing::info!(
            ready = state.manager().all_ready(),
            "initial model loading finished"
        );
    })
}

/// The router of the metrics address (`--metrics-http`): `GET /metrics`
/// and nothing else, without credentials, for a scraper on a network the
/// operator chose for it.
pub fn metrics_app(state: SharedState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(health::metrics))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(error_body::json_errors))
}

/// Serves [`metrics_app`] on `listener`, under the server's connection
/// limits, for as long as the runtime runs.
pub fn spawn_metrics_listener(
    listener: tokio::net::TcpListener,
    state: SharedState,
) -> tokio::task::JoinHandle<()> {
    let limits = state.config.limits.clone();
    tokio::spawn(async move {
        let router = metrics_app(state);
        listener::serve_connections(listener, router, &limits, None, std::future::pending()).await;
    })
}

/// Serves `state` over plain HTTP on `listener` until `shutdown`
/// resolves, then drains in-flight requests for at most the configured
/// drain time.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_tls(listener, state, None, shutdown).await
}

/// Like [`serve`], over TLS with `tls`'s current certificate when given.
pub async fn serve_with_tls(
    listener: tokio::net::TcpListener,
    state: SharedState,
    tls: Option<std::sync::Arc<tls::TlsSource>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = state.config.drain_timeout;
    let limits = state.config.limits.clone();
    let manager = state.manager().clone();
    tokio::spawn(telemetry::upkeep_task(state.metrics.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let router = app(state);
    let server = tokio::spawn(async move {
        listener::serve_connections(listener, router, &limits, tls, async move {
            shutdown.await;
            tracing::info!("shutdown requested; draining in-flight requests");
            let _ = stop_tx.send(true);
        })
        .await;
    });
    let mut stopped = stop_rx.clone();
    let result = tokio::select! {
        r = server => r.map_err(std::io::Error::other),
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(drain).await;
        } => {
            tracing::warn!(drain_secs = drain.as_secs_f64(), "drain time exceeded; closing remaining connections");
            Ok(())
        }
    };
    manager.close_all();
    result
}
