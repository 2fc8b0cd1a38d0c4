//! The server's edge: webhook targets and secrets in serving configs, the
//! checks against cross-site requests (content type, origin, host, CORS),
//! and the connection limits (header and body read timeouts, header count).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::registry::*;
use common::{app_with, get, send};
use ferroserve_registry::AuditFilter;
use ferroserve_server::{HttpLimits, ServerConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONFIG_URI: &str = "/api/v1/models/iris/serving-config";
const SECRET: &str = "s3cr3t";

async fn served_iris() -> RegistryApp {
    let r = registry_app().await;
    assert_eq!(register(&r.app, "iris", "iris").await, 1);
    promote(&r.app, "iris", 1, "Production").await;
    r
}

#[tokio::test]
async fn webhooks_to_internal_hosts_and_unbounded_retries_are_refused() {
    let r = served_iris().await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:9200/_bulk",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
    ] {
        let config = json!({"monitoring": {"webhook": {"url": url}}});
        let reply = call(&r.app, Method::PUT, CONFIG_URI, Some(config), None).await;
        let error = expect_status(&reply, 400)["error"].to_string();
        assert!(error.contains("--webhook-allow"), "{url}: {error}");
        assert!(error.contains("webhook host"), "{url}: {error}");
    }
    for (field, value) in [("max_attempts", 4_294_967_295_u64), ("timeout_ms", 600_000)] {
        let config =
            json!({"monitoring": {"webhook": {"url": "https://8.8.8.8/hook", field: value}}});
        let reply = call(&r.app, Method::PUT, CONFIG_URI, Some(config), None).await;
        let error = expect_status(&reply, 400)["error"].to_string();
        assert!(error.contains(field), "{error}");
    }
    let config = json!({"monitoring": {"webhook": {"url": "https://8.8.8.8/hook"}}});
    let reply = call(&r.app, Method::PUT, CONFIG_URI, Some(config), None).await;
    expect_status(&reply, 200);
}

/// Panics if `value` shows the secret anywhere.
fn assert_hidden(what: &str, value: &Value) {
    let text = value.to_string();
    assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
}

#[tokio::test]
async fn webhook_secrets_are_hidden_from_every_read_and_survive_a_round_trip() {
    let r = served_iris().await;
    let url = format!("https://bot:{SECRET}@8.8.8.8/services/T0/{SECRET}?token={SECRET}");
    let config = json!({"monitoring": {"webhook": {
        "url": url,
        "headers": {"Authorization": format!("Bearer {SECRET}"), "X-Team": "search"}
    }}});
    let reply = call(&r.app, Method::PUT, CONFIG_URI, Some(config), None).await;
    assert_hidden("PUT serving-config", &expect_status(&reply, 200));

    let current = expect_status(&get(&r.app, CONFIG_URI).await, 200);
    assert_hidden("GET serving-config", &current);
    let webhook = &current["config"]["monitoring"]["webhook"];
    assert_eq!(webhook["url"], "https://8.8.8.8/***");
    assert_eq!(webhook["headers"]["Authorization"], "***");

    // GET, change, PUT: the hidden values keep what is stored.
    let mut changed = current["config"].clone();
    changed["monitoring"]["webhook"]["max_attempts"] = json!(3);
    let reply = call(&r.app, Method::PUT, CONFIG_URI, Some(changed), None).await;
    expect_status(&reply, 200);
    let registry = r.controller.lifecycle().registry();
    let stored = registry
        .serving_config("iris")
        .await
        .expect("registry")
        .expect("a revision");
    let webhook = &stored.config["monitoring"]["webhook"];
    assert_eq!(webhook["url"], url.as_str());
    assert_eq!(
        webhook["headers"]["Authorization"],
        format!("Bearer {SECRET}")
    );
    assert_eq!(webhook["max_attempts"], 3);

    // A hidden header with nothing stored is refused, naming it.
    let config = json!({"monitoring": {"webhook": {
        "url": "https://8.8.8.8/x", "headers": {"X-New": "***"}
    }}});
    let reply = call(&r.app, Method::PUT, CONFIG_URI, Some(config), None).await;
    let error = expect_status(&reply, 400)["error"].to_string();
    assert!(error.contains("X-New"), "{error}");

    for uri in [
        "/api/v1/models/iris/serving-config/history",
        "/api/v1/audit?limit=1000",
        "/api/v1/models/iris/history?limit=1000",
    ] {
        let page = expect_status(&get(&r.app, uri).await, 200);
        assert_hidden(uri, &page);
    }
    // Audit snapshots are stored redacted, not only read so.
    let filter = AuditFilter {
        model: Some("iris".to_owned()),
        limit: Some(1000),
        ..Default::default()
    };
    let events = registry.audit_page(&filter).await.expect("audit page");
    assert_hidden(
        "stored audit events",
        &serde_json::to_value(&events).expect("JSON"),
    );
}

/// A `method uri` request with `headers` and `body`.
fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_owned())).expect("request")
}

