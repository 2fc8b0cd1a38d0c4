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
mod keys;
mod models;
mod monitoring;
pub(crate) mod repository;
mod rollout;
mod serving_config;
mod versions;

use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use ferroserve_core::Access;
use ferroserve_registry::ModelVersion;
use ferroserve_serving::lifecycle::{Controller, WhenNothingServes};
use serde::Deserialize;

use crate::error::ApiError;
use crate::routes::{route, Route};

pub(crate) use extract::{registry_disabled, MAX_JSON_BYTES};
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

/// Every management and repository route.
pub(crate) fn table() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/v1/openapi.json", Access::Open, openapi).handles_models(),
        // Streams the body and stops it past max_artifact_bytes itself.
        route(
            Method::POST,
            "/api/v1/artifacts",
            Access::Deploy,
            artifacts::upload,
        )
        .handles_models()
        .streaming_body(),
        route(
            Method::GET,
            "/api/v1/whoami",
            Access::Metadata,
            keys::whoami,
        )
        .handles_models(),
        route(Method::GET, "/api/v1/keys", Access::Admin, keys::list),
        route(Method::POST, "/api/v1/keys", Access::Admin, keys::create),
        route(
            Method::DELETE,
            "/api/v1/keys/{id}",
            Access::Admin,
            keys::revoke,
        ),
        route(Method::GET, "/api/v1/models", Access::Read, models::list).handles_models(),
        route(
            Method::POST,
            "/api/v1/models",
            Access::Deploy,
            models::create,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}",
            Access::Read,
            models::get,
        ),
        route(
            Method::PATCH,
            "/api/v1/models/{model}",
            Access::Deploy,
            models::update,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}",
            Access::Admin,
            models::delete,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/rename",
            Access::Admin,
            models::rename,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/tags/{key}",
            Access::Deploy,
            models::set_tag,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/tags/{key}",
            Access::Deploy,
            models::delete_tag,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions",
            Access::Read,
            versions::list,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/versions",
            Access::Deploy,
            versions::register,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}",
            Access::Read,
            versions::get,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/versions/{version}",
            Access::Admin,
            versions::delete,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/versions/{version}/stage",
            Access::Deploy,
            versions::transition,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/tags/{key}",
            Access::Deploy,
            versions::set_tag,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/versions/{version}/tags/{key}",
            Access::Deploy,
            versions::delete_tag,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/card",
            Access::Read,
            versions::card,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/card",
            Access::Deploy,
            versions::set_card,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/lineage",
            Access::Read,
            versions::lineage,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/profile",
            Access::Read,
            versions::profile,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/profile",
            Access::Deploy,
            versions::set_profile,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/artifact",
            Access::Read,
            artifacts::download,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/versions/{version}/faults",
            Access::Read,
            faults::get,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/versions/{version}/faults",
            Access::Deploy,
            faults::set,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/versions/{version}/faults",
            Access::Deploy,
            faults::clear,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/aliases",
            Access::Read,
            aliases::list,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/aliases/{alias}",
            Access::Deploy,
            aliases::set,
        ),
        route(
            Method::DELETE,
            "/api/v1/models/{model}/aliases/{alias}",
            Access::Deploy,
            aliases::delete,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/rollback",
            Access::Deploy,
            versions::rollback,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/rollout",
            Access::Deploy,
            rollout::start,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/rollout",
            Access::Read,
            rollout::status,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/rollout/{action}",
            Access::Deploy,
            rollout::act,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/shadow",
            Access::Read,
            rollout::shadow,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/serving-config",
            Access::Read,
            serving_config::get,
        ),
        route(
            Method::PUT,
            "/api/v1/models/{model}/serving-config",
            Access::Deploy,
            serving_config::set,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/serving-config/history",
            Access::Read,
            serving_config::history,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/serving",
            Access::Read,
            serving_config::status,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/drift",
            Access::Read,
            monitoring::drift,
        ),
        route(
            Method::POST,
            "/api/v1/models/{model}/feedback",
            Access::Infer,
            monitoring::feedback,
        ),
        route(
            Method::GET,
            "/api/v1/models/{model}/history",
            Access::Read,
            audit::history,
        ),
        route(Method::GET, "/api/v1/audit", Access::Read, audit::list),
        route(
            Method::GET,
            "/api/v1/live",
            Access::Read,
            crate::ui::live::live,
        ),
        route(
            Method::GET,
            "/api/v1/resolve",
            Access::Read,
            versions::resolve,
        ),
        // Streams the input file and stops it past max_job_input_bytes itself.
        route(Method::POST, "/api/v1/jobs", Access::Infer, jobs::submit)
            .handles_models()
            .streaming_body(),
        route(Method::GET, "/api/v1/jobs", Access::Jobs, jobs::list).handles_models(),
        route(Method::GET, "/api/v1/jobs/{id}", Access::Jobs, jobs::get).handles_models(),
        route(
            Method::DELETE,
            "/api/v1/jobs/{id}",
            Access::Infer,
            jobs::cancel,
        )
        .handles_models(),
        route(
            Method::POST,
            "/api/v1/jobs/{id}/resume",
            Access::Infer,
            jobs::resume,
        )
        .handles_models(),
        route(
            Method::GET,
            "/api/v1/jobs/{id}/result",
            Access::Jobs,
            jobs::result,
        )
        .handles_models(),
        route(
            Method::GET,
            "/api/v1/jobs/{id}/errors",
            Access::Jobs,
            jobs::errors,
        )
        .handles_models(),
        route(
            Method::GET,
            "/v2/repository/index",
            Access::Read,
            repository::index,
        ),
        route(
            Method::POST,
            "/v2/repository/index",
            Access::Read,
            repository::index_filtered,
        ),
        route(
            Method::POST,
            "/v2/repository/models/{model}/load",
            Access::Deploy,
            repository::load,
        ),
        route(
            Method::POST,
            "/v2/repository/models/{model}/unload",
            Access::Deploy,
            repository::unload,
        ),
    ]
}

