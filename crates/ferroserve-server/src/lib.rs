//! Front ends of ferroserve: over HTTP, KServe v2 (JSON and binary
//! tensors) and v1 predict, the management API and model repository
//! extension, Kubernetes probes, Prometheus metrics; over gRPC, KServe v2
//! with the Triton extensions ([`grpc`]). Both share authentication with
//! roles, request ids and graceful shutdown. Handlers decode, call the
//! serving layer once, and encode.

pub mod auth;
pub mod body;
pub mod client;
pub mod cors;
mod drain;
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
mod mlflow;
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
mod ui;
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

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    // MLflow's clients read their own error format, and some calls check
    // for ENDPOINT_NOT_FOUND.
    if path.starts_with("/api/2.0/mlflow") {
        return mlflow::MlflowError::endpoint_not_found(path).into_response();
    }
    error::ApiError(InferError::not_found(format!("no route for {path}"))).into_response()
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

/// Like [`serve`], over TLS with `tls`'s current certificate when given;
/// closes the models once drained.
pub async fn serve_with_tls(
    listener: tokio::net::TcpListener,
    state: SharedState,
    tls: Option<std::sync::Arc<tls::TlsSource>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let manager = state.manager().clone();
    let result = serve_http_until_drained(listener, state, tls, shutdown).await;
    manager.close_all();
    result
}

/// Like [`serve_with_tls`], but leaves the models loaded: for a process
/// that serves other front ends (gRPC) too and closes the models once
/// every one of them has drained.
pub async fn serve_http_until_drained(
    listener: tokio::net::TcpListener,
    state: SharedState,
    tls: Option<std::sync::Arc<tls::TlsSource>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain = state.config.drain_timeout;
    let limits = state.config.limits.clone();
    tokio::spawn(telemetry::upkeep_task(state.metrics.clone()));
    let router = app(state);
    drain::serve_until_drained("HTTP", drain, shutdown, move |stop| async move {
        listener::serve_connections(listener, router, &limits, tls, stop).await;
    })
    .await
}
