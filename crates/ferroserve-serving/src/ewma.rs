//! Exponentially weighted moving averages of measured costs (inference
//! time, Redis round trip), lock-free so that the request path can update them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of the newest sample.
const ALPHA: f64 = 0.1;

/// A moving average of durations; empty until the first sample.
#[derive(Debug, Default)]
pub struct Ewma {
    /// `f64` seconds as bits; 0 means no sample yet.
    bits: AtomicU64,
}

impl Ewma {
    /// Adds one sample.
    pub fn record(&self, sample: Duration) {
        let x = sample.as_secs_f64().max(f64::MIN_POSITIVE);
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if bits == 0 {
                    x
                } else {
                    old + ALPHA * (x - old)
                };
                Some(new.to_bits())
            });
    }

    /// The current average, if any sample was recorded.
    pub fn get(&self) -> Option<Duration> {
        match self.bits.load(Ordering::Relaxed) {
            0 => None,
            bits => Some(Duration::from_secs_f64(f64::from_bits(bits))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_empty_takes_the_first_sample_then_moves_slowly() {
        let ewma = Ewma::default();
        assert_eq!(ewma.get(), None);
        ewma.record(Duration::from_micros(100));
        assert_eq!(ewma.get(), Some(Duration::from_micros(100)));
        ewma.record(Duration::from_micros(200));
        let now = ewma.get().expect("has samples").as_secs_f64() * 1e6;
        assert!((now - 110.0).abs() < 0.01, "{now}");
    }
}
