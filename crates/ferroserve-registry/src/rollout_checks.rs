//! The last gate check of each rollout, kept by the replica that judges
//! it (the leader) so that every replica shows the same gates in the
//! rollout's status. The registry does not read inside the gates.

use serde_json::Value;
use sqlx::Row;

use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;
use crate::rollout_shares::MAX_ROLLOUT_SHARE_BYTES;
use crate::rollouts::Rollout;

/// A rollout's last gate check.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutCheck {
    /// The step it checked.
    pub step: u32,
    /// The rollout's `updated_at` when it was checked: a check from
    /// before the rollout's last move (a step, a pause) is stale.
    pub moved_at: i64,
    /// The gates as checked (JSON of the serving layer).
    pub gates: Value,
    /// When, in unix ms.
    pub checked_at: i64,
}

impl Registry {
    /// Keeps `gates`, the check just made of `rollout` as read before the
    /// check, in place of the one kept before.
    ///
    /// Refused with [`RegistryError::Invalid`] when the gates are larger
    /// than [`MAX_ROLLOUT_SHARE_BYTES`] serialized.
    pub async fn put_rollout_check(&self, rollout: &Rollout, gates: &Value) -> Result<()> {
        let text = db::to_text(gates)?;
        if text.len() > MAX_ROLLOUT_SHARE_BYTES {
            return Err(RegistryError::Invalid(format!(
                "rollout check has {} bytes serialized; at most {MAX_ROLLOUT_SHARE_BYTES} are allowed",
                text.len()
            )));
        }
        sqlx::query(
            "INSERT INTO rollout_checks (rollout_id, step, moved_at, gates, checked_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (rollout_id) DO UPDATE SET step = excluded.step, \
             moved_at = excluded.moved_at, gates = excluded.gates, checked_at = excluded.checked_at",
        )
        .bind(rollout.id)
        .bind(i64::from(rollout.step))
        .bind(rollout.updated_at)
        .bind(text)
        .bind(db::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The last check kept of rollout `id`, if any.
    pub async fn rollout_check(&self, id: i64) -> Result<Option<RolloutCheck>> {
        let row = sqlx::query(
            "SELECT step, moved_at, gates, checked_at FROM rollout_checks WHERE rollout_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let step: i64 = row.try_get("step")?;
        let gates: String = row.try_get("gates")?;
        Ok(Some(RolloutCheck {
            step: u32::try_from(step).map_err(|_| {
                RegistryError::Invalid(format!("rollout {id}'s check names step {step}"))
            })?,
            moved_at: row.try_get("moved_at")?,
            gates: serde_json::from_str(&gates).map_err(|e| {
                RegistryError::Invalid(format!("rollout {id}'s last check is unreadable: {e}"))
            })?,
            checked_at: row.try_get("checked_at")?,
        }))
    }
}
