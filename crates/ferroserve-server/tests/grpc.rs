//! The gRPC front end over real models with a tonic client: metadata,
//! typed and raw inference, output selection, streams, errors as gRPC
//! codes, the message size limit and the request metrics.

mod common;

use common::grpc::*;
use common::*;
use ferroserve_server::grpc::proto::{
    ModelInferRequest, ModelMetadataRequest, ModelReadyRequest, ServerLiveRequest,
    ServerMetadataRequest, ServerReadyRequest,
};
use ferroserve_server::grpc::GrpcOptions;
use ferroserve_server::ServerConfig;
use tonic::Code;

async fn iris_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<ferroserve_server::AppState>,
) {
    let (_, state) = app_with(vec![iris()], ServerConfig::default()).await;
    let address = serve(state.clone(), GrpcOptions::for_state(&state)).await;
    (address, state)
}

#[tokio::test]
async fn live_ready_and_metadata_describe_the_served_model() {
    let (address, _state) = iris_server().await;
    let mut client = client(address).await;
    let live = client
        .server_live(ServerLiveRequest {})
        .await
        .expect("live");
    assert!(live.into_inner().live);
    let ready = client
        .server_ready(ServerReadyRequest {})
        .await
        .expect("ready");
    assert!(ready.into_inner().ready);
    let server = client
        .server_metadata(ServerMetadataRequest {})
        .await
        .expect("server metadata")
        .into_inner();
    assert_eq!(server.name, "ferroserve");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));

    let meta = client
        .model_metadata(ModelMetadataRequest {
            name: "iris".into(),
            version: String::new(),
        })
        .await
        .expect("model metadata")
        .into_inner();
    assert_eq!(meta.versions, vec!["1".to_owned()]);
    assert_eq!(meta.inputs[0].name, "input");
    assert_eq!(meta.inputs[0].datatype, "FP32");
    assert_eq!(meta.inputs[0].shape, vec![-1, 4]);
    assert_eq!(meta.outputs[1].name, "probabilities");
    assert_eq!(meta.outputs[1].shape, vec![-1, 3]);

    let ready = |name: &str, version: &str| ModelReadyRequest {
        name: name.into(),
        version: version.into(),
    };
    assert!(
        client
            .model_ready(ready("iris", ""))
            .await
            .expect("ready")
            .into_inner()
            .ready
    );
    assert!(
        client
            .model_ready(ready("iris", "1"))
            .await
            .expect("v1")
            .into_inner()
            .ready
    );
    assert!(
        !client
            .model_ready(ready("nope", ""))
            .await
            .expect("unknown")
            .into_inner()
            .ready
    );
}

#[tokio::test]
async fn typed_and_raw_inputs_give_the_same_raw_outputs() {
    let (address, _state) = iris_server().await;
    let mut client = client(address).await;
    for request in [iris_request("typed-1"), iris_raw_request("raw-1")] {
        let id = request.id.clone();
        let reply = client.model_infer(request).await.expect("inference");
        let answer = reply.into_inner();
        assert_eq!(answer.model_name, "iris");
        assert_eq!(answer.model_version, "1");
        assert_eq!(answer.id, id);
        assert_eq!(answer.outputs.len(), answer.raw_output_contents.len());
        let label = answer
            .outputs
            .iter()
            .position(|o| o.name == "label")
            .expect("label output");
        assert_eq!(answer.outputs[label].datatype, "INT64");
        assert_eq!(answer.outputs[label].shape, vec![3]);
        assert_eq!(int64s(&answer.raw_output_contents[label]), vec![0, 1, 2]);
        assert!(answer.outputs.iter().all(|o| o.contents.is_none()));
    }
}

