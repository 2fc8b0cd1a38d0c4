//! Parquet samples, read as Arrow record batches of only the columns the
//! profile needs. Numbers (integers, floats, decimals) become numbers;
//! strings and booleans text; dictionary-encoded columns their values.
//! The Parquet decoder can panic on a garbled file instead of returning an
//! error: every call into it is contained, and its panic becomes the
//! file's error.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::Array;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use super::{ProgressUnit, SampleReader};
use crate::TabularError;
use ferroserve_core::Cell;

/// Rows per record batch.
const BATCH_ROWS: usize = 4096;

/// A Parquet file read batch by batch.
pub(super) struct ParquetReader {
    file: String,
    columns: Vec<String>,
    total_rows: u64,
    /// Until the first read, which fixes the columns to decode.
    builder: Option<ParquetRecordBatchReaderBuilder<File>>,
    batches: Option<ParquetRecordBatchReader>,
    /// Projected column position of each pick.
    positions: Vec<usize>,
    /// Cells of the current batch, one vector per projected column.
    batch: Vec<Vec<Cell>>,
    /// Rows of the current batch (also when no column is read).
    batch_len: usize,
    batch_row: usize,
    rows_read: u64,
}

impl ParquetReader {
    /// Opens `path` and reads its footer (schema and row count).
    pub(super) fn open(path: &Path) -> Result<Self, TabularError> {
        let file = path.display().to_string();
        let handle = File::open(path).map_err(|e| TabularError::cannot_open(&file, &e))?;
        let not_parquet = |cause: String| TabularError::NotParquet {
            file: file.clone(),
            cause,
        };
        let builder = contained(|| ParquetRecordBatchReaderBuilder::try_new(handle))
            .map_err(not_parquet)?
            .map_err(|e| not_parquet(e.to_string()))?;
        let columns = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        Ok(ParquetReader {
            file,
            columns,
            total_rows,
            builder: Some(builder),
            batches: None,
            positions: Vec::new(),
            batch: Vec::new(),
            batch_len: 0,
            batch_row: 0,
            rows_read: 0,
        })
    }

    /// Starts decoding only the columns in `picks`.
    fn start(&mut self, picks: &[usize]) -> Result<(), TabularError> {
        let Some(builder) = self.builder.take() else {
            return Ok(());
        };
        let mut roots: Vec<usize> = picks.to_vec();
        roots.sort_unstable();
        roots.dedup();
        self.positions = picks
            .iter()
            .map(|p| roots.binary_search(p).expect("every pick is a root"))
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let cannot_read = |cause: String| TabularError::CannotRead {
            file: self.file.clone(),
            cause,
            io: None,
        };
        let reader = contained(|| {
            builder
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
        })
        .map_err(cannot_read)?
        .map_err(|e| cannot_read(e.to_string()))?;
        self.batches = Some(reader);
        Ok(())
    }

    /// Decodes the next non-empty batch; `false` at the end.
    fn next_batch(&mut self) -> Result<bool, TabularError> {
        let Some(batches) = self.batches.as_mut() else {
            return Ok(false);
        };
        loop {
            let bad = |cause: String| TabularError::BadParquetData {
                file: self.file.clone(),
                row: self.rows_read,
                cause,
            };
            let batch = match contained(|| batches.next()) {
                Ok(None) => return Ok(false),
                Ok(Some(batch)) => batch.map_err(|e| bad(e.to_string()))?,
                Err(panic) => {
                    // A decoder that panicked is not asked again.
                    self.batches = None;
                    return Err(bad(panic));
                }
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let schema = batch.schema();
            self.batch = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(array, field)| cells_of(array.as_ref(), field.name(), &self.file))
                .collect::<Result<_, TabularError>>()?;
            self.batch_len = batch.num_rows();
            self.batch_row = 0;
            return Ok(true);
        }
    }
}

impl SampleReader for ParquetReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, picks: &[usize], cells: &mut Vec<Cell>) -> Result<bool, TabularError> {
        cells.clear();
        self.start(picks)?;
        if self.batch_row >= self.batch_len && !self.next_batch()? {
            return Ok(false);
        }
        let row = self.batch_row;
        cells.extend(self.positions.iter().map(|&p| self.batch[p][row].clone()));
        self.batch_row += 1;
        self.rows_read += 1;
        Ok(true)
    }

    fn location(&self) -> String {
        format!("{}, row {}", self.file, self.rows_read)
    }

    fn progress(&self) -> u64 {
        self.rows_read
    }

    fn progress_total(&self) -> u64 {
        self.total_rows
    }

    fn progress_unit(&self) -> ProgressUnit {
        ProgressUnit::Rows
    }
}

