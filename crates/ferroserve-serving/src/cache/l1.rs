//! The in-process layer: a moka cache bounded by the bytes of the cached
//! outputs, with TinyLFU admission and a TTL per entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroserve_core::Tensor;
use moka::future::Cache;

use super::key::CacheKey;

/// Bytes counted per entry on top of its tensor data (key, names, shape, bookkeeping).
const ENTRY_OVERHEAD: usize = 128;

/// One cached answer.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) outputs: Vec<Tensor>,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<CacheKey, Arc<Entry>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// In-process result cache.
pub(crate) struct L1 {
    cache: Cache<CacheKey, Arc<Entry>>,
}

impl L1 {
    /// A cache holding at most `max_bytes` of outputs.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_key: &CacheKey, entry: &Arc<Entry>| {
                u32::try_from(weight(&entry.outputs)).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        L1 { cache }
    }

    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.cache.get(key).await
    }

    pub(crate) async fn insert(&self, key: CacheKey, outputs: Vec<Tensor>, ttl: Duration) {
        self.cache
            .insert(key, Arc::new(Entry { outputs, ttl }))
            .await;
    }

    /// Bytes held now (after pending evictions are applied).
    #[cfg(test)]
    pub(crate) async fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }
}

fn weight(outputs: &[Tensor]) -> usize {
    outputs
        .iter()
        .map(|t| t.data.byte_size() + t.name.len() + 8 * t.shape.len())
        .sum::<usize>()
        + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferroserve_core::{InferRequest, TensorData};

    use super::*;

    fn key(i: u32) -> CacheKey {
        let request = InferRequest {
            inputs: vec![Tensor::new("x", vec![1], TensorData::Uint32(vec![i])).expect("fits")],
            parameters: BTreeMap::new(),
            ..InferRequest::default()
        };
        CacheKey::new("m", "1", &request)
    }

    fn outputs(floats: usize) -> Vec<Tensor> {
        vec![Tensor::new("y", vec![floats], TensorData::Fp32(vec![0.5; floats])).expect("fits")]
    }

    #[tokio::test]
    async fn byte_bound_evicts() {
        let l1 = L1::new(64 * 1024);
        for i in 0..200 {
            // About 4 KiB each: 200 of them are 12 times the bound.
            l1.insert(key(i), outputs(1000), Duration::from_secs(60))
                .await;
        }
        let size = l1.weighted_size().await;
        assert!(size <= 64 * 1024, "holds {size} bytes");
        let mut present = 0;
        for i in 0..200 {
            present += usize::from(l1.get(&key(i)).await.is_some());
        }
        assert!(present > 0 && present <= 16, "{present} entries kept");
    }

    #[test]
    fn each_entry_lives_for_its_own_ttl() {
        use moka::Expiry;
        let entry = |ttl| {
            Arc::new(Entry {
                outputs: outputs(1),
                ttl,
            })
        };
        for ttl in [Duration::from_millis(50), Duration::from_secs(60)] {
            let lifetime = PerEntryTtl.expire_after_create(&key(1), &entry(ttl), Instant::now());
            assert_eq!(lifetime, Some(ttl));
        }
    }

    #[tokio::test]
    async fn entries_expire_after_their_ttl() {
        let l1 = L1::new(1024 * 1024);
        l1.insert(key(1), outputs(4), Duration::from_millis(50))
            .await;
        l1.insert(key(2), outputs(4), Duration::from_secs(3600))
            .await;
        let hit = l1.get(&key(2)).await.expect("a fresh entry is there");
        assert_eq!(hit.outputs, outputs(4));
        // However slow the machine, the short TTL passes well within the
        // bound; the hour-long one cannot.
        let until = Instant::now() + Duration::from_secs(30);
        while l1.get(&key(1)).await.is_some() {
            assert!(
                Instant::now() < until,
                "an entry with a 50 ms TTL is still there after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(l1.get(&key(2)).await.is_some(), "longer TTL kept");
    }
}
