//! Admit: the checks that refuse a call before any work is done, cheapest
//! first — the server's concurrency limit, the caller's rate limits, the
//! model's concurrency limit. Background calls (jobs) pass none of them:
//! jobs are queued and paced by the job runner, not by a client.

use ferroserve_batcher::Priority;
use ferroserve_core::InferError;
use tokio::sync::OwnedSemaphorePermit;

use super::call::Call;
use super::Pipeline;
use crate::ServedVersion;

/// Permits of the concurrency limits a call entered; released when dropped.
#[derive(Default)]
pub(crate) struct Permits {
    _server: Option<OwnedSemaphorePermit>,
    _model: Option<OwnedSemaphorePermit>,
}

impl Pipeline {
    /// Admits `call` on `served`, or says why not.
    pub(super) async fn admit(
        &self,
        call: &Call,
        served: &ServedVersion,
    ) -> Result<Permits, InferError> {
        if call.priority == Priority::Background {
            return Ok(Permits::default());
        }
        let server = match &self.concurrency {
            Some(limit) => Some(limit.try_enter(served.name())?),
            None => None,
        };
        let protection = served.protection();
        if let Some(limiter) = &self.rate_limiter {
            if !limiter.is_unlimited(&protection.rate_limit) {
                limiter
                    .check(&call.client, served.name(), &protection.rate_limit)
                    .await
                    .map_err(|refused| refused.into_error(served.name()))?;
            }
        }
        let model = match &protection.concurrency {
            Some(limit) => Some(limit.try_enter(served.name())?),
            None => None,
        };
        Ok(Permits {
            _server: server,
            _model: model,
        })
    }
}
