//! The [`Registry`] handle: connection, migrations and registered-model operations.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

use crate::audit_action::AuditAction;
use crate::changes::ChangeFeed;
use crate::db::{self, Audit, DbKind, EmbeddedMigrations};
use crate::error::{RegistryError, Result};
use crate::leader::Leadership;
use crate::types::{ModelQuery, RegisteredModel, Stage, Tags};
use crate::validate;

/// The model registry over SQLite or PostgreSQL.
///
/// Every mutation of models, versions, aliases and serving configuration
/// runs in one transaction together with the audit event that records it
/// (who, when, what, the changed object before and after). Of jobs, only
/// creation and cancellation are audited (see [`Registry::create_job`]).
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) pool: AnyPool,
    db_kind: DbKind,
    /// PostgreSQL only: the change listener and the leadership competition,
    /// each started when first asked for (shared by the clones).
    coordination: Option<Arc<Coordination>>,
}

/// What a PostgreSQL registry starts on demand: its change notifications
/// and the competition for leadership.
struct Coordination {
    /// The registry's URL, credentials included (never printed).
    url: String,
    feed: OnceLock<ChangeFeed>,
    leadership: OnceLock<Leadership>,
}

impl std::fmt::Debug for Coordination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordination")
            .field("url", &redact(&self.url))
            .field("feed", &self.feed)
            .field("leadership", &self.leadership)
            .finish()
    }
}

