//! Triton-compatible statistics of a served version: the request outcomes
//! counted by the pipeline, joined with the batcher's timings, in the
//! shape (and JSON field names) of Triton's statistics extension.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use ferroserve_batcher::stats::{BatchStats, BatcherStats, StatCount, Tally};

/// Counts and durations of one version's requests (Triton's
/// `$inference_stats`). Every count is of requests; each request in a batch
/// carries its whole batch's `compute_*` time, as Triton counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InferenceStats {
    /// Answered requests and their whole time in the server.
    pub success: StatCount,
    /// Failed requests and their whole time in the server.
    pub fail: StatCount,
    /// Waits in the batch queue.
    pub queue: StatCount,
    /// Stacking inputs into batches.
    pub compute_input: StatCount,
    /// Engine runs.
    pub compute_infer: StatCount,
    /// Splitting outputs and answering.
    pub compute_output: StatCount,
    /// Result-cache lookups that found an answer.
    pub cache_hit: StatCount,
    /// Result-cache lookups that found none.
    pub cache_miss: StatCount,
}

/// Statistics of one model version (Triton's `$model_stat`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VersionStatistics {
    /// Model name.
    pub name: String,
    /// Version label.
    pub version: String,
    /// When the last request arrived, in milliseconds since the Unix epoch
    /// (0: none yet).
    pub last_inference: u64,
    /// Rows run on the engine (cache hits not included).
    pub inference_count: u64,
    /// Engine runs (batches).
    pub execution_count: u64,
    /// Per-request counts and durations.
    pub inference_stats: InferenceStats,
    /// Per batch size, ascending.
    pub batch_stats: Vec<BatchStats>,
}

/// The request outcomes of one served version, counted by the pipeline.
#[derive(Debug, Default)]
pub struct RequestStats {
    success: Tally,
    fail: Tally,
    cache_hit: Tally,
    cache_miss: Tally,
    last_inference_ms: AtomicU64,
}

impl RequestStats {
    /// Counts one request that ended after `took`, answered or not.
    pub fn record(&self, succeeded: bool, took: Duration) {
        let tally = if succeeded { &self.success } else { &self.fail };
        tally.add(1, took);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        self.last_inference_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Counts one result-cache lookup that took `took`.
    pub fn cache_lookup(&self, hit: bool, took: Duration) {
        let tally = if hit {
            &self.cache_hit
        } else {
            &self.cache_miss
        };
        tally.add(1, took);
    }

    /// These outcomes joined with the batcher's counts, for `name` and
    /// `version`.
    pub fn join(&self, name: &str, version: &str, batcher: BatcherStats) -> VersionStatistics {
        VersionStatistics {
            name: name.to_string(),
            version: version.to_string(),
            last_inference: self.last_inference_ms.load(Ordering::Relaxed),
            inference_count: batcher.inference_count,
            execution_count: batcher.execution_count,
            inference_stats: InferenceStats {
                success: self.success.read(),
                fail: self.fail.read(),
                queue: batcher.queue,
                compute_input: batcher.compute_input,
                compute_infer: batcher.compute_infer,
                compute_output: batcher.compute_output,
                cache_hit: self.cache_hit.read(),
                cache_miss: self.cache_miss.read(),
            },
            batch_stats: batcher.batch_stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_apart() {
        let stats = RequestStats::default();
        stats.record(true, Duration::from_millis(2));
        stats.record(true, Duration::from_millis(3));
        stats.record(false, Duration::from_millis(1));
        stats.cache_lookup(false, Duration::from_micros(5));
        let joined = stats.join("m", "1", BatcherStats::default());
        let counts = &joined.inference_stats;
        assert_eq!(
            counts.success,
            StatCount {
                count: 2,
                ns: 5_000_000
            }
        );
        assert_eq!(
            counts.fail,
            StatCount {
                count: 1,
                ns: 1_000_000
            }
        );
        assert_eq!(
            counts.cache_miss,
            StatCount {
                count: 1,
                ns: 5_000
            }
        );
        assert_eq!(counts.cache_hit.count, 0);
        assert!(joined.last_inference > 0, "the last request's time is set");
    }

    #[test]
    fn json_uses_triton_field_names() {
        let joined = RequestStats::default().join("m", "1", BatcherStats::default());
        let json = serde_json::to_value(&joined).expect("serializes");
        let zero = serde_json::json!({"count": 0, "ns": 0});
        assert_eq!(
            json,
            serde_json::json!({
                "name": "m",
                "version": "1",
                "last_inference": 0,
                "inference_count": 0,
                "execution_count": 0,
                "inference_stats": {
                    "success": zero, "fail": zero, "queue": zero,
                    "compute_input": zero, "compute_infer": zero, "compute_output": zero,
                    "cache_hit": zero, "cache_miss": zero,
                },
                "batch_stats": [],
            })
        );
    }
}
