//! The audit log: `/api/v1/audit` across models and
//! `/api/v1/models/{model}/history` for one, paged by event id.

use axum::Json;
use ferroserve_registry::AuditFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Ctl, PathOf, QueryOf};
use super::ModelPath;
use crate::error::ApiError;

/// `GET /api/v1/audit` query. (Not a flattened [`Page`]: serde's flatten
/// would refuse both unknown-field checks and numbers from a query string.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    model: Option<String>,
    since: Option<i64>,
    after_id: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/models/{model}/history` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    since: Option<i64>,
    after_id: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit[?model=&since=&after_id=&limit=]`.
pub(crate) async fn list(
    Ctl(c): Ctl,
    QueryOf(query): QueryOf<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = AuditFilter {
        model: query.model,
        since: query.since,
        after_id: query.after_id,
        limit: query.limit,
    };
    let events = c.lifecycle().registry().audit_events(&filter).await?;
    Ok(Json(json!({ "events": events })))
}

/// `GET /api/v1/models/{model}/history[?since=&after_id=&limit=]`: kept
/// after the model is deleted.
pub(crate) async fn history(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
    QueryOf(page): QueryOf<Page>,
) -> Result<Json<Value>, ApiError> {
    let filter = AuditFilter {
        model: Some(path.model),
        since: page.since,
        after_id: page.after_id,
        limit: page.limit,
    };
    let events = c.lifecycle().registry().audit_events(&filter).await?;
    Ok(Json(json!({ "events": events })))
}
