//! The cache key: a blake3 hash of everything that decides a model's answer,
//! over canonical typed data so that the JSON and binary forms of one input
//! give the same key.

use ferroserve_core::{InferRequest, Tensor, TensorData};

/// Request parameters that shape transport or scheduling, never the outputs,
/// and so stay out of the key: `timeout` (deadline), `binary_data_output`
/// (encoding of the answer), `priority` (queue order). Every other request
/// parameter is part of the key.
pub const TRANSPORT_PARAMETERS: &[&str] = &["timeout", "binary_data_output", "priority"];

/// Identifies one cached answer: model, served version, requested output
/// names, output-changing parameters and input tensors (sorted by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Hashes `request` as sent to `version` of `model` (the server passes
    /// the version's label and model-bytes hash); the request `id` is left
    /// out, so retries with new ids hit.
    pub fn new(model: &str, version: &str, request: &InferRequest) -> CacheKey {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ferroserve-cache-key-v1");
        field(&mut hasher, model.as_bytes());
        field(&mut hasher, version.as_bytes());
        hasher.update(&(request.outputs.len() as u64).to_le_bytes());
        for output in &request.outputs {
            field(&mut hasher, output.name.as_bytes());
        }
        for (name, value) in &request.parameters {
            if TRANSPORT_PARAMETERS.contains(&name.as_str()) {
                continue;
            }
            field(&mut hasher, name.as_bytes());
            // serde_json maps are sorted, so this text is canonical.
            field(&mut hasher, value.to_string().as_bytes());
        }
        hasher.update(b"inputs");
        let mut inputs: Vec<&Tensor> = request.inputs.iter().collect();
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
        for tensor in inputs {
            field(&mut hasher, tensor.name.as_bytes());
            field(&mut hasher, tensor.datatype().as_str().as_bytes());
            hasher.update(&(tensor.shape.len() as u64).to_le_bytes());
            for dim in &tensor.shape {
                hasher.update(&(*dim as u64).to_le_bytes());
            }
            hash_data(&mut hasher, &tensor.data);
        }
        CacheKey(*hasher.finalize().as_bytes())
    }

    /// Lower-case hex, as used in Redis keys.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

