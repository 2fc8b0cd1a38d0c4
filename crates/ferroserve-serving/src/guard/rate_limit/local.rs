//! In-process token buckets (governor): what one replica enforces alone,
//! with no Redis configured or while Redis does not answer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use super::{Applicable, Limit, LimitScope, RateLimited};

/// Checks between two prunings of idle buckets.
pub(super) const PRUNE_EVERY: u64 = 4096;

/// Client buckets one keyed limiter holds at most, besides those that
/// arrive between two prunings: client ids come from the request (an API
/// key's hash, an address), so without a bound random keys grow memory.
pub(super) const MAX_CLIENT_BUCKETS: usize = 100_000;

/// Buckets that clients share while the client buckets are at their bound:
/// each client then takes from one of these, chosen by a keyed hash of its
/// id (so no client can aim at another's), until pruning makes room.
const OVERFLOW_BUCKETS: u64 = 64;

/// Shortest wait a refusal reports (governor may say 0 when the token
/// arrives while the refusal is being built).
const MIN_WAIT: Duration = Duration::from_millis(1);

type Keyed = DefaultKeyedRateLimiter<String>;

fn quota(limit: Limit) -> Quota {
    Quota::with_period(limit.period())
        .expect("the period is at least 1 ns")
        .allow_burst(NonZeroU32::new(limit.burst()).expect("the burst is at least 1"))
}

/// A model's bucket, remembered with the limit it was built for.
struct ModelBucket {
    limit: Limit,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// Nanoseconds from [`LocalBuckets::epoch`] to the last check.
    last_used: AtomicU64,
}

/// A model's per-client buckets, remembered with the limit they were built for.
struct ModelClientBuckets {
    limit: Limit,
    limiter: Arc<Keyed>,
}

/// Every in-process bucket of one server.
pub(super) struct LocalBuckets {
    /// Each client across all models (the limit is fixed at start).
    clients: Option<Keyed>,
    models: RwLock<HashMap<String, ModelBucket>>,
    model_clients: RwLock<HashMap<String, ModelClientBuckets>>,
    checks: AtomicU64,
    epoch: Instant,
    /// Client buckets per keyed limiter at most ([`MAX_CLIENT_BUCKETS`]).
    max_client_buckets: usize,
    /// Whether a keyed limiter held `max_client_buckets` at the last
    /// pruning: clients share the overflow buckets until the next.
    saturated: AtomicBool,
    /// Picks a client's overflow bucket.
    overflow_hasher: RandomState,
}

impl LocalBuckets {
    pub(super) fn new(per_client: Option<Limit>) -> Self {
        LocalBuckets::bounded(per_client, MAX_CLIENT_BUCKETS)
    }

    /// Buckets keeping at most `max_client_buckets` clients per keyed
    /// limiter (plus those added between two prunings).
    fn bounded(per_client: Option<Limit>, max_client_buckets: usize) -> Self {
        LocalBuckets {
            clients: per_client.map(|limit| Keyed::keyed(quota(limit))),
            models: RwLock::default(),
            model_clients: RwLock::default(),
            checks: AtomicU64::new(0),
            epoch: Instant::now(),
            max_client_buckets,
            saturated: AtomicBool::new(false),
            overflow_hasher: RandomState::new(),
        }
    }

