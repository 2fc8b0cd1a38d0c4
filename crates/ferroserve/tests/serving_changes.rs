//! End-to-end tests of changes that would break serving, against the real
//! binary with online load running: a serving config, alias delete or
//! stage move that selects nothing is refused (non-zero exit naming what
//! is missing) and iris keeps serving; the same state made by another
//! process on the data dir leaves iris serving and reported degraded; a
//! promote or rollback to a version with another interface is refused
//! whether that version is loaded or not, and the registry keeps saying
//! what serves.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::load::{client, send, Load};
use common::{repo_root, run_direct, Server, BIN};
use serde_json::Value;

/// Runs `ferroserve ARGS --url` against `server`.
fn remote(server: &Server, args: &[&str]) -> Output {
    Command::new(BIN)
        .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
        .args(args)
        .args(["--url", &server.base])
        .env_remove("FERROSERVE_URL")
        .current_dir(repo_root())
        .output()
        .expect("ferroserve runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(server: &Server, args: &[&str]) -> String {
    let out = remote(server, args);
    assert!(out.status.success(), "{args:?} failed:\n{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its stderr.
fn refused(server: &Server, args: &[&str]) -> String {
    let out = remote(server, args);
    assert!(
        !out.status.success(),
        "{args:?} should fail; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr(&out)
}

/// `models config iris --set VALUE`, which must succeed.
fn config_ok(server: &Server, value: &str) -> String {
    ok(server, &["models", "config", "iris", "--set", value])
}

/// `models config iris --set VALUE`, which must be refused; its stderr.
fn config_refused(server: &Server, value: &str) -> String {
    refused(server, &["models", "config", "iris", "--set", value])
}

/// `models config iris --set VALUE --unload`, which must succeed.
fn config_unload(server: &Server, value: &str) -> String {
    ok(
        server,
        &["models", "config", "iris", "--set", value, "--unload"],
    )
}

fn get(server: &Server, path: &str) -> Value {
    let (status, body) = send(client().get(format!("{}{path}", server.base)));
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn serving(server: &Server) -> Value {
    get(server, "/api/v1/models/iris/serving")
}

fn production_versions(server: &Server) -> Vec<i64> {
    get(server, "/api/v1/models/iris/versions")["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter(|v| v["stage"] == "Production")
        .map(|v| v["version"].as_i64().expect("number"))
        .collect()
}

/// Polls `/readyz` until `check` holds of its answer (at most 20 s).
fn wait_for_readyz(server: &Server, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = send(client().get(format!("{}/readyz", server.base)));
        if check(&body) {
            return body;
        }
        assert!(
            Instant::now() < until,
            "{what} never showed in /readyz: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric_line(server: &Server, prefix: &str) -> String {
    let text = client()
        .get(format!("{}/metrics", server.base))
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
        .to_owned()
}

#[test]
fn configs_and_changes_that_select_nothing_are_refused_and_iris_keeps_serving() {
    let server = Server::start(&["--registry-poll-ms", "100"]);
    let load = Load::start(&server.base, 2);

    let err = config_refused(&server, r#"{"serve": {"alias": "nope"}}"#);
    assert!(err.contains("alias 'nope' does not exist"), "{err}");
    assert!(err.contains("serves version 1 now"), "{err}");
    let err = config_refused(&server, r#"{"serve": {"version": 99}}"#);
    assert!(
        err.contains("version 99 does not exist (versions: 1)"),
        "{err}"
    );
    let err = config_refused(&server, r#"{"serve": "staging"}"#);
    assert!(err.contains("no ready version is in Staging"), "{err}");
    let err = refused(
        &server,
        &["models", "promote", "iris", "1", "--stage", "Archived"],
    );
    assert!(
        err.contains("moving version 1 to Archived would leave"),
        "{err}"
    );

    ok(&server, &["models", "alias", "iris", "champion", "1"]);
    config_ok(&server, r#"{"serve": {"alias": "champion"}}"#);
    let err = refused(
        &server,
        &["models", "alias", "iris", "champion", "--delete"],
    );
    assert!(
        err.contains("deleting alias 'champion' would leave"),
        "{err}"
    );
    assert_eq!(serving(&server)["serving_version"], "1");
    assert_eq!(serving(&server)["target_version"], 1);
    assert_eq!(
        get(&server, "/api/v1/models/iris/aliases")["aliases"]["champion"],
        1,
        "a refused change changes nothing"
    );

    // Another process on the data dir asks to unload on purpose: the server
    // only sees a registry that selects nothing, keeps serving and says so.
    let out = run_direct(
        "models",
        &["alias", "iris", "champion", "--delete", "--unload"],
        &server.data_dir,
        Path::new("."),
    );
    assert!(out.status.success(), "direct delete: {}", stderr(&out));
    let ready = wait_for_readyz(&server, "iris degraded", |b| {
        b["degraded"]["iris"].is_string()
    });
    let reason = ready["degraded"]["iris"].as_str().expect("reason");
    assert!(
        reason.contains("alias 'champion' does not exist"),
        "{reason}"
    );
    assert!(reason.contains("still serving version 1"), "{reason}");
    let status = serving(&server);
    assert_eq!(status["serving_version"], "1", "{status}");
    assert_eq!(status["target_version"], Value::Null, "{status}");
    assert_eq!(
        metric_line(&server, "ferroserve_model_degraded{"),
        "ferroserve_model_degraded{model=\"iris\"} 1"
    );
    let history = get(&server, "/api/v1/models/iris/history");
    assert!(
        history.to_string().contains("serving_degraded"),
        "the degraded state is in the audit log"
    );
    // A config that selects something ends it; the CLI exits 0 again.
    config_ok(&server, r#"{"serve": "production"}"#);
    wait_for_readyz(&server, "recovery", |b| b.get("degraded").is_none());
    assert_eq!(
        metric_line(&server, "ferroserve_model_degraded{"),
        "ferroserve_model_degraded{model=\"iris\"} 0"
    );

    load.stop_expecting_no_failure(50);

    // Asked on purpose through the server, the model is unloaded.
    config_unload(&server, r#"{"serve": {"alias": "nope"}}"#);
    let (status, _) = send(
        client()
            .post(format!("{}/v2/models/iris/infer", server.base))
            .json(&common::load::iris_request()),
    );
    assert_eq!(status, 404, "unloaded on purpose");
    assert!(serving(&server)["degraded"].is_null());
}

/// Registers `testdata/models/gbr.onnx` (five input columns; iris has
/// four) as a new iris version; returns its number.
fn register_other_interface(server: &Server) -> i64 {
    let path = repo_root().join("testdata/models/gbr.onnx");
    let out = ok(
        server,
        &[
            "models",
            "register",
            path.to_str().expect("utf-8"),
            "--name",
            "iris",
            "--json",
        ],
    );
    let answer: Value = serde_json::from_str(&out).expect("JSON");
    answer["version"]["version"].as_i64().expect("version")
}

#[test]
fn a_version_with_another_interface_never_serves_loaded_or_not() {
    let server = Server::start(&[]);
    let load = Load::start(&server.base, 2);
    // Loaded beforehand by the version policy (the README's setting).
    config_ok(&server, r#"{"version_policy": {"latest": 2}}"#);
    let other = register_other_interface(&server);
    let loaded = serving(&server);
    assert!(
        loaded["versions"]
            .to_string()
            .contains(&format!("\"{other}\"")),
        "version {other} is loaded by the policy: {loaded}"
    );
    let promote = [
        "models",
        "promote",
        "iris",
        &other.to_string(),
        "--stage",
        "Production",
    ];
    let err = refused(&server, &promote);
    assert!(err.contains("interface differs"), "{err}");
    assert!(err.contains("[input FP32 [-1, 4]] became"), "{err}");
    assert_eq!(
        production_versions(&server),
        vec![1],
        "the registry is unchanged"
    );
    assert_eq!(serving(&server)["serving_version"], "1");

    // Not loaded: refused the same way.
    config_ok(&server, "{}");
    assert!(!serving(&server)["versions"]
        .to_string()
        .contains(&format!("\"{other}\"")));
    let err = refused(&server, &promote);
    assert!(err.contains("interface differs"), "{err}");
    let pin = format!(r#"{{"serve": {{"version": {other}}}}}"#);
    let err = config_refused(&server, &pin);
    assert!(err.contains("interface differs"), "{err}");
    assert_eq!(production_versions(&server), vec![1]);
    load.stop_expecting_no_failure(50);

    // Allowed on purpose, the swap happens; a rollback to the old
    // interface is then refused and the registry keeps saying what serves.
    config_ok(&server, r#"{"allow_interface_change": true}"#);
    ok(&server, &promote);
    assert_eq!(serving(&server)["serving_version"], other.to_string());
    config_ok(&server, "{}");
    let err = refused(&server, &["models", "rollback", "iris"]);
    assert!(err.contains("interface differs"), "{err}");
    assert_eq!(production_versions(&server), vec![other]);
    let status = serving(&server);
    assert_eq!(status["serving_version"], other.to_string(), "{status}");
    assert_eq!(status["target_version"], other, "{status}");
    assert!(status["degraded"].is_null(), "{status}");
}

#[test]
fn direct_mode_refuses_the_same_changes_without_a_server() {
    let data = tempfile::tempdir().expect("tempdir");
    let model = repo_root().join("examples/iris/model.onnx");
    let run = |args: &[&str]| run_direct("models", args, data.path(), data.path());
    let out = run(&[
        "register",
        model.to_str().expect("utf-8"),
        "--name",
        "iris",
        "--stage",
        "Production",
    ]);
    assert!(out.status.success(), "register: {}", stderr(&out));
    let out = run(&["config", "iris", "--set", r#"{"serve": {"alias": "nope"}}"#]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("alias 'nope' does not exist"),
        "{}",
        stderr(&out)
    );
    let gbr = repo_root().join("testdata/models/gbr.onnx");
    let out = run(&[
        "register",
        gbr.to_str().expect("utf-8"),
        "--name",
        "iris",
        "--stage",
        "Production",
    ]);
    assert!(
        !out.status.success(),
        "serves at once with another interface"
    );
    assert!(
        stderr(&out).contains("interface differs"),
        "{}",
        stderr(&out)
    );
}
