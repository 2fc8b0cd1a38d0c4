//! `ModelInferRequest` to [`InferRequest`] and [`InferResponse`] to
//! `ModelInferResponse`. Inputs come typed (`contents`, one repeated field
//! per family of data types) or raw (`raw_input_contents`, one entry per
//! input, in the binary tensor encoding of the HTTP protocol, which FP16
//! and BF16 must use); every shape is checked against the elements or
//! bytes actually sent before anything is allocated for it. Outputs go
//! back raw (`raw_output_contents`), as Triton answers and as
//! `tritonclient.grpc` reads them.

use std::collections::{BTreeMap, HashMap};

use ferroserve_core::request::MAX_REQUEST_KEY_BYTES;
use ferroserve_core::{
    DataType, InferError, InferRequest, InferResponse, RequestedOutput, Tensor, TensorData,
};
use ferroserve_kserve::declared_input;
use ferroserve_kserve::elements::{decode_binary, encode_binary};
use prost::bytes::Bytes;

use super::proto::infer_parameter::ParameterChoice;
use super::proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use super::proto::model_infer_response::InferOutputTensor;
use super::proto::{InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse};

/// Output parameter asking for class labels, which ferroserve does not
/// compute: refused rather than silently answered with raw scores.
const CLASSIFICATION: &str = "classification";

/// Decodes `message` (its model and version are the caller's business).
pub(crate) fn decode_request(message: ModelInferRequest) -> Result<InferRequest, InferError> {
    if message.id.len() > MAX_REQUEST_KEY_BYTES {
        return Err(InferError::invalid(format!(
            "request id is {} bytes; at most {MAX_REQUEST_KEY_BYTES}",
            message.id.len()
        )));
    }
    if message.inputs.is_empty() {
        return Err(InferError::invalid("request has no inputs"));
    }
    let inputs = decode_inputs(message.inputs, message.raw_input_contents)?;
    let outputs = message
        .outputs
        .into_iter()
        .map(requested_output)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InferRequest {
        id: Some(message.id).filter(|id| !id.is_empty()),
        inputs,
        outputs,
        parameters: parameters_json(message.parameters),
    })
}

fn decode_inputs(
    inputs: Vec<InferInputTensor>,
    raw: Vec<Bytes>,
) -> Result<Vec<Tensor>, InferError> {
    if raw.is_empty() {
        return inputs.into_iter().map(decode_typed).collect();
    }
    if raw.len() != inputs.len() {
        return Err(InferError::invalid(format!(
            "raw_input_contents has {} entries but the request has {} inputs; send one per input, in order",
            raw.len(),
            inputs.len()
        )));
    }
    inputs
        .into_iter()
        .zip(raw)
        .map(|(input, bytes)| decode_raw(input, &bytes))
        .collect()
}

/// The element type and shape an input declares, with its element count.
fn declared(input: &InferInputTensor) -> Result<(DataType, Vec<usize>, usize), InferError> {
    declared_input(&input.name, &input.datatype, &input.shape)
}

fn decode_raw(input: InferInputTensor, bytes: &[u8]) -> Result<Tensor, InferError> {
    if input.contents.as_ref().is_some_and(|c| given_fields(c) > 0) {
        return Err(InferError::invalid(format!(
            "input '{}': contents given while the request uses raw_input_contents; send every input one way",
            input.name
        )));
    }
    let (datatype, shape, count) = declared(&input)?;
    // decode_binary compares the byte length with the shape before it
    // allocates anything.
    let data = decode_binary(&input.name, datatype, bytes, count)?;
    Tensor::new(input.name, shape, data)
}

fn decode_typed(input: InferInputTensor) -> Result<Tensor, InferError> {
    let (datatype, shape, count) = declared(&input)?;
    let name = input.name;
    let contents = input.contents.unwrap_or_default();
    let given = contents_len(&contents, datatype)?;
    if given_fields(&contents) > usize::from(given > 0) {
        return Err(InferError::invalid(format!(
            "input '{name}': contents hold elements in a field other than the one of datatype {datatype}"
        )));
    }
    if given != count {
        return Err(InferError::invalid(format!(
            "input '{name}': shape {shape:?} needs {count} elements but contents hold {given}"
        )));
    }
    let data = typed_data(&name, datatype, contents)?;
    Tensor::new(name, shape, data)
}

