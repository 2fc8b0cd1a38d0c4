//! The audit log: queries over it, and events recorded by other layers.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{self, Audit};
use crate::error::Result;
use crate::registry::Registry;
use crate::types::{AuditEvent, AuditFilter};
use crate::validate;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;
const EVENT_COLUMNS: &str = "id, at, actor, action, model, version, before, after";

impl Registry {
    /// Audit events matching `filter`, oldest first (ordered by id).
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE 1 = 1");
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
        rows.iter().map(event_from_row).collect()
    }

    /// Records an event of another layer (e.g. `serving_failed`,
    /// `serving_swapped`) in the audit log, with `details` as its `after`.
    ///
    /// `action` is 1-64 characters of `[a-z_]`; `model` must be a valid
    /// model name but need not exist, since history outlives models.
    pub async fn record_event(
        &self,
        model: &str,
        version: Option<i64>,
        action: &str,
        details: Value,
        actor: &str,
    ) -> Result<AuditEvent> {
        validate::model_name(model)?;
        validate::audit_action(action)?;
        let at = db::now_ms();
        let mut conn = self.pool.acquire().await?;
        let event = Audit {
            actor,
            action,
            model,
            version,
            before: None,
            after: Some(details.clone()),
        };
        let id = db::record(&mut conn, at, event).await?;
        Ok(AuditEvent {
            id,
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            model: model.to_owned(),
            version,
            before: None,
            after: Some(details),
        })
    }
}

/// The events of `model` with `action` since the model was last created,
/// newest first.
pub(crate) async fn model_events_newest_first(
    conn: &mut AnyConnection,
    model: &str,
    action: &str,
) -> Result<Vec<AuditEvent>> {
    // A model deleted and created again starts a new history: its old
    // version numbers named other versions.
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events WHERE model = $1 AND action = $2 \
         AND id > COALESCE((SELECT MAX(id) FROM audit_events \
                            WHERE model = $1 AND action = 'create_model'), 0) \
         ORDER BY id DESC"
    );
    let rows = sqlx::query(&sql)
        .bind(model)
        .bind(action)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(event_from_row).collect()
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        model: row.try_get("model")?,
        version: row.try_get("version")?,
        before: db::opt_from_text(row, "before")?,
        after: db::opt_from_text(row, "after")?,
    })
}
