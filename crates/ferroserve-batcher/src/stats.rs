//! Triton-style statistics of one batcher: how long requests waited and how
//! long their batches took to assemble, run and split, counted in atomics
//! by the worker threads (one short lock per batch for the per-size table).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A count and the nanoseconds summed over it (Triton's `$duration_stat`:
/// `{"count": N, "ns": T}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatCount {
    /// How many times it happened.
    pub count: u64,
    /// Nanoseconds summed over every time.
    pub ns: u64,
}

/// A [`StatCount`] that threads add to without a lock.
#[derive(Debug, Default)]
pub struct Tally {
    count: AtomicU64,
    ns: AtomicU64,
}

impl Tally {
    /// Counts `times` occurrences that took `took` each.
    pub fn add(&self, times: u64, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.count.fetch_add(times, Ordering::Relaxed);
        self.ns
            .fetch_add(ns.saturating_mul(times), Ordering::Relaxed);
    }

    /// What was counted so far.
    pub fn read(&self) -> StatCount {
        StatCount {
            count: self.count.load(Ordering::Relaxed),
            ns: self.ns.load(Ordering::Relaxed),
        }
    }

    /// Forgets what was counted.
    fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.ns.store(0, Ordering::Relaxed);
    }
}

/// Engine runs of one batch size (Triton's `$batch_stats`): how many, and
/// how long their assembly, run and split took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// Rows in each of these runs.
    pub batch_size: u64,
    /// Stacking the requests' inputs into one batch.
    pub compute_input: StatCount,
    /// The engine run.
    pub compute_infer: StatCount,
    /// Cutting the outputs back into each request's rows.
    pub compute_output: StatCount,
}

/// How long the phases of one engine run took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunTimes {
    pub(crate) input: Duration,
    pub(crate) infer: Duration,
    pub(crate) output: Duration,
}

/// Times the phases of one engine run as they end, one after another.
pub(crate) struct RunTimer {
    last: Instant,
    input: Duration,
    infer: Duration,
}

impl RunTimer {
    /// A run whose input phase began at `started`.
    pub(crate) fn from(started: Instant) -> Self {
        RunTimer {
            last: started,
            input: Duration::ZERO,
            infer: Duration::ZERO,
        }
    }

    /// The inputs are stacked; the engine run starts.
    pub(crate) fn input_done(&mut self) {
        self.input = self.lap();
    }

    /// The engine run ended; splitting and answering start.
    pub(crate) fn infer_done(&mut self) {
        self.infer = self.lap();
    }

    /// Every request is answered.
    pub(crate) fn finish(mut self) -> RunTimes {
        let output = self.lap();
        RunTimes {
            input: self.input,
            infer: self.infer,
            output,
        }
    }

    fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let took = now.saturating_duration_since(self.last);
        self.last = now;
        took
    }
}

/// What a batcher counted so far, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Rows run on the engine (Triton's `inference_count`).
    pub inference_count: u64,
    /// Engine runs (Triton's `execution_count`).
    pub execution_count: u64,
    /// Requests' waits from entering the queue until their batch started.
    pub queue: StatCount,
    /// Per request: the assembly of the batch it ran in.
    pub compute_input: StatCount,
    /// Per request: the engine run of its batch.
    pub compute_infer: StatCount,
    /// Per request: splitting its batch's outputs and answering.
    pub compute_output: StatCount,
    /// Per batch size, ascending.
    pub batch_stats: Vec<BatchStats>,
}

/// The counters one batcher's workers add to.
#[derive(Debug, Default)]
pub(crate) struct StatsCollector {
    inference_count: AtomicU64,
    execution_count: AtomicU64,
    queue: Tally,
    compute_input: Tally,
    compute_infer: Tally,
    compute_output: Tally,
    by_batch_size: Mutex<BTreeMap<u64, BatchStats>>,
}

impl StatsCollector {
    /// Counts one request's wait in the queue.
    pub(crate) fn queued(&self, waited: Duration) {
        self.queue.add(1, waited);
    }

