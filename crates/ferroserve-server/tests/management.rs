//! The management API and the KServe repository extension over a real
//! SQLite registry, artifact folder and ONNX models: upload, register,
//! promote, roll back, aliases, serving configs, audit, and error statuses.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::registry::*;
use common::{default_app, get, send};
use ferroserve_server::ServerConfig;
use serde_json::{json, Value};

fn actions(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["action"].as_str().expect("action").to_owned())
        .collect()
}

#[tokio::test]
async fn upload_register_promote_swap_and_roll_back() {
    let r = registry_app().await;
    let app = &r.app;

    let reply = send_bytes(app, Method::POST, "/api/v1/artifacts", model_bytes("iris")).await;
    let info = expect_status(&reply, 201);
    assert_eq!(info["format"], "onnx");
    assert_eq!(info["size"], model_bytes("iris").len());
    assert_eq!(info["signature"]["inputs"][0]["name"], "input");

    let reply = call(
        app,
        Method::POST,
        "/api/v1/models/iris/versions",
        Some(json!({"artifact_sha256": info["sha256"], "description": "iris classifier"})),
        Some("alice"),
    )
    .await;
    let created = expect_status(&reply, 201);
    assert_eq!(created["version"]["version"], 1);
    assert_eq!(created["version"]["stage"], "None");
    assert_eq!(created["version"]["registered_by"], "alice");
    assert_eq!(created["serving"]["serving_version"], Value::Null);
    assert!(served_version(app, "iris").await.is_err());

    let serving = promote(app, "iris", 1, "Production").await;
    assert_eq!(serving["serving_version"], "1", "{serving}");
    assert_eq!(served_version(app, "iris").await, Ok("1".to_owned()));

    assert_eq!(register(app, "iris", "logreg").await, 2);
    let serving = promote(app, "iris", 2, "production").await;
    assert_eq!(serving["serving_version"], "2", "{serving}");
    assert_eq!(served_version(app, "iris").await, Ok("2".to_owned()));
    let v1 = expect_status(&get(app, "/api/v1/models/iris/versions/1").await, 200);
    assert_eq!(v1["stage"], "Archived");

    let reply = call(
        app,
        Method::POST,
        "/api/v1/models/iris/rollback",
        None,
        Some("bob"),
    )
    .await;
    let rolled = expect_status(&reply, 200);
    assert_eq!(rolled["version"]["version"], 1);
    assert_eq!(rolled["version"]["stage"], "Production");
    assert_eq!(rolled["serving"]["serving_version"], "1");
    assert_eq!(served_version(app, "iris").await, Ok("1".to_owned()));

    let status = expect_status(&get(app, "/api/v1/models/iris/serving").await, 200);
    assert_eq!(status["origin"], "registry");
    assert_eq!(status["serving_version"], "1");

    let versions = expect_status(&get(app, "/api/v1/models/iris/versions").await, 200);
    assert_eq!(versions["versions"].as_array().expect("versions").len(), 2);
    let model = expect_status(&get(app, "/api/v1/models/iris").await, 200);
    assert_eq!(model["description"], "iris classifier");
    for (uri, version) in [
        ("models:/iris/Production", 1),
        ("models:/iris/latest", 2),
        ("models:/iris/2", 2),
    ] {
        let reply = get(app, &format!("/api/v1/resolve?uri={uri}")).await;
        assert_eq!(expect_status(&reply, 200)["version"], version, "{uri}");
    }

    let history = expect_status(&get(app, "/api/v1/models/iris/history").await, 200);
    let done = actions(&history);
    for action in ["create_model", "transition_stage", "serving_swapped"] {
        assert!(done.iter().any(|a| a == action), "{action} not in {done:?}");
    }
    let events = history["events"].as_array().expect("events");
    assert!(events.iter().any(|e| e["actor"] == "alice"));
    assert!(events.iter().any(|e| e["actor"] == "bob"));
    assert!(events.iter().any(|e| e["actor"] == "ferroserve"));

    let page = expect_status(&get(app, "/api/v1/audit?model=iris&limit=2").await, 200);
    let page = page["events"].as_array().expect("events").clone();
    assert_eq!(page.len(), 2);
    let last = page[1]["id"].as_i64().expect("id");
    let next = get(
        app,
        &format!("/api/v1/audit?model=iris&after_id={last}&limit=1"),
    )
    .await;
    let next = expect_status(&next, 200);
    assert!(next["events"][0]["id"].as_i64().expect("id") > last);
    let reply = get(app, "/api/v1/audit?since=soon").await;
    assert!(expect_status(&reply, 400).to_string().contains("since"));
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_stored() {
    let r = registry_app().await;
    let app = &r.app;

    let reply = send_bytes(
        app,
        Method::POST,
        "/api/v1/artifacts",
        b"not a model".to_vec(),
    )
    .await;
    let error = expect_status(&reply, 400)["error"].to_string();
    assert!(error.contains("not an ONNX model"), "{error}");
    assert!(r.stored_files().is_empty(), "{:?}", r.stored_files());

    let other = sha256(&model_bytes("logreg"));
    let uri = format!("/api/v1/artifacts?sha256={other}");
    let reply = send_bytes(app, Method::POST, &uri, model_bytes("iris")).await;
    let error = expect_status(&reply, 400)["error"].to_string();
    assert!(error.contains("digest mismatch"), "{error}");
    assert!(r.stored_files().is_empty(), "{:?}", r.stored_files());

    let reply = send_bytes(app, Method::POST, "/api/v1/artifacts?sha256=xyz", vec![1]).await;
    expect_status(&reply, 400);
    let reply = send_bytes(app, Method::POST, "/api/v1/artifacts?sha=1", vec![1]).await;
    assert!(expect_status(&reply, 400).to_string().contains("sha"));

    let reply = call(
        app,
        Method::POST,
        "/api/v1/models/iris/versions",
        Some(json!({"artifact_sha256": other})),
        None,
    )
    .await;
    expect_status(&reply, 404);
    let reply = call(
        app,
        Method::POST,
        "/api/v1/models/iris/versions",
        Some(json!({"artifact": other})),
        None,
    )
    .await;
    assert!(expect_status(&reply, 400).to_string().contains("artifact"));
}

/// The iris model with one more initializer, whose bytes are in an
/// external file, as `onnx.save_model(..., save_as_external_data=True)`
/// writes it.
fn model_with_external_data(location: &str) -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb::{
        tensor_proto::DataLocation, ModelProto, StringStringEntryProto, TensorProto,
    };

    let mut model = ModelProto::decode(model_bytes("iris").as_slice()).expect("iris decodes");
    let graph = model.graph.as_mut().expect("iris has a graph");
    graph.initializer.push(TensorProto {
        name: "leaked".to_owned(),
        data_type: 2, // UINT8
        dims: vec![16],
        data_location: Some(DataLocation::External as i32),
        external_data: vec![StringStringEntryProto {
            key: "location".to_owned(),
            value: location.to_owned(),
        }],
        ..TensorProto::default()
    });
    model.encode_to_vec()
}

