//! Figures of one shadow lane: what was offered, dropped, answered and
//! failed, how long the shadow took, and how its answers compare with the
//! primary's; kept in memory for the lane's report and exported as the
//! `ferroserve_shadow_*` metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ferroserve_core::telemetry;
use hdrhistogram::Histogram as Hdr;
use metrics::{Counter, Histogram};
use serde::Serialize;

use super::compare::Comparison;
use super::policy::ShadowPolicy;

/// Differences are kept in the histograms in billionths: finer ones
/// count as 0.
const DIFFERENCE_SCALE: f64 = 1e9;

/// Largest difference kept apart (10^9); larger ones count as this.
const MAX_SCALED_DIFFERENCE: f64 = 1e18;

/// Percentiles and maximum of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value seen.
    pub max: f64,
}

/// How the shadow's answers compare with the primary's so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ComparisonReport {
    /// A classifier: rows with the same predicted label.
    Classification {
        /// Rows compared.
        rows: u64,
        /// Rows where the shadow predicted the primary's label.
        agree: u64,
        /// `agree / rows` (0 before any row).
        agreement_rate: f64,
    },
    /// A regressor: per-row differences from the primary's prediction.
    Regression {
        /// Rows compared.
        rows: u64,
        /// `|shadow - primary|`.
        abs_difference: Quantiles,
        /// `|shadow - primary| / max(|primary|, 1e-12)`.
        rel_difference: Quantiles,
    },
    /// No row compared yet.
    None,
}

/// What one shadow lane has seen (`GET /api/v1/models/{model}/shadow`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowReport {
    /// The shadow version.
    pub version: i64,
    /// Percent of answered requests copied to it.
    pub percent: f64,
    /// Copies that may wait for it.
    pub queue_capacity: usize,
    /// Copies waiting now.
    pub queued_now: usize,
    /// Copies offered to the lane.
    pub offered: u64,
    /// Copies dropped because the queue was full (or the lane stopping).
    pub dropped: u64,
    /// Copies the shadow answered.
    pub ok: u64,
    /// Copies the shadow failed or refused.
    pub errors: u64,
    /// `errors / (ok + errors)` (0 before any answer).
    pub error_rate: f64,
    /// Time the shadow took for its answers, in milliseconds.
    pub latency_ms: Quantiles,
    /// Its answers next to the primary's.
    pub comparison: ComparisonReport,
    /// Answers that could not be compared (no prediction output in one of
    /// them, or other row counts).
    pub incomparable: u64,
}

/// The `ferroserve_shadow_*` metric handles of one lane, labelled once.
struct ShadowMetrics {
    ok: Counter,
    error: Counter,
    dropped: Counter,
    duration: Histogram,
    agree: Counter,
    disagree: Counter,
    abs_difference: Histogram,
    rel_difference: Histogram,
}

impl ShadowMetrics {
    fn new(model: &str, version: &str) -> Self {
        let requests = |outcome: &'static str| {
            metrics::counter!(telemetry::SHADOW_REQUESTS, "model" => model.to_string(),
                "version" => version.to_string(), "outcome" => outcome)
        };
        let agreement = |agree: &'static str| {
            metrics::counter!(telemetry::SHADOW_AGREEMENT, "model" => model.to_string(),
                "version" => version.to_string(), "agree" => agree)
        };
        let histogram = |name: &'static str| metrics::histogram!(name, "model" => model.to_string(), "version" => version.to_string());
        ShadowMetrics {
            ok: requests("ok"),
            error: requests("error"),
            dropped: requests("dropped"),
            duration: histogram(telemetry::SHADOW_DURATION),
            agree: agreement("true"),
            disagree: agreement("false"),
            abs_difference: histogram(telemetry::SHADOW_ABS_DIFFERENCE),
            rel_difference: histogram(telemetry::SHADOW_REL_DIFFERENCE),
        }
    }
}

/// The distributions and comparison counts, updated together.
struct Figures {
    /// Microseconds per answer.
    latency_us: Hdr<u64>,
    agree: u64,
    disagree: u64,
    regression_rows: u64,
    /// Scaled by [`DIFFERENCE_SCALE`].
    abs_difference: Hdr<u64>,
    /// Scaled by [`DIFFERENCE_SCALE`].
    rel_difference: Hdr<u64>,
}

impl Figures {
    fn new() -> Self {
        // Auto-resizing: memory grows with the range actually seen.
        let histogram = || Hdr::new(3).expect("3 significant figures are a valid precision");
        Figures {
            latency_us: histogram(),
            agree: 0,
            disagree: 0,
            regression_rows: 0,
            abs_difference: histogram(),
            rel_difference: histogram(),
        }
    }

