//! A model's protection settings as configured, and what one served
//! version holds to enforce them.

use std::sync::Arc;

use ferroserve_core::{InferError, ModelSignature};

use super::breaker::{BreakerPolicy, VersionBreaker};
use super::concurrency::{ConcurrencyLimit, ConcurrencyScope};
use super::fallback::{Fallback, ReadyFallback};
use super::faults::FaultSlot;
use super::rate_limit::ModelRateLimit;

/// A model's protection settings (fields of its serving config, or of
/// `config.toml` in a model repository).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProtectionPolicy {
    /// Token buckets of the model and of each client of it.
    pub rate_limit: ModelRateLimit,
    /// Requests one version serves at once; more are refused (429).
    pub max_concurrent_requests: Option<usize>,
    /// When the version's breaker opens, and for how long.
    pub breaker: BreakerPolicy,
    /// What answers while the breaker is open, tried in order.
    pub fallback: Vec<Fallback>,
}

impl ProtectionPolicy {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InferError> {
        self.rate_limit.validate()?;
        if self.max_concurrent_requests == Some(0) {
            return Err(InferError::invalid(
                "max_concurrent_requests must be at least 1",
            ));
        }
        self.breaker.validate()?;
        Fallback::validate(&self.fallback)
    }
}

/// What one served version holds to protect itself.
#[derive(Debug)]
pub struct VersionProtection {
    /// Its rate limits.
    pub rate_limit: ModelRateLimit,
    /// Its concurrency limit, if any.
    pub concurrency: Option<ConcurrencyLimit>,
    /// Its circuit breaker.
    pub breaker: VersionBreaker,
    /// Its fallbacks, ready to use.
    pub fallbacks: Vec<ReadyFallback>,
    /// Faults injected into it; `None` unless the server allows injection.
    pub faults: Option<Arc<FaultSlot>>,
}

impl VersionProtection {
    /// Prepares `policy` for `model` version `version` with `signature`.
    pub fn new(
        policy: &ProtectionPolicy,
        model: &str,
        version: &str,
        signature: &ModelSignature,
        faults: Option<Arc<FaultSlot>>,
    ) -> Result<Self, InferError> {
        Ok(VersionProtection {
            rate_limit: policy.rate_limit,
            concurrency: policy
                .max_concurrent_requests
                .map(|n| ConcurrencyLimit::new(n, ConcurrencyScope::Model)),
            breaker: VersionBreaker::new(policy.breaker, model, version),
            fallbacks: ReadyFallback::prepare(&policy.fallback, signature).map_err(|e| {
                InferError::new(
                    e.kind,
                    format!("model '{model}' version {version}: {}", e.message),
                )
            })?,
            faults,
        })
    }
}
