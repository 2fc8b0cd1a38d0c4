//! End-to-end test of model monitoring on the real binary: the bundled iris
//! model (registered with its reference profile) takes in-distribution
//! traffic without an alert, then shifted traffic that fires the PSI rule,
//! whose webhook reaches a test HTTP server with the right figures; then
//! feedback gives the online accuracy (and fires the accuracy floor), the
//! drift CLI prints the table, and a strict data contract refuses bad rows.

mod common;

use std::time::{Duration, Instant};

use common::webhook::Webhook;
use common::{repo_root, Server, BIN};
use serde_json::{json, Value};

/// Rows per request and per drift window.
const BATCH: usize = 10;
const WINDOW: usize = 150;

/// The iris rows (features, species) of the committed training sample.
fn iris() -> Vec<([f64; 4], i64)> {
    let text =
        std::fs::read_to_string(repo_root().join("examples/iris/iris.csv")).expect("iris.csv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<f64> = line
                .split(',')
                .map(|c| c.trim().parse().expect("number"))
                .collect();
            ([cells[0], cells[1], cells[2], cells[3]], cells[4] as i64)
        })
        .collect()
}

/// One answered request: its id, the predicted labels and the true ones.
struct Sent {
    request_id: String,
    predicted: Vec<i64>,
    truth: Vec<i64>,
}

struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .expect("GET");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().expect("JSON")
    }

    fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(body)
            .send()
            .expect("request is sent");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    /// Sends `rows` in requests of `BATCH` rows, each with its own request id.
    fn infer(&self, rows: &[([f64; 4], i64)], tag: &str) -> Vec<Sent> {
        rows.chunks(BATCH)
            .enumerate()
            .map(|(i, chunk)| {
                let request_id = format!("{tag}-{i}");
                let data: Vec<f64> = chunk.iter().flat_map(|(x, _)| *x).collect();
                let body = json!({"inputs": [{"name": "input", "shape": [chunk.len(), 4],
                    "datatype": "FP32", "data": data}]});
                let response = self
                    .http
                    .post(format!("{}/v2/models/iris/infer", self.base))
                    .header("x-request-id", &request_id)
                    .json(&body)
                    .send()
                    .expect("infer");
                assert_eq!(response.status(), 200);
                let answer: Value = response.json().expect("JSON");
                let label = answer["outputs"]
                    .as_array()
                    .and_then(|o| o.iter().find(|t| t["name"] == "label"))
                    .expect("label output");
                Sent {
                    request_id,
                    predicted: label["data"]
                        .as_array()
                        .expect("data")
                        .iter()
                        .map(|v| v.as_i64().expect("int"))
                        .collect(),
                    truth: chunk.iter().map(|(_, y)| *y).collect(),
                }
            })
            .collect()
    }

    /// Waits until `windows` drift windows of version 1 have closed.
    fn wait_for_windows(&self, windows: u64) -> Value {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let report = self.get("/api/v1/models/iris/drift");
            let version = report["versions"][0].clone();
            if version["windows_closed"].as_u64() >= Some(windows) {
                return version;
            }
            assert!(Instant::now() < until, "windows never closed: {report}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// PSI of `values` against the reference bins, computed here
/// independently: numpy-style bins with out-of-range values clipped into
/// the edge bins, empty proportions floored at 0.0001.
/// The shares of `values` in the bins of `edges`, values beyond the outer
/// edges counted in the outer bins.
fn binned_shares(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len() - 1;
    let mut counts = vec![0.0; bins];
    for &v in values {
        let mut bin = edges.iter().filter(|&&e| e <= v).count().saturating_sub(1);
        bin = bin.min(bins - 1);
        counts[bin] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| c / total).collect()
}

fn expected_psi(values: &[f64], edges: &[f64], reference: &[f64]) -> f64 {
    let floor = |p: f64| if p == 0.0 { 0.0001 } else { p };
    binned_shares(values, edges)
        .iter()
        .zip(reference)
        .map(|(&a, &e)| {
            let (a, e) = (floor(a), floor(e));
            (e - a) * (e / a).ln()
        })
        .sum()
}

/// Times the alert rules of a version's report have fired, all together.
fn fired(version: &Value) -> u64 {
    version["alerts"]
        .as_array()
        .expect("alert rules")
        .iter()
        .map(|rule| rule["fired"].as_u64().expect("fired"))
        .sum()
}

fn accuracy(sent: &[Sent]) -> f64 {
    let pairs: Vec<(i64, i64)> = sent
        .iter()
        .flat_map(|s| s.predicted.iter().copied().zip(s.truth.iter().copied()))
        .collect();
    pairs.iter().filter(|(p, t)| p == t).count() as f64 / pairs.len() as f64
}

fn feedback_for(sent: &[Sent]) -> Value {
    let entries: Vec<Value> = sent
        .iter()
        .map(|s| json!({"request_id": s.request_id, "labels": s.truth}))
        .collect();
    json!({ "feedback": entries })
}

#[test]
fn drift_alerts_reach_the_webhook_and_feedback_gives_online_accuracy() {
    let webhook = Webhook::start();
    // The test receiver listens on loopback, where webhooks go only when allowed.
    let server = Server::start(&["--webhook-allow", "127.0.0.1"]);
    let client = Client {
        http: common::admin_client(),
        base: server.base.clone(),
    };
    let profile = client.get("/api/v1/models/iris/versions/1/profile");
    assert_eq!(profile["rows"], 150, "the bundled iris carries its profile");
    let config = json!({"monitoring": {
        "window_rows": WINDOW, "window_seconds": 3600, "max_observed_rows_per_s": 10_000,
        "alerts": [
            {"rule": "feature_psi", "above": 0.25, "windows": 3},
            {"rule": "accuracy_below", "floor": 0.99, "min_count": 100}
        ],
        "webhook": {"url": webhook.url, "initial_backoff_ms": 10}
    }});
    let (status, body) = client.send(
        reqwest::Method::PUT,
        "/api/v1/models/iris/serving-config",
        &config,
    );
    assert_eq!(status, 200, "{body}");

    // In distribution: three windows of the training rows, no alert.
    let rows = iris();
    assert_eq!(rows.len(), WINDOW);
    let mut calm = Vec::new();
    for window in 0..3 {
        calm.extend(client.infer(&rows, &format!("calm{window}")));
    }
    let version = client.wait_for_windows(3);
    let latest = &version["latest"];
    for feature in latest["features"].as_array().expect("features") {
        assert!(feature["psi"].as_f64().expect("psi") < 1e-9, "{feature}");
        assert!(
            feature["ks_p_value"].as_f64().expect("p") > 0.05,
            "{feature}"
        );
        assert_eq!(feature["drifted"], false);
    }
    assert_eq!(latest["dataset_drift"], false);
    assert!(
        latest["prediction"]["psi"]
            .as_f64()
            .expect("prediction psi")
            < 1e-9
    );
    assert_eq!(version["contract_violations"], json!({}));
    // A window's alerts are judged as it closes, so once three windows are
    // closed no rule has fired, and only fired alerts go to the webhook.
    assert_eq!(fired(&version), 0, "no alert in distribution: {version}");
    assert!(webhook.received().is_empty(), "no alert in distribution");

    // Shifted: petal length +3 cm for three windows; the third fires.
    let shifted: Vec<([f64; 4], i64)> = rows
        .iter()
        .map(|(x, y)| ([x[0], x[1], x[2] + 3.0, x[3]], *y))
        .collect();
    let mut drifted = Vec::new();
    for window in 0..2 {
        drifted.extend(client.infer(&shifted, &format!("shift{window}")));
    }
    let version = client.wait_for_windows(5);
    assert_eq!(fired(&version), 0, "two windows are not enough: {version}");
    assert!(webhook.received().is_empty(), "two windows are not enough");
    drifted.extend(client.infer(&shifted, "shift2"));
    let alerts = webhook.wait_for(1);
    let alert = &alerts[0];
    assert_eq!(
        (alert["model"].as_str(), alert["version"].as_str()),
        (Some("iris"), Some("1"))
    );
    assert_eq!(alert["rule"], "feature_psi");
    assert_eq!(
        alert["condition"],
        json!({"rule": "feature_psi", "above": 0.25, "windows": 3})
    );
    let petal = profile["features"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "petal_length"))
        .expect("petal_length profiled");
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    // As the monitor reads FP32 inputs: the shortest decimal of the f32.
    let lengths: Vec<f64> = shifted
        .iter()
        .map(|(x, _)| (x[2] as f32).to_string().parse().expect("number"))
        .collect();
    let psi = expected_psi(
        &lengths,
        &floats(&petal["summary"]["bin_edges"]),
        &floats(&petal["summary"]["bin_proportions"]),
    );
    assert!(psi > 0.25);
    let reported = alert["figures"]["feature_psi"]["petal_length"]
        .as_f64()
        .expect("petal psi");
    assert!(
        (reported - psi).abs() < 1e-9,
        "webhook PSI {reported}, expected {psi}"
    );
    assert_eq!(alert["figures"]["max_psi_feature"], "petal_length");
    assert_eq!(
        alert["figures"]["max_psi_by_window"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(alert["figures"]["window"]["rows"], WINDOW);
    let version = client.wait_for_windows(6);
    // The report shows what the PSI compared: each window's PSI per
    // feature, and the last window's shares beside the reference's.
    let last = version["history"]
        .as_array()
        .and_then(|windows| windows.last())
        .expect("closed windows");
    let last_psi = last["feature_psi"]["petal_length"].as_f64();
    assert!(last_psi.is_some_and(|p| (p - psi).abs() < 1e-9), "{last}");
    let distribution = version["latest"]["features"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "petal_length"))
        .map(|f| &f["distribution"])
        .expect("petal_length in the last window");
    let edges = floats(&petal["summary"]["bin_edges"]);
    assert_eq!(floats(&distribution["edges"]), edges);
    let close = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    };
    let proportions = floats(&petal["summary"]["bin_proportions"]);
    let reference_sum: f64 = proportions.iter().sum();
    let reference: Vec<f64> = proportions.iter().map(|p| p / reference_sum).collect();
    assert!(
        close(&floats(&distribution["reference"]), &reference),
        "{distribution}"
    );
    assert!(
        close(
            &floats(&distribution["window"]),
            &binned_shares(&lengths, &edges)
        ),
        "{distribution}"
    );
    assert_eq!(version["alerts"][0]["fired"], 1);
    assert_eq!(version["recent_alerts"][0]["rule"], "feature_psi");
    let above_max = version["contract_violations"]["petal_length"]["above_max"].as_u64();
    assert!(above_max.is_some_and(|n| n > 0), "{version}");
    let audit = client.get("/api/v1/audit?model=iris");
    assert!(
        audit.to_string().contains("monitor_alert"),
        "audit: {audit}"
    );

    // Feedback on the calm traffic: the online accuracy is the model's.
    let (status, outcome) = client.send(
        reqwest::Method::POST,
        "/api/v1/models/iris/feedback",
        &feedback_for(&calm[..15]),
    );
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(
        (
            outcome["accepted"].as_u64(),
            outcome["labeled_rows"].as_u64()
        ),
        (Some(15), Some(150))
    );
    let online = outcome["quality"]["1"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!((online - accuracy(&calm[..15])).abs() < 1e-12, "{online}");
    assert!(
        online > 0.9,
        "the iris model fits its training rows: {online}"
    );
    // ...but not perfectly: under the 0.99 floor, so the rule fires.
    let alerts = webhook.wait_for(2);
    assert_eq!(alerts[1]["rule"], "accuracy_below");
    assert_eq!(alerts[1]["figures"]["quality"]["count"], 150);
    let alerted = alerts[1]["figures"]["quality"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!((alerted - online).abs() < 1e-12, "{alerted} vs {online}");
    let version = client.wait_for_windows(6);
    assert_eq!(version["quality"]["count"], 150);
    let metrics = common::admin_client()
        .get(format!("{}/metrics", server.base))
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    assert!(
        metrics.contains("ferroserve_online_accuracy{model=\"iris\",version=\"1\"}"),
        "{metrics}"
    );
    assert!(metrics
        .contains("ferroserve_feature_psi{model=\"iris\",version=\"1\",feature=\"petal_length\"}"));
    assert!(metrics.contains("ferroserve_feature_ks_pvalue{"));
    assert!(metrics.contains("ferroserve_prediction_psi{model=\"iris\",version=\"1\"}"));

    // Late feedback on the shifted traffic joins the same window.
    let (status, outcome) = client.send(
        reqwest::Method::POST,
        "/api/v1/models/iris/feedback",
        &feedback_for(&drifted[..15]),
    );
    assert_eq!(status, 200, "{outcome}");
    let both: Vec<&Sent> = calm[..15].iter().chain(&drifted[..15]).collect();
    let pairs: Vec<(i64, i64)> = both
        .iter()
        .flat_map(|s| s.predicted.iter().copied().zip(s.truth.iter().copied()))
        .collect();
    let expected = pairs.iter().filter(|(p, t)| p == t).count() as f64 / pairs.len() as f64;
    let online = outcome["quality"]["1"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!((online - expected).abs() < 1e-12, "{online} vs {expected}");
    assert!(online < 0.99);
    // Labels are judged as they are posted: once the answer is back, the
    // rules have fired all they will, and only fired alerts go out.
    let version = client.wait_for_windows(6);
    assert_eq!(
        fired(&version),
        2,
        "still below the floor: no second accuracy alert: {version}"
    );
    assert_eq!(
        webhook.received().len(),
        2,
        "still below the floor: no second accuracy alert"
    );

    // Labeled once: a second label is reported as such, unknown ids as
    // unknown, and neither fails the call.
    let (status, outcome) = client.send(
        reqwest::Method::POST,
        "/api/v1/models/iris/feedback",
        &json!({"feedback": [{"request_id": "calm0-0", "label": 0}, {"request_id": "nope", "label": 1}]}),
    );
    assert_eq!(status, 200);
    assert_eq!(outcome["accepted"], 0);
    assert_eq!(outcome["already_labeled"], json!(["calm0-0"]));
    assert_eq!(outcome["unknown"], json!(["nope"]));
    let (status, error) = client.send(
        reqwest::Method::POST,
        "/api/v1/models/iris/feedback",
        &json!({"feedback": [{"label": 1}]}),
    );
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("feedback[0]")),
        "{error}"
    );

    // The CLI prints the per-feature table, each feature's PSI by window
    // and, asked for, a feature's histogram against the reference.
    let drift_cli = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .env("FERROSERVE_API_KEY", common::ADMIN_TOKEN)
            .args(["drift", "iris", "--url", &server.base])
            .args(extra)
            .output()
            .expect("drift runs")
    };
    let output = drift_cli(&["--feature", "petal_length"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("model iris version 1") && text.contains("petal_length"),
        "{text}"
    );
    assert!(
        text.contains("online quality over 300 labeled predictions"),
        "{text}"
    );
    assert!(text.contains("psi by window"), "{text}");
    assert!(
        text.contains("petal_length: share of values per bin, reference against window 6"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" ref ")).count(),
        edges.len() - 1,
        "{text}"
    );
    let output = drift_cli(&["--feature", "petal_size"]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        error.contains("no closed window of model iris has feature 'petal_size'")
            && error.contains("petal_width"),
        "{error}"
    );

    // Another client (here, another API key) can neither label this
    // client's predictions nor learn that they exist.
    let (status, other_key) = client.send(
        reqwest::Method::POST,
        "/api/v1/keys",
        &json!({"name": "another-client", "role": "predictor"}),
    );
    assert_eq!(status, 201, "{other_key}");
    let other = client
        .http
        .post(format!("{}/api/v1/models/iris/feedback", client.base))
        .bearer_auth(other_key["token"].as_str().expect("token"))
        .json(&feedback_for(&drifted[15..17]))
        .send()
        .expect("feedback is sent");
    assert_eq!(other.status(), 200);
    let outcome: Value = other.json().expect("JSON");
    assert_eq!(outcome["accepted"], 0, "{outcome}");
    let ids: Vec<&str> = drifted[15..17]
        .iter()
        .map(|s| s.request_id.as_str())
        .collect();
    assert_eq!(outcome["unknown"], json!(ids), "{outcome}");
    let (status, outcome) = client.send(
        reqwest::Method::POST,
        "/api/v1/models/iris/feedback",
        &feedback_for(&drifted[15..17]),
    );
    assert_eq!(status, 200);
    assert_eq!(
        outcome["accepted"], 2,
        "the predicting client still can: {outcome}"
    );

    // A strict contract refuses out-of-range rows with the feature named.
    let mut strict = config.clone();
    strict["monitoring"]["reject_contract_violations"] = json!(true);
    let (status, body) = client.send(
        reqwest::Method::PUT,
        "/api/v1/models/iris/serving-config",
        &strict,
    );
    assert_eq!(status, 200, "{body}");
    let (status, error) = client.send(
        reqwest::Method::POST,
        "/v2/models/iris/infer",
        &json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 9.9, 0.2]}]}),
    );
    assert_eq!(status, 400);
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("feature 'petal_length'") && message.contains("above the maximum 6.9"),
        "{message}"
    );
    let (status, _) = client.send(
        reqwest::Method::POST,
        "/v2/models/iris/infer",
        &json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}),
    );
    assert_eq!(status, 200);
}
