//! The gRPC front end: KServe v2 `inference.GRPCInferenceService` with the
//! Triton extensions `tritonclient.grpc` calls, `grpc.health.v1.Health` and
//! server reflection, onto the same pipeline, authentication, limits,
//! runtime and shutdown drain as the HTTP server.

pub mod access;
pub mod errors;
mod health;
mod idempotent;
mod infer;
mod infer_codec;
mod model_info;
mod models;
mod options;
pub mod proto;
mod reflection;
mod repository;
mod service;
mod stream;
mod transport;
mod triton_json;

use std::sync::Arc;

pub use health::HealthService;
pub use infer::PROTOCOL;
pub use options::{GrpcListen, GrpcOptions};
pub use service::InferenceService;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::pb::health_server::HealthServer;

use self::access::{Incoming, Method};
use self::proto::grpc_inference_service_server::GrpcInferenceServiceServer;
use crate::state::SharedState;
use crate::tls::TlsSource;

/// Every gRPC service of the server as one set of routes.
pub fn routes(state: SharedState, options: &GrpcOptions) -> Result<Routes, String> {
    let inference = GrpcInferenceServiceServer::new(InferenceService::new(
        state.clone(),
        options.stream_in_flight,
    ))
    .max_decoding_message_size(options.max_message_bytes)
    .max_encoding_message_size(usize::MAX);
    let mut routes = RoutesBuilder::default();
    routes.add_service(inference);
    routes.add_service(HealthServer::new(HealthService::new(state)));
    reflection::add_to(&mut routes).map_err(|e| format!("cannot build gRPC reflection: {e}"))?;
    Ok(routes.routes())
}

/// Serves gRPC for `state` on `listener` (over TLS when `tls` is given)
/// until `shutdown` resolves, then lets calls in flight finish for at most
/// the server's drain time. It leaves the models loaded: the caller
/// closes them once every front end has drained.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    options: GrpcOptions,
    tls: Option<Arc<TlsSource>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let routes = routes(state.clone(), &options).map_err(std::io::Error::other)?;
    let limits = state.config.limits.clone();
    let drain = state.config.drain_timeout;
    crate::drain::serve_until_drained("gRPC", drain, shutdown, move |stop| async move {
        transport::serve_connections(listener, routes, &limits, &options, tls, stop).await;
    })
    .await
}

/// The span a call runs in: parented on the caller's `traceparent` when
/// traces are on, and carrying its request id.
pub(crate) fn request_span(incoming: &Incoming, method: Method) -> tracing::Span {
    let span = crate::trace_context::request_span(
        &incoming.headers,
        format_args!("grpc {}", method.path()),
        PROTOCOL,
    );
    if let Some(id) = incoming
        .headers
        .get(crate::request_id::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
    {
        span.record("request_id", id);
    }
    span
}

/// Records on `span` how the call ended: `OK`, or the gRPC code of
/// `error` (a failure of the server also as the span's error status).
pub(crate) fn record_outcome(span: &tracing::Span, error: Option<&tonic::Status>) {
    let code = error.map_or(tonic::Code::Ok, tonic::Status::code);
    span.record("status", tracing::field::debug(code));
    if matches!(
        code,
        tonic::Code::Internal | tonic::Code::Unavailable | tonic::Code::Unknown
    ) {
        span.record("otel.status_code", "ERROR");
    }
}
