//! End-to-end tests of the protections on the real binary: the circuit
//! breaker driven by injected faults (opens, each fallback kind, half-open,
//! closes), fault injection refused unless enabled, and a load run at about
//! twice the sustainable rate (sheds with 429, admitted requests meet their
//! deadlines, memory stays bounded), and idempotency keys on the real route.

mod common;

use std::path::Path;
use std::time::Duration;

use common::grpc::iris_row;
use common::{repo_root, Server};
use serde_json::{json, Value};

/// Breaker settings small enough for a test: judge after 4 requests, stay
/// open 1.5 s, close after 2 good probes.
const BREAKER: &str = "[breaker]\nmin_requests = 4\nfailure_rate = 0.5\nopen_ms = 1500\nhalf_open_probes = 2\nconsecutive_timeouts = 3\n";
const OPEN: Duration = Duration::from_millis(1600);

fn iris_request() -> Value {
    json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
        "data": [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]}]})
}

/// A model repository with copies of the iris example under `models`:
/// `(name, versions, config.toml)`.
fn repository(dir: &Path, models: &[(&str, &[u32], String)]) {
    let iris = repo_root().join("examples/iris/model.onnx");
    for (name, versions, config) in models {
        for version in *versions {
            let folder = dir.join(name).join(version.to_string());
            std::fs::create_dir_all(&folder).expect("mkdir");
            std::fs::copy(&iris, folder.join("model.onnx")).expect("copy model");
        }
        std::fs::write(dir.join(name).join("config.toml"), config).expect("write config");
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn send(
    client: &reqwest::blocking::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().expect("request is sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

struct Drill<'a> {
    server: &'a Server,
    client: reqwest::blocking::Client,
}

/// A server on the repository at `repo` that allows fault injection.
fn drill_server(repo: &Path) -> Server {
    let repo = repo.to_str().expect("utf-8 path");
    Server::start(&[
        "--model-repository",
        repo,
        "--enable-fault-injection",
        "--no-example",
    ])
}

impl<'a> Drill<'a> {
    fn new(server: &'a Server) -> Self {
        Drill {
            server,
            client: common::admin_client(),
        }
    }

    fn infer(&self, model: &str, headers: &[(&str, &str)]) -> Reply {
        let url = format!("{}/v2/models/{model}/infer", self.server.base);
        send(
            &self.client,
            reqwest::Method::POST,
            &url,
            Some(&iris_request()),
            headers,
        )
    }

    fn faults(&self, model: &str, version: u32, spec: Option<Value>) -> Reply {
        let url = format!(
            "{}/api/v1/models/{model}/versions/{version}/faults",
            self.server.base
        );
        match spec {
            Some(spec) => send(&self.client, reqwest::Method::PUT, &url, Some(&spec), &[]),
            None => send(&self.client, reqwest::Method::DELETE, &url, None, &[]),
        }
    }

    fn breaker(&self, model: &str, version: &str) -> String {
        let url = format!("{}/api/v1/models/{model}/serving", self.server.base);
        let status = send(&self.client, reqwest::Method::GET, &url, None, &[]).body;
        let versions = status["versions"].as_array().cloned().unwrap_or_default();
        versions
            .iter()
            .find(|v| v["version"] == version)
            .and_then(|v| v["breaker"].as_str())
            .unwrap_or_else(|| panic!("no breaker state for {model} v{version} in {status}"))
            .to_string()
    }

    /// Makes every batch of `model` v`version` fail, then sends requests
    /// until the breaker opens (at least 4 requests, half of them failed).
    fn break_model(&self, model: &str, version: u32) {
        let set = self.faults(model, version, Some(json!({"error_rate": 1.0})));
        assert_eq!(set.status, 200, "{}", set.body);
        for _ in 0..4 {
            let reply = self.infer(model, &[]);
            assert_eq!(reply.status, 500, "injected failure: {}", reply.body);
            assert!(reply.body["error"]
                .as_str()
                .unwrap_or("")
                .contains("injected fault"));
            if self.breaker(model, &version.to_string()) == "open" {
                return;
            }
        }
        panic!("the breaker of {model} v{version} did not open after 4 failures");
    }
}

#[test]
fn breaker_opens_serves_each_fallback_half_opens_and_closes() {
    let repo = tempfile::tempdir().expect("tempdir");
    let static_fallback = "[[fallback]]\nkind = \"static\"\noutputs = { label = -1, probabilities = [0.0, 0.0, 0.0] }\n";
    repository(
        repo.path(),
        &[
            ("by_cache", &[1], format!("{BREAKER}[[fallback]]\nkind = \"cache\"\n")),
            (
                "by_version",
                &[1, 2],
                format!("version_policy = {{ all = true }}\n{BREAKER}[[fallback]]\nkind = \"version\"\nversion = \"previous\"\n"),
            ),
            ("by_static", &[1], format!("{BREAKER}{static_fallback}")),
            ("no_fallback", &[1], BREAKER.to_string()),
        ],
    );
    let server = drill_server(repo.path());
    let drill = Drill::new(&server);

    // Cache: an answer computed while healthy is served while broken.
    let healthy = drill.infer("by_cache", &[]);
    assert_eq!(healthy.status, 200);
    assert_eq!(healthy.header("x-ferroserve-cache"), None, "caching is off");
    drill.break_model("by_cache", 1);
    let cached = drill.infer("by_cache", &[]);
    assert_eq!(cached.status, 200, "{}", cached.body);
    assert_eq!(cached.header("x-ferroserve-fallback"), Some("cache"));
    assert_eq!(cached.body["outputs"], healthy.body["outputs"]);

    // Another version: v2 serves by default and breaks; v1 answers.
    assert_eq!(drill.infer("by_version", &[]).body["model_version"], "2");
    drill.break_model("by_version", 2);
    let previous = drill.infer("by_version", &[]);
    assert_eq!(previous.status, 200, "{}", previous.body);
    assert_eq!(previous.header("x-ferroserve-fallback"), Some("version=1"));
    assert_eq!(previous.body["model_version"], "1");

    // Static default, one row per request row.
    drill.break_model("by_static", 1);
    let fixed = drill.infer("by_static", &[]);
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    assert_eq!(fixed.header("x-ferroserve-fallback"), Some("static"));
    assert_eq!(fixed.body["outputs"][0]["data"], json!([-1, -1]));
    assert_eq!(fixed.body["outputs"][1]["shape"], json!([2, 3]));
    // The static answer repeats only rows the model would accept: a
    // zero-element input claiming 10^15 rows, or an output named twice,
    // is refused as the model would refuse it, and the server lives on.
    let url = format!("{}/v2/models/by_static/infer", server.base);
    let huge_rows = json!({"inputs": [{"name": "input", "shape": [1_000_000_000_000_000u64, 0],
        "datatype": "FP32", "data": []}]});
    let refused = send(
        &drill.client,
        reqwest::Method::POST,
        &url,
        Some(&huge_rows),
        &[],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("expected shape [-1, 4] but got [1000000000000000, 0]"),
        "{}",
        refused.body
    );
    let mut twice = iris_request();
    twice["outputs"] = json!([{"name": "label"}, {"name": "label"}]);
    let refused = send(
        &drill.client,
        reqwest::Method::POST,
        &url,
        Some(&twice),
        &[],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.body["error"],
        "output 'label' is requested more than once"
    );
    assert_eq!(
        drill
            .infer("by_static", &[])
            .header("x-ferroserve-fallback"),
        Some("static")
    );

    // No fallback: 503 with Retry-After, and the state is in /metrics.
    drill.break_model("no_fallback", 1);
    let refused = drill.infer("no_fallback", &[]);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert!(refused.body["error"]
        .as_str()
        .unwrap_or("")
        .contains("circuit breaker is open"));
    server.wait_for_metric("ferroserve_breaker_state{model=\"no_fallback\",version=\"1\"} 1");

    // Half-open with the fault still there: the probe fails, open again.
    std::thread::sleep(OPEN);
    let probe = drill.infer("by_static", &[]);
    assert_eq!(probe.status, 500, "the probe reaches the broken model");
    assert_eq!(drill.breaker("by_static", "1"), "open");
    assert_eq!(
        drill
            .infer("by_static", &[])
            .header("x-ferroserve-fallback"),
        Some("static")
    );

    // Healed: after the cool-down two good probes close every breaker.
    for model in ["by_cache", "by_static", "no_fallback"] {
        assert_eq!(drill.faults(model, 1, None).status, 200);
    }
    assert_eq!(drill.faults("by_version", 2, None).status, 200);
    std::thread::sleep(OPEN);
    for (model, version) in [
        ("by_cache", "1"),
        ("by_version", "2"),
        ("by_static", "1"),
        ("no_fallback", "1"),
    ] {
        let first = drill.infer(model, &[]);
        assert_eq!(first.status, 200, "{model}: {}", first.body);
        assert_eq!(first.header("x-ferroserve-fallback"), None, "{model}");
        assert_eq!(drill.breaker(model, version), "half_open", "{model}");
        assert_eq!(drill.infer(model, &[]).status, 200);
        assert_eq!(drill.breaker(model, version), "closed", "{model}");
    }
    assert_eq!(drill.infer("by_version", &[]).body["model_version"], "2");
}

#[test]
fn consecutive_timeouts_open_the_breaker_and_faults_need_the_flag() {
    let repo = tempfile::tempdir().expect("tempdir");
    repository(repo.path(), &[("slow", &[1], BREAKER.to_string())]);
    // The server's own deadline: only a deadline the server set counts as
    // the model's timeout.
    let server = Server::start(&[
        "--model-repository",
        repo.path().to_str().expect("utf-8 path"),
        "--enable-fault-injection",
        "--no-example",
        "--request-timeout-ms",
        "50",
    ]);
    let drill = Drill::new(&server);
    let bad = drill.faults("slow", 1, Some(json!({"error_rate": 2})));
    assert_eq!(bad.status, 400);
    assert!(bad.body["error"]
        .as_str()
        .unwrap_or("")
        .contains("error_rate"));
    // Through the CLI, as an operator would.
    let set = cli(&[
        "--url",
        &server.base,
        "faults",
        "slow",
        "1",
        "--latency-ms",
        "300",
    ]);
    assert!(set.contains("faults on slow v1 now"), "{set}");
    assert!(set.contains("\"fixed\""), "{set}");
    for _ in 0..3 {
        let reply = drill.infer("slow", &[]);
        assert_eq!(reply.status, 504, "{}", reply.body);
    }
    assert_eq!(drill.breaker("slow", "1"), "open");
    assert_eq!(drill.infer("slow", &[]).status, 503);
    let cleared = cli(&["--url", &server.base, "faults", "slow", "1", "--clear"]);
    assert!(
        cleared.contains("cleared the faults of slow v1"),
        "{cleared}"
    );
    let shown = cli(&["--url", &server.base, "faults", "slow", "1"]);
    assert!(shown.contains("no faults on slow v1"), "{shown}");

    let plain = Server::start(&["--no-example", "--model", "iris=examples/iris/model.onnx"]);
    let drill = Drill::new(&plain);
    let refused = drill.faults("iris", 1, Some(json!({"error_rate": 0.5})));
    assert_eq!(refused.status, 409);
    assert!(refused.body["error"]
        .as_str()
        .unwrap_or("")
        .contains("--enable-fault-injection"));
}

#[test]
fn client_chosen_deadlines_never_open_the_breaker() {
    let repo = tempfile::tempdir().expect("tempdir");
    repository(repo.path(), &[("slow", &[1], BREAKER.to_string())]);
    let server = drill_server(repo.path());
    let drill = Drill::new(&server);
    let slow = json!({"latency": {"distribution": "fixed", "ms": 100}});
    assert_eq!(drill.faults("slow", 1, Some(slow)).status, 200);
    // Twice `consecutive_timeouts`, each a deadline the client shortened.
    for _ in 0..6 {
        let reply = drill.infer("slow", &[("x-request-timeout-ms", "1")]);
        assert_eq!(reply.status, 504, "{}", reply.body);
        let zero = drill.infer("slow", &[("x-request-timeout-ms", "0")]);
        assert_eq!(zero.status, 400, "{}", zero.body);
        assert!(
            zero.body["error"]
                .as_str()
                .unwrap_or("")
                .contains("x-request-timeout-ms must be at least 1 millisecond"),
            "{}",
            zero.body
        );
    }
    assert_eq!(drill.breaker("slow", "1"), "closed");
    assert_eq!(drill.faults("slow", 1, None).status, 200);
    let normal = drill.infer("slow", &[]);
    assert_eq!(normal.status, 200, "{}", normal.body);
    assert_eq!(normal.header("x-ferroserve-fallback"), None);
    assert_eq!(drill.breaker("slow", "1"), "closed");
}

/// Runs `ferroserve models ARGS` and returns its standard output.
fn cli(args: &[&str]) -> String {
    let output = std::process::Command::new(common::BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .arg("models")
        .args(args)
        .output()
        .expect("ferroserve runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "models {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

#[test]
fn twice_the_sustainable_rate_is_shed_fast_and_admitted_requests_meet_deadlines() {
    // One row per batch and 10 ms per batch: about 100 requests/s at most.
    let server = Server::start(&[
        "--no-example",
        "--model",
        "iris=examples/iris/model.onnx",
        "--enable-fault-injection",
        "--max-batch-size",
        "1",
        "--max-queue-size",
        "4",
        "--max-concurrent-requests",
        "64",
    ]);
    let drill = Drill::new(&server);
    let slow = json!({"latency": {"distribution": "fixed", "ms": 10}});
    assert_eq!(drill.faults("iris", 1, Some(slow)).status, 200);
    let pid = server.child.id();
    let rss_before = rss_kib(pid);

    let deadline = Duration::from_millis(1000);
    let url = format!("{}/v2/models/iris/infer", server.base);
    let body = serde_json::to_vec(
        &json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
            "data": [[5.1, 3.5, 1.4, 0.2]]}]}),
    )
    .expect("json");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Open loop at 200 requests/s for 4 s: arrivals do not wait for answers.
    // Each outcome is the status and whether it carries Retry-After.
    let outcomes: Vec<(u16, bool)> = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        for _ in 0..800 {
            tick.tick().await;
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-request-timeout-ms", deadline.as_millis().to_string())
                    .body(body)
                    .send()
                    .await
                    .map(|r| (r.status().as_u16(), r.headers().contains_key("retry-after")))
                    .unwrap_or((0, false))
            }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        outcomes
    });

    // The server answers 504 to an admitted request whose deadline passes
    // before its batch answers: only 200s mean every admitted request met
    // its deadline, whatever the load on the machine.
    let (mut served_n, mut shed_n) = (0u32, 0u32);
    for &(status, retry_after) in &outcomes {
        match status {
            200 => served_n += 1,
            429 => {
                assert!(retry_after, "a refusal under overload says when to retry");
                shed_n += 1;
            }
            other => panic!("only 200 or 429 expected under overload, got {other}"),
        }
    }
    eprintln!("overload: {served_n} served, {shed_n} shed");
    assert!(shed_n > 0, "twice the capacity must shed");
    assert!(served_n > 0, "the server keeps serving under overload");
    // Shed fast: every refusal was made on arrival, by the full queue or
    // the concurrency limit, never after waiting in the queue.
    let refused_on_arrival = server.metric_sum(
        "ferroserve_requests_dropped_total",
        &["model=\"iris\"", "reason=\"queue_full\""],
    ) + server.metric_sum("ferroserve_concurrency_refused_total", &[]);
    assert_eq!(
        refused_on_arrival,
        f64::from(shed_n),
        "every 429 is a refusal on arrival"
    );
    let dropped_late = server.metric_sum(
        "ferroserve_requests_dropped_total",
        &["model=\"iris\"", "reason=\"deadline\""],
    );
    assert_eq!(
        dropped_late, 0.0,
        "no admitted request outlived its deadline"
    );
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 100 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    // Still up and serving once the load is gone.
    assert_eq!(drill.faults("iris", 1, None).status, 200);
    assert_eq!(drill.infer("iris", &[]).status, 200);
}

#[test]
fn an_idempotency_key_runs_a_request_once_through_the_real_route() {
    let server = Server::start(&["--no-example", "--model", "iris=examples/iris/model.onnx"]);
    let drill = Drill::new(&server);
    let key = [("idempotency-key", "order-42")];
    let first = drill.infer("iris", &key);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = drill.infer("iris", &key);
    assert_eq!(again.status, 200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_ne!(
        again.header("x-request-id"),
        first.header("x-request-id"),
        "a replay keeps its own request id"
    );
    let url = format!("{}/v2/models/iris/infer", server.base);
    let other_body = json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
        "data": [[6.3, 3.3, 6.0, 2.5]]}]});
    let reused = send(
        &drill.client,
        reqwest::Method::POST,
        &url,
        Some(&other_body),
        &key,
    );
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert!(reused.body["error"]
        .as_str()
        .unwrap_or("")
        .contains("order-42"));
    let bad = drill.infer("iris", &[("idempotency-key", "has space")]);
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// The gRPC answer to `message` with `metadata`: the outputs' raw bytes
/// and whether it was a replay, or the refusal.
fn grpc_infer(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    message: ferroserve_server::grpc::proto::ModelInferRequest,
    metadata: &[(&'static str, &str)],
) -> Result<(Vec<Vec<u8>>, bool), tonic::Status> {
    let answer = common::grpc::model_infer(runtime, url, message, metadata)?;
    let replayed = answer.metadata().get("idempotent-replayed").is_some();
    let raw = answer.into_inner().raw_output_contents;
    Ok((raw.into_iter().map(|b| b.to_vec()).collect(), replayed))
}

#[test]
fn an_idempotency_key_runs_a_grpc_call_once() {
    let server = Server::start(&[
        "--no-example",
        "--model",
        "iris=examples/iris/model.onnx",
        "--grpc",
        "127.0.0.1:0",
        "--idempotency-request-id",
    ]);
    let url = server.grpc.clone().expect("the server listens for gRPC");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let token = format!("Bearer {}", common::ADMIN_TOKEN);
    let keyed = [
        ("authorization", token.as_str()),
        ("idempotency-key", "grpc-order-7"),
    ];
    let row = [5.1, 3.5, 1.4, 0.2];
    let served = || server.metric_sum("ferroserve_requests_total", &["protocol=\"grpc\""]);

    let (first, replayed) = grpc_infer(&runtime, &url, iris_row(row, ""), &keyed).expect("first");
    assert!(!replayed);
    let after_first = served();
    let (again, replayed) = grpc_infer(&runtime, &url, iris_row(row, ""), &keyed).expect("again");
    assert!(replayed, "the retry is a replay");
    assert_eq!(again, first);
    assert_eq!(served(), after_first, "a replay never reaches the pipeline");

    let other = grpc_infer(&runtime, &url, iris_row([6.3, 3.3, 6.0, 2.5], ""), &keyed)
        .expect_err("the same key with another message");
    assert_eq!(other.code(), tonic::Code::InvalidArgument, "{other:?}");
    assert!(other.message().contains("grpc-order-7"), "{other:?}");

    let bad = [
        ("authorization", token.as_str()),
        ("idempotency-key", "has space"),
    ];
    let refused = grpc_infer(&runtime, &url, iris_row(row, ""), &bad).expect_err("a bad key");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    // A refusal of the request itself is kept too.
    let mut bad_shape = iris_row(row, "");
    bad_shape.inputs[0].shape = vec![2, 4];
    let kept = [
        ("authorization", token.as_str()),
        ("idempotency-key", "grpc-order-8"),
    ];
    let first = grpc_infer(&runtime, &url, bad_shape.clone(), &kept).expect_err("bad shape");
    let again = grpc_infer(&runtime, &url, bad_shape, &kept).expect_err("bad shape again");
    assert_eq!(
        (first.code(), first.message()),
        (again.code(), again.message())
    );

    // With request ids as keys, a call without a key has its own id as
    // one.
    let plain = [("authorization", token.as_str())];
    let (by_id, replayed) =
        grpc_infer(&runtime, &url, iris_row(row, "id-1"), &plain).expect("by id");
    assert!(!replayed);
    let (by_id_again, replayed) =
        grpc_infer(&runtime, &url, iris_row(row, "id-1"), &plain).expect("by id again");
    assert!(replayed);
    assert_eq!(by_id_again, by_id);
}
