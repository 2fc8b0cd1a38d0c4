//! Protection of the request path: rate limits, concurrency limits, the
//! per-version circuit breaker and its fallbacks, idempotency keys, and
//! fault injection for drills. Each refuses with a clear status and counts
//! what it refused.

pub mod breaker;
pub mod concurrency;
pub mod fallback;
pub mod faults;
mod path;
mod policy;

pub use path::{infer_protected, Answer, FallbackUsed};
pub use policy::{ProtectionPolicy, VersionProtection};
pub mod idempotency;
pub mod rate_limit;
