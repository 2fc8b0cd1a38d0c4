//! Parsing of `models:/` URIs that name one version of a model.

use std::str::FromStr;

use crate::error::{RegistryError, Result};
use crate::types::Stage;
use crate::validate;

/// A reference to one version of a model, as written in a `models:/` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/iris/3`: a version number.
    Version {
        /// Model name.
        model: String,
        /// Version number.
        version: i64,
    },
    /// `models:/iris@champion`: the version an alias points to.
    Alias {
        /// Model name.
        model: String,
        /// Alias name.
        alias: String,
    },
    /// `models:/iris/Production`: the newest version in a stage.
    Stage {
        /// Model name.
        model: String,
        /// Stage (case-insensitive in the URI).
        stage: Stage,
    },
    /// `models:/iris/latest`: the newest ready version.
    Latest {
        /// Model name.
        model: String,
    },
}

impl ModelUri {
    /// Name of the model the URI refers to.
    pub fn model(&self) -> &str {
        match self {
            ModelUri::Version { model, .. }
            | ModelUri::Alias { model, .. }
            | ModelUri::Stage { model, .. }
            | ModelUri::Latest { model } => model,
        }
    }
}

impl FromStr for ModelUri {
    type Err = RegistryError;

    fn from_str(uri: &str) -> Result<Self> {
        let bad = |why: &str| {
            RegistryError::Invalid(format!(
                "model URI '{uri}' is invalid: {why} (expected models:/NAME/VERSION, \
                 models:/NAME/STAGE, models:/NAME/latest or models:/NAME@ALIAS)"
            ))
        };
        let rest = uri
            .strip_prefix("models:/")
            .ok_or_else(|| bad("it does not start with 'models:/'"))?;
        if let Some((model, alias)) = rest.split_once('@') {
            validate::model_name(model)?;
            validate::alias_name(alias)?;
            return Ok(ModelUri::Alias {
                model: model.to_owned(),
                alias: alias.to_owned(),
            });
        }
        let (model, selector) = rest
            .split_once('/')
            .ok_or_else(|| bad("no version, stage, 'latest' or '@alias' after the name"))?;
        validate::model_name(model)?;
        let model = model.to_owned();
        if selector.eq_ignore_ascii_case("latest") {
            return Ok(ModelUri::Latest { model });
        }
        if selector.bytes().all(|b| b.is_ascii_digit()) && !selector.is_empty() {
            let version = selector
                .parse::<i64>()
                .map_err(|_| bad("the version number is too large"))?;
            return Ok(ModelUri::Version { model, version });
        }
        let stage = selector
            .parse::<Stage>()
            .map_err(|_| bad(&format!("'{selector}' is not a version, stage or 'latest'")))?;
        Ok(ModelUri::Stage { model, stage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ModelUri {
        s.parse().expect("valid URI")
    }

    #[test]
    fn all_forms() {
        assert_eq!(
            parse("models:/iris/3"),
            ModelUri::Version {
                model: "iris".into(),
                version: 3
            }
        );
        assert_eq!(
            parse("models:/iris@champion"),
            ModelUri::Alias {
                model: "iris".into(),
                alias: "champion".into()
            }
        );
        assert_eq!(
            parse("models:/iris/production"),
            ModelUri::Stage {
                model: "iris".into(),
                stage: Stage::Production
            }
        );
        assert_eq!(
            parse("models:/iris/latest"),
            ModelUri::Latest {
                model: "iris".into()
            }
        );
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "iris/3",
            "models:/iris",
            "models:/iris/",
            "models:/iris/Prod",
            "models:/ir is/3",
            "models:/iris@x y",
            "models:/iris/99999999999999999999",
        ] {
            assert!(bad.parse::<ModelUri>().is_err(), "{bad} should be rejected");
        }
    }
}
