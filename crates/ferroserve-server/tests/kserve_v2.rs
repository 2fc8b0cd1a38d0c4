//! KServe v2 HTTP API over real models: metadata, JSON and binary inference,
//! datatypes, output selection, and every error status.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;

fn iris_request() -> serde_json::Value {
    json!({"id": "req-7", "inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "data": IRIS_ROWS}]})
}

#[tokio::test]
async fn iris_classic_rows_are_classes_0_1_2() {
    let app = default_app(vec![iris()]).await;
    let reply = post_json(&app, "/v2/models/iris/infer", iris_request()).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let v = reply.json();
    assert_eq!(v["model_name"], "iris");
    assert_eq!(v["model_version"], "1");
    assert_eq!(v["id"], "req-7");
    let label = v["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["name"] == "label")
        .expect("label");
    assert_eq!(label["data"], json!([0, 1, 2]));
    assert_eq!(label["datatype"], "INT64");
    assert!(reply.headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn metadata_health_and_request_id() {
    let app = default_app(vec![iris()]).await;
    assert_eq!(get(&app, "/v2/health/live").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/v2/health/ready").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/startupz").await.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/v2/models/iris/ready").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "/v2/models/iris/versions/1/ready").await.status,
        StatusCode::OK
    );
    assert_eq!(get(&app, "/v2").await.json()["name"], "ferroserve");
    let meta = get(&app, "/v2/models/iris").await.json();
    assert_eq!(
        meta["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 4]}])
    );
    assert_eq!(
        meta["outputs"][1],
        json!({"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]})
    );
    assert_eq!(meta["versions"], json!(["1"]));
    assert_eq!(
        get(&app, "/v2/models/iris/versions/1").await.json()["name"],
        "iris"
    );

    let reply = send(
        &app,
        Request::get("/v2/health/live")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.headers["x-request-id"], "abc-123");
}

#[tokio::test]
async fn binary_tensors_in_and_out() {
    let app = default_app(vec![iris()]).await;
    let header = json!({
        "inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "parameters": {"binary_data_size": 48}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": true}}, {"name": "probabilities", "parameters": {"binary_data": false}}]
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    for v in IRIS_ROWS.iter().flatten() {
        body.extend_from_slice(&v.to_le_bytes());
    }
    let reply = send(
        &app,
        Request::post("/v2/models/iris/infer")
            .header("inference-header-content-length", header.len())
            .body(Body::from(body))
            .expect("request"),
    )
    .await;
    let (v, tail) = reply.binary_parts();
    assert_eq!(v["outputs"][0]["name"], "label");
    assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 24);
    assert_eq!(v["outputs"][1]["shape"], json!([3, 3]));
    let labels: Vec<i64> = tail
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    assert_eq!(labels, vec![0, 1, 2]);
}

#[tokio::test]
async fn output_selection_returns_only_what_was_asked() {
    let app = default_app(vec![iris()]).await;
    let mut request = iris_request();
    request["outputs"] = json!([{"name": "probabilities"}]);
    let v = post_json(&app, "/v2/models/iris/infer", request)
        .await
        .json();
    let outputs = v["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["name"], "probabilities");
    assert_eq!(outputs[0]["shape"], json!([3, 3]));
}

#[tokio::test]
async fn datatypes_int64_bool_fp64_bytes() {
    let app = default_app(vec![
        testdata("add_int64"),
        testdata("scale_f64"),
        testdata("string_label"),
    ])
    .await;
    let v = post_json(
        &app,
        "/v2/models/add_int64/infer",
        json!({"inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "INT64", "data": [1, -5, 3]},
            {"name": "b", "shape": [1, 3], "datatype": "INT64", "data": [2, 1, -3]}]}),
    )
    .await
    .json();
    let by_name = |n: &str| {
        v["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .find(|o| o["name"] == n)
            .cloned()
            .expect("output")
    };
    assert_eq!(by_name("sum")["data"], json!([3, -4, 0]));
    assert_eq!(by_name("is_pos")["data"], json!([true, false, false]));
    assert_eq!(by_name("is_pos")["datatype"], "BOOL");

    let v = post_json(&app, "/v2/models/scale_f64/infer",
        json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, -2.0]}]})).await.json();
    assert_eq!(v["outputs"][0]["data"], json!([2.5, -5.0]));

    let v = post_json(&app, "/v2/models/string_label/infer",
        json!({"inputs": [{"name": "text", "shape": [3, 1], "datatype": "BYTES", "data": ["dog", "cat", "cow"]}]})).await.json();
    assert_eq!(v["outputs"][0]["data"], json!([1, 0, -1]));
}

#[tokio::test]
async fn fixed_batch_model_is_served_unbatched() {
    let app = default_app(vec![testdata("mlp_fixed")]).await;
    let reply = post_json(&app, "/v2/models/mlp_fixed/infer",
        json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["outputs"][0]["shape"], json!([1, 2]));
    let reply = post_json(&app, "/v2/models/mlp_fixed/infer",
        json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6, 7, 8]}]})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error(),
        "input 'input': expected shape [1, 4] but got [2, 4]"
    );
}

