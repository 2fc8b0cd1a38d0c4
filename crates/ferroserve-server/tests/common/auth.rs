//! Test support for authentication: admin keys for the actors tests name,
//! and a layer that signs requests in with them, so tests written before
//! authentication act as admins (as `X-Ferroserve-Actor: NAME` names) and
//! tests of authentication can send their own credentials.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request};
use axum::Router;
use ferroserve_core::Role;
use ferroserve_registry::{NewApiKey, Registry};
use ferroserve_server::auth::{Auth, KeyRing};

/// Names with an admin key in every test app; `admin` signs in requests
/// that name no actor.
pub const ACTORS: [&str; 5] = ["admin", "alice", "bob", "carol", "dave"];

/// The test header naming which actor's key signs a request in.
pub const ACTOR_HEADER: &str = "x-ferroserve-actor";

/// Tokens by actor name.
pub type Tokens = Arc<HashMap<String, String>>;

/// Authentication over the keys of `registry`, with an admin key for each
/// of [`ACTORS`]; anonymous callers are predictors, as by default.
pub async fn keyed_auth(registry: &Registry) -> (Auth, Tokens) {
    let mut tokens = HashMap::new();
    for name in ACTORS {
        let spec = NewApiKey {
            name: name.into(),
            role: Role::Admin,
            models: vec![],
            expires_at: None,
        };
        let (_, token) = registry
            .create_api_key(&spec, "test")
            .await
            .expect("test key");
        tokens.insert(name.to_owned(), token);
    }
    let ring = KeyRing::load(registry.clone()).await.expect("keys load");
    let auth = Auth::new(Some(Role::Predictor)).with_keys(ring);
    (auth, Arc::new(tokens))
}

/// `app` with requests that carry no credentials signed in as the actor
/// their `X-Ferroserve-Actor` header names (else `admin`); `keep` lives as
/// long as the router (the temporary folder of its registry).
pub fn signed_in<K: Send + Sync + 'static>(app: Router, tokens: Tokens, keep: Arc<K>) -> Router {
    app.layer(axum::middleware::map_request(
        move |mut request: Request<Body>| {
            let tokens = tokens.clone();
            let _keep = keep.clone();
            async move {
                let actor = request
                    .headers_mut()
                    .remove(ACTOR_HEADER)
                    .and_then(|v| v.to_str().ok().map(str::to_owned));
                let headers = request.headers();
                let has_credentials = headers.contains_key(header::AUTHORIZATION)
                    || headers.contains_key("x-api-key");
                if !has_credentials {
                    let name = actor.as_deref().unwrap_or("admin");
                    if let Some(token) = tokens.get(name) {
                        let value =
                            HeaderValue::from_str(&format!("Bearer {token}")).expect("token");
                        request.headers_mut().insert(header::AUTHORIZATION, value);
                    }
                }
                request
            }
        },
    ))
}
