//! Test support for the gRPC front end: a server on a free port over a
//! state, a tonic client of the generated code, and requests with or
//! without credentials.

use std::net::SocketAddr;
use std::sync::Arc;

use ferroserve_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use ferroserve_server::grpc::proto::model_infer_request::{
    InferInputTensor, InferRequestedOutputTensor,
};
use ferroserve_server::grpc::proto::{InferTensorContents, ModelInferRequest};
use ferroserve_server::grpc::{self, GrpcOptions};
use ferroserve_server::AppState;
use tonic::transport::Channel;

use super::IRIS_ROWS;

/// A gRPC server over `state` on a free port, until the test ends.
pub async fn serve(state: Arc<AppState>, options: GrpcOptions) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("bound address");
    tokio::spawn(grpc::serve(
        listener,
        state,
        options,
        None,
        std::future::pending(),
    ));
    address
}

/// A channel to `address`.
pub async fn channel(address: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}"))
        .expect("a URI")
        .connect()
        .await
        .expect("the gRPC server accepts connections")
}

/// An inference client of the server at `address`.
pub async fn client(address: SocketAddr) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::new(channel(address).await)
}

/// `message` with `token` as its bearer credentials.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    request
}

/// An iris input of `rows` as typed FP32 contents.
pub fn iris_typed(rows: &[[f32; 4]]) -> InferInputTensor {
    InferInputTensor {
        name: "input".into(),
        datatype: "FP32".into(),
        shape: vec![rows.len() as i64, 4],
        contents: Some(InferTensorContents {
            fp32_contents: rows.iter().flatten().copied().collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A request to iris with the three classic rows, typed.
pub fn iris_request(id: &str) -> ModelInferRequest {
    ModelInferRequest {
        model_name: "iris".into(),
        id: id.into(),
        inputs: vec![iris_typed(&IRIS_ROWS)],
        ..Default::default()
    }
}

/// The same request with its input in `raw_input_contents`.
pub fn iris_raw_request(id: &str) -> ModelInferRequest {
    let bytes: Vec<u8> = IRIS_ROWS
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let mut input = iris_typed(&IRIS_ROWS);
    input.contents = None;
    ModelInferRequest {
        model_name: "iris".into(),
        id: id.into(),
        inputs: vec![input],
        raw_input_contents: vec![bytes.into()],
        ..Default::default()
    }
}

/// An output asked for by name.
pub fn output(name: &str) -> InferRequestedOutputTensor {
    InferRequestedOutputTensor {
        name: name.into(),
        ..Default::default()
    }
}

/// Little-endian INT64 elements of a raw output.
pub fn int64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}
