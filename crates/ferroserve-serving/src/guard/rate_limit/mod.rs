//! Rate limits: token buckets per client, per model and per client of a
//! model, kept in process (governor) or in Redis so that every replica
//! takes from the same buckets.

mod local;
mod policy;
mod shared;

use std::sync::{Arc, OnceLock};

pub use policy::{Limit, LimitScope, ModelRateLimit, RateLimitConfig, RateLimited};

use crate::redis_link::RedisLink;
use ferroserve_core::telemetry::{RATE_LIMITED_TOTAL, RATE_LIMIT_CHECKS_TOTAL};
use local::LocalBuckets;
use shared::SharedBuckets;

/// The limits that apply to one request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Applicable {
    client: Option<Limit>,
    model: Option<Limit>,
    model_client: Option<Limit>,
}

impl Applicable {
    fn is_empty(&self) -> bool {
        *self == Applicable::default()
    }

    fn iter(&self) -> impl Iterator<Item = (LimitScope, Limit)> {
        [
            (LimitScope::Client, self.client),
            (LimitScope::Model, self.model),
            (LimitScope::ModelClient, self.model_client),
        ]
        .into_iter()
        .filter_map(|(scope, limit)| Some((scope, limit?)))
    }
}

/// Every rate limit of a server: takes one token per request from each
/// bucket that applies, and refuses when one is empty.
pub struct RateLimiter {
    config: RateLimitConfig,
    local: LocalBuckets,
    shared: Option<SharedBuckets>,
    checks: CheckCounters,
}

/// `ferroserve_rate_limit_checks_total` by store: each handle is built on
/// its first use (so a store never used is never shown), not looked up on
/// every request.
#[derive(Default)]
struct CheckCounters {
    redis: OnceLock<metrics::Counter>,
    local: OnceLock<metrics::Counter>,
    local_fallback: OnceLock<metrics::Counter>,
}

impl CheckCounters {
    fn count(&self, store: &'static str) {
        let slot = match store {
            "redis" => &self.redis,
            "local" => &self.local,
            _ => &self.local_fallback,
        };
        slot.get_or_init(|| metrics::counter!(RATE_LIMIT_CHECKS_TOTAL, "store" => store))
            .increment(1);
    }
}

impl RateLimiter {
    /// `redis`: when Some, buckets live in Redis and are shared by every
    /// replica (each replica falls back to its own buckets while Redis does
    /// not answer).
    pub fn new(config: RateLimitConfig, redis: Option<Arc<RedisLink>>) -> Self {
        RateLimiter {
            config,
            local: LocalBuckets::new(config.per_client),
            shared: redis.map(SharedBuckets::new),
            checks: CheckCounters::default(),
        }
    }

    /// True when no limit can ever apply to a model with `policy` (lets the
    /// caller skip the check cheaply).
    pub fn is_unlimited(&self, policy: &ModelRateLimit) -> bool {
        self.applicable(policy).is_empty()
    }

    /// Takes one token from each bucket that applies to (`client`,
    /// `model`): the client's global bucket, the model's bucket
    /// (`policy.model`, else the server's per-model default) and the
    /// model's per-client bucket (`policy.per_client`). Refuses when any is
    /// empty.
    #[tracing::instrument(level = "debug", skip_all, fields(model = %model))]
    pub async fn check(
        &self,
        client: &str,
        model: &str,
        policy: &ModelRateLimit,
    ) -> Result<(), RateLimited> {
        let applicable = self.applicable(policy);
        if applicable.is_empty() {
            return Ok(());
        }
        let (outcome, store) = match &self.shared {
            Some(shared) => match shared.check(client, model, &applicable).await {
                Some(outcome) => (outcome, "redis"),
                None => {
                    tracing::debug!(
                        "redis did not answer; rate limits checked by this replica alone"
                    );
                    (
                        self.local.check(client, model, &applicable),
                        "local_fallback",
                    )
                }
            },
            None => (self.local.check(client, model, &applicable), "local"),
        };
        self.checks.count(store);
        if let Err(refused) = &outcome {
            metrics::counter!(
                RATE_LIMITED_TOTAL,
                "model" => model.to_owned(),
                "scope" => refused.scope.as_label(),
            )
            .increment(1);
        }
        outcome
    }

