//! Cache: where a version's answers are kept — the result cache (L1 in
//! process, L2 Redis), when the model caches or keeps answers for its
//! `cache` fallback — and the lookup a call makes before the model runs.

use std::time::Duration;

use ferroserve_core::{InferRequest, Tensor};

use super::call::Reached;
use crate::cache::{CacheDirective, CacheKey, CacheStatus, ResultCache};
use crate::guard::fallback::ReadyFallback;
use crate::ServedVersion;

/// Where a version's answers are kept: the result cache, when the model
/// caches or keeps answers for its `cache` fallback.
pub(super) struct Storage<'a> {
    cache: &'a ResultCache,
    ttl: Duration,
    /// The model caches (answers are looked up, not only kept for the
    /// fallback).
    pub(super) lookups: bool,
}

impl<'a> Storage<'a> {
    pub(super) fn of(
        cache: Option<&'a ResultCache>,
        served: &ServedVersion,
    ) -> Option<Storage<'a>> {
        let cache = cache?;
        let own_ttl = cache.ttl_for(served.cache_policy());
        let ttl = own_ttl.or_else(|| {
            served
                .protection()
                .fallbacks
                .contains(&ReadyFallback::Cache)
                .then(|| cache.default_ttl())
        })?;
        Some(Storage {
            cache,
            ttl,
            lookups: own_ttl.is_some(),
        })
    }

    pub(super) fn key(&self, served: &ServedVersion, request: &InferRequest) -> CacheKey {
        CacheKey::new(served.name(), served.cache_identity(), request)
    }

    pub(super) async fn get(
        &self,
        served: &ServedVersion,
        key: &CacheKey,
    ) -> Option<(Vec<Tensor>, CacheStatus)> {
        self.cache.get(key, self.ttl, served.inference_cost()).await
    }

    pub(super) async fn put(&self, served: &ServedVersion, key: CacheKey, outputs: &[Tensor]) {
        self.cache
            .put(key, outputs, self.ttl, served.inference_cost())
            .await;
    }
}

/// What the cache stage found for a call.
pub(super) enum Lookup {
    /// An answer kept for the same input: the call is answered.
    Hit(Reached),
    /// Nothing usable; how the cache took part so far.
    Miss(CacheStatus),
}

/// Looks `request` up in `storage` under `key` when the model caches and
/// the caller's directive allows; counts a bypass otherwise.
pub(super) async fn lookup(
    storage: Option<&Storage<'_>>,
    key: Option<&CacheKey>,
    served: &ServedVersion,
    request: &InferRequest,
    directive: CacheDirective,
) -> Lookup {
    let (Some(storage), Some(key)) = (storage, key) else {
        return Lookup::Miss(CacheStatus::Off);
    };
    if !storage.lookups {
        return Lookup::Miss(CacheStatus::Off);
    }
    if !directive.lookup {
        storage.cache.count_bypass();
        return Lookup::Miss(CacheStatus::Bypass);
    }
    let started = std::time::Instant::now();
    let found = storage.get(served, key).await;
    served
        .request_stats()
        .cache_lookup(found.is_some(), started.elapsed());
    match found {
        Some((outputs, hit)) => Lookup::Hit(Reached {
            response: served.answer(request.id.clone(), outputs),
            cache: hit,
            fallback: None,
        }),
        None => Lookup::Miss(CacheStatus::Miss),
    }
}
