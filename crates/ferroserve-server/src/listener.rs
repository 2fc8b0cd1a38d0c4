//! Accepts HTTP/1 connections under the server's connection limits: at most
//! `max_connections` open at once (more wait to be accepted), headers read
//! within `header_read_timeout` (which also closes a keep-alive connection
//! left idle that long), at most `max_header_count` headers of at most
//! `max_header_bytes`; then stops accepting on shutdown and lets open
//! connections finish. With TLS, each connection's handshake must finish
//! within `header_read_timeout` too, and uses the certificate current when
//! it was accepted. The gRPC front end shares the accept loop
//! ([`accept_connections`]) with its own HTTP/2 connections.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::either::Either;
use tower::ServiceExt;

use crate::state::HttpLimits;
use crate::tls::TlsSource;

/// Serves `router` on `listener` (over TLS when `tls` is given) until
/// `shutdown` resolves, then waits for the open connections to finish
/// their requests.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    tls: Option<Arc<TlsSource>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_header_count)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_BYTES));
    let acceptor = move || {
        tls.as_ref()
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.current()))
    };
    let serve = move |stream: Stream, remote: SocketAddr, watcher: Watcher| {
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(remote));
                    request
                });
        watcher
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)))
    };
    accept_connections("HTTP", listener, limits, acceptor, shutdown, serve).await;
}

/// An accepted connection: plain TCP, or TLS over TCP.
pub(crate) type Stream = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

/// The accept loop of every front end: takes connections from `listener`
/// while fewer than `max_connections` are open, finishes each one's TLS
/// handshake (with the acceptor `acceptor` gives for it, if any) within
/// the header read timeout, and hands it to `serve` on a task of its own
/// with a watcher of the graceful shutdown; once `shutdown` resolves it
/// stops accepting and waits for the open connections.
pub(crate) async fn accept_connections<A, S, C>(
    front_end: &'static str,
    listener: TcpListener,
    limits: &HttpLimits,
    acceptor: A,
    shutdown: impl Future<Output = ()>,
    serve: S,
) where
    A: Fn() -> Option<tokio_rustls::TlsAcceptor>,
    S: Fn(Stream, SocketAddr, Watcher) -> C + Clone + Send + 'static,
    C: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let handshake_timeout = limits.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener, &connections) => accepted,
        };
        let Some((stream, remote, permit)) = accepted else {
            continue;
        };
        let acceptor = acceptor();
        let watcher = graceful.watcher();
        let serve = serve.clone();
        tokio::spawn(async move {
            let stream = match acceptor {
                None => Either::Left(stream),
                Some(acceptor) => {
                    match tls_handshake(&acceptor, stream, handshake_timeout, remote).await {
                        Some(stream) => Either::Right(stream),
                        None => return,
                    }
                }
            };
            if let Err(e) = serve(stream, remote, watcher).await {
                tracing::debug!(%remote, error = %e, "{front_end} connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Smallest read buffer hyper accepts.
const MIN_BUF_BYTES: usize = 8192;

/// The TLS session over `stream` once its handshake with `acceptor`
/// finishes within `timeout`; `None` (logged) when it fails or takes longer.
async fn tls_handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    timeout: std::time::Duration,
    remote: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            None
        }
    }
}

/// The next connection once one of `connections` is free; `None` when the
/// accept failed (out of file descriptors, say: logged, and retried after
/// a pause so the loop does not spin).
async fn accept(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let permit = connections.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, remote)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, remote, permit))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot accept a connection");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            None
        }
    }
}
