//! Idempotency keys: a retried request with the same key and the same body
//! gets the first request's answer (a duplicate in flight waits for it), and
//! the same key with another body is refused. Keys live in Redis when a link
//! is configured, so that replicas share them, and in process otherwise or
//! while Redis is unreachable.

mod memory;
mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroserve_core::{ErrorKind, InferError};
use serde::{Deserialize, Serialize};

use crate::redis_link::RedisLink;
use ferroserve_core::telemetry::{IDEMPOTENCY_REDIS_FALLBACK_TOTAL, IDEMPOTENCY_TOTAL};
use memory::{MemoryClaim, MemoryStore};
use shared::{SharedClaim, SharedStore};

/// Idempotency settings.
#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    /// How long a key is remembered after its first request.
    pub window: Duration,
    /// Bytes of keys and kept answers held in process at most (Redis is
    /// bounded by its own memory); the least used go first.
    pub max_bytes: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            window: Duration::from_secs(600),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The answer kept for replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers worth replaying, as name and raw value.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl StoredResponse {
    /// Bytes it holds, roughly.
    pub fn byte_size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
    }
}

/// What claiming a key gave.
#[derive(Debug)]
pub enum Claim {
    /// No earlier request with this key: the caller runs it and must call
    /// `complete` (dropping the guard without completing releases the key so
    /// a retry can run).
    First(ClaimGuard),
    /// The first request's answer.
    Replay(StoredResponse),
    /// Same key, different request.
    Mismatch,
}

/// The right to run the first request of a key; see [`ClaimGuard::complete`].
#[derive(Debug)]
pub struct ClaimGuard {
    held: Option<Held>,
}

#[derive(Debug)]
enum Held {
    Memory(MemoryClaim),
    Shared(SharedClaim),
}

impl ClaimGuard {
    /// Records the first request's answer for replays; `None` keeps nothing
    /// (an answer a retry should not get, like a 429 or a 5xx) and releases
    /// the key, so that the next request with it runs.
    pub async fn complete(mut self, response: Option<StoredResponse>) {
        match self.held.take() {
            Some(Held::Memory(claim)) => claim.complete(response).await,
            Some(Held::Shared(claim)) => claim.complete(response).await,
            None => {}
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        match self.held.take() {
            Some(Held::Memory(claim)) => claim.release(),
            Some(Held::Shared(claim)) => claim.release(),
            None => {}
        }
    }
}

/// Remembers idempotency keys and the answers of their first requests.
pub struct IdempotencyStore {
    memory: MemoryStore,
    shared: Option<SharedStore>,
}

impl IdempotencyStore {
    /// A store keeping keys for `config.window`, in Redis when `redis` is
    /// given and in process otherwise.
    pub fn new(config: IdempotencyConfig, redis: Option<Arc<RedisLink>>) -> Self {
        IdempotencyStore {
            memory: MemoryStore::new(&config),
            shared: redis.map(|link| SharedStore::new(link, config.window)),
        }
    }

    /// Claims `key` (the caller scopes it by client and model) for a request
    /// whose content hashes to `fingerprint`. A duplicate of a request still
    /// running waits for its answer until `wait_until`, then gets a
    /// [`ErrorKind::Conflict`] error.
    pub async fn claim(
        &self,
        key: &str,
        fingerprint: [u8; 32],
        wait_until: Instant,
    ) -> Result<Claim, InferError> {
        let outcome = match &self.shared {
            Some(shared) => match shared.claim(key, fingerprint, wait_until).await {
                Some(outcome) => outcome,
                None => {
                    tracing::debug!(
                        "redis unavailable for an idempotency key; using the in-process store"
                    );
                    metrics::counter!(IDEMPOTENCY_REDIS_FALLBACK_TOTAL).increment(1);
                    self.memory.claim(key, fingerprint, wait_until).await
                }
            },
            None => self.memory.claim(key, fingerprint, wait_until).await,
        };
        let result = match &outcome {
            Outcome::First(_) => "first",
            Outcome::Replay(_) => "replay",
            Outcome::Mismatch => "mismatch",
            Outcome::InProgress => "in_progress",
        };
        metrics::counter!(IDEMPOTENCY_TOTAL, "result" => result).increment(1);
        match outcome {
            Outcome::First(held) => Ok(Claim::First(ClaimGuard { held: Some(held) })),
            Outcome::Replay(response) => Ok(Claim::Replay(response)),
            Outcome::Mismatch => Ok(Claim::Mismatch),
            Outcome::InProgress => Err(InferError::new(
                ErrorKind::Conflict,
                "a request with this idempotency key is still in progress; retry later",
            )),
        }
    }
}

/// A claim's outcome inside the store, before it is counted.
#[derive(Debug)]
enum Outcome {
    First(Held),
    Replay(StoredResponse),
    Mismatch,
    InProgress,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn store(window: Duration) -> Arc<IdempotencyStore> {
        Arc::new(IdempotencyStore::new(
            IdempotencyConfig {
                window,
                max_bytes: 1024 * 1024,
            },
            None,
        ))
    }

