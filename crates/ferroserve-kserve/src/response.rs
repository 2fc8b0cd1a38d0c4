//! Encoding of KServe v2 infer responses as JSON, or as a JSON header
//! followed by raw tensor bytes for outputs requested in binary form.

use ferroserve_core::{InferError, InferResponse, TensorData};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::elements::encode_binary;

/// An encoded response body; `json_len` is set when binary tensors follow
/// the JSON header (sent as `Inference-Header-Content-Length`).
pub struct EncodedResponse {
    /// Full body.
    pub body: Vec<u8>,
    /// Length of the JSON header when binary data follows it.
    pub json_len: Option<usize>,
}

struct OutputJson<'a> {
    tensor: &'a ferroserve_core::Tensor,
    binary_size: Option<usize>,
}

impl Serialize for OutputJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("name", &self.tensor.name)?;
        map.serialize_entry("datatype", self.tensor.datatype().as_str())?;
        map.serialize_entry("shape", &self.tensor.shape)?;
        match self.binary_size {
            Some(size) => map.serialize_entry(
                "parameters",
                &serde_json::json!({ "binary_data_size": size }),
            )?,
            None => map.serialize_entry("data", &DataJson(&self.tensor.data))?,
        }
        map.end()
    }
}

/// JSON form of tensor elements: numbers (FP16 and BF16 widened exactly to
/// FP32, so they read back to the same value), booleans, or strings for `BYTES`.
pub struct DataJson<'a>(pub &'a TensorData);

impl Serialize for DataJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            TensorData::Bool(v) => v.serialize(s),
            TensorData::Uint8(v) => v.serialize(s),
            TensorData::Uint16(v) => v.serialize(s),
            TensorData::Uint32(v) => v.serialize(s),
            TensorData::Uint64(v) => v.serialize(s),
            TensorData::Int8(v) => v.serialize(s),
            TensorData::Int16(v) => v.serialize(s),
            TensorData::Int32(v) => v.serialize(s),
            TensorData::Int64(v) => v.serialize(s),
            TensorData::Fp16(v) => s.collect_seq(v.iter().map(|x| x.to_f32())),
            TensorData::Bf16(v) => s.collect_seq(v.iter().map(|x| x.to_f32())),
            TensorData::Fp32(v) => v.serialize(s),
            TensorData::Fp64(v) => v.serialize(s),
            TensorData::Bytes(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for item in v {
                    seq.serialize_element(&String::from_utf8_lossy(item))?;
                }
                seq.end()
            }
        }
    }
}

struct ResponseJson<'a> {
    response: &'a InferResponse,
    outputs: Vec<OutputJson<'a>>,
}

impl Serialize for ResponseJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("model_name", &self.response.model_name)?;
        map.serialize_entry("model_version", &self.response.model_version)?;
        if let Some(id) = &self.response.id {
            map.serialize_entry("id", id)?;
        }
        map.serialize_entry("outputs", &self.outputs)?;
        map.end()
    }
}

/// Encodes `response`; `binary[i]` says whether output `i` goes in binary
/// form. A `BYTES` element too long for the binary form is an error.
pub fn encode_response(
    response: &InferResponse,
    binary: &[bool],
) -> Result<EncodedResponse, InferError> {
    let mut blob = Vec::new();
    let mut outputs = Vec::with_capacity(response.outputs.len());
    for (i, tensor) in response.outputs.iter().enumerate() {
        let binary_size = if binary.get(i).copied().unwrap_or(false) {
            let before = blob.len();
            encode_binary(&tensor.data, &mut blob).map_err(|e| {
                InferError::new(e.kind, format!("output '{}': {}", tensor.name, e.message))
            })?;
            Some(blob.len() - before)
        } else {
            None
        };
        outputs.push(OutputJson {
            tensor,
            binary_size,
        });
    }
    let mut body = Vec::with_capacity(128 + blob.len());
    serde_json::to_writer(&mut body, &ResponseJson { response, outputs })
        .expect("serializing to a Vec cannot fail");
    if blob.is_empty() && !binary.iter().any(|&b| b) {
        return Ok(EncodedResponse {
            body,
            json_len: None,
        });
    }
    let json_len = body.len();
    body.extend_from_slice(&blob);
    Ok(EncodedResponse {
        body,
        json_len: Some(json_len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroserve_core::Tensor;

    fn response() -> InferResponse {
        InferResponse {
            model_name: "m".into(),
            model_version: "1".into(),
            id: Some("x".into()),
            outputs: vec![
                Tensor::new("a", vec![2], TensorData::Int64(vec![1, 2])).expect("valid"),
                Tensor::new("b", vec![1], TensorData::Fp32(vec![0.5])).expect("valid"),
            ],
        }
    }

    #[test]
    fn json_response_matches_kserve_shape() {
        let encoded = encode_response(&response(), &[false, false]).expect("encodes");
        assert!(encoded.json_len.is_none());
        let v: serde_json::Value = serde_json::from_slice(&encoded.body).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"model_name":"m","model_version":"1","id":"x","outputs":[
                {"name":"a","datatype":"INT64","shape":[2],"data":[1,2]},
                {"name":"b","datatype":"FP32","shape":[1],"data":[0.5]}]})
        );
    }

    #[test]
    fn binary_outputs_follow_the_json_header() {
        let encoded = encode_response(&response(), &[false, true]).expect("encodes");
        let len = encoded.json_len.expect("binary present");
        let v: serde_json::Value = serde_json::from_slice(&encoded.body[..len]).expect("json");
        assert_eq!(v["outputs"][1]["parameters"]["binary_data_size"], 4);
        assert!(v["outputs"][1].get("data").is_none());
        assert_eq!(&encoded.body[len..], &0.5f32.to_le_bytes());
    }
}
