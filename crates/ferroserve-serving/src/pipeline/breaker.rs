//! Breaker: the version's circuit breaker around the batch stage — the
//! call runs on the model (through its batcher, at the call's priority)
//! unless the breaker is open; then the model's fallbacks answer, in order
//! (the cached answer, another version, a static default), or 503.
//! Background calls get no fallback: a job's rows must be the model's own
//! answers, so they wait for the breaker instead. Successful answers are
//! kept in the cache here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroserve_batcher::Priority;
use ferroserve_core::telemetry;
use ferroserve_core::{ErrorKind, InferError, InferRequest, InferResponse};

use tracing::Instrument;

use super::cache::{lookup, Lookup, Storage};
use super::call::Reached;
use super::deadline::Deadline;
use super::stage_span;
use crate::cache::{CacheDirective, CacheKey, CacheStatus, ResultCache};
use crate::guard::breaker::{Admission, Outcome};
use crate::guard::fallback::{repeat_rows, ReadyFallback};
use crate::manager::VersionKey;
use crate::{ModelManager, ServedVersion};

/// Which fallback answered (the `x-ferroserve-fallback` response header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackUsed {
    /// A cached answer for the same input.
    Cache,
    /// Another version, by label.
    Version(String),
    /// The static default.
    Static,
}

impl FallbackUsed {
    /// Header value: `cache`, `version=3` or `static`.
    pub fn header_value(&self) -> String {
        match self {
            FallbackUsed::Cache => "cache".into(),
            FallbackUsed::Version(v) => format!("version={v}"),
            FallbackUsed::Static => "static".into(),
        }
    }

    fn as_label(&self) -> &'static str {
        match self {
            FallbackUsed::Cache => "cache",
            FallbackUsed::Version(_) => "version",
            FallbackUsed::Static => "static",
        }
    }
}

/// Answers `request` on `served`: from the result cache when the model
/// caches and the caller allows; else from the model unless its breaker is
/// open; else from the model's fallbacks, in order; else 503.
pub(crate) async fn protect(
    manager: &ModelManager,
    cache: Option<&ResultCache>,
    served: &Arc<ServedVersion>,
    request: InferRequest,
    deadline: Option<Deadline>,
    directive: CacheDirective,
    priority: Priority,
) -> Result<Reached, InferError> {
    let storage = Storage::of(cache, served);
    // Hashed once: for the lookup, the store and the `cache` fallback.
    let key = storage.as_ref().map(|s| s.key(served, &request));
    let status = match lookup(storage.as_ref(), key.as_ref(), served, &request, directive)
        .instrument(stage_span("cache"))
        .await
    {
        Lookup::Hit(reached) => return Ok(reached),
        Lookup::Miss(status) => status,
    };
    match served.protection().breaker.admit() {
        admission @ Admission::Run { .. } => {
            let start = Instant::now();
            // Spans the queue wait, the engine run and the split. Not
            // entered: the queued request carries the request's own span,
            // which the engine batch's span links to.
            let batch_stage = stage_span("batch");
            let result = served.infer(request, instant(deadline), priority).await;
            drop(batch_stage);
            served
                .protection()
                .breaker
                .record(admission, outcome(&result, deadline, start));
            let response = result?;
            if let (Some(storage), Some(key)) = (&storage, key) {
                served.inference_cost().record(start.elapsed());
                if directive.store || status == CacheStatus::Off {
                    storage.put(served, key, &response.outputs).await;
                }
            }
            Ok(Reached {
                response,
                cache: status,
                fallback: None,
            })
        }
        Admission::Refuse { retry_after } if priority == Priority::Background => {
            Err(open_breaker(served, "background calls get no fallback")
                .with_retry_after(retry_after))
        }
        Admission::Refuse { retry_after } => {
            // A fallback answers without the model, so the request meets
            // the model's checks first: a fallback never sizes anything
            // by a number the model would have refused.
            served.check_request(&request)?;
            fall_back(
                manager,
                storage.as_ref().zip(key.as_ref()),
                served,
                request,
                deadline,
                retry_after,
            )
            .await
            .map(|(response, used)| {
                metrics::counter!(telemetry::FALLBACKS, "model" => served.name().to_string(),
                        "kind" => used.as_label())
                .increment(1);
                Reached {
                    response,
                    cache: status,
                    fallback: Some(used),
                }
            })
        }
    }
}

