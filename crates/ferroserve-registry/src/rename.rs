//! Renaming a model: its versions, aliases, serving configs, rollout
//! history, pooled monitoring data and the API keys limited to it by name
//! move to the new name in one transaction. The audit log is never
//! rewritten: the events stay under the name they happened to, and the
//! rename is recorded under both.

use sqlx::{AnyConnection, Row};

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::types::RegisteredModel;
use crate::validate;

/// Tables holding a model's pooled monitoring data by its name (no
/// foreign key: replicas write them while the model changes).
const MONITOR_TABLES: [&str; 4] = [
    "monitor_windows",
    "monitor_window_parts",
    "monitor_predictions",
    "monitor_labels",
];

/// Rollout states of a rollout still running.
const ACTIVE_ROLLOUT: &str = "('progressing', 'paused', 'awaiting_approval')";
/// Job states of a job still to run or running.
const ACTIVE_JOB: &str = "('queued', 'running')";

impl Registry {
    /// Renames model `from` to `to`, with everything that belongs to it.
    ///
    /// Refused when `to` is taken or not a valid name, and while a rollout
    /// of the model runs or a job for it is queued or running (they name
    /// the model; finish or cancel them first). Clients must then use the
    /// new name: the old one is free, and serves nothing.
    pub async fn rename_model(&self, from: &str, to: &str, actor: &str) -> Result<RegisteredModel> {
        validate::model_name(to)?;
        if from == to {
            return Err(RegistryError::Invalid(format!(
                "model '{from}' already has that name"
            )));
        }
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, from).await?;
        let before = db::require_model(&mut tx, from).await?;
        refuse_while_running(&mut tx, from, to).await?;
        let now = db::now_ms();
        let copied = sqlx::query(
            "INSERT INTO models (name, description, tags, created_at, updated_at, last_version) \
             SELECT $1, description, tags, created_at, $2, last_version FROM models WHERE name = $3",
        )
        .bind(to)
        .bind(now)
        .bind(from)
        .execute(&mut *tx)
        .await;
        match copied {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(RegistryError::ModelExists(to.to_owned()))
            }
            Err(e) => return Err(e.into()),
        }
        move_rows(&mut tx, from, to).await?;
        let keys_moved = move_key_patterns(&mut tx, from, to).await?;
        sqlx::query("DELETE FROM models WHERE name = $1")
            .bind(from)
            .execute(&mut *tx)
            .await?;
        let after = db::require_model(&mut tx, to).await?;
        let (snapshot_before, mut snapshot_after) = (db::snapshot(&before)?, db::snapshot(&after)?);
        snapshot_after["api_keys_moved"] = serde_json::json!(keys_moved);
        for model in [from, to] {
            let event = Audit {
                actor,
                action: AuditAction::RenameModel,
                model,
                version: None,
                before: Some(snapshot_before.clone()),
                after: Some(snapshot_after.clone()),
            };
            db::record(&mut tx, now, event).await?;
        }
        tx.commit().await?;
        Ok(after)
    }
}

/// Refuses a rename while something running names the model.
async fn refuse_while_running(conn: &mut AnyConnection, from: &str, to: &str) -> Result<()> {
    let rollouts = count(
        conn,
        &format!("SELECT COUNT(*) FROM rollouts WHERE model = $1 AND state IN {ACTIVE_ROLLOUT}"),
        from,
    )
    .await?;
    if rollouts > 0 {
        return Err(RegistryError::Conflict(format!(
            "model '{from}' cannot be renamed to '{to}' while its rollout runs: \
             abort or finish the rollout first"
        )));
    }
    let jobs = count(
        conn,
        &format!("SELECT COUNT(*) FROM jobs WHERE model = $1 AND state IN {ACTIVE_JOB}"),
        from,
    )
    .await?;
    if jobs > 0 {
        return Err(RegistryError::Conflict(format!(
            "model '{from}' cannot be renamed to '{to}' while {jobs} job(s) for it are queued \
             or running: let them finish or cancel them first"
        )));
    }
    Ok(())
}

/// The count `sql` gives for `model`.
async fn count(conn: &mut AnyConnection, sql: &str, model: &str) -> Result<i64> {
    let row = sqlx::query(sql).bind(model).fetch_one(&mut *conn).await?;
    Ok(row.try_get(0)?)
}

/// Moves the rows of model `from` to `to` (whose `models` row exists).
/// Aliases refer to versions, so they are set aside while the versions move.
async fn move_rows(conn: &mut AnyConnection, from: &str, to: &str) -> Result<()> {
    let aliases = sqlx::query("SELECT alias, version FROM model_aliases WHERE model = $1")
        .bind(from)
        .fetch_all(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM model_aliases WHERE model = $1")
        .bind(from)
        .execute(&mut *conn)
        .await?;
    for table in ["model_versions", "serving_configs", "rollouts"] {
        sqlx::query(&format!("UPDATE {table} SET model = $1 WHERE model = $2"))
            .bind(to)
            .bind(from)
            .execute(&mut *conn)
            .await?;
    }
    for row in &aliases {
        let alias: String = row.try_get("alias")?;
        let version: i64 = row.try_get("version")?;
        sqlx::query("INSERT INTO model_aliases (model, alias, version) VALUES ($1, $2, $3)")
            .bind(to)
            .bind(alias)
            .bind(version)
            .execute(&mut *conn)
            .await?;
    }
    // What a deleted model of the new name left is not the renamed one's.
    forget_monitoring(conn, to).await?;
    for table in MONITOR_TABLES {
        sqlx::query(&format!("UPDATE {table} SET model = $1 WHERE model = $2"))
            .bind(to)
            .bind(from)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Points the API keys limited to model `from` by its exact name at `to`
/// instead, so that a key for the model follows it and none is left
/// naming a free name a later model could take. Patterns with a wildcard
/// name a family of models, not this one, and stay as they are. Returns
/// the ids of the keys changed.
async fn move_key_patterns(conn: &mut AnyConnection, from: &str, to: &str) -> Result<Vec<String>> {
    // Model names have no character that is special in JSON, so the
    // stored list holds `"from"` exactly when a pattern is the name.
    let rows = sqlx::query("SELECT id, models FROM api_keys WHERE models LIKE $1")
        .bind(format!("%\"{from}\"%"))
        .fetch_all(&mut *conn)
        .await?;
    let mut moved = Vec::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let models: String = row.try_get("models")?;
        let mut patterns: Vec<String> = serde_json::from_str(&models).map_err(|e| {
            RegistryError::Invalid(format!("API key {id} has an unreadable model list: {e}"))
        })?;
        if !patterns.iter().any(|p| p == from) {
            continue;
        }
        for pattern in &mut patterns {
            if pattern == from {
                to.clone_into(pattern);
            }
        }
        let mut seen = std::collections::HashSet::new();
        patterns.retain(|p| seen.insert(p.clone()));
        sqlx::query("UPDATE api_keys SET models = $1 WHERE id = $2")
            .bind(db::to_text(&patterns)?)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
        moved.push(id);
    }
    Ok(moved)
}

/// Removes the pooled monitoring data of `model` (when it is deleted, so
/// that a later model of the same name starts afresh).
pub(crate) async fn forget_monitoring(conn: &mut AnyConnection, model: &str) -> Result<()> {
    for table in MONITOR_TABLES {
        sqlx::query(&format!("DELETE FROM {table} WHERE model = $1"))
            .bind(model)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
