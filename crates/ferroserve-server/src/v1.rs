//! KServe v1 / TF-Serving style prediction: `POST /v1/models/{m}:predict`
//! with `{"instances": [...]}` (rows as arrays, or objects keyed by feature
//! or input name), answered with `{"predictions": [...]}`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_core::json::nested_shape;
use ferroserve_core::{
    DataType, FeatureSchema, InferError, InferRequest, InferResponse, ModelSignature, Tensor,
    TensorSpec,
};
use ferroserve_serving::{Decoded, ServedVersion};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::inference::{handle, InferInput, Protocol};
use crate::state::SharedState;
use ferroserve_kserve::elements::{check_declared_count, decode_json};
use ferroserve_kserve::response::DataJson;

/// `GET /v1/models/{m}`: model status.
pub(crate) async fn status(
    State(state): State<SharedState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    let served = state.pipeline.find(&model, None).await?;
    Ok(
        Json(json!({ "name": served.name(), "version": served.version(), "ready": true }))
            .into_response(),
    )
}

/// `POST /v1/models/{m}:predict`.
pub(crate) async fn predict(
    State(state): State<SharedState>,
    Path(target): Path<String>,
    input: InferInput,
) -> Response {
    let Some(model) = target.strip_suffix(":predict") else {
        return ApiError(InferError::not_found(format!(
            "unknown v1 route '{target}'; use /v1/models/<name>:predict"
        )))
        .into_response();
    };
    handle(&state, KserveV1, model, None, &input).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    instances: Vec<Value>,
}

struct KserveV1;

impl Protocol for KserveV1 {
    const LABEL: &'static str = "v1";
    type Context = ();

    fn decode(&self, served: &ServedVersion, body: &[u8]) -> Result<Decoded<()>, InferError> {
        let parsed: PredictBody = serde_json::from_slice(body).map_err(|e| {
            InferError::invalid(format!(
                "invalid predict request (expected {{\"instances\": [...]}}): {e}"
            ))
        })?;
        if parsed.instances.is_empty() {
            return Err(InferError::invalid("'instances' is empty"));
        }
        let model = ModelView {
            name: served.name(),
            signature: served.signature(),
            schema: served.schema(),
        };
        let inputs = instances_to_inputs(&model, &parsed.instances)?;
        Ok(Decoded::new(
            InferRequest {
                inputs,
                ..InferRequest::default()
            },
            (),
        ))
    }

    fn encode(
        &self,
        served: &ServedVersion,
        _: (),
        response: InferResponse,
    ) -> Result<Response, InferError> {
        let predictions = predictions(served, &response)?;
        Ok(
            Json(json!({ "predictions": predictions, "model_version": response.model_version }))
                .into_response(),
        )
    }
}

/// What decoding instances needs to know of the served version.
struct ModelView<'a> {
    name: &'a str,
    signature: &'a ModelSignature,
    schema: Option<&'a FeatureSchema>,
}

/// Turns instances into one tensor per model input: one row per instance.
fn instances_to_inputs(
    model: &ModelView<'_>,
    instances: &[Value],
) -> Result<Vec<Tensor>, InferError> {
    let inputs = &model.signature.inputs;
    if inputs.is_empty() {
        return Err(InferError::invalid(format!(
            "model '{}' has no inputs, so it cannot be fed v1 instances",
            model.name
        )));
    }
    let mut columns: Vec<Vec<&Value>> = vec![Vec::with_capacity(instances.len()); inputs.len()];
    let mut converted: Vec<Value> = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        match instance {
            Value::Object(object) if inputs.len() > 1 || object.contains_key(&inputs[0].name) => {
                for (slot, spec) in columns.iter_mut().zip(inputs) {
                    slot.push(object.get(&spec.name).ok_or_else(|| {
                        InferError::invalid(format!("instance {i}: missing input '{}'", spec.name))
                    })?);
                }
                if let Some(extra) = object.keys().find(|k| !inputs.iter().any(|s| &s.name == *k)) {
                    return Err(InferError::invalid(format!("instance {i}: unknown input '{extra}'")));
                }
            }
            Value::Object(object) => {
                let schema = model.schema.ok_or_else(|| {
                    InferError::invalid(format!(
                        "instance {i}: model '{}' has no feature schema, so instances must be arrays or objects keyed by input name ('{}')",
                        model.name,
                        inputs[0].name
                    ))
                })?;
                let row = schema.row_from_object(i, object)?;
                converted.push(Value::from(row));
            }
            _ if inputs.len() > 1 => {
                return Err(InferError::invalid(format!(
                    "instance {i}: the model has {} inputs, so each instance must be an object keyed by input name",
                    inputs.len()
                )))
            }
            other => columns[0].push(other),
        }
    }
    if !converted.is_empty() {
        if !columns[0].is_empty() {
            return Err(InferError::invalid("instances mix objects and arrays"));
        }
        columns[0] = converted.iter().collect();
    }
    columns
        .iter()
        .zip(inputs)
        .map(|(rows, spec)| rows_to_tensor(spec, rows))
        .collect()
}

