//! An MLflow model folder as a version's registration reads it: the
//! `MLmodel` file (flavors, run, signature, input example) and what its
//! signature and input example say about the ONNX model beside it. A
//! column signature (or a DataFrame example) names the features of a
//! tabular model, which becomes the version's feature schema; a tensor
//! signature must agree with the ONNX file's inputs. A signature or
//! example that contradicts the ONNX file is refused, saying where.

use std::collections::BTreeMap;

use axum::body::Bytes;
use ferroserve_core::schema::{FeatureSchema, FeatureSpec};
use ferroserve_core::signature::{format_shape, Dim, ModelSignature, TensorSpec};
use ferroserve_core::DataType;
use ferroserve_registry::NamedFiles;
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::protocol::MlflowError;

/// The most bytes of an `MLmodel` file or an input example read.
const MAX_DESCRIPTION_BYTES: usize = 1 << 20;

/// The parts of an `MLmodel` file this server reads.
#[derive(Deserialize)]
pub(super) struct MlModel {
    #[serde(default)]
    flavors: BTreeMap<String, serde_norway::Value>,
    pub(super) run_id: Option<String>,
    pub(super) model_id: Option<String>,
    signature: Option<SignatureText>,
    saved_input_example_info: Option<ExampleInfo>,
    /// The file as read.
    #[serde(skip)]
    pub(super) text: Bytes,
}

/// MLflow keeps a signature's inputs as JSON text inside the YAML.
#[derive(Deserialize)]
struct SignatureText {
    inputs: Option<String>,
}

/// Where the input example is and how it was written.
#[derive(Deserialize)]
struct ExampleInfo {
    artifact_path: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// One input of an MLflow signature.
#[derive(Debug, Deserialize)]
struct SignatureInput {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    #[serde(rename = "tensor-spec")]
    tensor_spec: Option<MlflowTensorSpec>,
}

#[derive(Debug, Deserialize)]
struct MlflowTensorSpec {
    dtype: String,
    shape: Vec<i64>,
}

/// What the MLflow model says about the features of its input.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Described {
    /// Named columns of a tabular model: the version's feature schema.
    pub(super) feature_schema: Option<FeatureSchema>,
}

impl MlModel {
    /// Reads and parses the `MLmodel` file of the folder `folder`.
    pub(super) async fn read(area: &NamedFiles, folder: &str) -> Result<MlModel, MlflowError> {
        let bytes = read_small(area, &format!("{folder}/MLmodel"))
            .await?
            .ok_or_else(|| MlflowError::invalid(format!("{folder} holds no MLmodel file")))?;
        MlModel::parse(&bytes).map_err(|e| MlflowError::invalid(format!("{folder}: {}", e.message)))
    }

    fn parse(bytes: &[u8]) -> Result<MlModel, MlflowError> {
        let mut model: MlModel = serde_norway::from_slice(bytes)
            .map_err(|e| MlflowError::invalid(format!("the MLmodel file is not valid: {e}")))?;
        model.text = Bytes::copy_from_slice(bytes);
        Ok(model)
    }

    /// The ONNX file of the ONNX flavor, when the model has one.
    pub(super) fn onnx_file(&self) -> Option<&str> {
        self.flavors.get("onnx")?.get("data")?.as_str()
    }

    /// The flavors the model has, for a not-servable reason.
    pub(super) fn flavor_names(&self) -> Vec<&str> {
        self.flavors.keys().map(String::as_str).collect()
    }

