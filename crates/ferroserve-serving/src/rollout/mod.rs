//! Rollouts of a new model version: the canary gets a growing share of the
//! requests naming no version, step by step, while gates compare it with
//! the stable version over the same window; a step passes on to the next,
//! and the last promotes the canary; a failed gate rolls it back.
//!
//! - [`settings`]: steps, minima, gates and their defaults;
//! - [`window`]: the figures of both sides since the step began;
//! - `fleet`: every replica's window added up, shared through the registry;
//! - [`gates`]: judging a window, and when failures roll back;
//! - [`live`]: a rollout as this server routes it;
//! - [`service`]: start, pause, resume, abort, promote, status;
//! - [`driver`]: the task that checks and moves rollouts;
//! - [`gauges`]: their metrics.

pub mod driver;
mod fleet;
pub mod gates;
mod gauges;
pub mod live;
pub mod service;
pub mod settings;
pub mod window;

pub use service::{RolloutAction, Rollouts};
pub use settings::RolloutSettings;
