//! Metric handles of one batcher, registered once when it starts so that
//! recording on the hot path touches only atomics, never a label lookup.

use metrics::{Counter, Gauge, Histogram};

use super::BatcherLabels;
use ferroserve_core::telemetry::{
    BATCH_SIZE, INFERENCE_DURATION, QUEUE_DEPTH, QUEUE_DURATION, REQUESTS_DROPPED,
};

/// Handles for every metric the batcher records, labelled with the model
/// and version it serves. Handles made before a recorder is installed record
/// nothing, so the server installs its recorder before loading models.
pub(crate) struct BatcherMetrics {
    /// Seconds each request waited before its batch ran.
    pub(crate) queue_duration: Histogram,
    /// Seconds of engine time per batch.
    pub(crate) inference_duration: Histogram,
    /// Rows per batch.
    pub(crate) batch_size: Histogram,
    /// Rows waiting.
    pub(crate) queue_depth: Gauge,
    /// Requests refused because the queue was full.
    pub(crate) dropped_queue_full: Counter,
    /// Requests whose deadline passed before their batch ran.
    pub(crate) dropped_deadline: Counter,
    /// Requests whose caller left before their batch ran.
    pub(crate) dropped_cancelled: Counter,
}

impl BatcherMetrics {
    /// Registers the handles for `labels`.
    pub(crate) fn new(labels: &BatcherLabels) -> Self {
        let model = labels.model.clone();
        let version = labels.version.clone();
        let dropped = |reason: &'static str| {
            metrics::counter!(
                REQUESTS_DROPPED,
                "model" => model.clone(),
                "version" => version.clone(),
                "reason" => reason
            )
        };
        BatcherMetrics {
            queue_duration: metrics::histogram!(
                QUEUE_DURATION, "model" => model.clone(), "version" => version.clone()
            ),
            inference_duration: metrics::histogram!(
                INFERENCE_DURATION, "model" => model.clone(), "version" => version.clone()
            ),
            batch_size: metrics::histogram!(
                BATCH_SIZE, "model" => model.clone(), "version" => version.clone()
            ),
            queue_depth: metrics::gauge!(
                QUEUE_DEPTH, "model" => model.clone(), "version" => version.clone()
            ),
            dropped_queue_full: dropped("queue_full"),
            dropped_deadline: dropped("deadline"),
            dropped_cancelled: dropped("cancelled"),
        }
    }
}