    /// The key `client` takes its tokens under: its own, or an overflow
    /// bucket's while the client buckets are at their bound.
    fn client_key<'a>(&self, client: &'a str) -> Cow<'a, str> {
        if !self.saturated.load(Ordering::Relaxed) {
            return Cow::Borrowed(client);
        }
        let shard = self.overflow_hasher.hash_one(client) % OVERFLOW_BUCKETS;
        Cow::Owned(format!("\u{0}overflow-{shard}"))
    }

    /// Takes a token from each bucket in `applicable`, refusing at the
    /// first empty one.
    pub(super) fn check(
        &self,
        client: &str,
        model: &str,
        applicable: &Applicable,
    ) -> Result<(), RateLimited> {
        if (self.checks.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(PRUNE_EVERY) {
            self.prune();
        }
        let client = &*self.client_key(client);
        // governor cannot take from several buckets at once, so a bucket
        // that gave its token keeps it when a later one refuses. The
        // client's own buckets go first: a client over its limit then
        // never drains the bucket that the model's other clients share.
        if let Some(limit) = applicable.model_client {
            let limiter = self.model_client_limiter(model, limit);
            check_keyed(&limiter, client, LimitScope::ModelClient)?;
        }
        if let (Some(_), Some(limiter)) = (applicable.client, &self.clients) {
            check_keyed(limiter, client, LimitScope::Client)?;
        }
        if let Some(limit) = applicable.model {
            let limiter = self.model_limiter(model, limit);
            if let Err(not_until) = limiter.check() {
                return Err(RateLimited {
                    scope: LimitScope::Model,
                    retry_after: not_until
                        .wait_time_from(limiter.clock().now())
                        .max(MIN_WAIT),
                });
            }
        }
        Ok(())
    }

    /// The model's bucket for `limit`, built afresh when the limit changed.
    fn model_limiter(&self, model: &str, limit: Limit) -> Arc<DefaultDirectRateLimiter> {
        let now = self.now_nanos();
        {
            let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(bucket) = models.get(model).filter(|b| b.limit == limit) {
                bucket.last_used.store(now, Ordering::Relaxed);
                return bucket.limiter.clone();
            }
        }
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        let bucket = models
            .entry(model.to_owned())
            .and_modify(|bucket| {
                if bucket.limit != limit {
                    *bucket = ModelBucket::new(limit);
                }
            })
            .or_insert_with(|| ModelBucket::new(limit));
        bucket.last_used.store(now, Ordering::Relaxed);
        bucket.limiter.clone()
    }

    /// The model's per-client buckets for `limit`, built afresh when the
    /// limit changed.
    fn model_client_limiter(&self, model: &str, limit: Limit) -> Arc<Keyed> {
        {
            let maps = self
                .model_clients
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(buckets) = maps.get(model).filter(|b| b.limit == limit) {
                return buckets.limiter.clone();
            }
        }
        let mut maps = self
            .model_clients
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let fresh = || ModelClientBuckets {
            limit,
            limiter: Arc::new(Keyed::keyed(quota(limit))),
        };
        let buckets = maps
            .entry(model.to_owned())
            .and_modify(|buckets| {
                if buckets.limit != limit {
                    *buckets = fresh();
                }
            })
            .or_insert_with(fresh);
        buckets.limiter.clone()
    }

    /// Forgets every bucket that is full again (a fresh one would be the
    /// same), so that memory follows the clients and models seen lately;
    /// notes whether the client buckets are still at their bound.
    pub(super) fn prune(&self) {
        let mut most_clients = 0;
        if let Some(clients) = &self.clients {
            clients.retain_recent();
            clients.shrink_to_fit();
            most_clients = clients.len();
        }
        let now = self.now_nanos();
        self.models
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, bucket| {
                let refill = bucket.limit.period().as_nanos() * u128::from(bucket.limit.burst());
                let idle = now.saturating_sub(bucket.last_used.load(Ordering::Relaxed));
                u128::from(idle) <= refill
            });
        // Pruned outside the map's lock: other models' checks go on meanwhile.
        let limiters: Vec<(String, Arc<Keyed>)> = self
            .model_clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(model, buckets)| (model.clone(), buckets.limiter.clone()))
            .collect();
        let mut empty = Vec::new();
        for (model, limiter) in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            most_clients = most_clients.max(limiter.len());
            if limiter.is_empty() {
                empty.push((model, limiter));
            }
        }
        if !empty.is_empty() {
            let mut maps = self
                .model_clients
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for (model, limiter) in empty {
                // Only if no check has used it since (it would not be empty).
                if maps
                    .get(&model)
                    .is_some_and(|b| Arc::ptr_eq(&b.limiter, &limiter) && limiter.is_empty())
                {
                    maps.remove(&model);
                }
            }
        }
        self.saturated
            .store(most_clients >= self.max_client_buckets, Ordering::Relaxed);
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Keys and entries held: (clients, models, model-client keys).
    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize, usize) {
        let clients = self.clients.as_ref().map_or(0, |c| c.len());
        let models = self.models.read().map_or(0, |m| m.len());
        let model_clients = self
            .model_clients
            .read()
            .map_or(0, |m| m.values().map(|b| b.limiter.len()).sum());
        (clients, models, model_clients)
    }
}

