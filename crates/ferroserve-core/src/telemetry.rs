//! Names of every Prometheus metric ferroserve exports, in one place, and the
//! histogram buckets they use.

/// `tracing` target of the spans exported as OpenTelemetry traces: the
/// request span, its pipeline stages and the engine batches. Only these
/// reach the OTLP exporter, and without one they are switched off, so
/// that they cost nothing.
pub const TRACE_TARGET: &str = "ferroserve::trace";

/// Requests answered, by `model`, `version`, `protocol` and `code`.
pub const REQUESTS_TOTAL: &str = "ferroserve_requests_total";
/// End-to-end request time in seconds, by `model`, `version`, `protocol`.
pub const REQUEST_DURATION: &str = "ferroserve_request_duration_seconds";
/// Time a request waited in its batch queue, by `model`, `version`.
pub const QUEUE_DURATION: &str = "ferroserve_queue_duration_seconds";
/// Engine time of one batch, by `model`, `version`.
pub const INFERENCE_DURATION: &str = "ferroserve_inference_duration_seconds";
/// Rows per executed batch, by `model`, `version`.
pub const BATCH_SIZE: &str = "ferroserve_batch_size";
/// Rows waiting in the batch queue, by `model`, `version`.
pub const QUEUE_DEPTH: &str = "ferroserve_queue_depth";
/// Requests refused or dropped by the batcher, by `model`, `version`, `reason`
/// (`queue_full`, `deadline`, `cancelled`).
pub const REQUESTS_DROPPED: &str = "ferroserve_requests_dropped_total";
/// 1 while a model version is loaded and serving, by `model`, `version`, `engine`.
pub const MODEL_LOADED: &str = "ferroserve_model_loaded";
/// Gauge per model: 1 while it serves another version than the registry
/// selects (kept serving after a change that selects nothing or fails).
pub const MODEL_DEGRADED: &str = "ferroserve_model_degraded";

/// PSI of a feature in the last closed window, by `model`, `version`, `feature`.
pub const FEATURE_PSI: &str = "ferroserve_feature_psi";
/// KS p-value of a numeric feature in the last closed window, by `model`, `version`, `feature`.
pub const FEATURE_KS_PVALUE: &str = "ferroserve_feature_ks_pvalue";
/// Jensen–Shannon distance of a categorical feature in the last closed
/// window, by `model`, `version`, `feature`.
pub const FEATURE_JS_DISTANCE: &str = "ferroserve_feature_js_distance";
/// PSI of the predictions in the last closed window, by `model`, `version`.
pub const PREDICTION_PSI: &str = "ferroserve_prediction_psi";
/// Share of drifted features in the last closed window, by `model`, `version`.
pub const DATASET_DRIFT_SHARE: &str = "ferroserve_dataset_drift_share";
/// Drift windows closed, by `model`, `version`.
pub const MONITOR_WINDOWS: &str = "ferroserve_monitor_windows_total";
/// Requests not observed because the monitor fell behind, by `model`, `version`.
pub const MONITOR_DROPPED: &str = "ferroserve_monitor_dropped_total";
/// Requests not observed because they were over the version's
/// rows-per-second budget, by `model`, `version`.
pub const MONITOR_SKIPPED: &str = "ferroserve_monitor_skipped_total";
/// Data contract violations, by `model`, `version`, `feature` and `kind`
/// (`null`, `below_min`, `above_max`, `unknown_category`, `wrong_type`).
pub const CONTRACT_VIOLATIONS: &str = "ferroserve_contract_violations_total";
/// Online accuracy over the labeled window, by `model`, `version`.
pub const ONLINE_ACCURACY: &str = "ferroserve_online_accuracy";
/// Online macro F1 over the labeled window, by `model`, `version`.
pub const ONLINE_F1: &str = "ferroserve_online_f1";
/// Online mean absolute error (regressors), by `model`, `version`.
pub const ONLINE_MAE: &str = "ferroserve_online_mae";
/// Online root mean squared error (regressors), by `model`, `version`.
pub const ONLINE_RMSE: &str = "ferroserve_online_rmse";
/// Monitoring alerts fired, by `model` and `rule`.
pub const MONITOR_ALERTS: &str = "ferroserve_monitor_alerts_total";

/// Buckets for durations in seconds: 25 µs to 10 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for batch sizes in rows.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Buckets for the differences between a shadow's predictions and the
/// primary's (absolute or relative): decades from one millionth to a thousand.
pub const DIFFERENCE_BUCKETS: &[f64] = &[
    0.000_001, 0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0,
];