/// How many elements `contents` holds in the field of `datatype`.
fn contents_len(contents: &InferTensorContents, datatype: DataType) -> Result<usize, InferError> {
    Ok(match datatype {
        DataType::Bool => contents.bool_contents.len(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => contents.int_contents.len(),
        DataType::Int64 => contents.int64_contents.len(),
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => contents.uint_contents.len(),
        DataType::Uint64 => contents.uint64_contents.len(),
        DataType::Fp32 => contents.fp32_contents.len(),
        DataType::Fp64 => contents.fp64_contents.len(),
        DataType::Bytes => contents.bytes_contents.len(),
        #[allow(unreachable_patterns)]
        other => {
            return Err(InferError::invalid(format!(
                "datatype {other} has no typed contents; send it in raw_input_contents"
            )))
        }
    })
}

/// How many of the repeated fields of `contents` hold elements.
fn given_fields(c: &InferTensorContents) -> usize {
    [
        c.bool_contents.is_empty(),
        c.int_contents.is_empty(),
        c.int64_contents.is_empty(),
        c.uint_contents.is_empty(),
        c.uint64_contents.is_empty(),
        c.fp32_contents.is_empty(),
        c.fp64_contents.is_empty(),
        c.bytes_contents.is_empty(),
    ]
    .into_iter()
    .filter(|empty| !empty)
    .count()
}

/// The elements of `contents` as `datatype`, narrowing 32-bit integers to
/// 8 and 16 bits where they fit (the error names the element that does not).
fn typed_data(
    name: &str,
    datatype: DataType,
    c: InferTensorContents,
) -> Result<TensorData, InferError> {
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(c.bool_contents),
        DataType::Int8 => TensorData::Int8(narrow(name, datatype, c.int_contents)?),
        DataType::Int16 => TensorData::Int16(narrow(name, datatype, c.int_contents)?),
        DataType::Int32 => TensorData::Int32(c.int_contents),
        DataType::Int64 => TensorData::Int64(c.int64_contents),
        DataType::Uint8 => TensorData::Uint8(narrow(name, datatype, c.uint_contents)?),
        DataType::Uint16 => TensorData::Uint16(narrow(name, datatype, c.uint_contents)?),
        DataType::Uint32 => TensorData::Uint32(c.uint_contents),
        DataType::Uint64 => TensorData::Uint64(c.uint64_contents),
        DataType::Fp32 => TensorData::Fp32(c.fp32_contents),
        DataType::Fp64 => TensorData::Fp64(c.fp64_contents),
        DataType::Bytes => TensorData::Bytes(c.bytes_contents),
        #[allow(unreachable_patterns)]
        other => {
            return Err(InferError::invalid(format!(
            "input '{name}': datatype {other} has no typed contents; send it in raw_input_contents"
        )))
        }
    })
}

fn narrow<T: TryFrom<W>, W: Copy + std::fmt::Display>(
    name: &str,
    datatype: DataType,
    wide: Vec<W>,
) -> Result<Vec<T>, InferError> {
    wide.iter()
        .enumerate()
        .map(|(element, &w)| {
            T::try_from(w).map_err(|_| {
                InferError::invalid(format!(
                    "input '{name}' element {element}: {w} is out of {datatype} range"
                ))
            })
        })
        .collect()
}

fn requested_output(output: InferRequestedOutputTensor) -> Result<RequestedOutput, InferError> {
    if output.parameters.contains_key(CLASSIFICATION) {
        return Err(InferError::invalid(format!(
            "output '{}': parameter {CLASSIFICATION} is not supported; ask for the output itself",
            output.name
        )));
    }
    // binary_data is an HTTP notion: gRPC outputs always travel as bytes.
    Ok(RequestedOutput {
        name: output.name,
        binary_data: true,
    })
}

/// Request parameters as the JSON values the HTTP protocol carries
/// (`timeout` in microseconds among them).
fn parameters_json(
    parameters: HashMap<String, InferParameter>,
) -> BTreeMap<String, serde_json::Value> {
    parameters
        .into_iter()
        .filter_map(|(key, p)| {
            let value = match p.parameter_choice? {
                ParameterChoice::BoolParam(b) => serde_json::Value::from(b),
                ParameterChoice::Int64Param(i) => serde_json::Value::from(i),
                ParameterChoice::StringParam(s) => serde_json::Value::from(s),
                ParameterChoice::DoubleParam(d) => serde_json::Value::from(d),
                ParameterChoice::Uint64Param(u) => serde_json::Value::from(u),
            };
            Some((key, value))
        })
        .collect()
}

/// Encodes `response` with every output in `raw_output_contents`.
pub(crate) fn encode_response(response: InferResponse) -> Result<ModelInferResponse, InferError> {
    let mut outputs = Vec::with_capacity(response.outputs.len());
    let mut raw = Vec::with_capacity(response.outputs.len());
    for tensor in response.outputs {
        let mut bytes = Vec::with_capacity(tensor.data.byte_size());
        encode_binary(&tensor.data, &mut bytes)?;
        raw.push(Bytes::from(bytes));
        outputs.push(InferOutputTensor {
            datatype: tensor.datatype().as_str().to_owned(),
            shape: tensor.shape.iter().map(|&d| dim_i64(d)).collect(),
            name: tensor.name,
            parameters: HashMap::new(),
            contents: None,
        });
    }
    Ok(ModelInferResponse {
        model_name: response.model_name,
        model_version: response.model_version,
        id: response.id.unwrap_or_default(),
        parameters: HashMap::new(),
        outputs,
        raw_output_contents: raw,
    })
}

/// A dimension as the protocol's `int64` (a real tensor's dimensions fit).
fn dim_i64(d: usize) -> i64 {
    i64::try_from(d).unwrap_or(i64::MAX)
}