    /// What the signature and the input example say about `onnx`, the
    /// signature read from the ONNX file; an error where they contradict it.
    pub(super) async fn describe(
        &self,
        area: &NamedFiles,
        folder: &str,
        onnx: &ModelSignature,
    ) -> Result<Described, MlflowError> {
        let example = match &self.saved_input_example_info {
            Some(info) => {
                let path = format!("{folder}/{}", info.artifact_path.trim_matches('/'));
                let bytes = read_small(area, &path).await?.ok_or_else(|| {
                    MlflowError::invalid(format!(
                        "the input example {} named by MLmodel is missing",
                        info.artifact_path
                    ))
                })?;
                let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    MlflowError::invalid(format!(
                        "the input example {} is not JSON: {e}",
                        info.artifact_path
                    ))
                })?;
                Some(Example::read(&info.kind, &value)?)
            }
            None => None,
        };
        self.describe_with(example.as_ref(), onnx)
    }

    fn describe_with(
        &self,
        example: Option<&Example>,
        onnx: &ModelSignature,
    ) -> Result<Described, MlflowError> {
        let inputs = self.signature_inputs()?;
        let columns = match &inputs {
            Some(inputs) if inputs.iter().all(|i| i.kind == "tensor") => {
                for (i, input) in inputs.iter().enumerate() {
                    check_tensor_input(i, input, inputs.len(), onnx)?;
                }
                None
            }
            Some(inputs) => Some(columns_of(inputs)?),
            None => match example {
                Some(Example::Table { columns, .. }) => Some(
                    columns
                        .iter()
                        .map(|name| feature(name.clone(), None))
                        .collect(),
                ),
                _ => None,
            },
        };
        if let Some(example) = example {
            example.check(columns.as_deref(), onnx)?;
        }
        let feature_schema = match columns {
            Some(features) => schema_for(features, onnx)?,
            None => None,
        };
        Ok(Described { feature_schema })
    }

    fn signature_inputs(&self) -> Result<Option<Vec<SignatureInput>>, MlflowError> {
        let Some(text) = self.signature.as_ref().and_then(|s| s.inputs.as_deref()) else {
            return Ok(None);
        };
        serde_json::from_str(text).map(Some).map_err(|e| {
            MlflowError::invalid(format!("the MLmodel signature's inputs are not valid: {e}"))
        })
    }
}

