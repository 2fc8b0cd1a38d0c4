//! Why a tabular sample could not be read or fed to a model.

use std::io;

use ferroserve_core::{ErrorKind, InferError};

/// Why a tabular sample could not be read or fed to a model. Each variant
/// carries the file, the line (text formats) or row (Parquet) and the
/// column where they apply, and its message names them.
///
/// Causes from other libraries are kept as text in the message rather than
/// as a `source()`, so that printing the chain does not repeat them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TabularError {
    /// The file name's extension is not one of a known format.
    #[error(
        "cannot tell the format of {path} from its name (expected .csv, .jsonl, .ndjson, \
         .parquet or .pq); pass --format csv|jsonl|parquet"
    )]
    UnknownExtension {
        /// The file, as given.
        path: String,
    },

    /// A format name that is not `csv`, `jsonl` or `parquet`.
    #[error("unknown sample format `{name}`; expected csv, jsonl or parquet")]
    UnknownFormat {
        /// The name, as given.
        name: String,
    },

    /// The file could not be opened.
    #[error("cannot open {file}: {cause}")]
    CannotOpen {
        /// The file.
        file: String,
        /// What the operating system said.
        cause: String,
        /// The operating system's error kind.
        io: io::ErrorKind,
    },

    /// The file could not be read.
    #[error("cannot read {file}: {cause}")]
    CannotRead {
        /// The file.
        file: String,
        /// What the operating system or the decoder said.
        cause: String,
        /// The operating system's error kind; `None` when the decoder failed.
        io: Option<io::ErrorKind>,
    },

    /// The file has no bytes.
    #[error("{file} is empty")]
    Empty {
        /// The file.
        file: String,
    },

    /// A CSV file whose first line names no column.
    #[error("{file} has no header line naming its columns")]
    NoHeader {
        /// The file.
        file: String,
    },

    /// A JSON line or CSV record longer than the most one record may hold.
    #[error(
        "{file}, line {line}: a record longer than {limit} bytes; \
         one line (JSON lines) or record (CSV) may hold {limit} bytes at most"
    )]
    RecordTooLong {
        /// The file.
        file: String,
        /// Line where the record starts (1-based).
        line: u64,
        /// The most bytes one record may hold.
        limit: u64,
    },

    /// A CSV record with another number of fields than the header line.
    #[error("{file}, line {line}: {fields} fields, but the header line has {expected}")]
    RaggedRow {
        /// The file.
        file: String,
        /// Line where the record starts (1-based).
        line: u64,
        /// Fields of the record.
        fields: u64,
        /// Fields of the header line.
        expected: u64,
    },

    /// Bytes of a text file that are not UTF-8.
    #[error("{file}, line {line}: {} is not valid UTF-8", field_name(.field, .column))]
    NotUtf8 {
        /// The file.
        file: String,
        /// Line (1-based).
        line: u64,
        /// Field of a CSV record (1-based); `None` in a JSON line.
        field: Option<u64>,
        /// Name of the field's column, where the header names it.
        column: Option<String>,
    },

    /// Any other CSV syntax error.
    #[error("{file}, line {line}: {cause}")]
    Csv {
        /// The file.
        file: String,
        /// Line (1-based; 0 where the CSV reader does not say).
        line: u64,
        /// What the CSV reader said.
        cause: String,
    },

    /// A JSON-lines file with nothing but blank lines.
    #[error("{file} has no JSON object, only blank lines")]
    NoObject {
        /// The file.
        file: String,
    },

    /// A line that is not valid JSON.
    #[error("{file}, line {line}, character {character}: not valid JSON: {cause}")]
    BadJson {
        /// The file.
        file: String,
        /// Line (1-based).
        line: u64,
        /// Character of the line where the parser stopped (1-based).
        character: u64,
        /// What the parser said.
        cause: String,
    },

    /// A line that is valid JSON but not an object.
    #[error("{file}, line {line}: expected a JSON object, found {found}")]
    NotAnObject {
        /// The file.
        file: String,
        /// Line (1-based).
        line: u64,
        /// What the line holds ("an array", "a number"...).
        found: &'static str,
    },

    /// A JSON value (array, object) that is not a cell.
    #[error(
        "{file}, line {line}, column `{column}`: {found} is not a value a profile can hold \
         (expected a number, string, boolean or null)"
    )]
    NotACell {
        /// The file.
        file: String,
        /// Line (1-based).
        line: u64,
        /// The key.
        column: String,
        /// What the value is ("an array", "an object").
        found: &'static str,
    },

    /// A file whose footer is not that of a Parquet file.
    #[error("{file} is not a readable Parquet file: {cause}")]
    NotParquet {
        /// The file.
        file: String,
        /// What the Parquet reader said.
        cause: String,
    },

    /// A Parquet row group or page that cannot be decoded.
    #[error("cannot read {file} after row {row}: {cause}")]
    BadParquetData {
        /// The file.
        file: String,
        /// Rows read before it (the failing batch starts at row `row + 1`).
        row: u64,
        /// What the Parquet reader said.
        cause: String,
    },

    /// A Parquet column of a type that has no cell.
    #[error(
        "{file}, column `{column}`: Parquet columns of type {datatype} cannot be profiled \
         (numbers, decimals, booleans and strings can)"
    )]
    UnsupportedColumn {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Its Arrow type.
        datatype: String,
    },

    /// A column to leave out (`--target`, `--exclude`) that the file lacks.
    #[error("{file} has no column `{column}` to leave out; its columns are: {}", .columns.join(", "))]
    NoColumnToExclude {
        /// The file.
        file: String,
        /// The column asked for.
        column: String,
        /// The file's columns.
        columns: Vec<String>,
    },

    /// Every column is left out.
    #[error("{file}: no columns are left to profile after --target and --exclude")]
    NoColumnsLeft {
        /// The file.
        file: String,
    },

    /// Features of the feature schema that the file has no column for.
    #[error(
        "{file} has no {} of the feature schema; its columns are: {}",
        missing_features(.missing),
        .columns.join(", ")
    )]
    MissingFeatures {
        /// The file.
        file: String,
        /// The features without a column.
        missing: Vec<String>,
        /// The file's columns.
        columns: Vec<String>,
    },

    /// A model input that is neither the feature matrix nor one feature.
    #[error(
        "the model's input `{input}` {shape} is neither a [rows, {features}] matrix of the \
         {features} features nor one feature column named after it"
    )]
    UnmatchedInput {
        /// The input.
        input: String,
        /// Its shape, as written (`[-1, 3]`).
        shape: String,
        /// Number of features.
        features: usize,
    },

    /// A row with another number of cells than there are features.
    #[error("{at}: {cells} cells for {features} features")]
    RowWidth {
        /// Where the row is (`FILE, line N`).
        at: String,
        /// Cells given.
        cells: usize,
        /// Features.
        features: usize,
    },

    /// An input that takes a feature past the end of the row.
    #[error(
        "{at}: input `{input}` takes feature {feature} of {features} features and {cells} cells"
    )]
    FeatureOutOfRange {
        /// Where the row is (`FILE, line N`).
        at: String,
        /// The input.
        input: String,
        /// The feature it takes (1-based).
        feature: usize,
        /// Features.
        features: usize,
        /// Cells of the row.
        cells: usize,
    },

    /// Text in a cell of a feature the model takes as numbers.
    #[error(
        "{at}, column `{column}`: {text:?} is not a number, but the model takes this feature \
         as numbers (input `{input}`)"
    )]
    NotANumber {
        /// Where the row is (`FILE, line N`).
        at: String,
        /// The feature's column.
        column: String,
        /// The cell's text.
        text: String,
        /// The model input it feeds.
        input: String,
    },

    /// An empty cell of a feature without a default.
    #[error(
        "{at}, column `{column}`: no value, and the feature schema gives no default to feed the \
         model (set one in the schema to fill such cells)"
    )]
    NoValue {
        /// Where the row is (`FILE, line N`).
        at: String,
        /// The feature's column.
        column: String,
    },

    /// A `BYTES` input fed numbers.
    #[error("input `{input}`: a BYTES input takes text, not numbers")]
    NumbersForBytes {
        /// The input.
        input: String,
    },

    /// The rows do not make a tensor of the input.
    #[error(transparent)]
    Tensor(InferError),
}

