//! Where each monitored feature and the prediction sit in a version's
//! tensors, and reading them out row by row.

use ferroserve_core::{DataType, Dim, ModelSignature, Tensor, TensorSpec};

pub use ferroserve_core::feature_values::{value_at, Value};

use super::profile::{FeatureKind, ReferenceProfile};
use super::quality::{Outcome, Task};

#[derive(Debug, Clone)]
enum Source {
    /// Column `column` of a `[rows, width]` input.
    Column {
        input: String,
        column: usize,
        width: usize,
    },
    /// A whole `[rows]` or `[rows, 1]` input named like the feature.
    Input { input: String },
}

/// Where the features of a version's inputs are.
#[derive(Debug, Clone)]
pub(crate) struct FeatureLayout {
    sources: Vec<Source>,
}

impl FeatureLayout {
    /// Finds `names` in `signature`: one input per feature, named like it,
    /// or the columns, in order, of a single two-dimensional input.
    pub(crate) fn new(names: &[String], signature: &ModelSignature) -> Result<Self, String> {
        if names.iter().all(|n| signature.input(n).is_some()) {
            let sources = names
                .iter()
                .map(|n| Source::Input { input: n.clone() })
                .collect();
            return Ok(FeatureLayout { sources });
        }
        if let [input] = signature.inputs.as_slice() {
            let fits = match input.shape.as_slice() {
                [_, Dim::Fixed(width)] => *width == names.len(),
                [_, Dim::Dynamic] => true,
                _ => false,
            };
            if fits {
                let sources = (0..names.len())
                    .map(|column| Source::Column {
                        input: input.name.clone(),
                        column,
                        width: names.len(),
                    })
                    .collect();
                return Ok(FeatureLayout { sources });
            }
        }
        let inputs: Vec<String> = signature
            .inputs
            .iter()
            .map(|i| {
                format!(
                    "{} {}",
                    i.name,
                    ferroserve_core::signature::format_shape(&i.shape)
                )
            })
            .collect();
        Err(format!(
            "the profile's {} features are neither inputs of the model nor the columns of its \
             single two-dimensional input (inputs: {})",
            names.len(),
            inputs.join(", ")
        ))
    }

    /// Calls `visit(feature, row, value)` for every feature of every row
    /// of `inputs`; returns the row count. An error (given before any
    /// value is visited) says which input is missing or has the wrong width.
    pub(crate) fn read<'a>(
        &self,
        inputs: &'a [Tensor],
        mut visit: impl FnMut(usize, usize, Value<'a>),
    ) -> Result<usize, String> {
        let mut columns = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            let (name, column, width) = match source {
                Source::Column {
                    input,
                    column,
                    width,
                } => (input, *column, *width),
                Source::Input { input } => (input, 0, 1),
            };
            let tensor = inputs
                .iter()
                .find(|t| &t.name == name)
                .ok_or_else(|| format!("input '{name}' is missing"))?;
            if tensor.row_len() != width {
                return Err(format!(
                    "input '{name}' has {} values per row; the profile needs {width}",
                    tensor.row_len()
                ));
            }
            columns.push((tensor, column, width));
        }
        let rows = columns.first().map_or(0, |(t, _, _)| t.rows());
        for (feature, (tensor, column, width)) in columns.into_iter().enumerate() {
            for row in 0..tensor.rows().min(rows) {
                visit(feature, row, value_at(&tensor.data, row * width + column));
            }
        }
        Ok(rows)
    }
}

/// A number as a category label, as the profile builder writes it:
/// integers without a fraction (`2`, not `2.0`).
pub fn number_label(value: f64) -> String {
    Outcome::Number(value).to_label()
}

/// Whether an output holds one value per row (`[n]` or `[n, 1]`): what a
/// prediction output looks like.
pub fn one_value_per_row(spec: &TensorSpec) -> bool {
    matches!(spec.shape.as_slice(), [_] | [_, Dim::Fixed(1)])
}

/// How a prediction of `datatype` is profiled and compared: float scores
/// as numbers, labels (integers, booleans, strings) as categories.
pub fn prediction_kind(datatype: DataType) -> FeatureKind {
    if datatype.is_float() {
        FeatureKind::Numeric
    } else {
        FeatureKind::Categorical
    }
}

/// The output that carries a version's prediction, and what kind of model
/// the version is.
#[derive(Debug, Clone)]
pub struct PredictionSource {
    /// Output name.
    pub output: String,
    /// Classifier or regressor.
    pub task: Task,
}

impl PredictionSource {
    /// The output named like the profile's prediction, else the first
    /// output with one value per row. A categorical prediction profile (or,
    /// without one, a non-float output) makes the version a classifier.
    pub fn find(
        signature: &ModelSignature,
        profile: Option<&ReferenceProfile>,
    ) -> Option<PredictionSource> {
        let predicted = profile.and_then(|p| p.prediction.as_ref());
        let output = predicted
            .and_then(|p| signature.output(&p.name))
            .or_else(|| signature.outputs.iter().find(|o| one_value_per_row(o)))?;
        let kind = predicted.map_or_else(|| prediction_kind(output.datatype), |p| p.kind());
        let task = match kind {
            FeatureKind::Categorical => Task::Classification,
            FeatureKind::Numeric => Task::Regression,
        };
        Some(PredictionSource {
            output: output.name.clone(),
            task,
        })
    }

