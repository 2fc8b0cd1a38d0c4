//! Per-model serving configuration, stored as numbered revisions.

use ferroserve_core::secrets::redact_serving_config;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::types::ServingConfigRevision;

/// Largest serialized configuration accepted, in bytes.
const MAX_CONFIG_BYTES: usize = 64 * 1024;

impl Registry {
    /// Stores `config` as the next revision (1 + the latest) of the
    /// serving configuration of `model`.
    ///
    /// `config` must be a JSON object of at most 64 KiB serialized. Like
    /// version numbers, revisions are picked under the model's write lock,
    /// so concurrent calls get distinct numbers. The audit event
    /// `set_serving_config` holds the previous configuration as `before`;
    /// both its snapshots have the webhook's secrets redacted.
    pub async fn set_serving_config(
        &self,
        model: &str,
        config: Value,
        actor: &str,
    ) -> Result<ServingConfigRevision> {
        if !config.is_object() {
            return Err(RegistryError::Invalid(format!(
                "serving config of model '{model}' must be a JSON object, not {}",
                ferroserve_core::json::type_name(&config)
            )));
        }
        let text = db::to_text(&config)?;
        if text.len() > MAX_CONFIG_BYTES {
            return Err(RegistryError::Invalid(format!(
                "serving config of model '{model}' has {} bytes serialized; \
                 at most {MAX_CONFIG_BYTES} are allowed",
                text.len()
            )));
        }
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        let previous = latest(&mut tx, model).await?;
        let now = db::now_ms();
        let revision = ServingConfigRevision {
            model: model.to_owned(),
            revision: previous.as_ref().map_or(0, |p| p.revision) + 1,
            config,
            actor: actor.to_owned(),
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO serving_configs (model, revision, config, actor, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(model)
        .bind(revision.revision)
        .bind(text)
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = Audit {
            actor,
            action: AuditAction::SetServingConfig,
            model,
            version: None,
            before: previous.map(|p| redact_serving_config(&p.config)),
            after: Some(redact_serving_config(&revision.config)),
        };
        db::commit_model_change(tx, now, event).await?;
        tracing::info!(model, revision = revision.revision, "serving config stored");
        Ok(revision)
    }

    /// The latest serving configuration of `model`, or `None` when none
    /// was ever stored.
    pub async fn serving_config(&self, model: &str) -> Result<Option<ServingConfigRevision>> {
        let mut conn = self.pool.acquire().await?;
        db::require_model(&mut conn, model).await?;
        latest(&mut conn, model).await
    }

    /// Every revision of the serving configuration of `model`, newest first.
    pub async fn serving_config_history(&self, model: &str) -> Result<Vec<ServingConfigRevision>> {
        let mut conn = self.pool.acquire().await?;
        db::require_model(&mut conn, model).await?;
        revisions(&mut conn, model, i64::MAX).await
    }
}

async fn latest(conn: &mut AnyConnection, model: &str) -> Result<Option<ServingConfigRevision>> {
    Ok(revisions(conn, model, 1).await?.pop())
}

/// The newest `limit` revisions of `model`, newest first.
async fn revisions(
    conn: &mut AnyConnection,
    model: &str,
    limit: i64,
) -> Result<Vec<ServingConfigRevision>> {
    let rows = sqlx::query(
        "SELECT model, revision, config, actor, created_at FROM serving_configs \
         WHERE model = $1 ORDER BY revision DESC LIMIT $2",
    )
    .bind(model)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(revision_from_row).collect()
}

fn revision_from_row(row: &AnyRow) -> Result<ServingConfigRevision> {
    let config: String = row.try_get("config")?;
    Ok(ServingConfigRevision {
        model: row.try_get("model")?,
        revision: row.try_get("revision")?,
        config: serde_json::from_str(&config)?,
        actor: row.try_get("actor")?,
        created_at: row.try_get("created_at")?,
    })
}
