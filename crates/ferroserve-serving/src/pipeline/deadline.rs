//! The deadline of one call and who set it: the server (the model's or the
//! server's default) or the client (a header or the body shortened it).
//! Only a server-set deadline that passes while the model works says
//! anything about the model's health, so only that one counts as a timeout
//! for the circuit breaker.

use std::time::{Duration, Instant};

/// Who chose a call's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBy {
    /// The model's or the server's default.
    Server,
    /// The client, shortening the default (or setting one where there is
    /// no default: background calls).
    Client,
}

/// When a call must be answered by, and who chose that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The instant.
    pub at: Instant,
    /// Who chose it.
    pub set_by: SetBy,
}

impl Deadline {
    /// The tightest of the server's `default` and the client's timeouts
    /// (`client`), counted from `start`; a client timeout only counts as
    /// the client's when it is strictly shorter than the default.
    pub fn tightest(
        start: Instant,
        default: Option<Duration>,
        client: impl IntoIterator<Item = Option<Duration>>,
    ) -> Option<Deadline> {
        let client = client.into_iter().flatten().min();
        let (timeout, set_by) = match (default, client) {
            (Some(default), Some(client)) if client < default => (client, SetBy::Client),
            (Some(default), _) => (default, SetBy::Server),
            (None, Some(client)) => (client, SetBy::Client),
            (None, None) => return None,
        };
        Some(Deadline {
            at: start + timeout,
            set_by,
        })
    }

    /// Whether its expiry, for a request handed to the model at `sent`,
    /// blames the model: the server set it and it had not yet passed.
    pub fn blames_model(&self, sent: Instant) -> bool {
        self.set_by == SetBy::Server && sent < self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_shorter_client_timeout_makes_the_deadline_the_clients() {
        let start = Instant::now();
        let d = Deadline::tightest(start, Some(100 * MS), [Some(MS), None]).expect("deadline");
        assert_eq!((d.at, d.set_by), (start + MS, SetBy::Client));
        assert!(!d.blames_model(start));
    }

    #[test]
    fn a_client_timeout_at_or_above_the_default_leaves_it_the_servers() {
        let start = Instant::now();
        for client in [None, Some(100 * MS), Some(500 * MS)] {
            let d = Deadline::tightest(start, Some(100 * MS), [client]).expect("deadline");
            assert_eq!((d.at, d.set_by), (start + 100 * MS, SetBy::Server));
            assert!(d.blames_model(start));
        }
    }

    #[test]
    fn a_server_deadline_already_past_when_sent_does_not_blame_the_model() {
        let start = Instant::now();
        let d = Deadline::tightest(start, Some(MS), [None]).expect("deadline");
        assert!(!d.blames_model(start + MS));
    }

    #[test]
    fn without_a_default_any_deadline_is_the_clients() {
        let start = Instant::now();
        assert_eq!(Deadline::tightest(start, None, [None, None]), None);
        let d = Deadline::tightest(start, None, [Some(MS)]).expect("deadline");
        assert_eq!(d.set_by, SetBy::Client);
    }
}
