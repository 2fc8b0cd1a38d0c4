//! The model lifecycle on the serving side: registering versions from
//! uploaded artifacts, per-model serving configs, the checks every change
//! of what a model serves passes, and the controller that makes serving
//! follow the registry with atomic, drained swaps.

pub mod alert_audit;
mod changes;
pub mod config;
pub mod controller;
pub mod plan;
pub mod register;
mod routing;
pub mod status;
mod window_pool;

pub use alert_audit::audit_alerts;
pub use config::{ModelServingConfig, ServeTarget, VersionPolicy};
pub use controller::{Controller, SERVER_ACTOR};
pub use plan::{same_interface, ServingChange, ServingPlan, WhenNothingServes};
pub use register::{ArtifactInfo, Lifecycle, RegisterVersion};
pub use status::{IndexEntry, ModelOrigin, ServingFailure, ServingStatus};
pub use window_pool::registry_window_pool;
