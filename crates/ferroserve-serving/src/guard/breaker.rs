//! The circuit breaker of one served model version: closed while the
//! version is healthy; open when the failure rate over a rolling window
//! passes a threshold (with enough requests to judge) or after consecutive
//! timeouts; after a cool-down, half-open with a few probe requests, which
//! close it again when they all succeed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferroserve_core::{ErrorKind, InferError};
use serde::{Deserialize, Serialize};

use ferroserve_core::telemetry;

/// Slices the rolling window is cut into.
const SLICES: usize = 10;

/// Longest `window_s` and `open_ms` of a breaker: one hour.
pub const MAX_BREAKER_SECONDS: u64 = 3600;

/// Most `min_requests`, `consecutive_timeouts` and `half_open_probes`.
pub const MAX_BREAKER_COUNT: u32 = 100_000;

/// Breaker settings of a model (`"breaker"` in its serving config).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Whether the breaker may open at all.
    pub enabled: bool,
    /// Failure share over the window that opens the breaker, 0 to 1.
    pub failure_rate: f64,
    /// Fewest requests in the window before the rate is judged.
    pub min_requests: u32,
    /// Length of the rolling window, in seconds.
    pub window_s: u64,
    /// Timeouts in a row that open the breaker (0: never on timeouts alone).
    pub consecutive_timeouts: u32,
    /// How long the breaker stays open before probing, in milliseconds.
    pub open_ms: u64,
    /// Probe requests let through while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            enabled: true,
            failure_rate: 0.3,
            min_requests: 20,
            window_s: 30,
            consecutive_timeouts: 5,
            open_ms: 60_000,
            half_open_probes: 3,
        }
    }
}

impl BreakerPolicy {
    /// Checks values that parse but cannot work; errors name the field.
    pub fn validate(&self) -> Result<(), InferError> {
        let invalid = |message: String| Err(InferError::invalid(format!("breaker.{message}")));
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return invalid(format!(
                "failure_rate must be above 0 and at most 1, got {}",
                ferroserve_core::json::float_text(self.failure_rate)
            ));
        }
        let max_ms = MAX_BREAKER_SECONDS * 1000;
        for (field, value, max) in [
            (
                "min_requests",
                u64::from(self.min_requests),
                u64::from(MAX_BREAKER_COUNT),
            ),
            ("window_s", self.window_s, MAX_BREAKER_SECONDS),
            ("open_ms", self.open_ms, max_ms),
            (
                "half_open_probes",
                u64::from(self.half_open_probes),
                u64::from(MAX_BREAKER_COUNT),
            ),
        ] {
            if !(1..=max).contains(&value) {
                return invalid(format!("{field} must be between 1 and {max}, got {value}"));
            }
        }
        if self.consecutive_timeouts > MAX_BREAKER_COUNT {
            return invalid(format!(
                "consecutive_timeouts must be at most {MAX_BREAKER_COUNT}, got {}",
                self.consecutive_timeouts
            ));
        }
        Ok(())
    }
}

/// The breaker's state, as shown in metrics (0, 1, 2) and model status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests get the fallback.
    Open,
    /// A few probes flow; the rest get the fallback.
    HalfOpen,
}

impl BreakerState {
    fn gauge_value(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

/// Whether a request may run on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Run it; `probe` when it is one of the half-open probes.
    Run {
        /// The request is a half-open probe.
        probe: bool,
    },
    /// Do not run it: the breaker is open (or half-open with its probes
    /// taken) for about `retry_after` more.
    Refuse {
        /// Time until the breaker may let requests through again.
        retry_after: Duration,
    },
}

/// How a request that ran went, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Success,
    /// The engine failed.
    Failure,
    /// The deadline passed.
    Timeout,
    /// Neither the version's fault nor its merit (bad input, queue full...).
    Neutral,
}

impl Outcome {
    /// Classifies a request's result.
    pub fn of<T>(result: &Result<T, InferError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => match e.kind {
                ErrorKind::Internal => Outcome::Failure,
                ErrorKind::DeadlineExceeded => Outcome::Timeout,
                _ => Outcome::Neutral,
            },
        }
    }

    /// `Neutral` instead of `Timeout` when `excused`: the deadline that
    /// passed was not the server's to blame the version for.
    pub fn excusing_timeout(self, excused: bool) -> Outcome {
        match self {
            Outcome::Timeout if excused => Outcome::Neutral,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    epoch: u64,
    successes: u32,
    failures: u32,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        since: Instant,
        admitted: u32,
        succeeded: u32,
    },
}

