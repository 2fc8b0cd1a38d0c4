//! The result cache: answers a repeated request without running the model.
//! L1 is in-process (moka, bounded by bytes, TTL); L2 is Redis, shared by
//! replicas, when a URL is configured. L2 hits fill L1. A model whose
//! inference costs less than an L2 round trip skips L2. Redis trouble only
//! ever turns L2 off for a while (see [`crate::redis_link`]).

mod key;
mod l1;
mod l2;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroserve_core::{InferError, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::ServingError;
use crate::ewma::Ewma;
use crate::redis_link::{RedisLink, RedisOutcome};
use ferroserve_core::telemetry;

pub use key::{CacheKey, TRANSPORT_PARAMETERS};

/// Server-wide cache settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Cache models whose serving config does not say (off by default).
    pub enabled_by_default: bool,
    /// Bytes of outputs the in-process layer holds at most.
    pub max_bytes: u64,
    /// Lifetime of an entry for models that set none.
    pub ttl: Duration,
    /// Skip Redis for models that compute faster than a Redis round trip.
    pub cost_aware: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled_by_default: false,
            max_bytes: 256 * 1024 * 1024,
            ttl: Duration::from_secs(300),
            cost_aware: true,
        }
    }
}

/// A model's own cache settings (`"cache"` in its serving config,
/// `[cache]` in a repository `config.toml`); unset fields take the
/// server defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelCachePolicy {
    /// Cache this model's answers.
    pub enabled: Option<bool>,
    /// Lifetime of an entry in seconds.
    pub ttl_s: Option<u64>,
}

impl ModelCachePolicy {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InferError> {
        if self.ttl_s == Some(0) {
            return Err(InferError::invalid(
                "cache.ttl_s must be at least 1 (disable the cache with cache.enabled = false)",
            ));
        }
        Ok(())
    }
}

/// What the caller allowed through `Cache-Control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheDirective {
    /// Answer from the cache when possible.
    pub lookup: bool,
    /// Store a computed answer.
    pub store: bool,
}

impl Default for CacheDirective {
    /// Look up and store.
    fn default() -> Self {
        CacheDirective {
            lookup: true,
            store: true,
        }
    }
}

impl CacheDirective {
    /// `no-cache`: neither look up nor store; `no-store`: look up but do not
    /// store; anything else (or no header): both.
    pub fn from_cache_control(header: Option<&str>) -> CacheDirective {
        let mut directive = CacheDirective {
            lookup: true,
            store: true,
        };
        for token in header.unwrap_or("").split(',') {
            match token.trim().to_ascii_lowercase().as_str() {
                "no-cache" => {
                    directive.lookup = false;
                    directive.store = false;
                }
                "no-store" => directive.store = false,
                _ => {}
            }
        }
        directive
    }
}

/// How the cache took part in one answer (the `x-ferroserve-cache` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Answered from the in-process layer.
    HitL1,
    /// Answered from Redis.
    HitL2,
    /// Computed (and stored unless the caller said `no-store`).
    Miss,
    /// The caller opted out with `Cache-Control: no-cache`.
    Bypass,
    /// Caching is off for this model.
    Off,
}

impl CacheStatus {
    /// Value of the `x-ferroserve-cache` response header; none when off.
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            CacheStatus::HitL1 => Some("hit-l1"),
            CacheStatus::HitL2 => Some("hit-l2"),
            CacheStatus::Miss => Some("miss"),
            CacheStatus::Bypass => Some("bypass"),
            CacheStatus::Off => None,
        }
    }
}

/// The two-layer result cache shared by every model.
pub struct ResultCache {
    config: CacheConfig,
    l1: l1::L1,
    l2: Option<l2::L2>,
}

impl ResultCache {
    /// Builds the cache; with a Redis link, answers are shared through it
    /// (and the server still starts and serves when Redis is down).
    pub fn new(config: CacheConfig, redis: Option<Arc<RedisLink>>) -> Result<Self, ServingError> {
        if config.max_bytes == 0 {
            return Err(ServingError::Cache("max_bytes must be at least 1"));
        }
        if config.ttl.is_zero() {
            return Err(ServingError::Cache("ttl must be at least 1 s"));
        }
        Ok(ResultCache {
            l1: l1::L1::new(config.max_bytes),
            l2: redis.map(l2::L2::new),
            config,
        })
    }

    /// Entry lifetime for a model with `policy`, or `None` when its answers
    /// are not cached.
    pub fn ttl_for(&self, policy: &ModelCachePolicy) -> Option<Duration> {
        policy
            .enabled
            .unwrap_or(self.config.enabled_by_default)
            .then(|| policy.ttl_s.map_or(self.config.ttl, Duration::from_secs))
    }

