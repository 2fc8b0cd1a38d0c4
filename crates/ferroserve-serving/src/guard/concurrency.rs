//! Concurrency limits: at most N requests inside the server (or one model
//! version) at once; the next one is refused at once with 429 rather than
//! queued, so that admitted requests keep their deadlines.

use std::sync::Arc;
use std::time::Duration;

use ferroserve_core::{ErrorKind, InferError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use ferroserve_core::telemetry;

/// Where a limit applies, for messages and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyScope {
    /// Every inference request of the server.
    Server,
    /// The requests of one model version.
    Model,
}

impl ConcurrencyScope {
    fn as_label(self) -> &'static str {
        match self {
            ConcurrencyScope::Server => "server",
            ConcurrencyScope::Model => "model",
        }
    }
}

/// A limit of `limit` requests in flight.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    semaphore: Arc<Semaphore>,
    limit: usize,
    scope: ConcurrencyScope,
}

impl ConcurrencyLimit {
    /// A limit of `limit` (at least 1) requests at once.
    pub fn new(limit: usize, scope: ConcurrencyScope) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        ConcurrencyLimit {
            semaphore: Arc::new(Semaphore::new(limit)),
            limit,
            scope,
        }
    }

    /// Takes a place for a request to `model`, held until the permit drops;
    /// refuses at once (429, retry after 1 s) when all places are taken.
    pub fn try_enter(&self, model: &str) -> Result<OwnedSemaphorePermit, InferError> {
        self.semaphore.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!(telemetry::CONCURRENCY_REFUSED, "model" => model.to_string(),
                "scope" => self.scope.as_label())
            .increment(1);
            let what = match self.scope {
                ConcurrencyScope::Server => "the server".to_string(),
                ConcurrencyScope::Model => format!("model '{model}'"),
            };
            InferError::new(
                ErrorKind::Overloaded,
                format!(
                    "{what} is at its limit of {} concurrent requests; retry later",
                    self.limit
                ),
            )
            .with_retry_after(Duration::from_secs(1))
        })
    }

    /// Requests inside now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.semaphore.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_the_limit_and_frees_on_drop() {
        let limit = ConcurrencyLimit::new(2, ConcurrencyScope::Model);
        let a = limit.try_enter("m").expect("first");
        let _b = limit.try_enter("m").expect("second");
        let refused = limit.try_enter("m").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Overloaded);
        assert!(refused.message.contains("model 'm'"), "{}", refused.message);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(limit.in_flight(), 2);
        drop(a);
        let _c = limit.try_enter("m").expect("a place came free");
    }
}
