//! The Redis key store shared by replicas: `SET NX PX` claims a key with an
//! in-flight marker, completion overwrites the marker with the answer, a
//! release deletes it, and both announce it on a channel named like the
//! key; a duplicate subscribes and reads the key again when the news comes
//! (or when the marker lapses, if the first request's process died). Any
//! Redis trouble hands the request to the in-process store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Held, Outcome, StoredResponse};
use crate::redis_link::{RedisLink, RedisOutcome};

/// Overwrites the marker with the answer only while the marker is ours, so a
/// request that outlived its window never clobbers a newer claim.
const COMPLETE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) \
     redis.call('PUBLISH', KEYS[1], 'done') return 1 end return 0";
/// Deletes the marker only while it is ours.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('PUBLISH', KEYS[1], 'released') \
     return redis.call('DEL', KEYS[1]) end return 0";

/// The value of a key in Redis (postcard-encoded).
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    /// The first request runs; `token` tells its own marker from another's.
    InFlight { fingerprint: [u8; 32], token: u64 },
    /// The first request's answer.
    Done {
        fingerprint: [u8; 32],
        response: StoredResponse,
    },
}

/// Keys shared through Redis.
pub(super) struct SharedStore {
    link: Arc<RedisLink>,
    window: Duration,
}

impl SharedStore {
    pub(super) fn new(link: Arc<RedisLink>, window: Duration) -> Self {
        SharedStore { link, window }
    }

    /// `None` when Redis could not answer: the caller falls back to the
    /// in-process store.
    pub(super) async fn claim(
        &self,
        key: &str,
        fingerprint: [u8; 32],
        wait_until: Instant,
    ) -> Option<Outcome> {
        let redis_key = format!(
            "ferroserve:idem:v1:{}",
            blake3::hash(key.as_bytes()).to_hex()
        );
        let token = rand::random::<u64>();
        let marker = postcard::to_allocvec(&Record::InFlight { fingerprint, token })
            .expect("encoding a marker into memory cannot fail");
        loop {
            let mut set = redis::cmd("SET");
            set.arg(&redis_key)
                .arg(&marker)
                .arg("NX")
                .arg("PX")
                .arg(window_ms(self.window));
            match self.link.call::<Option<String>>(set).await {
                RedisOutcome::Done(Some(_)) => {
                    return Some(Outcome::First(Held::Shared(SharedClaim {
                        link: self.link.clone(),
                        window: self.window,
                        redis_key,
                        marker,
                        fingerprint,
                    })));
                }
                RedisOutcome::Done(None) => {}
                RedisOutcome::Failed | RedisOutcome::Unavailable => return None,
            }
            // Taken: wait for the answer, or claim again if the key goes away.
            // Subscribed before the key is read: news after the read is kept.
            let mut news = self.link.subscribe(&redis_key).await?;
            loop {
                let mut get = redis::cmd("GET");
                get.arg(&redis_key);
                let bytes = match self.link.call::<Option<Vec<u8>>>(get).await {
                    RedisOutcome::Done(Some(bytes)) => bytes,
                    RedisOutcome::Done(None) => break,
                    RedisOutcome::Failed | RedisOutcome::Unavailable => return None,
                };
                match postcard::from_bytes::<Record>(&bytes) {
                    Ok(Record::Done {
                        fingerprint: theirs,
                        response,
                    }) => {
                        return Some(if theirs == fingerprint {
                            Outcome::Replay(response)
                        } else {
                            Outcome::Mismatch
                        });
                    }
                    Ok(Record::InFlight {
                        fingerprint: theirs,
                        ..
                    }) => {
                        if theirs != fingerprint {
                            return Some(Outcome::Mismatch);
                        }
                        let left = wait_until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Some(Outcome::InProgress);
                        }
                        // Woken by the first request's news, else when its
                        // marker lapses (its process died), else at the deadline.
                        let lapse = self.lapse(&redis_key).await?;
                        let _ =
                            tokio::time::timeout(left.min(lapse), news.on_message().next()).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "unreadable idempotency record in redis");
                        return None;
                    }
                }
            }
        }
    }
}

/// A first request's hold on a Redis key.
pub(super) struct SharedClaim {
    link: Arc<RedisLink>,
    window: Duration,
    redis_key: String,
    marker: Vec<u8>,
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for SharedClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedClaim")
            .field("redis_key", &self.redis_key)
            .finish()
    }
}

impl SharedClaim {
    pub(super) async fn complete(self, response: Option<StoredResponse>) {
        let Some(response) = response else {
            self.release_now().await;
            return;
        };
        let done = postcard::to_allocvec(&Record::Done {
            fingerprint: self.fingerprint,
            response,
        })
        .expect("encoding a response into memory cannot fail");
        let mut eval = redis::cmd("EVAL");
        eval.arg(COMPLETE)
            .arg(1)
            .arg(&self.redis_key)
            .arg(&self.marker)
            .arg(done)
            .arg(window_ms(self.window));
        if !matches!(self.link.call::<i64>(eval).await, RedisOutcome::Done(_)) {
            tracing::debug!("could not store an idempotent answer in redis; duplicates wait for the key to expire");
        }
    }

    /// Releases in the background (from `Drop`).
    pub(super) fn release(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.release_now());
            }
            Err(_) => tracing::debug!(
                "no runtime to release an idempotency key; it expires with its window"
            ),
        }
    }

    async fn release_now(self) {
        let mut eval = redis::cmd("EVAL");
        eval.arg(RELEASE)
            .arg(1)
            .arg(&self.redis_key)
            .arg(&self.marker);
        if !matches!(self.link.call::<i64>(eval).await, RedisOutcome::Done(_)) {
            tracing::debug!(
                "could not release an idempotency key in redis; it expires with its window"
            );
        }
    }
}

impl SharedStore {
    /// How long the marker of `redis_key` has left (`PTTL`); `None` when
    /// Redis could not answer.
    async fn lapse(&self, redis_key: &str) -> Option<Duration> {
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(redis_key);
        match self.link.call::<i64>(pttl).await {
            // -1: no expiry (never set so); -2: gone, read it again now.
            RedisOutcome::Done(-1) => Some(Duration::MAX),
            RedisOutcome::Done(ms) => Some(Duration::from_millis(ms.max(1) as u64)),
            RedisOutcome::Failed | RedisOutcome::Unavailable => None,
        }
    }
}

fn window_ms(window: Duration) -> u64 {
    (window.as_millis() as u64).max(1)
}