/// Reads a small file of the proxy's area whole, refusing one larger than
/// [`MAX_DESCRIPTION_BYTES`].
async fn read_small(area: &NamedFiles, name: &str) -> Result<Option<Bytes>, MlflowError> {
    let Some(mut stream) = area.open(name).await? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        if bytes.len() + chunk.len() > MAX_DESCRIPTION_BYTES {
            return Err(MlflowError::invalid(format!(
                "{name} is larger than {MAX_DESCRIPTION_BYTES} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(bytes)))
}

fn feature(name: String, datatype: Option<DataType>) -> FeatureSpec {
    FeatureSpec {
        name,
        datatype,
        min: None,
        max: None,
        default: None,
    }
}

/// The features of a column signature, typed where MLflow's column type
/// has a tensor type.
fn columns_of(inputs: &[SignatureInput]) -> Result<Vec<FeatureSpec>, MlflowError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let name = input.name.clone().ok_or_else(|| {
                MlflowError::invalid(format!(
                    "the MLmodel signature's input {i} is a column without a name"
                ))
            })?;
            if input.kind == "tensor" {
                return Err(MlflowError::invalid(
                    "the MLmodel signature mixes tensors and columns",
                ));
            }
            Ok(feature(name, column_type(&input.kind)))
        })
        .collect()
}

/// The tensor type of an MLflow column type (`None` for the types with none).
fn column_type(kind: &str) -> Option<DataType> {
    Some(match kind {
        "boolean" => DataType::Bool,
        "integer" => DataType::Int32,
        "long" => DataType::Int64,
        "float" => DataType::Fp32,
        "double" => DataType::Fp64,
        "string" | "binary" => DataType::Bytes,
        _ => return None,
    })
}

/// The tensor type of a numpy dtype name.
fn numpy_type(dtype: &str) -> Option<DataType> {
    Some(match dtype {
        "bool" => DataType::Bool,
        "uint8" => DataType::Uint8,
        "uint16" => DataType::Uint16,
        "uint32" => DataType::Uint32,
        "uint64" => DataType::Uint64,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "float16" => DataType::Fp16,
        "float32" => DataType::Fp32,
        "float64" => DataType::Fp64,
        "str" | "object" | "bytes" => DataType::Bytes,
        _ => return None,
    })
}

/// Checks the `i`th of `count` tensor inputs of an MLflow signature
/// against the ONNX input of its name (or the only one).
fn check_tensor_input(
    i: usize,
    input: &SignatureInput,
    count: usize,
    onnx: &ModelSignature,
) -> Result<(), MlflowError> {
    let spec = input.tensor_spec.as_ref().ok_or_else(|| {
        MlflowError::invalid(format!(
            "the MLmodel signature's tensor input {i} has no tensor-spec"
        ))
    })?;
    let matching = match (&input.name, onnx.inputs.as_slice()) {
        (Some(name), inputs) => inputs.iter().find(|t| &t.name == name),
        (None, [only]) if count == 1 => Some(only),
        (None, _) => None,
    };
    let label = input
        .name
        .as_deref()
        .map_or_else(|| format!("input {i}"), |n| format!("input '{n}'"));
    let onnx_input = matching.ok_or_else(|| {
        MlflowError::invalid(format!(
            "the MLmodel signature's {label} is not an input of the ONNX model (it has {})",
            input_names(onnx)
        ))
    })?;
    if numpy_type(&spec.dtype) != Some(onnx_input.datatype) {
        return Err(MlflowError::invalid(format!(
            "the MLmodel signature's {label} is {} but the ONNX model's '{}' is {}",
            spec.dtype, onnx_input.name, onnx_input.datatype
        )));
    }
    let fits = spec.shape.len() == onnx_input.shape.len()
        && spec
            .shape
            .iter()
            .zip(&onnx_input.shape)
            .all(|(&declared, &dim)| match (Dim::from_i64(declared), dim) {
                (Dim::Fixed(a), Dim::Fixed(b)) => a == b,
                _ => true,
            });
    if !fits {
        return Err(MlflowError::invalid(format!(
            "the MLmodel signature's {label} has shape {:?} but the ONNX model's '{}' has {}",
            spec.shape,
            onnx_input.name,
            format_shape(&onnx_input.shape)
        )));
    }
    Ok(())
}

fn input_names(onnx: &ModelSignature) -> String {
    let names: Vec<&str> = onnx.inputs.iter().map(|t| t.name.as_str()).collect();
    format!("{names:?}")
}

/// The single `[rows, columns]` input of a tabular ONNX model.
fn table_input(onnx: &ModelSignature) -> Option<(&TensorSpec, Dim)> {
    match onnx.inputs.as_slice() {
        [input] => match input.shape.as_slice() {
            [_, columns] => Some((input, *columns)),
            _ => None,
        },
        _ => None,
    }
}

/// The feature schema that `features` make for `onnx`: they name the
/// columns of its one `[rows, columns]` input, or, one per input, its
/// inputs themselves (then no schema is needed).
fn schema_for(
    features: Vec<FeatureSpec>,
    onnx: &ModelSignature,
) -> Result<Option<FeatureSchema>, MlflowError> {
    let names_the_inputs = features.len() == onnx.inputs.len()
        && features
            .iter()
            .all(|f| onnx.inputs.iter().any(|t| t.name == f.name));
    if names_the_inputs {
        return Ok(None);
    }
    let Some((input, columns)) = table_input(onnx) else {
        return Err(MlflowError::invalid(format!(
            "the MLmodel signature names {} columns, but the ONNX model has no single \
             [rows, columns] input to give them to, and its inputs are {}",
            features.len(),
            input_names(onnx)
        )));
    };
    if !Dim::accepts(columns, features.len()) {
        return Err(MlflowError::invalid(format!(
            "the MLmodel signature names {} columns but the ONNX model's input '{}' has {}",
            features.len(),
            input.name,
            format_shape(&input.shape)
        )));
    }
    let schema = FeatureSchema {
        features,
        classes: None,
    };
    schema
        .check()
        .map_err(|e| MlflowError::invalid(format!("the MLmodel signature: {}", e.message)))?;
    Ok(Some(schema))
}

/// An input example, as far as it is checked.
#[derive(Debug)]
enum Example {
    /// A DataFrame: its columns and the width of each row.
    Table {
        columns: Vec<String>,
        widths: Vec<usize>,
    },
    /// Tensors by name (`{"inputs": {"x": ...}}`).
    Named(Vec<String>),
    /// One unnamed tensor (`{"inputs": [[...]]}`) and its row widths.
    Rows(Vec<usize>),
    /// A form not checked (a scalar, a list of strings...).
    Other,
}

impl Example {
    /// Reads an input example written as MLflow writes `kind` (`dataframe`
    /// in the split or records orient, `ndarray` in the tf-serving form).
    fn read(kind: &str, value: &Value) -> Result<Example, MlflowError> {
        let bad = |what: &str| MlflowError::invalid(format!("the input example {what}"));
        match (kind, value) {
            ("dataframe", Value::Object(split)) => {
                let columns = split
                    .get("columns")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("(a DataFrame) has no columns list"))?
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| c.to_string())
                    })
                    .collect();
                let widths = split
                    .get("data")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("(a DataFrame) has no data rows"))?
                    .iter()
                    .map(|row| row.as_array().map_or(1, Vec::len))
                    .collect();
                Ok(Example::Table { columns, widths })
            }
            ("dataframe", Value::Array(records)) => {
                let mut columns: Vec<String> = Vec::new();
                for record in records {
                    let record = record
                        .as_object()
                        .ok_or_else(|| bad("(DataFrame records) holds a row that is no object"))?;
                    for key in record.keys() {
                        if !columns.contains(key) {
                            columns.push(key.clone());
                        }
                    }
                }
                let widths = vec![columns.len(); records.len()];
                Ok(Example::Table { columns, widths })
            }
            (_, Value::Object(body)) => {
                match body.get("inputs").or_else(|| body.get("instances")) {
                    Some(Value::Object(named)) => {
                        Ok(Example::Named(named.keys().cloned().collect()))
                    }
                    Some(Value::Array(rows)) => Ok(Example::Rows(
                        rows.iter()
                            .map(|row| row.as_array().map_or(1, Vec::len))
                            .collect(),
                    )),
                    _ => Ok(Example::Other),
                }
            }
            _ => Ok(Example::Other),
        }
    }

    /// Checks the example against the signature's `columns` (when it has
    /// some) and the ONNX model's inputs.
    fn check(
        &self,
        columns: Option<&[FeatureSpec]>,
        onnx: &ModelSignature,
    ) -> Result<(), MlflowError> {
        match self {
            Example::Table {
                columns: names,
                widths,
            } => {
                if let Some(declared) = columns {
                    let missing: Vec<&str> = declared
                        .iter()
                        .map(|f| f.name.as_str())
                        .filter(|n| !names.iter().any(|c| c == n))
                        .collect();
                    if !missing.is_empty() {
                        return Err(MlflowError::invalid(format!(
                            "the input example lacks the signature's columns {missing:?}"
                        )));
                    }
                }
                check_widths(widths, names.len())
            }
            Example::Named(names) => match names.iter().find(|n| !onnx.inputs.iter().any(|t| &&t.name == n)) {
                Some(unknown) => Err(MlflowError::invalid(format!(
                    "the input example's tensor '{unknown}' is not an input of the ONNX model (it has {})",
                    input_names(onnx)
                ))),
                None => Ok(()),
            },
            Example::Rows(widths) => match table_input(onnx) {
                Some((_, Dim::Fixed(columns))) => check_widths(widths, columns),
                _ => Ok(()),
            },
            Example::Other => Ok(()),
        }
    }
}

