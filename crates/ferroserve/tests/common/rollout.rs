//! Helpers of the rollout, A/B, shadow and pinning end-to-end tests: more
//! versions of iris with the same interface, the management API and the
//! CLI as the admin, fault injection on a version once it is served, and
//! polling a rollout until it reaches a state.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

pub use super::registry_api::iris_variant;
use super::{admin_client, repo_root, Server, BIN};

/// Uploads an iris variant labelled `label` and registers it as a new
/// version of iris (stage None); returns its number.
pub fn register_iris_version(server: &Server, label: &str) -> i64 {
    let c = admin_client();
    let upload = c
        .post(format!("{}/api/v1/artifacts", server.base))
        .header("content-type", "application/octet-stream")
        .body(iris_variant(label));
    let (status, artifact) = super::load::send(upload);
    assert_eq!(status, 201, "upload: {artifact}");
    let (status, body) = api(
        server,
        Method::POST,
        "/api/v1/models/iris/versions",
        Some(&json!({"artifact_sha256": artifact["sha256"]})),
    );
    assert_eq!(status, 201, "register: {body}");
    body["version"]["version"].as_i64().expect("version number")
}

/// Sends `method path` (with a JSON body) to `server` as the admin;
/// returns the status and the JSON answer (a string when not JSON).
pub fn api(server: &Server, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    api_as(&admin_client(), server, method, path, body)
}

/// [`api`] with the caller's own client (another key).
pub fn api_as(
    client: &reqwest::blocking::Client,
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = client.request(method, format!("{}{path}", server.base));
    if let Some(body) = body {
        request = request.json(body);
    }
    super::load::send(request)
}

/// `PUT /api/v1/models/iris/serving-config`, which must succeed.
pub fn set_serving_config(server: &Server, config: &Value) -> Value {
    let (status, body) = api(
        server,
        Method::PUT,
        "/api/v1/models/iris/serving-config",
        Some(config),
    );
    assert_eq!(status, 200, "serving config {config}: {body}");
    body
}

