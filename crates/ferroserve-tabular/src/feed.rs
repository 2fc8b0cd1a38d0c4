//! How the sample's features fill the model's inputs: one `[rows,
//! features]` matrix, or one tensor per feature matched by name; and the
//! values they get (a null takes the schema's default).

use ferroserve_core::half::{bf16, f16};
use ferroserve_core::signature::format_shape;
use ferroserve_core::{DataType, ModelSignature, Tensor, TensorData, TensorSpec};

use ferroserve_core::Cell;

use super::{Feature, TabularError};

/// Rows encoded into the model's input tensors, a batch at a time: every
/// row is pushed whole or not at all.
pub struct RowEncoder {
    features: Vec<Feature>,
    feeds: Vec<Feed>,
    rows: usize,
}

impl RowEncoder {
    /// Matches the inputs of `signature` to `features` (see [`feeds`]).
    pub fn new(signature: &ModelSignature, features: Vec<Feature>) -> Result<Self, TabularError> {
        let feeds = feeds(signature, &features)?;
        Ok(RowEncoder {
            features,
            feeds,
            rows: 0,
        })
    }

    /// Buffers one row; `cells` are the row's feature cells in feature
    /// order, and `at` says where the row is, for errors. On an error the
    /// buffer is left as it was before the row.
    pub fn push(&mut self, cells: &[Cell], at: &dyn Fn() -> String) -> Result<(), TabularError> {
        if cells.len() != self.features.len() {
            return Err(TabularError::RowWidth {
                at: at(),
                cells: cells.len(),
                features: self.features.len(),
            });
        }
        let lens: Vec<usize> = self.feeds.iter().map(|feed| feed.values.len()).collect();
        for k in 0..self.feeds.len() {
            if let Err(e) = self.feeds[k].push(&self.features, cells, at) {
                // Earlier inputs already hold the row; a half row would
                // shift every later row of the batch.
                for (feed, &len) in self.feeds[..k].iter_mut().zip(&lens) {
                    feed.values.truncate(len);
                }
                return Err(e);
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Number of rows buffered.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The buffered rows as one tensor per model input, in signature order;
    /// the buffer is emptied, even on an error.
    pub fn take(&mut self) -> Result<Vec<Tensor>, TabularError> {
        let rows = std::mem::take(&mut self.rows);
        let tensors = self
            .feeds
            .iter_mut()
            .map(|feed| feed.take(rows))
            .collect::<Result<Vec<_>, _>>();
        if tensors.is_err() {
            for feed in &mut self.feeds {
                feed.values.truncate(0);
            }
        }
        tensors
    }

    /// The features rows are made of, in the order of their cells.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }
}

/// One model input and the features that fill it.
pub struct Feed {
    spec: TensorSpec,
    /// Positions in the feature list of its columns, in column order.
    features: Vec<usize>,
    /// Its shape past the batch dimension.
    row_shape: Vec<usize>,
    values: Values,
}

/// Buffered elements of one input.
enum Values {
    Numbers(Vec<f64>),
    Texts(Vec<Vec<u8>>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Texts(v) => v.len(),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Values::Numbers(v) => v.truncate(len),
            Values::Texts(v) => v.truncate(len),
        }
    }
}

impl Feed {
    /// The model input this feed fills.
    pub fn spec(&self) -> &TensorSpec {
        &self.spec
    }

    /// Appends one row's values; `cells` are the row's feature cells in
    /// feature order (`features` as given to [`feeds`]), and `at` says
    /// where the row is, for errors. On an error nothing is appended.
    pub fn push(
        &mut self,
        features: &[Feature],
        cells: &[Cell],
        at: &dyn Fn() -> String,
    ) -> Result<(), TabularError> {
        let len = self.values.len();
        let pushed = self.push_values(features, cells, at);
        if pushed.is_err() {
            self.values.truncate(len);
        }
        pushed
    }

    fn push_values(
        &mut self,
        features: &[Feature],
        cells: &[Cell],
        at: &dyn Fn() -> String,
    ) -> Result<(), TabularError> {
        for &k in &self.features {
            let (Some(feature), Some(cell)) = (features.get(k), cells.get(k)) else {
                return Err(TabularError::FeatureOutOfRange {
                    at: at(),
                    input: self.spec.name.clone(),
                    feature: k + 1,
                    features: features.len(),
                    cells: cells.len(),
                });
            };
            match &mut self.values {
                Values::Numbers(v) => v.push(number(feature, cell, &self.spec.name, at)?),
                Values::Texts(v) => v.push(text(feature, cell, at)?.into_bytes()),
            }
        }
        Ok(())
    }

    /// The buffered `rows` as a tensor; the buffer is emptied.
    pub fn take(&mut self, rows: usize) -> Result<Tensor, TabularError> {
        let shape: Vec<usize> = std::iter::once(rows)
            .chain(self.row_shape.iter().copied())
            .collect();
        let data = match &mut self.values {
            Values::Texts(v) => TensorData::Bytes(std::mem::take(v)),
            Values::Numbers(v) => {
                numbers_as(self.spec.datatype, &std::mem::take(v), &self.spec.name)?
            }
        };
        Tensor::new(self.spec.name.clone(), shape, data).map_err(TabularError::Tensor)
    }
}

/// How `features` fill the inputs of `signature`, one [`Feed`] per input
/// in signature order: a single `[rows, features]` input takes every
/// feature, else each input takes the feature of its name.
pub fn feeds(signature: &ModelSignature, features: &[Feature]) -> Result<Vec<Feed>, TabularError> {
    let n = features.len();
    let feed = |spec: &TensorSpec, features: Vec<usize>, row_shape: Vec<usize>| Feed {
        values: match spec.datatype {
            DataType::Bytes => Values::Texts(Vec::new()),
            _ => Values::Numbers(Vec::new()),
        },
        spec: spec.clone(),
        features,
        row_shape,
    };
    if let [input] = signature.inputs.as_slice() {
        if let [_, width] = input.shape.as_slice() {
            if width.accepts(n) {
                return Ok(vec![feed(input, (0..n).collect(), vec![n])]);
            }
        }
    }
    signature
        .inputs
        .iter()
        .map(|input| {
            let position = features.iter().position(|f| f.name == input.name);
            let row_shape = match input.shape.as_slice() {
                [_] => Some(vec![]),
                [_, width] if width.accepts(1) => Some(vec![1]),
                _ => None,
            };
            match (position, row_shape) {
                (Some(k), Some(row_shape)) => Ok(feed(input, vec![k], row_shape)),
                _ => Err(TabularError::UnmatchedInput {
                    input: input.name.clone(),
                    shape: format_shape(&input.shape),
                    features: n,
                }),
            }
        })
        .collect()
}

/// The number the model gets for `cell`: its value, else the schema's
/// default.
fn number(
    feature: &Feature,
    cell: &Cell,
    input: &str,
    at: &dyn Fn() -> String,
) -> Result<f64, TabularError> {
    let value = match cell {
        Cell::Null => None,
        Cell::Number(x) => Some(*x),
        Cell::Text(s) => Some(
            s.trim()
                .parse::<f64>()
                .map_err(|_| TabularError::NotANumber {
                    at: at(),
                    column: feature.name.clone(),
                    text: s.clone(),
                    input: input.to_owned(),
                })?,
        ),
    };
    value
        .filter(|x| x.is_finite())
        .or(feature.default)
        .ok_or_else(|| missing(feature, at))
}

/// The text the model gets for `cell` (a `BYTES` input).
fn text(feature: &Feature, cell: &Cell, at: &dyn Fn() -> String) -> Result<String, TabularError> {
    cell.category_text()
        .or_else(|| feature.default.map(|d| d.to_string()))
        .ok_or_else(|| missing(feature, at))
}

fn missing(feature: &Feature, at: &dyn Fn() -> String) -> TabularError {
    TabularError::NoValue {
        at: at(),
        column: feature.name.clone(),
    }
}

/// `values` as elements of `datatype` (of the input named `input`).
fn numbers_as(datatype: DataType, values: &[f64], input: &str) -> Result<TensorData, TabularError> {
    macro_rules! cast {
        ($variant:ident, $t:ty) => {
            TensorData::$variant(values.iter().map(|&x| x as $t).collect())
        };
    }
    Ok(match datatype {
        DataType::Fp16 => TensorData::Fp16(values.iter().map(|&x| f16::from_f64(x)).collect()),
        DataType::Bf16 => TensorData::Bf16(values.iter().map(|&x| bf16::from_f64(x)).collect()),
        DataType::Fp32 => cast!(Fp32, f32),
        DataType::Fp64 => cast!(Fp64, f64),
        DataType::Int64 => cast!(Int64, i64),
        DataType::Int32 => cast!(Int32, i32),
        DataType::Int16 => cast!(Int16, i16),
        DataType::Int8 => cast!(Int8, i8),
        DataType::Uint64 => cast!(Uint64, u64),
        DataType::Uint32 => cast!(Uint32, u32),
        DataType::Uint16 => cast!(Uint16, u16),
        DataType::Uint8 => cast!(Uint8, u8),
        DataType::Bool => TensorData::Bool(values.iter().map(|&x| x != 0.0).collect()),
        DataType::Bytes => {
            return Err(TabularError::NumbersForBytes {
                input: input.to_owned(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use ferroserve_core::Dim;

    use super::*;

    /// A tensor spec whose `-1` dimensions are dynamic.
    fn spec(name: &str, datatype: DataType, shape: &[i64]) -> TensorSpec {
        TensorSpec::new(
            name,
            datatype,
            shape.iter().map(|&d| Dim::from_i64(d)).collect(),
        )
    }

    fn feature(name: &str, default: Option<f64>) -> Feature {
        Feature {
            name: name.to_owned(),
            index: 0,
            kind: None,
            default,
        }
    }

    #[test]
    fn a_matrix_input_takes_every_feature_else_inputs_match_by_name() {
        let features = [feature("a", None), feature("b", None)];
        let matrix = ModelSignature {
            inputs: vec![spec("x", DataType::Fp32, &[-1, 2])],
            outputs: vec![],
        };
        let plan = feeds(&matrix, &features).expect("matrix");
        assert_eq!(
            (plan[0].features.as_slice(), plan[0].row_shape.as_slice()),
            (&[0, 1][..], &[2][..])
        );

        let named = ModelSignature {
            inputs: vec![
                spec("b", DataType::Int64, &[-1]),
                spec("a", DataType::Bytes, &[-1, 1]),
            ],
            outputs: vec![],
        };
        let plan = feeds(&named, &features).expect("by name");
        let got: Vec<(Vec<usize>, Vec<usize>)> = plan
            .iter()
            .map(|f| (f.features.clone(), f.row_shape.clone()))
            .collect();
        assert_eq!(got, [(vec![1], vec![]), (vec![0], vec![1])]);

        let odd = ModelSignature {
            inputs: vec![spec("x", DataType::Fp32, &[-1, 3])],
            outputs: vec![],
        };
        let err = feeds(&odd, &features).err().expect("no fit").to_string();
        assert!(
            err.contains("input `x` [-1, 3] is neither a [rows, 2] matrix"),
            "{err}"
        );
    }

    #[test]
    fn nulls_take_the_default_or_name_row_and_column() {
        let at = || "s.csv, line 7".to_owned();
        let with_default = feature("a", Some(0.5));
        assert_eq!(
            number(&with_default, &Cell::Null, "x", &at).expect("default"),
            0.5
        );
        assert_eq!(
            number(&with_default, &Cell::Number(f64::NAN), "x", &at).expect("NaN"),
            0.5
        );
        assert_eq!(
            number(&with_default, &Cell::Text(" 2 ".into()), "x", &at).expect("text"),
            2.0
        );
        let err = number(&feature("b", None), &Cell::Null, "x", &at)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.csv, line 7, column `b`: no value"),
            "{err}"
        );
        let err = number(&feature("b", None), &Cell::Text("abc".into()), "x", &at)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.csv, line 7, column `b`: \"abc\" is not a number"),
            "{err}"
        );
    }

    #[test]
    fn the_encoder_makes_one_tensor_per_input_in_signature_order() {
        let features = vec![feature("a", None), feature("b", Some(9.0))];
        let signature = ModelSignature {
            inputs: vec![
                spec("b", DataType::Int64, &[-1]),
                spec("a", DataType::Bytes, &[-1, 1]),
            ],
            outputs: vec![],
        };
        let mut encoder = RowEncoder::new(&signature, features.clone()).expect("encoder");
        assert_eq!(encoder.features(), features.as_slice());
        let at = || "s.csv, line 2".to_owned();
        encoder
            .push(&[Cell::Text("x".into()), Cell::Number(3.0)], &at)
            .expect("row 1");
        encoder
            .push(&[Cell::Number(1.0), Cell::Null], &at)
            .expect("row 2");
        assert_eq!(encoder.rows(), 2);

        let tensors = encoder.take().expect("tensors");
        let got: Vec<(&str, &[usize], &TensorData)> = tensors
            .iter()
            .map(|t| (t.name.as_str(), t.shape.as_slice(), &t.data))
            .collect();
        assert_eq!(
            got,
            [
                ("b", &[2][..], &TensorData::Int64(vec![3, 9])),
                (
                    "a",
                    &[2, 1][..],
                    &TensorData::Bytes(vec![b"x".to_vec(), b"1".to_vec()])
                ),
            ]
        );
        assert_eq!(encoder.rows(), 0);
        let empty = encoder.take().expect("empty");
        assert!(empty.iter().all(|t| t.shape[0] == 0 && t.data.is_empty()));
    }

    #[test]
    fn a_row_that_fails_part_way_leaves_no_trace() {
        let features = vec![feature("a", None), feature("b", None)];
        let signature = ModelSignature {
            inputs: vec![
                spec("a", DataType::Fp32, &[-1]),
                spec("b", DataType::Fp32, &[-1]),
            ],
            outputs: vec![],
        };
        let mut encoder = RowEncoder::new(&signature, features).expect("encoder");
        let at = || "s.csv, line 3".to_owned();
        encoder
            .push(&[Cell::Number(1.0), Cell::Number(2.0)], &at)
            .expect("row 1");
        // Input `a` takes the row, then input `b` refuses it.
        let err = encoder
            .push(&[Cell::Number(5.0), Cell::Null], &at)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s.csv, line 3, column `b`: no value"),
            "{err}"
        );
        let err = encoder.push(&[Cell::Number(5.0)], &at).unwrap_err();
        assert_eq!(err.to_string(), "s.csv, line 3: 1 cells for 2 features");
        encoder
            .push(&[Cell::Number(3.0), Cell::Number(4.0)], &at)
            .expect("row 2");
        assert_eq!(encoder.rows(), 2);

        let tensors = encoder.take().expect("tensors");
        let data: Vec<&TensorData> = tensors.iter().map(|t| &t.data).collect();
        assert_eq!(
            data,
            [
                &TensorData::Fp32(vec![1.0, 3.0]),
                &TensorData::Fp32(vec![2.0, 4.0])
            ]
        );
    }

    #[test]
    fn a_matrix_row_that_fails_part_way_leaves_no_trace() {
        let features = vec![feature("a", None), feature("b", None)];
        let signature = ModelSignature {
            inputs: vec![spec("x", DataType::Fp64, &[-1, 2])],
            outputs: vec![],
        };
        let mut encoder = RowEncoder::new(&signature, features).expect("encoder");
        let at = || "s.csv, line 4".to_owned();
        encoder
            .push(&[Cell::Number(1.0), Cell::Text("no".into())], &at)
            .unwrap_err();
        encoder
            .push(&[Cell::Number(1.0), Cell::Number(2.0)], &at)
            .expect("row");
        let tensors = encoder.take().expect("tensors");
        assert_eq!(tensors[0].shape, [1, 2]);
        assert_eq!(tensors[0].data, TensorData::Fp64(vec![1.0, 2.0]));
    }
}
