//! Test support: an app over real models from `testdata/` and `examples/`,
//! driven through `Router::oneshot` without a socket.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod auth;
pub mod grpc;
pub mod pki;
pub mod registry;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use ferroserve_backend::{EngineChoice, Engines};
use ferroserve_batcher::BatcherConfig;
use ferroserve_registry::Registry;
use ferroserve_server::{app, AppState, ServerConfig};
use ferroserve_serving::repository::{single_file, ServingDefaults};
use ferroserve_serving::{ModelManager, ModelSpec, Pipeline};
use http_body_util::BodyExt;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn spec(name: &str, path: PathBuf) -> ModelSpec {
    let defaults = ServingDefaults {
        engine: EngineChoice::Auto,
        intra_op_threads: 1,
        batching: BatcherConfig::default(),
    };
    single_file(name, &path, &defaults).expect("a model file")
}

pub fn testdata(name: &str) -> ModelSpec {
    spec(
        name,
        repo_root().join(format!("testdata/models/{name}.onnx")),
    )
}

pub fn iris() -> ModelSpec {
    spec("iris", repo_root().join("examples/iris/model.onnx"))
}

/// The engines, ONNX Runtime among them: the tests serve real models on
/// it, so without it they fail, saying how to install it (never a skip).
pub fn engines() -> Engines {
    let engines = Engines::discover(None);
    assert!(
        engines.ort_available(),
        "ONNX Runtime not found ({}): run scripts/python-env.sh runtime",
        engines.ort_status()
    );
    engines
}

/// An app serving `specs`, loaded before it is returned; its API keys
/// live in a registry of their own, and requests without credentials are
/// signed in as an admin.
pub async fn app_with(specs: Vec<ModelSpec>, config: ServerConfig) -> (Router, Arc<AppState>) {
    let keys_dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        keys_dir.path().join("keys.db").display()
    );
    let registry = Registry::connect(&url).await.expect("registry opens");
    let (auth, tokens) = auth::keyed_auth(&registry).await;
    let manager = Arc::new(ModelManager::new(Arc::new(engines())));
    let pipeline = Arc::new(Pipeline::new(manager, config.request_timeout));
    let state = Arc::new(
        AppState::new(pipeline, config, ferroserve_server::telemetry::prometheus())
            .with_auth(Arc::new(auth)),
    );
    ferroserve_server::spawn_model_loading(state.clone(), specs)
        .await
        .expect("loading task finishes");
    let app = auth::signed_in(app(state.clone()), tokens, Arc::new(keys_dir));
    (app, state)
}

pub async fn default_app(specs: Vec<ModelSpec>) -> Router {
    app_with(specs, ServerConfig::default()).await.0
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The JSON header and the binary tail of a 200 reply with binary
    /// outputs (split at `inference-header-content-length`).
    pub fn binary_parts(&self) -> (serde_json::Value, &[u8]) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let json_len: usize = self.headers["inference-header-content-length"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        let header = serde_json::from_slice(&self.body[..json_len]).expect("json header");
        (header, &self.body[json_len..])
    }

    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("error message")
            .to_string()
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    use tower::ServiceExt;
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let streams = headers
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let body = if streams {
        // An event stream never ends: its first frame stands for the body.
        match tokio::time::timeout(Duration::from_secs(10), response.into_body().frame()).await {
            Ok(Some(Ok(frame))) => frame.into_data().map(|d| d.to_vec()).unwrap_or_default(),
            _ => Vec::new(),
        }
    } else {
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).expect("request")).await
}

pub async fn post_json(app: &Router, uri: &str, body: serde_json::Value) -> Reply {
    send(
        app,
        Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request"),
    )
    .await
}

pub const IRIS_ROWS: [[f32; 4]; 3] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.4, 3.2, 4.5, 1.5],
    [6.3, 3.3, 6.0, 2.5],
];
