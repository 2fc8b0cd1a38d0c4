//! CSV samples: a header line names the columns; every cell is text (the
//! profile builder parses numbers) and an empty cell is a null.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::bounded::{RecordBudget, RecordCapped};
use super::{ProgressUnit, SampleReader, MAX_RECORD_BYTES};
use crate::TabularError;
use ferroserve_core::Cell;

/// A CSV file read record by record.
pub(super) struct CsvReader {
    file: String,
    path: PathBuf,
    reader: ::csv::Reader<RecordCapped<File>>,
    /// Bytes read for the record being read, capped at [`MAX_RECORD_BYTES`].
    budget: RecordBudget,
    columns: Vec<String>,
    record: ::csv::StringRecord,
    size: u64,
}

impl CsvReader {
    /// Opens `path` (`size` bytes long) and reads its header line.
    pub(super) fn open(path: &Path, size: u64) -> Result<Self, TabularError> {
        let file = path.display().to_string();
        let handle = File::open(path).map_err(|e| TabularError::cannot_open(&file, &e))?;
        let budget = RecordBudget::default();
        let capped = RecordCapped::new(handle, budget.clone(), MAX_RECORD_BYTES);
        let mut reader = ::csv::ReaderBuilder::new().from_reader(capped);
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| {
                too_long(&file, &budget, 1).unwrap_or_else(|| describe(&file, path, &[], &e))
            })?
            .iter()
            .map(|name| name.trim().to_owned())
            .collect();
        if columns.iter().all(String::is_empty) {
            return Err(TabularError::NoHeader { file });
        }
        Ok(CsvReader {
            file,
            path: path.to_owned(),
            reader,
            budget,
            columns,
            record: ::csv::StringRecord::new(),
            size,
        })
    }

    fn line(&self) -> u64 {
        self.record
            .position()
            .map_or(0, |pos| record_line(&self.path, pos))
    }
}

impl SampleReader for CsvReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, picks: &[usize], cells: &mut Vec<Cell>) -> Result<bool, TabularError> {
        cells.clear();
        self.budget.start_record();
        let start = self.reader.position().clone();
        let more = self.reader.read_record(&mut self.record).map_err(|e| {
            let line = record_line(&self.path, &start);
            too_long(&self.file, &self.budget, line)
                .unwrap_or_else(|| describe(&self.file, &self.path, &self.columns, &e))
        })?;
        if !more {
            return Ok(false);
        }
        cells.extend(picks.iter().map(|&i| match self.record.get(i) {
            Some(text) if !text.trim().is_empty() => Cell::Text(text.to_owned()),
            _ => Cell::Null,
        }));
        Ok(true)
    }

    fn location(&self) -> String {
        format!("{}, line {}", self.file, self.line())
    }

    fn progress(&self) -> u64 {
        self.reader.position().byte()
    }

    fn progress_total(&self) -> u64 {
        self.size
    }

    fn progress_unit(&self) -> ProgressUnit {
        ProgressUnit::Bytes
    }
}

/// A CSV error with the file and line it happened at, and the column
/// where one is involved (`columns` are the header's, empty while reading
/// the header line).
fn describe(file: &str, path: &Path, columns: &[String], error: &::csv::Error) -> TabularError {
    let line = |pos: Option<&::csv::Position>| pos.map_or(0, |pos| record_line(path, pos));
    let file = file.to_owned();
    match error.kind() {
        ::csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => TabularError::RaggedRow {
            file,
            line: line(pos.as_ref()),
            fields: *len,
            expected: *expected_len,
        },
        ::csv::ErrorKind::Utf8 { pos, err } => TabularError::NotUtf8 {
            file,
            line: line(pos.as_ref()),
            field: Some(err.field() as u64 + 1),
            column: columns.get(err.field()).cloned(),
        },
        ::csv::ErrorKind::Io(e) => TabularError::cannot_read(&file, e),
        _ => TabularError::Csv {
            line: line(error.position()),
            file,
            cause: error.to_string(),
        },
    }
}

/// The error for a record that used its whole budget, if this one did.
fn too_long(file: &str, budget: &RecordBudget, line: u64) -> Option<TabularError> {
    budget
        .spent(MAX_RECORD_BYTES)
        .then(|| TabularError::RecordTooLong {
            file: file.to_owned(),
            line,
            limit: MAX_RECORD_BYTES,
        })
}