/// Result cache lookups, by `layer` (`l1`, `l2`) and `result` (`hit`,
/// `miss`, `error`, `unavailable` (breaker open or not connected),
/// `skipped_cheap` (model faster than a Redis round trip), `bypass`).
pub const CACHE_REQUESTS: &str = "ferroserve_cache_requests_total";
/// Time of one cache lookup in seconds, by `layer` and `result` (`hit`, `miss`).
pub const CACHE_LOOKUP_DURATION: &str = "ferroserve_cache_lookup_duration_seconds";
/// State of the breaker around Redis (cache, limits, idempotency): 0 closed, 1 open, 2 half-open.
pub const REDIS_BREAKER_STATE: &str = "ferroserve_redis_breaker_state";
/// State of a model version's circuit breaker, by `model`, `version`:
/// 0 closed, 1 open, 2 half-open.
pub const BREAKER_STATE: &str = "ferroserve_breaker_state";
/// Times a version's breaker opened, by `model`, `version`.
pub const BREAKER_OPENED: &str = "ferroserve_breaker_opened_total";
/// Requests answered by a fallback, by `model` and `kind` (`cache`,
/// `version`, `static`, `unavailable`).
pub const FALLBACKS: &str = "ferroserve_fallbacks_total";
/// Copies of live requests sent to a shadow version, by `model`, `version`
/// and `outcome` (`ok`, `error`, `dropped`).
pub const SHADOW_REQUESTS: &str = "ferroserve_shadow_requests_total";
/// Time a shadow version took to answer a copy in seconds, by `model`, `version`.
pub const SHADOW_DURATION: &str = "ferroserve_shadow_duration_seconds";
/// Rows a shadow classifier labelled like the primary (`agree="true"`) or
/// not (`agree="false"`), by `model`, `version`, `agree`.
pub const SHADOW_AGREEMENT: &str = "ferroserve_shadow_agreement_total";
/// Per-row `|shadow - primary|` of a shadow regressor, by `model`, `version`.
pub const SHADOW_ABS_DIFFERENCE: &str = "ferroserve_shadow_abs_difference";
/// Per-row `|shadow - primary| / max(|primary|, 1e-12)` of a shadow
/// regressor, by `model`, `version`.
pub const SHADOW_REL_DIFFERENCE: &str = "ferroserve_shadow_rel_difference";
/// Requests refused by a concurrency limit, by `model` and `scope`
/// (`server`, `model`).
pub const CONCURRENCY_REFUSED: &str = "ferroserve_concurrency_refused_total";
/// Counter of claims by outcome, label `result`: `first`, `replay`,
/// `mismatch` or `in_progress`.
pub const IDEMPOTENCY_TOTAL: &str = "ferroserve_idempotency_total";
/// Counter of claims that Redis could not serve and that fell back to the
/// in-process store.
pub const IDEMPOTENCY_REDIS_FALLBACK_TOTAL: &str = "ferroserve_idempotency_redis_fallback_total";
/// Counter of refused requests, by `model` and `scope`
/// (`client`, `model`, `model_client`).
pub const RATE_LIMITED_TOTAL: &str = "ferroserve_rate_limited_total";
/// Counter of rate-limit checks, by `store`: `redis`, `local`, or
/// `local_fallback` (Redis configured but not answering).
pub const RATE_LIMIT_CHECKS_TOTAL: &str = "ferroserve_rate_limit_checks_total";
/// Counter of alert webhook deliveries, by `outcome`: `delivered`,
/// `rejected` (non-retryable HTTP status), `gave_up` (every attempt failed),
/// `refused` (the host is internal and not allowed) or `busy` (too many
/// deliveries in flight).
pub const ALERT_WEBHOOK_DELIVERIES: &str = "ferroserve_alert_webhook_deliveries_total";
/// Gauge of the percent of a model's unpinned requests a version gets
/// during a rollout, by model and version.
pub const ROLLOUT_WEIGHT: &str = "ferroserve_rollout_weight";
/// Gauge, 1 for the state a model's latest rollout is in, by model and state.
pub const ROLLOUT_STATE: &str = "ferroserve_rollout_state";
/// Gauge of a rollout gate's value at its last check, by model and gate.
pub const ROLLOUT_GATE_VALUE: &str = "ferroserve_rollout_gate_value";
/// Gauge of a rollout gate's failed checks in a row, by model and gate.
pub const ROLLOUT_GATE_FAILURES: &str = "ferroserve_rollout_gate_failures";
/// Gauge, 1 while this replica leads the work one replica does at a time
/// (driving rollouts), else 0.
pub const LEADER: &str = "ferroserve_leader";
/// Rows handled by batch jobs, by model and result (`done`, `failed`).
pub const JOB_ROWS: &str = "ferroserve_job_rows_total";
/// Jobs that reached a final state, by kind and state.
pub const JOBS_FINISHED: &str = "ferroserve_jobs_finished_total";
/// Jobs running on this server.
pub const JOBS_RUNNING: &str = "ferroserve_jobs_running";
/// Requests refused for their credentials, by reason.
pub const AUTH_FAILURES: &str = "ferroserve_auth_failures_total";

