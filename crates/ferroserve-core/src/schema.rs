//! Feature schemas: named columns of a tabular model's input, so that rows
//! can be sent as objects keyed by feature name.

use serde::{Deserialize, Serialize};

use crate::InferError;

/// One named feature (a column of the model's input matrix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Feature name, as used in `{"instances": [{"name": value}]}`.
    pub name: String,
    /// Element type of the feature's column, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatype: Option<crate::DataType>,
    /// Smallest expected value; below it is a data-contract violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest expected value; above it is a data-contract violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Value used when a row omits this feature; without one the feature is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<f64>,
}

/// Column names (and class labels) of a tabular model; the format is
/// described in `docs/FEATURE-SCHEMA.md`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSchema {
    /// Features in input column order.
    pub features: Vec<FeatureSpec>,
    /// Class labels of a classifier, indexed by class id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

impl FeatureSchema {
    /// Parses a schema from JSON, rejecting empty or duplicate feature names.
    pub fn from_json(text: &str) -> Result<FeatureSchema, InferError> {
        let schema: FeatureSchema = serde_json::from_str(text)
            .map_err(|e| InferError::invalid(format!("feature schema: {e}")))?;
        schema.check()?;
        Ok(schema)
    }

    /// Checks what the JSON form cannot say: every feature has a name, and
    /// no name appears twice.
    pub fn check(&self) -> Result<(), InferError> {
        for (i, f) in self.features.iter().enumerate() {
            if f.name.is_empty() {
                return Err(InferError::invalid(format!(
                    "feature schema: feature {i} has an empty name"
                )));
            }
            if self.features[..i].iter().any(|g| g.name == f.name) {
                return Err(InferError::invalid(format!(
                    "feature schema: feature '{}' appears twice",
                    f.name
                )));
            }
        }
        Ok(())
    }

    /// Orders one object row into a vector by feature position; a missing
    /// feature takes its default or is an error, an unknown key is an error.
    pub fn row_from_object(
        &self,
        row: usize,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<f64>, InferError> {
        if let Some(unknown) = object
            .keys()
            .find(|k| !self.features.iter().any(|f| &f.name == *k))
        {
            return Err(InferError::invalid(format!(
                "instance {row}: unknown feature '{unknown}'"
            )));
        }
        self.features
            .iter()
            .map(|f| match object.get(&f.name) {
                Some(value) => value.as_f64().ok_or_else(|| {
                    InferError::invalid(format!(
                        "instance {row}: feature '{}' must be a number, got {value}",
                        f.name
                    ))
                }),
                None => f.default.ok_or_else(|| {
                    InferError::invalid(format!("instance {row}: missing feature '{}'", f.name))
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(
            r#"{"features":[{"name":"a"},{"name":"b","default":0.5}],"classes":["x","y"]}"#,
        )
        .expect("valid schema")
    }

    #[test]
    fn orders_objects_by_feature_position() {
        let row = serde_json::json!({"b": 2.0, "a": 1.0});
        let values = schema()
            .row_from_object(0, row.as_object().expect("object"))
            .expect("valid row");
        assert_eq!(values, vec![1.0, 2.0]);
    }

    #[test]
    fn defaults_fill_missing_and_errors_name_the_feature() {
        let s = schema();
        let row = serde_json::json!({"a": 1.0});
        assert_eq!(
            s.row_from_object(0, row.as_object().expect("object"))
                .expect("ok"),
            vec![1.0, 0.5]
        );
        let row = serde_json::json!({"b": 1.0});
        let err = s
            .row_from_object(3, row.as_object().expect("object"))
            .unwrap_err();
        assert_eq!(err.message, "instance 3: missing feature 'a'");
        let row = serde_json::json!({"a": "x"});
        let err = s
            .row_from_object(0, row.as_object().expect("object"))
            .unwrap_err();
        assert!(err.message.contains("feature 'a' must be a number"));
        let row = serde_json::json!({"a": 1, "z": 1});
        let err = s
            .row_from_object(0, row.as_object().expect("object"))
            .unwrap_err();
        assert!(err.message.contains("unknown feature 'z'"));
    }

    #[test]
    fn rejects_duplicate_names() {
        let err =
            FeatureSchema::from_json(r#"{"features":[{"name":"a"},{"name":"a"}]}"#).unwrap_err();
        assert!(err.message.contains("appears twice"));
    }

    #[test]
    fn rejects_unknown_fields_by_name() {
        let err = FeatureSchema::from_json(r#"{"features":[{"name":"a","mni":1}]}"#).unwrap_err();
        assert!(
            err.message.contains("unknown field `mni`"),
            "{}",
            err.message
        );
        let err = FeatureSchema::from_json(r#"{"features":[],"labels":[]}"#).unwrap_err();
        assert!(
            err.message.contains("unknown field `labels`"),
            "{}",
            err.message
        );
    }
}