#[tokio::test]
async fn uploads_of_models_with_external_data_are_refused() {
    let r = registry_app().await;
    for location in ["etc/passwd", "data/registry.db", "/etc/hostname"] {
        let bytes = model_with_external_data(location);
        let reply = send_bytes(&r.app, Method::POST, "/api/v1/artifacts", bytes).await;
        let error = expect_status(&reply, 400)["error"].to_string();
        assert!(error.contains("external data"), "{error}");
        assert!(error.contains(location), "{error}");
        assert!(r.stored_files().is_empty(), "{:?}", r.stored_files());
    }
}

#[tokio::test]
async fn uploads_stop_at_max_artifact_bytes() {
    let config = ServerConfig {
        max_artifact_bytes: 1000,
        ..Default::default()
    };
    let r = registry_app_with(config).await;
    let declared = Request::post("/api/v1/artifacts")
        .header("content-type", "application/octet-stream")
        .header("content-length", "6985")
        .body(Body::from(model_bytes("iris")))
        .expect("request");
    let error = expect_status(&send(&r.app, declared).await, 413)["error"].to_string();
    assert!(error.contains("1000 bytes"), "{error}");

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![7; 800]), Ok(vec![7; 800])];
    let streamed = Request::post("/api/v1/artifacts")
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .expect("request");
    let error = expect_status(&send(&r.app, streamed).await, 413)["error"].to_string();
    assert!(error.contains("1000 bytes"), "{error}");
    assert!(r.stored_files().is_empty(), "{:?}", r.stored_files());

    // JSON routes keep their own small limit, whatever the artifact limit.
    let card = "x".repeat(2 * 1024 * 1024).into_bytes();
    let uri = "/api/v1/models/iris/versions/1/card";
    expect_status(&send_bytes(&r.app, Method::PUT, uri, card).await, 413);
}

