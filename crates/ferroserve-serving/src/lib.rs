//! Serving layer of ferroserve: the model manager (load, warm up, serve,
//! look up by name and version), the request pipeline every front end and
//! job calls once, the protections and result cache it applies, the model
//! repository reader, the lifecycle that makes serving follow the
//! model registry, traffic rules and rollouts, and the shadow lanes that mirror traffic to a version
//! whose answers are compared, never returned.

pub mod cache;
pub mod error;
pub mod ewma;
pub mod guard;
pub mod lifecycle;
pub mod manager;
pub mod model_config;
pub mod pipeline;
pub mod redis_link;
pub mod repository;
pub mod request_metrics;
pub mod rollout;
pub mod shadow;
pub mod stats;
pub mod traffic;

pub use error::ServingError;
pub use manager::{ModelManager, ModelSpec, ServedVersion, DEFAULT_MAX_INPUT_BYTES};
pub use pipeline::{Answer, Call, Decoded, Pipeline};
