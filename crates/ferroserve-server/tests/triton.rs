//! Triton's model configuration and statistics extensions over HTTP, on
//! real models: the configuration follows the signature and batching
//! settings, the statistics move with inferences, unknown models are 404.

mod common;

use axum::http::StatusCode;
use common::*;
use ferroserve_batcher::BatcherConfig;
use ferroserve_serving::ModelSpec;
use serde_json::{json, Value};

fn iris_rows(rows: usize) -> Value {
    let data: Vec<f32> = IRIS_ROWS
        .iter()
        .flatten()
        .copied()
        .cycle()
        .take(rows * 4)
        .collect();
    json!({"inputs": [{"name": "input", "shape": [rows, 4], "datatype": "FP32", "data": data}]})
}

/// Iris whose batcher waits up to `delay_us` for company.
fn iris_batched(delay_us: u64) -> ModelSpec {
    ModelSpec {
        batching: BatcherConfig {
            max_batch_size: 8,
            max_queue_delay_us: delay_us,
            preferred_batch_sizes: vec![4, 8],
            instance_count: 2,
            ..BatcherConfig::default()
        },
        ..iris()
    }
}

async fn ok_json(app: &axum::Router, uri: &str) -> Value {
    let reply = get(app, uri).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The one entry of a statistics answer.
fn only_stat(answer: &Value) -> &Value {
    let stats = answer["model_stats"].as_array().expect("model_stats");
    assert_eq!(stats.len(), 1, "{answer}");
    &stats[0]
}

fn count(stat: &Value, field: &str) -> u64 {
    stat["inference_stats"][field]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("inference_stats.{field}.count in {stat}"))
}

#[tokio::test]
async fn config_follows_the_signature_and_batching() {
    let app = default_app(vec![iris_batched(500)]).await;
    let config = ok_json(&app, "/v2/models/iris/config").await;
    let backend = config["backend"].as_str().expect("backend");
    assert!(["onnxruntime", "tract"].contains(&backend), "{config}");
    assert_eq!(config["platform"], format!("{backend}_onnx"));
    assert_eq!(config["name"], "iris");
    assert_eq!(config["max_batch_size"], 8);
    assert_eq!(
        config["input"],
        json!([{"name": "input", "data_type": "TYPE_FP32", "format": "FORMAT_NONE",
                "dims": [4], "is_shape_tensor": false, "allow_ragged_batch": false,
                "optional": false}])
    );
    let outputs: Vec<(&str, &str, &Value)> = config["output"]
        .as_array()
        .expect("output")
        .iter()
        .map(|o| {
            let name = o["name"].as_str().expect("name");
            (
                name,
                o["data_type"].as_str().expect("data_type"),
                &o["dims"],
            )
        })
        .collect();
    assert_eq!(
        outputs,
        [
            ("label", "TYPE_INT64", &json!([])),
            ("probabilities", "TYPE_FP32", &json!([3]))
        ]
    );
    assert_eq!(
        config["dynamic_batching"],
        json!({"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": 500,
               "preserve_ordering": false})
    );
    assert_eq!(
        config["instance_group"],
        json!([{"name": "iris", "kind": "KIND_CPU", "count": 2}])
    );
    assert_eq!(
        config["version_policy"],
        json!({"latest": {"num_versions": 1}})
    );
    assert_eq!(
        ok_json(&app, "/v2/models/iris/versions/1/config").await,
        config
    );
}

#[tokio::test]
async fn config_of_a_model_without_batch_dimension_keeps_whole_shapes() {
    let app = default_app(vec![testdata("mlp_fixed"), testdata("string_label")]).await;
    let fixed = ok_json(&app, "/v2/models/mlp_fixed/config").await;
    assert_eq!(fixed["max_batch_size"], 0);
    assert_eq!(fixed["input"][0]["dims"], json!([1, 4]));
    assert_eq!(fixed["output"][0]["dims"], json!([1, 2]));
    assert!(fixed.get("dynamic_batching").is_none(), "{fixed}");

    let strings = ok_json(&app, "/v2/models/string_label/config").await;
    assert_eq!(strings["input"][0]["data_type"], "TYPE_STRING");
    assert_eq!(strings["input"][0]["dims"], json!([1]));
}

