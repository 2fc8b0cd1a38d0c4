//! Sends the load: one phase (warm-up or a measured run) in closed or open
//! loop, recording latencies and failures.

mod client;
mod closed;
mod grpc;
mod open;
mod progress;
mod record;

use std::sync::Arc;
use std::time::Duration;

pub use client::BenchClient;
pub use progress::PhaseProgress;
pub use record::Recorder;

use super::settings::{Load, Stop};
use super::workload::Workload;

/// What every load task shares.
#[derive(Debug)]
pub struct Shared {
    /// The HTTP and gRPC clients.
    pub client: BenchClient,
    /// Models and bodies.
    pub workload: Workload,
}

/// When a phase ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Until {
    /// After this long (requests in flight then are still waited for).
    Elapsed(Duration),
    /// After this many requests.
    Count(u64),
}

impl From<Stop> for Until {
    fn from(stop: Stop) -> Until {
        match stop {
            Stop::DurationS(s) => Until::Elapsed(Duration::from_secs_f64(s)),
            Stop::Requests(n) => Until::Count(n),
        }
    }
}

/// What a phase did.
#[derive(Debug)]
pub struct PhaseResult {
    /// Latencies and failures.
    pub recorder: Recorder,
    /// From the first send (or intended send) to the last answer.
    pub elapsed: Duration,
    /// Requests sent.
    pub sent: u64,
}

/// Runs one phase; `seed` makes its key picks and delays reproducible.
pub async fn run_phase(
    shared: &Arc<Shared>,
    load: &Load,
    until: Until,
    progress: &PhaseProgress,
    seed: u64,
) -> PhaseResult {
    match *load {
        Load::Closed { concurrency } => {
            closed::run(shared, concurrency, until, &progress.done, seed).await
        }
        Load::Open {
            rate,
            max_in_flight,
        } => open::run(shared, rate, max_in_flight, until, &progress.done, seed).await,
    }
}
