//! Staged rollouts of a new model version: the settings a rollout runs
//! with, the window of stable and canary figures the request tasks record
//! into, and the gates that judge the canary from that window.

pub mod gates;
pub mod settings;
pub mod window;