/// The cells of one Arrow column.
fn cells_of(array: &dyn Array, column: &str, file: &str) -> Result<Vec<Cell>, TabularError> {
    let cell = |i: usize, value: Cell| {
        if array.is_null(i) {
            Cell::Null
        } else {
            value
        }
    };
    macro_rules! numbers {
        ($type:ty) => {{
            let a = array.as_primitive::<$type>();
            (0..a.len())
                .map(|i| cell(i, Cell::Number(a.value(i) as f64)))
                .collect()
        }};
    }
    macro_rules! texts {
        ($a:expr) => {{
            let a = $a;
            (0..a.len())
                .map(|i| cell(i, Cell::Text(a.value(i).to_owned())))
                .collect()
        }};
    }
    Ok(match array.data_type() {
        DataType::Float64 => numbers!(Float64Type),
        DataType::Float32 => numbers!(Float32Type),
        DataType::Float16 => {
            let a = array.as_primitive::<Float16Type>();
            (0..a.len())
                .map(|i| cell(i, Cell::Number(a.value(i).to_f64())))
                .collect()
        }
        DataType::Int64 => numbers!(Int64Type),
        DataType::Int32 => numbers!(Int32Type),
        DataType::Int16 => numbers!(Int16Type),
        DataType::Int8 => numbers!(Int8Type),
        DataType::UInt64 => numbers!(UInt64Type),
        DataType::UInt32 => numbers!(UInt32Type),
        DataType::UInt16 => numbers!(UInt16Type),
        DataType::UInt8 => numbers!(UInt8Type),
        DataType::Decimal128(_, scale) => {
            let a = array.as_primitive::<Decimal128Type>();
            let unit = 10f64.powi(i32::from(*scale));
            (0..a.len())
                .map(|i| cell(i, Cell::Number(a.value(i) as f64 / unit)))
                .collect()
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..a.len())
                .map(|i| cell(i, Cell::Text(a.value(i).to_string())))
                .collect()
        }
        DataType::Utf8 => texts!(array.as_string::<i32>()),
        DataType::LargeUtf8 => texts!(array.as_string::<i64>()),
        DataType::Utf8View => texts!(array.as_string_view()),
        DataType::Null => vec![Cell::Null; array.len()],
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary();
            let values = cells_of(dictionary.values().as_ref(), column, file)?;
            let keys = dictionary.normalized_keys();
            // A null slot's key may point past the values: check it first.
            (0..array.len())
                .map(|i| match values.get(keys[i]) {
                    Some(value) if !array.is_null(i) => value.clone(),
                    _ => Cell::Null,
                })
                .collect()
        }
        other => {
            return Err(TabularError::UnsupportedColumn {
                file: file.to_owned(),
                column: column.to_owned(),
                datatype: other.to_string(),
            })
        }
    })
}

/// Runs one call into the Parquet decoder; a panic in it (a garbled file
/// can make the decoder's own checks fail) becomes `Err` with its message.
fn contained<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        format!("the Parquet decoder failed on it ({message})")
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BooleanArray, DictionaryArray, Float32Array, Int64Array, RecordBatch,
        StringArray, TimestampSecondArray,
    };
    use parquet::arrow::ArrowWriter;

    use super::*;

    fn write(columns: Vec<(&str, ArrayRef)>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.parquet");
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        let mut writer =
            ArrowWriter::try_new(File::create(&path).expect("create"), batch.schema(), None)
                .expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        (dir, path)
    }

    #[test]
    fn types_become_cells_and_only_picked_columns_are_read() {
        let dict: DictionaryArray<arrow_array::types::Int32Type> =
            vec![Some("b"), None, Some("b")].into_iter().collect();
        let (_dir, path) = write(vec![
            (
                "f",
                Arc::new(Float32Array::from(vec![Some(1.5), None, Some(f32::NAN)])) as ArrayRef,
            ),
            ("i", Arc::new(Int64Array::from(vec![7, -1, 0])) as ArrayRef),
            (
                "s",
                Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![true, false, true])) as ArrayRef,
            ),
            ("d", Arc::new(dict) as ArrayRef),
        ]);
        let mut reader = ParquetReader::open(&path).expect("opens");
        assert_eq!(reader.columns(), ["f", "i", "s", "b", "d"]);
        assert_eq!(reader.progress_total(), 3);
        let mut cells = Vec::new();
        let picks = [4, 2, 0, 1, 3];
        assert!(reader.next_row(&picks, &mut cells).expect("row 1"));
        use Cell::{Null, Number, Text};
        let text = |s: &str| Text(s.to_owned());
        assert_eq!(
            cells,
            [text("b"), text("x"), Number(1.5), Number(7.0), text("true")]
        );
        assert!(reader.next_row(&picks, &mut cells).expect("row 2"));
        assert_eq!(cells, [Null, text("y"), Null, Number(-1.0), text("false")]);
        assert!(reader.next_row(&picks, &mut cells).expect("row 3"));
        assert!(matches!(cells[2], Number(x) if x.is_nan()));
        assert_eq!(cells[1], Null);
        assert!(reader.location().ends_with("s.parquet, row 3"));
        assert!(!reader.next_row(&picks, &mut cells).expect("end"));
    }

    #[test]
    fn rows_are_counted_when_no_column_is_read() {
        let rows = BATCH_ROWS * 2 + 7;
        let values: Vec<i64> = (0..rows as i64).collect();
        let (_dir, path) = write(vec![("i", Arc::new(Int64Array::from(values)) as ArrayRef)]);
        let mut reader = ParquetReader::open(&path).expect("opens");
        assert_eq!(reader.progress_total(), rows as u64);
        let mut cells = Vec::new();
        let mut read = 0;
        while reader.next_row(&[], &mut cells).expect("row") {
            assert!(cells.is_empty());
            read += 1;
        }
        assert_eq!(read, rows);
    }

    #[test]
    fn unsupported_types_and_broken_files_are_named() {
        let (dir, path) = write(vec![(
            "t",
            Arc::new(TimestampSecondArray::from(vec![1, 2])) as ArrayRef,
        )]);
        let mut reader = ParquetReader::open(&path).expect("opens");
        let err = reader
            .next_row(&[0], &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s.parquet, column `t`: Parquet columns of type Timestamp"),
            "{err}"
        );

        let broken = dir.path().join("broken.parquet");
        std::fs::write(&broken, "a,b\n1,2\n").expect("write");
        let err = ParquetReader::open(&broken)
            .err()
            .expect("broken")
            .to_string();
        assert!(
            err.contains("broken.parquet is not a readable Parquet file"),
            "{err}"
        );
    }
}
