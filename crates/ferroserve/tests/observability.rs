//! End-to-end tests of what an operator reads: log lines (format, no Rust
//! `Debug` text, no colours off a terminal), `/metrics` help texts, error
//! answers, numbers echoed in messages, the example config file, and a
//! model file hiding a registry model of the same name.

mod common;

use std::time::{Duration, Instant};

use common::logged::Logged;
use common::{post, repo_root, Server};
use serde_json::{json, Value};

#[test]
fn json_logs_carry_plain_values_and_no_debug_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Logged::start(dir.path(), &["--log-format", "json", "--log-level", "info"]);
    let line = server.wait_for_line("serving version swapped");
    let event: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["fields"]["model"], "iris", "{line}");
    assert_eq!(event["fields"]["from"], "none", "{line}");
    assert_eq!(event["fields"]["to"], "1", "{line}");
    server.wait_for_line("initial model loading finished");
    for line in server.lines() {
        assert!(!line.contains("Some("), "Debug text in {line}");
        assert!(!line.contains('\u{1b}'), "colour codes in {line}");
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[test]
fn logs_off_a_terminal_are_json_by_default_and_text_has_no_colours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auto = Logged::start(dir.path(), &["--log-level", "info"]);
    let line = auto.wait_for_line("ferroserve listening");
    assert!(line.starts_with('{'), "auto off a terminal is JSON: {line}");
    drop(auto);
    let text = Logged::start(dir.path(), &["--log-format", "text", "--log-level", "info"]);
    let line = text.wait_for_line("ferroserve listening");
    assert!(!line.starts_with('{'), "{line}");
    assert!(line.contains("INFO"), "{line}");
    for line in text.lines() {
        assert!(!line.contains('\u{1b}'), "colour codes in {line}");
    }
}

#[test]
fn every_metric_has_a_help_line() {
    let server = Server::start(&[]);
    let (status, _) = post(
        &format!("{}/v2/models/iris/infer", server.base),
        &json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
            "data": [5.1, 3.5, 1.4, 0.2]}]}),
    );
    assert_eq!(status, 200);
    let text = common::admin_client()
        .get(format!("{}/metrics", server.base))
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    let named = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    let types = named("# TYPE ");
    let helps = named("# HELP ");
    assert!(
        types.iter().any(|t| t == "ferroserve_requests_total"),
        "{text}"
    );
    for name in &types {
        assert!(helps.contains(name), "no # HELP for {name} in:\n{text}");
    }
}

#[test]
fn error_answers_are_json_and_echo_numbers_briefly() {
    let server = Server::start(&[]);
    let client = common::admin_client();
    let reply = client
        .get(format!("{}/v2/models/iris/infer", server.base))
        .send()
        .expect("sent");
    assert_eq!(reply.status(), 405);
    let body: Value = reply.json().expect("a JSON body");
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("GET is not allowed"), "{error}");
    assert!(error.contains("POST"), "{error}");

    let (status, body) = post(
        &format!("{}/v2/models/iris/infer", server.base),
        &json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
            "data": [1e300, 1, 1, 1]}]}),
    );
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("1e300 is not a valid FP32"), "{error}");
    assert!(!error.contains("00000000"), "{error}");
}

#[test]
fn the_example_config_file_starts_a_server() {
    let server = Server::start(&["--config", "examples/ferroserve.toml"]);
    let (status, _) = post(
        &format!("{}/v2/models/iris/infer", server.base),
        &json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
            "data": [5.1, 3.5, 1.4, 0.2]}]}),
    );
    assert_eq!(status, 200);
}

#[test]
fn a_misplaced_config_key_names_its_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ferroserve.toml");
    for (text, expected) in [
        (
            "max_batch_size = 8\n",
            "line 1: unknown field `max_batch_size` at top level; did you mean [batching] max_batch_size?",
        ),
        ("cache = true\n", "`cache` is a section"),
    ] {
        std::fs::write(&file, text).expect("write");
        let out = common::serve_command(&dir.path().join("data"), &[])
            .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
            .arg("--config")
            .arg(&file)
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("CacheSettings"), "{stderr}");
    }
}

#[test]
fn a_model_file_named_like_a_registry_model_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first start registers the bundled iris in the registry.
    drop(Server::start_in(dir.path(), &[]));
    let model = repo_root().join("examples/iris/model.onnx");
    let model_arg = format!("iris={}", model.display());
    let server = Logged::start(
        dir.path(),
        &[
            "--model",
            &model_arg,
            "--log-format",
            "json",
            "--log-level",
            "warn",
        ],
    );
    let line = server.wait_for_line("has the name of a registry model");
    let event: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(event["fields"]["model"], "iris");
    let status: Value = common::admin_client()
        .get(format!("{}/api/v1/models/iris/serving", server.base))
        .send()
        .and_then(|r| r.json())
        .expect("status");
    assert_eq!(status["origin"], "repository", "{status}");
    assert_eq!(status["shadows_registry_model"], true, "{status}");
}

#[test]
fn fault_and_breaker_lines_name_the_model_and_version() {
    let repo = tempfile::tempdir().expect("tempdir");
    let folder = repo.path().join("brk/1");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::copy(
        repo_root().join("examples/iris/model.onnx"),
        folder.join("model.onnx"),
    )
    .expect("copy model");
    std::fs::write(
        repo.path().join("brk/config.toml"),
        "[breaker]\nmin_requests = 4\nfailure_rate = 0.5\n",
    )
    .expect("write config");
    let data = tempfile::tempdir().expect("tempdir");
    let repo_arg = repo.path().to_str().expect("utf-8 path");
    let server = Logged::start(
        data.path(),
        &[
            "--model-repository",
            repo_arg,
            "--enable-fault-injection",
            "--no-example",
            "--log-format",
            "json",
            "--log-level",
            "warn",
        ],
    );
    let client = common::admin_client();
    let until = Instant::now() + Duration::from_secs(60);
    let faults = loop {
        let reply = client
            .put(format!(
                "{}/api/v1/models/brk/versions/1/faults",
                server.base
            ))
            .json(&json!({"error_rate": 1.0}))
            .send()
            .expect("sent");
        if reply.status() == 200 || Instant::now() > until {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(faults.status(), 200);
    let injected: Value =
        serde_json::from_str(&server.wait_for_line("faults injected")).expect("JSON");
    assert_eq!(injected["fields"]["latency"], "none", "{injected}");
    assert_eq!(injected["fields"]["error_rate"], 1.0, "{injected}");
    for _ in 0..4 {
        let (status, _) = post(
            &format!("{}/v2/models/brk/infer", server.base),
            &json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                "data": [5.1, 3.5, 1.4, 0.2]}]}),
        );
        assert_eq!(status, 500);
    }
    let opened: Value =
        serde_json::from_str(&server.wait_for_line("circuit breaker opened")).expect("JSON");
    assert_eq!(opened["fields"]["model"], "brk", "{opened}");
    assert_eq!(opened["fields"]["version"], "1", "{opened}");
    for line in server.lines() {
        assert!(
            !line.contains("FaultSpec") && !line.contains("Some("),
            "{line}"
        );
    }
}
