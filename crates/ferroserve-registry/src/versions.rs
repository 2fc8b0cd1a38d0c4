//! Model version operations: registration, deletion, status, stage
//! transitions, tags, model cards and reference profiles.

use serde_json::{json, Value};
use sqlx::Row;

use crate::audit_action::AuditAction;
use crate::db::{self, Audit};
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::types::{ModelVersion, NewVersion, Stage, VersionStatus};
use crate::validate;

impl Registry {
    /// Registers a new version of `model` with the next version number
    /// and status `Pending`.
    ///
    /// Numbers go 1, 2, 3... per model and are never given twice, even
    /// after a version is deleted. Concurrent registrations of one model
    /// get distinct numbers: the transaction holds the model's write lock
    /// while it picks the number.
    pub async fn create_version(
        &self,
        model: &str,
        new: NewVersion,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.register_version(model, new, VersionStatus::Pending, actor)
            .await
    }

    /// Like [`create_version`](Self::create_version), but the version is
    /// `Ready` from the start, in the same transaction: for callers that
    /// verify the artifact before registering it, so that no
    /// half-registered version is ever visible.
    pub async fn create_ready_version(
        &self,
        model: &str,
        new: NewVersion,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.register_version(model, new, VersionStatus::Ready, actor)
            .await
    }

