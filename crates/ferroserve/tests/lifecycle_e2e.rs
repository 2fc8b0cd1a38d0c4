//! End-to-end lifecycle tests of the real binary: promotions and rollbacks
//! under load without one failed request, a corrupted artifact refused while
//! the old version keeps serving, an invalid upload refused, and kill -9 in
//! the middle of an upload.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::load::{client, iris_request, send, Load};
use common::registry_api::{iris_variant, promote, register};
use common::Server;
use serde_json::{json, Value};

fn rollback(server: &Server, model: &str) -> Value {
    let (status, body) = send(
        client()
            .post(format!("{}/api/v1/models/{model}/rollback", server.base))
            .header("x-ferroserve-actor", "e2e"),
    );
    assert_eq!(status, 200, "rollback: {body}");
    body
}

/// A completed serving change: requested at `started`, answered at
/// `completed`, after which `version` serves.
struct Change {
    started: Instant,
    completed: Instant,
    version: String,
}

#[test]
fn promotions_and_rollbacks_under_load_fail_no_request() {
    let server = Server::start(&[]);
    let v2 = register(&server, "iris", iris_variant("variant two"));
    let v3 = register(&server, "iris", iris_variant("variant three"));
    let threads = 3;
    let load = Load::start(&server.base, threads);
    // Between changes, the load gets this many answers to requests sent
    // after the last change completed (a request in flight on each thread
    // may have been sent before).
    let per_interval = 20;
    let mut changes = vec![Change {
        started: Instant::now(),
        completed: Instant::now(),
        version: "1".to_owned(),
    }];
    let steps: [(&str, i64); 5] = [
        ("promote", v2),
        ("promote", v3),
        ("rollback", v2),
        ("promote", 1),
        ("rollback", v2),
    ];
    for (action, expected) in steps {
        load.wait_for_answers(per_interval + threads);
        let started = Instant::now();
        let answer = match action {
            "promote" => promote(&server, "iris", expected),
            _ => rollback(&server, "iris"),
        };
        let completed = Instant::now();
        assert_eq!(answer["version"]["version"], json!(expected), "{answer}");
        assert_eq!(
            answer["serving"]["serving_version"],
            json!(expected.to_string()),
            "the answer comes once the swap is done: {answer}"
        );
        changes.push(Change {
            started,
            completed,
            version: expected.to_string(),
        });
    }
    load.wait_for_answers(per_interval + threads);
    let samples = load.stop_expecting_no_failure(100);
    // Between two changes, every request sent after the first completed and
    // answered before the next started saw exactly the version of the first.
    let mut checked = 0;
    for pair in changes.windows(2) {
        let (current, next) = (&pair[0], &pair[1]);
        for s in &samples {
            if s.sent > current.completed && s.answered < next.started {
                assert_eq!(
                    s.version, current.version,
                    "a request between changes saw the wrong version"
                );
                checked += 1;
            }
        }
    }
    let last = changes.last().expect("changes");
    for s in samples.iter().filter(|s| s.sent > last.completed) {
        assert_eq!(s.version, last.version);
        checked += 1;
    }
    assert!(
        checked >= per_interval * changes.len(),
        "too few requests between changes: {checked}"
    );
    let (_, history) = send(client().get(format!("{}/api/v1/models/iris/history", server.base)));
    let swaps = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "serving_swapped")
        .count();
    assert!(swaps >= 5, "every change is in the audit log: {history}");
}

fn blob_files(data_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![data_dir.join("artifacts")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn corrupted_artifact_is_refused_and_the_served_version_stays() {
    let server = Server::start(&[]);
    let before = blob_files(&server.data_dir);
    let v2 = register(&server, "iris", iris_variant("to be corrupted"));
    let added: Vec<_> = blob_files(&server.data_dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(added.len(), 1, "one new blob: {added:?}");
    let mut bytes = std::fs::read(&added[0]).expect("blob");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&added[0], bytes).expect("corrupt the blob");

    let answer = promote(&server, "iris", v2);
    assert_eq!(answer["serving"]["serving_version"], "1", "{answer}");
    let reason = answer["serving"]["failures"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("sha256"),
        "the reason names the check: {answer}"
    );
    let (status, body) = send(
        client()
            .post(format!("{}/v2/models/iris/infer", server.base))
            .json(&iris_request()),
    );
    assert_eq!((status, body["model_version"].clone()), (200, json!("1")));
    let (_, history) = send(client().get(format!("{}/api/v1/models/iris/history", server.base)));
    assert!(
        history["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["action"] == "serving_failed" && e["version"] == json!(v2)),
        "the failure is in the audit log: {history}"
    );
}

#[test]
fn invalid_onnx_upload_is_refused_and_nothing_is_stored() {
    let server = Server::start(&[]);
    let before = blob_files(&server.data_dir);
    let (status, body) = send(
        client()
            .post(format!("{}/api/v1/artifacts", server.base))
            .header("content-type", "application/octet-stream")
            .body(b"this is not an onnx model".to_vec()),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("ONNX"),
        "{body}"
    );
    assert_eq!(blob_files(&server.data_dir), before);
}

#[test]
fn kill_9_during_upload_leaves_the_registry_consistent() {
    let server = Server::start(&[]);
    let data_dir = server.data_dir.clone();
    let before = blob_files(&data_dir);
    // Stream half of a body, then kill the server while it is writing it.
    let mut stream = TcpStream::connect(server.host_port()).expect("connect");
    write!(
        stream,
        "POST /api/v1/artifacts HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n",
        server.host_port(),
        common::ADMIN_TOKEN
    )
    .expect("headers");
    let chunk = vec![7u8; 1 << 20];
    stream.write_all(&chunk).expect("first MiB");
    stream.flush().expect("flush");
    let until = Instant::now() + Duration::from_secs(20);
    while blob_files(&data_dir).len() == before.len() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        blob_files(&data_dir).len() > before.len(),
        "the upload's temporary file appears"
    );
    let mut server = server;
    server.signal("KILL");
    let _ = server.child.wait();
    drop(stream);

    let restarted = Server::start_in(&data_dir, &[]);
    restarted.wait_ready();
    assert_eq!(
        blob_files(&data_dir),
        before,
        "the interrupted upload left nothing behind"
    );
    let (status, versions) =
        send(client().get(format!("{}/api/v1/models/iris/versions", restarted.base)));
    assert_eq!(status, 200, "{versions}");
    let versions = versions["versions"].as_array().expect("versions").clone();
    assert_eq!(
        versions.len(),
        1,
        "no half-registered version: {versions:?}"
    );
    assert_eq!(versions[0]["status"]["state"], "ready");
    let (status, body) = send(
        client()
            .post(format!("{}/v2/models/iris/infer", restarted.base))
            .json(&iris_request()),
    );
    assert_eq!((status, body["model_version"].clone()), (200, json!("1")));
}
