//! Who may call what over gRPC, and the services beside inference: every
//! method's access against its HTTP route's, credentials and roles,
//! health per model, reflection, and the repository calls.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::Method as HttpMethod;
use common::grpc::*;
use common::registry::{promote, register, registry_app};
use common::*;
use ferroserve_core::{Access, ModelPattern, Role};
use ferroserve_registry::{NewApiKey, Registry};
use ferroserve_server::auth::{Auth, KeyRing};
use ferroserve_server::grpc::access::access_table;
use ferroserve_server::grpc::proto::{
    ModelMetadataRequest, RepositoryIndexRequest, RepositoryModelLoadRequest,
    RepositoryModelUnloadRequest, ServerLiveRequest,
};
use ferroserve_server::grpc::GrpcOptions;
use ferroserve_server::{AppState, ServerConfig};
use ferroserve_serving::{ModelManager, Pipeline};
use futures::StreamExt;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

#[tokio::test]
async fn every_method_needs_the_access_of_its_http_route() {
    let (_, state) = app_with(vec![], ServerConfig::default()).await;
    let http: HashMap<(HttpMethod, &str), Access> = ferroserve_server::access_table(&state)
        .into_iter()
        .map(|(method, path, access, _)| ((method, path), access))
        .collect();
    let counterpart = |method: &str| -> (HttpMethod, &'static str) {
        match method.rsplit('/').next().expect("a method name") {
            "ServerLive" => (HttpMethod::GET, "/v2/health/live"),
            "ServerReady" => (HttpMethod::GET, "/v2/health/ready"),
            "ModelReady" | "Check" => (HttpMethod::GET, "/v2/models/{model}/ready"),
            "ServerMetadata" => (HttpMethod::GET, "/v2"),
            "ModelMetadata" | "ModelConfig" | "ModelStatistics" => {
                (HttpMethod::GET, "/v2/models/{model}")
            }
            "ModelInfer" | "ModelStreamInfer" => (HttpMethod::POST, "/v2/models/{model}/infer"),
            "RepositoryIndex" => (HttpMethod::GET, "/v2/repository/index"),
            "RepositoryModelLoad" => (HttpMethod::POST, "/v2/repository/models/{model}/load"),
            "RepositoryModelUnload" => (HttpMethod::POST, "/v2/repository/models/{model}/unload"),
            other => panic!("no HTTP counterpart for {other}"),
        }
    };
    for (method, access) in access_table() {
        let route = counterpart(method);
        assert_eq!(
            Some(&access),
            http.get(&route),
            "{method} has access {access:?}, its HTTP route {route:?} another"
        );
    }
}

/// A server that admits no caller without credentials, with keys of
/// roles admin, reader and predictor, and a predictor limited to models
/// named `other*`; returns its address and the tokens by key name.
async fn keyed_server() -> (std::net::SocketAddr, HashMap<&'static str, String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
    let registry = Registry::connect(&url).await.expect("registry opens");
    let mut tokens = HashMap::new();
    for (name, role, models) in [
        ("admin", Role::Admin, vec![]),
        ("reader", Role::Reader, vec![]),
        ("predictor", Role::Predictor, vec![]),
        ("limited", Role::Predictor, vec!["other*"]),
    ] {
        let spec = NewApiKey {
            name: name.into(),
            role,
            models: models
                .into_iter()
                .map(|p| ModelPattern::new(p).expect("pattern"))
                .collect(),
            expires_at: None,
        };
        let (_, token) = registry.create_api_key(&spec, "test").await.expect("key");
        tokens.insert(name, token);
    }
    let keys = KeyRing::load(registry).await.expect("keys load");
    let config = ServerConfig::default();
    let manager = Arc::new(ModelManager::new(Arc::new(engines())));
    let pipeline = Arc::new(Pipeline::new(manager, config.request_timeout));
    let state = Arc::new(
        AppState::new(pipeline, config, ferroserve_server::telemetry::prometheus())
            .with_auth(Arc::new(Auth::new(None).with_keys(keys))),
    );
    ferroserve_server::spawn_model_loading(state.clone(), vec![iris()])
        .await
        .expect("models load");
    let address = serve(state.clone(), GrpcOptions::for_state(&state)).await;
    // The registry's folder lives as long as the test process.
    std::mem::forget(dir);
    (address, tokens)
}

