//! The one route table of the HTTP API: every route's method, path,
//! handler, body limit, and the access it needs (with which models it
//! touches). The router is built from it, each route behind
//! [`auth::require`] with its declared access, so a route cannot exist
//! without one; tests walk the table against the OpenAPI document and
//! every role.

use std::collections::BTreeMap;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, post, MethodFilter, MethodRouter};
use axum::{Json, Router};
use ferroserve_core::Access;
use serde_json::json;

use crate::auth::{self, Scope};
use crate::management::{self, MAX_JSON_BYTES};
use crate::state::SharedState;
use crate::{health, idempotency, kserve, triton, v1};

/// One route: method, path (axum syntax, which is also OpenAPI's),
/// handler, what it needs of its caller, and the body limit of its
/// extractors (`None`: the handler reads its body within the server's
/// inference limit itself).
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    pub(crate) scope: Scope,
    handler: MethodRouter<SharedState>,
    body_limit: Option<DefaultBodyLimit>,
}

impl Route {
    /// For a handler that streams its body and enforces its own limit.
    pub(crate) fn streaming_body(self) -> Self {
        Route {
            body_limit: Some(DefaultBodyLimit::disable()),
            ..self
        }
    }

    /// For a handler that checks the models it touches itself.
    pub(crate) fn handles_models(self) -> Self {
        Route {
            scope: Scope::Handler,
            ..self
        }
    }
}

/// A route whose extractors take at most a management JSON body. Its
/// models are the path's `{model}` (or v1's `{target}`) when it names one,
/// else every model.
pub(crate) fn route<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Route
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("routes use standard methods");
    Route {
        body_limit: Some(DefaultBodyLimit::max(MAX_JSON_BYTES)),
        ..front(method, path, access, on(filter, handler))
    }
}

/// A route of the inference front end (which reads its own body).
fn front(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<SharedState>,
) -> Route {
    let scope = if path.contains("{model}") || path.contains("{target}") {
        Scope::PathModel
    } else {
        Scope::AllModels
    };
    Route {
        method,
        path,
        access,
        scope,
        handler,
        body_limit: None,
    }
}

/// Every route: probes, metrics, the inference protocols, then the
/// management and repository APIs.
pub(crate) fn table(state: &SharedState) -> Vec<Route> {
    use kserve::routes as v2;
    use Access::*;
    let once = |router| idempotency::once_per_key(state, router);
    let mut routes = vec![
        front(Method::GET, "/livez", Open, get(health::live)),
        front(Method::GET, "/readyz", Open, get(health::ready)),
        front(Method::GET, "/startupz", Open, get(health::startup)),
        front(Method::GET, "/v2/health/live", Open, get(health::live)),
        front(Method::GET, "/v2/health/ready", Open, get(health::ready)),
        front(Method::GET, "/metrics", Read, get(health::metrics)),
        front(Method::GET, "/v2", Metadata, get(v2::server_metadata)).handles_models(),
        front(
            Method::GET,
            "/v2/models/{model}",
            Metadata,
            get(v2::model_metadata),
        ),
        front(
            Method::GET,
            "/v2/models/{model}/ready",
            Metadata,
            get(v2::model_ready),
        ),
        front(
            Method::POST,
            "/v2/models/{model}/infer",
            Infer,
            once(post(v2::infer)),
        ),
        front(
            Method::GET,
            "/v2/models/{model}/versions/{version}",
            Metadata,
            get(v2::version_metadata),
        ),
        front(
            Method::GET,
            "/v2/models/{model}/versions/{version}/ready",
            Metadata,
            get(v2::version_ready),
        ),
        front(
            Method::POST,
            "/v2/models/{model}/versions/{version}/infer",
            Infer,
            once(post(v2::infer_with_version)),
        ),
        front(
            Method::GET,
            "/v1/models/{target}",
            Metadata,
            get(v1::status),
        ),
        front(
            Method::POST,
            "/v1/models/{target}",
            Infer,
            once(post(v1::predict)),
        ),
    ];
    routes.extend(triton::routes::table());
    routes.extend(management::table());
    routes.extend(crate::mlflow::table());
    routes.extend(crate::ui::table());
    routes
}

/// Every route's method, path, access and model scope, in table order:
/// what a client (or a test of the whole table) needs to know of who may
/// call what.
pub fn access_table(state: &SharedState) -> Vec<(Method, &'static str, Access, Scope)> {
    table(state)
        .into_iter()
        .map(|r| (r.method, r.path, r.access, r.scope))
        .collect()
}

/// The router of every route in [`table`], each behind its access check
/// (and body limit), with a JSON 405 naming the methods a path accepts.
pub(crate) fn router(state: &SharedState) -> Router<SharedState> {
    let mut by_path: BTreeMap<&'static str, (Vec<Method>, MethodRouter<SharedState>)> =
        BTreeMap::new();
    for Route {
        method,
        path,
        access,
        scope,
        handler,
        body_limit,
    } in table(state)
    {
        let handler = match body_limit {
            Some(limit) => handler.layer(limit),
            None => handler,
        };
        let handler = handler.layer(axum::middleware::from_fn(move |request, next| {
            auth::require(access, scope, request, next)
        }));
        match by_path.remove(path) {
            Some((mut methods, merged)) => {
                methods.push(method);
                by_path.insert(path, (methods, merged.merge(handler)));
            }
            None => {
                by_path.insert(path, (vec![method], handler));
            }
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, (methods, handler))| {
            router.route(path, handler.fallback(method_not_allowed(&methods)))
        })
}

/// A JSON 405 naming the methods a path accepts.
fn method_not_allowed(
    methods: &[Method],
) -> impl Fn(Method, Uri) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let allowed = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    move |method: Method, uri: Uri| {
        let path = uri.path();
        let body = json!({
            "error": format!("method {method} is not allowed on {path}; allowed: {allowed}")
        });
        std::future::ready(
            (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, allowed.clone())],
                Json(body),
            )
                .into_response(),
        )
    }
}
