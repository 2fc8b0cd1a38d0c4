//! The hostile requests of the HTTP battery (claimed sizes, shapes,
//! datatypes, outputs, parameters, body size) sent to the real binary over
//! gRPC, unary and on a stream: each is refused with INVALID_ARGUMENT or
//! RESOURCE_EXHAUSTED saying what was wrong, and the server keeps answering.

mod common;

use common::grpc::{fp32_bytes, iris_raw, tensor};
use common::Server;
use ferroserve_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use ferroserve_server::grpc::proto::infer_parameter::ParameterChoice;
use ferroserve_server::grpc::proto::model_infer_request::InferRequestedOutputTensor;
use ferroserve_server::grpc::proto::{
    InferParameter, InferTensorContents, ModelInferRequest, ModelStreamInferResponse,
};
use tonic::transport::Channel;
use tonic::Code;

/// The largest request body (and gRPC message) the test server takes.
const LIMIT: usize = 4096;

type Client = GrpcInferenceServiceClient<Channel>;

/// One hostile request, the code it must get and a part of its message.
struct Case {
    what: &'static str,
    request: ModelInferRequest,
    code: Code,
    says: &'static str,
}

fn start() -> Server {
    let limit = LIMIT.to_string();
    Server::start(&[
        "--grpc",
        "127.0.0.1:0",
        "--max-body-bytes",
        &limit,
        "--model",
        "iris=examples/iris/model.onnx",
        "--model",
        "string_label=testdata/models/string_label.onnx",
    ])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a tokio runtime")
}

async fn connect(server: &Server) -> Client {
    let url = server.grpc.clone().expect("the server listens for gRPC");
    GrpcInferenceServiceClient::connect(url)
        .await
        .expect("the gRPC server accepts connections")
}

/// An iris request with one input given as typed contents.
fn iris_typed(shape: &[i64], contents: InferTensorContents) -> ModelInferRequest {
    let mut input = tensor("input", "FP32", shape);
    input.contents = Some(contents);
    ModelInferRequest {
        model_name: "iris".into(),
        inputs: vec![input],
        ..Default::default()
    }
}

fn fp32(values: Vec<f32>) -> InferTensorContents {
    InferTensorContents {
        fp32_contents: values,
        ..Default::default()
    }
}

/// A well-formed single-row iris request.
fn good() -> ModelInferRequest {
    iris_raw("FP32", &[1, 4], fp32_bytes(&[6.3, 3.3, 6.0, 2.5]))
}

fn with_outputs(names: &[&str]) -> ModelInferRequest {
    let mut request = good();
    request.outputs = names
        .iter()
        .map(|name| InferRequestedOutputTensor {
            name: (*name).into(),
            ..Default::default()
        })
        .collect();
    request
}

/// A string_label request whose one BYTES input is `raw`.
fn strings_raw(shape: &[i64], raw: Vec<u8>) -> ModelInferRequest {
    ModelInferRequest {
        model_name: "string_label".into(),
        inputs: vec![tensor("text", "BYTES", shape)],
        raw_input_contents: vec![raw.into()],
        ..Default::default()
    }
}