fn rows_to_tensor(spec: &TensorSpec, rows: &[&Value]) -> Result<Tensor, InferError> {
    let first = rows
        .first()
        .ok_or_else(|| InferError::invalid(format!("input '{}': no instances", spec.name)))?;
    let row_shape = nested_shape(first);
    for (i, row) in rows.iter().enumerate().skip(1) {
        let shape = nested_shape(row);
        if shape != row_shape {
            return Err(InferError::invalid(format!(
                "input '{}': instance {i} has shape {shape:?} but instance 0 has {row_shape:?}",
                spec.name
            )));
        }
    }
    let mut shape = Vec::with_capacity(row_shape.len() + 1);
    shape.push(rows.len());
    shape.extend_from_slice(&row_shape);
    let count = ferroserve_core::tensor::element_count(&shape).ok_or_else(|| {
        InferError::invalid(format!(
            "input '{}': instances of shape {shape:?} hold too many values",
            spec.name
        ))
    })?;
    let text = serde_json::to_string(rows).map_err(|e| InferError::internal(e.to_string()))?;
    check_declared_count(&spec.name, &shape, count, text.len())?;
    let datatype = if spec.datatype == DataType::Bytes {
        DataType::Bytes
    } else {
        spec.datatype
    };
    let data = decode_json(&spec.name, datatype, &text, count)?;
    Tensor::new(spec.name.clone(), shape, data)
}

/// One prediction per row: the single output's row, or an object keyed by
/// output name; classifiers with class names also get `"class"`.
fn predictions(served: &ServedVersion, response: &InferResponse) -> Result<Vec<Value>, InferError> {
    let rows = response.outputs.first().map_or(0, Tensor::rows);
    let classes = served.schema().and_then(|s| s.classes.as_ref());
    (0..rows)
        .map(|i| {
            if response.outputs.len() == 1 {
                return row_value(&response.outputs[0], i);
            }
            let mut object = Map::new();
            for output in &response.outputs {
                let value = row_value(output, i)?;
                if let (Some(classes), true) = (classes, is_label_output(output)) {
                    if let Some(name) = value.as_u64().and_then(|c| classes.get(c as usize)) {
                        object.insert("class".to_string(), Value::from(name.as_str()));
                    }
                }
                object.insert(output.name.clone(), value);
            }
            Ok(Value::Object(object))
        })
        .collect()
}

fn is_label_output(output: &Tensor) -> bool {
    output.datatype() == DataType::Int64 && output.shape.len() == 1 && output.name.contains("label")
}

/// Row `i` of `tensor` as JSON: a scalar for rank-1 tensors, else nested arrays.
fn row_value(tensor: &Tensor, i: usize) -> Result<Value, InferError> {
    let row = tensor.slice_rows(i, i + 1)?;
    // Through text, so FP32 values keep their shortest form (0.1, not 0.10000000149011612).
    let text = serde_json::to_string(&DataJson(&row.data))
        .map_err(|e| InferError::internal(e.to_string()))?;
    let flat: Value =
        serde_json::from_str(&text).map_err(|e| InferError::internal(e.to_string()))?;
    let Value::Array(items) = flat else {
        return Err(InferError::internal(
            "tensor data did not serialize as an array",
        ));
    };
    Ok(nest(items, &tensor.shape[1..]))
}

