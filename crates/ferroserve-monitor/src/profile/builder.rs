//! [`ProfileBuilder`]: accumulates the rows of a sample and computes its
//! [`ReferenceProfile`].

use std::collections::HashSet;

use super::stats::{categorical_summary, numeric_summary};
use super::{
    Cell, ColumnSpec, FeatureKind, FeatureProfile, FeatureSummary, ProfileError, ReferenceProfile,
    DEFAULT_BINS, DEFAULT_MAX_CATEGORIES, FORMAT_VERSION,
};

/// Knobs of profile building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOptions {
    /// Equal-width histogram bins per numeric feature (0 is taken as 1).
    pub bins: usize,
    /// Categories kept per categorical feature before the rest are folded
    /// into [`super::OTHER_CATEGORY`].
    pub max_categories: usize,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            bins: DEFAULT_BINS,
            max_categories: DEFAULT_MAX_CATEGORIES,
        }
    }
}

/// Raw values of one column, kept until `finish` because an undeclared
/// column's kind depends on all of them.
#[derive(Debug)]
struct Column {
    spec: ColumnSpec,
    /// Cells as pushed, except that declared-numeric cells are already
    /// `Number` (finite) or `Null`, and declared-categorical ones `Text` or
    /// `Null`.
    cells: Vec<Cell>,
}

impl Column {
    fn new(spec: ColumnSpec) -> Self {
        Self {
            spec,
            cells: Vec::new(),
        }
    }

    /// Checks `cell` against the declared kind and returns what to store.
    fn normalise(&self, cell: &Cell, row: u64) -> Result<Cell, ProfileError> {
        Ok(match self.spec.kind {
            Some(FeatureKind::Numeric) => match cell.number() {
                Ok(Some(x)) => Cell::Number(x),
                Ok(None) => Cell::Null,
                Err(_) => {
                    return Err(ProfileError::NotANumber {
                        column: self.spec.name.clone(),
                        row,
                        value: match cell {
                            Cell::Text(s) => s.clone(),
                            _ => String::new(),
                        },
                    })
                }
            },
            Some(FeatureKind::Categorical) => cell.category_text().map_or(Cell::Null, Cell::Text),
            None => match cell {
                Cell::Number(x) if !x.is_finite() => Cell::Null,
                other => other.clone(),
            },
        })
    }

    /// Profiles the column over `rows` rows.
    fn finish(self, rows: u64, options: &ProfileOptions) -> Result<FeatureProfile, ProfileError> {
        let numbers: Option<Vec<Option<f64>>> = match self.spec.kind {
            Some(FeatureKind::Categorical) => None,
            // Declared numeric cells were checked on push; inferred columns
            // are numeric exactly when every cell reads as a number or null.
            Some(FeatureKind::Numeric) | None => {
                self.cells.iter().map(|c| c.number().ok()).collect()
            }
        };
        let (count, summary) = match numbers {
            Some(numbers) => {
                let values: Vec<f64> = numbers.into_iter().flatten().collect();
                if values.is_empty() {
                    return Err(self.all_null(rows));
                }
                let summary = numeric_summary(&values, options.bins.max(1));
                (values.len(), FeatureSummary::Numeric(summary))
            }
            None => {
                let values: Vec<String> =
                    self.cells.iter().filter_map(Cell::category_text).collect();
                if values.is_empty() {
                    return Err(self.all_null(rows));
                }
                let summary = categorical_summary(&values, options.max_categories);
                (values.len(), FeatureSummary::Categorical(summary))
            }
        };
        let count = count as u64;
        let nulls = rows - count;
        Ok(FeatureProfile {
            name: self.spec.name,
            count,
            nulls,
            null_rate: nulls as f64 / rows as f64,
            summary,
        })
    }

    fn all_null(&self, rows: u64) -> ProfileError {
        ProfileError::AllNull {
            column: self.spec.name.clone(),
            rows,
        }
    }
}

/// Accumulates a sample row by row, then computes its [`ReferenceProfile`].
///
/// All values are kept until [`ProfileBuilder::finish`] (quantiles and type
/// inference need them), so memory grows with the sample.
#[derive(Debug)]
pub struct ProfileBuilder {
    columns: Vec<Column>,
    prediction: Option<Column>,
    options: ProfileOptions,
    rows: u64,
}

impl ProfileBuilder {
    /// A builder for rows with these columns, in this order; errors on no
    /// columns or a repeated name.
    pub fn new(columns: Vec<ColumnSpec>) -> Result<Self, ProfileError> {
        if columns.is_empty() {
            return Err(ProfileError::NoColumns);
        }
        let mut seen = HashSet::new();
        if let Some(dup) = columns.iter().find(|c| !seen.insert(c.name.as_str())) {
            return Err(ProfileError::DuplicateColumn {
                name: dup.name.clone(),
            });
        }
        Ok(Self {
            columns: columns.into_iter().map(Column::new).collect(),
            prediction: None,
            options: ProfileOptions::default(),
            rows: 0,
        })
    }

    /// Uses `options` instead of the defaults.
    pub fn with_options(mut self, options: ProfileOptions) -> Self {
        self.options = options;
        self
    }

    /// Also profiles the model's prediction, one per row, pushed with
    /// [`ProfileBuilder::push_prediction`].
    pub fn with_prediction(mut self, spec: ColumnSpec) -> Self {
        self.prediction = Some(Column::new(spec));
        self
    }

    /// Adds one row, one cell per column in column order. On error the
    /// builder is unchanged.
    pub fn push_row(&mut self, values: &[Cell]) -> Result<(), ProfileError> {
        if values.len() != self.columns.len() {
            return Err(ProfileError::RowLength {
                row: self.rows,
                expected: self.columns.len(),
                found: values.len(),
            });
        }
        let cells = self
            .columns
            .iter()
            .zip(values)
            .map(|(column, cell)| column.normalise(cell, self.rows))
            .collect::<Result<Vec<_>, _>>()?;
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            column.cells.push(cell);
        }
        self.rows += 1;
        Ok(())
    }

    /// Adds the model's prediction for the next row (predictions pair with
    /// rows by order).
    pub fn push_prediction(&mut self, value: &Cell) -> Result<(), ProfileError> {
        let column = self
            .prediction
            .as_mut()
            .ok_or(ProfileError::NoPredictionColumn)?;
        let cell = column.normalise(value, column.cells.len() as u64)?;
        column.cells.push(cell);
        Ok(())
    }

    /// Number of rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Computes the profile; errors on an empty sample, a column (or
    /// prediction) with only nulls, or a prediction count that differs from
    /// the row count.
    pub fn finish(self) -> Result<ReferenceProfile, ProfileError> {
        let rows = self.rows;
        if rows == 0 {
            return Err(ProfileError::NoRows);
        }
        let prediction = match self.prediction {
            Some(column) => {
                let predictions = column.cells.len() as u64;
                if predictions != rows {
                    return Err(ProfileError::PredictionCount { rows, predictions });
                }
                Some(column.finish(rows, &self.options)?)
            }
            None => None,
        };
        let features = self
            .columns
            .into_iter()
            .map(|c| c.finish(rows, &self.options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReferenceProfile {
            format_version: FORMAT_VERSION,
            rows,
            features,
            prediction,
        })
    }
}