    /// Counts one successful engine run of `rows` rows that answered
    /// `requests` requests.
    pub(crate) fn ran(&self, rows: usize, requests: usize, times: RunTimes) {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let requests = u64::try_from(requests).unwrap_or(u64::MAX);
        self.inference_count.fetch_add(rows, Ordering::Relaxed);
        self.execution_count.fetch_add(1, Ordering::Relaxed);
        self.compute_input.add(requests, times.input);
        self.compute_infer.add(requests, times.infer);
        self.compute_output.add(requests, times.output);
        let mut sizes = self
            .by_batch_size
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = sizes.entry(rows).or_insert_with(|| BatchStats {
            batch_size: rows,
            ..BatchStats::default()
        });
        add_once(&mut entry.compute_input, times.input);
        add_once(&mut entry.compute_infer, times.infer);
        add_once(&mut entry.compute_output, times.output);
    }

    /// What was counted so far.
    pub(crate) fn read(&self) -> BatcherStats {
        let batch_stats = self
            .by_batch_size
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .copied()
            .collect();
        BatcherStats {
            inference_count: self.inference_count.load(Ordering::Relaxed),
            execution_count: self.execution_count.load(Ordering::Relaxed),
            queue: self.queue.read(),
            compute_input: self.compute_input.read(),
            compute_infer: self.compute_infer.read(),
            compute_output: self.compute_output.read(),
            batch_stats,
        }
    }

    /// Forgets everything counted (after the warm-up runs, which are not
    /// traffic).
    pub(crate) fn reset(&self) {
        self.inference_count.store(0, Ordering::Relaxed);
        self.execution_count.store(0, Ordering::Relaxed);
        for tally in [
            &self.queue,
            &self.compute_input,
            &self.compute_infer,
            &self.compute_output,
        ] {
            tally.reset();
        }
        self.by_batch_size
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

fn add_once(stat: &mut StatCount, took: Duration) {
    stat.count += 1;
    stat.ns = stat
        .ns
        .saturating_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(ms: u64) -> RunTimes {
        RunTimes {
            input: Duration::from_millis(ms),
            infer: Duration::from_millis(2 * ms),
            output: Duration::from_millis(3 * ms),
        }
    }

    #[test]
    fn runs_count_rows_requests_and_sizes() {
        let stats = StatsCollector::default();
        stats.queued(Duration::from_millis(1));
        stats.queued(Duration::from_millis(2));
        stats.ran(4, 2, times(1));
        stats.ran(1, 1, times(2));
        let read = stats.read();
        assert_eq!(read.inference_count, 5);
        assert_eq!(read.execution_count, 2);
        assert_eq!(
            read.queue,
            StatCount {
                count: 2,
                ns: 3_000_000
            }
        );
        // Each request carries its whole batch's time, as Triton counts.
        assert_eq!(
            read.compute_infer,
            StatCount {
                count: 3,
                ns: 8_000_000
            }
        );
        let sizes: Vec<u64> = read.batch_stats.iter().map(|b| b.batch_size).collect();
        assert_eq!(sizes, [1, 4]);
        assert_eq!(
            read.batch_stats[1].compute_output,
            StatCount {
                count: 1,
                ns: 3_000_000
            }
        );
    }

    #[test]
    fn reset_forgets_everything() {
        let stats = StatsCollector::default();
        stats.queued(Duration::from_millis(1));
        stats.ran(2, 1, times(1));
        stats.reset();
        assert_eq!(stats.read(), BatcherStats::default());
    }

    #[test]
    fn json_uses_triton_field_names() {
        let batch = BatchStats {
            batch_size: 8,
            ..BatchStats::default()
        };
        let json = serde_json::to_value(batch).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "batch_size": 8,
                "compute_input": {"count": 0, "ns": 0},
                "compute_infer": {"count": 0, "ns": 0},
                "compute_output": {"count": 0, "ns": 0},
            })
        );
    }
}