#[tokio::test]
async fn errors_have_the_right_status_and_say_what_was_wrong() {
    let config = ferroserve_server::ServerConfig {
        max_body_bytes: 2048,
        ..Default::default()
    };
    let (app, _) = app_with(vec![iris()], config).await;
    let cases = [
        (
            "/v2/models/nope/infer",
            iris_request(),
            StatusCode::NOT_FOUND,
            "unknown model 'nope'",
        ),
        (
            "/v2/models/iris/versions/9/infer",
            iris_request(),
            StatusCode::NOT_FOUND,
            "unknown version '9' of model 'iris'",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}),
            StatusCode::BAD_REQUEST,
            "input 'input': expected shape [-1, 4] but got [1, 3]",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}),
            StatusCode::BAD_REQUEST,
            "input 'input': expected datatype FP32 but got FP64",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}),
            StatusCode::BAD_REQUEST,
            "unexpected input 'x'",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, "a", 4]}]}),
            StatusCode::BAD_REQUEST,
            "input 'input': element 2: \"a\" is not a valid FP32",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "outputs": [{"name": "nope"}]}),
            StatusCode::BAD_REQUEST,
            "unknown output 'nope'",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "parameters": {"timeout": 0}}),
            StatusCode::BAD_REQUEST,
            "parameter timeout must be at least 1000 microseconds",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "input", "shape": [200, 4], "datatype": "FP32", "data": vec![1.0; 800]}]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds the limit of 2048 bytes",
        ),
    ];
    for (uri, body, status, message) in cases {
        let reply = post_json(&app, uri, body).await;
        assert_eq!(
            reply.status,
            status,
            "{uri}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(
            reply.error().contains(message),
            "expected {message:?} in {:?}",
            reply.error()
        );
        assert_eq!(reply.headers["content-type"], "application/json");
    }
    let reply = send(
        &app,
        Request::post("/v2/models/iris/infer")
            .header("content-type", "application/json")
            .body(Body::from("{not json"))
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.error().contains("invalid infer request JSON"),
        "{}",
        reply.error()
    );
    let reply = get(&app, "/v2/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, "/v2/models/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn metrics_expose_request_queue_inference_and_batch_histograms() {
    let app = default_app(vec![iris()]).await;
    post_json(&app, "/v2/models/iris/infer", iris_request()).await;
    let text = String::from_utf8(get(&app, "/metrics").await.body).expect("utf-8");
    for name in [
        "ferroserve_requests_total{model=\"iris\",version=\"1\",protocol=\"v2\",code=\"200\"}",
        "ferroserve_request_duration_seconds_bucket",
        "ferroserve_queue_duration_seconds_bucket",
        "ferroserve_inference_duration_seconds_bucket",
        "ferroserve_batch_size_bucket",
        "ferroserve_model_loaded",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
}

#[tokio::test]
async fn readiness_is_503_until_models_load_and_failed_model_is_reported() {
    let broken = spec("broken", repo_root().join("testdata/README.md"));
    let (app, state) = app_with(vec![iris(), broken], Default::default()).await;
    assert!(state.started());
    assert_eq!(
        get(&app, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let reply = get(&app, "/v2/models/broken/ready").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.json()["error"]
            .as_str()
            .expect("reason")
            .contains("failed"),
        "{}",
        reply.json()
    );
    assert_eq!(
        post_json(&app, "/v2/models/iris/infer", iris_request())
            .await
            .status,
        StatusCode::OK
    );
}

/// The cache keys a request by its content, however it was encoded.
#[test]
fn json_and_binary_forms_give_one_cache_key() {
    let json = br#"{"id":"1","inputs":[{"name":"a","shape":[2],"datatype":"INT32","data":[7,-3]},
        {"name":"b","shape":[1],"datatype":"FP32","data":[0.5]}],"outputs":[{"name":"y"}]}"#;
    let header = br#"{"id":"2","inputs":[{"name":"a","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}},
        {"name":"b","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}],
        "parameters":{"binary_data_output":true,"timeout":5000},
        "outputs":[{"name":"y","parameters":{"binary_data":true}}]}"#;
    let mut binary = header.to_vec();
    binary.extend_from_slice(&7i32.to_le_bytes());
    binary.extend_from_slice(&(-3i32).to_le_bytes());
    binary.extend_from_slice(&0.5f32.to_le_bytes());
    let from_json = ferroserve_kserve::decode_request(json, None).expect("valid");
    let from_binary =
        ferroserve_kserve::decode_request(&binary, Some(header.len())).expect("valid");
    assert_eq!(
        ferroserve_serving::cache::CacheKey::new("m", "1", &from_json),
        ferroserve_serving::cache::CacheKey::new("m", "1", &from_binary)
    );
    assert_ne!(
        ferroserve_serving::cache::CacheKey::new("m", "1", &from_json),
        ferroserve_serving::cache::CacheKey::new("m", "2", &from_binary),
        "a new version never hits an old version's entry"
    );
}
