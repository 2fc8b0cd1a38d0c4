//! KServe v1 `:predict` with rows and with named features.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn rows_and_named_features_predict_the_same_classes() {
    let app = default_app(vec![iris()]).await;
    let reply = post_json(
        &app,
        "/v1/models/iris:predict",
        json!({"instances": IRIS_ROWS}),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let predictions = reply.json()["predictions"].clone();
    assert_eq!(predictions[0]["label"], 0);
    assert_eq!(predictions[1]["label"], 1);
    assert_eq!(predictions[2]["label"], 2);
    assert_eq!(predictions[2]["class"], "virginica");
    assert_eq!(
        predictions[0]["probabilities"]
            .as_array()
            .expect("probabilities")
            .len(),
        3
    );

    let named = json!({"instances": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"petal_width": 2.5, "petal_length": 6.0, "sepal_width": 3.3, "sepal_length": 6.3}]});
    let v = post_json(&app, "/v1/models/iris:predict", named)
        .await
        .json();
    assert_eq!(v["predictions"][0]["class"], "setosa");
    assert_eq!(v["predictions"][1]["label"], 2);
    assert_eq!(get(&app, "/v1/models/iris").await.json()["ready"], true);
}

#[tokio::test]
async fn v1_errors_name_the_instance_and_feature() {
    let app = default_app(vec![iris()]).await;
    let cases = [
        (
            json!({"instances": [{"sepal_length": 5.1}]}),
            "instance 0: missing feature 'sepal_width'",
        ),
        (
            json!({"instances": [[1, 2, 3, 4], [1, 2, 3]]}),
            "instance 1 has shape [3] but instance 0 has [4]",
        ),
        (json!({"instances": []}), "'instances' is empty"),
        (json!({"rows": []}), "invalid predict request"),
        (
            json!({"instances": [{"sepal_length": 1, "sepal_width": 1, "petal_length": 1, "petal_width": 1, "colour": 2}]}),
            "unknown feature 'colour'",
        ),
    ];
    for (body, message) in cases {
        let reply = post_json(&app, "/v1/models/iris:predict", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(
            reply.error().contains(message),
            "expected {message:?} in {:?}",
            reply.error()
        );
    }
    assert_eq!(
        post_json(&app, "/v1/models/iris:explain", json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post_json(&app, "/v1/models/nope:predict", json!({"instances": [[1]]}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
