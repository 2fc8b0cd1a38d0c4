//! The one Redis link shared by the result cache, rate limits and
//! idempotency: a connection manager, every call bounded by a short timeout
//! and guarded by a breaker, so that Redis trouble costs a request at most
//! one timeout and never its answer.

mod breaker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::ServingError;
use crate::ewma::Ewma;
use breaker::RedisBreaker;

/// What one Redis call gave.
#[derive(Debug)]
pub enum RedisOutcome<T> {
    /// The call succeeded.
    Done(T),
    /// The call failed or timed out (counted by the breaker).
    Failed,
    /// The breaker is open or no connection is up: Redis was not asked.
    Unavailable,
}

/// How ferroserve talks to Redis (its `Debug` hides the URL's password).
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]` (secret: logged redacted).
    pub url: String,
    /// Longest wait for one call before it counts as failed.
    pub timeout: Duration,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long Redis is left alone once the breaker opens.
    pub cooldown: Duration,
}

impl RedisSettings {
    /// Settings for `url` with the defaults: 5 ms calls, 500 ms connects,
    /// open after 5 failures, 2 s cool-down.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            url: url.into(),
            timeout: Duration::from_millis(5),
            connect_timeout: Duration::from_millis(500),
            failures_to_open: 5,
            cooldown: Duration::from_secs(2),
        }
    }
}

/// Redis client state shared by every request.
pub struct RedisLink {
    client: redis::Client,
    settings: RedisSettings,
    connection: ArcSwapOption<ConnectionManager>,
    connecting: AtomicBool,
    breaker: RedisBreaker,
    round_trip: Ewma,
}

impl RedisLink {
    /// Checks the URL and starts connecting in the background (must run
    /// inside a tokio runtime); nothing waits for Redis to be up.
    pub fn start(settings: RedisSettings) -> Result<Arc<Self>, ServingError> {
        if settings.timeout.is_zero() {
            return Err(ServingError::Redis {
                reason: "the call timeout must be at least 1 ms".into(),
            });
        }
        let client =
            redis::Client::open(settings.url.as_str()).map_err(|e| ServingError::Redis {
                reason: format!("url {}: {e}", redact(&settings.url)),
            })?;
        let link = Arc::new(RedisLink {
            client,
            breaker: RedisBreaker::new(settings.failures_to_open, settings.cooldown),
            settings,
            connection: ArcSwapOption::empty(),
            connecting: AtomicBool::new(false),
            round_trip: Ewma::default(),
        });
        link.spawn_connect();
        Ok(link)
    }

    /// Average time of a successful Redis call.
    pub fn round_trip(&self) -> Option<Duration> {
        self.round_trip.get()
    }

    /// The settings this link runs with.
    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// A connection subscribed to `channel`, for a task that waits on
    /// another process's news; `None` when the breaker is open or Redis
    /// does not answer within the call timeout.
    pub async fn subscribe(&self, channel: &str) -> Option<redis::aio::PubSub> {
        if !self.breaker.allow() {
            return None;
        }
        let subscribed = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(self.settings.timeout, subscribed).await {
            Ok(Ok(pubsub)) => Some(pubsub),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot subscribe to a redis channel");
                None
            }
            Err(_) => None,
        }
    }

    /// Runs `cmd`, unless the breaker is open or no connection is up.
    pub async fn call<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        cmd: redis::Cmd,
    ) -> RedisOutcome<T> {
        self.query(|mut connection| async move { cmd.query_async::<T>(&mut connection).await })
            .await
    }

    /// Runs a Lua `script` with `keys` and `args` (EVALSHA, loading it on
    /// first use), under the same timeout and breaker as any call.
    pub async fn eval<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> RedisOutcome<T> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.query(
            |mut connection| async move { invocation.invoke_async::<T>(&mut connection).await },
        )
        .await
    }

    async fn query<T, F, Fut>(self: &Arc<Self>, run: F) -> RedisOutcome<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return RedisOutcome::Unavailable;
        }
        let Some(connection) = self.connection.load_full() else {
            self.spawn_connect();
            return RedisOutcome::Unavailable;
        };
        let connection = (*connection).clone();
        let start = Instant::now();
        let result = tokio::time::timeout(self.settings.timeout, run(connection)).await;
        match result {
            Ok(Ok(value)) => {
                self.round_trip.record(start.elapsed());
                self.breaker.success();
                RedisOutcome::Done(value)
            }
            Ok(Err(e)) => {
                self.failed(&format!("redis error: {e}"));
                RedisOutcome::Failed
            }
            Err(_) => {
                self.failed(&format!(
                    "redis did not answer within {:?}",
                    self.settings.timeout
                ));
                RedisOutcome::Failed
            }
        }
    }

    fn failed(&self, what: &str) {
        if self.breaker.failure() {
            tracing::warn!(
                error = what,
                cooldown_ms = self.settings.cooldown.as_millis() as u64,
                "redis breaker opened; caches, limits and idempotency keys run in process only"
            );
            // The probe after the cool-down starts from a fresh connection.
            self.connection.store(None);
        } else {
            tracing::debug!(error = what, "redis call failed");
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
                    tracing::info!(url = %redact(&this.settings.url), "redis connected");
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

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact(&self.url))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("failures_to_open", &self.failures_to_open)
            .field("cooldown", &self.cooldown)
            .finish()
    }
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    ferroserve_core::secrets::redacted_credentials(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
