//! Connection setup, embedded migrations and the SQL shared by the store operations.
//!
//! The SQL is portable between SQLite and PostgreSQL: `$N` placeholders,
//! BIGINT/INTEGER times in unix milliseconds and JSON kept as TEXT.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};
use sqlx::AnyConnection;
use sqlx::Row;

use ferroserve_core::{EngineChoice, FeatureSchema, ModelSignature};

use crate::audit_action::AuditAction;
use crate::error::{RegistryError, Result};
use crate::types::{ModelVersion, RegisteredModel, Stage, VersionMeta, VersionStatus};

/// Which database a registry runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// SQLite file (the embedded default).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl DbKind {
    /// `sqlite` or `postgres`, as logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
        }
    }
}

/// The migrations of one kind of database, compiled into the binary.
#[derive(Debug)]
pub(crate) struct EmbeddedMigrations(pub(crate) DbKind);

impl EmbeddedMigrations {
    fn scripts(&self) -> &'static [(i64, &'static str, &'static str)] {
        match self.0 {
            DbKind::Sqlite => &[
                (
                    1,
                    "init",
                    include_str!("../migrations/sqlite/0001_init.sql"),
                ),
                (
                    2,
                    "serving_configs",
                    include_str!("../migrations/sqlite/0002_serving_configs.sql"),
                ),
                (
                    3,
                    "jobs",
                    include_str!("../migrations/sqlite/0003_jobs.sql"),
                ),
                (
                    4,
                    "job_leases",
                    include_str!("../migrations/sqlite/0004_job_leases.sql"),
                ),
                (
                    5,
                    "api_keys",
                    include_str!("../migrations/sqlite/0005_api_keys.sql"),
                ),
                (
                    6,
                    "rollouts",
                    include_str!("../migrations/sqlite/0006_rollouts.sql"),
                ),
                (
                    8,
                    "rollout_shares",
                    include_str!("../migrations/sqlite/0008_rollout_shares.sql"),
                ),
                (
                    9,
                    "monitor_pool",
                    include_str!("../migrations/sqlite/0009_monitor_pool.sql"),
                ),
                (
                    10,
                    "monitor_feedback",
                    include_str!("../migrations/sqlite/0010_monitor_feedback.sql"),
                ),
                (
                    11,
                    "tracking",
                    include_str!("../migrations/sqlite/0011_tracking.sql"),
                ),
                (
                    12,
                    "rollout_checks",
                    include_str!("../migrations/sqlite/0012_rollout_checks.sql"),
                ),
            ],
            DbKind::Postgres => &[
                (
                    1,
                    "init",
                    include_str!("../migrations/postgres/0001_init.sql"),
                ),
                (
                    2,
                    "serving_configs",
                    include_str!("../migrations/postgres/0002_serving_configs.sql"),
                ),
                (
                    3,
                    "jobs",
                    include_str!("../migrations/postgres/0003_jobs.sql"),
                ),
                (
                    4,
                    "job_leases",
                    include_str!("../migrations/postgres/0004_job_leases.sql"),
                ),
                (
                    5,
                    "api_keys",
                    include_str!("../migrations/postgres/0005_api_keys.sql"),
                ),
                (
                    6,
                    "rollouts",
                    include_str!("../migrations/postgres/0006_rollouts.sql"),
                ),
                (
                    7,
                    "change_notifications",
                    include_str!("../migrations/postgres/0007_change_notifications.sql"),
                ),
                (
                    8,
                    "rollout_shares",
                    include_str!("../migrations/postgres/0008_rollout_shares.sql"),
                ),
                (
                    9,
                    "monitor_pool",
                    include_str!("../migrations/postgres/0009_monitor_pool.sql"),
                ),
                (
                    10,
                    "monitor_feedback",
                    include_str!("../migrations/postgres/0010_monitor_feedback.sql"),
                ),
                (
                    11,
                    "tracking",
                    include_str!("../migrations/postgres/0011_tracking.sql"),
                ),
                (
                    12,
                    "rollout_checks",
                    include_str!("../migrations/postgres/0012_rollout_checks.sql"),
                ),
            ],
        }
    }
}

impl<'s> MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = self
            .scripts()
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// Current time in unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `$first, $first+1, ...`: `count` placeholders for an `IN (...)` list.
pub(crate) fn placeholder_list(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn to_text<T: Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

fn from_text<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T> {
    let text: String = row.try_get(col)?;
    Ok(serde_json::from_str(&text)?)
}

pub(crate) fn opt_from_text<T: DeserializeOwned>(row: &AnyRow, col: &str) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(Into::into)
}

