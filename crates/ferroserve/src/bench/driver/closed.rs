//! Closed loop: N clients, each sending its next request as soon as the
//! previous one is answered; latency counts from when a client is ready to
//! send (an injected delay included).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::{PhaseResult, Recorder, Shared, Until};

/// Runs `concurrency` clients until `until`.
pub(super) async fn run(
    shared: &Arc<Shared>,
    concurrency: usize,
    until: Until,
    done: &Arc<AtomicU64>,
    seed: u64,
) -> PhaseResult {
    let start = Instant::now();
    let deadline = match until {
        Until::Elapsed(d) => Some(start + d),
        Until::Count(_) => None,
    };
    let limit = match until {
        Until::Count(n) => n,
        Until::Elapsed(_) => u64::MAX,
    };
    // Tickets taken before each send, so a request count is exact.
    let tickets = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|i| {
            let (shared, tickets, done) = (shared.clone(), tickets.clone(), done.clone());
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(seed.wrapping_add(i));
                let mut recorder = Recorder::default();
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d)
                        || tickets.fetch_add(1, Ordering::Relaxed) >= limit
                    {
                        break;
                    }
                    let (model, body) = shared.workload.pick(&mut rng);
                    let began = Instant::now();
                    if let Some(delay) = shared.client.roll_delay(&mut rng) {
                        tokio::time::sleep(delay).await;
                    }
                    let outcome = shared.client.send(&model.infer_url, body).await;
                    recorder.record(outcome, began.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                }
                recorder
            })
        })
        .collect();
    let mut recorder = Recorder::default();
    for task in tasks {
        recorder.merge(&task.await.expect("a load task does not panic"));
    }
    let elapsed = start.elapsed();
    PhaseResult {
        sent: recorder.ok() + recorder.failed(),
        recorder,
        elapsed,
    }
}
