//! Why a reference profile could not be built or read.

/// Why a reference profile could not be built or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// The builder was given no columns.
    #[error("no columns: a profile needs at least one feature")]
    NoColumns,
    /// Two columns share a name.
    #[error("column `{name}` appears more than once")]
    DuplicateColumn {
        /// The repeated name.
        name: String,
    },
    /// A row had the wrong number of cells.
    #[error("row {row} has {found} values; expected {expected} (one per column)")]
    RowLength {
        /// Index of the row (0-based, in push order).
        row: u64,
        /// Number of columns.
        expected: usize,
        /// Number of cells in the row.
        found: usize,
    },
    /// A column declared numeric held text that is not a number.
    #[error("column `{column}`, row {row}: {value:?} is not a number, but the column is declared numeric")]
    NotANumber {
        /// Column name.
        column: String,
        /// Index of the row (0-based).
        row: u64,
        /// The offending text.
        value: String,
    },
    /// A prediction was pushed to a builder made without a prediction column.
    #[error(
        "a prediction was pushed, but the builder has no prediction column (use `with_prediction`)"
    )]
    NoPredictionColumn,
    /// The number of predictions differs from the number of rows.
    #[error("{predictions} predictions for {rows} rows; there must be one per row")]
    PredictionCount {
        /// Rows pushed.
        rows: u64,
        /// Predictions pushed.
        predictions: u64,
    },
    /// `finish` was called before any row was pushed.
    #[error("the sample has no rows")]
    NoRows,
    /// A column had only nulls, so it has no distribution.
    #[error("column `{column}` has no non-null values in {rows} rows")]
    AllNull {
        /// Column name.
        column: String,
        /// Number of rows.
        rows: u64,
    },
    /// The stored JSON does not have the profile's shape.
    #[error("reference profile JSON at `{path}`: {message}")]
    Json {
        /// Where in the document (`features[2].summary`, `.` for the root).
        path: String,
        /// What serde reported.
        message: String,
    },
    /// The stored profile has a layout version this code does not read.
    #[error("reference profile format_version {found} is not supported; expected {expected}")]
    UnsupportedVersion {
        /// Version in the document.
        found: u32,
        /// Version this code reads.
        expected: u32,
    },
    /// A stored profile field breaks an invariant.
    #[error("reference profile, {location}, field `{field}`: {reason}")]
    Invalid {
        /// Which feature: ``feature `age` `` or ``prediction `score` ``, or
        /// `profile` for the top level.
        location: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
