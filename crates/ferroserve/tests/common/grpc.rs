//! gRPC requests for the end-to-end tests: iris messages built from raw
//! bytes, and a `ModelInfer` call with metadata on a runtime of the test.

use ferroserve_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use ferroserve_server::grpc::proto::model_infer_request::InferInputTensor;
use ferroserve_server::grpc::proto::{ModelInferRequest, ModelInferResponse};

/// An input tensor's description, without contents.
pub fn tensor(name: &str, datatype: &str, shape: &[i64]) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape: shape.to_vec(),
        ..Default::default()
    }
}

/// `values` as little-endian FP32 bytes, as raw contents carry them.
pub fn fp32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// An iris request with one input given as raw bytes.
pub fn iris_raw(datatype: &str, shape: &[i64], raw: Vec<u8>) -> ModelInferRequest {
    ModelInferRequest {
        model_name: "iris".into(),
        inputs: vec![tensor("input", datatype, shape)],
        raw_input_contents: vec![raw.into()],
        ..Default::default()
    }
}

/// A one-row iris request (raw FP32) with request id `id`.
pub fn iris_row(row: [f32; 4], id: &str) -> ModelInferRequest {
    ModelInferRequest {
        id: id.into(),
        ..iris_raw("FP32", &[1, 4], fp32_bytes(&row))
    }
}

/// Calls `ModelInfer` on `url` with `message` and `metadata` (ASCII
/// values), on a fresh connection, from `runtime`.
pub fn model_infer(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    message: ModelInferRequest,
    metadata: &[(&'static str, &str)],
) -> Result<tonic::Response<ModelInferResponse>, tonic::Status> {
    let mut request = tonic::Request::new(message);
    for (name, value) in metadata {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("an ASCII metadata value"));
    }
    runtime.block_on(async {
        let mut client = GrpcInferenceServiceClient::connect(url.to_owned())
            .await
            .expect("the gRPC server accepts connections");
        client.model_infer(request).await
    })
}
