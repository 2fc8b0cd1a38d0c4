//! What a request gets while its version's breaker is open: the model's
//! fallbacks, tried in order — a cached result for the same input, another
//! version of the model, a static default — and 503 when none answers.

use std::sync::Arc;

use ferroserve_core::half::{bf16, f16};
use ferroserve_core::{DataType, Dim, InferError, ModelSignature, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One fallback of a model (`"fallback": [...]` in its serving config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fallback {
    /// A cached answer for the same input, if the result cache has one:
    /// `{"kind": "cache"}`.
    Cache,
    /// Another loaded version of the model: `{"kind": "version", "version":
    /// "previous"}` (the newest loaded version below the failing one) or a
    /// label such as `"3"`. The version must be loaded (see `version_policy`).
    Version {
        /// `previous` or a version label.
        version: String,
    },
    /// A fixed answer, one row per output, repeated for every row of the
    /// request: `{"kind": "static", "outputs": {"label": [0]}}`.
    Static {
        /// Output name → the value of one row.
        outputs: Map<String, Value>,
    },
}

impl Fallback {
    /// Checks what can be checked without the model.
    pub fn validate(list: &[Fallback]) -> Result<(), InferError> {
        for (i, fallback) in list.iter().enumerate() {
            match fallback {
                Fallback::Version { version } if version.trim().is_empty() => {
                    return Err(InferError::invalid(format!(
                        "fallback[{i}]: version must be \"previous\" or a version label"
                    )));
                }
                Fallback::Static { outputs } if outputs.is_empty() => {
                    return Err(InferError::invalid(format!(
                        "fallback[{i}]: static outputs must name at least one output"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A fallback ready to use on one loaded version.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadyFallback {
    /// Look the input up in the result cache.
    Cache,
    /// Run on another version (`previous` or a label).
    Version(String),
    /// Answer with these one-row outputs.
    Static(Arc<Vec<Tensor>>),
}

impl ReadyFallback {
    /// Prepares `fallbacks` for a version with `signature`; a static output
    /// that the model does not have or whose value does not fit is an error
    /// naming it.
    pub fn prepare(
        fallbacks: &[Fallback],
        signature: &ModelSignature,
    ) -> Result<Vec<ReadyFallback>, InferError> {
        fallbacks
            .iter()
            .map(|fallback| {
                Ok(match fallback {
                    Fallback::Cache => ReadyFallback::Cache,
                    Fallback::Version { version } => ReadyFallback::Version(version.clone()),
                    Fallback::Static { outputs } => {
                        ReadyFallback::Static(Arc::new(static_rows(outputs, signature)?))
                    }
                })
            })
            .collect()
    }
}

/// The static outputs repeated for `rows` rows, in the order asked for
/// (`wanted` empty: every static output); `None` when an asked output has
/// no static value or the repetition would not fit in memory. `rows` is
/// the row count of a request already checked against the model's
/// signature and batch queue.
pub fn repeat_rows(one_row: &[Tensor], rows: usize, wanted: &[&str]) -> Option<Vec<Tensor>> {
    let pick: Vec<&Tensor> = if wanted.is_empty() {
        one_row.iter().collect()
    } else {
        wanted
            .iter()
            .map(|name| one_row.iter().find(|t| t.name == *name))
            .collect::<Option<_>>()?
    };
    pick.into_iter()
        .map(|tensor| tensor.repeat_rows(rows.max(1)).ok())
        .collect()
}

/// Builds one-row tensors (`[1, ...row shape]`) from the configured values.
fn static_rows(
    outputs: &Map<String, Value>,
    signature: &ModelSignature,
) -> Result<Vec<Tensor>, InferError> {
    outputs
        .iter()
        .map(|(name, value)| {
            let spec = signature
                .outputs
                .iter()
                .find(|o| o.name == *name)
                .ok_or_else(|| {
                    let known: Vec<&str> =
                        signature.outputs.iter().map(|o| o.name.as_str()).collect();
                    InferError::invalid(format!(
                        "static fallback names output '{name}', which the model does not have; its outputs are {known:?}"
                    ))
                })?;
            let invalid = |why: String| {
                InferError::invalid(format!("static fallback output '{name}': {why}"))
            };
            let mut flat = Vec::new();
            flatten(value, &mut flat);
            let row_shape = row_shape(&spec.shape[1.min(spec.shape.len())..], value, flat.len())
                .map_err(invalid)?;
            let data = to_data(spec.datatype, &flat).map_err(invalid)?;
            let mut shape = vec![1];
            shape.extend(row_shape);
            Tensor::new(name.clone(), shape, data).map_err(|e| invalid(e.message))
        })
        .collect()
}

fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other),
    }
}

/// The shape of one row: the declared dimensions, with dynamic ones taken
/// from the value's nesting.
fn row_shape(declared: &[Dim], value: &Value, count: usize) -> Result<Vec<usize>, String> {
    let nested = ferroserve_core::json::nested_shape(value);
    let shape: Vec<usize> = if declared.iter().all(|d| matches!(d, Dim::Fixed(_))) {
        declared
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Dynamic => 1,
            })
            .collect()
    } else if nested.len() == declared.len() {
        nested
    } else {
        return Err(format!(
            "a row has {} dimensions, but the value is nested {} deep",
            declared.len(),
            nested.len()
        ));
    };
    let expected = ferroserve_core::tensor::element_count(&shape);
    if expected != Some(count) {
        let expected = expected.map_or_else(|| "too many".to_string(), |n| n.to_string());
        return Err(format!(
            "a row of shape {shape:?} holds {expected} values, but {count} were given"
        ));
    }
    Ok(shape)
}

fn to_data(datatype: DataType, values: &[&Value]) -> Result<TensorData, String> {
    fn each<T>(
        values: &[&Value],
        what: &str,
        convert: impl Fn(&Value) -> Option<T>,
    ) -> Result<Vec<T>, String> {
        values
            .iter()
            .map(|v| convert(v).ok_or_else(|| format!("{v} is not a valid {what}")))
            .collect()
    }
    fn int<T: TryFrom<i64>>(v: &Value) -> Option<T> {
        v.as_i64().and_then(|n| T::try_from(n).ok())
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(each(values, "BOOL", Value::as_bool)?),
        DataType::Uint8 => TensorData::Uint8(each(values, "UINT8", int)?),
        DataType::Uint16 => TensorData::Uint16(each(values, "UINT16", int)?),
        DataType::Uint32 => TensorData::Uint32(each(values, "UINT32", int)?),
        DataType::Uint64 => TensorData::Uint64(each(values, "UINT64", Value::as_u64)?),
        DataType::Int8 => TensorData::Int8(each(values, "INT8", int)?),
        DataType::Int16 => TensorData::Int16(each(values, "INT16", int)?),
        DataType::Int32 => TensorData::Int32(each(values, "INT32", int)?),
        DataType::Int64 => TensorData::Int64(each(values, "INT64", Value::as_i64)?),
        DataType::Fp16 => TensorData::Fp16(each(values, "FP16", |v| {
            v.as_f64().map(f16::from_f64).filter(|h| h.is_finite())
        })?),
        DataType::Bf16 => TensorData::Bf16(each(values, "BF16", |v| {
            v.as_f64().map(bf16::from_f64).filter(|h| h.is_finite())
        })?),
        DataType::Fp32 => TensorData::Fp32(each(values, "FP32", |v| v.as_f64().map(|f| f as f32))?),
        DataType::Fp64 => TensorData::Fp64(each(values, "FP64", Value::as_f64)?),
        DataType::Bytes => TensorData::Bytes(each(values, "BYTES string", |v| {
            v.as_str().map(|s| s.as_bytes().to_vec())
        })?),
    })
}

#[cfg(test)]
mod tests {
    use ferroserve_core::TensorSpec;
    use serde_json::json;

    use super::*;

    fn signature() -> ModelSignature {
        ModelSignature {
            inputs: vec![TensorSpec::new(
                "x",
                DataType::Fp32,
                vec![Dim::Dynamic, Dim::Fixed(4)],
            )],
            outputs: vec![
                TensorSpec::new("label", DataType::Int64, vec![Dim::Dynamic]),
                TensorSpec::new(
                    "probabilities",
                    DataType::Fp32,
                    vec![Dim::Dynamic, Dim::Fixed(3)],
                ),
            ],
        }
    }

    fn parse(value: Value) -> Vec<Fallback> {
        serde_json::from_value(value).expect("parses")
    }

    #[test]
    fn static_rows_follow_the_signature_and_repeat_per_row() {
        let list = parse(json!([
            {"kind": "cache"},
            {"kind": "version", "version": "previous"},
            {"kind": "static", "outputs": {"label": 0, "probabilities": [0.4, 0.3, 0.3]}}
        ]));
        Fallback::validate(&list).expect("valid");
        let ready = ReadyFallback::prepare(&list, &signature()).expect("fits the model");
        assert_eq!(ready[0], ReadyFallback::Cache);
        assert_eq!(ready[1], ReadyFallback::Version("previous".into()));
        let ReadyFallback::Static(rows) = &ready[2] else {
            panic!("static expected")
        };
        let three = repeat_rows(rows, 3, &[]).expect("all outputs");
        assert_eq!(three[0].shape, vec![3]);
        assert_eq!(three[0].data, TensorData::Int64(vec![0, 0, 0]));
        assert_eq!(three[1].shape, vec![3, 3]);
        let only = repeat_rows(rows, 1, &["probabilities"]).expect("present");
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].name, "probabilities");
        assert!(repeat_rows(rows, 1, &["nope"]).is_none());
        assert!(
            repeat_rows(rows, usize::MAX, &[]).is_none(),
            "an overflowing repetition is refused, not allocated"
        );
    }

    #[test]
    fn misfit_static_values_are_named() {
        let message = |value: Value| {
            ReadyFallback::prepare(&parse(value), &signature())
                .unwrap_err()
                .message
        };
        let unknown = message(json!([{"kind": "static", "outputs": {"score": 1}}]));
        assert!(
            unknown.contains("'score'") && unknown.contains("label"),
            "{unknown}"
        );
        let short = message(json!([{"kind": "static", "outputs": {"probabilities": [1.0]}}]));
        assert!(short.contains("holds 3 values, but 1"), "{short}");
        let typed = message(json!([{"kind": "static", "outputs": {"label": "setosa"}}]));
        assert!(typed.contains("not a valid INT64"), "{typed}");
        let empty = Fallback::validate(&parse(json!([{"kind": "version", "version": " "}])));
        assert!(empty.is_err());
        let unknown_kind: Result<Vec<Fallback>, _> =
            serde_json::from_value(json!([{"kind": "magic"}]));
        assert!(unknown_kind.is_err());
    }
}
