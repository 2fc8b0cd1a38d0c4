//! The MLflow-compatible API with the official `mlflow` client: a run's
//! params, 1,000 metric steps, tags, input dataset and artifact logged and
//! read back exactly, runs searched by metric filter and order, an ONNX
//! model logged from scikit-learn and loaded back through `models:/`, and
//! MLflow's error codes (`tests/python/mlflow_tracking_check.py`); a model
//! registered by MLflow is served by ferroserve, loaded back by MLflow
//! through its alias, takes its feature names from the input example,
//! is refused with a signature that contradicts the ONNX file, serves
//! under a new name once renamed, and shares one registry with
//! ferroserve's CLI (`tests/python/mlflow_registry_check.py`). The roles apply: a reader
//! reads and cannot log, nobody anonymous gets in.

mod common;

use common::rollout::{cli_ok, client_with, create_key};
use common::{Server, ADMIN_TOKEN};
use serde_json::{json, Value};

#[test]
fn the_mlflow_client_tracks_runs_and_logs_models_into_ferroserve() {
    let server = Server::start(&[]);
    common::python_check::run(
        "mlflow_tracking_check.py",
        [server.base.as_str(), ADMIN_TOKEN],
    );
}

#[test]
fn a_model_the_mlflow_client_registers_is_served_and_shares_ferroserves_registry() {
    let server = Server::start(&[]);
    // A model registered with ferroserve's CLI, which MLflow must list.
    cli_ok(
        &server,
        &[
            "models",
            "register",
            "--name",
            "from-cli",
            "examples/iris/model.onnx",
        ],
    );
    common::python_check::run(
        "mlflow_registry_check.py",
        [server.base.as_str(), ADMIN_TOKEN],
    );
    // What MLflow registered, ferroserve's CLI shows, with the run's
    // params and metrics as lineage.
    let listed = cli_ok(&server, &["models", "list"]);
    assert!(listed.contains("iris-mlflow"), "{listed}");
    let shown = cli_ok(&server, &["models", "show", "iris-mlflow/1"]);
    for expected in [
        "Production",
        "run ",
        "C  1.0",
        "accuracy  0.97",
        "mlflow.source=",
    ] {
        assert!(
            shown.contains(expected),
            "{expected:?} missing from:\n{shown}"
        );
    }
}

fn call(
    client: &reqwest::blocking::Client,
    request: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut builder = client.request(request, url);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder.send().expect("request is sent");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn roles_apply_to_the_mlflow_api() {
    let server = Server::start(&[]);
    let api = |path: &str| format!("{}/api/2.0/mlflow/{path}", server.base);
    let admin = client_with(ADMIN_TOKEN);
    let (status, created) = call(
        &admin,
        reqwest::Method::POST,
        api("experiments/create"),
        Some(json!({"name": "shared"})),
    );
    assert_eq!(status, 200, "{created}");
    let id = created["experiment_id"].as_str().expect("id").to_owned();

    let reader = client_with(&create_key(&server, "analyst", "reader"));
    let (status, got) = call(
        &reader,
        reqwest::Method::GET,
        api(&format!("experiments/get?experiment_id={id}")),
        None,
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["experiment"]["name"], "shared");
    let (status, refused) = call(
        &reader,
        reqwest::Method::POST,
        api("runs/create"),
        Some(json!({"experiment_id": id})),
    );
    assert_eq!(status, 403, "a reader does not log runs: {refused}");
    let (status, _) = call(
        &reqwest::blocking::Client::new(),
        reqwest::Method::GET,
        api(&format!("experiments/get?experiment_id={id}")),
        None,
    );
    assert_eq!(status, 401, "no key, no access");

    // MLflow's error shape, and ENDPOINT_NOT_FOUND for calls this server
    // does not offer.
    let (status, missing) = call(
        &admin,
        reqwest::Method::GET,
        api("runs/get?run_id=nope"),
        None,
    );
    assert_eq!(
        (status, missing["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (status, unknown) = call(
        &admin,
        reqwest::Method::POST,
        api("traces/search"),
        Some(json!({})),
    );
    assert_eq!(
        (status, unknown["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    let (status, bad) = call(
        &admin,
        reqwest::Method::POST,
        api("runs/log-metric"),
        Some(json!({"run_id": "x", "key": "k", "value": "lots"})),
    );
    assert_eq!(
        (status, bad["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE")),
        "{bad}"
    );
}
