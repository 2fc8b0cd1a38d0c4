//! Sample files come from users: whatever their bytes, the readers never
//! panic, and every bad row is reported at its own line (or row) and, where
//! one field is at fault, its column, after which reading goes on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use ferroserve_core::Cell;
use ferroserve_tabular::{open, Format, TabularError};
use parquet::arrow::ArrowWriter;
use proptest::collection::vec;
use proptest::prelude::*;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write sample");
    path
}

/// Reads every row of `path` until the end or until the reader stops
/// moving on (two errors at the same place); returns the outcome of each
/// read, or the error of `open`.
fn read_all(
    path: &Path,
    format: Format,
) -> Result<Vec<Result<Vec<Cell>, TabularError>>, TabularError> {
    let mut reader = open(path, format)?;
    let picks: Vec<usize> = (0..reader.columns().len()).collect();
    let mut cells = Vec::new();
    let mut outcomes = Vec::new();
    let mut last_error_at = None;
    loop {
        match reader.next_row(&picks, &mut cells) {
            Ok(true) => outcomes.push(Ok(cells.clone())),
            Ok(false) => return Ok(outcomes),
            Err(e) => {
                let here = reader.progress();
                outcomes.push(Err(e));
                if last_error_at == Some(here) {
                    return Ok(outcomes);
                }
                last_error_at = Some(here);
            }
        }
    }
}

/// The line or row an error of reading a row names, checking that its
/// message says it too; `None` for an error that is about no row.
fn line_of(error: &TabularError) -> Option<u64> {
    let message = error.to_string();
    let (line, word) = match error {
        TabularError::RaggedRow { line, .. }
        | TabularError::NotUtf8 { line, .. }
        | TabularError::Csv { line, .. }
        | TabularError::BadJson { line, .. }
        | TabularError::NotAnObject { line, .. }
        | TabularError::NotACell { line, .. } => (*line, "line"),
        TabularError::BadParquetData { row, .. } => (*row, "after row"),
        _ => return None,
    };
    assert!(
        message.contains(&format!("{word} {line}")),
        "the message does not say {word} {line}: {message}"
    );
    Some(line)
}

/// A field of a well-formed CSV record.
fn csv_field() -> impl Strategy<Value = String> {
    "[a-z0-9.-]{1,6}"
}

/// One line of a CSV file whose header has `width` columns.
#[derive(Debug, Clone)]
enum CsvLine {
    Good(Vec<String>),
    Blank,
    /// One field more than the header.
    Ragged(Vec<String>),
    /// `fields[field]` gets a byte that is not UTF-8.
    NotUtf8 {
        fields: Vec<String>,
        field: usize,
    },
}

fn csv_line(width: usize) -> impl Strategy<Value = CsvLine> {
    prop_oneof![
        3 => vec(csv_field(), width).prop_map(CsvLine::Good),
        1 => Just(CsvLine::Blank),
        1 => vec(csv_field(), width + 1).prop_map(CsvLine::Ragged),
        1 => (vec(csv_field(), width), 0..width)
            .prop_map(|(fields, field)| CsvLine::NotUtf8 { fields, field }),
    ]
}

fn csv_file() -> impl Strategy<Value = (usize, Vec<CsvLine>)> {
    (1usize..5).prop_flat_map(|width| (Just(width), vec(csv_line(width), 0..16)))
}

/// One line of a JSON-lines file whose first object has keys `k0..kN`.
#[derive(Debug, Clone)]
enum JsonLine {
    Good(Vec<(usize, i64)>),
    Blank(String),
    BadJson(String),
    NotAnObject(String),
    NotUtf8,
    /// Key `k{0}` holds an array.
    ArrayCell(usize),
}

fn json_line(keys: usize) -> impl Strategy<Value = JsonLine> {
    prop_oneof![
        3 => vec((0..keys, any::<i64>()), 0..4).prop_map(JsonLine::Good),
        1 => "[ \t]{0,3}".prop_map(JsonLine::Blank),
        1 => prop_oneof![
            Just("{\"k0\": 1,}".to_owned()),
            Just("{\"k0\": ".to_owned()),
            Just("{k0: 1}".to_owned()),
            "[a-z]{1,8}",
        ]
        .prop_map(JsonLine::BadJson),
        1 => prop_oneof![
            Just("[1, 2]".to_owned()),
            Just("3".to_owned()),
            Just("\"text\"".to_owned()),
            Just("null".to_owned()),
        ]
        .prop_map(JsonLine::NotAnObject),
        1 => Just(JsonLine::NotUtf8),
        1 => (0..keys).prop_map(JsonLine::ArrayCell),
    ]
}

