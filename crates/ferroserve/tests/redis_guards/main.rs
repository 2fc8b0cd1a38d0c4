//! Protections shared by replicas through a real `redis-server` started on
//! a free port: rate-limit buckets and idempotency keys.

#[path = "../common/mod.rs"]
mod common;
mod idempotency;
mod rate_limits;
