//! The management REST API under `/api/v1` (models, versions, stages,
//! aliases, artifacts, serving configs, audit log, jobs) and the KServe model
//! repository extension under `/v2/repository`, both over the lifecycle
//! controller, with their OpenAPI document.
//!
//! Every route is listed once, in [`table`]: the router is built from it and
//! a test checks it against `openapi.json`, so the document cannot drift.

mod aliases;
mod artifacts;
mod audit;
pub(crate) mod extract;
mod faults;
mod jobs;
mod models;
mod monitoring;
mod repository;
mod serving_config;
mod versions;

use std::collections::BTreeMap;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use ferroserve_registry::ModelVersion;
use ferroserve_serving::lifecycle::{Controller, WhenNothingServes};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::SharedState;

pub(crate) use jobs::created as jobs_created;

/// The OpenAPI 3.1 document of every route in [`table`].
const OPENAPI: &str = include_str!("openapi.json");

/// `{model}` path parameter.
#[derive(Deserialize)]
pub(crate) struct ModelPath {
    pub(crate) model: String,
}

/// `{model}/versions/{version}` path parameters.
#[derive(Deserialize)]
pub(crate) struct VersionPath {
    pub(crate) model: String,
    pub(crate) version: i64,
}

impl VersionPath {
    /// The version these parameters name.
    async fn fetch(&self, c: &Controller) -> Result<ModelVersion, ApiError> {
        Ok(c.lifecycle()
            .registry()
            .get_version(&self.model, self.version)
            .await?)
    }
}

/// `?unload=true` on a change that may leave a model with nothing to
/// serve: the caller asks to stop serving it (refused otherwise).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnloadQuery {
    #[serde(default)]
    pub(crate) unload: bool,
}

impl UnloadQuery {
    /// What happens when the change leaves nothing to serve.
    pub(crate) fn when_nothing(&self) -> WhenNothingServes {
        WhenNothingServes::unload_if(self.unload)
    }
}

/// `PUT .../tags/{key}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TagValue {
    pub(crate) value: String,
}

/// One route: method, path (axum syntax, which is also OpenAPI's), handler
/// and the body limit of its extractors.
struct Route {
    method: Method,
    path: &'static str,
    handler: MethodRouter<SharedState>,
    body_limit: DefaultBodyLimit,
}

impl Route {
    /// For a handler that streams its body and enforces its own limit.
    fn streaming_body(self) -> Self {
        Route {
            body_limit: DefaultBodyLimit::disable(),
            ..self
        }
    }
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("routes use standard methods");
    Route {
        method,
        path,
        handler: on(filter, handler),
        body_limit: DefaultBodyLimit::max(extract::MAX_JSON_BYTES),
    }
}