    /// One outcome per row of the prediction output in `outputs`, or
    /// `None` when the output is absent (the request asked for others).
    pub fn read(&self, outputs: &[Tensor]) -> Option<Vec<Outcome>> {
        let tensor = outputs.iter().find(|t| t.name == self.output)?;
        if tensor.row_len() == 0 {
            return None;
        }
        let outcomes = first_of_each_row(tensor)
            .map(|value| match value {
                Value::Null => Outcome::Number(f64::NAN),
                Value::Number(v) => match self.task {
                    Task::Regression => Outcome::Number(v),
                    Task::Classification => Outcome::Label(number_label(v)),
                },
                Value::Text(bytes) => Outcome::Label(String::from_utf8_lossy(bytes).into_owned()),
            })
            .collect();
        Some(outcomes)
    }
}

/// The first value of each row of `tensor` (a prediction output's value);
/// nothing when its rows are empty (shape `[n, 0]`).
pub(crate) fn first_of_each_row(tensor: &Tensor) -> impl Iterator<Item = Value<'_>> {
    let width = tensor.row_len();
    let rows = if width == 0 { 0 } else { tensor.rows() };
    (0..rows).map(move |row| value_at(&tensor.data, row * width))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroserve_core::TensorData;

    fn signature(inputs: Vec<TensorSpec>) -> ModelSignature {
        ModelSignature {
            inputs,
            outputs: vec![
                TensorSpec::new(
                    "probabilities",
                    DataType::Fp32,
                    vec![Dim::Dynamic, Dim::Fixed(3)],
                ),
                TensorSpec::new("label", DataType::Int64, vec![Dim::Dynamic]),
            ],
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_float_width_is_a_numeric_prediction() {
        for datatype in DataType::ALL {
            let numeric = prediction_kind(datatype) == FeatureKind::Numeric;
            assert_eq!(numeric, datatype.is_float(), "{datatype}");
        }
        assert_eq!(prediction_kind(DataType::Fp16), FeatureKind::Numeric);
        assert_eq!(prediction_kind(DataType::Bf16), FeatureKind::Numeric);
    }

    #[test]
    fn columns_of_a_matrix_input_are_read_in_order() {
        let sig = signature(vec![TensorSpec::new(
            "input",
            DataType::Fp32,
            vec![Dim::Dynamic, Dim::Fixed(2)],
        )]);
        let layout = FeatureLayout::new(&names(&["a", "b"]), &sig).expect("fits");
        let input = Tensor::new(
            "input",
            vec![2, 2],
            TensorData::Fp32(vec![1.0, f32::NAN, 3.0, 4.0]),
        )
        .expect("tensor");
        let mut seen = Vec::new();
        let rows = layout
            .read(std::slice::from_ref(&input), |f, r, v| seen.push((f, r, v)))
            .expect("reads");
        assert_eq!(rows, 2);
        assert_eq!(
            seen,
            vec![
                (0, 0, Value::Number(1.0)),
                (0, 1, Value::Number(3.0)),
                (1, 0, Value::Null),
                (1, 1, Value::Number(4.0)),
            ]
        );
        assert!(FeatureLayout::new(&names(&["a", "b", "c"]), &sig)
            .unwrap_err()
            .contains("input [-1, 2]"));
    }

    #[test]
    fn inputs_named_like_features_are_read_whole() {
        let sig = signature(vec![
            TensorSpec::new("colour", DataType::Bytes, vec![Dim::Dynamic]),
            TensorSpec::new("size", DataType::Int64, vec![Dim::Dynamic, Dim::Fixed(1)]),
        ]);
        let layout = FeatureLayout::new(&names(&["size", "colour"]), &sig).expect("by name");
        let inputs = vec![
            Tensor::new("colour", vec![1], TensorData::Bytes(vec![b"red".to_vec()])).expect("t"),
            Tensor::new("size", vec![1, 1], TensorData::Int64(vec![7])).expect("t"),
        ];
        let mut seen = Vec::new();
        layout
            .read(&inputs, |f, _, v| seen.push((f, format!("{v:?}"))))
            .expect("reads");
        assert_eq!(seen[0], (0, "Number(7.0)".to_string()));
        assert!(seen[1].1.contains("Text"));
    }

    #[test]
    fn the_prediction_is_the_first_one_value_output() {
        let sig = signature(vec![]);
        let source = PredictionSource::find(&sig, None).expect("label output");
        assert_eq!(source.output, "label");
        assert_eq!(source.task, Task::Classification);
        let label = Tensor::new("label", vec![2], TensorData::Int64(vec![2, 0])).expect("t");
        assert_eq!(
            source.read(&[label]),
            Some(vec![Outcome::Label("2".into()), Outcome::Label("0".into())])
        );
        assert_eq!(source.read(&[]), None);
        assert_eq!(number_label(2.0), "2");
        assert_eq!(
            value_at(&TensorData::Fp32(vec![1.3]), 0),
            Value::Number(1.3)
        );
        assert_eq!(number_label(2.5), "2.5");
    }

    #[test]
    fn an_output_with_empty_rows_has_no_prediction_and_no_panic() {
        let source = PredictionSource::find(&signature(vec![]), None).expect("label output");
        let empty_rows =
            Tensor::new("label", vec![3, 0], TensorData::Int64(Vec::new())).expect("t");
        assert_eq!(first_of_each_row(&empty_rows).count(), 0);
        assert_eq!(source.read(&[empty_rows]), None);
    }
}
