//! Model monitoring: live traffic compared against the reference profile
//! of each served version (input and prediction drift, the data
//! contract), online quality from ground truth, and alerts.

pub mod alerts;
pub mod contract;
pub mod drift;
pub mod features;
pub mod feedback;
pub mod hub;
mod pending;
pub mod policy;
pub mod pool;
mod pooled_feedback;
pub mod profile;
pub mod quality;
pub mod version_report;
pub mod watch;
pub mod webhook;
pub mod webhook_config;
pub mod webhook_target;
pub mod window;

pub use feedback::{Feedback, FeedbackOutcome};
pub use hub::{ModelDrift, Monitor, MonitorOptions};
pub use policy::{AlertRule, MonitorPolicy};
pub use pool::{PoolFuture, PooledWindow, TakenWindow, WindowPool};
pub use watch::{RequestKeys, VersionDrift, Watch, WatchSpec, MAX_KEY_BYTES};