impl TabularError {
    /// What kind of failure this is: bad data or arguments are
    /// [`ErrorKind::InvalidInput`], an unsupported column type
    /// [`ErrorKind::Unsupported`], a file that cannot be found
    /// [`ErrorKind::NotFound`] and other I/O failures
    /// [`ErrorKind::Internal`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            TabularError::CannotOpen { io, .. } | TabularError::CannotRead { io: Some(io), .. } => {
                match io {
                    io::ErrorKind::NotFound => ErrorKind::NotFound,
                    io::ErrorKind::InvalidData => ErrorKind::InvalidInput,
                    _ => ErrorKind::Internal,
                }
            }
            TabularError::UnsupportedColumn { .. } => ErrorKind::Unsupported,
            TabularError::Tensor(e) => e.kind,
            TabularError::NumbersForBytes { .. } => ErrorKind::Internal,
            TabularError::UnknownExtension { .. }
            | TabularError::UnknownFormat { .. }
            | TabularError::CannotRead { io: None, .. }
            | TabularError::Empty { .. }
            | TabularError::NoHeader { .. }
            | TabularError::RaggedRow { .. }
            | TabularError::RecordTooLong { .. }
            | TabularError::NotUtf8 { .. }
            | TabularError::Csv { .. }
            | TabularError::NoObject { .. }
            | TabularError::BadJson { .. }
            | TabularError::NotAnObject { .. }
            | TabularError::NotACell { .. }
            | TabularError::NotParquet { .. }
            | TabularError::BadParquetData { .. }
            | TabularError::NoColumnToExclude { .. }
            | TabularError::NoColumnsLeft { .. }
            | TabularError::MissingFeatures { .. }
            | TabularError::UnmatchedInput { .. }
            | TabularError::RowWidth { .. }
            | TabularError::FeatureOutOfRange { .. }
            | TabularError::NotANumber { .. }
            | TabularError::NoValue { .. } => ErrorKind::InvalidInput,
        }
    }

    /// The file an I/O failure happened on, with its cause.
    pub(crate) fn cannot_open(file: &str, error: &io::Error) -> Self {
        TabularError::CannotOpen {
            file: file.to_owned(),
            cause: error.to_string(),
            io: error.kind(),
        }
    }

    /// A read of `file` that failed with `error`.
    pub(crate) fn cannot_read(file: &str, error: &io::Error) -> Self {
        TabularError::CannotRead {
            file: file.to_owned(),
            cause: error.to_string(),
            io: Some(error.kind()),
        }
    }
}