#[tokio::test]
async fn serving_follows_an_alias_through_the_serving_config() {
    let r = registry_app().await;
    let app = &r.app;
    assert_eq!(register(app, "iris", "iris").await, 1);
    assert_eq!(register(app, "iris", "rf_classifier").await, 2);
    let config_uri = "/api/v1/models/iris/serving-config";

    // A config naming an alias that does not exist is refused.
    let config = json!({"serve": {"alias": "champion"}});
    let reply = call(app, Method::PUT, config_uri, Some(config.clone()), None).await;
    let error = expect_status(&reply, 409)["error"].to_string();
    assert!(error.contains("alias 'champion' does not exist"), "{error}");

    let alias_uri = "/api/v1/models/iris/aliases/champion";
    let reply = call(
        app,
        Method::PUT,
        alias_uri,
        Some(json!({"version": 2})),
        None,
    )
    .await;
    let set = expect_status(&reply, 200);
    assert_eq!(set["alias"], "champion");
    assert_eq!(set["serving"]["serving_version"], Value::Null, "{set}");

    let reply = call(
        app,
        Method::PUT,
        config_uri,
        Some(config.clone()),
        Some("carol"),
    )
    .await;
    let stored = expect_status(&reply, 200);
    assert_eq!(stored["revision"]["revision"], 1);
    assert_eq!(stored["revision"]["actor"], "carol");
    assert_eq!(stored["serving"]["serving_version"], "2", "{stored}");
    assert_eq!(stored["serving"]["target_version"], 2);
    assert_eq!(stored["serving"]["config_revision"], 1);
    assert_eq!(served_version(app, "iris").await, Ok("2".to_owned()));

    let reply = call(
        app,
        Method::PUT,
        alias_uri,
        Some(json!({"version": 1})),
        None,
    )
    .await;
    assert_eq!(
        expect_status(&reply, 200)["serving"]["serving_version"],
        "1"
    );
    assert_eq!(served_version(app, "iris").await, Ok("1".to_owned()));
    let aliases = expect_status(&get(app, "/api/v1/models/iris/aliases").await, 200);
    assert_eq!(aliases, json!({"aliases": {"champion": 1}}));
    let model = expect_status(&get(app, "/api/v1/models/iris").await, 200);
    assert_eq!(model["aliases"]["champion"], 1);
    let resolved = get(app, "/api/v1/resolve?uri=models:/iris@champion").await;
    assert_eq!(expect_status(&resolved, 200)["version"], 1);
    let reply = call(
        app,
        Method::PUT,
        alias_uri,
        Some(json!({"version": 9})),
        None,
    )
    .await;
    expect_status(&reply, 404);

    // Deleting the served alias is refused unless unloading is asked for.
    let reply = call(app, Method::DELETE, alias_uri, None, None).await;
    let error = expect_status(&reply, 409)["error"].to_string();
    assert!(
        error.contains("deleting alias 'champion' would leave"),
        "{error}"
    );
    assert_eq!(served_version(app, "iris").await, Ok("1".to_owned()));
    let unload_uri = format!("{alias_uri}?unload=true");
    let reply = call(app, Method::DELETE, &unload_uri, None, None).await;
    assert_eq!(
        expect_status(&reply, 200)["serving"]["serving_version"],
        Value::Null
    );
    assert!(served_version(app, "iris").await.is_err());
    expect_status(
        &call(app, Method::DELETE, &unload_uri, None, None).await,
        404,
    );

    for (bad, field) in [
        (json!({"serve": "canary"}), "serve"),
        (json!({"batching": {"max_batch_size": 0}}), "max_batch_size"),
        (json!({"intra_op_threads": 0}), "intra_op_threads"),
        (json!({"colour": "red"}), "colour"),
        (json!([1]), "object"),
    ] {
        let reply = call(app, Method::PUT, config_uri, Some(bad.clone()), None).await;
        let error = expect_status(&reply, 400)["error"].to_string();
        assert!(error.contains(field), "{bad}: {error}");
    }
    let current = expect_status(&get(app, config_uri).await, 200);
    assert_eq!(current, json!({"revision": 1, "config": config}));
    let history = get(app, "/api/v1/models/iris/serving-config/history").await;
    let history = expect_status(&history, 200);
    assert_eq!(history["revisions"].as_array().expect("revisions").len(), 1);

    let fresh = call(
        app,
        Method::POST,
        "/api/v1/models",
        Some(json!({"name": "x"})),
        None,
    )
    .await;
    expect_status(&fresh, 201);
    let current = expect_status(&get(app, "/api/v1/models/x/serving-config").await, 200);
    assert_eq!(current, json!({"revision": null, "config": {}}));
    let done = actions(&expect_status(
        &get(app, "/api/v1/models/iris/history").await,
        200,
    ));
    for action in ["set_serving_config", "set_alias", "delete_alias"] {
        assert!(done.iter().any(|a| a == action), "{action} not in {done:?}");
    }
}