/// `GET /api/v1/openapi.json`: served with or without the registry, so
/// clients can read what the API would offer.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Every (method, path, access) of the management and repository APIs
/// and of Triton's configuration and statistics extensions: what
/// `openapi.json` documents.
#[cfg(test)]
fn route_list() -> Vec<(Method, &'static str, Access)> {
    table()
        .into_iter()
        .chain(crate::triton::routes::table())
        .map(|r| (r.method, r.path, r.access))
        .collect()
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
            .map(|(m, p, _)| (m.as_str().to_owned(), p.to_owned()))
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
    fn openapi_declares_the_access_of_every_route() {
        let doc = document();
        for (method, path, access) in route_list() {
            let op = &doc["paths"][path][method.as_str().to_lowercase()];
            assert_eq!(
                op["x-ferroserve-access"],
                access.as_str(),
                "{method} {path}: x-ferroserve-access"
            );
            let answers_401 = op["responses"]["401"].is_object();
            assert_eq!(
                answers_401,
                access != Access::Open,
                "{method} {path}: a 401 answer is documented exactly when credentials are needed"
            );
        }
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

    /// Every operation, with its path and method.
    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if method != "parameters" {
                    ops.push((method.clone(), path.clone(), op));
                }
            }
        }
        ops
    }

    /// `node`, or what its `$ref` points to.
    fn resolved<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
        match node["$ref"].as_str() {
            Some(r) => r
                .trim_start_matches("#/")
                .split('/')
                .fold(doc, |node, part| &node[part]),
            None => node,
        }
    }

    #[test]
    fn openapi_documents_the_refusals_of_bodies_and_queries() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let responses = &op["responses"];
            if op.get("requestBody").is_some() {
                // The request guard answers 415 to a body of another type;
                // the body extractors answer 400 to one that does not parse.
                for status in ["400", "415"] {
                    assert!(
                        responses[status].is_object(),
                        "{method} {path} takes a body but does not document {status}"
                    );
                }
            }
            let has_query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| resolved(&doc, p)["in"] == "query");
            if has_query {
                assert!(
                    responses["400"].is_object(),
                    "{method} {path} takes query parameters but does not document 400"
                );
            }
        }
    }

    #[test]
    fn openapi_never_extends_a_closed_schema() {
        // `allOf` with a member that forbids additional properties rejects
        // every property the other members add.
        fn check(doc: &Value, node: &Value, at: &str) {
            match node {
                Value::Object(map) => {
                    for member in map
                        .get("allOf")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        assert_ne!(
                            resolved(doc, member)["additionalProperties"],
                            Value::Bool(false),
                            "{at}: allOf extends a schema closed by additionalProperties: false"
                        );
                    }
                    for (key, value) in map {
                        check(doc, value, &format!("{at}/{key}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| check(doc, v, at)),
                _ => {}
            }
        }
        let doc = document();
        check(&doc, &doc, "#");
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
