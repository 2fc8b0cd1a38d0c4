//! Serving layer of ferroserve: the model manager (load, warm up, serve,
//! look up by name and version), the model repository reader, the dynamic
//! batcher that feeds engines, the lifecycle that makes serving follow
//! the model registry, tabular samples (CSV, JSON lines, Parquet) read
//! and encoded into model inputs, and batch and asynchronous inference jobs.

pub mod cache;
pub mod error;
pub mod ewma;
pub mod guard;
pub mod jobs;
pub mod lifecycle;
pub mod manager;
pub mod model_config;
pub mod redis_link;
pub mod repository;
pub mod request_metrics;

pub use error::ServingError;
pub use manager::{ModelManager, ModelSpec, ServedVersion};