/// Length-prefixed so that adjacent fields cannot run into each other.
fn field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// Feeds the little-endian element bytes through a stack buffer, so a large
/// tensor costs no allocation.
fn hash_data(hasher: &mut blake3::Hasher, data: &TensorData) {
    hasher.update(&(data.len() as u64).to_le_bytes());
    macro_rules! le {
        ($iter:expr) => {{
            let mut buf = [0u8; 4096];
            let mut n = 0;
            for element in $iter {
                let bytes = element.to_le_bytes();
                if n + bytes.len() > buf.len() {
                    hasher.update(&buf[..n]);
                    n = 0;
                }
                buf[n..n + bytes.len()].copy_from_slice(&bytes);
                n += bytes.len();
            }
            hasher.update(&buf[..n]);
        }};
    }
    match data {
        TensorData::Bool(v) => le!(v.iter().map(|&b| u8::from(b))),
        TensorData::Uint8(v) => {
            hasher.update(v);
        }
        TensorData::Uint16(v) => le!(v.iter().copied()),
        TensorData::Uint32(v) => le!(v.iter().copied()),
        TensorData::Uint64(v) => le!(v.iter().copied()),
        TensorData::Int8(v) => le!(v.iter().copied()),
        TensorData::Int16(v) => le!(v.iter().copied()),
        TensorData::Int32(v) => le!(v.iter().copied()),
        TensorData::Int64(v) => le!(v.iter().copied()),
        TensorData::Fp16(v) => le!(v.iter().copied()),
        TensorData::Bf16(v) => le!(v.iter().copied()),
        TensorData::Fp32(v) => le!(v.iter().copied()),
        TensorData::Fp64(v) => le!(v.iter().copied()),
        TensorData::Bytes(v) => {
            for element in v {
                field(hasher, element);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferroserve_core::RequestedOutput;

    use super::*;

    fn request(inputs: Vec<Tensor>) -> InferRequest {
        InferRequest {
            id: Some("a".into()),
            inputs,
            outputs: Vec::new(),
            parameters: BTreeMap::new(),
        }
    }

    fn fp32(name: &str, values: Vec<f32>) -> Tensor {
        Tensor::new(name, vec![1, values.len()], TensorData::Fp32(values)).expect("shape fits")
    }

    #[test]
    fn same_typed_data_gives_same_key_whatever_the_id_or_input_order() {
        let a = request(vec![fp32("x", vec![1.0, 2.5]), fp32("y", vec![3.0])]);
        let mut b = request(vec![fp32("y", vec![3.0]), fp32("x", vec![1.0, 2.5])]);
        b.id = Some("other".into());
        assert_eq!(CacheKey::new("m", "1", &a), CacheKey::new("m", "1", &b));
    }

    #[test]
    fn version_model_outputs_shape_type_and_data_are_in_the_key() {
        let base = request(vec![fp32("x", vec![1.0, 2.0])]);
        let key = CacheKey::new("m", "1", &base);
        assert_ne!(key, CacheKey::new("m", "2", &base), "version");
        assert_ne!(key, CacheKey::new("n", "1", &base), "model");
        let mut outputs = base.clone();
        outputs.outputs.push(RequestedOutput {
            name: "p".into(),
            binary_data: false,
        });
        assert_ne!(key, CacheKey::new("m", "1", &outputs), "outputs");
        let tensor = |shape: Vec<usize>, data| {
            request(vec![Tensor::new("x", shape, data).expect("shape fits")])
        };
        let reshaped = tensor(vec![2, 1], TensorData::Fp32(vec![1.0, 2.0]));
        assert_ne!(key, CacheKey::new("m", "1", &reshaped), "shape");
        let retyped = tensor(vec![1, 2], TensorData::Int32(vec![1, 2]));
        assert_ne!(key, CacheKey::new("m", "1", &retyped), "datatype");
        let changed = request(vec![fp32("x", vec![1.0, 2.000_001])]);
        assert_ne!(key, CacheKey::new("m", "1", &changed), "data");
    }

    #[test]
    fn only_output_changing_parameters_are_in_the_key() {
        let base = request(vec![fp32("x", vec![1.0])]);
        let key = CacheKey::new("m", "1", &base);
        let mut transport = base.clone();
        transport
            .parameters
            .insert("timeout".into(), serde_json::json!(1000));
        transport
            .parameters
            .insert("binary_data_output".into(), serde_json::json!(true));
        assert_eq!(key, CacheKey::new("m", "1", &transport));
        let mut semantic = base.clone();
        semantic
            .parameters
            .insert("top_k".into(), serde_json::json!(3));
        assert_ne!(key, CacheKey::new("m", "1", &semantic));
    }

    #[test]
    fn half_types_with_the_same_bits_have_different_keys() {
        use ferroserve_core::half::{bf16, f16};
        let one = |data| request(vec![Tensor::new("x", vec![1], data).expect("shape fits")]);
        let fp16 = one(TensorData::Fp16(vec![f16::from_bits(0x3c00)]));
        let bf16 = one(TensorData::Bf16(vec![bf16::from_bits(0x3c00)]));
        let uint16 = one(TensorData::Uint16(vec![0x3c00]));
        let keys = [&fp16, &bf16, &uint16].map(|r| CacheKey::new("m", "1", r));
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[1], keys[2]);
        let other = one(TensorData::Fp16(vec![f16::from_bits(0x3c01)]));
        assert_ne!(keys[0], CacheKey::new("m", "1", &other), "data");
    }

    #[test]
    fn bytes_elements_cannot_run_together() {
        let one = |parts: Vec<&[u8]>| {
            let data = TensorData::Bytes(parts.iter().map(|p| p.to_vec()).collect());
            request(vec![
                Tensor::new("s", vec![parts.len()], data).expect("shape fits")
            ])
        };
        assert_ne!(
            CacheKey::new("m", "1", &one(vec![b"ab", b"c"])),
            CacheKey::new("m", "1", &one(vec![b"a", b"bc"]))
        );
    }

    #[test]
    fn large_tensors_hash_every_element() {
        let values: Vec<f32> = (0..5000).map(|i| i as f32).collect();
        let mut changed = values.clone();
        changed[4999] = -1.0;
        assert_ne!(
            CacheKey::new("m", "1", &request(vec![fp32("x", values)])),
            CacheKey::new("m", "1", &request(vec![fp32("x", changed)]))
        );
    }
}
