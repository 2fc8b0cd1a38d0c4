//! `/api/v1/keys` (admins): create an API key (its token is in the answer,
//! once), list keys (never their tokens), revoke one; and
//! `/api/v1/whoami`: the principal a request acts as.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferroserve_core::{Access, InferError, ModelPattern, Role};
use ferroserve_registry::api_keys::expiry_after;
use ferroserve_registry::{ApiKey, NewApiKey};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{registry_disabled, Actor, Ctl, JsonBody, PathOf};
use crate::auth::{Caller, KeyRing};
use crate::error::ApiError;
use crate::state::SharedState;

/// `POST /api/v1/keys` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    name: String,
    role: String,
    #[serde(default)]
    models: Vec<String>,
    /// Lifetime in seconds from now.
    expires_in_seconds: Option<u64>,
}

/// `{id}` path parameter.
#[derive(Deserialize)]
pub(crate) struct KeyPath {
    id: String,
}

/// The keys the server accepts (the [`Ctl`] extractor before it answers
/// 503 on a server without the registry, as every registry route does).
fn ring(state: &SharedState) -> Result<&std::sync::Arc<KeyRing>, ApiError> {
    state.auth.keys().ok_or_else(registry_disabled)
}

/// A key as the API shows it (never its token or hash).
fn view(key: &ApiKey) -> Value {
    serde_json::to_value(key).unwrap_or_default()
}

/// `POST /api/v1/keys`: 201 with the key and its `token`, shown only here.
pub(crate) async fn create(
    State(state): State<SharedState>,
    _: Ctl,
    Actor(actor): Actor,
    JsonBody(new): JsonBody<NewKey>,
) -> Result<Response, ApiError> {
    let keys = ring(&state)?;
    let role: Role = new
        .role
        .parse()
        .map_err(|e| ApiError(InferError::invalid(format!("field 'role': {e}"))))?;
    let models = new
        .models
        .iter()
        .map(|p| ModelPattern::new(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError(InferError::invalid(format!("field 'models': {e}"))))?;
    let expires_at = match new.expires_in_seconds {
        Some(0) => {
            return Err(ApiError(InferError::invalid(
                "field 'expires_in_seconds' must be at least 1",
            )))
        }
        Some(secs) => Some(expiry_after(std::time::Duration::from_secs(secs))),
        None => None,
    };
    let spec = NewApiKey {
        name: new.name,
        role,
        models,
        expires_at,
    };
    let (key, token) = keys.registry().create_api_key(&spec, &actor).await?;
    keys.refresh().await?;
    let mut body = view(&key);
    body["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/keys`: every key, newest first.
pub(crate) async fn list(
    State(state): State<SharedState>,
    _: Ctl,
) -> Result<Json<Value>, ApiError> {
    let keys = ring(&state)?.registry().list_api_keys().await?;
    Ok(Json(
        json!({ "keys": keys.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /api/v1/keys/{id}`: revokes the key on every replica within a
/// registry poll interval (at once on this one).
pub(crate) async fn revoke(
    State(state): State<SharedState>,
    _: Ctl,
    Actor(actor): Actor,
    PathOf(path): PathOf<KeyPath>,
) -> Result<Json<Value>, ApiError> {
    let keys = ring(&state)?;
    let key = keys.registry().revoke_api_key(&path.id, &actor).await?;
    keys.refresh().await?;
    Ok(Json(view(&key)))
}

/// `GET /api/v1/whoami`: the caller's name, role and model patterns.
pub(crate) async fn whoami(Caller(principal): Caller) -> Json<Value> {
    Json(json!({
        "name": principal.name(),
        "role": principal.role(),
        "models": principal.model_patterns(),
        "anonymous": principal.is_anonymous(),
        "may": Access::ALL
            .into_iter()
            .filter(|&access| principal.may(access))
            .map(Access::as_str)
            .collect::<Vec<_>>(),
    }))
}
