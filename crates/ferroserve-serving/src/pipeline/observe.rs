//! Observe: what every call leaves behind — the request metrics (with the
//! variant when a split or rollout chose the version), the rollout window,
//! a log line for a failure, and the sampled inputs and outputs for the
//! monitor.

use std::sync::OnceLock;

use ferroserve_core::{InferError, Tensor};

use super::call::{Call, Reached};
use super::contract::Sampled;
use super::route::Routed;
use crate::request_metrics::RequestMetrics;

/// Counts a call that was answered, in the metrics of the version it was
/// routed to and its rollout window, and hands a sampled call to the
/// monitor (never an answer a fallback gave).
pub(super) fn answered(call: &Call, routed: &Routed, reached: &Reached, sampled: Option<Sampled>) {
    if let (Some(sampled), None) = (sampled, &reached.fallback) {
        sampled
            .watch
            .observe(sampled.inputs, &reached.response.outputs, sampled.keys);
    }
    let outputs = Some(reached.response.outputs.as_slice());
    record(call, routed, 200, reached.fallback.is_some(), outputs);
}

/// Counts and logs a call that failed, in the metrics of the version it
/// was routed to (`None`: it named no served model).
pub(super) fn failed(call: &Call, routed: Option<&Routed>, error: &InferError) {
    let status = error.kind.http_status();
    let request_id = call.keys.request_ids.first().map_or("", String::as_str);
    let model = call.model.as_str();
    let version = routed.map_or("", |r| r.held.version());
    if status >= 500 {
        tracing::warn!(model, version, request_id,
            kind = error.kind.as_label(), error = %error.message, "request failed");
    } else {
        tracing::debug!(model, request_id, error = %error.message, "request rejected");
    }
    match routed {
        Some(routed) => record(call, routed, status, false, None),
        None => unknown_model_metrics().record(call.protocol, status, call.start.elapsed(), None),
    }
}

/// Records one outcome in the version's metrics and, when a rollout
/// routed the call, in its window.
fn record(call: &Call, routed: &Routed, status: u16, fallback: bool, outputs: Option<&[Tensor]>) {
    let elapsed = call.start.elapsed();
    routed.held.request_stats().record(status < 400, elapsed);
    routed
        .held
        .metrics()
        .record(call.protocol, status, elapsed, routed.variant.as_ref());
    let live = routed.routing.as_ref().and_then(|r| r.rollout());
    if let (Some(side), Some(live)) = (routed.side, live) {
        live.record(side, status, elapsed, fallback, outputs);
    }
}

/// Metrics for calls naming a model that does not exist (one bounded label).
fn unknown_model_metrics() -> &'static RequestMetrics {
    static METRICS: OnceLock<RequestMetrics> = OnceLock::new();
    METRICS.get_or_init(|| RequestMetrics::new("_unknown", "_unknown"))
}