#[tokio::test]
async fn models_versions_and_documents_with_their_error_statuses() {
    let r = registry_app().await;
    let app = &r.app;
    let models = "/api/v1/models";

    let new = json!({"name": "m1", "description": "first", "tags": {"team": "fraud"}});
    let created = expect_status(
        &call(app, Method::POST, models, Some(new.clone()), None).await,
        201,
    );
    assert_eq!(created["tags"]["team"], "fraud");
    expect_status(&call(app, Method::POST, models, Some(new), None).await, 409);
    let unknown = call(app, Method::POST, models, Some(json!({"nme": "x"})), None).await;
    assert!(expect_status(&unknown, 400)["error"]
        .to_string()
        .contains("nme"));
    let no_body = call(app, Method::POST, models, None, None).await;
    expect_status(&no_body, 400);

    let listed = expect_status(&get(app, "/api/v1/models?tag=team=fraud").await, 200);
    assert_eq!(listed["models"][0]["name"], "m1");
    let listed = expect_status(&get(app, "/api/v1/models?name_contains=zz").await, 200);
    assert_eq!(listed["models"], json!([]));
    expect_status(&get(app, "/api/v1/models?tag=team").await, 400);
    let patch = json!({"description": "second"});
    let patched = call(app, Method::PATCH, "/api/v1/models/m1", Some(patch), None).await;
    assert_eq!(expect_status(&patched, 200)["description"], "second");
    let tag = "/api/v1/models/m1/tags/owner";
    expect_status(
        &call(app, Method::PUT, tag, Some(json!({"value": "ops"})), None).await,
        204,
    );
    expect_status(&call(app, Method::DELETE, tag, None, None).await, 204);
    expect_status(&call(app, Method::DELETE, tag, None, None).await, 404);

    let error = expect_status(&get(app, "/api/v1/models/nope").await, 404)["error"].to_string();
    assert!(error.contains("nope"), "{error}");
    expect_status(&get(app, "/api/v1/models/nope/serving").await, 404);
    expect_status(&get(app, "/api/v1/models/nope/versions").await, 404);

    assert_eq!(register(app, "m1", "iris").await, 1);
    expect_status(&get(app, "/api/v1/models/m1/versions/9").await, 404);
    let error = expect_status(&get(app, "/api/v1/models/m1/versions/abc").await, 400);
    assert!(error["error"].to_string().contains("version"), "{error}");
    let stage = "/api/v1/models/m1/versions/1/stage";
    let reply = call(
        app,
        Method::POST,
        stage,
        Some(json!({"stage": "Prod"})),
        None,
    )
    .await;
    assert!(expect_status(&reply, 400)["error"]
        .to_string()
        .contains("stage"));
    promote(app, "m1", 1, "Production").await;
    let rollback = "/api/v1/models/m1/rollback";
    expect_status(&call(app, Method::POST, rollback, None, None).await, 409);
    let v1 = "/api/v1/models/m1/versions/1";
    expect_status(&call(app, Method::DELETE, v1, None, None).await, 409);
    expect_status(
        &call(app, Method::DELETE, "/api/v1/models/m1", None, None).await,
        409,
    );

    let card = format!("{v1}/card");
    expect_status(&get(app, &card).await, 404);
    let markdown = b"# m1\n\nA test model.\n".to_vec();
    expect_status(
        &send_bytes(app, Method::PUT, &card, markdown.clone()).await,
        204,
    );
    let reply = get(app, &card).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert!(reply.headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/markdown"));
    assert_eq!(reply.body, markdown);
    let profile = format!("{v1}/profile");
    expect_status(&get(app, &profile).await, 404);
    let unreadable = json!({"features": {"a": {"mean": 1.5}}});
    let reply = call(app, Method::PUT, &profile, Some(unreadable), None).await;
    let refused = expect_status(&reply, 400);
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("reference profile"),
        "{refused}"
    );
    let reference = reference_profile();
    let reply = call(app, Method::PUT, &profile, Some(reference.clone()), None).await;
    expect_status(&reply, 204);
    assert_eq!(expect_status(&get(app, &profile).await, 200), reference);
    let lineage = expect_status(&get(app, &format!("{v1}/lineage")).await, 200);
    assert_eq!(lineage["parent_version"], Value::Null);
    let vtag = format!("{v1}/tags/reviewed");
    let reply = call(app, Method::PUT, &vtag, Some(json!({"value": "yes"})), None).await;
    expect_status(&reply, 204);
    assert_eq!(
        expect_status(&get(app, v1).await, 200)["tags"]["reviewed"],
        "yes"
    );
    expect_status(&call(app, Method::DELETE, &vtag, None, None).await, 204);

    let reply = get(app, &format!("{v1}/artifact")).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, model_bytes("iris"));
    let blob = r
        .stored_files()
        .into_iter()
        .next()
        .expect("one blob stored");
    std::fs::write(&blob, b"tampered").expect("corrupt the blob");
    let error = expect_status(&get(app, &format!("{v1}/artifact")).await, 500);
    assert!(error["error"].to_string().contains("corrupted"), "{error}");

    let reply = call(app, Method::PATCH, "/api/v1/audit", None, None).await;
    assert!(expect_status(&reply, 405)["error"]
        .to_string()
        .contains("GET"));
    assert_eq!(reply.headers["allow"], "GET");
    expect_status(&get(app, "/api/v1/resolve?uri=iris").await, 400);

    let archive = call(
        app,
        Method::POST,
        stage,
        Some(json!({"stage": "Archived"})),
        None,
    )
    .await;
    let error = expect_status(&archive, 409)["error"].to_string();
    assert!(
        error.contains("no ready version is in Production"),
        "{error}"
    );
    let archive = call(
        app,
        Method::POST,
        &format!("{stage}?unload=true"),
        Some(json!({"stage": "Archived"})),
        None,
    )
    .await;
    expect_status(&archive, 200);
    expect_status(&call(app, Method::DELETE, v1, None, None).await, 204);
    expect_status(&get(app, v1).await, 404);
    expect_status(
        &call(app, Method::DELETE, "/api/v1/models/m1", None, None).await,
        204,
    );
    expect_status(&get(app, "/api/v1/models/m1").await, 404);
    let history = expect_status(&get(app, "/api/v1/models/m1/history").await, 200);
    assert!(actions(&history).iter().any(|a| a == "delete_model"));
}