/// Every management and repository route.
fn table() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/v1/openapi.json", openapi),
        // Streams the body and stops it past max_artifact_bytes itself.
        route(Method::POST, "/api/v1/artifacts", artifacts::upload).streaming_body(),
        route(Method::GET, "/api/v1/models", models::list),
        route(Method::POST, "/api/v1/models", models::create),
        route(Method::GET, "/api/v1/models/{model}", models::get),
        route(Method::PATCH, "/api/v1/models/{model}", models::update),
        route(Method::DELETE, "/api/v1/models/{model}", models::delete),
        route(
            Method::PUT,
            "/api/v1/models/{model}/tags/{key}",
            models::set_tag,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/tags/{key}",
            models::delete_tag,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions",
            versions::list,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/versions",
            versions::register,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}",
            versions::get,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/versions/{version}",
            versions::delete,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/versions/{version}/stage",
            versions::transition,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/tags/{key}",
            versions::set_tag,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/versions/{version}/tags/{key}",
            versions::delete_tag,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/card",
            versions::card,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/card",
            versions::set_card,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/lineage",
            versions::lineage,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/profile",
            versions::profile,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/profile",
            versions::set_profile,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/artifact",
            artifacts::download,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/faults",
            faults::get,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/faults",
            faults::set,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/versions/{version}/faults",
            faults::clear,
        ),
        route(Method::GET, "/api/v1/models/{model}/aliases", aliases::list),
        route(
            Method::PUT,
            "/api/v1/models/{model}/aliases/{alias}",
            aliases::set,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/aliases/{alias}",
            aliases::delete,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/rollback",
            versions::rollback,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/serving-config",
            serving_config::get,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/serving-config",
            serving_config::set,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/serving-config/history",
            serving_config::history,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/serving",
            serving_config::status,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/drift",
            monitoring::drift,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/feedback",
            monitoring::feedback,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/history",
            audit::history,
        ),
        route(Method::GET, "/api/v1/audit", audit::list),
        route(Method::GET, "/api/v1/resolve", versions::resolve),
        // Streams the input file and stops it past max_job_input_bytes itself.
        route(Method::POST, "/api/v1/jobs", jobs::submit).streaming_body(),
        route(Method::GET, "/api/v1/jobs", jobs::list),
        route(Method::GET, "/api/v1/jobs/{id}", jobs::get),
        route(Method::DELETE, "/api/v1/jobs/{id}", jobs::cancel),
        route(Method::POST, "/api/v1/jobs/{id}/resume", jobs::resume),
        route(Method::GET, "/api/v1/jobs/{id}/result", jobs::result),
        route(Method::GET, "/api/v1/jobs/{id}/errors", jobs::errors),
        route(Method::GET, "/v2/repository/index", repository::index),
        route(
            Method::POST,
            "/v2/repository/index",
            repository::index_filtered,
        ),
        route(
            Method::POST,
            "/v2/repository/models/{model}/load",
            repository::load,
        ),
        route(
            Method::POST,
            "/v2/repository/models/{model}/unload",
            repository::unload,
        ),
    ]
}

/// The management and repository routes, to merge into the app.
pub(crate) fn routes() -> Router<SharedState> {
    let mut by_path: BTreeMap<&'static str, (Vec<Method>, MethodRouter<SharedState>)> =
        BTreeMap::new();
    for Route {
        method,
        path,
        handler,
        body_limit,
    } in table()
    {
        let handler = handler.layer(body_limit);
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
            router.route(path, handler.fallback(method_not_allowed(path, &methods)))
        })
}

/// A JSON 405 naming the methods `path` accepts.
fn method_not_allowed(
    path: &'static str,
    methods: &[Method],
) -> impl Fn(Method) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let allowed = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    move |method: Method| {
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

/// `GET /api/v1/openapi.json`: served with or without the registry, so
/// clients can read what the API would offer.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Every (method, path) of the management and repository APIs.
#[cfg(test)]
fn route_list() -> Vec<(Method, &'static str)> {
    table().into_iter().map(|r| (r.method, r.path)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
    }

    #[test]
    fn openapi_lists_exactly_the_routes_of_the_router() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                if item.get(method).is_some() {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let routed: BTreeSet<(String, String)> = route_list()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "openapi.json lists routes the router lacks: {unrouted:?}"
        );
    }

    #[test]
    fn openapi_references_resolve_and_operations_are_complete() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for name in [
            "RegisteredModel",
            "ModelVersion",
            "Lineage",
            "Stage",
            "VersionStatus",
            "AuditEvent",
            "ServingStatus",
            "ArtifactInfo",
            "RegisterVersion",
            "ModelServingConfig",
            "ServingConfigRevision",
            "Error",
            "IndexEntry",
        ] {
            assert!(schemas.contains_key(name), "schema {name} is missing");
        }
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        for r in refs {
            let target = r
                .strip_prefix("#/")
                .expect("local reference")
                .split('/')
                .fold(&doc, |node, part| &node[part]);
            assert!(!target.is_null(), "dangling $ref {r}");
        }
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path}: operationId"
                );
                assert!(op["summary"].is_string(), "{method} {path}: summary");
                assert!(op["responses"].is_object(), "{method} {path}: responses");
            }
        }
    }

    fn collect_refs(node: &Value, refs: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    refs.push(r.clone());
                }
                map.values().for_each(|v| collect_refs(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
            _ => {}
        }
    }
}