impl Registry {
    /// Connects and brings the schema up to date.
    ///
    /// `url` is `sqlite://PATH?mode=rwc` (WAL journal, foreign keys on, 10 s
    /// busy timeout) or `postgres://USER@HOST:PORT/DB`.
    pub async fn connect(url: &str) -> Result<Self> {
        install_default_drivers();
        let db_kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            DbKind::Postgres
        } else {
            return Err(RegistryError::Invalid(format!(
                "registry URL '{}' is not supported: use sqlite://PATH?mode=rwc or postgres://...",
                redact(url)
            )));
        };
        let options = match db_kind {
            // One writer at a time in SQLite; a few readers beside it.
            DbKind::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
            }
            DbKind::Postgres => AnyPoolOptions::new().max_connections(10),
        };
        let pool = options.connect(url).await.map_err(|e| {
            RegistryError::Database(format!("cannot connect to {}: {e}", redact(url)))
        })?;
        Migrator::new(EmbeddedMigrations(db_kind))
            .await?
            .run(&pool)
            .await?;
        tracing::info!(db = db_kind.as_str(), "registry connected");
        let coordination = (db_kind == DbKind::Postgres).then(|| {
            Arc::new(Coordination {
                url: url.to_owned(),
                feed: OnceLock::new(),
                leadership: OnceLock::new(),
            })
        });
        Ok(Registry {
            pool,
            db_kind,
            coordination,
        })
    }

    /// A feed of the changes made through any replica, as they commit
    /// (PostgreSQL: `LISTEN` on [`CHANNEL`](crate::changes::CHANNEL), one
    /// listening connection per registry, opened at the first call);
    /// `None` on SQLite, whose readers poll. Call within a Tokio runtime.
    pub fn change_feed(&self) -> Option<ChangeFeed> {
        let coordination = self.coordination.as_ref()?;
        Some(
            coordination
                .feed
                .get_or_init(|| ChangeFeed::listen(coordination.url.clone()))
                .clone(),
        )
    }

    /// Whether this replica leads the work one replica does at a time
    /// (PostgreSQL: it holds the registry's leader lock, competed for from
    /// the first call on; SQLite: one node, always). Call within a Tokio
    /// runtime.
    pub fn leadership(&self) -> Leadership {
        match &self.coordination {
            None => Leadership::always(),
            Some(coordination) => coordination
                .leadership
                .get_or_init(|| Leadership::compete(coordination.url.clone()))
                .clone(),
        }
    }

    /// Which database this registry runs on.
    pub fn db_kind(&self) -> DbKind {
        self.db_kind
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`): a deferred transaction that reads first
    /// cannot wait for the lock when it later writes after another
    /// connection's commit, and fails with "database is locked" instead.
    pub(crate) async fn write_transaction(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.db_kind {
            DbKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            DbKind::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Registers a new model. Fails if the name is invalid or taken.
    pub async fn create_model(
        &self,
        name: &str,
        description: &str,
        tags: Tags,
        actor: &str,
    ) -> Result<RegisteredModel> {
        validate::model_name(name)?;
        for (k, v) in &tags {
            validate::tag(k, v)?;
        }
        let now = db::now_ms();
        let model = RegisteredModel {
            name: name.to_owned(),
            description: description.to_owned(),
            tags,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_transaction().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO models ({}) VALUES ($1, $2, $3, $4, $5)",
            db::MODEL_COLUMNS
        ))
        .bind(name)
        .bind(description)
        .bind(db::to_text(&model.tags)?)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(RegistryError::ModelExists(name.to_owned()))
            }
            Err(e) => return Err(e.into()),
        }
        let event = Audit {
            actor,
            action: AuditAction::CreateModel,
            model: name,
            version: None,
            before: None,
            after: Some(db::snapshot(&model)?),
        };
        db::record(&mut tx, now, event).await?;
        tx.commit().await?;
        Ok(model)
    }

    /// Returns one model.
    pub async fn get_model(&self, name: &str) -> Result<RegisteredModel> {
        let mut conn = self.pool.acquire().await?;
        db::require_model(&mut conn, name).await
    }

    /// Returns every model, ordered by name.
    pub async fn list_models(&self) -> Result<Vec<RegisteredModel>> {
        let sql = format!("SELECT {} FROM models ORDER BY name", db::MODEL_COLUMNS);
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(db::model_from_row).collect()
    }

    /// Returns the models whose name contains `query.name_contains` and that
    /// carry every tag of `query.tags`, ordered by name.
    ///
    /// Filters in memory: a registry holds hundreds of models, not millions.
    pub async fn search_models(&self, query: &ModelQuery) -> Result<Vec<RegisteredModel>> {
        let mut models = self.list_models().await?;
        models.retain(|m| {
            query
                .name_contains
                .as_deref()
                .is_none_or(|part| m.name.contains(part))
                && query.tags.iter().all(|(k, v)| m.tags.get(k) == Some(v))
        });
        Ok(models)
    }

    /// Deletes a model with all its versions and aliases.
    ///
    /// Refused while a version is in `Production`: move it to `Archived`
    /// first, so that a served model is never removed by accident. Its audit
    /// history stays; its pooled monitoring data goes. Artifacts that no
    /// version references any more are removed by the next
    /// [`ArtifactStore::cleanup`](crate::ArtifactStore::cleanup).
    pub async fn delete_model(&self, name: &str, actor: &str) -> Result<()> {
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, name).await?;
        let before = db::require_model(&mut tx, name).await?;
        let rows = sqlx::query(
            "SELECT version, stage FROM model_versions WHERE model = $1 ORDER BY version",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in &rows {
            let version: i64 = row.try_get("version")?;
            let stage: String = row.try_get("stage")?;
            if stage == Stage::Production.as_str() {
                return Err(RegistryError::Conflict(format!(
                    "model '{name}' cannot be deleted: version {version} is in Production \
                     (transition it to Archived first)"
                )));
            }
            versions.push(version);
        }
        for table in ["model_aliases", "model_versions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE model = $1"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM models WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        crate::rename::forget_monitoring(&mut tx, name).await?;
        let mut before = db::snapshot(&before)?;
        before["versions"] = serde_json::json!(versions);
        let event = Audit {
            actor,
            action: AuditAction::DeleteModel,
            model: name,
            version: None,
            before: Some(before),
            after: None,
        };
        db::record(&mut tx, db::now_ms(), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (adds or replaces) a tag on a model.
    pub async fn set_model_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
        actor: &str,
    ) -> Result<RegisteredModel> {
        validate::tag(key, value)?;
        self.update_model(name, actor, AuditAction::SetModelTag, |m| {
            m.tags.insert(key.to_owned(), value.to_owned());
            Ok(())
        })
        .await
    }

    /// Removes a tag from a model; fails if the model has no such tag.
    pub async fn delete_model_tag(
        &self,
        name: &str,
        key: &str,
        actor: &str,
    ) -> Result<RegisteredModel> {
        self.update_model(name, actor, AuditAction::DeleteModelTag, |m| {
            m.tags
                .remove(key)
                .map(|_| ())
                .ok_or_else(|| RegistryError::TagNotFound {
                    target: format!("model '{name}'"),
                    key: key.to_owned(),
                })
        })
        .await
    }

    /// Replaces the description of a model.
    pub async fn set_model_description(
        &self,
        name: &str,
        description: &str,
        actor: &str,
    ) -> Result<RegisteredModel> {
        self.update_model(name, actor, AuditAction::SetModelDescription, |m| {
            m.description = description.to_owned();
            Ok(())
        })
        .await
    }

    /// Digests of every artifact a version refers to (for artifact cleanup).
    pub async fn referenced_digests(&self) -> Result<HashSet<String>> {
        let rows = sqlx::query("SELECT DISTINCT artifact_digest FROM model_versions")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>("artifact_digest")
                    .map_err(Into::into)
            })
            .collect()
    }

    /// Applies `change` to a model in one audited transaction.
    async fn update_model(
        &self,
        name: &str,
        actor: &str,
        action: AuditAction,
        change: impl FnOnce(&mut RegisteredModel) -> Result<()>,
    ) -> Result<RegisteredModel> {
        let mut tx = self.write_transaction().await?;
        db::lock_model(&mut tx, name).await?;
        let before = db::require_model(&mut tx, name).await?;
        let mut after = before.clone();
        change(&mut after)?;
        after.updated_at = db::now_ms();
        sqlx::query(
            "UPDATE models SET description = $1, tags = $2, updated_at = $3 WHERE name = $4",
        )
        .bind(after.description.as_str())
        .bind(db::to_text(&after.tags)?)
        .bind(after.updated_at)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let event = Audit {
            actor,
            action,
            model: name,
            version: None,
            before: Some(db::snapshot(&before)?),
            after: Some(db::snapshot(&after)?),
        };
        db::record(&mut tx, after.updated_at, event).await?;
        tx.commit().await?;
        Ok(after)
    }
}

/// Hides the passwords of a database URL in messages.
fn redact(url: &str) -> String {
    ferroserve_core::secrets::redacted_credentials(url)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(
            redact("postgres://u@h/db?password=p"),
            "postgres://u@h/db?password=***"
        );
    }
}
