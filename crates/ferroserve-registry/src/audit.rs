//! Queries over the audit log.

use sqlx::Row;

use crate::error::Result;
use crate::registry::Registry;
use crate::types::{AuditEvent, AuditFilter};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;

impl Registry {
    /// Audit events matching `filter`, oldest first (ordered by id).
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let mut sql = String::from(
            "SELECT id, at, actor, action, model, version, before, after FROM audit_events WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if filter.model.is_some() {
            sql += &format!(" AND model = ${}", next());
        }
        if filter.since.is_some() {
            sql += &format!(" AND at >= ${}", next());
        }
        if filter.after_id.is_some() {
            sql += &format!(" AND id > ${}", next());
        }
        sql += &format!(" ORDER BY id LIMIT ${}", next());
        let mut query = sqlx::query(&sql);
        if let Some(model) = &filter.model {
            query = query.bind(model.as_str());
        }
        if let Some(since) = filter.since {
            query = query.bind(since);
        }
        if let Some(after_id) = filter.after_id {
            query = query.bind(after_id);
        }
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(0, MAX_LIMIT);
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let json = |col: &str| -> Result<Option<serde_json::Value>> {
                    let text: Option<String> = row.try_get(col)?;
                    Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
                };
                Ok(AuditEvent {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    model: row.try_get("model")?,
                    version: row.try_get("version")?,
                    before: json("before")?,
                    after: json("after")?,
                })
            })
            .collect()
    }
}
