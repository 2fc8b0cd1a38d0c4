//! Readers of sample files (CSV, JSON lines, Parquet) behind one
//! row-by-row interface, so profiling does not care where rows come from.

mod csv;
mod jsonl;
mod parquet;

use std::path::Path;

use anyhow::{bail, Context};
use clap::ValueEnum;
use ferroserve_serving::monitor::profile::Cell;

/// File format of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line (JSON lines, NDJSON).
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format an extension stands for: `.csv`, `.jsonl`/`.ndjson`,
    /// `.parquet`/`.pq` (any case).
    pub fn from_path(path: &Path) -> anyhow::Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson") => Ok(Format::Jsonl),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => bail!(
                "cannot tell the format of {} from its name (expected .csv, .jsonl, .ndjson, \
                 .parquet or .pq); pass --format csv|jsonl|parquet",
                path.display()
            ),
        }
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

/// A sample file opened for reading, one row at a time.
pub trait SampleReader {
    /// The file's column names, in file order.
    fn columns(&self) -> &[String];

    /// Reads the next row into `cells` (cleared first): one cell per entry
    /// of `picks`, each an index into [`SampleReader::columns`]. Returns
    /// `false` at the end of the file.
    fn next_row(&mut self, picks: &[usize], cells: &mut Vec<Cell>) -> anyhow::Result<bool>;

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
pub fn open(path: &Path, format: Format) -> anyhow::Result<Box<dyn SampleReader>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size == 0 {
        bail!("{} is empty", path.display());
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
    fn empty_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.parquet");
        std::fs::write(&path, "").expect("write");
        for format in [Format::Csv, Format::Jsonl, Format::Parquet] {
            let err = open(&path, format).err().expect("empty").to_string();
            assert!(err.ends_with("empty.parquet is empty"), "{err}");
        }
    }
}
