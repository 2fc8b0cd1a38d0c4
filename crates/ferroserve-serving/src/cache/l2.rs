//! The shared layer: Redis through a connection manager, every call bounded
//! by a short timeout and guarded by a breaker, so that Redis trouble costs
//! a request at most one timeout and never its answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use ferroserve_core::tensor::element_count;
use ferroserve_core::Tensor;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::breaker::RedisBreaker;
use super::cost::Ewma;
use super::key::CacheKey;
use super::CacheError;

/// Prefix of every key ferroserve writes; the suffix names the value format.
const KEY_PREFIX: &str = "ferroserve:result:v1:";

/// What one Redis call gave.
#[derive(Debug)]
pub(crate) enum L2Outcome<T> {
    /// The call succeeded.
    Done(T),
    /// The call failed or timed out (counted by the breaker).
    Failed,
    /// The breaker is open or no connection is up: Redis was not asked.
    Unavailable,
}

/// Settings of the Redis layer.
#[derive(Debug, Clone)]
pub(crate) struct L2Settings {
    pub(crate) url: String,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) failures_to_open: u32,
    pub(crate) cooldown: Duration,
}

/// Redis client state shared by every request.
pub(crate) struct L2 {
    client: redis::Client,
    settings: L2Settings,
    connection: ArcSwapOption<ConnectionManager>,
    connecting: AtomicBool,
    breaker: RedisBreaker,
    round_trip: Ewma,
}

impl L2 {
    /// Checks the URL and starts connecting in the background.
    pub(crate) fn start(settings: L2Settings) -> Result<Arc<Self>, CacheError> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| CacheError(format!("redis url {}: {e}", redact(&settings.url))))?;
        let l2 = Arc::new(L2 {
            client,
            breaker: RedisBreaker::new(settings.failures_to_open, settings.cooldown),
            settings,
            connection: ArcSwapOption::empty(),
            connecting: AtomicBool::new(false),
            round_trip: Ewma::default(),
        });
        l2.spawn_connect();
        Ok(l2)
    }

    /// Average time of a successful Redis call.
    pub(crate) fn round_trip(&self) -> Option<Duration> {
        self.round_trip.get()
    }

    /// Reads the entry of `key`; a missing or unreadable entry is `Done(None)`.
    pub(crate) async fn get(self: &Arc<Self>, key: &CacheKey) -> L2Outcome<Option<Vec<Tensor>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(redis_key(key));
        match self.call::<Option<Vec<u8>>>(cmd).await {
            L2Outcome::Done(Some(bytes)) => L2Outcome::Done(decode(&bytes)),
            L2Outcome::Done(None) => L2Outcome::Done(None),
            L2Outcome::Failed => L2Outcome::Failed,
            L2Outcome::Unavailable => L2Outcome::Unavailable,
        }
    }

    /// Stores `outputs` under `key` for `ttl`.
    pub(crate) async fn set(
        self: &Arc<Self>,
        key: &CacheKey,
        outputs: &[Tensor],
        ttl: Duration,
    ) -> L2Outcome<()> {
        let bytes = match postcard::to_stdvec(outputs) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a result for the redis cache");
                return L2Outcome::Done(());
            }
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(redis_key(key))
            .arg(bytes)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        self.call::<()>(cmd).await
    }

    async fn call<T: redis::FromRedisValue>(self: &Arc<Self>, cmd: redis::Cmd) -> L2Outcome<T> {
        if !self.breaker.allow() {
            return L2Outcome::Unavailable;
        }
        let Some(connection) = self.connection.load_full() else {
            self.spawn_connect();
            return L2Outcome::Unavailable;
        };
        let mut connection = (*connection).clone();
        let start = Instant::now();
        let result =
            tokio::time::timeout(self.settings.timeout, cmd.query_async::<T>(&mut connection))
                .await;
        match result {
            Ok(Ok(value)) => {
                self.round_trip.record(start.elapsed());
                self.breaker.success();
                L2Outcome::Done(value)
            }
            Ok(Err(e)) => {
                self.failed(&format!("redis error: {e}"));
                L2Outcome::Failed
            }
            Err(_) => {
                self.failed(&format!(
                    "redis did not answer within {:?}",
                    self.settings.timeout
                ));
                L2Outcome::Failed
            }
        }
    }

    fn failed(&self, what: &str) {
        if self.breaker.failure() {
            tracing::warn!(
                error = what,
                cooldown_ms = self.settings.cooldown.as_millis() as u64,
                "redis cache breaker opened; serving from the in-process cache only"
            );
            // The probe after the cool-down starts from a fresh connection.
            self.connection.store(None);
        } else {
            tracing::debug!(error = what, "redis cache call failed");
        }
    }

    /// Connects in the background (one attempt at a time); the outcome
    /// feeds the breaker like any call.
    fn spawn_connect(self: &Arc<Self>) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.settings.connect_timeout)
            .set_response_timeout(self.settings.timeout)
            .set_number_of_retries(1)
            .set_max_delay(self.settings.cooldown.as_millis() as u64);
        let connect = ConnectionManager::new_with_config(self.client.clone(), config);
        let this = self.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(this.settings.connect_timeout, connect).await {
                Ok(Ok(connection)) => {
                    this.connection.store(Some(Arc::new(connection)));
                    this.breaker.success();
                    tracing::info!(url = %redact(&this.settings.url), "redis cache connected");
                }
                Ok(Err(e)) => this.failed(&format!("cannot connect to redis: {e}")),
                Err(_) => this.failed(&format!(
                    "cannot connect to redis within {:?}",
                    this.settings.connect_timeout
                )),
            }
            this.connecting.store(false, Ordering::Release);
        });
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

/// The URL without its password, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
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
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
