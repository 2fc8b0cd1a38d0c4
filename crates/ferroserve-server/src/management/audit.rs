//! The audit log: `/api/v1/audit` across models and
//! `/api/v1/models/{model}/history` for one, a page at a time (oldest or
//! newest first), each answer saying how many events remain and where the
//! next page starts.

use axum::Json;
use ferroserve_core::secrets::redact_serving_config;
use ferroserve_registry::{AuditFilter, AuditOrder, AuditPage};
use serde::Deserialize;

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
    before_id: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    order: AuditOrder,
}

/// `GET /api/v1/models/{model}/history` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    since: Option<i64>,
    after_id: Option<i64>,
    before_id: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    order: AuditOrder,
}

impl Page {
    fn filter(self, model: Option<String>) -> AuditFilter {
        AuditFilter {
            model,
            since: self.since,
            after_id: self.after_id,
            before_id: self.before_id,
            limit: self.limit,
            order: self.order,
        }
    }
}

/// `GET /api/v1/audit[?model=&since=&after_id=&before_id=&limit=&order=]`.
pub(crate) async fn list(
    Ctl(c): Ctl,
    QueryOf(query): QueryOf<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let page = Page {
        since: query.since,
        after_id: query.after_id,
        before_id: query.before_id,
        limit: query.limit,
        order: query.order,
    };
    let filter = page.filter(query.model);
    let page = c.lifecycle().registry().audit_page(&filter).await?;
    Ok(Json(redacted(page)))
}

/// `GET /api/v1/models/{model}/history[?since=&after_id=&before_id=&limit=&order=]`:
/// kept after the model is deleted; 404 for a name that never had a model.
pub(crate) async fn history(
    Ctl(c): Ctl,
    PathOf(path): PathOf<ModelPath>,
    QueryOf(page): QueryOf<Page>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = page.filter(None);
    let page = c
        .lifecycle()
        .registry()
        .model_history(&path.model, &filter)
        .await?;
    Ok(Json(redacted(page)))
}

/// `page` with webhook secrets redacted from every snapshot: events are
/// stored redacted, and this also covers events written before that.
fn redacted(mut page: AuditPage) -> AuditPage {
    for event in &mut page.events {
        for snapshot in [&mut event.before, &mut event.after].into_iter().flatten() {
            *snapshot = redact_serving_config(snapshot);
        }
    }
    page
}
