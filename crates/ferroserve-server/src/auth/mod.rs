//! Authentication and authorization, one layer in front of every route.
//!
//! [`authenticate`] runs for every request: it turns the credentials the
//! request presents ([`credentials`]) into a [`Principal`] — an API key of
//! the registry ([`KeyRing`]), a JWT from an identity provider
//! ([`JwtVerifier`]), or the anonymous caller with the server's anonymous
//! role — or into the reason they are refused. Each route of the route
//! table then [`require`]s the [`Access`] it declares, and that the
//! principal may use the model the path names: 401 (with
//! `WWW-Authenticate: Bearer`) for missing or bad credentials, 403 naming
//! the roles needed. Handlers read the principal with [`Caller`].

pub mod credentials;
mod failure;
pub mod jwt;
mod keyring;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferroserve_core::{Access, InferError, Principal, Role};

pub use credentials::API_KEY_HEADER;
pub use failure::{AuthFailure, FailureReason};
pub use jwt::{JwtSettings, JwtVerifier};
pub use keyring::KeyRing;

use crate::error::ApiError;
use crate::state::SharedState;

/// Which models a route touches, for principals limited to some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The path names the model (`{model}`, or `{target}` of v1).
    PathModel,
    /// The handler checks the models it touches (jobs, the model list,
    /// uploads that belong to no model yet, server metadata).
    Handler,
    /// The route spans every model (audit log, metrics, keys): only
    /// principals without model patterns may use it.
    AllModels,
}

/// Who may call this server, and how they prove it.
pub struct Auth {
    anonymous: Option<Arc<Principal>>,
    keys: Option<Arc<KeyRing>>,
    jwt: Option<Arc<JwtVerifier>>,
}

impl Auth {
    /// Callers without credentials get `anonymous_role` (`None`: they may
    /// use open routes only); no keys or JWTs are accepted until added.
    pub fn new(anonymous_role: Option<Role>) -> Self {
        Auth {
            anonymous: anonymous_role.map(|role| Arc::new(Principal::anonymous(role))),
            keys: None,
            jwt: None,
        }
    }