/// `field 3 (column `b`)`, `field 3`, or `the line` for a JSON line.
fn field_name(field: &Option<u64>, column: &Option<String>) -> String {
    match (field, column) {
        (Some(field), Some(column)) => format!("field {field} (column `{column}`)"),
        (Some(field), None) => format!("field {field}"),
        (None, _) => "the line".to_owned(),
    }
}

/// `column for feature `a`` or `columns for features `a`, `b``.
fn missing_features(missing: &[String]) -> String {
    let what = if missing.len() == 1 {
        "column for feature"
    } else {
        "columns for features"
    };
    let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
    format!("{what} {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_cause() {
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(
            TabularError::cannot_open("s.csv", &missing).kind(),
            ErrorKind::NotFound
        );
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(
            TabularError::cannot_read("s.csv", &denied).kind(),
            ErrorKind::Internal
        );
        let unsupported = TabularError::UnsupportedColumn {
            file: "s.parquet".into(),
            column: "t".into(),
            datatype: "Timestamp(Second, None)".into(),
        };
        assert_eq!(unsupported.kind(), ErrorKind::Unsupported);
        let ragged = TabularError::RaggedRow {
            file: "s.csv".into(),
            line: 3,
            fields: 1,
            expected: 2,
        };
        assert_eq!(ragged.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn utf8_errors_name_the_field_and_its_column() {
        let at = |field, column: Option<&str>| {
            TabularError::NotUtf8 {
                file: "s.csv".into(),
                line: 4,
                field,
                column: column.map(str::to_owned),
            }
            .to_string()
        };
        assert_eq!(
            at(Some(2), Some("b")),
            "s.csv, line 4: field 2 (column `b`) is not valid UTF-8"
        );
        assert_eq!(
            at(Some(2), None),
            "s.csv, line 4: field 2 is not valid UTF-8"
        );
        assert_eq!(at(None, None), "s.csv, line 4: the line is not valid UTF-8");
    }
}