    fn comparison(&self) -> ComparisonReport {
        let classified = self.agree + self.disagree;
        if classified == 0 && self.regression_rows == 0 {
            return ComparisonReport::None;
        }
        // Both kinds only when the primary version changed task between
        // answers: the kind with more rows speaks.
        if classified >= self.regression_rows {
            ComparisonReport::Classification {
                rows: classified,
                agree: self.agree,
                agreement_rate: self.agree as f64 / classified as f64,
            }
        } else {
            ComparisonReport::Regression {
                rows: self.regression_rows,
                abs_difference: quantiles(&self.abs_difference, DIFFERENCE_SCALE),
                rel_difference: quantiles(&self.rel_difference, DIFFERENCE_SCALE),
            }
        }
    }
}

/// Figures of one shadow lane, updated by its worker and by `offer`.
pub struct ShadowStats {
    offered: AtomicU64,
    queued: AtomicU64,
    dropped: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    incomparable: AtomicU64,
    figures: Mutex<Figures>,
    metrics: ShadowMetrics,
}

impl ShadowStats {
    /// Empty figures of the shadow `version` of `model`, with its metric
    /// handles.
    pub fn new(model: &str, version: &str) -> Self {
        ShadowStats {
            offered: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            incomparable: AtomicU64::new(0),
            figures: Mutex::new(Figures::new()),
            metrics: ShadowMetrics::new(model, version),
        }
    }

