//! Authentication and roles over the whole route table: every route ×
//! every kind of caller gets exactly the 2xx-or-other / 401 / 403 its
//! declared access says; keys (created, expired, revoked, limited to other
//! models) and JWTs (good, wrong issuer or audience, signed by another
//! key) are checked end to end; the audit log names the principal.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use base64::Engine as _;
use common::registry::{registry_app_with_auth, RegistryApp};
use common::{send, Reply};
use ferroserve_core::{Access, ModelPattern, Role};
use ferroserve_registry::NewApiKey;
use ferroserve_server::auth::{JwtSettings, JwtVerifier, Scope};
use ferroserve_server::{access_table, app, ServerConfig};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "ferroserve";
const SECRET: &[u8] = b"a-test-signing-secret-of-32-bytes!";

/// A caller of the matrix: its name and the credentials it sends.
struct Caller {
    name: &'static str,
    authorization: Option<String>,
    /// What it may do: `None` for callers whose credentials are refused.
    role: Option<Role>,
    /// Whether it is limited to models other than the one the paths name.
    other_models: bool,
    anonymous: bool,
}

fn jwt(secret: &[u8], issuer: &str, audience: &str, role: &str) -> String {
    let claims = json!({
        "sub": "alice@idp",
        "iss": issuer,
        "aud": audience,
        "role": role,
        "exp": 4_000_000_000u64,
    });
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).expect("jwt")
}

/// An app accepting the JWTs the JWKS file `jwks` verifies, from
/// [`ISSUER`], for `audience` (any when `None`), with the role in
/// `role_claim`.
async fn app_with_jwks(
    jwks: &std::path::Path,
    audience: Option<&str>,
    role_claim: &str,
) -> RegistryApp {
    let verifier = JwtVerifier::load(JwtSettings {
        jwks: jwks.display().to_string(),
        issuer: Some(ISSUER.into()),
        audience: audience.map(str::to_owned),
        role_claim: role_claim.into(),
        models_claim: "models".into(),
    })
    .await
    .expect("jwks loads");
    registry_app_with_auth(ServerConfig::default(), |auth| auth.with_jwt(verifier)).await
}

async fn app_with_jwt() -> (RegistryApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("jwks.json");
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET);
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": k}]}).to_string(),
    )
    .expect("jwks");
    let app = app_with_jwks(&jwks, Some(AUDIENCE), "role").await;
    (app, dir)
}

