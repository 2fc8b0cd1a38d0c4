//! Test support for the management API: an app over a real SQLite registry
//! and artifact folder in a temporary directory, and request helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use ferroserve_backend::EngineChoice;
use ferroserve_batcher::BatcherConfig;
use ferroserve_registry::{ArtifactStore, Registry};
use ferroserve_server::auth::Auth;
use ferroserve_server::{app, AppState, ServerConfig};
use ferroserve_serving::lifecycle::{Controller, Lifecycle};
use ferroserve_serving::repository::ServingDefaults;
use ferroserve_serving::{ModelManager, Pipeline};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::auth::{keyed_auth, signed_in, Tokens};
use super::{repo_root, send, Reply};

/// An app with the registry enabled, and where its files live.
pub struct RegistryApp {
    /// The app, signing requests without credentials in as an admin.
    pub app: Router,
    pub state: Arc<AppState>,
    pub controller: Arc<Controller>,
    pub dir: tempfile::TempDir,
    /// Admin tokens by actor name (see [`super::auth::ACTORS`]).
    pub tokens: Tokens,
}

impl RegistryApp {
    /// Folder of the artifact store.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }

    /// Every regular file under the artifact store.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        walk(&self.artifacts_dir(), &mut files);
        files
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// A registry-backed app with `config`, started (nothing registered yet).
pub async fn registry_app_with(config: ServerConfig) -> RegistryApp {
    registry_app_with_auth(config, |auth| auth).await
}

/// A registry-backed app with `config` whose authentication `extend`
/// completes (e.g. with a JWT verifier).
pub async fn registry_app_with_auth(
    config: ServerConfig,
    extend: impl FnOnce(Auth) -> Auth,
) -> RegistryApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("registry.db").display()
    );
    let registry = Registry::connect(&url).await.expect("registry opens");
    let (auth, tokens) = keyed_auth(&registry).await;
    let work_dir = dir.path().join("tmp");
    std::fs::create_dir_all(&work_dir).expect("work dir");
    let artifacts = ArtifactStore::from_url(
        &dir.path().join("artifacts").display().to_string(),
        &work_dir,
    )
    .expect("artifact store opens");
    let engines = Arc::new(super::engines());
    let lifecycle = Arc::new(Lifecycle::new(registry, artifacts, engines.clone()));
    let manager = Arc::new(ModelManager::new(engines));
    let defaults = ServingDefaults {
        engine: EngineChoice::Auto,
        intra_op_threads: 1,
        batching: BatcherConfig::default(),
    };
    let controller = Arc::new(Controller::new(
        lifecycle,
        manager.clone(),
        defaults,
        Vec::new(),
    ));
    controller.start().await;
    let state = Arc::new(
        AppState::new(
            Arc::new(Pipeline::for_controller(
                &controller,
                config.request_timeout,
            )),
            config,
            ferroserve_server::telemetry::prometheus(),
        )
        .with_controller(controller.clone())
        .with_auth(Arc::new(extend(auth))),
    );
    state.mark_started();
    RegistryApp {
        app: signed_in(app(state.clone()), tokens.clone(), Arc::new(())),
        state,
        controller,
        dir,
        tokens,
    }
}

/// A registry-backed app with the default settings.
pub async fn registry_app() -> RegistryApp {
    registry_app_with(ServerConfig::default()).await
}

/// Bytes of a committed model: `iris` (examples/) or a `testdata/models` stem.
pub fn model_bytes(name: &str) -> Vec<u8> {
    let path = if name == "iris" {
        repo_root().join("examples/iris/model.onnx")
    } else {
        repo_root().join(format!("testdata/models/{name}.onnx"))
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Sends `method uri` with an optional JSON body as `actor`.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    actor: Option<&str>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(actor) = actor {
        request = request.header("x-ferroserve-actor", actor);
    }
    let body = match body {
        Some(value) => {
            request = request.header("content-type", "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    send(app, request.body(body).expect("request")).await
}

/// Sends raw bytes (`POST /api/v1/artifacts` and Markdown cards).
pub async fn send_bytes(app: &Router, method: Method, uri: &str, bytes: Vec<u8>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/octet-stream")
        .body(Body::from(bytes))
        .expect("request");
    send(app, request).await
}

/// Panics with the body unless the reply has `status`.
pub fn expect_status(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "unexpected status; body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
    }
}

/// Uploads a committed model; returns its sha256.
pub async fn upload(app: &Router, name: &str) -> String {
    let bytes = model_bytes(name);
    let reply = send_bytes(app, Method::POST, "/api/v1/artifacts", bytes.clone()).await;
    let info = expect_status(&reply, 201);
    assert_eq!(info["sha256"], sha256(&bytes));
    sha256(&bytes)
}

/// Uploads `artifact` and registers it as the next version of `model`;
/// returns the version number.
pub async fn register(app: &Router, model: &str, artifact: &str) -> i64 {
    let sha = upload(app, artifact).await;
    let reply = call(
        app,
        Method::POST,
        &format!("/api/v1/models/{model}/versions"),
        Some(json!({ "artifact_sha256": sha })),
        Some("alice"),
    )
    .await;
    expect_status(&reply, 201)["version"]["version"]
        .as_i64()
        .expect("version number")
}

/// Moves a version to `stage`; returns the serving status afterwards.
pub async fn promote(app: &Router, model: &str, version: i64, stage: &str) -> Value {
    let reply = call(
        app,
        Method::POST,
        &format!("/api/v1/models/{model}/versions/{version}/stage"),
        Some(json!({ "stage": stage })),
        Some("alice"),
    )
    .await;
    expect_status(&reply, 200)["serving"].clone()
}

/// The `model_version` that answers a default-version inference on `model`
/// (an iris-shaped [N, 4] FP32 input), or the error status.
pub async fn served_version(app: &Router, model: &str) -> Result<String, u16> {
    answering_version(app, &format!("/v2/models/{model}/infer")).await
}

/// The `model_version` that answers an iris-shaped inference at `uri`, or
/// the error status.
pub async fn answering_version(app: &Router, uri: &str) -> Result<String, u16> {
    let request = json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
        "data": [5.1, 3.5, 1.4, 0.2]}]});
    let reply = super::post_json(app, uri, request).await;
    if reply.status.is_success() {
        Ok(reply.json()["model_version"]
            .as_str()
            .expect("model_version")
            .to_owned())
    } else {
        Err(reply.status.as_u16())
    }
}
