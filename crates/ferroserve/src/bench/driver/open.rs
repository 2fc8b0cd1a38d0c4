//! Open loop: requests at fixed intended times (request i at start + i/rate),
//! whatever the server's pace; latency counts from the intended time, so
//! queueing in the client or the server is never hidden (no coordinated
//! omission). A cap on requests in flight bounds the client; a request that
//! cannot go out on time is counted late.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::Semaphore;

use super::{PhaseResult, Recorder, Shared, Until};

/// A request sent more than this after its intended time counts as late
/// (tokio's timer alone can be up to ~1 ms behind).
pub const LATE_AFTER: Duration = Duration::from_millis(2);

/// Offset of request `i` from the start of the schedule.
pub fn intended_offset(i: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate)
}

/// Requests the schedule holds: all those due before `until` ends.
pub fn scheduled_count(until: Until, rate: f64) -> u64 {
    match until {
        Until::Count(n) => n,
        // Request i is due at i/rate < d, i.e. i < d·rate.
        Until::Elapsed(d) => (d.as_secs_f64() * rate).ceil() as u64,
    }
}

/// Sends at `rate` per second until `until`, at most `max_in_flight` at once.
pub(super) async fn run(
    shared: &Arc<Shared>,
    rate: f64,
    max_in_flight: usize,
    until: Until,
    done: &Arc<AtomicU64>,
    seed: u64,
) -> PhaseResult {
    let total = scheduled_count(until, rate);
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut late, mut max_lag) = (0, Duration::ZERO);
    let start = Instant::now();
    for i in 0..total {
        let intended = start + intended_offset(i, rate);
        tokio::time::sleep_until(intended.into()).await;
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        };
        let lag = intended.elapsed();
        max_lag = max_lag.max(lag);
        if lag > LATE_AFTER {
            late += 1;
        }
        let (model, body) = shared.workload.pick(&mut rng);
        let delay = shared.client.roll_delay(&mut rng);
        let (shared, recorder, done) = (shared.clone(), recorder.clone(), done.clone());
        let (url, body) = (model.infer_url.clone(), body.clone());
        tokio::spawn(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let outcome = shared.client.send(&url, &body).await;
            let latency = intended.elapsed();
            recorder
                .lock()
                .expect("no recorder lock holder panics")
                .record(outcome, latency);
            done.fetch_add(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    // Every request has finished once all slots are free again.
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let _all = slots
        .acquire_many(all)
        .await
        .expect("the semaphore is never closed");
    let elapsed = start.elapsed();
    let mut recorder = std::mem::take(&mut *recorder.lock().expect("no lock holder panics"));
    recorder.late = late;
    recorder.max_send_lag_us = u64::try_from(max_lag.as_micros()).unwrap_or(u64::MAX);
    PhaseResult {
        recorder,
        elapsed,
        sent: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spaces_requests_evenly() {
        assert_eq!(intended_offset(0, 200.0), Duration::ZERO);
        assert_eq!(intended_offset(1, 200.0), Duration::from_millis(5));
        assert_eq!(intended_offset(400, 200.0), Duration::from_secs(2));
        // Fractional rates: one request every 4 s.
        assert_eq!(intended_offset(3, 0.25), Duration::from_secs(12));
    }

    #[test]
    fn schedule_holds_the_requests_due_in_the_window() {
        let two_s = Until::Elapsed(Duration::from_secs(2));
        // Due at 0, 5 ms, ..., 1995 ms: 400 requests.
        assert_eq!(scheduled_count(two_s, 200.0), 400);
        // Due at 0, 0.4 s, 0.8 s, 1.2 s, 1.6 s.
        assert_eq!(scheduled_count(two_s, 2.5), 5);
        assert_eq!(scheduled_count(Until::Count(7), 1000.0), 7);
        let last = intended_offset(scheduled_count(two_s, 3.0) - 1, 3.0);
        assert!(last < Duration::from_secs(2));
    }
}