#[tokio::test]
async fn repository_extension_lists_loads_and_unloads() {
    let r = registry_app().await;
    let app = &r.app;
    register(app, "iris", "iris").await;
    promote(app, "iris", 1, "Production").await;
    register(app, "idle", "logreg").await;

    let index = expect_status(&get(app, "/v2/repository/index").await, 200);
    let rows = index.as_array().expect("rows");
    assert!(
        rows.contains(&json!({"name": "iris", "version": "1", "state": "READY"})),
        "{index}"
    );
    assert!(rows
        .iter()
        .any(|row| row["name"] == "idle" && row["state"] == "UNAVAILABLE"));
    let unload = "/v2/repository/models/iris/unload";
    assert_eq!(
        expect_status(&call(app, Method::POST, unload, None, None).await, 200),
        json!({})
    );
    assert!(served_version(app, "iris").await.is_err());
    let index = expect_status(&get(app, "/v2/repository/index").await, 200);
    let row = index
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["name"] == "iris")
        .expect("iris row")
        .clone();
    assert_eq!(row["state"], "UNAVAILABLE");
    assert_eq!(row["reason"], "unloaded");
    let ready = json!({"ready": true});
    let reply = call(
        app,
        Method::POST,
        "/v2/repository/index",
        Some(ready.clone()),
        None,
    )
    .await;
    assert_eq!(expect_status(&reply, 200), json!([]));

    let load = "/v2/repository/models/iris/load";
    assert_eq!(
        expect_status(&call(app, Method::POST, load, None, None).await, 200),
        json!({})
    );
    assert_eq!(served_version(app, "iris").await, Ok("1".to_owned()));
    let reply = call(app, Method::POST, "/v2/repository/index", Some(ready), None).await;
    let ready_rows = expect_status(&reply, 200);
    assert_eq!(
        ready_rows.as_array().expect("rows").len(),
        1,
        "{ready_rows}"
    );
    let all = call(app, Method::POST, "/v2/repository/index", None, None).await;
    assert_eq!(expect_status(&all, 200).as_array().expect("rows").len(), 2);

    let idle = "/v2/repository/models/idle/load";
    // Nothing to serve is the model's state, not a server failure: 409.
    let error = expect_status(&call(app, Method::POST, idle, None, None).await, 409);
    let message = error["error"].to_string();
    assert!(
        message.contains("idle") && message.contains("nothing to serve"),
        "{error}"
    );
    expect_status(
        &call(
            app,
            Method::POST,
            "/v2/repository/models/nope/load",
            None,
            None,
        )
        .await,
        404,
    );
    let metadata = expect_status(&get(app, "/v2").await, 200);
    assert_eq!(
        metadata["extensions"],
        json!([
            "binary_tensor_data",
            "model_configuration",
            "statistics",
            "model_repository"
        ])
    );
}