/// Takes the write lock of a model for the rest of the transaction (a row
/// lock on PostgreSQL, the database write lock on SQLite), so that every
/// transaction writes before it reads and concurrent changes of one model
/// run one after the other.
pub(crate) async fn lock_model(conn: &mut AnyConnection, model: &str) -> Result<()> {
    let done = sqlx::query("UPDATE models SET updated_at = updated_at WHERE name = $1")
        .bind(model)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(RegistryError::ModelNotFound(model.to_owned()));
    }
    Ok(())
}

/// Marks a model as changed at `now`.
pub(crate) async fn touch_model(conn: &mut AnyConnection, model: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE models SET updated_at = $1 WHERE name = $2")
        .bind(now)
        .bind(model)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends a change to one model's versions or aliases: marks the model as
/// updated at `now`, records `event`, and commits, all in one transaction.
pub(crate) async fn commit_model_change(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    now: i64,
    event: Audit<'_>,
) -> Result<()> {
    touch_model(&mut tx, event.model, now).await?;
    record(&mut tx, now, event).await?;
    tx.commit().await?;
    Ok(())
}

/// One audit event to write.
pub(crate) struct Audit<'a> {
    pub(crate) actor: &'a str,
    pub(crate) action: AuditAction,
    pub(crate) model: &'a str,
    pub(crate) version: Option<i64>,
    pub(crate) before: Option<Value>,
    pub(crate) after: Option<Value>,
}

