//! What each part of the server gets from the configuration: the settings
//! of the registry, batcher, cache, guards, Redis, TLS, HTTP limits, jobs
//! and gRPC, in the types those parts take.

use std::time::Duration;

use anyhow::bail;
use ferroserve_batcher::BatcherConfig;
use ferroserve_monitor::webhook_target::WebhookAllowList;
use ferroserve_server::tls::TlsFiles;
use ferroserve_server::HttpLimits;
use ferroserve_serving::cache::CacheConfig;
use ferroserve_serving::guard::idempotency::IdempotencyConfig;
use ferroserve_serving::guard::rate_limit::RateLimitConfig;
use ferroserve_serving::redis_link::RedisSettings;

use super::ServeConfig;

impl ServeConfig {
    /// Where the registry and its artifacts live.
    pub fn registry_settings(&self) -> crate::registry::RegistrySettings {
        crate::registry::RegistrySettings {
            data_dir: self.data_dir.clone(),
            registry_url: self.registry_url.clone(),
            artifact_store: self.artifact_store.clone(),
        }
    }

    /// Default batching settings for the serving layer.
    pub fn batcher_config(&self) -> BatcherConfig {
        self.batching.0.clone()
    }

    /// Result cache settings for the serving layer.
    pub fn cache_config(&self) -> CacheConfig {
        let c = &self.cache;
        CacheConfig {
            enabled_by_default: c.enabled,
            max_bytes: c.max_bytes,
            ttl: Duration::from_secs(c.ttl_s),
            cost_aware: c.cost_aware,
        }
    }

    /// Server-wide rate limits for the serving layer.
    pub fn rate_limit_config(&self) -> RateLimitConfig {
        RateLimitConfig {
            per_client: self.rate_limit.per_client,
            per_model: self.rate_limit.per_model,
        }
    }

    /// Idempotency settings for the serving layer; `None` when disabled.
    pub fn idempotency_config(&self) -> Option<IdempotencyConfig> {
        let i = &self.idempotency;
        i.enabled.then(|| IdempotencyConfig {
            window: Duration::from_secs(i.window_s),
            max_bytes: i.max_bytes,
        })
    }

    /// How to reach the Redis shared by the cache, limits and idempotency
    /// keys; `None` when no URL is configured.
    pub fn redis_settings(&self) -> Option<RedisSettings> {
        let c = &self.cache;
        let timeout = Duration::from_millis(c.redis_timeout_ms);
        self.redis_url.as_ref().map(|url| RedisSettings {
            timeout,
            connect_timeout: timeout.max(Duration::from_millis(500)),
            failures_to_open: c.redis_breaker_failures,
            cooldown: Duration::from_millis(c.redis_breaker_cooldown_ms),
            ..RedisSettings::new(url.clone())
        })
    }

    /// The internal hosts and networks webhooks may reach.
    pub fn webhook_allow_list(&self) -> anyhow::Result<WebhookAllowList> {
        WebhookAllowList::parse(&self.webhook_allow)
            .map_err(|e| anyhow::anyhow!("invalid webhook_allow: {e}"))
    }

    /// The files to serve HTTPS from; `None` for plain HTTP. Refuses a
    /// certificate without its key (or the other way round) and a client
    /// CA without a certificate.
    pub fn tls_files(&self) -> anyhow::Result<Option<TlsFiles>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            })),
            (Some(_), None) => bail!("tls_cert (--tls-cert) needs tls_key (--tls-key), the certificate's private key"),
            (None, Some(_)) => bail!("tls_key (--tls-key) needs tls_cert (--tls-cert), the certificate of that key"),
            (None, None) if self.tls_client_ca.is_some() => bail!(
                "tls_client_ca (--tls-client-ca) needs tls_cert and tls_key (--tls-cert, --tls-key): client certificates are checked over TLS only"
            ),
            (None, None) => Ok(None),
        }
    }

    /// Limits of the HTTP connections and requests.
    pub fn http_limits(&self) -> anyhow::Result<HttpLimits> {
        Ok(HttpLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(self.body_read_timeout_ms),
            max_connections: self.max_connections,
            max_header_count: self.max_header_count,
            max_header_bytes: self.max_header_bytes,
            max_body_memory_bytes: self.max_body_memory_bytes,
            cors_origins: ferroserve_server::cors::parse_origins(&self.cors_origins)
                .map_err(|e| anyhow::anyhow!("invalid cors_origins: {e}"))?,
        })
    }

    /// The limits on new jobs.
    pub fn job_quotas(&self) -> ferroserve_jobs::JobQuotas {
        ferroserve_jobs::JobQuotas {
            max_queued: self.max_queued_jobs,
            max_queued_per_client: self.max_queued_jobs_per_client,
            min_free_disk_bytes: self.min_free_disk_bytes,
        }
    }

    /// Largest gRPC message accepted: the largest request body unless set.
    pub fn grpc_max_message_bytes(&self) -> usize {
        self.grpc_max_message_bytes.unwrap_or(self.max_body_bytes)
    }

    /// Default deadline of a request.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Threads for the HTTP runtime: cores minus one engine thread by
    /// default, and at least two, so that one busy worker never stalls the
    /// probes.
    pub fn http_threads(&self) -> usize {
        self.http_threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(MIN_DEFAULT_HTTP_THREADS, |n| n.get().saturating_sub(1))
                .max(MIN_DEFAULT_HTTP_THREADS)
        })
    }
}

/// Fewest HTTP threads chosen when `http_threads` is not set.
const MIN_DEFAULT_HTTP_THREADS: usize = 2;
