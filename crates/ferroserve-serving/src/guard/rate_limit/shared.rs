//! Token buckets kept in Redis, so that every replica takes from the same
//! ones: one Lua script refills all of a request's buckets and takes a token
//! from each only if every one has one, atomically.

use std::sync::Arc;
use std::time::Duration;

use crate::redis_link::{RedisLink, RedisOutcome};

use super::{Applicable, LimitScope, RateLimited};

/// Start of every rate-limit key (the version changes with the layout).
pub(super) const KEY_PREFIX: &str = "ferroserve:ratelimit:v1";

/// KEYS: the buckets; ARGV: rate (tokens/s) and burst of each, in turn.
/// A bucket is a hash {tokens, ts_ms}; a missing one is full. Returns
/// {0, 0} when a token was taken from every bucket, else {i, wait_ms}: the
/// bucket (1-based) whose token is furthest away and how long until then.
const SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local longest = 2592000000
local tokens = {}
local worst, worst_wait = 0, 0
for i = 1, #KEYS do
  local per_ms = tonumber(ARGV[2 * i - 1]) / 1000
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts_ms')
  local have, since = tonumber(state[1]), tonumber(state[2])
  if have == nil or since == nil then
    have = burst
  else
    have = math.min(burst, have + math.max(0, now - since) * per_ms)
  end
  tokens[i] = have
  if have < 1 then
    local wait = math.min(longest, math.ceil((1 - have) / per_ms))
    if wait > worst_wait then
      worst, worst_wait = i, wait
    end
  end
end
if worst > 0 then
  return {worst, worst_wait}
end
for i = 1, #KEYS do
  local per_ms = tonumber(ARGV[2 * i - 1]) / 1000
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', tokens[i] - 1, 'ts_ms', now)
  redis.call('PEXPIRE', KEYS[i], math.min(longest, math.ceil(burst / per_ms)) + 1000)
end
return {0, 0}
";

/// The buckets of every replica, in Redis.
pub(super) struct SharedBuckets {
    link: Arc<RedisLink>,
    script: redis::Script,
}

impl SharedBuckets {
    pub(super) fn new(link: Arc<RedisLink>) -> Self {
        SharedBuckets {
            link,
            script: redis::Script::new(SCRIPT),
        }
    }

    /// Takes a token from each bucket in `applicable`, or from none; `None`
    /// when Redis did not answer.
    pub(super) async fn check(
        &self,
        client: &str,
        model: &str,
        applicable: &Applicable,
    ) -> Option<Result<(), RateLimited>> {
        let buckets: Vec<_> = applicable.iter().collect();
        let keys: Vec<String> = buckets
            .iter()
            .map(|(scope, _)| key(*scope, client, model))
            .collect();
        // The period, not the configured rate, so that the rate is always a
        // number Lua can read, and the same as the local buckets use.
        let args: Vec<String> = buckets
            .iter()
            .flat_map(|(_, limit)| {
                [
                    (1.0 / limit.period().as_secs_f64()).to_string(),
                    limit.burst().to_string(),
                ]
            })
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match self
            .link
            .eval::<(i64, i64)>(&self.script, &keys, &args)
            .await
        {
            RedisOutcome::Done((0, _)) => Some(Ok(())),
            RedisOutcome::Done((refused, wait_ms)) => {
                let Some((scope, _)) = usize::try_from(refused - 1)
                    .ok()
                    .and_then(|i| buckets.get(i))
                else {
                    tracing::warn!(
                        refused,
                        "the rate-limit script named no bucket of the request"
                    );
                    return None;
                };
                Some(Err(RateLimited {
                    scope: *scope,
                    retry_after: Duration::from_millis(wait_ms.max(1).unsigned_abs()),
                }))
            }
            RedisOutcome::Failed | RedisOutcome::Unavailable => None,
        }
    }
}

/// The Redis key of one bucket. Model names hold no `:` (the registry
/// refuses them), so the model-client key is unambiguous.
pub(super) fn key(scope: LimitScope, client: &str, model: &str) -> String {
    match scope {
        LimitScope::Client => format!("{KEY_PREFIX}:client:{client}"),
        LimitScope::Model => format!("{KEY_PREFIX}:model:{model}"),
        LimitScope::ModelClient => format!("{KEY_PREFIX}:model_client:{model}:{client}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        assert_eq!(
            key(LimitScope::Client, "10.0.0.1", "iris"),
            "ferroserve:ratelimit:v1:client:10.0.0.1"
        );
        assert_eq!(
            key(LimitScope::Model, "10.0.0.1", "iris"),
            "ferroserve:ratelimit:v1:model:iris"
        );
        assert_eq!(
            key(LimitScope::ModelClient, "10.0.0.1", "iris"),
            "ferroserve:ratelimit:v1:model_client:iris:10.0.0.1"
        );
    }
}
