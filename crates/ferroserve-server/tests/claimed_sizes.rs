//! Sizes a client claims are never taken on trust: a shape that declares
//! more elements than the body holds, or outputs named more than once, is
//! a 400 that says what was wrong, and the server keeps answering.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use serde_json::{json, Value};

/// The 80-byte request whose shape declares 10^16 FP32 elements.
const HUGE_SHAPE: &str =
    r#"{"inputs":[{"name":"input","shape":[10000000000000000],"datatype":"FP32","data":[]}]}"#;

async fn post_raw(app: &axum::Router, uri: &str, body: &str, prefer: Option<&str>) -> Reply {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(prefer) = prefer {
        request = request.header("prefer", prefer);
    }
    send(
        app,
        request.body(Body::from(body.to_owned())).expect("request"),
    )
    .await
}

/// The server still answers a well-formed request.
async fn still_answers(app: &axum::Router) {
    let reply = post_json(
        app,
        "/v2/models/iris/infer",
        json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
            "data": IRIS_ROWS[0]}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.error());
}

#[tokio::test]
async fn a_shape_claiming_more_elements_than_the_body_holds_is_refused_before_decoding() {
    let app = default_app(vec![iris()]).await;
    for (uri, prefer) in [
        ("/v2/models/iris/infer", None),
        ("/v2/models/iris/infer", Some("respond-async")),
        ("/v2/models/iris/versions/1/infer", None),
    ] {
        let reply = post_raw(&app, uri, HUGE_SHAPE, prefer).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri} {prefer:?}");
        let error = reply.error();
        assert!(
            error.starts_with(
                "input 'input': shape [10000000000000000] declares 10000000000000000 elements but the request holds only"
            ),
            "{uri}: {error}"
        );
        still_answers(&app).await;
    }
}

#[tokio::test]
async fn v1_instances_whose_first_rows_claim_a_huge_shape_are_refused() {
    let app = default_app(vec![iris()]).await;
    // Five levels, 1000 entries each, only the first of which nests: the
    // shape read from the first entries is [1, 1000, 1000, 1000, 1000, 1000].
    let mut row = Value::from(vec![0; 1000]);
    for _ in 1..5 {
        let mut level = vec![Value::from(0); 1000];
        level[0] = row;
        row = Value::Array(level);
    }
    let reply = post_json(
        &app,
        "/v1/models/iris:predict",
        json!({ "instances": [row] }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = reply.error();
    assert!(
        error.contains(
            "input 'input': shape [1, 1000, 1000, 1000, 1000, 1000] declares 1000000000000000 elements"
        ),
        "{error}"
    );
    still_answers(&app).await;
}

#[tokio::test]
async fn a_zero_row_shape_whose_rows_overflow_is_refused() {
    let app = default_app(vec![iris()]).await;
    let body = r#"{"inputs":[{"name":"input","shape":[0,8589934592,8589934592],"datatype":"FP32","data":[]}]}"#;
    let reply = post_raw(&app, "/v2/models/iris/infer", body, None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("is too large"), "{}", reply.error());
    still_answers(&app).await;
}

#[tokio::test]
async fn an_output_named_twice_is_refused() {
    let app = default_app(vec![iris()]).await;
    let body = json!({
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[0]}],
        "outputs": [{"name": "probabilities"}, {"name": "label"}, {"name": "probabilities"}]
    });
    let reply = post_json(&app, "/v2/models/iris/infer", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "output 'probabilities' is requested more than once"
    );
    still_answers(&app).await;
}

/// Iris takes 4 FP32 values a row: 16 bytes, more than a 15-byte body.
const SMALLER_THAN_AN_IRIS_ROW: usize = 15;

#[tokio::test]
async fn a_model_whose_row_no_body_can_carry_is_not_loaded_or_warmed_up() {
    let manager = ferroserve_serving::ModelManager::new(std::sync::Arc::new(engines()))
        .with_max_input_bytes(SMALLER_THAN_AN_IRIS_ROW);
    let err = manager.load(iris()).await.err().expect("refused");
    assert_eq!(err.kind, ferroserve_core::ErrorKind::InvalidInput);
    assert!(
        err.message.starts_with(
            "cannot serve model 'iris' version 1: input 'input' (FP32 [-1, 4]) needs 16 bytes for a single row, more than the 15-byte limit"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn an_artifact_whose_row_no_body_can_carry_is_refused_at_upload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("registry.db").display()
    );
    let registry = ferroserve_registry::Registry::connect(&url)
        .await
        .expect("registry opens");
    let work_dir = dir.path().join("tmp");
    std::fs::create_dir_all(&work_dir).expect("work dir");
    let artifacts = ferroserve_registry::ArtifactStore::from_url(
        &dir.path().join("artifacts").display().to_string(),
        &work_dir,
    )
    .expect("artifact store opens");
    let lifecycle = ferroserve_serving::lifecycle::Lifecycle::new(
        registry,
        artifacts,
        std::sync::Arc::new(engines()),
    )
    .with_max_input_bytes(SMALLER_THAN_AN_IRIS_ROW);
    let bytes = registry::model_bytes("iris");
    let err = lifecycle
        .upload(&bytes[..], None)
        .await
        .expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("input 'input' (FP32 [-1, 4]) needs 16 bytes for a single row"),
        "{message}"
    );
}