fn jsonl_file() -> impl Strategy<Value = (usize, Vec<JsonLine>)> {
    (1usize..5).prop_flat_map(|keys| (Just(keys), vec(json_line(keys), 0..16)))
}

/// Bytes that look a little like the given format: its syntax characters,
/// text, line ends, and bytes that are not UTF-8.
fn garbled(syntax: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => proptest::sample::select(syntax),
        3 => b'a'..=b'z',
        2 => Just(b'\n'),
        1 => any::<u8>(),
    ];
    vec(byte, 1..400)
}

fn parquet_bytes(ints: &[Option<i64>], texts: &[Option<String>]) -> Vec<u8> {
    let rows = ints.len().min(texts.len());
    let floats: Vec<Option<f64>> = ints[..rows]
        .iter()
        .map(|i| i.map(|i| i as f64 / 8.0))
        .collect();
    let batch = RecordBatch::try_from_iter([
        (
            "i",
            Arc::new(Int64Array::from(ints[..rows].to_vec())) as ArrayRef,
        ),
        ("f", Arc::new(Float64Array::from(floats)) as ArrayRef),
        (
            "s",
            Arc::new(StringArray::from(texts[..rows].to_vec())) as ArrayRef,
        ),
    ])
    .expect("batch");
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close");
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn csv_rows_are_read_or_refused_at_their_line_and_column((width, lines) in csv_file()) {
        let names: Vec<String> = (0..width).map(|k| format!("c{k}")).collect();
        let mut text = names.join(",").into_bytes();
        text.push(b'\n');
        for line in &lines {
            match line {
                CsvLine::Good(fields) | CsvLine::Ragged(fields) => text.extend(fields.join(",").bytes()),
                CsvLine::Blank => {}
                CsvLine::NotUtf8 { fields, field } => {
                    for (k, value) in fields.iter().enumerate() {
                        if k > 0 {
                            text.push(b',');
                        }
                        text.extend(value.bytes());
                        if k == *field {
                            text.push(0xff);
                        }
                    }
                }
            }
            text.push(b'\n');
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "s.csv", &text);
        let outcomes = read_all(&path, Format::Csv).expect("the header line is fine");

        let mut outcomes = outcomes.into_iter();
        for (k, line) in lines.iter().enumerate() {
            let number = k as u64 + 2;
            let expected_line = move |e: &TabularError| line_of(e) == Some(number);
            match line {
                CsvLine::Blank => continue,
                CsvLine::Good(fields) => {
                    let cells: Vec<Cell> = fields.iter().map(|f| Cell::Text(f.clone())).collect();
                    prop_assert_eq!(outcomes.next(), Some(Ok(cells)), "line {}", number);
                }
                CsvLine::Ragged(fields) => {
                    let got = outcomes.next().expect("an outcome per line").expect_err("ragged");
                    prop_assert!(expected_line(&got), "{got}");
                    let is_ragged = matches!(
                        got,
                        TabularError::RaggedRow { fields: f, expected, .. }
                            if f == fields.len() as u64 && expected == width as u64
                    );
                    prop_assert!(is_ragged, "{got:?}");
                }
                CsvLine::NotUtf8 { field, .. } => {
                    let got = outcomes.next().expect("an outcome per line").expect_err("not UTF-8");
                    prop_assert!(expected_line(&got), "{got}");
                    let column = &names[*field];
                    let names_it = matches!(
                        &got,
                        TabularError::NotUtf8 { field: Some(f), column: Some(c), .. }
                            if *f == *field as u64 + 1 && c == column
                    );
                    prop_assert!(names_it, "{got:?}");
                    prop_assert!(got.to_string().contains(&format!("column `{column}`")), "{got}");
                }
            }
        }
        prop_assert!(outcomes.next().is_none(), "no outcome past the last line");
    }

    #[test]
    fn json_lines_are_read_or_refused_at_their_line_and_column((keys, lines) in jsonl_file()) {
        let names: Vec<String> = (0..keys).map(|k| format!("k{k}")).collect();
        let first: Vec<String> = names.iter().map(|n| format!("\"{n}\": 0")).collect();
        let mut text = format!("{{{}}}\n", first.join(", ")).into_bytes();
        for line in &lines {
            match line {
                JsonLine::Good(values) => {
                    let pairs: Vec<String> = values.iter().map(|(k, v)| format!("\"k{k}\": {v}")).collect();
                    text.extend(format!("{{{}}}", pairs.join(", ")).bytes());
                }
                JsonLine::Blank(s) | JsonLine::BadJson(s) | JsonLine::NotAnObject(s) => text.extend(s.bytes()),
                JsonLine::NotUtf8 => text.extend(b"{\"k0\": \"\xff\"}"),
                JsonLine::ArrayCell(k) => text.extend(format!("{{\"k{k}\": [1]}}").bytes()),
            }
            text.push(b'\n');
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "s.jsonl", &text);
        let outcomes = read_all(&path, Format::Jsonl).expect("the first line is fine");

        let mut outcomes = outcomes.into_iter();
        prop_assert_eq!(outcomes.next(), Some(Ok(vec![Cell::Number(0.0); keys])));
        for (k, line) in lines.iter().enumerate() {
            let number = k as u64 + 2;
            let got = match line {
                JsonLine::Blank(_) => continue,
                JsonLine::Good(values) => {
                    let mut cells = vec![Cell::Null; keys];
                    // A repeated key keeps its last value.
                    for &(k, v) in values {
                        cells[k] = Cell::Number(v as f64);
                    }
                    prop_assert_eq!(outcomes.next(), Some(Ok(cells)), "line {}", number);
                    continue;
                }
                _ => outcomes.next().expect("an outcome per line").expect_err("a bad line"),
            };
            prop_assert_eq!(line_of(&got), Some(number), "{}", got);
            let as_expected = match (line, &got) {
                (JsonLine::BadJson(_), TabularError::BadJson { character, .. }) => *character >= 1,
                (JsonLine::NotAnObject(_), TabularError::NotAnObject { .. })
                | (JsonLine::NotUtf8, TabularError::NotUtf8 { .. }) => true,
                (JsonLine::ArrayCell(k), TabularError::NotACell { column, .. }) => {
                    *column == names[*k] && got.to_string().contains(&format!("column `{column}`"))
                }
                _ => false,
            };
            prop_assert!(as_expected, "{line:?} gave {got:?}");
        }
        prop_assert!(outcomes.next().is_none(), "no outcome past the last line");
    }

    #[test]
    fn garbled_csv_never_panics_and_errors_say_where(bytes in garbled(b",,\"\r ;")) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "s.csv", &bytes);
        let lines = bytes.split(|&b| b == b'\n').count() as u64;
        if let Ok(outcomes) = read_all(&path, Format::Csv) {
            for error in outcomes.into_iter().filter_map(Result::err) {
                let line = line_of(&error);
                prop_assert!(matches!(line, Some(n) if (1..=lines).contains(&n)), "{error}");
            }
        }
    }

    #[test]
    fn garbled_json_lines_never_panic_and_errors_say_where(bytes in garbled(b"{}[]\":,0 ")) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "s.jsonl", &bytes);
        let lines = bytes.split(|&b| b == b'\n').count() as u64;
        let outcomes = match read_all(&path, Format::Jsonl) {
            Ok(outcomes) => outcomes,
            // The first object's line is named like any other.
            Err(TabularError::NoObject { .. }) => return Ok(()),
            Err(error) => vec![Err(error)],
        };
        for error in outcomes.into_iter().filter_map(Result::err) {
            let line = line_of(&error);
            prop_assert!(matches!(line, Some(n) if (1..=lines).contains(&n)), "{error}");
        }
    }

    #[test]
    fn garbled_parquet_never_panics_and_errors_say_where(
        ints in vec(proptest::option::of(any::<i64>()), 1..40),
        texts in vec(proptest::option::of("[a-z]{0,5}"), 1..40),
        damage in vec((any::<proptest::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
    ) {
        let mut bytes = parquet_bytes(&ints, &texts);
        let intact = damage.is_empty() && cut.is_none();
        for (at, byte) in &damage {
            let at = at.index(bytes.len());
            bytes[at] = *byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let rows = ints.len().min(texts.len()) as u64;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(&dir, "s.parquet", &bytes);
        match read_all(&path, Format::Parquet) {
            Ok(outcomes) => {
                if intact {
                    prop_assert_eq!(outcomes.len() as u64, rows);
                    prop_assert!(outcomes.iter().all(Result::is_ok));
                }
                for error in outcomes.into_iter().filter_map(Result::err) {
                    let message = error.to_string();
                    let said = match &error {
                        TabularError::BadParquetData { row, .. } => *row <= rows && line_of(&error).is_some(),
                        TabularError::CannotRead { .. } => message.starts_with("cannot read "),
                        TabularError::UnsupportedColumn { column, .. } => message.contains(&format!("column `{column}`")),
                        _ => false,
                    };
                    prop_assert!(said, "{error:?}");
                }
            }
            Err(error) => {
                prop_assert!(!intact, "an intact file is refused: {error}");
                let refused = matches!(error, TabularError::NotParquet { .. } | TabularError::Empty { .. });
                prop_assert!(refused, "{error:?}");
            }
        }
    }
}
