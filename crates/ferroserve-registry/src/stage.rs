//! The lifecycle stages of a model version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Lifecycle stage of a model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// Not promoted (the stage of a new version).
    None,
    /// Under evaluation.
    Staging,
    /// Serving production traffic.
    Production,
    /// Retired.
    Archived,
}

impl Stage {
    /// The stage's name as stored and shown ("None", "Staging", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage name that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage '{0}': expected one of None, Staging, Production, Archived")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;

    /// Parses a stage name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Stage::None,
            Stage::Staging,
            Stage::Production,
            Stage::Archived,
        ]
        .into_iter()
        .find(|stage| stage.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| UnknownStage(s.to_owned()))
    }
}
