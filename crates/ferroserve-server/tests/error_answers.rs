//! Error answers say what was wrong, always as JSON `{"error"}`: answers
//! the router makes itself (405, 404, path rejections), versions that are
//! registered but not loaded; and repository loads and unloads reach the
//! audit log.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::registry::*;
use common::{default_app, get, iris, post_json, send};
use serde_json::{json, Value};

fn assert_json_error(reply: &common::Reply) -> String {
    let content_type = reply
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(content_type, "application/json", "status {}", reply.status);
    let error = reply.error();
    assert!(!error.is_empty());
    error
}

#[tokio::test]
async fn a_wrong_method_says_which_methods_are_allowed() {
    let app = default_app(vec![iris()]).await;
    let reply = get(&app, "/v2/models/iris/infer").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let error = assert_json_error(&reply);
    assert_eq!(
        error,
        "method GET is not allowed on /v2/models/iris/infer; allowed: POST"
    );
    assert_eq!(reply.headers[header::ALLOW], "POST");

    let request = Request::post("/metrics")
        .body(Body::empty())
        .expect("request");
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let error = assert_json_error(&reply);
    assert!(
        error.starts_with("method POST is not allowed on /metrics; allowed: GET"),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_routes_and_bad_paths_are_json() {
    let app = default_app(vec![iris()]).await;
    let reply = get(&app, "/v3/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(assert_json_error(&reply), "no route for /v3/nothing");

    // Not UTF-8 once decoded: axum's path extractor refuses it in plain text.
    let reply = get(&app, "/v2/models/%FF/ready").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = assert_json_error(&reply);
    assert!(error.contains("UTF-8"), "{error}");

    // Answers that were JSON already are left alone.
    let reply = post_json(&app, "/v2/models/iris/infer", json!({"inputs": []})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_json_error(&reply);
}

#[tokio::test]
async fn a_registered_version_that_is_not_loaded_is_explained() {
    let r = registry_app().await;
    let app = &r.app;
    assert_eq!(register(app, "iris", "iris").await, 1);
    promote(app, "iris", 1, "Production").await;
    assert_eq!(register(app, "iris", "logreg").await, 2);
    promote(app, "iris", 2, "Production").await;

    for (method, uri) in [
        (Method::GET, "/v2/models/iris/versions/1"),
        (Method::GET, "/v2/models/iris/versions/1/ready"),
        (Method::POST, "/v2/models/iris/versions/1/infer"),
    ] {
        let body = json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
            "data": [5.1, 3.5, 1.4, 0.2]}]});
        let reply = call(app, method, uri, Some(body), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        let error = reply.error();
        assert!(
            error.contains("version 1 of model 'iris' exists in the registry (stage Archived"),
            "{uri}: {error}"
        );
        assert!(error.contains("not loaded"), "{error}");
        assert!(
            error.contains(r#""version_policy": {"specific": [1]}"#),
            "{error}"
        );
    }
    let reply = get(app, "/v2/models/iris/versions/9").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "unknown version '9' of model 'iris'");

    // Kept loaded as the message says, version 1 answers.
    let reply = call(
        app,
        Method::PUT,
        "/api/v1/models/iris/serving-config",
        Some(json!({"version_policy": {"specific": [1]}})),
        Some("alice"),
    )
    .await;
    expect_status(&reply, 200);
    assert_eq!(
        answering_version(app, "/v2/models/iris/versions/1/infer").await,
        Ok("1".to_owned())
    );

    // A model registered with nothing served is not called unknown either.
    assert_eq!(register(app, "other", "iris").await, 1);
    let reply = get(app, "/v2/models/other").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let error = reply.error();
    assert!(error.contains("model 'other' is registered"), "{error}");
}

#[tokio::test]
async fn repository_loads_and_unloads_are_audited() {
    let r = registry_app().await;
    let app = &r.app;
    register(app, "iris", "iris").await;
    promote(app, "iris", 1, "Production").await;

    let reply = call(
        app,
        Method::POST,
        "/v2/repository/models/iris/unload",
        None,
        Some("carol"),
    )
    .await;
    expect_status(&reply, 200);
    assert_eq!(served_version(app, "iris").await, Err(404));
    let reply = call(
        app,
        Method::POST,
        "/v2/repository/models/iris/load",
        None,
        Some("dave"),
    )
    .await;
    expect_status(&reply, 200);
    assert_eq!(served_version(app, "iris").await, Ok("1".to_owned()));

    let events = expect_status(&get(app, "/api/v1/audit?model=iris").await, 200);
    let events: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .collect();
    let unloaded = events
        .iter()
        .find(|e| e["action"] == "model_unloaded")
        .expect("unload recorded");
    assert_eq!(unloaded["actor"], "carol");
    let loaded = events
        .iter()
        .find(|e| e["action"] == "model_loaded")
        .expect("load recorded");
    assert_eq!(loaded["actor"], "dave");
    assert_eq!(loaded["version"], 1);
}