    /// Entry lifetime of models that set none.
    pub fn default_ttl(&self) -> Duration {
        self.config.ttl
    }

    /// Counts a request whose caller opted out with `no-cache`.
    pub fn count_bypass(&self) {
        CacheMetrics::count("l1", "bypass");
    }

    /// Whether L2 is worth asking for a model of this cost; a skip is
    /// counted once per request, on lookup.
    fn use_l2(&self, model_cost: &Ewma, on_lookup: bool) -> Option<&l2::L2> {
        let l2 = self.l2.as_ref()?;
        if self.config.cost_aware {
            if let (Some(model), Some(redis)) = (model_cost.get(), l2.round_trip()) {
                if model < redis {
                    if on_lookup {
                        CacheMetrics::count("l2", "skipped_cheap");
                    }
                    return None;
                }
            }
        }
        Some(l2)
    }

    /// Looks `key` up in L1, then L2 (filling L1 on an L2 hit).
    pub async fn get(
        &self,
        key: &CacheKey,
        ttl: Duration,
        model_cost: &Ewma,
    ) -> Option<(Vec<Tensor>, CacheStatus)> {
        let start = Instant::now();
        if let Some(entry) = self.l1.get(key).await {
            CacheMetrics::lookup("l1", "hit", start);
            return Some((entry.outputs.clone(), CacheStatus::HitL1));
        }
        CacheMetrics::lookup("l1", "miss", start);
        let l2 = self.use_l2(model_cost, true)?;
        let start = Instant::now();
        match l2.get(key).await {
            RedisOutcome::Done(Some(outputs)) => {
                CacheMetrics::lookup("l2", "hit", start);
                self.l1.insert(*key, outputs.clone(), ttl).await;
                Some((outputs, CacheStatus::HitL2))
            }
            RedisOutcome::Done(None) => {
                CacheMetrics::lookup("l2", "miss", start);
                None
            }
            RedisOutcome::Failed => {
                CacheMetrics::count("l2", "error");
                None
            }
            RedisOutcome::Unavailable => {
                CacheMetrics::count("l2", "unavailable");
                None
            }
        }
    }

    /// Stores a computed answer in L1 now and in L2 in the background.
    pub async fn put(&self, key: CacheKey, outputs: &[Tensor], ttl: Duration, model_cost: &Ewma) {
        self.l1.insert(key, outputs.to_vec(), ttl).await;
        if let Some(l2) = self.use_l2(model_cost, false) {
            let l2 = l2.clone();
            let outputs = outputs.to_vec();
            tokio::spawn(async move {
                if let RedisOutcome::Failed = l2.set(&key, &outputs, ttl).await {
                    CacheMetrics::count("l2", "error");
                }
            });
        }
    }
}

/// Cache counters and lookup latency.
struct CacheMetrics;

impl CacheMetrics {
    fn count(layer: &'static str, result: &'static str) {
        metrics::counter!(telemetry::CACHE_REQUESTS, "layer" => layer, "result" => result)
            .increment(1);
    }

    fn lookup(layer: &'static str, result: &'static str, start: Instant) {
        Self::count(layer, result);
        metrics::histogram!(telemetry::CACHE_LOOKUP_DURATION, "layer" => layer, "result" => result)
            .record(start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_opt_outs() {
        let all = CacheDirective::from_cache_control(None);
        assert!(all.lookup && all.store);
        let none = CacheDirective::from_cache_control(Some("max-age=0, No-Cache"));
        assert!(!none.lookup && !none.store);
        let read_only = CacheDirective::from_cache_control(Some("no-store"));
        assert!(read_only.lookup && !read_only.store);
    }

    #[tokio::test]
    async fn per_model_policy_overrides_the_server_default() {
        let cache = ResultCache::new(CacheConfig::default(), None).expect("valid");
        assert_eq!(cache.ttl_for(&ModelCachePolicy::default()), None);
        let on = ModelCachePolicy {
            enabled: Some(true),
            ttl_s: Some(7),
        };
        assert_eq!(cache.ttl_for(&on), Some(Duration::from_secs(7)));
        let cache = ResultCache::new(
            CacheConfig {
                enabled_by_default: true,
                ..CacheConfig::default()
            },
            None,
        )
        .expect("valid");
        assert_eq!(
            cache.ttl_for(&ModelCachePolicy::default()),
            Some(Duration::from_secs(300))
        );
        let off = ModelCachePolicy {
            enabled: Some(false),
            ttl_s: None,
        };
        assert_eq!(cache.ttl_for(&off), None);
    }
}
