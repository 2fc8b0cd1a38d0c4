//! Sample cells and columns: the values a tabular reader produces and the
//! profile builder, the batch jobs and the load generator consume.

use serde::{Deserialize, Serialize};

/// One cell of a sample row, as the file reader produced it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Missing value.
    Null,
    /// A number; NaN and ±infinity count as nulls.
    Number(f64),
    /// Text; in a numeric column it must parse as a number (surrounding
    /// whitespace allowed), and text that parses to NaN or ±infinity is null.
    Text(String),
}

impl Cell {
    /// The cell's category in a categorical column: text as is, a finite
    /// number in Rust's shortest round-trip form (`3` for `3.0`, `0.1`);
    /// `None` for a null (missing, NaN, ±infinity). Live traffic must be
    /// turned into categories the same way.
    pub fn category_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Number(x) if x.is_finite() => Some(x.to_string()),
            Cell::Number(_) => None,
            Cell::Text(s) => Some(s.clone()),
        }
    }

    /// The cell as a numeric-column value: `Ok(Some(x))` for a finite
    /// number, `Ok(None)` for a null (missing, NaN, ±infinity, or text that
    /// parses to one of those), `Err(NotANumber)` for text that is not a number.
    pub fn number(&self) -> Result<Option<f64>, NotANumber> {
        let x = match self {
            Cell::Null => return Ok(None),
            Cell::Number(x) => *x,
            Cell::Text(s) => s.trim().parse::<f64>().map_err(|_| NotANumber)?,
        };
        Ok(x.is_finite().then_some(x))
    }
}

/// A column of the sample: its name and, if the schema gives one, its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Column name, unique within the sample.
    pub name: String,
    /// Declared kind; `None` infers it at profile building:
    /// numeric if every non-null cell is a number or text that parses as
    /// one, else categorical.
    pub kind: Option<FeatureKind>,
}

impl ColumnSpec {
    /// A column whose kind is inferred from its values.
    pub fn inferred(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: None,
        }
    }

    /// A column of the given kind.
    pub fn declared(name: impl Into<String>, kind: FeatureKind) -> Self {
        Self {
            name: name.into(),
            kind: Some(kind),
        }
    }
}

/// A text cell in a numeric column that does not parse as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotANumber;

/// Whether a feature is summarised by numbers or by category counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Finite numbers: quantiles and a histogram.
    Numeric,
    /// Text labels (numbers in such a column are their text): frequencies.
    Categorical,
}