#[tokio::test]
async fn credentials_roles_and_model_patterns_are_checked_like_http() {
    let (address, tokens) = keyed_server().await;
    let mut client = client(address).await;
    client
        .server_live(ServerLiveRequest {})
        .await
        .expect("liveness is open to anyone");

    let status = client
        .model_infer(iris_request("anonymous"))
        .await
        .expect_err("no key");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("needs credentials"), "{status:?}");

    let status = client
        .model_infer(with_token(iris_request("bad"), "fs_not_a_key"))
        .await
        .expect_err("unknown key");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let status = client
        .model_infer(with_token(iris_request("reader"), &tokens["reader"]))
        .await
        .expect_err("a reader may not infer");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("needs role"), "{status:?}");
    let metadata = ModelMetadataRequest {
        name: "iris".into(),
        version: String::new(),
    };
    client
        .model_metadata(with_token(metadata.clone(), &tokens["reader"]))
        .await
        .expect("a reader reads metadata");

    let status = client
        .model_infer(with_token(iris_request("limited"), &tokens["limited"]))
        .await
        .expect_err("limited to other models");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("may not use model 'iris'"),
        "{status:?}"
    );

    client
        .model_infer(with_token(iris_request("predictor"), &tokens["predictor"]))
        .await
        .expect("a predictor infers");

    // A stream checks the credentials when it opens, each model as it comes.
    let requests = futures::stream::iter(vec![iris_request("s")]);
    let status = client
        .model_stream_infer(requests)
        .await
        .expect_err("no key for the stream");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let requests = futures::stream::iter(vec![iris_request("s")]);
    let mut answers = client
        .model_stream_infer(with_token(requests, &tokens["limited"]))
        .await
        .expect("the stream opens")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("an answer")
        .expect("one answer");
    assert!(
        answer.error_message.contains("may not use model 'iris'"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn health_reports_the_server_and_each_model() {
    let (_, state) = app_with(vec![iris()], ServerConfig::default()).await;
    let address = serve(state.clone(), GrpcOptions::for_state(&state)).await;
    let mut health = HealthClient::new(channel(address).await);
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    for service in ["", "inference.GRPCInferenceService", "iris"] {
        let status = health
            .check(check(service))
            .await
            .expect(service)
            .into_inner();
        assert_eq!(status.status, ServingStatus::Serving as i32, "{service}");
    }
    let status = health
        .check(check("nope"))
        .await
        .expect_err("unknown model");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let mut changes = health
        .watch(check("iris"))
        .await
        .expect("watch")
        .into_inner();
    let first = changes.message().await.expect("a status").expect("first");
    assert_eq!(first.status, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn reflection_lists_every_service() {
    let (_, state) = app_with(vec![iris()], ServerConfig::default()).await;
    let address = serve(state.clone(), GrpcOptions::for_state(&state)).await;
    let mut reflection = ServerReflectionClient::new(channel(address).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers.next().await.expect("one answer").expect("no error");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "inference.GRPCInferenceService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn repository_index_unload_and_load_go_through_the_registry() {
    let r = registry_app().await;
    register(&r.app, "iris", "iris").await;
    promote(&r.app, "iris", 1, "Production").await;
    let address = serve(r.state.clone(), GrpcOptions::for_state(&r.state)).await;
    let mut client = client(address).await;
    let admin = &r.tokens["admin"];
    let index = |ready| {
        with_token(
            RepositoryIndexRequest {
                repository_name: String::new(),
                ready,
            },
            admin,
        )
    };

    let rows = client
        .repository_index(index(false))
        .await
        .expect("index")
        .into_inner();
    let iris_row = rows
        .models
        .iter()
        .find(|m| m.name == "iris")
        .expect("iris row");
    assert_eq!(
        (iris_row.version.as_str(), iris_row.state.as_str()),
        ("1", "READY")
    );

    let unload = RepositoryModelUnloadRequest {
        model_name: "iris".into(),
        ..Default::default()
    };
    client
        .repository_model_unload(with_token(unload, admin))
        .await
        .expect("unload");
    let rows = client
        .repository_index(index(true))
        .await
        .expect("ready index")
        .into_inner();
    assert!(rows.models.is_empty(), "{rows:?}");
    let status = client
        .model_infer(with_token(iris_request("unloaded"), admin))
        .await
        .expect_err("iris is unloaded");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        status.message().contains("none of its versions is loaded"),
        "{status:?}"
    );

    let load = RepositoryModelLoadRequest {
        model_name: "iris".into(),
        ..Default::default()
    };
    client
        .repository_model_load(with_token(load, admin))
        .await
        .expect("load");
    client
        .model_infer(with_token(iris_request("loaded"), admin))
        .await
        .expect("iris serves again");

    let missing = RepositoryModelLoadRequest {
        model_name: "nope".into(),
        ..Default::default()
    };
    let status = client
        .repository_model_load(with_token(missing, admin))
        .await
        .expect_err("unknown model");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = client
        .repository_model_load(RepositoryModelLoadRequest {
            model_name: "iris".into(),
            ..Default::default()
        })
        .await
        .expect_err("anonymous predictors may not load");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("role deployer or admin"),
        "{status:?}"
    );
}