impl ModelBucket {
    fn new(limit: Limit) -> Self {
        ModelBucket {
            limit,
            limiter: Arc::new(DefaultDirectRateLimiter::direct(quota(limit))),
            last_used: AtomicU64::new(0),
        }
    }
}

fn check_keyed(limiter: &Keyed, client: &str, scope: LimitScope) -> Result<(), RateLimited> {
    limiter
        .check_key(&client.to_owned())
        .map_err(|not_until| RateLimited {
            scope,
            retry_after: not_until
                .wait_time_from(limiter.clock().now())
                .max(MIN_WAIT),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Limit {
        Limit {
            requests_per_s: 1000.0,
            burst: 1,
        }
    }

    fn applicable() -> Applicable {
        Applicable {
            client: Some(fast()),
            model: Some(fast()),
            model_client: Some(fast()),
        }
    }

    #[test]
    fn pruning_forgets_full_buckets() {
        let buckets = LocalBuckets::new(Some(fast()));
        for i in 0..100 {
            let _ = buckets.check(&format!("client-{i}"), &format!("model-{i}"), &applicable());
        }
        assert_eq!(buckets.sizes(), (100, 100, 100));
        // 1000/s with a burst of 1: every bucket is full again after 1 ms.
        std::thread::sleep(Duration::from_millis(50));
        buckets.prune();
        assert_eq!(buckets.sizes(), (0, 0, 0));
        assert!(buckets.model_clients.read().expect("lock").is_empty());
    }

    #[test]
    fn random_client_ids_cannot_grow_the_buckets_past_the_bound() {
        let slow = Limit {
            requests_per_s: 0.01,
            burst: 1,
        };
        let max = 100;
        let buckets = LocalBuckets::bounded(Some(slow), max);
        let all = Applicable {
            client: Some(slow),
            model: None,
            model_client: Some(slow),
        };
        // Slow buckets are not full again at pruning, so pruning alone
        // keeps every one of them.
        for i in 0..(4 * PRUNE_EVERY) {
            let _ = buckets.check(&format!("key:{i}"), "iris", &all);
        }
        let (clients, _, model_clients) = buckets.sizes();
        let bound = max + PRUNE_EVERY as usize + OVERFLOW_BUCKETS as usize;
        assert!(clients <= bound, "{clients} client buckets");
        assert!(
            model_clients <= bound,
            "{model_clients} model-client buckets"
        );
    }

    #[test]
    fn pruning_keeps_buckets_that_are_not_full() {
        let slow = Limit {
            requests_per_s: 0.01,
            burst: 1,
        };
        let buckets = LocalBuckets::new(Some(slow));
        let all = Applicable {
            client: Some(slow),
            model: Some(slow),
            model_client: Some(slow),
        };
        assert!(buckets.check("a", "iris", &all).is_ok());
        buckets.prune();
        assert_eq!(buckets.sizes(), (1, 1, 1));
        assert!(buckets.check("a", "iris", &all).is_err());
    }

    #[test]
    fn the_maps_stay_bounded_under_many_clients() {
        let buckets = LocalBuckets::new(Some(Limit {
            requests_per_s: 1e6,
            burst: 1,
        }));
        let only_client = Applicable {
            client: Some(fast()),
            model: None,
            model_client: None,
        };
        for i in 0..(3 * PRUNE_EVERY) {
            assert!(buckets.check(&i.to_string(), "iris", &only_client).is_ok());
        }
        let (clients, _, _) = buckets.sizes();
        assert!(
            clients < 2 * PRUNE_EVERY as usize,
            "{clients} client buckets after {} distinct clients",
            3 * PRUNE_EVERY
        );
    }
}