    fn answer(body: &str) -> StoredResponse {
        StoredResponse {
            status: 200,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn first_then_replay_then_mismatch() {
        let store = store(Duration::from_secs(60));
        let Claim::First(guard) = store.claim("k", [1; 32], soon()).await.unwrap() else {
            panic!("the first claim runs");
        };
        guard.complete(Some(answer("one"))).await;
        match store.claim("k", [1; 32], soon()).await.unwrap() {
            Claim::Replay(r) => assert_eq!(r, answer("one")),
            other => panic!("expected a replay, got {other:?}"),
        }
        assert!(matches!(
            store.claim("k", [2; 32], soon()).await.unwrap(),
            Claim::Mismatch
        ));
        assert!(matches!(
            store.claim("other", [2; 32], soon()).await.unwrap(),
            Claim::First(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_duplicates_run_once_and_replay() {
        let store = store(Duration::from_secs(60));
        let firsts = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            let firsts = firsts.clone();
            tasks.push(tokio::spawn(async move {
                match store.claim("dup", [7; 32], soon()).await.unwrap() {
                    Claim::First(guard) => {
                        firsts.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        guard.complete(Some(answer("once"))).await;
                        None
                    }
                    Claim::Replay(r) => Some(r),
                    Claim::Mismatch => panic!("same fingerprint"),
                }
            }));
        }
        let mut replays = 0;
        for task in tasks {
            if let Some(r) = task.await.unwrap() {
                assert_eq!(r, answer("once"));
                replays += 1;
            }
        }
        assert_eq!(firsts.load(Ordering::SeqCst), 1);
        assert_eq!(replays, 15);
    }

    #[tokio::test]
    async fn a_released_key_lets_the_next_claim_run() {
        let store = store(Duration::from_secs(60));
        let Claim::First(guard) = store.claim("r", [3; 32], soon()).await.unwrap() else {
            panic!("first");
        };
        guard.complete(None).await;
        let Claim::First(guard) = store.claim("r", [3; 32], soon()).await.unwrap() else {
            panic!("released by complete(None)");
        };
        drop(guard);
        assert!(matches!(
            store.claim("r", [3; 32], soon()).await.unwrap(),
            Claim::First(_)
        ));
    }

    #[tokio::test]
    async fn a_waiter_becomes_first_when_the_first_releases() {
        let store = store(Duration::from_secs(60));
        let Claim::First(guard) = store.claim("w", [4; 32], soon()).await.unwrap() else {
            panic!("first");
        };
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.claim("w", [4; 32], soon()).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(guard);
        assert!(matches!(waiter.await.unwrap().unwrap(), Claim::First(_)));
    }

    #[tokio::test]
    async fn waiting_past_the_deadline_is_a_conflict() {
        let store = store(Duration::from_secs(60));
        let _guard = store.claim("slow", [5; 32], soon()).await.unwrap();
        let error = store
            .claim("slow", [5; 32], Instant::now() + Duration::from_millis(30))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Conflict);
        assert!(error.message.contains("still in progress"), "{error}");
    }

    #[tokio::test]
    async fn keys_expire_with_the_window() {
        let store = store(Duration::from_millis(200));
        let Claim::First(guard) = store.claim("e", [6; 32], soon()).await.unwrap() else {
            panic!("first");
        };
        guard.complete(Some(answer("old"))).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(matches!(
            store.claim("e", [9; 32], soon()).await.unwrap(),
            Claim::First(_)
        ));
    }
}
