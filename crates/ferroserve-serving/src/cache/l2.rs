//! The shared layer: result entries in Redis, through the server's
//! [`RedisLink`] (short timeouts, breaker), so that Redis trouble costs a
//! request at most one timeout and never its answer.

use std::sync::Arc;
use std::time::Duration;

use ferroserve_core::tensor::element_count;
use ferroserve_core::Tensor;

use super::key::CacheKey;
use crate::redis_link::{RedisLink, RedisOutcome};

/// Prefix of every key ferroserve writes; the suffix names the value format.
const KEY_PREFIX: &str = "ferroserve:result:v1:";

/// Result entries in Redis.
#[derive(Clone)]
pub(crate) struct L2 {
    link: Arc<RedisLink>,
}

impl L2 {
    pub(crate) fn new(link: Arc<RedisLink>) -> Self {
        L2 { link }
    }

    /// Average time of a successful Redis call.
    pub(crate) fn round_trip(&self) -> Option<Duration> {
        self.link.round_trip()
    }

    /// Reads the entry of `key`; a missing or unreadable entry is `Done(None)`.
    pub(crate) async fn get(&self, key: &CacheKey) -> RedisOutcome<Option<Vec<Tensor>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(redis_key(key));
        match self.link.call::<Option<Vec<u8>>>(cmd).await {
            RedisOutcome::Done(Some(bytes)) => RedisOutcome::Done(decode(&bytes)),
            RedisOutcome::Done(None) => RedisOutcome::Done(None),
            RedisOutcome::Failed => RedisOutcome::Failed,
            RedisOutcome::Unavailable => RedisOutcome::Unavailable,
        }
    }

    /// Stores `outputs` under `key` for `ttl`.
    pub(crate) async fn set(
        &self,
        key: &CacheKey,
        outputs: &[Tensor],
        ttl: Duration,
    ) -> RedisOutcome<()> {
        let bytes = match postcard::to_stdvec(outputs) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a result for the redis cache");
                return RedisOutcome::Done(());
            }
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(redis_key(key))
            .arg(bytes)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        self.link.call::<()>(cmd).await
    }
}

fn redis_key(key: &CacheKey) -> String {
    format!("{KEY_PREFIX}{}", key.to_hex())
}

/// Decodes a stored entry; an entry that does not decode or whose shapes do
/// not match its data (another writer, a format change) counts as absent.
fn decode(bytes: &[u8]) -> Option<Vec<Tensor>> {
    let outputs: Vec<Tensor> = match postcard::from_bytes(bytes) {
        Ok(outputs) => outputs,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable entry in the redis cache; ignored");
            return None;
        }
    };
    let consistent = outputs
        .iter()
        .all(|t| element_count(&t.shape) == Some(t.data.len()));
    consistent.then_some(outputs)
}

#[cfg(test)]
mod tests {
    use ferroserve_core::TensorData;

    use super::*;

    #[test]
    fn entries_round_trip_and_bad_bytes_are_absent() {
        let outputs = vec![
            Tensor::new("p", vec![1, 3], TensorData::Fp32(vec![0.1, 0.2, 0.7])).expect("fits"),
            Tensor::new(
                "label",
                vec![1],
                TensorData::Bytes(vec![b"setosa".to_vec()]),
            )
            .expect("fits"),
        ];
        let bytes = postcard::to_stdvec(&outputs).expect("encodes");
        assert_eq!(decode(&bytes), Some(outputs));
        assert_eq!(decode(b"\xff\xff"), None);
    }

    #[test]
    fn half_precision_entries_round_trip_and_older_variants_keep_their_tags() {
        use ferroserve_core::half::{bf16, f16};
        let outputs = vec![
            Tensor::new("h", vec![2], TensorData::Fp16(vec![f16::ONE, f16::MAX])).expect("fits"),
            Tensor::new("b", vec![1], TensorData::Bf16(vec![bf16::MIN])).expect("fits"),
        ];
        let bytes = postcard::to_stdvec(&outputs).expect("encodes");
        assert_eq!(decode(&bytes), Some(outputs));
        // Entries written before FP16/BF16 existed (by other replicas, or
        // before an upgrade) still decode as what they were.
        let tag = |data: TensorData| postcard::to_stdvec(&data).expect("encodes")[0];
        assert_eq!(tag(TensorData::Fp32(Vec::new())), 9);
        assert_eq!(tag(TensorData::Bytes(Vec::new())), 11);
    }
}
