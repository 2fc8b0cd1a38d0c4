//! Accepts HTTP/2 (gRPC) connections under the server's connection limits,
//! like the HTTP listener: at most `max_connections` open at once, each
//! TLS handshake within the header read timeout with the certificate
//! current when the connection was accepted (offering ALPN `h2`), at most
//! `max_concurrent_streams` calls at once on one connection, header blocks
//! of at most `max_header_bytes`; on shutdown it stops accepting, sends
//! GOAWAY and lets open calls finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpConnectInfo;
use tower::ServiceExt;

use super::errors::size_limit_answer;
use super::GrpcOptions;
use crate::listener::{accept_connections, Stream};
use crate::state::HttpLimits;
use crate::tls::TlsSource;

/// The ALPN protocol of HTTP/2, which gRPC clients insist on over TLS.
const ALPN_H2: &[u8] = b"h2";

/// Serves `routes` on `listener` (over TLS when `tls` is given) until
/// `shutdown` resolves, then waits for the open connections' calls.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    routes: Routes,
    limits: &HttpLimits,
    options: &GrpcOptions,
    tls: Option<Arc<TlsSource>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http.timer(TokioTimer::new())
        .max_concurrent_streams(options.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(options.keepalive_interval))
        .keep_alive_timeout(options.keepalive_timeout);
    let local = listener.local_addr().ok();
    let acceptor = move || tls.as_ref().map(|tls| h2_acceptor(tls));
    let serve = move |stream: Stream, remote: SocketAddr, watcher: Watcher| {
        let peer = TcpConnectInfo {
            local_addr: local,
            remote_addr: Some(remote),
        };
        let service = TowerToHyperService::new(
            routes
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(peer.clone());
                    request
                })
                .map_response(size_limit_answer),
        );
        watcher.watch(http.serve_connection(TokioIo::new(stream), service))
    };
    accept_connections("gRPC", listener, limits, acceptor, shutdown, serve).await;
}

/// A TLS acceptor with `tls`'s current certificate that negotiates HTTP/2.
fn h2_acceptor(tls: &TlsSource) -> tokio_rustls::TlsAcceptor {
    let mut config = rustls::ServerConfig::clone(&tls.current());
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}
