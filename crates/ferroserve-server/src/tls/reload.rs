//! The TLS configuration new connections get, re-read from its files on
//! SIGHUP and when a file changes; a reload that fails keeps the last good
//! configuration and logs a warning.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;

use super::{server_config, TlsError, TlsFiles};

/// When and how long each watched file was last seen; `None` for a file
/// that could not be read.
type Stamps = Vec<Option<(SystemTime, u64)>>;

/// The current TLS configuration and the files it comes from.
pub struct TlsSource {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    seen: Mutex<Stamps>,
}

impl TlsSource {
    /// Reads `files`; an error says which file is wrong and how.
    pub fn load(files: TlsFiles) -> Result<Arc<TlsSource>, TlsError> {
        let seen = stamps(&files);
        let config = server_config(&files)?;
        Ok(Arc::new(TlsSource {
            files,
            current: ArcSwap::from_pointee(config),
            seen: Mutex::new(seen),
        }))
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Re-reads the files; on an error the current configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = stamps(&self.files);
        let config = server_config(&self.files)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// Whether a file changed (or appeared or vanished) since it was last
    /// read.
    pub fn files_changed(&self) -> bool {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) != stamps(&self.files)
    }

    /// Reloads on SIGHUP and when `files_changed` on a check every `poll`,
    /// in the background for as long as the process runs.
    pub fn follow(self: &Arc<Self>, poll: Duration) {
        let source = self.clone();
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(hangup) => Some(hangup),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS files are reloaded when they change only");
                None
            }
        };
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                let cause = tokio::select! {
                    Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
                    _ = ticks.tick() => {
                        if !source.files_changed() {
                            continue;
                        }
                        "a file changed"
                    }
                };
                match source.reload() {
                    Ok(()) => tracing::info!(cause, "TLS certificate reloaded"),
                    Err(e) => tracing::warn!(
                        cause,
                        error = %e,
                        "cannot reload the TLS certificate; new connections keep the previous one"
                    ),
                }
            }
        });
    }
}

fn stamps(files: &TlsFiles) -> Stamps {
    files
        .paths()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}