async fn key(
    app: &RegistryApp,
    name: &str,
    role: Role,
    models: &[&str],
    expires_at: Option<i64>,
) -> String {
    let keys = app.state.auth.keys().expect("keys");
    let spec = NewApiKey {
        name: name.into(),
        role,
        models: models
            .iter()
            .map(|p| ModelPattern::new(p).unwrap())
            .collect(),
        expires_at,
    };
    let (_, token) = keys
        .registry()
        .create_api_key(&spec, "test")
        .await
        .expect("key");
    keys.refresh().await.expect("refresh");
    token
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

/// The concrete path of a route pattern.
fn concrete(method: &Method, path: &str) -> String {
    let target = if method == Method::POST {
        "iris:predict"
    } else {
        "iris"
    };
    path.replace("{model}", "iris")
        .replace("{version}", "1")
        .replace("{key}", "k")
        .replace("{alias}", "a")
        .replace("{id}", "nope")
        .replace("{target}", target)
}

async fn call(
    app: &axum::Router,
    method: &Method,
    path: &str,
    authorization: Option<&str>,
) -> Reply {
    let mut request = Request::builder().method(method.clone()).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let body = if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
        request = request.header(header::CONTENT_TYPE, "application/json");
        Body::from("{}")
    } else {
        Body::empty()
    };
    send(app, request.body(body).expect("request")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_its_access_says() {
    let (registry_app, _jwks) = app_with_jwt().await;
    // The router itself, without the test layer that signs requests in.
    let router = app(registry_app.state.clone());
    let expired = key(
        &registry_app,
        "expired",
        Role::Admin,
        &[],
        Some(now_ms() + 1_000),
    )
    .await;
    let revoked = key(&registry_app, "revoked", Role::Admin, &[], None).await;
    let keys = registry_app.state.auth.keys().expect("keys");
    let id = keys
        .registry()
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == "revoked")
        .unwrap()
        .id;
    keys.registry()
        .revoke_api_key(&id, "test")
        .await
        .expect("revoke");
    keys.refresh().await.expect("refresh");
    let mut callers = vec![Caller {
        name: "anonymous",
        authorization: None,
        role: Some(Role::Predictor),
        other_models: false,
        anonymous: true,
    }];
    for role in Role::ALL {
        callers.push(Caller {
            name: role.as_str(),
            authorization: bearer(&key(&registry_app, role.as_str(), role, &[], None).await),
            role: Some(role),
            other_models: false,
            anonymous: false,
        });
    }
    callers.push(Caller {
        name: "key for another model",
        authorization: bearer(
            &key(&registry_app, "fraud-team", Role::Admin, &["fraud-*"], None).await,
        ),
        role: Some(Role::Admin),
        other_models: true,
        anonymous: false,
    });
    callers.push(Caller {
        name: "good JWT",
        authorization: bearer(&jwt(SECRET, ISSUER, AUDIENCE, "deployer")),
        role: Some(Role::Deployer),
        other_models: false,
        anonymous: false,
    });
    for (name, token) in [
        (
            "JWT with the wrong issuer",
            jwt(SECRET, "https://evil.test/", AUDIENCE, "admin"),
        ),
        (
            "JWT with the wrong audience",
            jwt(SECRET, ISSUER, "other", "admin"),
        ),
        (
            "JWT signed by another key",
            jwt(
                b"another-secret-another-secret-32!",
                ISSUER,
                AUDIENCE,
                "admin",
            ),
        ),
        (
            "unknown key",
            "fsk_0000000000000000000000000000000000000000000000000000000000000000".into(),
        ),
        ("expired key", expired.clone()),
        ("revoked key", revoked.clone()),
    ] {
        callers.push(Caller {
            name,
            authorization: bearer(&token),
            role: None,
            other_models: false,
            anonymous: false,
        });
    }
    callers.push(Caller {
        name: "Basic credentials",
        authorization: Some("Basic YWRtaW46YWRtaW4=".into()),
        role: None,
        other_models: false,
        anonymous: false,
    });
    // Let the short-lived key expire.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let table = access_table(&registry_app.state);
    assert!(table.len() >= 60, "the whole table: {}", table.len());
    let mut failures = Vec::new();
    for (method, pattern, access, scope) in &table {
        let path = concrete(method, pattern);
        for caller in &callers {
            let reply = call(&router, method, &path, caller.authorization.as_deref()).await;
            let expected = expected(caller, *access, *scope);
            let got = reply.status;
            let ok = match expected {
                Expect::Pass => got != StatusCode::UNAUTHORIZED && got != StatusCode::FORBIDDEN,
                Expect::Status(s) => got == s,
            };
            if !ok {
                failures.push(format!(
                    "{method} {pattern} as {}: expected {expected:?}, got {got} {}",
                    caller.name,
                    String::from_utf8_lossy(&reply.body)
                ));
            }
            if got == StatusCode::UNAUTHORIZED {
                assert_eq!(
                    reply
                        .headers
                        .get(header::WWW_AUTHENTICATE)
                        .map(|v| v.to_str().unwrap()),
                    Some("Bearer"),
                    "{method} {pattern} as {}",
                    caller.name
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Pass,
    Status(StatusCode),
}

fn expected(caller: &Caller, access: Access, scope: Scope) -> Expect {
    if access == Access::Open {
        return Expect::Pass;
    }
    let Some(role) = caller.role else {
        return Expect::Status(StatusCode::UNAUTHORIZED);
    };
    if !role.grants(access) {
        return Expect::Status(if caller.anonymous {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        });
    }
    if caller.other_models && scope != Scope::Handler {
        return Expect::Status(StatusCode::FORBIDDEN);
    }
    Expect::Pass
}

#[tokio::test]
async fn the_table_keeps_changes_behind_roles_that_may_change() {
    let registry_app = common::registry::registry_app().await;
    let open: Vec<_> = access_table(&registry_app.state)
        .into_iter()
        .filter(|(_, _, access, _)| *access == Access::Open)
        .map(|(m, p, _, _)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        open,
        [
            "GET /livez",
            "GET /readyz",
            "GET /startupz",
            "GET /v2/health/live",
            "GET /v2/health/ready",
            "GET /api/v1/openapi.json",
            "GET /",
            "GET /ui",
            "GET /ui/",
            "GET /ui/{*path}"
        ],
        "only probes, the API document and the web UI's files (which hold no data) are open"
    );
    for (method, path, access, _) in access_table(&registry_app.state) {
        if method != Method::GET {
            assert!(
                matches!(access, Access::Infer | Access::Deploy | Access::Admin)
                    || (method == Method::POST && path == "/v2/repository/index")
                    // MLflow's searches (and its latest-versions read)
                    // are POSTs that change nothing.
                    || (method == Method::POST
                        && path.starts_with("/api/2.0/mlflow/")
                        && (path.ends_with("/search")
                            || path.ends_with("/get-latest-versions"))),
                "{method} {path} changes state but needs only {access}"
            );
        }
    }
}

#[tokio::test]
async fn keys_are_managed_by_admins_and_take_effect_at_once() {
    let registry_app = common::registry::registry_app().await;
    let router = app(registry_app.state.clone());
    let admin = bearer(&registry_app.tokens["admin"]);
    let create = Request::post("/api/v1/keys")
        .header(header::AUTHORIZATION, admin.clone().unwrap())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"name": "ci", "role": "reader", "models": ["iris*"]}).to_string(),
        ))
        .unwrap();
    let created = send(&router, create).await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let created = created.json();
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("fsk_") && token.len() >= 68);

    let me = call(
        &router,
        &Method::GET,
        "/api/v1/whoami",
        bearer(&token).as_deref(),
    )
    .await;
    assert_eq!(
        me.json(),
        json!({"name": "ci", "role": "reader", "models": ["iris*"], "anonymous": false,
               "may": ["open", "metadata", "read", "jobs"]})
    );
    // X-API-Key works as well as Authorization.
    let by_header = Request::get("/api/v1/whoami")
        .header("x-api-key", &token)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, by_header).await.json()["name"], "ci");

    let listed = call(&router, &Method::GET, "/api/v1/keys", admin.as_deref())
        .await
        .json();
    let text = listed.to_string();
    assert!(!text.contains(&token), "tokens are never listed");
    let entry = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap()
        .clone();
    assert!(entry["last_used_at"].is_null() || entry["last_used_at"].is_i64());

    // A reader may not make keys; its 403 names the role needed.
    let denied = call(
        &router,
        &Method::GET,
        "/api/v1/keys",
        bearer(&token).as_deref(),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(
        denied.error().contains("needs role admin"),
        "{}",
        denied.error()
    );

    let id = entry["id"].as_str().unwrap();
    let revoked = call(
        &router,
        &Method::DELETE,
        &format!("/api/v1/keys/{id}"),
        admin.as_deref(),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.json()["revoked_at"].is_i64());
    let refused = call(
        &router,
        &Method::GET,
        "/api/v1/whoami",
        bearer(&token).as_deref(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.error().contains("revoked"), "{}", refused.error());

    // Key changes are audited, as the admin key's principal.
    let audit = call(
        &router,
        &Method::GET,
        "/api/v1/audit?limit=100",
        admin.as_deref(),
    )
    .await
    .json();
    let actions: Vec<_> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "admin")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.contains(&"create_api_key".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"revoke_api_key".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_audit_actor_is_the_principal_not_a_header() {
    let registry_app = common::registry::registry_app().await;
    let router = app(registry_app.state.clone());
    let request = Request::post("/api/v1/models")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", registry_app.tokens["bob"]),
        )
        .header("x-ferroserve-actor", "mallory")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": "m1"}).to_string()))
        .unwrap();
    assert_eq!(send(&router, request).await.status, StatusCode::CREATED);
    let history = call(
        &router,
        &Method::GET,
        "/api/v1/models/m1/history",
        bearer(&registry_app.tokens["admin"]).as_deref(),
    )
    .await
    .json();
    assert_eq!(history["events"][0]["actor"], "bob", "{history}");
}

#[tokio::test]
async fn anonymous_callers_may_be_closed_out() {
    let registry_app = registry_app_with_auth(ServerConfig::default(), |_| {
        ferroserve_server::auth::Auth::new(None)
    })
    .await;
    let router = app(registry_app.state.clone());
    let live = call(&router, &Method::GET, "/livez", None).await;
    assert_eq!(live.status, StatusCode::OK);
    let metadata = call(&router, &Method::GET, "/v2/models/iris", None).await;
    assert_eq!(metadata.status, StatusCode::UNAUTHORIZED);
    assert!(
        metadata.error().contains("needs credentials"),
        "{}",
        metadata.error()
    );
    let _ = Arc::clone(&registry_app.state);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn es256_tokens_verify_against_an_ec_key_of_the_jwks() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
    // The uncompressed point: 0x04, then x and y (32 bytes each).
    let point = key.public_key_raw();
    assert_eq!((point.len(), point[0]), (65, 4));
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("jwks.json");
    let set = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256",
                               "x": b64(&point[1..33]), "y": b64(&point[33..])}]});
    std::fs::write(&jwks, set.to_string()).expect("jwks");
    let registry_app = app_with_jwks(&jwks, Some(AUDIENCE), "role").await;
    let router = app(registry_app.state.clone());
    let claims = json!({"sub": "svc@idp", "iss": ISSUER, "aud": AUDIENCE, "role": "reader",
                        "models": "fraud-* iris", "exp": 4_000_000_000u64});
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec1".into());
    let signing = EncodingKey::from_ec_der(&key.serialize_der());
    let token = jsonwebtoken::encode(&header, &claims, &signing).expect("jwt");
    let me = call(
        &router,
        &Method::GET,
        "/api/v1/whoami",
        bearer(&token).as_deref(),
    )
    .await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&me.body)
    );
    assert_eq!(
        me.json(),
        json!({"name": "jwt:svc@idp", "role": "reader", "models": ["fraud-*", "iris"], "anonymous": false,
               "may": ["open", "metadata", "read", "jobs"]})
    );
    // The same claims signed by another EC key do not verify.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_der(&other.serialize_der()),
    )
    .expect("jwt");
    let refused = call(
        &router,
        &Method::GET,
        "/api/v1/whoami",
        bearer(&forged).as_deref(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.error().contains("signature"), "{}", refused.error());
}

