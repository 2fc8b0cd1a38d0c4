//! CSV samples: a header line names the columns; every cell is text (the
//! profile builder parses numbers) and an empty cell is a null.

use std::fs::File;
use std::path::Path;

use super::{ProgressUnit, SampleReader};
use crate::error::{bail, err};
use crate::TabularError;
use ferroserve_core::Cell;

/// A CSV file read record by record.
pub(super) struct CsvReader {
    file: String,
    reader: ::csv::Reader<File>,
    columns: Vec<String>,
    record: ::csv::StringRecord,
    size: u64,
}

impl CsvReader {
    /// Opens `path` (`size` bytes long) and reads its header line.
    pub(super) fn open(path: &Path, size: u64) -> Result<Self, TabularError> {
        let file = path.display().to_string();
        let handle = File::open(path).map_err(|e| err!("cannot open {file}: {e}"))?;
        let mut reader = ::csv::ReaderBuilder::new().from_reader(handle);
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| describe(&file, &e))?
            .iter()
            .map(|name| name.trim().to_owned())
            .collect();
        if columns.iter().all(String::is_empty) {
            bail!("{file} has no header line naming its columns");
        }
        Ok(CsvReader {
            file,
            reader,
            columns,
            record: ::csv::StringRecord::new(),
            size,
        })
    }

    fn line(&self) -> u64 {
        self.record.position().map_or(0, ::csv::Position::line)
    }
}

impl SampleReader for CsvReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, picks: &[usize], cells: &mut Vec<Cell>) -> Result<bool, TabularError> {
        cells.clear();
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| describe(&self.file, &e))?;
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

/// A CSV error with the file and line it happened at.
fn describe(file: &str, error: &::csv::Error) -> TabularError {
    let line = |pos: &Option<::csv::Position>| pos.as_ref().map_or(0, ::csv::Position::line);
    match error.kind() {
        ::csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => err!(
            "{file}, line {}: {len} fields, but the header line has {expected_len}",
            line(pos)
        ),
        ::csv::ErrorKind::Utf8 { pos, err } => err!(
            "{file}, line {}: field {} is not valid UTF-8",
            line(pos),
            err.field() + 1
        ),
        ::csv::ErrorKind::Io(e) => err!("cannot read {file}: {e}"),
        _ => err!("{file}: {error}"),
    }
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
    fn a_blank_header_is_refused() {
        let (_dir, reader) = reader("\n\n");
        let err = reader.err().expect("no header").to_string();
        assert!(err.contains("no header line"), "{err}");
    }
}
