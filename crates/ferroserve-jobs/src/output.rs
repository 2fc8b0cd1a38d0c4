//! How a batch job's results are written: one line per input row, tagged
//! with its row number, holding the chosen outputs' values for that row.

use ferroserve_core::{DataType, Tensor, TensorData};
use serde_json::{Map, Value as Json};

use super::error::JobError;
use super::spec::OutputFormat;
use ferroserve_core::feature_values::{value_at, Value};

/// Turns output tensors into result lines in one format.
#[derive(Debug)]
pub(crate) struct ResultEncoder {
    format: OutputFormat,
    /// Names of the outputs written, in order.
    names: Vec<String>,
    /// Values per row of each output, fixed by the first batch.
    widths: Option<Vec<usize>>,
}

impl ResultEncoder {
    /// An encoder for the outputs called `names` (in the order they come).
    pub(crate) fn new(format: OutputFormat, names: Vec<String>) -> Self {
        ResultEncoder {
            format,
            names,
            widths: None,
        }
    }

    /// The CSV header line for outputs shaped like `outputs`; `None` for
    /// formats without one.
    pub(crate) fn header(&mut self, outputs: &[Tensor]) -> Result<Option<String>, JobError> {
        let widths = self.check_widths(outputs)?;
        if self.format != OutputFormat::Csv {
            return Ok(None);
        }
        let mut columns = vec!["row".to_string()];
        for (name, &width) in self.names.iter().zip(&widths) {
            if width == 1 {
                columns.push(name.clone());
            } else {
                columns.extend((0..width).map(|i| format!("{name}_{i}")));
            }
        }
        let mut line = csv_line(columns.iter().map(String::as_str));
        line.push('\n');
        Ok(Some(line))
    }

    /// Appends to `out` one line per row of `outputs`, numbered by `rows`
    /// (one entry per row, in order).
    pub(crate) fn encode(
        &mut self,
        outputs: &[Tensor],
        rows: &[u64],
        out: &mut String,
    ) -> Result<(), JobError> {
        let widths = self.check_widths(outputs)?;
        for tensor in outputs {
            if tensor.rows() != rows.len() {
                return Err(JobError::Internal(format!(
                    "output '{}' has {} rows for a batch of {} rows",
                    tensor.name,
                    tensor.rows(),
                    rows.len()
                )));
            }
        }
        for (r, row) in rows.iter().enumerate() {
            match self.format {
                OutputFormat::Csv => {
                    let mut cells = vec![row.to_string()];
                    for (tensor, &width) in outputs.iter().zip(&widths) {
                        for i in r * width..(r + 1) * width {
                            cells.push(csv_cell(&tensor.data, i));
                        }
                    }
                    out.push_str(&csv_line(cells.iter().map(String::as_str)));
                }
                OutputFormat::Jsonl => {
                    let mut object = Map::new();
                    object.insert("row".into(), Json::from(*row));
                    for ((tensor, &width), name) in outputs.iter().zip(&widths).zip(&self.names) {
                        let mut values: Vec<Json> = (r * width..(r + 1) * width)
                            .map(|i| json_value(&tensor.data, i))
                            .collect();
                        let value = if width == 1 {
                            values.pop().unwrap_or(Json::Null)
                        } else {
                            Json::Array(values)
                        };
                        object.insert(name.clone(), value);
                    }
                    let line = serde_json::to_string(&Json::Object(object)).map_err(|e| {
                        JobError::Internal(format!("cannot write a result line: {e}"))
                    })?;
                    out.push_str(&line);
                }
            }
            out.push('\n');
        }
        Ok(())
    }

    /// Values per row of each output; every batch must agree with the
    /// first, or the columns would not line up.
    fn check_widths(&mut self, outputs: &[Tensor]) -> Result<Vec<usize>, JobError> {
        if outputs.len() != self.names.len() {
            return Err(JobError::Internal(format!(
                "the model returned {} outputs where {} were expected",
                outputs.len(),
                self.names.len()
            )));
        }
        let widths = outputs
            .iter()
            .map(|t| {
                t.checked_row_len()
                    .map_err(|e| JobError::Internal(e.message))
            })
            .collect::<Result<Vec<usize>, JobError>>()?;
        match &self.widths {
            None => self.widths = Some(widths.clone()),
            Some(first) if *first != widths => {
                return Err(JobError::Internal(format!(
                    "the outputs changed shape during the job: {} values per row, then {}",
                    describe(&self.names, first),
                    describe(&self.names, &widths)
                )))
            }
            Some(_) => {}
        }
        Ok(widths)
    }
}

