//! Each replica's share of a rollout step's figures, kept so that the
//! replica judging a rollout (the leader) adds up the traffic of the whole
//! service, however unevenly it reaches the replicas. A share is replaced
//! whole by its replica; the registry does not read inside it.

use serde_json::Value;
use sqlx::Row;

use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// Largest serialized share accepted, in bytes.
pub const MAX_ROLLOUT_SHARE_BYTES: usize = 256 * 1024;

impl Registry {
    /// Stores `share`, replica `replica`'s figures for step `step` of
    /// rollout `id`, in place of the ones it stored before.
    ///
    /// Refused with [`RegistryError::Invalid`] when the share is larger
    /// than [`MAX_ROLLOUT_SHARE_BYTES`] or the replica id is empty.
    pub async fn put_rollout_share(
        &self,
        id: i64,
        step: u32,
        replica: &str,
        share: &Value,
    ) -> Result<()> {
        let text = db::to_text(share)?;
        if text.len() > MAX_ROLLOUT_SHARE_BYTES {
            return Err(RegistryError::Invalid(format!(
                "rollout share has {} bytes serialized; at most {MAX_ROLLOUT_SHARE_BYTES} are allowed",
                text.len()
            )));
        }
        if replica.is_empty() {
            return Err(RegistryError::Invalid(
                "a rollout share needs the id of its replica".to_owned(),
            ));
        }
        sqlx::query(
            "INSERT INTO rollout_shares (rollout_id, step, replica, share, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (rollout_id, step, replica) \
             DO UPDATE SET share = excluded.share, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(i64::from(step))
        .bind(replica)
        .bind(text)
        .bind(db::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every replica's share of step `step` of rollout `id`, as
    /// `(replica, share)`, ordered by replica.
    pub async fn rollout_shares(&self, id: i64, step: u32) -> Result<Vec<(String, Value)>> {
        let rows = sqlx::query(
            "SELECT replica, share FROM rollout_shares \
             WHERE rollout_id = $1 AND step = $2 ORDER BY replica",
        )
        .bind(id)
        .bind(i64::from(step))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let replica: String = row.try_get("replica")?;
                let share: String = row.try_get("share")?;
                let share = serde_json::from_str(&share).map_err(|e| {
                    RegistryError::Invalid(format!(
                        "the rollout share of replica {replica} is unreadable: {e}"
                    ))
                })?;
                Ok((replica, share))
            })
            .collect()
    }
}