    /// Copies offered to the lane.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Relaxed)
    }

    /// Copies that found room in the queue.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Copies dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Copies the shadow answered.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Copies the shadow failed or refused.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Answers that could not be compared.
    pub fn incomparable(&self) -> u64 {
        self.incomparable.load(Ordering::Relaxed)
    }

    /// Counts one copy offered and queued.
    pub(crate) fn record_queued(&self) {
        self.offered.fetch_add(1, Ordering::Relaxed);
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one copy offered and dropped.
    pub(crate) fn record_dropped(&self) {
        self.offered.fetch_add(1, Ordering::Relaxed);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.metrics.dropped.increment(1);
    }

    /// Counts one answer of the shadow, which took `elapsed`.
    pub(crate) fn record_ok(&self, elapsed: Duration) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        self.metrics.ok.increment(1);
        self.metrics.duration.record(elapsed.as_secs_f64());
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        keep(&mut self.lock().latency_us, micros);
    }

    /// Counts one copy the shadow failed or refused.
    pub(crate) fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.metrics.error.increment(1);
    }

    /// Adds one answer's comparison with the primary's.
    pub(crate) fn record_comparison(&self, comparison: &Comparison) {
        match comparison {
            Comparison::Classification { agree, disagree } => {
                self.metrics.agree.increment(*agree);
                self.metrics.disagree.increment(*disagree);
                let mut figures = self.lock();
                figures.agree += agree;
                figures.disagree += disagree;
            }
            Comparison::Regression {
                abs_differences,
                rel_differences,
            } => {
                for (abs, rel) in abs_differences.iter().zip(rel_differences) {
                    self.metrics.abs_difference.record(*abs);
                    self.metrics.rel_difference.record(*rel);
                }
                let mut figures = self.lock();
                figures.regression_rows += abs_differences.len() as u64;
                for abs in abs_differences {
                    keep(&mut figures.abs_difference, scaled(*abs));
                }
                for rel in rel_differences {
                    keep(&mut figures.rel_difference, scaled(*rel));
                }
            }
            Comparison::Incomparable(_) => {
                self.incomparable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The report of a lane running `policy` whose queue holds
    /// `queue_capacity` copies, `queued_now` of them waiting.
    pub(crate) fn report(
        &self,
        policy: &ShadowPolicy,
        queue_capacity: usize,
        queued_now: usize,
    ) -> ShadowReport {
        let (ok, errors) = (self.ok(), self.errors());
        let answered = ok + errors;
        let figures = self.lock();
        ShadowReport {
            version: policy.version,
            percent: policy.percent,
            queue_capacity,
            queued_now,
            offered: self.offered(),
            dropped: self.dropped(),
            ok,
            errors,
            error_rate: if answered == 0 {
                0.0
            } else {
                errors as f64 / answered as f64
            },
            latency_ms: quantiles(&figures.latency_us, 1000.0),
            comparison: figures.comparison(),
            incomparable: self.incomparable(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Figures> {
        // Figures stay consistent between statements, so a panic while
        // one was held leaves nothing half-written worth refusing.
        self.figures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Records `value` in the auto-resizing `histogram`, growing it as needed
/// (`saturating_record` alone would clamp to its current range); a value
/// it cannot grow to counts as its highest.
fn keep(histogram: &mut Hdr<u64>, value: u64) {
    if histogram.record(value).is_err() {
        histogram.saturating_record(value);
    }
}

/// A non-negative finite difference in billionths, capped.
fn scaled(difference: f64) -> u64 {
    (difference * DIFFERENCE_SCALE)
        .round()
        .clamp(0.0, MAX_SCALED_DIFFERENCE) as u64
}

/// p50, p90, p99 and max of `histogram`, divided by `unit`.
fn quantiles(histogram: &Hdr<u64>, unit: f64) -> Quantiles {
    let at = |q: f64| histogram.value_at_quantile(q) as f64 / unit;
    Quantiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: histogram.max() as f64 / unit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::compare::Incomparable;

    fn policy() -> ShadowPolicy {
        ShadowPolicy {
            version: 3,
            percent: 25.0,
            queue: 8,
        }
    }

    #[test]
    fn an_empty_lane_reports_zeros_and_no_comparison() {
        let stats = ShadowStats::new("iris", "3");
        let report = serde_json::to_value(stats.report(&policy(), 8, 0)).expect("serializes");
        assert_eq!(
            report,
            serde_json::json!({
                "version": 3, "percent": 25.0, "queue_capacity": 8, "queued_now": 0,
                "offered": 0, "dropped": 0, "ok": 0, "errors": 0, "error_rate": 0.0,
                "latency_ms": {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0},
                "comparison": {"kind": "none"}, "incomparable": 0
            })
        );
    }

    #[test]
    fn counts_rates_and_agreement_add_up() {
        let stats = ShadowStats::new("iris", "3");
        for _ in 0..3 {
            stats.record_queued();
        }
        stats.record_dropped();
        stats.record_ok(Duration::from_millis(4));
        stats.record_ok(Duration::from_millis(8));
        stats.record_error();
        stats.record_comparison(&Comparison::Classification {
            agree: 3,
            disagree: 1,
        });
        stats.record_comparison(&Comparison::Incomparable(Incomparable::MissingInShadow));
        let report = stats.report(&policy(), 8, 2);
        assert_eq!(
            (report.offered, report.dropped, report.ok, report.errors),
            (4, 1, 2, 1)
        );
        assert_eq!(stats.queued(), 3);
        assert!((report.error_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(report.queued_now, 2);
        assert!(
            (7.9..8.1).contains(&report.latency_ms.max),
            "{:?}",
            report.latency_ms
        );
        assert!(
            (3.9..4.1).contains(&report.latency_ms.p50),
            "{:?}",
            report.latency_ms
        );
        assert_eq!(
            report.comparison,
            ComparisonReport::Classification {
                rows: 4,
                agree: 3,
                agreement_rate: 0.75
            }
        );
        assert_eq!(report.incomparable, 1);
    }

    #[test]
    fn regression_differences_are_reported_as_quantiles() {
        let stats = ShadowStats::new("price", "2");
        let abs_differences: Vec<f64> = (1..=100).map(|i| i as f64 / 100.0).collect();
        let rel_differences = vec![1e30; 100];
        stats.record_comparison(&Comparison::Regression {
            abs_differences,
            rel_differences,
        });
        let ComparisonReport::Regression {
            rows,
            abs_difference,
            rel_difference,
        } = stats.report(&policy(), 8, 0).comparison
        else {
            panic!("a regression comparison");
        };
        assert_eq!(rows, 100);
        let close = |value: f64, expected: f64| (value - expected).abs() <= expected * 1e-3;
        assert!(close(abs_difference.p50, 0.5), "{abs_difference:?}");
        assert!(close(abs_difference.p90, 0.9), "{abs_difference:?}");
        assert!(close(abs_difference.p99, 0.99), "{abs_difference:?}");
        assert!(close(abs_difference.max, 1.0), "{abs_difference:?}");
        // Beyond the cap, differences count as the cap.
        assert!(close(rel_difference.max, 1e9), "{rel_difference:?}");
        let json = serde_json::to_value(stats.report(&policy(), 8, 0)).expect("serializes");
        assert_eq!(json["comparison"]["kind"], "regression");
        assert!(json["comparison"]["abs_difference"]["p99"].is_number());
    }
}