async fn fall_back(
    manager: &ModelManager,
    cached: Option<(&Storage<'_>, &CacheKey)>,
    served: &Arc<ServedVersion>,
    request: InferRequest,
    deadline: Option<Deadline>,
    retry_after: Duration,
) -> Result<(InferResponse, FallbackUsed), InferError> {
    for fallback in &served.protection().fallbacks {
        match fallback {
            ReadyFallback::Cache => {
                let Some((storage, key)) = cached else {
                    continue;
                };
                if let Some((outputs, _)) = storage.get(served, key).await {
                    return Ok((served.answer(request.id, outputs), FallbackUsed::Cache));
                }
            }
            ReadyFallback::Version(label) => {
                let Some(other) = other_version(manager, served, label).and_then(|o| o.enter())
                else {
                    continue;
                };
                let breaker = &other.protection().breaker;
                let admission = breaker.admit();
                if let Admission::Refuse { .. } = admission {
                    continue;
                }
                let sent = Instant::now();
                let result = other
                    .infer(request.clone(), instant(deadline), Priority::Online)
                    .await;
                breaker.record(admission, outcome(&result, deadline, sent));
                match result {
                    Ok(response) => {
                        let used = FallbackUsed::Version(other.version().to_string());
                        return Ok((response, used));
                    }
                    Err(e) => tracing::debug!(model = served.name(), version = other.version(),
                        error = %e.message, "fallback version failed"),
                }
            }
            ReadyFallback::Static(one_row) => {
                let rows = request
                    .inputs
                    .first()
                    .and_then(|t| t.shape.first().copied())
                    .unwrap_or(1);
                let wanted: Vec<&str> = request.outputs.iter().map(|o| o.name.as_str()).collect();
                if let Some(outputs) = repeat_rows(one_row, rows, &wanted) {
                    return Ok((served.answer(request.id, outputs), FallbackUsed::Static));
                }
            }
        }
    }
    metrics::counter!(telemetry::FALLBACKS, "model" => served.name().to_string(),
        "kind" => "unavailable")
    .increment(1);
    let why = if served.protection().fallbacks.is_empty() {
        "no fallback is configured"
    } else {
        "no fallback could answer"
    };
    Err(open_breaker(served, why).with_retry_after(retry_after))
}

/// The instant of `deadline`, for the batcher.
fn instant(deadline: Option<Deadline>) -> Option<Instant> {
    deadline.map(|d| d.at)
}

/// How a request sent to the model at `sent` went, for its breaker: a
/// passed deadline is the model's timeout only when the server set it and
/// it had not passed before the request was sent; a deadline the client
/// shortened is the client's business (else any client could open the
/// breaker for everyone with a tiny timeout).
fn outcome<T>(
    result: &Result<T, InferError>,
    deadline: Option<Deadline>,
    sent: Instant,
) -> Outcome {
    let blames_model = deadline.is_some_and(|d| d.blames_model(sent));
    Outcome::of(result).excusing_timeout(!blames_model)
}

/// 503: `served` is failing and its breaker refuses calls (`why` no
/// fallback answered).
fn open_breaker(served: &ServedVersion, why: &str) -> InferError {
    InferError::new(
        ErrorKind::Unavailable,
        format!(
            "model '{}' version {} is failing and its circuit breaker is open; {why}",
            served.name(),
            served.version()
        ),
    )
}

/// The loaded version a `version` fallback names: `previous` is the newest
/// ready version below the failing one (else the newest other one).
fn other_version(
    manager: &ModelManager,
    served: &ServedVersion,
    label: &str,
) -> Option<Arc<ServedVersion>> {
    if label != "previous" {
        return manager
            .get(served.name(), Some(label))
            .ok()
            .filter(|other| other.version() != served.version());
    }
    let entry = manager.entry(served.name())?;
    let current = VersionKey(served.version().to_string());
    let others = entry
        .versions
        .iter()
        .filter(|(key, _)| **key != current)
        .filter_map(|(key, v)| v.served.clone().map(|s| (key.clone(), s)));
    let (below, above): (Vec<_>, Vec<_>) = others.partition(|(key, _)| *key < current);
    below
        .into_iter()
        .next_back()
        .or_else(|| above.into_iter().next_back())
        .map(|(_, served)| served)
}