#[tokio::test]
async fn statistics_start_at_zero_and_move_with_inferences() {
    let app = default_app(vec![iris_batched(20_000)]).await;
    let before = ok_json(&app, "/v2/models/iris/stats").await;
    let stat = only_stat(&before);
    assert_eq!(
        (stat["name"].as_str(), stat["version"].as_str()),
        (Some("iris"), Some("1"))
    );
    assert_eq!(stat["inference_count"], 0, "warm-up runs are not counted");
    assert_eq!(stat["execution_count"], 0);
    assert_eq!(stat["last_inference"], 0);
    assert_eq!(stat["batch_stats"], json!([]));

    // One request of 3 rows runs alone: one batch of size 3.
    let reply = post_json(&app, "/v2/models/iris/infer", iris_rows(3)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.error());
    let after = ok_json(&app, "/v2/models/iris/versions/1/stats").await;
    let stat = only_stat(&after);
    assert_eq!(stat["inference_count"], 3);
    assert_eq!(stat["execution_count"], 1);
    assert!(stat["last_inference"].as_u64() > Some(0), "{stat}");
    for field in [
        "success",
        "queue",
        "compute_input",
        "compute_infer",
        "compute_output",
    ] {
        assert_eq!(count(stat, field), 1, "{field}: {stat}");
    }
    assert!(stat["inference_stats"]["success"]["ns"].as_u64() > Some(0));
    assert!(stat["inference_stats"]["compute_infer"]["ns"].as_u64() > Some(0));
    assert_eq!(count(stat, "fail"), 0);
    let batches = stat["batch_stats"].as_array().expect("batch_stats");
    assert_eq!(batches.len(), 1, "{stat}");
    assert_eq!(batches[0]["batch_size"], 3);
    assert_eq!(batches[0]["compute_infer"]["count"], 1);

    // A bad shape fails before the batcher: counted as a failure only.
    let bad = json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                                  "data": [1.0, 2.0, 3.0]}]});
    let reply = post_json(&app, "/v2/models/iris/infer", bad).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let stat = only_stat(&ok_json(&app, "/v2/models/iris/stats").await).clone();
    assert_eq!(count(&stat, "fail"), 1, "{stat}");
    assert_eq!(count(&stat, "success"), 1);
    assert_eq!(stat["execution_count"], 1);
}

#[tokio::test]
async fn concurrent_requests_share_batches_in_the_statistics() {
    let app = default_app(vec![iris_batched(20_000)]).await;
    let requests = (0..8).map(|_| post_json(&app, "/v2/models/iris/infer", iris_rows(1)));
    for reply in futures::future::join_all(requests).await {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.error());
    }
    let answer = ok_json(&app, "/v2/models/iris/stats").await;
    let stat = only_stat(&answer);
    assert_eq!(count(stat, "success"), 8);
    assert_eq!(count(stat, "queue"), 8);
    assert_eq!(
        count(stat, "compute_infer"),
        8,
        "per request, as Triton counts"
    );
    assert_eq!(stat["inference_count"], 8);
    let executions = stat["execution_count"].as_u64().expect("execution_count");
    assert!((1..=8).contains(&executions), "{stat}");
    // The batch sizes account for every run and every row.
    let batches = stat["batch_stats"].as_array().expect("batch_stats");
    let runs: u64 = batches
        .iter()
        .map(|b| b["compute_infer"]["count"].as_u64().unwrap_or(0))
        .sum();
    let rows: u64 = batches
        .iter()
        .map(|b| {
            b["batch_size"].as_u64().unwrap_or(0)
                * b["compute_infer"]["count"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!((runs, rows), (executions, 8), "{stat}");
}

#[tokio::test]
async fn statistics_of_every_model_list_each_served_version() {
    let app = default_app(vec![iris(), testdata("logreg")]).await;
    let answer = ok_json(&app, "/v2/models/stats").await;
    let names: Vec<&str> = answer["model_stats"]
        .as_array()
        .expect("model_stats")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["iris", "logreg"]);
}

#[tokio::test]
async fn unknown_models_and_versions_are_404() {
    let app = default_app(vec![iris()]).await;
    for uri in [
        "/v2/models/nope/config",
        "/v2/models/nope/versions/1/config",
        "/v2/models/iris/versions/9/config",
        "/v2/models/nope/stats",
        "/v2/models/nope/versions/1/stats",
        "/v2/models/iris/versions/9/stats",
    ] {
        let reply = get(&app, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!reply.error().is_empty(), "{uri}: the error says why");
    }
}

#[tokio::test]
async fn server_metadata_names_the_extensions() {
    let app = default_app(vec![iris()]).await;
    let extensions = ok_json(&app, "/v2").await["extensions"].clone();
    for name in ["model_configuration", "statistics"] {
        assert!(
            extensions
                .as_array()
                .is_some_and(|e| e.contains(&json!(name))),
            "{extensions}"
        );
    }
}