fn claimed_sizes() -> Vec<Case> {
    let huge = [10_000_000_000_000_000];
    vec![
        Case {
            what: "a raw shape of 10^16 elements",
            request: iris_raw("FP32", &huge, Vec::new()),
            code: Code::InvalidArgument,
            says: "10000000000000000 FP32 elements",
        },
        Case {
            what: "a typed shape of 10^16 elements",
            request: iris_typed(&huge, fp32(Vec::new())),
            code: Code::InvalidArgument,
            says: "needs 10000000000000000 elements",
        },
        Case {
            what: "a zero-row shape whose rows overflow",
            request: iris_raw("FP32", &[0, 8_589_934_592, 8_589_934_592], Vec::new()),
            code: Code::InvalidArgument,
            says: "too large",
        },
        Case {
            what: "a negative dimension",
            request: iris_raw("FP32", &[-1, 4], fp32_bytes(&[1.0; 4])),
            code: Code::InvalidArgument,
            says: "input 'input'",
        },
        Case {
            what: "raw bytes short of the shape",
            request: iris_raw("FP32", &[1, 4], vec![0; 15]),
            code: Code::InvalidArgument,
            says: "input 'input'",
        },
        Case {
            what: "raw bytes beyond the shape",
            request: iris_raw("FP32", &[1, 4], vec![0; 17]),
            code: Code::InvalidArgument,
            says: "input 'input'",
        },
        Case {
            what: "typed contents short of the shape",
            request: iris_typed(&[2, 4], fp32(vec![1.0; 4])),
            code: Code::InvalidArgument,
            says: "input 'input'",
        },
        Case {
            what: "a BYTES element claiming 4 GiB",
            request: strings_raw(
                &[1, 1],
                [u32::MAX.to_le_bytes().as_slice(), b"cat"].concat(),
            ),
            code: Code::InvalidArgument,
            says: "input 'text'",
        },
        Case {
            what: "a BYTES length prefix cut short",
            request: strings_raw(&[1, 1], vec![3, 0, 0]),
            code: Code::InvalidArgument,
            says: "input 'text'",
        },
        Case {
            what: "fewer BYTES elements than the shape",
            request: strings_raw(&[2, 1], [3u32.to_le_bytes().as_slice(), b"cat"].concat()),
            code: Code::InvalidArgument,
            says: "input 'text'",
        },
    ]
}

fn contents_and_raw() -> Vec<Case> {
    let mut both = good();
    both.inputs[0].contents = Some(fp32(vec![1.0; 4]));
    let mut two_raw = good();
    two_raw
        .raw_input_contents
        .push(fp32_bytes(&[1.0; 4]).into());
    let wrong_field = iris_typed(
        &[1, 4],
        InferTensorContents {
            int64_contents: vec![1; 4],
            ..Default::default()
        },
    );
    vec![
        Case {
            what: "typed contents and raw contents at once",
            request: both,
            code: Code::InvalidArgument,
            says: "input 'input'",
        },
        Case {
            what: "more raw contents than inputs",
            request: two_raw,
            code: Code::InvalidArgument,
            says: "raw",
        },
        Case {
            what: "FP32 values in int64_contents",
            request: wrong_field,
            code: Code::InvalidArgument,
            says: "input 'input'",
        },
    ]
}

fn signature_and_parameters() -> Vec<Case> {
    let mut timeout = good();
    timeout.parameters.insert(
        "timeout".into(),
        InferParameter {
            parameter_choice: Some(ParameterChoice::Int64Param(0)),
        },
    );
    let mut unknown_input = good();
    unknown_input.inputs[0].name = "x".into();
    vec![
        Case {
            what: "a shape of the wrong width",
            request: iris_raw("FP32", &[1, 3], fp32_bytes(&[1.0; 3])),
            code: Code::InvalidArgument,
            says: "input 'input': expected shape [-1, 4] but got [1, 3]",
        },
        Case {
            what: "the wrong datatype",
            request: iris_raw("FP64", &[1, 4], vec![0; 32]),
            code: Code::InvalidArgument,
            says: "input 'input': expected datatype FP32 but got FP64",
        },
        Case {
            what: "an unknown datatype",
            request: iris_raw("FP128", &[1, 4], vec![0; 64]),
            code: Code::InvalidArgument,
            says: "FP128",
        },
        Case {
            what: "an unknown input",
            request: unknown_input,
            code: Code::InvalidArgument,
            says: "unexpected input 'x'",
        },
        Case {
            what: "an unknown output",
            request: with_outputs(&["nope"]),
            code: Code::InvalidArgument,
            says: "unknown output 'nope'",
        },
        Case {
            what: "an output named twice",
            request: with_outputs(&["probabilities", "label", "probabilities"]),
            code: Code::InvalidArgument,
            says: "output 'probabilities' is requested more than once",
        },
        Case {
            what: "a timeout under a millisecond",
            request: timeout,
            code: Code::InvalidArgument,
            says: "timeout must be at least 1000 microseconds",
        },
    ]
}

