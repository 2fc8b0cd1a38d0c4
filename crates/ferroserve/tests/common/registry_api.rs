//! Registering and promoting model versions through a server's registry
//! API, as a user's tooling would.

use serde_json::{json, Value};

use super::load::{client, send};
use super::{repo_root, Server};

/// The iris model with its `doc_string` set to `label`: the same model,
/// other bytes, so every variant is a distinct artifact.
pub fn iris_variant(label: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(repo_root().join("examples/iris/model.onnx")).expect("iris");
    // ModelProto field 6 (doc_string), length-delimited; the last one wins.
    bytes.push(0x32);
    bytes.push(u8::try_from(label.len()).expect("short label"));
    bytes.extend_from_slice(label.as_bytes());
    bytes
}

/// Uploads `bytes` and registers them as a new version of `model`; returns
/// the version number.
pub fn register(server: &Server, model: &str, bytes: Vec<u8>) -> i64 {
    let c = client();
    let (status, artifact) = send(
        c.post(format!("{}/api/v1/artifacts", server.base))
            .header("content-type", "application/octet-stream")
            .body(bytes),
    );
    assert_eq!(status, 201, "upload: {artifact}");
    let (status, body) = send(
        c.post(format!("{}/api/v1/models/{model}/versions", server.base))
            .header("x-ferroserve-actor", "e2e")
            .json(&json!({"artifact_sha256": artifact["sha256"]})),
    );
    assert_eq!(status, 201, "register: {body}");
    body["version"]["version"].as_i64().expect("version number")
}

/// Moves `version` of `model` to Production; returns the answer.
pub fn promote(server: &Server, model: &str, version: i64) -> Value {
    let (status, body) = send(
        client()
            .post(format!(
                "{}/api/v1/models/{model}/versions/{version}/stage",
                server.base
            ))
            .header("x-ferroserve-actor", "e2e")
            .json(&json!({"stage": "Production"})),
    );
    assert_eq!(status, 200, "promote: {body}");
    body
}