#[tokio::test]
async fn rs256_tokens_verify_against_an_rsa_key_of_a_jwks_file() {
    let keys = common::repo_root().join("testdata/auth");
    let registry_app = app_with_jwks(&keys.join("rs256-test-jwks.json"), None, "groups_role").await;
    let router = app(registry_app.state.clone());
    let der = std::fs::read(keys.join("rs256-test-key.der")).expect("test key");
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa1".into());
    let sign = |claims: serde_json::Value| {
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(&der)).expect("jwt")
    };
    let good = sign(
        json!({"sub": "ops", "iss": ISSUER, "groups_role": "deployer",
                           "exp": 4_000_000_000u64}),
    );
    let me = call(
        &router,
        &Method::GET,
        "/api/v1/whoami",
        bearer(&good).as_deref(),
    )
    .await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&me.body)
    );
    assert_eq!(
        me.json()["role"],
        "deployer",
        "the role comes from the configured claim"
    );
    let expired = sign(
        json!({"sub": "ops", "iss": ISSUER, "groups_role": "deployer",
                              "exp": 1_000_000_000u64}),
    );
    let refused = call(
        &router,
        &Method::GET,
        "/api/v1/whoami",
        bearer(&expired).as_deref(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.error().contains("expired"), "{}", refused.error());
    let roleless = sign(json!({"sub": "ops", "iss": ISSUER, "exp": 4_000_000_000u64}));
    let refused = call(
        &router,
        &Method::GET,
        "/api/v1/whoami",
        bearer(&roleless).as_deref(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.error().contains("groups_role"),
        "{}",
        refused.error()
    );
}
