//! Aliases (`champion`, `challenger`, ...) and resolution of `models:/` URIs.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::types::{ModelVersion, Stage};
use crate::uri::ModelUri;
use crate::validate;

impl Registry {
    /// Points `alias` of `model` at `version`, creating or moving it.
    pub async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: i64,
        actor: &str,
    ) -> Result<()> {
        validate::alias_name(alias)?;
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        db::require_version(&mut tx, model, version).await?;
        let old = alias_version(&mut tx, model, alias).await?;
        sqlx::query(
            "INSERT INTO model_aliases (model, alias, version) VALUES ($1, $2, $3) \
             ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(model)
        .bind(alias)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        let now = db::now_ms();
        let event = Audit {
            actor,
            action: AuditAction::SetAlias,
            model,
            version: Some(version),
            before: old.map(|v| json!({ "alias": alias, "version": v })),
            after: Some(json!({ "alias": alias, "version": version })),
        };
        db::commit_model_change(tx, now, event).await?;
        Ok(())
    }

    /// Removes an alias; fails if the model has no such alias.
    pub async fn delete_alias(&self, model: &str, alias: &str, actor: &str) -> Result<()> {
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        let old = alias_version(&mut tx, model, alias).await?.ok_or_else(|| {
            RegistryError::AliasNotFound {
                model: model.to_owned(),
                alias: alias.to_owned(),
            }
        })?;
        sqlx::query("DELETE FROM model_aliases WHERE model = $1 AND alias = $2")
            .bind(model)
            .bind(alias)
            .execute(&mut *tx)
            .await?;
        let now = db::now_ms();
        let event = Audit {
            actor,
            action: AuditAction::DeleteAlias,
            model,
            version: Some(old),
            before: Some(json!({ "alias": alias, "version": old })),
            after: None,
        };
        db::commit_model_change(tx, now, event).await?;
        Ok(())
    }

    /// Every alias of a model and the version it points to.
    pub async fn aliases(&self, model: &str) -> Result<BTreeMap<String, i64>> {
        let mut conn = self.pool.acquire().await?;
        db::require_model(&mut conn, model).await?;
        let rows = sqlx::query("SELECT alias, version FROM model_aliases WHERE model = $1")
            .bind(model)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("alias")?, r.try_get("version")?)))
            .collect()
    }

    /// Every alias of every model, by model: one read for listings of the
    /// whole registry.
    pub async fn all_aliases(&self) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
        let rows = sqlx::query("SELECT model, alias, version FROM model_aliases")
            .fetch_all(&self.pool)
            .await?;
        let mut all: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for row in &rows {
            all.entry(row.try_get("model")?)
                .or_default()
                .insert(row.try_get("alias")?, row.try_get("version")?);
        }
        Ok(all)
    }

    /// Resolves a `models:/` URI to one version:
    /// `models:/iris/3` (that version), `models:/iris@champion` (the alias's
    /// version), `models:/iris/Production` (the newest version in that stage)
    /// and `models:/iris/latest` (the newest `Ready` version).
    pub async fn resolve(&self, uri: &str) -> Result<ModelVersion> {
        let parsed: ModelUri = uri.parse()?;
        let model = parsed.model();
        let mut conn = self.pool.acquire().await?;
        let version = match &parsed {
            ModelUri::Version { version, .. } => Some(*version),
            ModelUri::Alias { alias, .. } => {
                let found = alias_version(&mut conn, model, alias).await?;
                if found.is_none() && db::fetch_model(&mut conn, model).await?.is_some() {
                    return Err(RegistryError::AliasNotFound {
                        model: model.to_owned(),
                        alias: alias.clone(),
                    });
                }
                found
            }
            ModelUri::Stage { stage, .. } => {
                let found = newest(&mut conn, model, "stage", stage.as_str()).await?;
                if found.is_none() && db::fetch_model(&mut conn, model).await?.is_some() {
                    return Err(RegistryError::NoVersionInStage {
                        model: model.to_owned(),
                        stage: *stage,
                    });
                }
                found
            }
            ModelUri::Latest { .. } => {
                let found = newest(&mut conn, model, "status", "ready").await?;
                if found.is_none() && db::fetch_model(&mut conn, model).await?.is_some() {
                    return Err(RegistryError::NoReadyVersion(model.to_owned()));
                }
                found
            }
        };
        match version {
            Some(v) => db::require_version(&mut conn, model, v).await,
            None => Err(RegistryError::ModelNotFound(model.to_owned())),
        }
    }

    /// The newest version of `model` in `stage`, if any.
    pub async fn latest_in_stage(&self, model: &str, stage: Stage) -> Result<Option<i64>> {
        let mut conn = self.pool.acquire().await?;
        newest(&mut conn, model, "stage", stage.as_str()).await
    }
}

async fn alias_version(conn: &mut AnyConnection, model: &str, alias: &str) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT version FROM model_aliases WHERE model = $1 AND alias = $2")
        .bind(model)
        .bind(alias)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("version").map_err(Into::into))
        .transpose()
}

/// Highest version of `model` whose `column` (a fixed column name) equals `value`.
async fn newest(
    conn: &mut AnyConnection,
    model: &str,
    column: &'static str,
    value: &str,
) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT version FROM model_versions WHERE model = $1 AND {column} = $2 \
         ORDER BY version DESC LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(model)
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("version").map_err(Into::into))
        .transpose()
}
