//! End-to-end tests of the real binary on a free port: the bundled example
//! out of the box, `tritonclient.http` and `tritonclient.grpc` unmodified,
//! the `predict` client, a model repository, and graceful shutdown on
//! SIGTERM.

mod common;

use std::path::Path;
use std::process::Command;

use common::{post, repo_root, Server, BIN};
use serde_json::{json, Value};

fn iris_request() -> Value {
    json!({"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32",
        "data": [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]}]})
}

#[test]
fn iris_is_served_out_of_the_box() {
    let server = Server::start(&[]);
    let (status, v) = post(
        &format!("{}/v2/models/iris/infer", server.base),
        &iris_request(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outputs"][0]["name"], "label");
    assert_eq!(v["outputs"][0]["data"], json!([0, 1, 2]));
}

#[test]
fn tritonclient_http_works_unmodified() {
    let server = Server::start(&[]);
    common::python_check::run("triton_client_check.py", [server.host_port()]);
}

#[test]
fn tritonclient_grpc_works_unmodified() {
    let python = common::dependency::require(
        Some(repo_root().join(".venv/bin/python")).filter(|p| p.exists()),
        "the repository's Python environment with tritonclient[grpc] (.venv/bin/python)",
        "run scripts/python-env.sh test",
    );
    let server = Server::start(&["--grpc", "127.0.0.1:0"]);
    let out = Command::new(&python)
        .arg(repo_root().join("tests/python/triton_grpc_check.py"))
        .arg(server.grpc_host_port())
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "triton gRPC client check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn predict_subcommand_prints_the_answer() {
    let server = Server::start(&[]);
    let out = Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args([
            "predict",
            "--url",
            &server.base,
            "--model",
            "iris",
            "--data",
            "[[6.3, 3.3, 6.0, 2.5]]",
        ])
        .output()
        .expect("predict runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["outputs"][0]["data"], json!([2]));

    let out = Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args([
            "predict",
            "--url",
            &server.base,
            "--model",
            "nope",
            "--data",
            "[[1]]",
        ])
        .output()
        .expect("predict runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model 'nope'"));
}

fn copy_iris(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::copy(
        repo_root().join("examples/iris/model.onnx"),
        to.join("model.onnx"),
    )
    .expect("copy");
}

#[test]
fn model_repository_serves_versions_by_policy() {
    let repo = tempfile::tempdir().expect("tempdir");
    copy_iris(&repo.path().join("flowers/1"));
    copy_iris(&repo.path().join("flowers/2"));
    std::fs::write(
        repo.path().join("flowers/config.toml"),
        "engine = \"tract\"\nversion_policy = { all = true }\n[batching]\nmax_batch_size = 8\n",
    )
    .expect("write config");
    let server = Server::start(&[
        "--no-example",
        "--model-repository",
        repo.path().to_str().expect("utf-8 path"),
    ]);
    let (status, v) = post(
        &format!("{}/v2/models/flowers/infer", server.base),
        &iris_request(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model_version"], "2");
    let (_, v) = post(
        &format!("{}/v2/models/flowers/versions/1/infer", server.base),
        &iris_request(),
    );
    assert_eq!(v["model_version"], "1");
    assert_eq!(v["outputs"][0]["data"], json!([0, 1, 2]));
    let meta: Value = common::admin_client()
        .get(format!("{}/v2/models/flowers", server.base))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(meta["platform"], "tract_onnx");
    let (status, _) = post(
        &format!("{}/v2/models/iris/infer", server.base),
        &iris_request(),
    );
    assert_eq!(status, 404, "--no-example leaves iris out");
}

#[test]
fn bad_configuration_fails_at_start_with_a_clear_message() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = common::serve_command(data.path(), &["--model", "x=/does/not/exist.onnx"])
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/does/not/exist.onnx does not exist"),
        "{stderr}"
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    // A long queue delay keeps a lone request waiting in the queue.
    let mut server = Server::start(&["--max-queue-delay-us", "2000000"]);
    let url = format!("{}/v2/models/iris/infer", server.base);
    let in_flight = std::thread::spawn(move || post(&url, &iris_request()));
    // The request's three rows are waiting in the queue.
    server.wait_for_metric("ferroserve_queue_depth{model=\"iris\",version=\"1\"} 3");
    server.signal("TERM");
    let (status, v) = in_flight.join().expect("request thread");
    assert_eq!(status, 200, "in-flight request must complete: {v}");
    let exit = server.child.wait().expect("server exits");
    assert!(exit.success(), "exit status {exit}");
}
