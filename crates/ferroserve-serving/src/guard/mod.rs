//! The protections the request pipeline applies: rate limits, concurrency
//! limits, the per-version circuit breaker and its fallbacks, idempotency
//! keys, and fault injection for drills. Each refuses with a clear status
//! and counts what it refused; the pipeline decides when each runs.

pub mod breaker;
pub mod concurrency;
pub mod fallback;
pub mod faults;
mod policy;

pub use policy::{ProtectionPolicy, VersionProtection};
pub mod idempotency;
pub mod rate_limit;