fn nest(mut items: Vec<Value>, dims: &[usize]) -> Value {
    match dims {
        [] => items.pop().unwrap_or(Value::Null),
        [_] => Value::Array(items),
        [_, rest @ ..] => {
            let inner = ferroserve_core::tensor::element_count(rest)
                .unwrap_or(usize::MAX)
                .max(1);
            let mut out = Vec::new();
            while !items.is_empty() {
                let tail = items.split_off(inner.min(items.len()));
                out.push(nest(std::mem::replace(&mut items, tail), rest));
            }
            Value::Array(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nest_rebuilds_rows() {
        let items: Vec<Value> = (0..6).map(Value::from).collect();
        assert_eq!(nest(items.clone(), &[2, 3]), json!([[0, 1, 2], [3, 4, 5]]));
        assert_eq!(nest(items, &[6]), json!([0, 1, 2, 3, 4, 5]));
        assert_eq!(nest(vec![json!(7)], &[]), json!(7));
    }

    #[test]
    fn a_model_without_inputs_is_refused_not_indexed() {
        let signature = ModelSignature::default();
        let model = ModelView {
            name: "empty",
            signature: &signature,
            schema: None,
        };
        for instance in [json!(1), json!({"x": 1}), json!([1, 2])] {
            let err = instances_to_inputs(&model, &[instance]).unwrap_err();
            assert_eq!(
                err.message,
                "model 'empty' has no inputs, so it cannot be fed v1 instances"
            );
        }
    }
}

/// The `instances` decoder on arbitrary bodies: it never panics, and a
/// refusal says where the fault is (the position in the JSON, the
/// instance, or the input and element).
#[cfg(test)]
mod decoding_arbitrary_bodies {
    use std::path::PathBuf;
    use std::sync::{Arc, OnceLock};

    use ferroserve_backend::{EngineChoice, Engines};
    use ferroserve_batcher::BatcherConfig;
    use ferroserve_serving::repository::{single_file, ServingDefaults};
    use ferroserve_serving::ModelManager;
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Served versions, loaded once: iris (one FP32 input and a feature
    /// schema), scale_f64 (one FP64 input, no schema), add_int64 (two
    /// INT64 inputs) and string_label (one BYTES input).
    fn models() -> &'static [Arc<ServedVersion>] {
        static MODELS: OnceLock<(tokio::runtime::Runtime, Vec<Arc<ServedVersion>>)> =
            OnceLock::new();
        let (_runtime, served) = MODELS.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            let manager = ModelManager::new(Arc::new(Engines::discover(None)));
            let models = [
                ("iris", root.join("examples/iris/model.onnx")),
                ("scale", root.join("testdata/models/scale_f64.onnx")),
                ("add", root.join("testdata/models/add_int64.onnx")),
                ("text", root.join("testdata/models/string_label.onnx")),
            ];
            let served = models
                .into_iter()
                .map(|(name, path)| {
                    let defaults = ServingDefaults {
                        engine: EngineChoice::Auto,
                        intra_op_threads: 1,
                        batching: BatcherConfig::default(),
                    };
                    let spec = single_file(name, &path, &defaults).expect("a model file");
                    runtime
                        .block_on(manager.load(spec))
                        .unwrap_or_else(|e| panic!("model {name} loads: {e}"))
                })
                .collect();
            (runtime, served)
        });
        served
    }

    /// Names the decoder looks for: inputs and iris features.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("input".to_owned()),
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("x".to_owned()),
            Just("text".to_owned()),
            Just("sepal_length".to_owned()),
            Just("petal_width".to_owned()),
            "[a-z_]{1,6}",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e3f64..1e3).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::Array),
                vec((key(), inner), 0..5)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// Rows whose first element at each level is long and the rest
    /// scalars: the shape read from the first instance promises far more
    /// elements than the body holds.
    fn long_first_rows() -> impl Strategy<Value = Value> {
        (2usize..4, 200usize..1500).prop_map(|(depth, len)| {
            let mut row = Value::from(vec![0; len]);
            for _ in 1..depth {
                let mut level = vec![Value::from(0); len];
                level[0] = row;
                row = Value::Array(level);
            }
            json!({ "instances": [row] })
        })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => vec(json_value(), 0..5)
                .prop_map(|instances| json!({ "instances": instances }).to_string().into_bytes()),
            1 => json_value().prop_map(|v| json!({ "instances": v }).to_string().into_bytes()),
            1 => json_value().prop_map(|v| v.to_string().into_bytes()),
            1 => long_first_rows().prop_map(|v| v.to_string().into_bytes()),
            // Cut short, or bytes that are not JSON at all.
            1 => (vec(json_value(), 1..4), any::<prop::sample::Index>()).prop_map(|(instances, cut)| {
                let mut text = json!({ "instances": instances }).to_string().into_bytes();
                text.truncate(cut.index(text.len()));
                text
            }),
            1 => vec(any::<u8>(), 0..64),
        ]
    }

    /// Whether `message` says where the fault is.
    fn says_where(message: &str) -> bool {
        let in_json = message.contains(" line ") && message.contains(" column ");
        in_json
            || message.contains("instance ")
            || message.contains("input '")
            || message.starts_with("'instances'")
            || message == "instances mix objects and arrays"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bodies_never_panic_and_refusals_say_where(body in body()) {
            for served in models() {
                // What a decoded request holds is checked by the route tests.
                match KserveV1.decode(served, &body) {
                    Ok(_) => {}
                    Err(e) => {
                        prop_assert_eq!(e.kind, ferroserve_core::ErrorKind::InvalidInput, "{}", e);
                        prop_assert!(says_where(&e.message), "{}: {}", served.name(), e.message);
                    }
                }
            }
        }
    }
}
