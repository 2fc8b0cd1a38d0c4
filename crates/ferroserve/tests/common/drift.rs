//! Helpers of the fleet monitoring tests: a model watched against the iris
//! reference profile with a PSI alert to a webhook, rows sent to it in
//! requests of ten, and its drift report.

use serde_json::{json, Value};

use super::load::{client, send};
use super::registry_api::{promote, register};
use super::{repo_root, Server};

/// Rows per request and per drift window.
pub const BATCH: usize = 10;
pub const WINDOW: usize = 150;

/// The 150 iris training rows' features.
pub fn iris_rows() -> Vec<[f64; 4]> {
    super::iris::iris_lines()
        .iter()
        .map(|line| {
            let cells: Vec<f64> = line
                .split(',')
                .take(4)
                .map(|c| c.trim().parse().expect("number"))
                .collect();
            [cells[0], cells[1], cells[2], cells[3]]
        })
        .collect()
}

/// The iris rows with petal length 3 cm longer: a shift the PSI rule sees.
pub fn shifted_rows() -> Vec<[f64; 4]> {
    iris_rows()
        .iter()
        .map(|x| [x[0], x[1], x[2] + 3.0, x[3]])
        .collect()
}

/// Registers the iris model as `model` through `server`, with the iris
/// reference profile and monitoring in windows of `WINDOW` rows whose
/// feature PSI above 0.25 alerts `webhook`, and promotes it; returns the
/// version.
pub fn watched_iris(server: &Server, model: &str, webhook: &str) -> i64 {
    let psi = json!([{"rule": "feature_psi", "above": 0.25, "windows": 1}]);
    watched_iris_alerting(server, model, webhook, psi)
}

/// [`watched_iris`] with other alert rules.
pub fn watched_iris_alerting(server: &Server, model: &str, webhook: &str, alerts: Value) -> i64 {
    let bytes = std::fs::read(repo_root().join("examples/iris/model.onnx")).expect("iris");
    let version = register(server, model, bytes);
    let profile: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/iris/profile.json")).expect("profile"),
    )
    .expect("profile JSON");
    let put = |path: String, body: &Value| {
        let (status, answer) = send(
            client()
                .put(format!("{}{path}", server.base))
                .header("x-ferroserve-actor", "e2e")
                .json(body),
        );
        assert!(
            status == 200 || status == 204,
            "PUT {path}: {status} {answer}"
        );
    };
    put(
        format!("/api/v1/models/{model}/versions/{version}/profile"),
        &profile,
    );
    let config = json!({"monitoring": {
        "window_rows": WINDOW, "window_seconds": 3600, "max_observed_rows_per_s": 10_000,
        "alerts": alerts,
        "webhook": {"url": webhook, "initial_backoff_ms": 10}
    }});
    put(format!("/api/v1/models/{model}/serving-config"), &config);
    promote(server, model, version);
    version
}

/// Sends `rows` to `model` in requests of `BATCH` rows, each to the next
/// of `bases` in turn.
pub fn send_rows(bases: &[&str], model: &str, rows: &[[f64; 4]]) {
    for (i, chunk) in rows.chunks(BATCH).enumerate() {
        infer(bases[i % bases.len()], model, chunk, None);
    }
}

/// Infers `rows` of `model` at `base`, with `request_id` if given;
/// returns the answer.
fn infer(base: &str, model: &str, rows: &[[f64; 4]], request_id: Option<&str>) -> Value {
    let data: Vec<f64> = rows.iter().flatten().copied().collect();
    let body = json!({"inputs": [{"name": "input", "shape": [rows.len(), 4],
        "datatype": "FP32", "data": data}]});
    let mut request = client().post(format!("{base}/v2/models/{model}/infer"));
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let (status, answer) = send(request.json(&body));
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A request sent by [`send_identified_rows`]: its id and the labels
/// answered for its rows.
pub struct Identified {
    pub request_id: String,
    pub predicted: Vec<i64>,
}

/// [`send_rows`] with a request id on each request (`tag-N`); returns
/// what each was answered.
pub fn send_identified_rows(
    bases: &[&str],
    model: &str,
    rows: &[[f64; 4]],
    tag: &str,
) -> Vec<Identified> {
    rows.chunks(BATCH)
        .enumerate()
        .map(|(i, chunk)| {
            let request_id = format!("{tag}-{i}");
            let answer = infer(bases[i % bases.len()], model, chunk, Some(&request_id));
            let label = answer["outputs"]
                .as_array()
                .and_then(|o| o.iter().find(|t| t["name"] == "label"))
                .expect("label output");
            let predicted = label["data"]
                .as_array()
                .expect("labels")
                .iter()
                .map(|v| v.as_i64().expect("integer label"))
                .collect();
            Identified {
                request_id,
                predicted,
            }
        })
        .collect()
}

/// The drift report of `model` `version` at `base` (`null` while the
/// server there does not watch it).
pub fn drift(base: &str, model: &str, version: i64) -> Value {
    let (status, report) = send(client().get(format!("{base}/api/v1/models/{model}/drift")));
    if status != 200 {
        return Value::Null;
    }
    let label = version.to_string();
    report["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["version"] == label.as_str()).cloned())
        .unwrap_or(Value::Null)
}

/// Whether the drift report says the version is watched against its profile.
pub fn is_watched(report: &Value) -> bool {
    report["window_rows"] == WINDOW && report["note"].is_null()
}

/// Times the alert rules of a version's report have fired, all together.
pub fn fired(version: &Value) -> u64 {
    version["alerts"].as_array().map_or(0, |rules| {
        rules.iter().filter_map(|r| r["fired"].as_u64()).sum()
    })
}

/// `monitor_alert` events of `model` in the audit log, read through `base`.
pub fn recorded_alerts(base: &str, model: &str) -> usize {
    let (status, history) =
        send(client().get(format!("{base}/api/v1/models/{model}/history?limit=1000")));
    assert_eq!(status, 200, "{history}");
    history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "monitor_alert")
        .count()
}