/// Every row of an example must have `columns` values.
fn check_widths(widths: &[usize], columns: usize) -> Result<(), MlflowError> {
    match widths.iter().position(|&w| w != columns) {
        Some(row) => Err(MlflowError::invalid(format!(
            "row {row} of the input example has {} values but the model takes {columns}",
            widths[row]
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn onnx(inputs: Vec<TensorSpec>) -> ModelSignature {
        ModelSignature {
            inputs,
            outputs: Vec::new(),
        }
    }

    fn iris() -> ModelSignature {
        onnx(vec![TensorSpec::new(
            "X",
            DataType::Fp32,
            vec![Dim::Dynamic, Dim::Fixed(4)],
        )])
    }

    fn mlmodel(signature_inputs: Option<Value>) -> MlModel {
        let mut text = "flavors:\n  onnx:\n    data: model.onnx\nrun_id: r1\n".to_owned();
        if let Some(inputs) = signature_inputs {
            text.push_str(&format!(
                "signature:\n  inputs: '{}'\n  outputs: '[]'\n",
                inputs.to_string().replace('\'', "''")
            ));
        }
        MlModel::parse(text.as_bytes()).expect("a valid MLmodel")
    }

    fn columns(names: &[&str], kind: &str) -> Value {
        Value::Array(
            names
                .iter()
                .map(|n| json!({"type": kind, "name": n, "required": true}))
                .collect(),
        )
    }

    #[test]
    fn a_column_signature_names_the_features_of_a_tabular_model() {
        let model = mlmodel(Some(columns(&["a", "b", "c", "d"], "double")));
        assert_eq!(model.onnx_file(), Some("model.onnx"));
        let described = model.describe_with(None, &iris()).expect("fits");
        let schema = described.feature_schema.expect("a schema");
        let names: Vec<&str> = schema.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(schema.features[0].datatype, Some(DataType::Fp64));
    }

    #[test]
    fn a_column_signature_of_another_width_is_refused_saying_both() {
        let model = mlmodel(Some(columns(&["a", "b", "c"], "double")));
        let err = model.describe_with(None, &iris()).unwrap_err();
        assert!(err.message.contains("names 3 columns"), "{}", err.message);
        assert!(err.message.contains("'X' has [-1, 4]"), "{}", err.message);
    }

    #[test]
    fn columns_that_name_the_inputs_need_no_schema() {
        let two = onnx(vec![
            TensorSpec::new("age", DataType::Fp32, vec![Dim::Dynamic, Dim::Fixed(1)]),
            TensorSpec::new("city", DataType::Bytes, vec![Dim::Dynamic, Dim::Fixed(1)]),
        ]);
        let model = mlmodel(Some(columns(&["city", "age"], "double")));
        assert_eq!(
            model.describe_with(None, &two).expect("fits"),
            Described::default()
        );
        let model = mlmodel(Some(columns(&["city", "height"], "double")));
        let err = model.describe_with(None, &two).unwrap_err();
        assert!(
            err.message.contains("[\"age\", \"city\"]"),
            "{}",
            err.message
        );
    }

    #[test]
    fn tensor_signatures_must_agree_with_the_onnx_inputs() {
        let spec = |dtype: &str, shape: Value| json!([{"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}]);
        let fits = mlmodel(Some(spec("float32", json!([-1, 4]))));
        assert_eq!(
            fits.describe_with(None, &iris()).expect("fits"),
            Described::default()
        );
        let err = mlmodel(Some(spec("float64", json!([-1, 4]))))
            .describe_with(None, &iris())
            .unwrap_err();
        assert!(
            err.message
                .contains("is float64 but the ONNX model's 'X' is FP32"),
            "{}",
            err.message
        );
        let err = mlmodel(Some(spec("float32", json!([-1, 5]))))
            .describe_with(None, &iris())
            .unwrap_err();
        assert!(err.message.contains("shape [-1, 5]"), "{}", err.message);
        let named = json!([{"type": "tensor", "name": "Y",
                             "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]);
        let err = mlmodel(Some(named))
            .describe_with(None, &iris())
            .unwrap_err();
        assert!(
            err.message.contains("input 'Y' is not an input"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_dataframe_example_names_the_features_when_there_is_no_signature() {
        let model = mlmodel(None);
        let split = json!({"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4], [5, 6, 7, 8]]});
        let example = Example::read("dataframe", &split).expect("an example");
        let schema = model
            .describe_with(Some(&example), &iris())
            .expect("fits")
            .feature_schema
            .expect("a schema");
        assert_eq!(schema.features.len(), 4);
        assert_eq!(schema.features[3].name, "d");
        assert_eq!(schema.features[3].datatype, None);

        let ragged = json!({"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4], [5, 6]]});
        let example = Example::read("dataframe", &ragged).expect("an example");
        let err = model.describe_with(Some(&example), &iris()).unwrap_err();
        assert!(
            err.message
                .contains("row 1 of the input example has 2 values"),
            "{}",
            err.message
        );

        let records = json!([{"a": 1, "b": 2, "c": 3}]);
        let example = Example::read("dataframe", &records).expect("an example");
        let err = model.describe_with(Some(&example), &iris()).unwrap_err();
        assert!(err.message.contains("names 3 columns"), "{}", err.message);
    }

    #[test]
    fn an_example_must_fit_the_signature_and_the_inputs() {
        let model = mlmodel(Some(columns(&["a", "b", "c", "d"], "double")));
        let other = json!({"columns": ["a", "b", "c", "e"], "data": [[1, 2, 3, 4]]});
        let example = Example::read("dataframe", &other).expect("an example");
        let err = model.describe_with(Some(&example), &iris()).unwrap_err();
        assert!(
            err.message
                .contains("lacks the signature's columns [\"d\"]"),
            "{}",
            err.message
        );

        let plain = mlmodel(None);
        let rows = Example::read("ndarray", &json!({"inputs": [[1, 2, 3]]})).expect("rows");
        let err = plain.describe_with(Some(&rows), &iris()).unwrap_err();
        assert!(err.message.contains("takes 4"), "{}", err.message);
        let named = Example::read("ndarray", &json!({"inputs": {"Z": [[1]]}})).expect("named");
        let err = plain.describe_with(Some(&named), &iris()).unwrap_err();
        assert!(err.message.contains("tensor 'Z'"), "{}", err.message);
        let good = Example::read("ndarray", &json!({"inputs": [[1, 2, 3, 4]]})).expect("rows");
        assert_eq!(
            plain.describe_with(Some(&good), &iris()).expect("fits"),
            Described::default()
        );
    }

    #[test]
    fn broken_mlmodel_text_is_refused_with_the_reason() {
        let err = MlModel::parse(b"flavors: [").err().expect("refused");
        assert!(
            err.message.contains("MLmodel file is not valid"),
            "{}",
            err.message
        );
        let model = MlModel::parse(b"flavors: {}\nsignature:\n  inputs: 'nope'\n").expect("yaml");
        let err = model.describe_with(None, &iris()).unwrap_err();
        assert!(
            err.message.contains("signature's inputs are not valid"),
            "{}",
            err.message
        );
    }
}