#[tokio::test]
async fn outputs_are_selected_by_name_and_unknown_names_refused() {
    let (address, _state) = iris_server().await;
    let mut client = client(address).await;
    let mut request = iris_raw_request("select");
    request.outputs = vec![output("probabilities")];
    let answer = client
        .model_infer(request)
        .await
        .expect("inference")
        .into_inner();
    assert_eq!(answer.outputs.len(), 1);
    assert_eq!(answer.outputs[0].name, "probabilities");
    assert_eq!(answer.outputs[0].shape, vec![3, 3]);
    assert_eq!(answer.raw_output_contents[0].len(), 3 * 3 * 4);

    let mut request = iris_request("unknown-output");
    request.outputs = vec![output("nope")];
    let status = client
        .model_infer(request)
        .await
        .expect_err("unknown output");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("unknown output 'nope'"),
        "{status:?}"
    );
}

/// Sends `request` and returns the refusal's code and message.
async fn refusal(address: std::net::SocketAddr, request: ModelInferRequest) -> (Code, String) {
    let status = client(address)
        .await
        .model_infer(request)
        .await
        .expect_err("the request is refused");
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument_and_unknown_models_not_found() {
    let (address, _state) = iris_server().await;
    let mut unknown = iris_request("x");
    unknown.model_name = "nope".into();
    let (code, message) = refusal(address, unknown).await;
    assert_eq!(code, Code::NotFound, "{message}");

    let mut bad_shape = iris_request("x");
    bad_shape.inputs[0].shape = vec![3, 5];
    let (code, message) = refusal(address, bad_shape).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.contains("needs 15 elements but contents hold 12"),
        "{message}"
    );

    let mut huge = iris_raw_request("x");
    huge.inputs[0].shape = vec![i64::MAX, i64::MAX];
    let (code, message) = refusal(address, huge).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("too large"), "{message}");

    let mut claims_more = iris_raw_request("x");
    claims_more.inputs[0].shape = vec![1_000_000, 4];
    let (code, message) = refusal(address, claims_more).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("binary data has 48 bytes"), "{message}");

    let mut negative = iris_request("x");
    negative.inputs[0].shape = vec![-3, 4];
    let (code, message) = refusal(address, negative).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("negative dimension"), "{message}");

    let mut both = iris_raw_request("x");
    both.inputs[0].contents = iris_request("x").inputs[0].contents.clone();
    let (code, message) = refusal(address, both).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("send every input one way"), "{message}");

    let mut dtype = iris_request("x");
    dtype.inputs[0].datatype = "FP99".into();
    let (code, message) = refusal(address, dtype).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("unknown datatype"), "{message}");

    let mut wrong_field = iris_request("x");
    wrong_field.inputs[0].datatype = "INT64".into();
    let (code, message) = refusal(address, wrong_field).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("contents hold"), "{message}");

    // After all of that the server still answers.
    client(address)
        .await
        .model_infer(iris_request("after"))
        .await
        .expect("still serving");
}

#[tokio::test]
async fn a_message_over_the_limit_is_resource_exhausted_before_it_is_read() {
    let (_, state) = app_with(vec![iris()], ServerConfig::default()).await;
    let mut options = GrpcOptions::for_state(&state);
    options.max_message_bytes = 1024;
    let address = serve(state, options).await;
    let mut client = client(address).await;
    let rows = vec![[1.0_f32; 4]; 100];
    let mut request = iris_raw_request("big");
    request.inputs = vec![iris_typed(&rows)];
    request.raw_input_contents.clear();
    let status = client
        .model_infer(request.clone())
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // On a stream the oversized request ends the stream with the same code.
    let mut answers = client
        .model_stream_infer(futures::stream::iter(vec![request]))
        .await
        .expect("the stream opens")
        .into_inner();
    let status = answers.message().await.expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    client
        .model_infer(iris_raw_request("small"))
        .await
        .expect("a small message still passes");
}

