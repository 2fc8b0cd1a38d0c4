//! Serving layer of ferroserve: the model manager (load, warm up, serve,
//! look up by name and version), the model repository reader, and the
//! dynamic batcher that feeds engines.

pub mod batcher;
pub mod manager;
pub mod repository;
pub mod request_metrics;
pub mod telemetry;

pub use manager::{ModelManager, ModelSpec, ServedVersion};