/// Every route of the OpenAPI document exists, and without a registry it
/// answers 503 (the document itself is always served).
#[tokio::test]
async fn without_a_registry_every_documented_route_is_unavailable() {
    let app = default_app(Vec::new()).await;
    let doc = expect_status(&get(&app, "/api/v1/openapi.json").await, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        // Triton's config and statistics need no registry, only served
        // models; the live figures come from the server's own metrics.
        if path == "/api/v1/openapi.json"
            || path == "/api/v1/whoami"
            || path == "/api/v1/live"
            || path.ends_with("/config")
            || path.ends_with("/stats")
        {
            continue;
        }
        let uri = path
            .replace("{model}", "iris")
            .replace("{version}", "1")
            .replace("{key}", "k")
            .replace("{alias}", "a");
        for method in item.as_object().expect("path item").keys() {
            let method: Method = method.to_uppercase().parse().expect("method");
            let reply = call(&app, method.clone(), &uri, Some(json!({})), None).await;
            if path.ends_with("/faults") {
                // Fault injection needs no registry, only the server's consent.
                let body = expect_status(&reply, 409);
                assert!(body["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("fault injection is off"));
                continue;
            }
            let body = expect_status(&reply, 503);
            assert_eq!(
                body["error"], "the model registry is not enabled on this server",
                "{method} {uri}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} routes documented");
    let metadata = expect_status(&get(&app, "/v2").await, 200);
    assert_eq!(
        metadata["extensions"],
        json!(["binary_tensor_data", "model_configuration", "statistics"])
    );
}

#[tokio::test]
async fn version_policy_keeps_older_versions_addressable_and_configs_apply_live() {
    let r = registry_app().await;
    let app = &r.app;
    assert_eq!(register(app, "iris", "iris").await, 1);
    assert_eq!(register(app, "iris", "rf_classifier").await, 2);
    promote(app, "iris", 1, "Production").await;
    promote(app, "iris", 2, "Production").await;
    let v1_uri = "/v2/models/iris/versions/1/infer";
    assert_eq!(
        answering_version(app, v1_uri).await,
        Err(404),
        "archived v1 unloaded"
    );

    let config_uri = "/api/v1/models/iris/serving-config";
    let config = json!({"version_policy": {"specific": [1]}, "request_timeout_ms": 5000});
    let reply = call(app, Method::PUT, config_uri, Some(config), None).await;
    let serving = expect_status(&reply, 200)["serving"].clone();
    assert_eq!(serving["serving_version"], "2", "{serving}");
    assert_eq!(loaded_versions(&serving), ["1", "2"], "{serving}");
    assert_eq!(answering_version(app, v1_uri).await, Ok("1".to_owned()));
    assert_eq!(served_version(app, "iris").await, Ok("2".to_owned()));

    // `latest` counts the version the promotion archived: it stays loaded
    // for a `previous` fallback.
    let config = json!({"version_policy": {"latest": 2}});
    let reply = call(app, Method::PUT, config_uri, Some(config), None).await;
    let serving = expect_status(&reply, 200)["serving"].clone();
    assert_eq!(loaded_versions(&serving), ["1", "2"], "{serving}");

    // A batching change reloads the served version and keeps it serving.
    let config = json!({"batching": {"max_batch_size": 2, "instance_count": 2}});
    let reply = call(app, Method::PUT, config_uri, Some(config), None).await;
    let serving = expect_status(&reply, 200)["serving"].clone();
    assert_eq!(serving["serving_version"], "2", "{serving}");
    assert_eq!(serving["failures"], json!([]), "{serving}");
    assert_eq!(serving["config_revision"], 3);
    assert_eq!(
        answering_version(app, v1_uri).await,
        Err(404),
        "policy back to serving only"
    );
    assert_eq!(served_version(app, "iris").await, Ok("2".to_owned()));
    let history = expect_status(&get(app, "/api/v1/models/iris/history").await, 200);
    let configs = actions(&history)
        .iter()
        .filter(|a| *a == "set_serving_config")
        .count();
    assert_eq!(configs, 3);
}

/// The version labels a serving status lists, in order.
fn loaded_versions(serving: &Value) -> Vec<String> {
    serving["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["version"].as_str().expect("label").to_owned())
        .collect()
}

/// A valid reference profile of one numeric feature, as `ferroserve
/// profile` builds it.
fn reference_profile() -> Value {
    use ferroserve_monitor::profile::{Cell, ColumnSpec, ProfileBuilder};
    let mut builder =
        ProfileBuilder::new(vec![ColumnSpec::inferred("sepal_length")]).expect("one column");
    for x in [5.1, 4.9, 6.3, 5.8, 7.1] {
        builder.push_row(&[Cell::Number(x)]).expect("one cell");
    }
    builder.finish().expect("rows").to_json()
}

#[tokio::test]
async fn a_model_card_is_accepted_as_documented_markdown() {
    let r = registry_app().await;
    let app = &r.app;
    assert_eq!(register(app, "m1", "iris").await, 1);
    let card = "/api/v1/models/m1/versions/1/card";
    let markdown = "# m1\n\nA test model.\n";
    let put = Request::builder()
        .method(Method::PUT)
        .uri(card)
        .header("content-type", "text/markdown; charset=utf-8")
        .body(Body::from(markdown))
        .expect("request");
    expect_status(&send(app, put).await, 204);
    let reply = get(app, card).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, markdown.as_bytes());
}
