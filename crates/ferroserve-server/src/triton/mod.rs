//! Triton's extensions of the KServe v2 protocol that ferroserve serves:
//! the model configuration and the statistics, as values any front end
//! (HTTP here, gRPC too) encodes, and their HTTP handlers.

pub mod config;
pub(crate) mod routes;
pub mod stats;

pub use config::{model_config, model_config_of, TritonModelConfig};
pub use stats::statistics;
