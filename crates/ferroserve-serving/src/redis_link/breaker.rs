//! The circuit breaker around Redis: open after consecutive failures, one
//! half-open probe after a cool-down, closed again on the first success.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferroserve_core::telemetry;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { since: Instant },
}

/// Breaker state; the lock is held for a few instructions, never across an await.
#[derive(Debug)]
pub(crate) struct RedisBreaker {
    state: Mutex<State>,
    failures_to_open: u32,
    cooldown: Duration,
}

impl RedisBreaker {
    pub(crate) fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        metrics::gauge!(telemetry::REDIS_BREAKER_STATE).set(0.0);
        RedisBreaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            failures_to_open: failures_to_open.max(1),
            cooldown,
        }
    }

    /// Whether a Redis call may be made now. After the cool-down one caller
    /// gets through as the probe; a probe that never reports (its request
    /// was cancelled) is replaced after another cool-down.
    pub(crate) fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("breaker lock is never poisoned");
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { since: until } if now >= until => {
                Self::set(
                    &mut state,
                    State::HalfOpen {
                        since: now + self.cooldown,
                    },
                );
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    /// Whether the breaker is closed (Redis believed healthy).
    #[cfg(test)]
    pub(crate) fn is_closed(&self) -> bool {
        matches!(
            *self.state.lock().expect("breaker lock is never poisoned"),
            State::Closed { .. }
        )
    }

    /// A Redis call succeeded.
    pub(crate) fn success(&self) {
        let mut state = self.state.lock().expect("breaker lock is never poisoned");
        if *state != (State::Closed { failures: 0 }) {
            Self::set(&mut state, State::Closed { failures: 0 });
        }
    }

    /// A Redis call failed or timed out; returns true when this opened the breaker.
    pub(crate) fn failure(&self) -> bool {
        self.failure_at(Instant::now())
    }

    fn failure_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("breaker lock is never poisoned");
        let open = State::Open {
            until: now + self.cooldown,
        };
        match *state {
            State::Closed { failures } if failures + 1 >= self.failures_to_open => {
                Self::set(&mut state, open);
                true
            }
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::HalfOpen { .. } => {
                Self::set(&mut state, open);
                true
            }
            State::Open { .. } => false,
        }
    }

    fn set(state: &mut State, new: State) {
        *state = new;
        let value = match new {
            State::Closed { .. } => 0.0,
            State::Open { .. } => 1.0,
            State::HalfOpen { .. } => 2.0,
        };
        metrics::gauge!(telemetry::REDIS_BREAKER_STATE).set(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_probes_once_and_closes_on_success() {
        let breaker = RedisBreaker::new(3, Duration::from_millis(100));
        let t0 = Instant::now();
        assert!(!breaker.failure_at(t0));
        breaker.success();
        assert!(!breaker.failure_at(t0));
        assert!(!breaker.failure_at(t0));
        assert!(breaker.failure_at(t0), "third consecutive failure opens");
        assert!(!breaker.allow_at(t0 + Duration::from_millis(50)));
        let later = t0 + Duration::from_millis(100);
        assert!(breaker.allow_at(later), "one probe after the cool-down");
        assert!(!breaker.allow_at(later), "only one probe");
        breaker.success();
        assert!(breaker.is_closed());
        assert!(breaker.allow_at(later));
    }

    #[test]
    fn failed_probe_reopens_and_lost_probe_is_replaced() {
        let breaker = RedisBreaker::new(1, Duration::from_millis(100));
        let t0 = Instant::now();
        assert!(breaker.failure_at(t0));
        let t1 = t0 + Duration::from_millis(100);
        assert!(breaker.allow_at(t1));
        assert!(breaker.failure_at(t1), "failed probe opens again");
        assert!(!breaker.allow_at(t1 + Duration::from_millis(99)));
        let t2 = t1 + Duration::from_millis(100);
        assert!(breaker.allow_at(t2));
        assert!(!breaker.allow_at(t2 + Duration::from_millis(50)));
        assert!(
            breaker.allow_at(t2 + Duration::from_millis(100)),
            "a probe that never reported is replaced"
        );
    }
}
