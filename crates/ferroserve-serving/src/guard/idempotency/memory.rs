//! The in-process key store: a moka cache of entries, each either in flight
//! (with a channel its duplicates wait on) or done (with the answer).

use std::sync::Arc;
use std::time::Instant;

use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use tokio::sync::watch;

use super::{Held, IdempotencyConfig, Outcome, StoredResponse};

/// Where the first request of a key stands.
#[derive(Debug, Clone)]
enum Phase {
    InFlight,
    Done(Arc<StoredResponse>),
    /// Ended without an answer to keep: the next claim replaces the entry.
    Released,
}

#[derive(Debug)]
struct Entry {
    fingerprint: [u8; 32],
    phase: watch::Sender<Phase>,
}

impl Entry {
    fn released(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::Released)
    }
}

/// Keys of this process.
pub(super) struct MemoryStore {
    entries: Cache<String, Arc<Entry>>,
}

impl MemoryStore {
    pub(super) fn new(config: &IdempotencyConfig) -> Self {
        MemoryStore {
            entries: Cache::builder()
                .max_capacity(config.max_bytes)
                .weigher(|key: &String, entry: &Arc<Entry>| {
                    let answer = match &*entry.phase.borrow() {
                        Phase::Done(response) => response.byte_size(),
                        Phase::InFlight | Phase::Released => 0,
                    };
                    // Entry bookkeeping (channel, fingerprint) ~ 128 bytes.
                    u32::try_from(key.len() + answer + 128).unwrap_or(u32::MAX)
                })
                .time_to_live(config.window)
                .build(),
        }
    }

    pub(super) async fn claim(
        &self,
        key: &str,
        fingerprint: [u8; 32],
        wait_until: Instant,
    ) -> Outcome {
        loop {
            let ours = Arc::new(Entry {
                fingerprint,
                phase: watch::Sender::new(Phase::InFlight),
            });
            let candidate = ours.clone();
            // One atomic step per key, so that exactly one claimer inserts.
            let result = self
                .entries
                .entry_by_ref(key)
                .and_compute_with(|current| {
                    let op = match current {
                        Some(entry) if !entry.value().released() => Op::Nop,
                        _ => Op::Put(candidate),
                    };
                    std::future::ready(op)
                })
                .await;
            let existing = match result {
                CompResult::Inserted(_) | CompResult::ReplacedWith(_) => {
                    return Outcome::First(Held::Memory(MemoryClaim {
                        entries: self.entries.clone(),
                        key: key.to_owned(),
                        entry: ours,
                    }));
                }
                CompResult::Unchanged(entry) => entry.into_value(),
                CompResult::StillNone(_) | CompResult::Removed(_) => continue,
            };
            if existing.fingerprint != fingerprint {
                return Outcome::Mismatch;
            }
            let mut phase = existing.phase.subscribe();
            drop(existing);
            let wait = wait_until.saturating_duration_since(Instant::now());
            let settled =
                tokio::time::timeout(wait, phase.wait_for(|p| !matches!(p, Phase::InFlight))).await;
            match settled {
                Err(_) => return Outcome::InProgress,
                Ok(Ok(p)) => match &*p {
                    Phase::Done(response) => return Outcome::Replay((**response).clone()),
                    // Released: claim again, one waiter becomes the first.
                    _ => continue,
                },
                // The entry went away with no answer: claim again.
                Ok(Err(_)) => continue,
            }
        }
    }
}

/// A first request's hold on an in-process key.
pub(super) struct MemoryClaim {
    entries: Cache<String, Arc<Entry>>,
    key: String,
    entry: Arc<Entry>,
}

impl std::fmt::Debug for MemoryClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryClaim")
            .field("key", &self.key)
            .finish()
    }
}

impl MemoryClaim {
    pub(super) async fn complete(self, response: Option<StoredResponse>) {
        let Some(response) = response else {
            self.release();
            return;
        };
        self.entry
            .phase
            .send_replace(Phase::Done(Arc::new(response)));
        // Writing the entry again starts its window at the answer, as Redis
        // does; unless it expired meanwhile and someone else holds the key.
        let ours = self.entry.clone();
        self.entries
            .entry_by_ref(&self.key)
            .and_compute_with(|current| {
                let op = match current {
                    Some(entry) if Arc::ptr_eq(entry.value(), &ours) => Op::Put(ours),
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
    }

    pub(super) fn release(self) {
        self.entry.phase.send_replace(Phase::Released);
    }
}
