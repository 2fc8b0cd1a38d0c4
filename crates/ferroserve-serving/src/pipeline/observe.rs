//! Observe: what every call leaves behind — the request metrics, a log line
//! for a failure, and the sampled inputs and outputs for the monitor.

use std::sync::OnceLock;

use ferroserve_core::InferError;

use super::call::{Call, Reached};
use super::contract::Sampled;
use crate::request_metrics::RequestMetrics;
use crate::ServedVersion;

/// Counts a call that was answered, in the metrics of `served`, and hands
/// a sampled call to the monitor (never an answer a fallback gave).
pub(super) fn answered(
    call: &Call,
    served: &ServedVersion,
    reached: &Reached,
    sampled: Option<Sampled>,
) {
    if let (Some(sampled), None) = (sampled, &reached.fallback) {
        sampled
            .watch
            .observe(sampled.inputs, &reached.response.outputs, sampled.keys);
    }
    served
        .metrics()
        .record(call.protocol, 200, call.start.elapsed());
}

/// Counts and logs a call that failed, in the metrics of the version it
/// was routed to (`None`: it named no served model).
pub(super) fn failed(call: &Call, served: Option<&ServedVersion>, error: &InferError) {
    let status = error.kind.http_status();
    let request_id = call.keys.request_ids.first().map_or("", String::as_str);
    let model = call.model.as_str();
    if status >= 500 {
        tracing::warn!(model, version = served.map_or("", |s| s.version()), request_id,
            kind = error.kind.as_label(), error = %error.message, "request failed");
    } else {
        tracing::debug!(model, request_id, error = %error.message, "request rejected");
    }
    let metrics = match served {
        Some(served) => served.metrics(),
        None => unknown_model_metrics(),
    };
    metrics.record(call.protocol, status, call.start.elapsed());
}

/// Metrics for calls naming a model that does not exist (one bounded label).
fn unknown_model_metrics() -> &'static RequestMetrics {
    static METRICS: OnceLock<RequestMetrics> = OnceLock::new();
    METRICS.get_or_init(|| RequestMetrics::new("_unknown", "_unknown"))
}
