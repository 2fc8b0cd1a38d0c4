//! Encoding of request bodies, once before the load starts: KServe v2 JSON,
//! the binary tensor extension (JSON header + raw little-endian bytes), or a
//! gRPC `ModelInferRequest` with raw input contents.

use bytes::Bytes;
use ferroserve_core::half::{bf16, f16};
use ferroserve_core::DataType;
use ferroserve_server::grpc::proto::{model_infer_request::InferInputTensor, ModelInferRequest};
use prost::Message;
use serde::Serialize;
use serde_json::json;

use super::args::Protocol;
use super::inputs::{InputTensor, Values};

/// A pre-encoded request body.
#[derive(Debug, Clone)]
pub struct Body {
    /// The bytes sent (cloning shares them).
    pub bytes: Bytes,
    /// Length of the JSON header, sent as `Inference-Header-Content-Length`
    /// (binary protocol only).
    pub header_len: Option<usize>,
}

/// Encodes one request to `model`.
pub fn encode(model: &str, inputs: &[InputTensor], protocol: Protocol) -> Body {
    match protocol {
        Protocol::Grpc | Protocol::GrpcStream => Body {
            bytes: Bytes::from(grpc_request(model, inputs).encode_to_vec()),
            header_len: None,
        },
        Protocol::HttpJson => {
            let inputs: Vec<JsonInput<'_>> = inputs
                .iter()
                .map(|i| JsonInput {
                    name: &i.name,
                    shape: &i.shape,
                    datatype: i.datatype.as_str(),
                    data: typed(i),
                })
                .collect();
            let bytes = serde_json::to_vec(&JsonRequest { inputs })
                .expect("a request of numbers and strings serializes");
            Body {
                bytes: Bytes::from(bytes),
                header_len: None,
            }
        }
        Protocol::HttpBinary => {
            let mut raw = Vec::new();
            let mut headers = Vec::with_capacity(inputs.len());
            for input in inputs {
                let before = raw.len();
                write_binary(input, &mut raw);
                headers.push(json!({
                    "name": input.name,
                    "shape": input.shape,
                    "datatype": input.datatype.as_str(),
                    "parameters": { "binary_data_size": raw.len() - before },
                }));
            }
            let header = json!({
                "inputs": headers,
                "parameters": { "binary_data_output": true },
            });
            let mut bytes = serde_json::to_vec(&header).expect("a JSON header serializes");
            let header_len = bytes.len();
            bytes.extend_from_slice(&raw);
            Body {
                bytes: Bytes::from(bytes),
                header_len: Some(header_len),
            }
        }
    }
}

/// A `ModelInferRequest` carrying every input as raw little-endian bytes
/// (what `tritonclient.grpc` sends).
fn grpc_request(model: &str, inputs: &[InputTensor]) -> ModelInferRequest {
    let mut request = ModelInferRequest {
        model_name: model.to_string(),
        ..Default::default()
    };
    for input in inputs {
        request.inputs.push(InferInputTensor {
            name: input.name.clone(),
            datatype: input.datatype.as_str().to_string(),
            shape: input.shape.iter().map(|&d| d as i64).collect(),
            ..Default::default()
        });
        let mut raw = Vec::new();
        write_binary(input, &mut raw);
        request.raw_input_contents.push(Bytes::from(raw));
    }
    request
}

// Serialized directly, never through `serde_json::Value`, which would
// widen every f32 to f64.
#[derive(Serialize)]
struct JsonRequest<'a> {
    inputs: Vec<JsonInput<'a>>,
}

#[derive(Serialize)]
struct JsonInput<'a> {
    name: &'a str,
    shape: &'a [usize],
    datatype: &'a str,
    data: Data<'a>,
}

/// Elements in the JSON form of their type (an `f32` written as such, not
/// widened to 17 digits).
#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    F32(Vec<f32>),
    F64(&'a [f64]),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(&'a [String]),
}

