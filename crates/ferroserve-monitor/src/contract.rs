//! The data contract of a version: value ranges from its feature schema,
//! and types, categories and whether nulls occur from its reference
//! profile. Values that break it are counted per feature and, when the
//! model's config says so, refused.

use std::collections::HashSet;

use ferroserve_core::json::float_text;
use ferroserve_core::{DataType, FeatureSchema};
use serde::Serialize;

use super::features::{number_label, Value};
use super::profile::{FeatureSummary, ReferenceProfile, OTHER_CATEGORY};

/// How a value broke the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Violation {
    /// A null where the reference had none.
    Null,
    /// Below the schema's minimum.
    BelowMin,
    /// Above the schema's maximum.
    AboveMax,
    /// A category the reference never saw (its category list is complete).
    UnknownCategory,
    /// A string for a numeric feature.
    WrongType,
}

impl Violation {
    /// Every kind, in label order.
    pub const ALL: [Violation; 5] = [
        Violation::Null,
        Violation::BelowMin,
        Violation::AboveMax,
        Violation::UnknownCategory,
        Violation::WrongType,
    ];

    /// Label in metrics and reports.
    pub fn as_label(self) -> &'static str {
        match self {
            Violation::Null => "null",
            Violation::BelowMin => "below_min",
            Violation::AboveMax => "above_max",
            Violation::UnknownCategory => "unknown_category",
            Violation::WrongType => "wrong_type",
        }
    }
}

/// What one feature accepts.
#[derive(Debug, Clone, Default)]
struct FeatureRule {
    name: String,
    numeric: bool,
    nulls_allowed: bool,
    min: Option<f64>,
    max: Option<f64>,
    /// The complete set of known categories, when the profile kept them all.
    categories: Option<HashSet<String>>,
}

/// The contract of every monitored feature, in feature order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Contract {
    rules: Vec<FeatureRule>,
}

impl Contract {
    /// The contract of `names`: ranges from `schema`, the rest from
    /// `profile`. Without a profile, features are numeric (unless the
    /// schema says BYTES) and never null.
    pub(crate) fn new(
        names: &[String],
        schema: Option<&FeatureSchema>,
        profile: Option<&ReferenceProfile>,
    ) -> Self {
        let rules = names
            .iter()
            .map(|name| {
                let spec = schema.and_then(|s| s.features.iter().find(|f| &f.name == name));
                let mut rule = FeatureRule {
                    name: name.clone(),
                    numeric: spec.and_then(|s| s.datatype) != Some(DataType::Bytes),
                    min: spec.and_then(|s| s.min),
                    max: spec.and_then(|s| s.max),
                    ..FeatureRule::default()
                };
                if let Some(feature) = profile.and_then(|p| p.feature(name)) {
                    rule.nulls_allowed = feature.nulls > 0;
                    match &feature.summary {
                        FeatureSummary::Numeric(_) => rule.numeric = true,
                        FeatureSummary::Categorical(c) => {
                            rule.numeric = false;
                            let complete = c.categories.iter().all(|c| c.value != OTHER_CATEGORY);
                            rule.categories = complete
                                .then(|| c.categories.iter().map(|c| c.value.clone()).collect());
                        }
                    }
                }
                rule
            })
            .collect();
        Contract { rules }
    }

    /// The violation of `value` for feature `feature`, if any.
    pub(crate) fn check(&self, feature: usize, value: Value<'_>) -> Option<Violation> {
        let rule = self.rules.get(feature)?;
        match value {
            Value::Null => (!rule.nulls_allowed).then_some(Violation::Null),
            Value::Text(_) if rule.numeric => Some(Violation::WrongType),
            Value::Text(bytes) => rule.categories.as_ref().and_then(|known| {
                let text = String::from_utf8_lossy(bytes);
                (!known.contains(text.as_ref())).then_some(Violation::UnknownCategory)
            }),
            Value::Number(v) if !rule.numeric => rule.categories.as_ref().and_then(|known| {
                (!known.contains(&number_label(v))).then_some(Violation::UnknownCategory)
            }),
            Value::Number(v) => {
                if rule.min.is_some_and(|min| v < min) {
                    Some(Violation::BelowMin)
                } else if rule.max.is_some_and(|max| v > max) {
                    Some(Violation::AboveMax)
                } else {
                    None
                }
            }
        }
    }

    /// A sentence for a refused request: which row and feature, and why.
    pub(crate) fn describe(
        &self,
        feature: usize,
        row: usize,
        value: Value<'_>,
        violation: Violation,
    ) -> String {
        let Some(rule) = self.rules.get(feature) else {
            return format!("row {row}: feature {feature} breaks the data contract");
        };
        let shown = match value {
            Value::Null => "null".to_owned(),
            Value::Number(v) => float_text(v),
            Value::Text(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
        };
        let why = match violation {
            Violation::Null => "nulls are not allowed".to_owned(),
            Violation::BelowMin => format!(
                "below the minimum {}",
                float_text(rule.min.unwrap_or_default())
            ),
            Violation::AboveMax => format!(
                "above the maximum {}",
                float_text(rule.max.unwrap_or_default())
            ),
            Violation::UnknownCategory => "not a known category".to_owned(),
            Violation::WrongType => "a string where a number is expected".to_owned(),
        };
        format!(
            "row {row}, feature '{}': {shown} is {why} (data contract of the model)",
            rule.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Cell, ColumnSpec, ProfileBuilder};

    fn profile() -> ReferenceProfile {
        let mut builder = ProfileBuilder::new(vec![
            ColumnSpec::inferred("width"),
            ColumnSpec::inferred("colour"),
        ])
        .expect("columns");
        for (w, c) in [(1.0, "red"), (2.0, "blue")] {
            builder
                .push_row(&[Cell::Number(w), Cell::Text(c.into())])
                .expect("row");
        }
        builder.finish().expect("profile")
    }

    #[test]
    fn ranges_types_categories_and_nulls_are_checked() {
        let schema: FeatureSchema =
            serde_json::from_str(r#"{"features": [{"name": "width", "min": 0.5, "max": 3}]}"#)
                .expect("schema");
        let names = vec!["width".to_string(), "colour".to_string()];
        let contract = Contract::new(&names, Some(&schema), Some(&profile()));
        assert_eq!(contract.check(0, Value::Number(1.0)), None);
        assert_eq!(
            contract.check(0, Value::Number(0.1)),
            Some(Violation::BelowMin)
        );
        assert_eq!(
            contract.check(0, Value::Number(9.0)),
            Some(Violation::AboveMax)
        );
        assert_eq!(contract.check(0, Value::Null), Some(Violation::Null));
        assert_eq!(
            contract.check(0, Value::Text(b"x")),
            Some(Violation::WrongType)
        );
        assert_eq!(contract.check(1, Value::Text(b"red")), None);
        assert_eq!(
            contract.check(1, Value::Text(b"green")),
            Some(Violation::UnknownCategory)
        );
        let message = contract.describe(0, 4, Value::Number(9.0), Violation::AboveMax);
        assert!(
            message.contains("row 4, feature 'width': 9 is above the maximum 3"),
            "{message}"
        );
        let message = contract.describe(0, 0, Value::Number(1e300), Violation::AboveMax);
        assert!(message.contains("'width': 1e300 is above"), "{message}");
    }
}
