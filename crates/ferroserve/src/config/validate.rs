//! The checks a loaded configuration must pass before the server starts:
//! every count and limit at least 1, settings that need each other given
//! together, lists that must parse.

use anyhow::{bail, Context};

use super::ServeConfig;

/// Smallest `max_header_bytes` the HTTP parser works with.
const MIN_HEADER_BYTES: usize = 8192;

impl ServeConfig {
    /// Refuses a configuration the server cannot run with, saying which
    /// setting is wrong.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        self.batching
            .0
            .validate()
            .context("invalid batching settings")?;
        if self.intra_op_threads == 0 {
            bail!("intra_op_threads must be at least 1");
        }
        self.auth.anonymous_role()?;
        self.traces.validate()?;
        if self.registry_poll_ms == 0 {
            bail!("registry_poll_ms must be at least 1");
        }
        self.tls_files()?;
        if self.http_threads == Some(0) {
            bail!("http_threads must be at least 1");
        }
        if self.job_lease_ms < 300 {
            bail!(
                "job_lease_ms must be at least 300 (a running job is renewed every third of it), not {}",
                self.job_lease_ms
            );
        }
        if self.max_running_jobs == 0 {
            bail!("max_running_jobs must be at least 1");
        }
        if self.max_queued_jobs == 0 || self.max_queued_jobs_per_client == 0 {
            bail!("max_queued_jobs and max_queued_jobs_per_client must be at least 1");
        }
        if self.max_concurrent_requests == Some(0) {
            bail!("max_concurrent_requests must be at least 1");
        }
        if self.monitoring.queue_size == 0 || self.monitoring.feedback_ttl_s == 0 {
            bail!("monitoring.queue_size and monitoring.feedback_ttl_s must be at least 1");
        }
        for (what, limit) in [
            ("rate_limit.per_client", self.rate_limit.per_client),
            ("rate_limit.per_model", self.rate_limit.per_model),
        ] {
            if let Some(limit) = limit {
                limit.validate(what)?;
            }
        }
        if self.idempotency.window_s == 0 || self.idempotency.max_bytes == 0 {
            bail!("idempotency: window_s and max_bytes must each be at least 1");
        }
        for (what, value) in [
            (
                "header_read_timeout_ms",
                self.header_read_timeout_ms as usize,
            ),
            ("body_read_timeout_ms", self.body_read_timeout_ms as usize),
            ("max_connections", self.max_connections),
            ("max_header_count", self.max_header_count),
            ("max_header_bytes", self.max_header_bytes),
            ("max_body_memory_bytes", self.max_body_memory_bytes),
            ("grpc_max_message_bytes", self.grpc_max_message_bytes()),
        ] {
            if value == 0 {
                bail!("{what} must be at least 1");
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            bail!("max_header_bytes must be at least {MIN_HEADER_BYTES}");
        }
        self.webhook_allow_list()?;
        ferroserve_server::cors::parse_origins(&self.cors_origins)
            .map_err(|e| anyhow::anyhow!("invalid cors_origins: {e}"))?;
        let c = &self.cache;
        if c.max_bytes == 0 || c.ttl_s == 0 || c.redis_timeout_ms == 0 {
            bail!("cache: max_bytes, ttl_s and redis_timeout_ms must each be at least 1");
        }
        Ok(())
    }
}
