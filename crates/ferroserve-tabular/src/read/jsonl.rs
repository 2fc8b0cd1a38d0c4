//! JSON-lines samples: one object per line, its keys the columns. The
//! first line's keys, in the order written, are the file's columns; a key
//! absent from a later line is a null there (as Spark writes nulls), and
//! blank lines are skipped.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{ProgressUnit, SampleReader, MAX_RECORD_BYTES};
use crate::TabularError;
use ferroserve_core::Cell;

/// A JSON-lines file read line by line.
pub(super) struct JsonlReader {
    file: String,
    reader: BufReader<File>,
    columns: Vec<String>,
    /// The first object, parsed at open and handed out by the first read.
    first: Option<Map<String, Value>>,
    line: String,
    /// The bytes of the line last read, before they are checked to be UTF-8.
    bytes: Vec<u8>,
    /// Number of the line last read (1-based).
    line_number: u64,
    bytes_read: u64,
    size: u64,
}

impl JsonlReader {
    /// Opens `path` (`size` bytes long) and reads its first object.
    pub(super) fn open(path: &Path, size: u64) -> Result<Self, TabularError> {
        let file = path.display().to_string();
        let handle = File::open(path).map_err(|e| TabularError::cannot_open(&file, &e))?;
        let mut reader = JsonlReader {
            file,
            reader: BufReader::new(handle),
            columns: Vec::new(),
            first: None,
            line: String::new(),
            bytes: Vec::new(),
            line_number: 0,
            bytes_read: 0,
            size,
        };
        if !reader.read_line()? {
            return Err(TabularError::NoObject { file: reader.file });
        }
        reader.first = Some(reader.parse_line()?);
        let keys: KeyOrder =
            serde_json::from_str(&reader.line).map_err(|e| reader.json_error(&e))?;
        reader.columns = keys.0;
        Ok(reader)
    }

    /// Reads the next non-blank line into `self.line`; `false` at the end.
    /// A line that is not UTF-8 is an error naming it; the next read goes
    /// on after it. A line of more than [`MAX_RECORD_BYTES`] is refused
    /// without reading further.
    fn read_line(&mut self) -> Result<bool, TabularError> {
        loop {
            self.line.clear();
            self.bytes.clear();
            let n = (&mut self.reader)
                .take(MAX_RECORD_BYTES + 1)
                .read_until(b'\n', &mut self.bytes)
                .map_err(|e| TabularError::CannotRead {
                    file: self.file.clone(),
                    cause: format!("line {}: {e}", self.line_number + 1),
                    io: Some(e.kind()),
                })?;
            if n == 0 {
                return Ok(false);
            }
            self.bytes_read += n as u64;
            self.line_number += 1;
            let body = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
            if body.len() as u64 > MAX_RECORD_BYTES {
                // The next read starts on the next line, whatever this one holds.
                self.skip_rest_of_line()
                    .map_err(|e| TabularError::cannot_read(&self.file, &e))?;
                return Err(TabularError::RecordTooLong {
                    file: self.file.clone(),
                    line: self.line_number,
                    limit: MAX_RECORD_BYTES,
                });
            }
            match std::str::from_utf8(&self.bytes) {
                Ok(text) => self.line.push_str(text),
                Err(_) => {
                    return Err(TabularError::NotUtf8 {
                        file: self.file.clone(),
                        line: self.line_number,
                        field: None,
                        column: None,
                    })
                }
            }
            if !self.line.trim().is_empty() {
                return Ok(true);
            }
        }
    }

    /// Reads past the next line break (or to the end), keeping nothing.
    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let (n, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            self.reader.consume(n);
            self.bytes_read += n as u64;
            if done {
                return Ok(());
            }
        }
    }

    fn parse_line(&self) -> Result<Map<String, Value>, TabularError> {
        match serde_json::from_str::<Value>(&self.line) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(other) => Err(TabularError::NotAnObject {
                file: self.file.clone(),
                line: self.line_number,
                found: ferroserve_core::json::type_name(&other),
            }),
            Err(e) => Err(self.json_error(&e)),
        }
    }

    /// A JSON syntax error at its line and character.
    fn json_error(&self, error: &serde_json::Error) -> TabularError {
        // serde_json says "at line 1 column N" of the one line it was given.
        let message = error.to_string();
        let cause = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        // Past the line's end (an object left open), serde_json is on the
        // next line, at column 0: the character after the last one.
        let character = if error.line() > 1 {
            self.line.trim_end_matches(['\n', '\r']).chars().count() + 1
        } else {
            error.column()
        };
        TabularError::BadJson {
            file: self.file.clone(),
            line: self.line_number,
            character: character as u64,
            cause: cause.to_owned(),
        }
    }

    /// The cell of `column` in `object`.
    fn cell(&self, object: &Map<String, Value>, column: &str) -> Result<Cell, TabularError> {
        Ok(match object.get(column) {
            None | Some(Value::Null) => Cell::Null,
            Some(Value::Number(n)) => n.as_f64().map_or(Cell::Null, Cell::Number),
            Some(Value::String(s)) => Cell::Text(s.clone()),
            Some(Value::Bool(b)) => Cell::Text(b.to_string()),
            Some(other) => {
                return Err(TabularError::NotACell {
                    file: self.file.clone(),
                    line: self.line_number,
                    column: column.to_owned(),
                    found: ferroserve_core::json::type_name(other),
                })
            }
        })
    }
}

