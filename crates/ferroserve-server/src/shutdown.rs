//! The shutdown signal: SIGTERM or SIGINT (Ctrl-C), for one front end or
//! shared by several.

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = term => tracing::info!("received SIGTERM"),
    }
}

/// One shutdown signal for several front ends: each waits on its own
/// [`Shutdown::wait`], and all of them stop on the same SIGTERM or SIGINT.
#[derive(Clone)]
pub struct Shutdown {
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl Shutdown {
    /// Starts listening for SIGTERM and SIGINT.
    pub fn on_signal() -> Shutdown {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal().await;
            let _ = stop.send(true);
        });
        Shutdown { stopped }
    }

    /// Resolves when the signal has come.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopped = self.stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    }
}
