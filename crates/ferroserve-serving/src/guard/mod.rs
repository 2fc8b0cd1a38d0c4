//! Protection of the request path: rate limits, concurrency limits, the
//! per-version circuit breaker and its fallbacks, idempotency keys, and
//! fault injection for drills. Each refuses with a clear status and counts
//! what it refused.