    /// Accepts the API keys of `keys`.
    pub fn with_keys(mut self, keys: Arc<KeyRing>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Accepts JWTs that `jwt` verifies.
    pub fn with_jwt(mut self, jwt: Arc<JwtVerifier>) -> Self {
        self.jwt = Some(jwt);
        self
    }

    /// The API keys accepted, if any.
    pub fn keys(&self) -> Option<&Arc<KeyRing>> {
        self.keys.as_ref()
    }

    /// Reads the API keys again after a change that rewrote some (a
    /// model renamed), so that this server follows it at once; the other
    /// replicas follow on the change's notification or at their next poll.
    pub async fn reread_keys(&self) {
        if let Some(keys) = &self.keys {
            if let Err(e) = keys.refresh().await {
                tracing::warn!(error = %e, "cannot read the API keys again; they are re-read at the next poll");
            }
        }
    }

    /// The role of callers without credentials, if they have one.
    pub fn anonymous_role(&self) -> Option<Role> {
        self.anonymous.as_ref().map(|p| p.role())
    }

    /// The principal the credentials in `headers` stand for.
    pub fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Arc<Principal>, AuthFailure> {
        use credentials::Presented;
        match credentials::presented(headers) {
            Presented::Nothing => self.anonymous.clone().ok_or_else(|| {
                AuthFailure::new(
                    FailureReason::Missing,
                    "this server needs credentials: send 'Authorization: Bearer TOKEN' \
                     or 'X-API-Key: TOKEN'",
                )
            }),
            Presented::Malformed(why) => Err(AuthFailure::new(FailureReason::Malformed, why)),
            Presented::Token(token) if KeyRing::is_api_key(token) => match &self.keys {
                Some(keys) => keys.verify(token),
                None => Err(AuthFailure::new(
                    FailureReason::UnknownKey,
                    "the API key is not known (this server has no registry of keys)",
                )),
            },
            Presented::Token(token) => match &self.jwt {
                Some(jwt) => jwt.verify(token).map(Arc::new),
                None => Err(AuthFailure::new(
                    FailureReason::UnknownKey,
                    "the token is not a known API key (and this server accepts no JWTs)",
                )),
            },
        }
    }
}

/// What [`authenticate`] found, for the route's [`require`] and handlers.
#[derive(Clone)]
struct Authenticated(Result<Arc<Principal>, AuthFailure>);

/// Middleware of every request: finds who the caller is (refusing nothing
/// yet: probes stay open whatever a request presents).
pub async fn authenticate(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let outcome = state.auth.authenticate(request.headers());
    request.extensions_mut().insert(Authenticated(outcome));
    next.run(request).await
}

/// Middleware of one route: lets the request on when its principal's role
/// grants `access` and it may use the model the path names.
pub async fn require(access: Access, scope: Scope, request: Request, next: Next) -> Response {
    if access == Access::Open {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    if let Err(failure) = check(access, scope, &mut parts).await {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let error = failure.into_error(peer, parts.method.as_str(), parts.uri.path());
        return ApiError(error).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

async fn check(access: Access, scope: Scope, parts: &mut Parts) -> Result<(), AuthFailure> {
    let principal = principal_of(parts)?;
    let route = format!("{} {}", parts.method, parts.uri.path());
    may_access(&principal, access, &route)?;
    match scope {
        Scope::Handler => Ok(()),
        Scope::AllModels => may_span_all_models(&principal, &route),
        Scope::PathModel => {
            // A path whose parameters cannot be read is refused by the
            // handler's own extractor (400), before any handler code runs.
            let Ok(params) = RawPathParams::from_request_parts(parts, &()).await else {
                return Ok(());
            };
            let model = params
                .iter()
                .find(|(name, _)| *name == "model" || *name == "target")
                .map(|(_, value)| value.strip_suffix(":predict").unwrap_or(value))
                .unwrap_or_default();
            may_use(&principal, model)
        }
    }
}

/// `Ok` when `principal`'s role grants `access`, else the refusal naming
/// `route` (what was called, as the caller wrote it) and the roles needed:
/// a 401 for an anonymous caller, a 403 for a known one.
pub fn may_access(principal: &Principal, access: Access, route: &str) -> Result<(), AuthFailure> {
    if principal.may(access) {
        return Ok(());
    }
    let needed = Role::needed_for(access)
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" or ");
    Err(if principal.is_anonymous() {
        AuthFailure::new(
            FailureReason::Missing,
            format!(
                "{route} needs credentials with role {needed}; callers without credentials \
                 have role {}",
                principal.role()
            ),
        )
    } else {
        AuthFailure::new(
            FailureReason::Role,
            format!(
                "'{}' has role {}; {route} needs role {needed}",
                principal.name(),
                principal.role(),
            ),
        )
    })
}

/// `Ok` when `principal` may use every model, as `route` (which spans
/// them all) needs.
pub fn may_span_all_models(principal: &Principal, route: &str) -> Result<(), AuthFailure> {
    if principal.all_models() {
        return Ok(());
    }
    Err(AuthFailure::new(
        FailureReason::Model,
        format!(
            "'{}' is limited to models {}; {route} spans every model",
            principal.name(),
            patterns(principal),
        ),
    ))
}

/// `Ok` when `principal` may use `model`, else the 403 saying so.
pub fn may_use(principal: &Principal, model: &str) -> Result<(), AuthFailure> {
    if principal.may_use(model) {
        Ok(())
    } else {
        Err(AuthFailure::new(
            FailureReason::Model,
            format!(
                "'{}' is limited to models {}; it may not use model '{model}'",
                principal.name(),
                patterns(principal)
            ),
        ))
    }
}

fn patterns(principal: &Principal) -> String {
    principal
        .model_patterns()
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn principal_of(parts: &Parts) -> Result<Arc<Principal>, AuthFailure> {
    match parts.extensions.get::<Authenticated>() {
        Some(Authenticated(outcome)) => outcome.clone(),
        None => Err(AuthFailure::new(
            FailureReason::Missing,
            "the request was not authenticated",
        )),
    }
}

/// The principal a handler acts for.
pub struct Caller(pub Arc<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        principal_of(parts).map(Caller).map_err(|failure| {
            ApiError(failure.into_error(None, parts.method.as_str(), parts.uri.path()))
        })
    }
}

impl Caller {
    /// The authenticated principal of a request, if it has one.
    pub fn of(parts: &Parts) -> Option<Arc<Principal>> {
        principal_of(parts).ok()
    }

    /// `Ok` when the caller may use `model` (a 403 otherwise).
    pub fn may_use(&self, model: &str) -> Result<(), ApiError> {
        may_use(&self.0, model).map_err(|f| ApiError(f.into_error(None, "", "")))
    }

    /// `Ok` when the caller may see a job of `model` that is its own
    /// (`own`: submitted as the caller's [`ClientId`]) or not: its own, or
    /// any job for roles that read every job.
    ///
    /// [`ClientId`]: crate::client::ClientId
    pub fn may_see_job(&self, own: bool, model: &str) -> Result<(), ApiError> {
        self.may_use(model)?;
        if own || self.0.role().reads_all_jobs() {
            Ok(())
        } else {
            Err(ApiError(InferError::not_found(
                "no such job among the caller's own jobs",
            )))
        }
    }

    /// `Ok` when the caller may cancel or resume a job of `model`: its own
    /// (`own`), or any job for admins.
    pub fn may_change_job(&self, own: bool, model: &str) -> Result<(), ApiError> {
        self.may_use(model)?;
        if own || self.0.role() == Role::Admin {
            Ok(())
        } else {
            Err(ApiError(InferError::new(
                ferroserve_core::ErrorKind::PermissionDenied,
                format!("'{}' may change only its own jobs", self.0.name()),
            )))
        }
    }
}