/// The stage of iris `version` in the registry.
pub fn stage_of(server: &Server, version: i64) -> String {
    let path = format!("/api/v1/models/iris/versions/{version}");
    let (status, body) = api(server, Method::GET, &path, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body["stage"].as_str().expect("stage").to_owned()
}

/// Sets the faults of iris `version` once the server serves it (the
/// faults API answers 404 until then), at most 30 s.
pub fn inject_faults(server: &Server, version: i64, spec: &Value) {
    let path = format!("/api/v1/models/iris/versions/{version}/faults");
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api(server, Method::PUT, &path, Some(spec));
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "faults on iris v{version} were never accepted: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The faults in force on iris `version` (`null` when none).
pub fn faults_of(server: &Server, version: i64) -> Value {
    let path = format!("/api/v1/models/iris/versions/{version}/faults");
    let (status, body) = api(server, Method::GET, &path, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body["faults"].clone()
}

/// `POST /api/v1/models/iris/rollout` with `body`, which must answer 201;
/// returns the status it answered.
pub fn start_rollout(server: &Server, body: &Value) -> Value {
    let (status, answer) = api(
        server,
        Method::POST,
        "/api/v1/models/iris/rollout",
        Some(body),
    );
    assert_eq!(status, 201, "rollout start {body}: {answer}");
    answer
}

/// `POST /api/v1/models/iris/rollout/{action}` (pause, resume, abort,
/// promote), which must succeed and leave the rollout `state`; returns it.
pub fn rollout_action(server: &Server, action: &str, state: &str) -> Value {
    let (status, rollout) = api(
        server,
        Method::POST,
        &format!("/api/v1/models/iris/rollout/{action}"),
        None,
    );
    assert_eq!(
        (status, &rollout["state"]),
        (200, &json!(state)),
        "{action}: {rollout:#}"
    );
    rollout
}

/// `GET /api/v1/models/iris/rollout`, which must answer 200.
pub fn rollout_status(server: &Server) -> Value {
    let (status, body) = api(server, Method::GET, "/api/v1/models/iris/rollout", None);
    assert_eq!(status, 200, "rollout status: {body}");
    body
}

/// Polls the rollout of iris (every 50 ms, at most `within`) until its
/// state is `state`; `seen` gets every status on the way. Fails at once,
/// with the status, when the rollout ends in another state. Returns the
/// status and when it was first seen.
pub fn wait_for_rollout_state(
    server: &Server,
    state: &str,
    within: Duration,
    mut seen: impl FnMut(&Value),
) -> (Value, Instant) {
    let give_up = Instant::now() + within;
    loop {
        let status = rollout_status(server);
        let now = Instant::now();
        seen(&status);
        let current = status["state"].as_str().unwrap_or_default();
        if current == state {
            return (status, now);
        }
        let ended = ["completed", "rolled_back", "aborted"].contains(&current);
        assert!(
            !ended,
            "the rollout ended {current}, not {state}:\n{status:#}"
        );
        assert!(
            now < give_up,
            "the rollout is not {state} after {within:?}; last status:\n{status:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls the rollout of iris (every 10 ms, at most 10 s) until this
/// server's routing no longer routes it (its status has no `window`): the
/// registry records a rollout's end first and the server's routing follows
/// at its next reconcile, so only from then on does every request go to the
/// version that won. Returns when that was first seen.
pub fn wait_until_routing_follows(server: &Server) -> Instant {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let status = rollout_status(server);
        let now = Instant::now();
        if status["window"].is_null() {
            return now;
        }
        assert!(
            now < give_up,
            "the server still routes the rollout 10 s after it ended:\n{status:#}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `action` of each decision of a rollout status, oldest first.
pub fn decision_actions(status: &Value) -> Vec<String> {
    status["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["action"].as_str().expect("action").to_owned())
        .collect()
}

/// Runs `ferroserve ARGS --url BASE` against `server` as the admin.
pub fn cli(server: &Server, args: &[&str]) -> Output {
    Command::new(BIN)
        .env("FERROSERVE_API_KEY", super::ADMIN_TOKEN)
        .env_remove("FERROSERVE_URL")
        .args(args)
        .args(["--url", &server.base])
        .current_dir(repo_root())
        .output()
        .expect("ferroserve runs")
}

/// Runs a CLI command that must succeed; returns its stdout.
pub fn cli_ok(server: &Server, args: &[&str]) -> String {
    super::succeeded(args, cli(server, args))
}

/// A key of `role` made through the server; returns its token.
pub fn create_key(server: &Server, name: &str, role: &str) -> String {
    let (status, body) = api(
        server,
        Method::POST,
        "/api/v1/keys",
        Some(&json!({"name": name, "role": role})),
    );
    assert_eq!(status, 201, "create key: {body}");
    body["token"].as_str().expect("token").to_owned()
}

/// A client that sends `token`.
pub fn client_with(token: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}");
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&value).expect("token is a header value"),
    );
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Threads of the background load: one request in flight on each.
pub const LOAD_THREADS: usize = 3;
/// Time between gate checks.
pub const CHECK_INTERVAL_MS: u64 = 250;

/// Canary requests a step of [`stepping_rollout`] needs before its gates
/// may pass or fail.
pub const STEP_MIN_REQUESTS: u64 = 30;

/// A rollout of `version` through 10, 50 and 100 % in steps of
/// `step_seconds` and at least [`STEP_MIN_REQUESTS`] canary requests, checked every 250 ms,
/// rolled back after two failed checks, with a latency gate kept from
/// judging scheduling noise on a busy machine (a 1 s slack).
pub fn stepping_rollout(version: i64, step_seconds: u64) -> Value {
    json!({"version": version, "steps": [10, 50, 100], "step_seconds": step_seconds,
           "step_min_requests": STEP_MIN_REQUESTS, "check_interval_ms": CHECK_INTERVAL_MS,
           "failure_threshold": 2, "gates": {"p99_ratio": {"slack_ms": 1000}}})
}

/// A rollout of v2 that stays in its first step for the whole test: ten
/// minutes long, with latency noise on a busy machine kept from rolling it
/// back (a 1 s slack on the p99 gate).
pub fn long_rollout_of_v2() -> Value {
    json!({"version": 2, "step_seconds": 600, "check_interval_ms": CHECK_INTERVAL_MS,
           "gates": {"p99_ratio": {"slack_ms": 1000}}})
}

/// A server allowing fault injection, with iris v2 registered and loaded
/// ahead by the version policy (so a fault set on it now is in force from
/// the first request a rollout sends it).
pub fn server_with_loaded_v2() -> Server {
    let server = Server::start(&["--enable-fault-injection"]);
    let v2 = register_iris_version(&server, "canary under test");
    assert_eq!(v2, 2);
    set_serving_config(
        &server,
        &json!({"serve": "production", "version_policy": {"latest": 2}}),
    );
    server
}