/// Writes an audit event in the caller's transaction; returns its id.
pub(crate) async fn record(conn: &mut AnyConnection, at: i64, event: Audit<'_>) -> Result<i64> {
    let before = event.before.as_ref().map(to_text).transpose()?;
    let after = event.after.as_ref().map(to_text).transpose()?;
    let row = sqlx::query(
        "INSERT INTO audit_events (at, actor, action, model, version, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(at)
    .bind(event.actor)
    .bind(event.action.as_str())
    .bind(event.model)
    .bind(event.version)
    .bind(before)
    .bind(after)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

pub(crate) const MODEL_COLUMNS: &str = "name, description, tags, created_at, updated_at";

pub(crate) fn model_from_row(row: &AnyRow) -> Result<RegisteredModel> {
    Ok(RegisteredModel {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        tags: from_text(row, "tags")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) async fn fetch_model(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<RegisteredModel>> {
    let sql = format!("SELECT {MODEL_COLUMNS} FROM models WHERE name = $1");
    let row = sqlx::query(&sql)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(model_from_row).transpose()
}

/// Fetches a model, or says that it is missing.
pub(crate) async fn require_model(conn: &mut AnyConnection, name: &str) -> Result<RegisteredModel> {
    fetch_model(conn, name)
        .await?
        .ok_or_else(|| RegistryError::ModelNotFound(name.to_owned()))
}

pub(crate) const VERSION_COLUMNS: &str = "model, version, stage, status, failure_reason, \
    artifact_digest, artifact_size, format, engine_hint, signature, feature_schema, params, \
    metrics, lineage, model_card, reference_profile, tags, registered_by, created_at";

pub(crate) fn version_from_row(row: &AnyRow) -> Result<ModelVersion> {
    let model: String = row.try_get("model")?;
    let version: i64 = row.try_get("version")?;
    let unreadable = |field: &'static str, reason: String| RegistryError::UnreadableVersion {
        model: model.clone(),
        version,
        field,
        reason,
    };
    let stage: String = row.try_get("stage")?;
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "pending" => VersionStatus::Pending,
        "ready" => VersionStatus::Ready,
        "failed" => VersionStatus::Failed {
            reason: row
                .try_get::<Option<String>, _>("failure_reason")?
                .unwrap_or_default(),
        },
        other => return Err(unreadable("status", format!("unknown status '{other}'"))),
    };
    let engine_hint = row
        .try_get::<Option<String>, _>("engine_hint")?
        .map(|hint| hint.parse::<EngineChoice>())
        .transpose()
        .map_err(|e| unreadable("engine_hint", e.to_string()))?;
    let typed = |field: &'static str| {
        let text: Option<String> = row.try_get(field)?;
        Ok::<_, RegistryError>((field, text))
    };
    let (field, text) = typed("signature")?;
    let signature: Option<ModelSignature> = text
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| unreadable(field, e.to_string()))?;
    let (field, text) = typed("feature_schema")?;
    let feature_schema: Option<FeatureSchema> = text
        .map(|t| FeatureSchema::from_json(&t))
        .transpose()
        .map_err(|e| unreadable(field, e.message))?;
    Ok(ModelVersion {
        stage: stage
            .parse::<Stage>()
            .map_err(|e| unreadable("stage", e.to_string()))?,
        status,
        artifact_digest: row.try_get("artifact_digest")?,
        artifact_size: row.try_get("artifact_size")?,
        format: row.try_get("format")?,
        engine_hint,
        signature,
        meta: VersionMeta {
            feature_schema,
            params: from_text(row, "params")?,
            metrics: from_text(row, "metrics")?,
            lineage: from_text(row, "lineage")?,
            model_card: row.try_get("model_card")?,
            reference_profile: opt_from_text(row, "reference_profile")?,
            tags: from_text(row, "tags")?,
        },
        registered_by: row.try_get("registered_by")?,
        created_at: row.try_get("created_at")?,
        model,
        version,
    })
}

pub(crate) async fn fetch_version(
    conn: &mut AnyConnection,
    model: &str,
    version: i64,
) -> Result<Option<ModelVersion>> {
    let sql =
        format!("SELECT {VERSION_COLUMNS} FROM model_versions WHERE model = $1 AND version = $2");
    let row = sqlx::query(&sql)
        .bind(model)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(version_from_row).transpose()
}

/// Fetches a version, or says whether the model or the version is missing.
pub(crate) async fn require_version(
    conn: &mut AnyConnection,
    model: &str,
    version: i64,
) -> Result<ModelVersion> {
    if let Some(v) = fetch_version(conn, model, version).await? {
        return Ok(v);
    }
    require_model(conn, model).await?;
    Err(RegistryError::version_not_found(model, version))
}

/// Inserts a new version row.
pub(crate) async fn insert_version(conn: &mut AnyConnection, v: &ModelVersion) -> Result<()> {
    let sql = format!(
        "INSERT INTO model_versions ({VERSION_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    );
    let failure = match &v.status {
        VersionStatus::Failed { reason } => Some(reason.clone()),
        _ => None,
    };
    sqlx::query(&sql)
        .bind(v.model.as_str())
        .bind(v.version)
        .bind(v.stage.as_str())
        .bind(v.status.as_str())
        .bind(failure)
        .bind(v.artifact_digest.as_str())
        .bind(v.artifact_size)
        .bind(v.format.as_str())
        .bind(v.engine_hint.map(EngineChoice::as_str))
        .bind(v.signature.as_ref().map(to_text).transpose()?)
        .bind(v.meta.feature_schema.as_ref().map(to_text).transpose()?)
        .bind(to_text(&v.meta.params)?)
        .bind(to_text(&v.meta.metrics)?)
        .bind(to_text(&v.meta.lineage)?)
        .bind(v.meta.model_card.clone())
        .bind(v.meta.reference_profile.as_ref().map(to_text).transpose()?)
        .bind(to_text(&v.meta.tags)?)
        .bind(v.registered_by.as_str())
        .bind(v.created_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes back the mutable fields of a version (stage, status, card,
/// profile, tags).
pub(crate) async fn update_version(conn: &mut AnyConnection, v: &ModelVersion) -> Result<()> {
    let failure = match &v.status {
        VersionStatus::Failed { reason } => Some(reason.clone()),
        _ => None,
    };
    sqlx::query(
        "UPDATE model_versions SET stage = $1, status = $2, failure_reason = $3, \
         model_card = $4, reference_profile = $5, tags = $6 WHERE model = $7 AND version = $8",
    )
    .bind(v.stage.as_str())
    .bind(v.status.as_str())
    .bind(failure)
    .bind(v.meta.model_card.clone())
    .bind(v.meta.reference_profile.as_ref().map(to_text).transpose()?)
    .bind(to_text(&v.meta.tags)?)
    .bind(v.model.as_str())
    .bind(v.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Serializes a stored object for an audit event.
pub(crate) fn snapshot<T: Serialize>(value: &T) -> Result<Value> {
    Ok(serde_json::to_value(value)?)
}
