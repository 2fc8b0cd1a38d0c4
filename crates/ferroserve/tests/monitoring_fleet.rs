//! Monitoring over the whole service: three replicas on one PostgreSQL
//! registry pool their drift windows there. Rows sent a third to each
//! replica fill one window of the service (closed by the leader from every
//! replica's part), and a shift of the inputs sent through all three fires
//! the alert once: one webhook call, one `monitor_alert` in the audit log,
//! and no alert on the replicas that do not lead.

mod common;

use std::time::{Duration, Instant};

use common::load::{client, send};
use common::pg::TempPostgres;
use common::registry_api::{promote, register};
use common::webhook::Webhook;
use common::{repo_root, Server};
use serde_json::{json, Value};

/// Rows per request and per drift window.
const BATCH: usize = 10;
const WINDOW: usize = 150;

/// The 150 iris training rows' features.
fn iris_rows() -> Vec<[f64; 4]> {
    common::iris::iris_csv()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
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

/// Sends `rows` in requests of `BATCH` rows, each to the next replica in turn.
fn infer_spread(replicas: &[&Server], rows: &[[f64; 4]]) {
    for (i, chunk) in rows.chunks(BATCH).enumerate() {
        let data: Vec<f64> = chunk.iter().flatten().copied().collect();
        let body = json!({"inputs": [{"name": "input", "shape": [chunk.len(), 4],
            "datatype": "FP32", "data": data}]});
        let replica = replicas[i % replicas.len()];
        let (status, answer) = send(
            client()
                .post(format!("{}/v2/models/iris/infer", replica.base))
                .json(&body),
        );
        assert_eq!(status, 200, "{answer}");
    }
}

/// The drift report of iris version `version` on `server` (`null` while
/// the server does not watch it).
fn drift(server: &Server, version: i64) -> Value {
    let (status, report) = send(client().get(format!("{}/api/v1/models/iris/drift", server.base)));
    if status != 200 {
        return Value::Null;
    }
    let label = version.to_string();
    report["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["version"] == label.as_str()).cloned())
        .unwrap_or(Value::Null)
}

/// Polls `what` every 50 ms for at most 30 s until it holds.
fn wait_until(what: &str, mut holds: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !holds() {
        assert!(Instant::now() < until, "{what} within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Times the alert rules of a version's report have fired, all together.
fn fired(version: &Value) -> u64 {
    version["alerts"].as_array().map_or(0, |rules| {
        rules.iter().filter_map(|r| r["fired"].as_u64()).sum()
    })
}

#[test]
fn a_drift_shift_through_every_replica_fires_the_alert_once() {
    let webhook = Webhook::start();
    let postgres = TempPostgres::start();
    let registry = postgres.url("postgres");
    let artifacts = tempfile::tempdir().expect("shared artifact folder");
    let store = artifacts.path().to_str().expect("UTF-8 path");
    let replica = || {
        Server::start(&[
            "--registry-url",
            &registry,
            "--artifact-store",
            store,
            "--webhook-allow",
            "127.0.0.1",
            "--no-example",
        ])
    };
    let leader = replica();
    leader.wait_for_metric("ferroserve_leader 1");
    let (b, c) = (replica(), replica());
    let all = [&leader, &b, &c];

    let version = register(
        &leader,
        "iris",
        std::fs::read(repo_root().join("examples/iris/model.onnx")).expect("iris"),
    );
    let profile: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/iris/profile.json")).expect("profile"),
    )
    .expect("profile JSON");
    let (status, body) = send(
        client()
            .put(format!(
                "{}/api/v1/models/iris/versions/{version}/profile",
                leader.base
            ))
            .header("x-ferroserve-actor", "e2e")
            .json(&profile),
    );
    assert_eq!(status, 204, "{body}");
    let config = json!({"monitoring": {
        "window_rows": WINDOW, "window_seconds": 3600, "max_observed_rows_per_s": 10_000,
        "alerts": [{"rule": "feature_psi", "above": 0.25, "windows": 1}],
        "webhook": {"url": webhook.url, "initial_backoff_ms": 10}
    }});
    let (status, body) = send(
        client()
            .put(format!("{}/api/v1/models/iris/serving-config", leader.base))
            .header("x-ferroserve-actor", "e2e")
            .json(&config),
    );
    assert_eq!(status, 200, "{body}");
    promote(&leader, "iris", version);
    for replica in all {
        wait_until("every replica watches iris against its profile", || {
            let watched = drift(replica, version);
            watched["window_rows"] == WINDOW && watched["note"].is_null()
        });
    }

    // In distribution, a third through each replica: one window of the
    // service, closed by the leader, without an alert.
    let rows = iris_rows();
    assert_eq!(rows.len(), WINDOW);
    infer_spread(&all, &rows);
    wait_until("the leader closes the service's first window", || {
        drift(&leader, version)["windows_closed"] == 1
    });
    let first = drift(&leader, version);
    assert_eq!(first["latest"]["rows"], WINDOW, "{first:#}");
    assert_eq!(first["latest"]["dataset_drift"], false, "{first:#}");
    assert_eq!(fired(&first), 0);
    for replica in [&b, &c] {
        let seen = drift(replica, version);
        assert_eq!(
            seen["windows_closed"], 0,
            "only the leader closes: {seen:#}"
        );
        assert!(
            seen["observed_requests"].as_u64() >= Some(4),
            "each replica took its third in: {seen:#}"
        );
    }

    // Shifted petal length through all three: one alert for the service.
    let shifted: Vec<[f64; 4]> = rows
        .iter()
        .map(|x| [x[0], x[1], x[2] + 3.0, x[3]])
        .collect();
    infer_spread(&all, &shifted);
    let alerts = webhook.wait_for(1);
    assert_eq!(alerts[0]["rule"], "feature_psi", "{alerts:?}");
    assert_eq!(
        alerts[0]["figures"]["max_psi_feature"], "petal_length",
        "{alerts:?}"
    );
    assert_eq!(alerts[0]["figures"]["window"]["rows"], WINDOW, "{alerts:?}");
    // Every replica hands its rows over each second: give them time to
    // fire a second alert, if they could.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(webhook.received().len(), 1, "{:?}", webhook.received());
    let (status, history) =
        send(client().get(format!("{}/api/v1/models/iris/history?limit=1000", c.base)));
    assert_eq!(status, 200, "{history}");
    let recorded = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "monitor_alert")
        .count();
    assert_eq!(recorded, 1, "one alert in the audit log: {history:#}");
    assert_eq!(fired(&drift(&leader, version)), 1);
    for replica in [&b, &c] {
        assert_eq!(fired(&drift(replica, version)), 0);
    }
    drop((leader, b, c));
    drop(postgres);
}