/// The line where the record read from `pos` starts. The CSV reader skips
/// blank lines before a record but counts the record from where it began
/// reading, so the blank lines are skipped here too (by reading the file
/// again, which is done only to report a place).
fn record_line(path: &Path, pos: &::csv::Position) -> u64 {
    let blank_lines = File::open(path)
        .and_then(|mut file| {
            file.seek(SeekFrom::Start(pos.byte()))?;
            let mut newlines = 0;
            for byte in BufReader::new(file).bytes() {
                match byte? {
                    b'\n' => newlines += 1,
                    b'\r' => {}
                    _ => break,
                }
            }
            Ok(newlines)
        })
        .unwrap_or(0);
    pos.line() + blank_lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str) -> (tempfile::TempDir, Result<CsvReader, TabularError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.csv");
        std::fs::write(&path, text).expect("write");
        let reader = CsvReader::open(&path, text.len() as u64);
        (dir, reader)
    }

    #[test]
    fn empty_cells_are_null_and_lines_are_counted() {
        let (_dir, reader) = reader("a, b ,c\n1,,x\n\"2\n\",3, \n");
        let mut reader = reader.expect("opens");
        assert_eq!(reader.columns(), ["a", "b", "c"]);
        let mut cells = Vec::new();
        assert!(reader.next_row(&[2, 0, 1], &mut cells).expect("row 1"));
        assert_eq!(
            cells,
            [Cell::Text("x".into()), Cell::Text("1".into()), Cell::Null]
        );
        assert!(reader.location().ends_with("s.csv, line 2"));
        assert!(reader.next_row(&[0, 2], &mut cells).expect("row 2"));
        assert_eq!(cells, [Cell::Text("2\n".into()), Cell::Null]);
        assert!(!reader.next_row(&[0], &mut cells).expect("end"));
        assert_eq!(reader.progress(), reader.progress_total());
    }

    #[test]
    fn records_past_the_limit_are_refused_with_their_line() {
        // The parser reads ahead a buffer's length, which the cap may miss.
        let long = usize::try_from(MAX_RECORD_BYTES).expect("fits") + 100_000;
        let mut text = String::from("a,b\n1,2\n\"");
        text.extend(std::iter::repeat_n('x', long));
        let (_dir, reader) = reader(&text);
        let mut reader = reader.expect("opens");
        let mut cells = Vec::new();
        assert!(reader.next_row(&[0], &mut cells).expect("row 1"));
        let err = reader.next_row(&[0], &mut cells).unwrap_err();
        assert!(
            matches!(err, TabularError::RecordTooLong { line: 3, .. }),
            "{err}"
        );

        let mut header = "x".repeat(long);
        header.push_str("\n1\n");
        let (_dir, reader) = self::reader(&header);
        let err = reader.err().expect("header too long");
        assert!(
            matches!(err, TabularError::RecordTooLong { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn ragged_rows_name_their_line() {
        let (_dir, reader) = reader("a,b\n1,2\n3\n");
        let mut reader = reader.expect("opens");
        let mut cells = Vec::new();
        assert!(reader.next_row(&[0], &mut cells).expect("row 1"));
        let err = reader.next_row(&[0], &mut cells).unwrap_err().to_string();
        assert!(
            err.ends_with("s.csv, line 3: 1 fields, but the header line has 2"),
            "{err}"
        );
    }

    #[test]
    fn rows_after_blank_lines_name_their_own_line() {
        let (_dir, reader) = reader("a,b\n\n\r\n1,2\n\n3\n");
        let mut reader = reader.expect("opens");
        let mut cells = Vec::new();
        assert!(reader.next_row(&[0], &mut cells).expect("row 1"));
        assert!(
            reader.location().ends_with("s.csv, line 4"),
            "{}",
            reader.location()
        );
        let err = reader.next_row(&[0], &mut cells).unwrap_err().to_string();
        assert!(
            err.ends_with("s.csv, line 6: 1 fields, but the header line has 2"),
            "{err}"
        );
    }

    #[test]
    fn a_blank_header_is_refused() {
        let (_dir, reader) = reader("\n\n");
        let err = reader.err().expect("no header").to_string();
        assert!(err.contains("no header line"), "{err}");
    }
}