#[derive(Debug)]
struct Inner {
    state: State,
    origin: Instant,
    slices: [Slice; SLICES],
    consecutive_timeouts: u32,
}

/// The breaker of one served version; its lock is held for a few
/// instructions, never across an await.
#[derive(Debug)]
pub struct VersionBreaker {
    policy: BreakerPolicy,
    /// Model and version, for the log lines of state changes.
    model: String,
    version: String,
    inner: Mutex<Inner>,
    gauge: metrics::Gauge,
    opened: metrics::Counter,
}

impl VersionBreaker {
    /// A closed breaker for `model` version `version`.
    pub fn new(policy: BreakerPolicy, model: &str, version: &str) -> Self {
        let labels = [
            ("model", model.to_string()),
            ("version", version.to_string()),
        ];
        let gauge = metrics::gauge!(telemetry::BREAKER_STATE, &labels);
        gauge.set(0.0);
        VersionBreaker {
            policy,
            model: model.to_owned(),
            version: version.to_owned(),
            inner: Mutex::new(Inner {
                state: State::Closed,
                origin: Instant::now(),
                slices: [Slice::default(); SLICES],
                consecutive_timeouts: 0,
            }),
            gauge,
            opened: metrics::counter!(telemetry::BREAKER_OPENED, &labels),
        }
    }

