//! The audit log: queries over it, and events recorded by other layers.

use futures::TryStreamExt;
use serde_json::Value;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::Result;
use crate::registry::Registry;
use crate::types::{AuditEvent, AuditFilter, AuditOrder, AuditPage};
use crate::validate;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;
/// Bytes of `before` and `after` snapshots one page holds at most.
pub(crate) const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;
const EVENT_COLUMNS: &str = "id, at, actor, action, model, version, before, after";

impl Registry {
    /// Audit events matching `filter`, in its order (by id).
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(0, MAX_LIMIT);
        let (sql, binds) = filtered(&format!("SELECT {EVENT_COLUMNS} FROM audit_events"), filter);
        let direction = match filter.order {
            AuditOrder::Asc => "ASC",
            AuditOrder::Desc => "DESC",
        };
        let sql = format!("{sql} ORDER BY id {direction} LIMIT ${}", binds + 1);
        let mut rows = bind_filter(sqlx::query(&sql), filter)
            .bind(limit)
            .fetch(&self.pool);
        // Rows are read one at a time, and a page stops at MAX_PAGE_BYTES
        // of snapshots (but holds at least one event): a page of large
        // versions (cards, profiles) stays a bounded answer, and the
        // caller's cursor goes on from its last event.
        let mut events = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.try_next().await? {
            bytes += snapshot_bytes(&row);
            if bytes > MAX_PAGE_BYTES && !events.is_empty() {
                break;
            }
            events.push(event_from_row(&row)?);
        }
        Ok(events)
    }

    /// One page of the audit events matching `filter`, with how many more
    /// match beyond it and the cursor to the next page.
    pub async fn audit_page(&self, filter: &AuditFilter) -> Result<AuditPage> {
        let events = self.audit_events(filter).await?;
        let (sql, _) = filtered("SELECT COUNT(*) AS n FROM audit_events", filter);
        let matching: i64 = bind_filter(sqlx::query(&sql), filter)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let remaining = (matching - events.len() as i64).max(0);
        let next_cursor = if remaining > 0 {
            events.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage {
            events,
            remaining,
            next_cursor,
        })
    }

    /// One page of `model`'s history (`filter.model` is set to it). The
    /// history outlives the model, so a deleted model's events are found;
    /// a name that never had a model is [`RegistryError::ModelNotFound`].
    pub async fn model_history(&self, model: &str, filter: &AuditFilter) -> Result<AuditPage> {
        let filter = AuditFilter {
            model: Some(model.to_owned()),
            ..filter.clone()
        };
        let page = self.audit_page(&filter).await?;
        if page.events.is_empty() && page.remaining == 0 {
            let mut conn = self.pool.acquire().await?;
            let ever = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE model = $1")
                .bind(model)
                .fetch_one(&mut *conn)
                .await?
                .try_get::<i64, _>("n")?;
            if ever == 0 {
                db::require_model(&mut conn, model).await?;
            }
        }
        Ok(page)
    }

    /// Records an event of another layer (e.g. `serving_failed`,
    /// `serving_swapped`) in the audit log, with `details` as its `after`.
    ///
    /// An [`AuditAction::Other`] name must be 1-64 characters of `[a-z_]`;
    /// `model` must be a valid model name but need not exist, since history
    /// outlives models.
    pub async fn record_event(
        &self,
        model: &str,
        version: Option<i64>,
        action: AuditAction,
        details: Value,
        actor: &str,
    ) -> Result<AuditEvent> {
        validate::model_name(model)?;
        if let AuditAction::Other(name) = &action {
            validate::audit_action(name)?;
        }
        let at = db::now_ms();
        let mut conn = self.pool.acquire().await?;
        let event = Audit {
            actor,
            action: action.clone(),
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
            action,
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
    action: AuditAction,
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
        .bind(action.as_str())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// `base` with the `WHERE` clause of `filter` (all but its order and
/// limit), and how many placeholders it has; [`bind_filter`] binds them.
fn filtered(base: &str, filter: &AuditFilter) -> (String, usize) {
    let mut sql = format!("{base} WHERE 1 = 1");
    let mut n = 0;
    let clauses = [
        ("model =", filter.model.is_some()),
        ("at >=", filter.since.is_some()),
        ("id >", filter.after_id.is_some()),
        ("id <", filter.before_id.is_some()),
    ];
    for (clause, _) in clauses.iter().filter(|(_, set)| *set) {
        n += 1;
        sql += &format!(" AND {clause} ${n}");
    }
    (sql, n)
}

/// Binds the values of [`filtered`]'s placeholders, in its order.
fn bind_filter<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    filter: &'q AuditFilter,
) -> Query<'q, Any, AnyArguments<'q>> {
    if let Some(model) = &filter.model {
        query = query.bind(model.as_str());
    }
    for value in [filter.since, filter.after_id, filter.before_id]
        .into_iter()
        .flatten()
    {
        query = query.bind(value);
    }
    query
}

/// Bytes of the stored `before` and `after` texts of a row.
fn snapshot_bytes(row: &AnyRow) -> usize {
    ["before", "after"]
        .iter()
        .filter_map(|col| row.try_get::<Option<String>, _>(*col).ok().flatten())
        .map(|text| text.len())
        .sum()
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: AuditAction::from(row.try_get::<String, _>("action")?.as_str()),
        model: row.try_get("model")?,
        version: row.try_get("version")?,
        before: db::opt_from_text(row, "before")?,
        after: db::opt_from_text(row, "after")?,
    })
}