    fn applicable(&self, policy: &ModelRateLimit) -> Applicable {
        Applicable {
            client: self.config.per_client,
            model: policy.model.or(self.config.per_model),
            model_client: policy.per_client,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Slow enough that no token comes back during a test.
    fn slow(burst: u32) -> Limit {
        Limit {
            requests_per_s: 1.0,
            burst,
        }
    }

    fn limiter(per_client: Option<Limit>, per_model: Option<Limit>) -> RateLimiter {
        RateLimiter::new(
            RateLimitConfig {
                per_client,
                per_model,
            },
            None,
        )
    }

    async fn passes(
        limiter: &RateLimiter,
        client: &str,
        model: &str,
        policy: &ModelRateLimit,
    ) -> usize {
        let mut passed = 0;
        for _ in 0..10 {
            if limiter.check(client, model, policy).await.is_ok() {
                passed += 1;
            }
        }
        passed
    }

    #[tokio::test]
    async fn a_burst_passes_then_the_next_is_refused_with_a_wait() {
        let limiter = limiter(Some(slow(3)), None);
        let policy = ModelRateLimit::default();
        for _ in 0..3 {
            assert_eq!(limiter.check("a", "iris", &policy).await, Ok(()));
        }
        let refused = limiter.check("a", "iris", &policy).await.unwrap_err();
        assert_eq!(refused.scope, LimitScope::Client);
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_secs(1), "{refused:?}");
    }

    #[tokio::test]
    async fn fractional_rates_work() {
        let limiter = limiter(
            None,
            Some(Limit {
                requests_per_s: 0.5,
                burst: 1,
            }),
        );
        let policy = ModelRateLimit::default();
        assert!(limiter.check("a", "iris", &policy).await.is_ok());
        let refused = limiter.check("a", "iris", &policy).await.unwrap_err();
        assert_eq!(refused.scope, LimitScope::Model);
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_secs(2), "{refused:?}");
    }

    #[tokio::test]
    async fn clients_have_their_own_buckets() {
        let limiter = limiter(Some(slow(2)), None);
        let policy = ModelRateLimit::default();
        assert_eq!(passes(&limiter, "a", "iris", &policy).await, 2);
        assert_eq!(passes(&limiter, "b", "iris", &policy).await, 2);
        // The client bucket spans models.
        assert_eq!(passes(&limiter, "a", "wine", &policy).await, 0);
    }

    #[tokio::test]
    async fn a_model_bucket_is_shared_by_its_clients() {
        let limiter = limiter(None, Some(slow(2)));
        let policy = ModelRateLimit::default();
        assert!(limiter.check("a", "iris", &policy).await.is_ok());
        assert!(limiter.check("b", "iris", &policy).await.is_ok());
        let refused = limiter.check("c", "iris", &policy).await.unwrap_err();
        assert_eq!(refused.scope, LimitScope::Model);
        // Each model has its own.
        assert!(limiter.check("c", "wine", &policy).await.is_ok());
    }

    #[tokio::test]
    async fn a_model_policy_replaces_the_server_default() {
        let limiter = limiter(None, Some(slow(1)));
        let own = ModelRateLimit {
            model: Some(slow(3)),
            per_client: None,
        };
        assert_eq!(passes(&limiter, "a", "iris", &own).await, 3);
        assert_eq!(
            passes(&limiter, "a", "wine", &ModelRateLimit::default()).await,
            1
        );
    }

    #[tokio::test]
    async fn per_client_buckets_of_a_model_spare_its_other_clients() {
        let limiter = limiter(None, None);
        let policy = ModelRateLimit {
            model: Some(slow(3)),
            per_client: Some(slow(1)),
        };
        assert!(limiter.check("a", "iris", &policy).await.is_ok());
        for _ in 0..5 {
            let refused = limiter.check("a", "iris", &policy).await.unwrap_err();
            assert_eq!(refused.scope, LimitScope::ModelClient);
        }
        // a's refusals took nothing from the model's bucket.
        assert!(limiter.check("b", "iris", &policy).await.is_ok());
        assert!(limiter.check("c", "iris", &policy).await.is_ok());
        let refused = limiter.check("d", "iris", &policy).await.unwrap_err();
        assert_eq!(refused.scope, LimitScope::Model);
    }

    #[tokio::test]
    async fn a_changed_limit_applies_at_once() {
        let limiter = limiter(None, None);
        let mut policy = ModelRateLimit {
            model: Some(slow(1)),
            per_client: None,
        };
        assert_eq!(passes(&limiter, "a", "iris", &policy).await, 1);
        policy.model = Some(slow(2));
        assert_eq!(passes(&limiter, "a", "iris", &policy).await, 2);

        let mut policy = ModelRateLimit {
            model: None,
            per_client: Some(slow(1)),
        };
        assert_eq!(passes(&limiter, "a", "wine", &policy).await, 1);
        policy.per_client = Some(slow(3));
        assert_eq!(passes(&limiter, "a", "wine", &policy).await, 3);
        assert_eq!(passes(&limiter, "b", "wine", &policy).await, 3);
    }

    #[test]
    fn unlimited_only_when_no_limit_can_apply() {
        let none = ModelRateLimit::default();
        let own = ModelRateLimit {
            model: None,
            per_client: Some(slow(1)),
        };
        assert!(limiter(None, None).is_unlimited(&none));
        assert!(!limiter(None, None).is_unlimited(&own));
        assert!(!limiter(Some(slow(1)), None).is_unlimited(&none));
        assert!(!limiter(None, Some(slow(1))).is_unlimited(&none));
    }

    #[tokio::test]
    async fn no_applicable_limit_always_passes() {
        let limiter = limiter(None, None);
        assert_eq!(
            passes(&limiter, "a", "iris", &ModelRateLimit::default()).await,
            10
        );
    }
}
