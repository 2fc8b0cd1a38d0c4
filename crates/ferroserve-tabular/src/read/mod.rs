//! Readers of sample files (CSV, JSON lines, Parquet) behind one
//! row-by-row interface, so callers do not care where rows come from.

mod bounded;
mod csv;
mod jsonl;
mod parquet;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use ferroserve_core::Cell;

use super::TabularError;

pub use bounded::MAX_RECORD_BYTES;

/// File format of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line (JSON lines, NDJSON).
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// Every format, in the order they are listed to users.
    pub const ALL: [Format; 3] = [Format::Csv, Format::Jsonl, Format::Parquet];

    /// The format's name: `csv`, `jsonl` or `parquet` (as parsed, shown and
    /// serialized).
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }

    /// The format an extension stands for: `.csv`, `.jsonl`/`.ndjson`,
    /// `.parquet`/`.pq` (any case).
    pub fn from_path(path: &Path) -> Result<Format, TabularError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson") => Ok(Format::Jsonl),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(TabularError::UnknownExtension {
                path: path.display().to_string(),
            }),
        }
    }
}

impl FromStr for Format {
    type Err = TabularError;

    /// Parses a format's [`Format::name`].
    fn from_str(s: &str) -> Result<Format, TabularError> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| TabularError::UnknownFormat { name: s.to_owned() })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the progress of a reader is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressUnit {
    /// Bytes of the file read.
    Bytes,
    /// Rows read.
    Rows,
}

/// A sample file opened for reading, one row at a time; `Send`, so a
/// reader can move to a worker thread.
pub trait SampleReader: Send {
    /// The file's column names, in file order.
    fn columns(&self) -> &[String];

    /// Reads the next row into `cells` (cleared first): one cell per entry
    /// of `picks`, each an index into [`SampleReader::columns`]. Returns
    /// `false` at the end of the file.
    fn next_row(&mut self, picks: &[usize], cells: &mut Vec<Cell>) -> Result<bool, TabularError>;

    /// Where the row last read is, for messages: `FILE, line N` or
    /// `FILE, row N` (1-based).
    fn location(&self) -> String;

    /// Work done so far, in [`SampleReader::progress_unit`]s.
    fn progress(&self) -> u64;

    /// Total work: the file size in bytes, or the row count.
    fn progress_total(&self) -> u64;

    /// What progress is counted in.
    fn progress_unit(&self) -> ProgressUnit;
}

/// Opens `path` as `format`; an empty file is an error here, whatever the
/// format.
pub fn open(path: &Path, format: Format) -> Result<Box<dyn SampleReader>, TabularError> {
    let file = path.display().to_string();
    let size = std::fs::metadata(path)
        .map_err(|e| TabularError::cannot_read(&file, &e))?
        .len();
    if size == 0 {
        return Err(TabularError::Empty { file });
    }
    Ok(match format {
        Format::Csv => Box::new(csv::CsvReader::open(path, size)?),
        Format::Jsonl => Box::new(jsonl::JsonlReader::open(path, size)?),
        Format::Parquet => Box::new(parquet::ParquetReader::open(path)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.CSV")).expect("csv"),
            Format::Csv
        );
        assert_eq!(
            Format::from_path(Path::new("x.ndjson")).expect("ndjson"),
            Format::Jsonl
        );
        assert_eq!(
            Format::from_path(Path::new("x.pq")).expect("pq"),
            Format::Parquet
        );
        let err = Format::from_path(Path::new("x.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--format"), "{err}");
    }

    #[test]
    fn names_parse_print_and_serialize_alike() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
            let json = serde_json::to_string(&format).expect("serialize");
            assert_eq!(json, format!("\"{format}\""));
            let back: Format = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, format);
        }
        let err = "CSV".parse::<Format>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown sample format `CSV`; expected csv, jsonl or parquet"
        );
    }

    #[test]
    fn empty_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.parquet");
        std::fs::write(&path, "").expect("write");
        for format in [Format::Csv, Format::Jsonl, Format::Parquet] {
            let err = open(&path, format).err().expect("empty").to_string();
            assert!(err.ends_with("empty.parquet is empty"), "{err}");
        }
    }

    #[test]
    fn readers_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Box<dyn SampleReader>>();
    }
}