/// A well-formed request whose rows make it bigger than [`LIMIT`].
fn oversized() -> ModelInferRequest {
    let rows = LIMIT / 16 + 1;
    iris_raw("FP32", &[rows as i64, 4], fp32_bytes(&vec![1.0; rows * 4]))
}

fn all_cases() -> Vec<Case> {
    let mut cases = claimed_sizes();
    cases.extend(contents_and_raw());
    cases.extend(signature_and_parameters());
    cases
}

async fn still_answers(client: &mut Client, after: &str) {
    let answer = client
        .model_infer(good())
        .await
        .unwrap_or_else(|s| panic!("after {after}: a good request failed: {s:?}"))
        .into_inner();
    let label = answer
        .outputs
        .iter()
        .position(|o| o.name == "label")
        .unwrap_or_else(|| panic!("after {after}: no label in {answer:?}"));
    let raw = &answer.raw_output_contents[label];
    assert_eq!(raw.as_ref(), 2i64.to_le_bytes(), "after {after}");
}

#[test]
fn hostile_unary_requests_are_refused_with_the_right_code() {
    // Started before the runtime: the server helper blocks while it waits.
    let mut server = start();
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let mut wrong = Vec::new();
        for case in all_cases() {
            match client.model_infer(case.request).await {
                Ok(_) => wrong.push(format!("{} was accepted", case.what)),
                Err(status)
                    if status.code() != case.code || !status.message().contains(case.says) =>
                {
                    wrong.push(format!(
                        "{}: expected {:?} {:?}, got {status:?}",
                        case.what, case.code, case.says
                    ));
                }
                Err(_) => {}
            }
            still_answers(&mut client, case.what).await;
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let status = client
            .model_infer(oversized())
            .await
            .expect_err("an oversized message was accepted");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        still_answers(&mut client, "an oversized message").await;
        assert!(
            server.child.try_wait().expect("status").is_none(),
            "the server exited"
        );
    });
}

/// One request at a time on one stream: sends `request` and reads its answer.
async fn exchange(
    requests: &tokio::sync::mpsc::Sender<ModelInferRequest>,
    answers: &mut tonic::Streaming<ModelStreamInferResponse>,
    request: ModelInferRequest,
    what: &str,
) -> ModelStreamInferResponse {
    requests
        .send(request)
        .await
        .expect("the stream takes requests");
    answers
        .message()
        .await
        .unwrap_or_else(|s| panic!("{what}: the stream ended with {s:?}"))
        .unwrap_or_else(|| panic!("{what}: the stream closed"))
}

#[test]
fn hostile_requests_on_a_stream_get_error_answers_and_the_stream_goes_on() {
    // Started before the runtime: the server helper blocks while it waits.
    let mut server = start();
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let (requests, queued) = tokio::sync::mpsc::channel(1);
        let outgoing = futures::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|request| (request, queued))
        });
        requests.send(good()).await.expect("queued");
        let mut answers = client
            .model_stream_infer(outgoing)
            .await
            .expect("the stream opens")
            .into_inner();
        let first = answers.message().await.expect("an answer").expect("open");
        assert_eq!(first.error_message, "", "a good first request failed");
        for case in all_cases() {
            let answer = exchange(&requests, &mut answers, case.request, case.what).await;
            assert!(
                answer.error_message.contains(case.says),
                "{}: expected {:?} in {:?}",
                case.what,
                case.says,
                answer.error_message
            );
            let mut next = good();
            next.id = "good".into();
            let answer = exchange(&requests, &mut answers, next, case.what).await;
            assert_eq!(answer.error_message, "", "after {}", case.what);
            let infer = answer.infer_response.expect("an inference answer");
            assert_eq!(infer.id, "good", "after {}", case.what);
        }
        drop(requests);

        let oversized = client
            .model_stream_infer(futures::stream::iter([oversized()]))
            .await;
        let status = match oversized {
            Err(status) => status,
            Ok(answers) => answers
                .into_inner()
                .message()
                .await
                .expect_err("an oversized message on a stream was accepted"),
        };
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        still_answers(&mut client, "an oversized message on a stream").await;
        assert!(
            server.child.try_wait().expect("status").is_none(),
            "the server exited"
        );
    });
}