    /// Deletes one version and the aliases that point at it.
    ///
    /// Refused with [`RegistryError::Conflict`] while the version is in
    /// `Production`. The audit event `delete_version` holds the version,
    /// with the removed aliases under `aliases`, as `before`. Versions
    /// derived from it keep their `lineage.parent_version`; its number is
    /// never given to another version.
    pub async fn delete_version(&self, model: &str, version: i64, actor: &str) -> Result<()> {
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        let before = db::require_version(&mut tx, model, version).await?;
        if before.stage == Stage::Production {
            return Err(RegistryError::Conflict(format!(
                "version {version} of model '{model}' cannot be deleted: it is in Production \
                 (transition it to Archived first)"
            )));
        }
        let rows = sqlx::query(
            "SELECT alias FROM model_aliases WHERE model = $1 AND version = $2 ORDER BY alias",
        )
        .bind(model)
        .bind(version)
        .fetch_all(&mut *tx)
        .await?;
        let aliases = rows
            .iter()
            .map(|r| r.try_get::<String, _>("alias"))
            .collect::<Result<Vec<_>, _>>()?;
        for table in ["model_aliases", "model_versions"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE model = $1 AND version = $2"
            ))
            .bind(model)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        let mut snapshot = db::snapshot(&before)?;
        snapshot["aliases"] = json!(aliases);
        let event = Audit {
            actor,
            action: AuditAction::DeleteVersion,
            model,
            version: Some(version),
            before: Some(snapshot),
            after: None,
        };
        db::commit_model_change(tx, db::now_ms(), event).await?;
        tracing::info!(model, version, "version deleted");
        Ok(())
    }

    /// Inserts a new version with `status` and the next number, with its
    /// `create_version` audit event, in one transaction.
    async fn register_version(
        &self,
        model: &str,
        new: NewVersion,
        status: VersionStatus,
        actor: &str,
    ) -> Result<ModelVersion> {
        validate::new_version(&new)?;
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        if let Some(parent) = new.meta.lineage.parent_version {
            if db::fetch_version(&mut tx, model, parent).await?.is_none() {
                return Err(RegistryError::Invalid(format!(
                    "lineage.parent_version {parent} does not exist: model '{model}' has no version {parent}"
                )));
            }
        }
        let number = sqlx::query(
            "UPDATE models SET last_version = last_version + 1 WHERE name = $1 \
             RETURNING last_version",
        )
        .bind(model)
        .fetch_one(&mut *tx)
        .await?
        .try_get("last_version")?;
        let now = db::now_ms();
        let version = ModelVersion {
            model: model.to_owned(),
            version: number,
            stage: Stage::None,
            status,
            artifact_digest: new.artifact_digest,
            artifact_size: new.artifact_size,
            format: new.format,
            engine_hint: new.engine_hint,
            signature: new.signature,
            meta: new.meta,
            registered_by: actor.to_owned(),
            created_at: now,
        };
        db::insert_version(&mut tx, &version).await?;
        let event = Audit {
            actor,
            action: AuditAction::CreateVersion,
            model,
            version: Some(version.version),
            before: None,
            after: Some(db::snapshot(&version)?),
        };
        db::commit_model_change(tx, now, event).await?;
        tracing::info!(
            model,
            version = version.version,
            status = version.status.as_str(),
            "version registered"
        );
        Ok(version)
    }

    /// Returns one version.
    pub async fn get_version(&self, model: &str, version: i64) -> Result<ModelVersion> {
        let mut conn = self.pool.acquire().await?;
        db::require_version(&mut conn, model, version).await
    }

    /// Returns every version of a model, oldest first.
    pub async fn list_versions(&self, model: &str) -> Result<Vec<ModelVersion>> {
        let mut conn = self.pool.acquire().await?;
        db::require_model(&mut conn, model).await?;
        let sql = format!(
            "SELECT {} FROM model_versions WHERE model = $1 ORDER BY version",
            db::VERSION_COLUMNS
        );
        let rows = sqlx::query(&sql).bind(model).fetch_all(&mut *conn).await?;
        rows.iter().map(db::version_from_row).collect()
    }

    /// Every version of every model, by model name, oldest first: one
    /// read for listings of the whole registry.
    pub async fn all_versions(&self) -> Result<Vec<ModelVersion>> {
        let sql = format!(
            "SELECT {} FROM model_versions ORDER BY model, version",
            db::VERSION_COLUMNS
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(db::version_from_row).collect()
    }

    /// Marks a `Pending` version as verified and servable.
    pub async fn mark_version_ready(
        &self,
        model: &str,
        version: i64,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.update_version(model, version, actor, AuditAction::MarkVersionReady, |v| {
            require_pending(v)?;
            v.status = VersionStatus::Ready;
            Ok(())
        })
        .await
    }

    /// Marks a `Pending` version as failed, with the reason.
    pub async fn mark_version_failed(
        &self,
        model: &str,
        version: i64,
        reason: &str,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.update_version(model, version, actor, AuditAction::MarkVersionFailed, |v| {
            require_pending(v)?;
            v.status = VersionStatus::Failed {
                reason: reason.to_owned(),
            };
            Ok(())
        })
        .await
    }

    /// Moves a version to `stage`.
    ///
    /// Only `Ready` versions may enter `Staging` or `Production`. With
    /// `archive_existing`, the other versions in the target stage move to
    /// `Archived` in the same transaction, each with its own audit event;
    /// the flag is ignored when the target is `None` or `Archived`.
    pub async fn transition_stage(
        &self,
        model: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
        actor: &str,
    ) -> Result<ModelVersion> {
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        let before = db::require_version(&mut tx, model, version).await?;
        let promoting = matches!(stage, Stage::Staging | Stage::Production);
        if promoting && before.status != VersionStatus::Ready {
            return Err(RegistryError::Invalid(format!(
                "version {version} of model '{model}' is {}, not ready: only ready versions \
                 can move to {stage}",
                before.status.as_str()
            )));
        }
        let now = db::now_ms();
        if promoting && archive_existing {
            let sql = format!(
                "SELECT {} FROM model_versions WHERE model = $1 AND stage = $2 AND version <> $3 \
                 ORDER BY version",
                db::VERSION_COLUMNS
            );
            let rows = sqlx::query(&sql)
                .bind(model)
                .bind(stage.as_str())
                .bind(version)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                let old = db::version_from_row(row)?;
                let mut archived = old.clone();
                archived.stage = Stage::Archived;
                db::update_version(&mut tx, &archived).await?;
                let event = Audit {
                    actor,
                    action: AuditAction::TransitionStage,
                    model,
                    version: Some(old.version),
                    before: Some(db::snapshot(&old)?),
                    after: Some(db::snapshot(&archived)?),
                };
                db::record(&mut tx, now, event).await?;
            }
        }
        let mut after = before.clone();
        after.stage = stage;
        db::update_version(&mut tx, &after).await?;
        let event = Audit {
            actor,
            action: AuditAction::TransitionStage,
            model,
            version: Some(version),
            before: Some(db::snapshot(&before)?),
            after: Some(db::snapshot(&after)?),
        };
        db::commit_model_change(tx, now, event).await?;
        tracing::info!(model, version, stage = %stage, "stage changed");
        Ok(after)
    }

    /// Sets (adds or replaces) a tag on a version.
    pub async fn set_version_tag(
        &self,
        model: &str,
        version: i64,
        key: &str,
        value: &str,
        actor: &str,
    ) -> Result<ModelVersion> {
        validate::tag(key, value)?;
        self.update_version(model, version, actor, AuditAction::SetVersionTag, |v| {
            v.meta.tags.insert(key.to_owned(), value.to_owned());
            Ok(())
        })
        .await
    }

    /// Removes a tag from a version; fails if the version has no such tag.
    pub async fn delete_version_tag(
        &self,
        model: &str,
        version: i64,
        key: &str,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.update_version(model, version, actor, AuditAction::DeleteVersionTag, |v| {
            v.meta
                .tags
                .remove(key)
                .map(|_| ())
                .ok_or_else(|| RegistryError::TagNotFound {
                    target: format!("version {version} of model '{model}'"),
                    key: key.to_owned(),
                })
        })
        .await
    }

    /// Replaces (or with `None` removes) the Markdown model card of a version.
    pub async fn set_model_card(
        &self,
        model: &str,
        version: i64,
        card: Option<String>,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.update_version(model, version, actor, AuditAction::SetModelCard, |v| {
            v.meta.model_card = card;
            Ok(())
        })
        .await
    }

    /// Replaces (or with `None` removes) the reference data profile of a version.
    pub async fn set_reference_profile(
        &self,
        model: &str,
        version: i64,
        profile: Option<Value>,
        actor: &str,
    ) -> Result<ModelVersion> {
        self.update_version(
            model,
            version,
            actor,
            AuditAction::SetReferenceProfile,
            |v| {
                v.meta.reference_profile = profile;
                Ok(())
            },
        )
        .await
    }

    /// Applies `change` to one version in one audited transaction.
    async fn update_version(
        &self,
        model: &str,
        version: i64,
        actor: &str,
        action: AuditAction,
        change: impl FnOnce(&mut ModelVersion) -> Result<()>,
    ) -> Result<ModelVersion> {
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, model).await?;
        let before = db::require_version(&mut tx, model, version).await?;
        let mut after = before.clone();
        change(&mut after)?;
        db::update_version(&mut tx, &after).await?;
        let now = db::now_ms();
        let event = Audit {
            actor,
            action,
            model,
            version: Some(version),
            before: Some(db::snapshot(&before)?),
            after: Some(db::snapshot(&after)?),
        };
        db::commit_model_change(tx, now, event).await?;
        Ok(after)
    }
}

fn require_pending(v: &ModelVersion) -> Result<()> {
    if v.status == VersionStatus::Pending {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "version {} of model '{}' is {}, not pending: its status can no longer change",
            v.version,
            v.model,
            v.status.as_str()
        )))
    }
}