/// What a metric is, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Samples in buckets.
    Histogram,
}

/// Every metric above with its kind and the text of its `# HELP` line. A
/// unit test checks that no metric name is missing.
pub const METRICS: &[(&str, MetricKind, &str)] = {
    use MetricKind::{Counter, Gauge, Histogram};
    &[
        (REQUESTS_TOTAL, Counter, "Inference requests answered, by model, version, protocol and HTTP status code."),
        (REQUEST_DURATION, Histogram, "End-to-end inference request time in seconds, by model, version and protocol."),
        (QUEUE_DURATION, Histogram, "Time a request waited in its batch queue in seconds, by model and version."),
        (INFERENCE_DURATION, Histogram, "Engine time of one batch in seconds, by model and version."),
        (BATCH_SIZE, Histogram, "Rows per executed batch, by model and version."),
        (QUEUE_DEPTH, Gauge, "Rows waiting in the batch queue, by model and version."),
        (REQUESTS_DROPPED, Counter, "Requests refused or dropped by the batcher, by model, version and reason (queue_full, deadline, cancelled)."),
        (MODEL_LOADED, Gauge, "1 while a model version is loaded and serving, by model, version and engine."),
        (MODEL_DEGRADED, Gauge, "1 while a model serves another version than the registry selects (see degraded in its serving status), by model."),
        (FEATURE_PSI, Gauge, "Population stability index of a feature in the last closed drift window, by model, version and feature."),
        (FEATURE_KS_PVALUE, Gauge, "Kolmogorov-Smirnov p-value of a numeric feature in the last closed drift window, by model, version and feature."),
        (FEATURE_JS_DISTANCE, Gauge, "Jensen-Shannon distance of a categorical feature in the last closed drift window, by model, version and feature."),
        (PREDICTION_PSI, Gauge, "Population stability index of the predictions in the last closed drift window, by model and version."),
        (DATASET_DRIFT_SHARE, Gauge, "Share of drifted features in the last closed drift window, by model and version."),
        (MONITOR_WINDOWS, Counter, "Drift windows closed, by model and version."),
        (MONITOR_DROPPED, Counter, "Requests not observed because the monitor fell behind, by model and version."),
        (MONITOR_SKIPPED, Counter, "Requests not observed because they were over the version's rows-per-second budget, by model and version."),
        (CONTRACT_VIOLATIONS, Counter, "Data contract violations, by model, version, feature and kind (null, below_min, above_max, unknown_category, wrong_type)."),
        (ONLINE_ACCURACY, Gauge, "Online accuracy over the labeled window, by model and version."),
        (ONLINE_F1, Gauge, "Online macro F1 over the labeled window, by model and version."),
        (ONLINE_MAE, Gauge, "Online mean absolute error of a regressor over the labeled window, by model and version."),
        (ONLINE_RMSE, Gauge, "Online root mean squared error of a regressor over the labeled window, by model and version."),
        (MONITOR_ALERTS, Counter, "Monitoring alerts fired, by model and rule."),
        (CACHE_REQUESTS, Counter, "Result cache lookups, by layer (l1, l2) and result (hit, miss, error, unavailable, skipped_cheap, bypass)."),
        (CACHE_LOOKUP_DURATION, Histogram, "Time of one result cache lookup in seconds, by layer and result."),
        (REDIS_BREAKER_STATE, Gauge, "State of the breaker around Redis (cache, limits, idempotency): 0 closed, 1 open, 2 half-open."),
        (BREAKER_STATE, Gauge, "State of a model version's circuit breaker, by model and version: 0 closed, 1 open, 2 half-open."),
        (BREAKER_OPENED, Counter, "Times a model version's circuit breaker opened, by model and version."),
        (FALLBACKS, Counter, "Requests answered by a fallback while a breaker was open, by model and kind (cache, version, static, unavailable)."),
        (SHADOW_REQUESTS, Counter, "Copies of live requests sent to a shadow version, by model, version and outcome (ok, error, dropped)."),
        (SHADOW_DURATION, Histogram, "Time a shadow version took to answer a copy of a live request in seconds, by model and version."),
        (SHADOW_AGREEMENT, Counter, "Rows a shadow classifier labelled like the primary version (agree=true) or not (agree=false), by model and version."),
        (SHADOW_ABS_DIFFERENCE, Histogram, "Per-row absolute difference between a shadow regressor's prediction and the primary's, by model and version."),
        (SHADOW_REL_DIFFERENCE, Histogram, "Per-row relative difference |shadow - primary| / max(|primary|, 1e-12) of a shadow regressor, by model and version."),
        (CONCURRENCY_REFUSED, Counter, "Requests refused by a concurrency limit, by model and scope (server, model)."),
        (IDEMPOTENCY_TOTAL, Counter, "Idempotency-Key claims, by result (first, replay, mismatch, in_progress)."),
        (IDEMPOTENCY_REDIS_FALLBACK_TOTAL, Counter, "Idempotency-Key claims that Redis could not serve and that fell back to the in-process store."),
        (RATE_LIMITED_TOTAL, Counter, "Requests refused by a rate limit, by model and scope (client, model, model_client)."),
        (RATE_LIMIT_CHECKS_TOTAL, Counter, "Rate-limit checks, by store (redis, local, local_fallback)."),
        (ALERT_WEBHOOK_DELIVERIES, Counter, "Alert webhook deliveries, by outcome (delivered, rejected, gave_up, refused, busy)."),
        (ROLLOUT_WEIGHT, Gauge, "Percent of a model's requests naming no version that a version gets during a rollout, by model and version."),
        (ROLLOUT_STATE, Gauge, "1 for the state of a model's latest rollout (progressing, paused, awaiting_approval, completed, rolled_back, aborted), by model and state."),
        (ROLLOUT_GATE_VALUE, Gauge, "Value of a rollout gate at its last check (error_rate and fallback_rate: canary minus stable; p99_ratio: canary over stable; prediction_psi), by model and gate."),
        (ROLLOUT_GATE_FAILURES, Gauge, "Checks in a row a rollout gate failed, by model and gate."),
        (LEADER, Gauge, "1 while this replica leads the work one replica does at a time (driving rollouts, purging finished jobs), else 0; one node always leads."),
        (JOB_ROWS, Counter, "Rows handled by batch jobs, by model and result (done, failed)."),
        (JOBS_FINISHED, Counter, "Jobs that reached a final state, by kind and state."),
        (JOBS_RUNNING, Gauge, "Batch and asynchronous jobs running on this server."),
        (AUTH_FAILURES, Counter, "Requests refused 401 or 403, by reason (missing, malformed, unknown_key, expired_key, revoked_key, bad_jwt, role, model)."),
    ]
};

/// Gives every metric its `# HELP` text in the installed recorder; called
/// once, right after the recorder is installed.
pub fn describe_all() {
    for &(name, kind, help) in METRICS {
        match kind {
            MetricKind::Counter => metrics::describe_counter!(name, help),
            MetricKind::Gauge => metrics::describe_gauge!(name, help),
            MetricKind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_name_has_a_help_text() {
        let source = include_str!("telemetry.rs");
        let names: Vec<&str> = source
            .lines()
            .filter_map(|line| line.strip_prefix("pub const "))
            .filter_map(|rest| rest.split_once(": &str = \""))
            .filter_map(|(_, value)| value.split_once('"'))
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("ferroserve_"))
            .collect();
        assert!(names.len() >= 30, "found only {names:?}");
        for name in names {
            let described = METRICS.iter().filter(|(n, _, _)| *n == name).count();
            assert_eq!(
                described, 1,
                "metric {name} needs exactly one entry in METRICS"
            );
        }
        for (name, _, help) in METRICS {
            assert!(help.ends_with('.') && help.len() > 20, "{name}: {help}");
        }
    }
}
