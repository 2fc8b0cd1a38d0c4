//! Crash recovery: versions whose registration was interrupted.

use sqlx::Row;

use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::types::VersionStatus;

/// Failure reason given to versions left `Pending` by a crash.
pub const INTERRUPTED_REASON: &str = "registration interrupted before the artifact was verified";

impl Registry {
    /// Marks every `Pending` version registered more than `older_than_ms`
    /// milliseconds ago as `Failed` with [`INTERRUPTED_REASON`], each with
    /// its own `mark_version_failed` audit event; returns which versions.
    ///
    /// Run it on start: a version still `Pending` that long after its
    /// registration began was left behind by a process that stopped before
    /// it verified the artifact. A version that becomes ready or is deleted
    /// meanwhile is left alone.
    pub async fn fail_stale_pending_versions(
        &self,
        older_than_ms: i64,
        actor: &str,
    ) -> Result<Vec<(String, i64)>> {
        if older_than_ms < 0 {
            return Err(RegistryError::Invalid(format!(
                "older_than_ms is {older_than_ms}; it must not be negative"
            )));
        }
        let cutoff = db::now_ms().saturating_sub(older_than_ms);
        let rows = sqlx::query(
            "SELECT model, version FROM model_versions WHERE status = $1 AND created_at < $2 \
             ORDER BY model, version",
        )
        .bind(VersionStatus::Pending.as_str())
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        let mut failed = Vec::new();
        for row in &rows {
            let model: String = row.try_get("model")?;
            let version: i64 = row.try_get("version")?;
            match self
                .mark_version_failed(&model, version, INTERRUPTED_REASON, actor)
                .await
            {
                Ok(_) => {
                    tracing::warn!(model, version, "interrupted registration marked failed");
                    failed.push((model, version));
                }
                // No longer pending (`Invalid`) or gone since the query.
                Err(
                    RegistryError::Invalid(_)
                    | RegistryError::ModelNotFound(_)
                    | RegistryError::VersionNotFound { .. },
                ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(failed)
    }
}