#[tokio::test]
async fn grpc_timeout_is_read_by_the_server_and_malformed_values_refused() {
    // (A deadline that passes is answered by the client's own timer first;
    // the parsing of every unit is a unit test.)
    let (address, _state) = iris_server().await;
    let mut client = client(address).await;
    let mut request = tonic::Request::new(iris_request("in-time"));
    request.set_timeout(std::time::Duration::from_secs(30));
    client
        .model_infer(request)
        .await
        .expect("well within its deadline");

    let mut request = tonic::Request::new(iris_request("malformed"));
    request
        .metadata_mut()
        .insert("grpc-timeout", "soon".parse().expect("value"));
    let status = client.model_infer(request).await.expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("grpc-timeout"), "{status:?}");
}

#[tokio::test]
async fn inference_metrics_carry_the_grpc_protocol_label() {
    let (address, state) = iris_server().await;
    client(address)
        .await
        .model_infer(iris_request("counted"))
        .await
        .expect("inference");
    let metrics = state.metrics.render();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("protocol=\"grpc\"") && l.contains("model=\"iris\"")),
        "no gRPC series in:\n{metrics}"
    );
}

#[tokio::test]
async fn a_stream_answers_every_request_in_order_and_outlives_a_bad_one() {
    let (address, _state) = iris_server().await;
    let mut client = client(address).await;
    const COUNT: usize = 300;
    const BAD: usize = 150;
    let requests: Vec<ModelInferRequest> = (0..COUNT)
        .map(|i| {
            let mut request = iris_raw_request(&format!("r{i}"));
            if i == BAD {
                request.inputs[0].shape = vec![2, 4];
            }
            request
        })
        .collect();
    let mut answers = client
        .model_stream_infer(futures::stream::iter(requests))
        .await
        .expect("the stream opens")
        .into_inner();
    let mut seen = 0;
    while let Some(answer) = answers.message().await.expect("a stream answer") {
        let response = answer
            .infer_response
            .expect("every answer names its request");
        assert_eq!(response.id, format!("r{seen}"));
        if seen == BAD {
            assert!(
                answer.error_message.contains("binary data has 48 bytes"),
                "{}",
                answer.error_message
            );
        } else {
            assert_eq!(answer.error_message, "");
            let label = response
                .outputs
                .iter()
                .position(|o| o.name == "label")
                .expect("label");
            assert_eq!(int64s(&response.raw_output_contents[label]), vec![0, 1, 2]);
        }
        seen += 1;
    }
    assert_eq!(seen, COUNT);
}

#[tokio::test]
async fn model_config_and_statistics_are_tritons() {
    use ferroserve_server::grpc::proto::{DataType, ModelConfigRequest, ModelStatisticsRequest};
    let (address, _state) = iris_server().await;
    let mut client = client(address).await;
    let config = client
        .model_config(ModelConfigRequest {
            name: "iris".into(),
            version: String::new(),
        })
        .await
        .expect("config")
        .into_inner()
        .config
        .expect("a config");
    assert_eq!(config.name, "iris");
    assert!(config.max_batch_size > 0, "{config:?}");
    assert_eq!(config.input[0].name, "input");
    assert_eq!(config.input[0].data_type, DataType::TypeFp32 as i32);
    assert_eq!(config.input[0].dims, vec![4]);

    client
        .model_infer(iris_request("counted"))
        .await
        .expect("inference");
    let stats = client
        .model_statistics(ModelStatisticsRequest {
            name: "iris".into(),
            version: String::new(),
        })
        .await
        .expect("statistics")
        .into_inner();
    let iris = &stats.model_stats[0];
    assert_eq!((iris.name.as_str(), iris.version.as_str()), ("iris", "1"));
    let success = iris
        .inference_stats
        .as_ref()
        .and_then(|s| s.success)
        .expect("success counts");
    assert_eq!(success.count, 1, "{iris:?}");
    assert!(success.ns > 0, "{iris:?}");
    let status = client
        .model_config(ModelConfigRequest {
            name: "nope".into(),
            version: String::new(),
        })
        .await
        .expect_err("unknown model");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}
