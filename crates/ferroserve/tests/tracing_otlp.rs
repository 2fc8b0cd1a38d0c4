//! OpenTelemetry traces end to end: the real server exports to an OTLP/gRPC
//! receiver started by the test (on the published OTLP protos), and a
//! request sent with a W3C `traceparent` comes back as the span tree
//! request → pipeline stages, with an engine batch span linked to it; the
//! answer names the request span, and JSON log lines carry the trace id.
//! A gRPC call with `traceparent` metadata makes the same tree.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::logged::Logged;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{json, Value};

/// The caller's trace and span, as its `traceparent` names them.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";
/// A second trace, for the request whose log line is read.
const LOGGED_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
/// A third, for the gRPC call.
const GRPC_TRACE_ID: &str = "5b8aa5a2d2c872e8321cf37308d69df2";

/// Every span the receiver was sent.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.0.lock().expect("spans").extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Received {
    fn spans(&self) -> Vec<Span> {
        self.0.lock().expect("spans").clone()
    }
}

/// Starts the OTLP receiver on a free port of `runtime`.
fn start_receiver(runtime: &tokio::runtime::Runtime) -> (SocketAddr, Received) {
    let received = Received::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a free port");
    let address = listener.local_addr().expect("bound");
    let service = TraceServiceServer::new(received.clone());
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (address, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn name_of(span: &Span) -> &str {
    span.name.as_str()
}

/// POSTs one iris row to `base` with `traceparent`; returns the status,
/// the answer's `traceparent` and its body.
fn infer(base: &str, model: &str, traceparent: &str) -> (u16, Option<String>, Value) {
    let answer = common::admin_client()
        .post(format!("{base}/v2/models/{model}/infer"))
        .header("traceparent", traceparent)
        .json(
            &json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                  "data": [5.1, 3.5, 1.4, 0.2]}]}),
        )
        .send()
        .expect("request is sent");
    let status = answer.status().as_u16();
    let traceparent = answer
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, traceparent, answer.json().unwrap_or(Value::Null))
}

/// Calls gRPC `ModelInfer` on `url` with one iris row and `traceparent`
/// metadata; returns the answer's `traceparent`.
fn infer_over_grpc(runtime: &tokio::runtime::Runtime, url: &str, traceparent: &str) -> String {
    let token = format!("Bearer {}", common::ADMIN_TOKEN);
    let metadata = [
        ("traceparent", traceparent),
        ("authorization", token.as_str()),
    ];
    let message = common::grpc::iris_row([5.1, 3.5, 1.4, 0.2], "");
    let answer =
        common::grpc::model_infer(runtime, url, message, &metadata).expect("the call succeeds");
    answer
        .metadata()
        .get("traceparent")
        .expect("the answer carries a traceparent")
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// The span id a `traceparent` names, after checking its trace.
fn span_of(traceparent: &str, trace_id: &str) -> String {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace_id, "01"));
    assert_ne!(parts[2], CALLER_SPAN_ID);
    parts[2].to_owned()
}