#[tokio::test]
async fn state_changing_bodies_need_a_json_multipart_or_binary_content_type() {
    let r = registry_app().await;
    let create = json!({"name": "m1"}).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        let reply = send(
            &r.app,
            request(Method::POST, "/api/v1/models", &headers, &create),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let error = reply.error();
        assert!(error.contains("application/json"), "{error}");
        assert!(error.contains("multipart/form-data"), "{error}");
        assert!(error.contains(content_type.unwrap_or("none")), "{error}");
    }
    let json_type = [("content-type", "application/json; charset=utf-8")];
    let reply = send(
        &r.app,
        request(Method::POST, "/api/v1/models", &json_type, &create),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.error());
    // A request with no body has nothing to misread.
    let reply = send(
        &r.app,
        request(Method::POST, "/v2/repository/index", &[], ""),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // Inference may come untyped (as KServe clients send it), not mistyped.
    let infer = json!({"inputs": []}).to_string();
    let reply = send(
        &r.app,
        request(Method::POST, "/v2/models/nope/infer", &[], &infer),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.error());
    let plain = [("content-type", "text/plain")];
    let reply = send(
        &r.app,
        request(Method::POST, "/v2/models/nope/infer", &plain, &infer),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Reads are not checked.
    let reply = send(&r.app, request(Method::GET, "/api/v1/models", &[], "")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_site_writes_and_foreign_hosts_are_refused() {
    let r = registry_app().await;
    let json_type = ("content-type", "application/json");
    let body = json!({"name": "m1"}).to_string();
    let evil = [
        json_type,
        ("origin", "http://evil.example"),
        ("host", "localhost:8080"),
    ];
    let reply = send(
        &r.app,
        request(Method::POST, "/api/v1/models", &evil, &body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply.error().contains("--cors-origin http://evil.example"),
        "{}",
        reply.error()
    );
    let own = [
        json_type,
        ("origin", "http://localhost:8080"),
        ("host", "localhost:8080"),
    ];
    let reply = send(&r.app, request(Method::POST, "/api/v1/models", &own, &body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.error());

    // The default listener is loopback: only loopback names are answered.
    for host in ["localhost", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST:1"] {
        let reply = send(&r.app, request(Method::GET, "/v2", &[("host", host)], "")).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
    }
    for host in ["evil.example", "evil.example:8080", "10.0.0.1:8080"] {
        let reply = send(&r.app, request(Method::GET, "/v2", &[("host", host)], "")).await;
        assert_eq!(reply.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(reply.error().contains("loopback"), "{}", reply.error());
    }
    // On another address any name is served.
    let config = ServerConfig {
        http: SocketAddr::from(([0, 0, 0, 0], 8080)),
        ..Default::default()
    };
    let (app, _) = app_with(Vec::new(), config).await;
    let reply = send(
        &app,
        request(Method::GET, "/v2", &[("host", "models.example")], ""),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let allowed = "https://app.example.com";
    let config = ServerConfig {
        limits: HttpLimits {
            cors_origins: ferroserve_server::cors::parse_origins(&[allowed.to_owned()])
                .expect("origin"),
            ..Default::default()
        },
        ..Default::default()
    };
    let (app, _) = app_with(Vec::new(), config).await;
    let preflight = |origin: &str| {
        request(
            Method::OPTIONS,
            "/api/v1/models",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
        )
    };
    let reply = send(&app, preflight(allowed)).await;
    assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], allowed);
    let reply = send(&app, preflight("https://evil.example")).await;
    assert!(!reply
        .headers
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

    // Without origins, no CORS answer at all.
    let (app, _) = app_with(Vec::new(), ServerConfig::default()).await;
    let reply = send(&app, preflight(allowed)).await;
    assert!(!reply
        .headers
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

/// A server on a free local port with short header and body timeouts.
async fn listening() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("address");
    let config = ServerConfig {
        http: address,
        limits: HttpLimits {
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
            max_header_count: 20,
            ..Default::default()
        },
        ..Default::default()
    };
    let (_, state) = app_with(Vec::new(), config).await;
    tokio::spawn(ferroserve_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    address
}

/// What the server sends on `socket` until it closes it or `marker`
/// arrives (or 10 s pass, which fails the test).
async fn read_until(socket: &mut tokio::net::TcpStream, marker: &str) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0_u8; 4096];
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
            if String::from_utf8_lossy(&answer).contains(marker) {
                break;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed the connection"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

/// Marks the end of an answer's head.
const HEAD_END: &str = "\r\n\r\n";

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let address = listening().await;
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    socket
        .write_all(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write");
    // hyper closes the connection (some versions answer 408 first).
    let answer = read_until(&mut socket, "\u{0}").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // So is one that sends nothing at all.
    let mut idle = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    assert_eq!(read_until(&mut idle, "\u{0}").await, "");

    // A complete request is still served.
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    socket
        .write_all(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = read_until(&mut socket, HEAD_END).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408() {
    let address = listening().await;
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    socket
        .write_all(
            b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"inputs\": [",
        )
        .await
        .expect("write");
    let answer = read_until(&mut socket, "body_read_timeout_ms").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_read_timeout_ms"), "{answer}");
}

#[tokio::test]
async fn too_many_headers_are_refused() {
    let address = listening().await;
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut head = String::from("GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..30 {
        head.push_str(&format!("X-H{i}: v\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await.expect("write");
    let answer = read_until(&mut socket, HEAD_END).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}
