//! What one phase of load recorded: an HDR histogram of the latencies of
//! answered requests (µs) and the failures by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency recorded exactly, in µs (one hour); slower ones are
/// clamped to it.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Latency histogram and failure counts.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latencies of successful requests, in µs.
    pub histogram: Histogram<u64>,
    /// Failures by kind: the HTTP status code, or `timeout`, `connect`, `other`.
    pub errors: BTreeMap<String, u64>,
    /// Requests sent more than [`super::open::LATE_AFTER`] after their intended time (open loop).
    pub late: u64,
    /// Largest delay between a request's intended and actual send time, in µs (open loop).
    pub max_send_lag_us: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            histogram: new_histogram(),
            errors: BTreeMap::new(),
            late: 0,
            max_send_lag_us: 0,
        }
    }
}

/// An empty latency histogram, 1 µs to one hour at 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

impl Recorder {
    /// Records one finished request.
    pub fn record(&mut self, outcome: Result<(), String>, latency: Duration) {
        match outcome {
            Ok(()) => {
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.histogram
                    .saturating_record(us.clamp(1, MAX_LATENCY_US));
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    /// Successful requests.
    pub fn ok(&self) -> u64 {
        self.histogram.len()
    }

    /// Failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` to this one.
    pub fn merge(&mut self, other: &Recorder) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms of the same bounds add");
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        self.late += other.late;
        self.max_send_lag_us = self.max_send_lag_us.max(other.max_send_lag_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Recorder::default();
        a.record(Ok(()), Duration::from_micros(250));
        a.record(Err("503".into()), Duration::from_micros(10));
        let mut b = Recorder::default();
        b.record(Ok(()), Duration::from_millis(2));
        b.record(Err("503".into()), Duration::ZERO);
        b.record(Err("timeout".into()), Duration::ZERO);
        a.merge(&b);
        assert_eq!((a.ok(), a.failed()), (2, 3));
        assert_eq!(a.errors["503"], 2);
        assert!(a.histogram.max() >= 1999);
    }
}