// Values were built for their datatype, so the narrowing casts below are
// exact (integers are whole numbers in range) or intended (f64 -> f32).
fn typed(input: &InputTensor) -> Data<'_> {
    let numbers = match &input.values {
        Values::Strings(s) => return Data::Str(s),
        Values::Numbers(n) => n,
    };
    match input.datatype {
        DataType::Fp16 => Data::F32(numbers.iter().map(|&v| f16::from_f64(v).to_f32()).collect()),
        DataType::Bf16 => Data::F32(
            numbers
                .iter()
                .map(|&v| bf16::from_f64(v).to_f32())
                .collect(),
        ),
        DataType::Fp32 => Data::F32(numbers.iter().map(|&v| v as f32).collect()),
        DataType::Fp64 => Data::F64(numbers),
        DataType::Bool => Data::Bool(numbers.iter().map(|&v| v != 0.0).collect()),
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 | DataType::Uint64 => {
            Data::U64(numbers.iter().map(|&v| v as u64).collect())
        }
        _ => Data::I64(numbers.iter().map(|&v| v as i64).collect()),
    }
}

fn write_binary(input: &InputTensor, out: &mut Vec<u8>) {
    let numbers = match &input.values {
        Values::Strings(strings) => {
            for s in strings {
                let len = u32::try_from(s.len()).expect("a string element under 4 GiB");
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            return;
        }
        Values::Numbers(n) => n,
    };
    for &v in numbers {
        match input.datatype {
            DataType::Bool => out.push(u8::from(v != 0.0)),
            DataType::Uint8 => out.push(v as u8),
            DataType::Uint16 => out.extend_from_slice(&(v as u16).to_le_bytes()),
            DataType::Uint32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
            DataType::Uint64 => out.extend_from_slice(&(v as u64).to_le_bytes()),
            DataType::Int8 => out.extend_from_slice(&(v as i8).to_le_bytes()),
            DataType::Int16 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            DataType::Int32 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            DataType::Int64 => out.extend_from_slice(&(v as i64).to_le_bytes()),
            DataType::Fp16 => out.extend_from_slice(&f16::from_f64(v).to_le_bytes()),
            DataType::Bf16 => out.extend_from_slice(&bf16::from_f64(v).to_le_bytes()),
            DataType::Fp32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            DataType::Fp64 | DataType::Bytes => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iris_input() -> InputTensor {
        InputTensor {
            name: "input".into(),
            datatype: DataType::Fp32,
            shape: vec![1, 4],
            values: Values::Numbers(vec![5.1, 3.5, 1.4, 0.2]),
        }
    }

    #[test]
    fn json_body() {
        let body = encode("iris", &[iris_input()], Protocol::HttpJson);
        assert!(body.header_len.is_none());
        let value: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            value,
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                "data": [5.1, 3.5, 1.4, 0.2]}]})
        );
        assert!(std::str::from_utf8(&body.bytes)
            .unwrap()
            .contains("[5.1,3.5,1.4,0.2]"));
    }

    #[test]
    fn binary_body() {
        let body = encode("iris", &[iris_input()], Protocol::HttpBinary);
        let len = body.header_len.unwrap();
        let header: serde_json::Value = serde_json::from_slice(&body.bytes[..len]).unwrap();
        assert_eq!(header["inputs"][0]["parameters"]["binary_data_size"], 16);
        assert_eq!(header["parameters"]["binary_data_output"], true);
        let raw = &body.bytes[len..];
        assert_eq!(raw.len(), 16);
        assert_eq!(raw[..4], 5.1f32.to_le_bytes());
    }

    #[test]
    fn grpc_body() {
        for protocol in [Protocol::Grpc, Protocol::GrpcStream] {
            let body = encode("iris", &[iris_input()], protocol);
            assert!(body.header_len.is_none());
            let request = ModelInferRequest::decode(body.bytes).unwrap();
            assert_eq!(request.model_name, "iris");
            assert_eq!(request.inputs[0].name, "input");
            assert_eq!(request.inputs[0].datatype, "FP32");
            assert_eq!(request.inputs[0].shape, vec![1, 4]);
            assert!(request.inputs[0].contents.is_none());
            let raw = &request.raw_input_contents[0];
            assert_eq!(raw.len(), 16);
            assert_eq!(raw[..4], 5.1f32.to_le_bytes());
        }
    }
}
