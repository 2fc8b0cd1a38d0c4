//! Process-wide Prometheus recorder with the histogram buckets and help
//! texts of [`ferroserve_core::telemetry`], installed once.

use std::sync::OnceLock;
use std::time::Duration;

use ferroserve_core::telemetry::{
    BATCH_SIZE, BATCH_SIZE_BUCKETS, DIFFERENCE_BUCKETS, DURATION_BUCKETS, SHADOW_ABS_DIFFERENCE,
    SHADOW_REL_DIFFERENCE,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// How long a counter or histogram series may go without an update before
/// it leaves `/metrics`: series of deleted models and retired versions
/// (and of any label value once seen) must not pile up for ever. A series
/// that comes back starts again from zero, which Prometheus reads as a
/// counter reset. Gauges stay: they hold states (loaded, breaker) that are
/// set once and must stay visible.
pub const IDLE_SERIES_TIMEOUT: Duration = Duration::from_secs(3600);

/// The Prometheus handle, installing the global recorder on first use.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .idle_timeout(
                    MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM,
                    Some(IDLE_SERIES_TIMEOUT),
                )
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), DURATION_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(BATCH_SIZE.to_string()),
                        BATCH_SIZE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(SHADOW_ABS_DIFFERENCE.to_string()),
                        DIFFERENCE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(SHADOW_REL_DIFFERENCE.to_string()),
                        DIFFERENCE_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            ferroserve_core::telemetry::describe_all();
            handle
        })
        .clone()
}

/// Periodically folds recorded histogram samples into their buckets so that
/// memory stays bounded between scrapes.
pub async fn upkeep_task(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}
