//! The choice of inference engine for a model, as configs, registry rows
//! and the command line name it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which engine should run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// ONNX Runtime when the library was found, tract otherwise.
    #[default]
    Auto,
    /// ONNX Runtime; an error when the library is missing.
    OnnxRuntime,
    /// tract.
    Tract,
}

impl EngineChoice {
    /// The configuration name: `auto`, `onnxruntime` or `tract`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::OnnxRuntime => "onnxruntime",
            EngineChoice::Tract => "tract",
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when an engine name is not `auto`, `onnxruntime` or `tract`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine {0:?}; expected auto, onnxruntime or tract")]
pub struct UnknownEngine(pub String);

impl FromStr for EngineChoice {
    type Err = UnknownEngine;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            EngineChoice::Auto,
            EngineChoice::OnnxRuntime,
            EngineChoice::Tract,
        ]
        .into_iter()
        .find(|choice| choice.as_str() == s)
        .ok_or_else(|| UnknownEngine(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for choice in [
            EngineChoice::Auto,
            EngineChoice::OnnxRuntime,
            EngineChoice::Tract,
        ] {
            assert_eq!(choice.to_string().parse::<EngineChoice>(), Ok(choice));
            let json = serde_json::to_string(&choice).expect("serializes");
            assert_eq!(json, format!("\"{choice}\""));
            assert_eq!(
                serde_json::from_str::<EngineChoice>(&json).ok(),
                Some(choice)
            );
        }
        let error = "ort".parse::<EngineChoice>().unwrap_err();
        assert!(error.to_string().contains("\"ort\""), "{error}");
    }
}