impl SampleReader for JsonlReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, picks: &[usize], cells: &mut Vec<Cell>) -> Result<bool, TabularError> {
        cells.clear();
        let object = match self.first.take() {
            Some(first) => first,
            None if self.read_line()? => self.parse_line()?,
            None => return Ok(false),
        };
        for &i in picks {
            cells.push(self.cell(&object, &self.columns[i])?);
        }
        Ok(true)
    }

    fn location(&self) -> String {
        format!("{}, line {}", self.file, self.line_number)
    }

    fn progress(&self) -> u64 {
        self.bytes_read
    }

    fn progress_total(&self) -> u64 {
        self.size
    }

    fn progress_unit(&self) -> ProgressUnit {
        ProgressUnit::Bytes
    }
}

/// The keys of a JSON object in the order written (a `Map` sorts them).
struct KeyOrder(Vec<String>);

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = KeyOrder;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
                let mut keys: Vec<String> = Vec::new();
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    if seen.insert(key.clone()) {
                        keys.push(key);
                    }
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(text: &str) -> (tempfile::TempDir, Result<JsonlReader, TabularError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, text).expect("write");
        let reader = JsonlReader::open(&path, text.len() as u64);
        (dir, reader)
    }

    #[test]
    fn columns_keep_the_first_lines_order_and_absent_keys_are_null() {
        let text = "\n{\"z\": 1.5, \"a\": \"x\", \"m\": null}\n\n{\"a\": true, \"z\": 2}\n";
        let (_dir, reader) = open(text);
        let mut reader = reader.expect("opens");
        assert_eq!(reader.columns(), ["z", "a", "m"]);
        let mut cells = Vec::new();
        assert!(reader.next_row(&[0, 1, 2], &mut cells).expect("row 1"));
        assert_eq!(
            cells,
            [Cell::Number(1.5), Cell::Text("x".into()), Cell::Null]
        );
        assert!(reader.location().ends_with("s.jsonl, line 2"));
        assert!(reader.next_row(&[2, 1, 0], &mut cells).expect("row 2"));
        assert_eq!(
            cells,
            [Cell::Null, Cell::Text("true".into()), Cell::Number(2.0)]
        );
        assert!(reader.location().ends_with("s.jsonl, line 4"));
        assert!(!reader.next_row(&[0], &mut cells).expect("end"));
        assert_eq!(reader.progress(), reader.progress_total());
    }

    #[test]
    fn lines_past_the_record_limit_are_refused_with_their_line_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.jsonl");
        let long = usize::try_from(MAX_RECORD_BYTES).expect("fits") + 10;
        let mut text = b"{\"a\": 1}\n{\"a\": \"".to_vec();
        text.resize(text.len() + long, b'x');
        std::fs::write(&path, &text).expect("write");
        let mut reader = JsonlReader::open(&path, text.len() as u64).expect("opens");
        let mut cells = Vec::new();
        assert!(reader.next_row(&[0], &mut cells).expect("row 1"));
        let err = reader.next_row(&[0], &mut cells).unwrap_err();
        assert!(
            matches!(err, TabularError::RecordTooLong { line: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("s.jsonl, line 2"), "{err}");
        // Nothing past the limit was buffered, and reading goes on after the line.
        assert!(reader.bytes.len() as u64 <= MAX_RECORD_BYTES + 1);
        assert!(!reader.next_row(&[0], &mut cells).expect("end"));
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let (_dir, reader) = open("{\"a\": 1}\n{\"a\": 2,}\n");
        let mut reader = reader.expect("opens");
        let mut cells = Vec::new();
        assert!(reader.next_row(&[0], &mut cells).expect("row 1"));
        let err = reader.next_row(&[0], &mut cells).unwrap_err().to_string();
        assert!(
            err.contains("s.jsonl, line 2, character 9: not valid JSON: trailing comma"),
            "{err}"
        );

        let (_dir, reader) = open("{\"a\": 1}\n[1]\n");
        let mut reader = reader.expect("opens");
        reader.next_row(&[0], &mut cells).expect("row 1");
        let err = reader.next_row(&[0], &mut cells).unwrap_err().to_string();
        assert!(
            err.ends_with("line 2: expected a JSON object, found an array"),
            "{err}"
        );

        let (_dir, reader) = open("{\"a\": [1]}\n");
        let err = reader
            .expect("opens")
            .next_row(&[0], &mut cells)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1, column `a`: an array"), "{err}");

        let (_dir, reader) = open("not json\n");
        let err = reader.err().expect("bad first line").to_string();
        assert!(
            err.contains("s.jsonl, line 1, character 2: not valid JSON"),
            "{err}"
        );
    }
}
