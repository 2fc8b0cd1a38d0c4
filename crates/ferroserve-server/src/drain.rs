//! Stopping a front end: when the shutdown signal comes it stops accepting
//! and lets the requests in flight finish, for at most the drain time;
//! whatever is still open then is closed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future a front end's accept loop stops on.
pub(crate) type Stop = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs `serve` (handed the future that resolves when `shutdown` does)
/// until it returns, or until `drain` has passed since the shutdown
/// signal. `front` names the front end in the logs.
pub(crate) async fn serve_until_drained<F, Served>(
    front: &'static str,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    serve: F,
) -> std::io::Result<()>
where
    F: FnOnce(Stop) -> Served,
    Served: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, mut stopped) = tokio::sync::watch::channel(false);
    let stop: Stop = Box::pin(async move {
        shutdown.await;
        tracing::info!(front, "shutdown requested; draining in-flight requests");
        let _ = stop_tx.send(true);
    });
    let server = tokio::spawn(serve(stop));
    tokio::select! {
        r = server => r.map_err(std::io::Error::other),
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(drain).await;
        } => {
            tracing::warn!(front, drain_secs = drain.as_secs_f64(), "drain time exceeded; closing remaining connections");
            Ok(())
        }
    }
}