    /// The settings it runs with.
    pub fn policy(&self) -> &BreakerPolicy {
        &self.policy
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may run now.
    pub fn admit(&self) -> Admission {
        self.admit_at(Instant::now())
    }

    /// Reports how an admitted request went.
    pub fn record(&self, admission: Admission, outcome: Outcome) {
        self.record_at(admission, outcome, Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("breaker lock is never poisoned")
    }

    fn cooldown(&self) -> Duration {
        Duration::from_millis(self.policy.open_ms)
    }

    fn admit_at(&self, now: Instant) -> Admission {
        if !self.policy.enabled {
            return Admission::Run { probe: false };
        }
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Admission::Run { probe: false },
            State::Open { until } if now < until => Admission::Refuse {
                retry_after: until - now,
            },
            State::Open { .. } => {
                self.set(
                    &mut inner,
                    State::HalfOpen {
                        since: now,
                        admitted: 1,
                        succeeded: 0,
                    },
                );
                Admission::Run { probe: true }
            }
            State::HalfOpen {
                since,
                admitted,
                succeeded,
            } => {
                if admitted < self.policy.half_open_probes {
                    inner.state = State::HalfOpen {
                        since,
                        admitted: admitted + 1,
                        succeeded,
                    };
                    Admission::Run { probe: true }
                } else if now >= since + self.cooldown() {
                    // Probes that never reported (their callers left) are
                    // replaced after another cool-down.
                    inner.state = State::HalfOpen {
                        since: now,
                        admitted: 1,
                        succeeded,
                    };
                    Admission::Run { probe: true }
                } else {
                    Admission::Refuse {
                        retry_after: self.cooldown().min(Duration::from_secs(1)),
                    }
                }
            }
        }
    }

    fn record_at(&self, admission: Admission, outcome: Outcome, now: Instant) {
        if !self.policy.enabled {
            return;
        }
        let probe = matches!(admission, Admission::Run { probe: true });
        let mut inner = self.lock();
        if outcome == Outcome::Neutral {
            // A probe that proved nothing (a client's own deadline, bad
            // input) frees its slot for another, at once.
            if let State::HalfOpen {
                since,
                admitted,
                succeeded,
            } = inner.state
            {
                if probe {
                    inner.state = State::HalfOpen {
                        since,
                        admitted: admitted.saturating_sub(1),
                        succeeded,
                    };
                }
            }
            return;
        }
        match inner.state {
            State::Closed if !probe => self.record_closed(&mut inner, outcome, now),
            State::HalfOpen {
                since,
                admitted,
                succeeded,
            } if probe => {
                if outcome == Outcome::Success {
                    if succeeded + 1 >= self.policy.half_open_probes {
                        inner.slices = [Slice::default(); SLICES];
                        inner.consecutive_timeouts = 0;
                        tracing::info!(
                            model = %self.model,
                            version = %self.version,
                            probes = self.policy.half_open_probes,
                            "circuit breaker closed: every probe succeeded"
                        );
                        self.set(&mut inner, State::Closed);
                    } else {
                        inner.state = State::HalfOpen {
                            since,
                            admitted,
                            succeeded: succeeded + 1,
                        };
                    }
                } else {
                    tracing::warn!(
                        model = %self.model,
                        version = %self.version,
                        open_ms = self.policy.open_ms,
                        "circuit breaker opened again: a probe failed"
                    );
                    self.open(&mut inner, now);
                }
            }
            // Late reports from before the last transition change nothing.
            _ => {}
        }
    }

    fn record_closed(&self, inner: &mut Inner, outcome: Outcome, now: Instant) {
        let slice_len = (self.policy.window_s.saturating_mul(1000) / SLICES as u64).max(1);
        let epoch = now.duration_since(inner.origin).as_millis() as u64 / slice_len;
        let slice = &mut inner.slices[(epoch % SLICES as u64) as usize];
        if slice.epoch != epoch {
            *slice = Slice {
                epoch,
                ..Slice::default()
            };
        }
        match outcome {
            Outcome::Success => {
                slice.successes += 1;
                inner.consecutive_timeouts = 0;
            }
            Outcome::Failure => {
                slice.failures += 1;
                inner.consecutive_timeouts = 0;
            }
            Outcome::Timeout => {
                slice.failures += 1;
                inner.consecutive_timeouts += 1;
            }
            Outcome::Neutral => return,
        }
        let live = inner
            .slices
            .iter()
            .filter(|s| s.epoch + SLICES as u64 > epoch);
        let (total, failures) = live.fold((0u64, 0u64), |(t, f), s| {
            (
                t + u64::from(s.successes) + u64::from(s.failures),
                f + u64::from(s.failures),
            )
        });
        let rate_trips = total >= u64::from(self.policy.min_requests)
            && failures as f64 >= self.policy.failure_rate * total as f64;
        let timeouts_trip = self.policy.consecutive_timeouts > 0
            && inner.consecutive_timeouts >= self.policy.consecutive_timeouts;
        if rate_trips || timeouts_trip {
            tracing::warn!(
                model = %self.model,
                version = %self.version,
                failures,
                total,
                consecutive_timeouts = inner.consecutive_timeouts,
                open_ms = self.policy.open_ms,
                "circuit breaker opened"
            );
            self.open(inner, now);
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        self.opened.increment(1);
        self.set(
            inner,
            State::Open {
                until: now + self.cooldown(),
            },
        );
    }

    fn set(&self, inner: &mut Inner, state: State) {
        inner.state = state;
        let shown = match state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        };
        self.gauge.set(shown.gauge_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            min_requests: 10,
            open_ms: 1000,
            half_open_probes: 2,
            consecutive_timeouts: 3,
            ..BreakerPolicy::default()
        }
    }

    const RUN: Admission = Admission::Run { probe: false };

    #[test]
    fn stays_closed_below_the_minimum_then_opens_on_the_failure_rate() {
        let breaker = VersionBreaker::new(policy(), "m", "1");
        let t0 = Instant::now();
        for _ in 0..9 {
            breaker.record_at(RUN, Outcome::Failure, t0);
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "9 < min_requests");
        breaker.record_at(RUN, Outcome::Failure, t0);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(matches!(breaker.admit_at(t0), Admission::Refuse { .. }));
    }

    #[test]
    fn a_low_failure_rate_keeps_it_closed() {
        let breaker = VersionBreaker::new(policy(), "m", "1");
        let t0 = Instant::now();
        for i in 0..100 {
            let outcome = if i % 5 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            breaker.record_at(RUN, outcome, t0);
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "20% < 30%");
        for _ in 0..100 {
            breaker.record_at(RUN, Outcome::Neutral, t0);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let breaker = VersionBreaker::new(policy(), "m", "1");
        let t0 = Instant::now();
        for _ in 0..9 {
            breaker.record_at(RUN, Outcome::Failure, t0);
        }
        let later = t0 + Duration::from_secs(31);
        for _ in 0..9 {
            breaker.record_at(RUN, Outcome::Success, later);
        }
        breaker.record_at(RUN, Outcome::Failure, later);
        assert_eq!(breaker.state(), BreakerState::Closed, "1 failure in 10");
    }

    #[test]
    fn consecutive_timeouts_open_it() {
        let breaker = VersionBreaker::new(policy(), "m", "1");
        let t0 = Instant::now();
        breaker.record_at(RUN, Outcome::Timeout, t0);
        breaker.record_at(RUN, Outcome::Timeout, t0);
        breaker.record_at(RUN, Outcome::Success, t0);
        breaker.record_at(RUN, Outcome::Timeout, t0);
        breaker.record_at(RUN, Outcome::Timeout, t0);
        assert_eq!(breaker.state(), BreakerState::Closed, "a success resets");
        breaker.record_at(RUN, Outcome::Timeout, t0);
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn half_open_probes_close_it_or_open_it_again() {
        let breaker = VersionBreaker::new(policy(), "m", "1");
        let t0 = Instant::now();
        for _ in 0..3 {
            breaker.record_at(RUN, Outcome::Timeout, t0);
        }
        let t1 = t0 + Duration::from_millis(1000);
        let probe = breaker.admit_at(t1);
        assert_eq!(probe, Admission::Run { probe: true });
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.admit_at(t1), Admission::Run { probe: true });
        assert!(
            matches!(breaker.admit_at(t1), Admission::Refuse { .. }),
            "only two probes"
        );
        breaker.record_at(RUN, Outcome::Failure, t1);
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen,
            "non-probes do not count"
        );
        breaker.record_at(probe, Outcome::Failure, t1);
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "a failed probe reopens"
        );

        let t2 = t1 + Duration::from_millis(1000);
        let first = breaker.admit_at(t2);
        let second = breaker.admit_at(t2);
        breaker.record_at(first, Outcome::Success, t2);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        breaker.record_at(second, Outcome::Success, t2);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit_at(t2), RUN);
    }

    #[test]
    fn a_neutral_probe_frees_its_slot_at_once() {
        let breaker = VersionBreaker::new(policy(), "m", "1");
        let t0 = Instant::now();
        for _ in 0..3 {
            breaker.record_at(RUN, Outcome::Timeout, t0);
        }
        let t1 = t0 + Duration::from_millis(1000);
        let first = breaker.admit_at(t1);
        let second = breaker.admit_at(t1);
        assert!(matches!(breaker.admit_at(t1), Admission::Refuse { .. }));
        // The client's own short deadline passed: no verdict on the model.
        breaker.record_at(first, Outcome::Timeout.excusing_timeout(true), t1);
        let third = breaker.admit_at(t1);
        assert_eq!(third, Admission::Run { probe: true });
        breaker.record_at(second, Outcome::Success, t1);
        breaker.record_at(third, Outcome::Success, t1);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn lost_probes_are_replaced_and_a_disabled_breaker_never_opens() {
        let breaker = VersionBreaker::new(policy(), "m", "1");
        let t0 = Instant::now();
        for _ in 0..3 {
            breaker.record_at(RUN, Outcome::Timeout, t0);
        }
        let t1 = t0 + Duration::from_millis(1000);
        breaker.admit_at(t1);
        breaker.admit_at(t1);
        assert!(matches!(breaker.admit_at(t1), Admission::Refuse { .. }));
        let t2 = t1 + Duration::from_millis(1000);
        assert_eq!(breaker.admit_at(t2), Admission::Run { probe: true });

        let off = VersionBreaker::new(
            BreakerPolicy {
                enabled: false,
                ..policy()
            },
            "m",
            "2",
        );
        for _ in 0..50 {
            off.record_at(RUN, Outcome::Failure, t0);
        }
        assert_eq!(off.state(), BreakerState::Closed);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = BreakerPolicy {
            failure_rate: 0.0,
            ..BreakerPolicy::default()
        };
        let message = bad.validate().unwrap_err().message;
        assert!(message.contains("breaker.failure_rate"), "{message}");
        let message = |policy: BreakerPolicy| policy.validate().unwrap_err().message;
        let base = BreakerPolicy::default;
        assert_eq!(
            message(BreakerPolicy {
                min_requests: 0,
                ..base()
            }),
            "breaker.min_requests must be between 1 and 100000, got 0"
        );
        assert!(message(BreakerPolicy {
            open_ms: 3_600_001,
            ..base()
        })
        .contains("breaker.open_ms must be between 1 and 3600000"));
        assert!(message(BreakerPolicy {
            window_s: 3601,
            ..base()
        })
        .contains("breaker.window_s must be between 1 and 3600"));
        assert!(message(BreakerPolicy {
            consecutive_timeouts: 100_001,
            ..base()
        })
        .contains("breaker.consecutive_timeouts must be at most 100000"));
        BreakerPolicy::default()
            .validate()
            .expect("defaults are valid");
    }
}