fn describe(names: &[String], widths: &[usize]) -> String {
    names
        .iter()
        .zip(widths)
        .map(|(n, w)| format!("{n}: {w}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One CSV record, quoted where needed (RFC 4180), without the line end.
fn csv_line<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            line.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&cell.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(cell);
        }
    }
    line
}

/// `value` as an integer when it is a whole number small enough to be
/// exact: results print `1`, not `1.0`, for labels.
fn whole(value: f64) -> Option<i64> {
    (value.fract() == 0.0 && value.abs() < 1e15).then_some(value as i64)
}

/// A whole number prints without a fraction, any other in the shortest
/// form that reads back to the same value (`1e300`, not 301 digits).
fn number_text(value: f64) -> String {
    match whole(value) {
        Some(n) => n.to_string(),
        None => ferroserve_core::json::float_text(value),
    }
}

fn csv_cell(data: &TensorData, index: usize) -> String {
    match value_at(data, index) {
        Value::Null => String::new(),
        Value::Number(v) if data.datatype() == DataType::Bool => (v != 0.0).to_string(),
        Value::Number(v) => number_text(v),
        Value::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn json_value(data: &TensorData, index: usize) -> Json {
    match value_at(data, index) {
        Value::Null => Json::Null,
        Value::Number(v) if data.datatype() == DataType::Bool => Json::Bool(v != 0.0),
        Value::Number(v) => whole(v).map_or(Json::from(v), Json::from),
        Value::Text(bytes) => Json::from(String::from_utf8_lossy(bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Vec<Tensor> {
        vec![
            Tensor::new("label", vec![2], TensorData::Int64(vec![1, 0])).expect("label"),
            Tensor::new(
                "probabilities",
                vec![2, 2],
                TensorData::Fp32(vec![0.25, 0.75, 0.1, f32::NAN]),
            )
            .expect("probabilities"),
        ]
    }

    fn names() -> Vec<String> {
        vec!["label".into(), "probabilities".into()]
    }

    #[test]
    fn numbers_are_written_short_and_exact() {
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(0.25), "0.25");
        assert_eq!(number_text(1e300), "1e300");
        assert_eq!(number_text(-2.5e-9), "-2.5e-9");
    }

    #[test]
    fn csv_has_a_column_per_value_and_a_row_number() {
        let mut encoder = ResultEncoder::new(OutputFormat::Csv, names());
        let header = encoder.header(&outputs()).expect("header").expect("csv");
        assert_eq!(header, "row,label,probabilities_0,probabilities_1\n");
        let mut out = String::new();
        encoder
            .encode(&outputs(), &[7, 9], &mut out)
            .expect("encode");
        assert_eq!(out, "7,1,0.25,0.75\n9,0,0.1,\n");
    }

    #[test]
    fn jsonl_keeps_arrays_and_nulls() {
        let mut encoder = ResultEncoder::new(OutputFormat::Jsonl, names());
        assert_eq!(encoder.header(&outputs()).expect("header"), None);
        let mut out = String::new();
        encoder
            .encode(&outputs(), &[1, 2], &mut out)
            .expect("encode");
        let lines: Vec<Json> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"row": 1, "label": 1, "probabilities": [0.25, 0.75]})
        );
        assert_eq!(
            lines[1],
            serde_json::json!({"row": 2, "label": 0, "probabilities": [0.1, null]})
        );
    }

    #[test]
    fn text_is_quoted_and_shapes_must_not_change() {
        let text = |values: Vec<&str>| {
            let rows = values.len();
            Tensor::new(
                "name",
                vec![rows],
                TensorData::Bytes(values.into_iter().map(|v| v.as_bytes().to_vec()).collect()),
            )
            .expect("text")
        };
        let mut encoder = ResultEncoder::new(OutputFormat::Csv, vec!["name".into()]);
        let mut out = String::new();
        encoder
            .encode(&[text(vec!["a,b", "c\"d"])], &[1, 2], &mut out)
            .expect("encode");
        assert_eq!(out, "1,\"a,b\"\n2,\"c\"\"d\"\n");
        let wider = Tensor::new(
            "name",
            vec![1, 2],
            TensorData::Bytes(vec![b"x".to_vec(); 2]),
        )
        .expect("wider");
        let err = encoder.encode(&[wider], &[3], &mut out).unwrap_err();
        assert!(err.to_string().contains("changed shape"), "{err}");
        let err = encoder
            .encode(&[text(vec!["x"])], &[1, 2], &mut out)
            .unwrap_err();
        assert!(
            err.to_string().contains("1 rows for a batch of 2"),
            "{}",
            err
        );
    }
}
