//! Which columns of the sample are the model's features, and their kinds:
//! those of a feature schema, else every column but the target and the
//! excluded ones.

use std::collections::{HashMap, HashSet};

use crate::TabularError;
use ferroserve_core::{ColumnSpec, FeatureKind};
use ferroserve_core::{DataType, FeatureSchema};

/// A feature column of the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// Column name.
    pub name: String,
    /// Index of the column in the file.
    pub index: usize,
    /// Kind declared by the schema (`BYTES`: categorical, any other
    /// datatype: numeric); `None` is inferred from the values.
    pub kind: Option<FeatureKind>,
    /// The schema's value for a missing cell, used when feeding the model.
    pub default: Option<f64>,
}

impl Feature {
    /// The profile builder's column.
    pub fn spec(&self) -> ColumnSpec {
        ColumnSpec {
            name: self.name.clone(),
            kind: self.kind,
        }
    }
}

/// Columns that are not features when there is no schema.
#[derive(Debug, Clone, Default)]
pub struct Excluded<'a> {
    /// The label column (`--target`).
    pub target: Option<&'a str>,
    /// Other columns to leave out (`--exclude`).
    pub exclude: &'a [String],
}

/// The features of a file with `columns`: the schema's, in schema order,
/// else the file's columns in file order less the excluded ones. `file`
/// names the file in errors.
pub fn select(
    file: &str,
    columns: &[String],
    schema: Option<&FeatureSchema>,
    excluded: &Excluded<'_>,
) -> Result<Vec<Feature>, TabularError> {
    // Lookups by name are hashed: the column count comes from the file and
    // the excluded names from the client, so a scan per name is quadratic.
    let mut positions: HashMap<&str, usize> = HashMap::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        positions.entry(column.as_str()).or_insert(i);
    }
    let index = |name: &str| positions.get(name).copied();
    let Some(schema) = schema else {
        for name in excluded
            .target
            .into_iter()
            .chain(excluded.exclude.iter().map(String::as_str))
        {
            if index(name).is_none() {
                return Err(TabularError::NoColumnToExclude {
                    file: file.to_owned(),
                    column: name.to_owned(),
                    columns: columns.to_vec(),
                });
            }
        }
        let left_out: HashSet<&str> = excluded.exclude.iter().map(String::as_str).collect();
        let features: Vec<Feature> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| Some(c.as_str()) != excluded.target && !left_out.contains(c.as_str()))
            .map(|(index, name)| Feature {
                name: name.clone(),
                index,
                kind: None,
                default: None,
            })
            .collect();
        if features.is_empty() {
            return Err(TabularError::NoColumnsLeft {
                file: file.to_owned(),
            });
        }
        return Ok(features);
    };
    let missing: Vec<&str> = schema
        .features
        .iter()
        .map(|f| f.name.as_str())
        .filter(|name| index(name).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(TabularError::MissingFeatures {
            file: file.to_owned(),
            missing: missing.into_iter().map(str::to_owned).collect(),
            columns: columns.to_vec(),
        });
    }
    Ok(schema
        .features
        .iter()
        .map(|f| Feature {
            name: f.name.clone(),
            index: index(&f.name).expect("checked above"),
            kind: f.datatype.map(|d| match d {
                DataType::Bytes => FeatureKind::Categorical,
                _ => FeatureKind::Numeric,
            }),
            default: f.default,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<String> {
        ["id", "age", "city", "label"].map(String::from).to_vec()
    }

    #[test]
    fn schema_features_keep_schema_order_and_kinds() {
        let schema = FeatureSchema::from_json(
            r#"{"features": [{"name": "city", "datatype": "BYTES"},
                {"name": "age", "datatype": "FP32", "default": 30}, {"name": "id"}]}"#,
        )
        .expect("schema");
        let features =
            select("s.csv", &columns(), Some(&schema), &Excluded::default()).expect("features");
        let got: Vec<(&str, usize, Option<FeatureKind>, Option<f64>)> = features
            .iter()
            .map(|f| (f.name.as_str(), f.index, f.kind, f.default))
            .collect();
        assert_eq!(
            got,
            [
                ("city", 2, Some(FeatureKind::Categorical), None),
                ("age", 1, Some(FeatureKind::Numeric), Some(30.0)),
                ("id", 0, None, None),
            ]
        );
    }

    #[test]
    fn missing_schema_columns_are_named() {
        let schema = FeatureSchema::from_json(
            r#"{"features": [{"name": "age"}, {"name": "income"}, {"name": "zip"}]}"#,
        )
        .expect("schema");
        let err = select("s.csv", &columns(), Some(&schema), &Excluded::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "s.csv has no columns for features `income`, `zip` of the feature schema; \
             its columns are: id, age, city, label"
        );
    }

    #[test]
    fn without_a_schema_every_column_but_the_excluded_ones() {
        let exclude = vec!["id".to_owned()];
        let excluded = Excluded {
            target: Some("label"),
            exclude: &exclude,
        };
        let features = select("s.csv", &columns(), None, &excluded).expect("features");
        let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["age", "city"]);
        assert!(features.iter().all(|f| f.kind.is_none()));

        let excluded = Excluded {
            target: Some("class"),
            exclude: &[],
        };
        let err = select("s.csv", &columns(), None, &excluded)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no column `class` to leave out"), "{err}");
    }
}
