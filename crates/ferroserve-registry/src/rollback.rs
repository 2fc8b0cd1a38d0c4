//! Which version a rollback of `Production` goes back to, read from the audit log.

use std::collections::HashSet;

use serde_json::Value;
use sqlx::Row;

use crate::audit;
use crate::audit_action::AuditAction;
use crate::db;
use crate::error::Result;
use crate::registry::Registry;
use crate::types::{Stage, VersionStatus};

impl Registry {
    /// The version to go back to when rolling back `Production`.
    ///
    /// Walks the `transition_stage` events of `model` that moved a version
    /// to `Production`, newest first, skips the versions in `Production`
    /// now, and returns the first version that still exists and is `Ready`;
    /// `None` when there is no such earlier version. Events from before the
    /// model was last created are ignored.
    pub async fn rollback_target(&self, model: &str) -> Result<Option<i64>> {
        let mut conn = self.pool.acquire().await?;
        db::require_model(&mut conn, model).await?;
        let rows =
            sqlx::query("SELECT version FROM model_versions WHERE model = $1 AND stage = $2")
                .bind(model)
                .bind(Stage::Production.as_str())
                .fetch_all(&mut *conn)
                .await?;
        let mut skip = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("version"))
            .collect::<Result<HashSet<_>, _>>()?;
        let events =
            audit::model_events_newest_first(&mut conn, model, AuditAction::TransitionStage)
                .await?;
        for event in events {
            let to_production = event
                .after
                .as_ref()
                .and_then(|after| after.get("stage"))
                .and_then(Value::as_str)
                == Some(Stage::Production.as_str());
            let Some(version) = event.version.filter(|_| to_production) else {
                continue;
            };
            if !skip.insert(version) {
                continue;
            }
            let candidate = db::fetch_version(&mut conn, model, version).await?;
            if candidate.is_some_and(|v| v.status == VersionStatus::Ready) {
                return Ok(Some(version));
            }
        }
        Ok(None)
    }
}