#[test]
fn a_traced_request_reaches_the_collector_as_request_stages_and_a_linked_batch() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (collector, received) = start_receiver(&runtime);
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("http://{collector}");
    // Spans wait in the exporter's buffer for a minute: only the flush at
    // shutdown can deliver them before the assertions below.
    let mut server = Logged::start_with_env(
        dir.path(),
        &[
            "--otlp-endpoint",
            &endpoint,
            "--log-format",
            "json",
            "--log-level",
            "info,ferroserve_serving=debug",
            "--drain-timeout-s",
            "5",
            "--grpc",
            "127.0.0.1:0",
        ],
        &[("OTEL_BSP_SCHEDULE_DELAY", "60000")],
    );
    common::wait_ready(&server.base);

    let (status, answered, body) = infer(
        &server.base,
        "iris",
        &format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"),
    );
    assert_eq!(status, 200, "{body}");
    let answered = answered.expect("the answer carries a traceparent");
    let request_span_id = span_of(&answered, TRACE_ID);
    let grpc_url = server.grpc.clone().expect("the server listens for gRPC");
    let grpc_answered = infer_over_grpc(
        &runtime,
        &grpc_url,
        &format!("00-{GRPC_TRACE_ID}-{CALLER_SPAN_ID}-01"),
    );
    let grpc_span_id = span_of(&grpc_answered, GRPC_TRACE_ID);

    // A request the pipeline refuses logs (at debug) inside its span: the
    // JSON line names the trace.
    let (status, _, _) = infer(
        &server.base,
        "no-such-model",
        &format!("00-{LOGGED_TRACE_ID}-{CALLER_SPAN_ID}-01"),
    );
    assert_eq!(status, 404);
    let line = server.wait_for_line("request rejected");
    let event: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["span"]["trace_id"], LOGGED_TRACE_ID, "{line}");

    server.signal_and_wait("TERM");
    let spans = wait_for_spans(&received, |spans| {
        [&request_span_id, &grpc_span_id]
            .iter()
            .all(|id| spans.iter().any(|s| &&hex(&s.span_id) == id))
            && spans
                .iter()
                .any(|s| name_of(s) == "engine batch" && !s.links.is_empty())
    });
    assert_request_tree(
        &spans,
        (TRACE_ID, &request_span_id),
        "POST /v2/models/{model}/infer",
        ("http", "200"),
    );
    assert_request_tree(
        &spans,
        (GRPC_TRACE_ID, &grpc_span_id),
        "grpc /inference.GRPCInferenceService/ModelInfer",
        ("grpc", "Ok"),
    );
}

/// Checks that the request span `span_id` of `trace_id` was received as
/// `name` with its `protocol` and `status` attributes, parented on the
/// caller's span, with every pipeline stage as its child and an engine
/// batch (a trace of its own) linked to it.
fn assert_request_tree(
    spans: &[Span],
    (trace_id, request_span_id): (&str, &str),
    name: &str,
    (protocol, status): (&str, &str),
) {
    let request = spans
        .iter()
        .find(|s| hex(&s.span_id) == request_span_id)
        .unwrap_or_else(|| panic!("no request span {request_span_id} in {spans:#?}"));
    assert_eq!(hex(&request.trace_id), trace_id);
    assert_eq!(hex(&request.parent_span_id), CALLER_SPAN_ID);
    assert_eq!(name_of(request), name);
    let attributes = string_attributes(request);
    assert_eq!(attributes.get("model").map(String::as_str), Some("iris"));
    assert_eq!(
        attributes.get("protocol").map(String::as_str),
        Some(protocol)
    );
    assert_eq!(attributes.get("status").map(String::as_str), Some(status));

    let stages: Vec<&str> = spans
        .iter()
        .filter(|s| hex(&s.parent_span_id) == request_span_id)
        .inspect(|s| assert_eq!(hex(&s.trace_id), trace_id))
        .map(name_of)
        .collect();
    for stage in ["route", "admit", "decode", "contract", "cache", "batch"] {
        assert!(stages.contains(&stage), "no {stage} stage in {stages:?}");
    }

    let batch = spans
        .iter()
        .find(|s| {
            name_of(s) == "engine batch"
                && s.links.iter().any(|link| {
                    hex(&link.trace_id) == trace_id && hex(&link.span_id) == request_span_id
                })
        })
        .unwrap_or_else(|| panic!("no engine batch linked to the request in {spans:#?}"));
    assert_ne!(
        hex(&batch.trace_id),
        trace_id,
        "a batch is a trace of its own"
    );
    assert!(batch.parent_span_id.is_empty());
    assert_eq!(
        string_attributes(batch).get("model").map(String::as_str),
        Some("iris")
    );
}

/// Waits (at most 30 s) until the spans received satisfy `done`.
fn wait_for_spans(received: &Received, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = received.spans();
        if done(&spans) || Instant::now() > until {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A span's attributes, each value as text.
fn string_attributes(span: &Span) -> HashMap<String, String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    span.attributes
        .iter()
        .filter_map(|kv| {
            let text = match kv.value.as_ref()?.value.as_ref()? {
                Any::StringValue(s) => s.clone(),
                Any::IntValue(i) => i.to_string(),
                Any::BoolValue(b) => b.to_string(),
                Any::DoubleValue(d) => d.to_string(),
                _ => return None,
            };
            Some((kv.key.clone(), text))
        })
        .collect()
}
