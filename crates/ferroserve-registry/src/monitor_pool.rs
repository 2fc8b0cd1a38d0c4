//! The monitoring windows the replicas of a service pool: each adds its
//! part of a version's open window every second, and the leader takes
//! every part when the window is due and opens the next. The registry
//! keeps the parts as they come and does not read inside them.

use serde_json::Value;
use sqlx::Row;

use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// The pooled open window of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    /// Rows in the parts added so far.
    pub rows: u64,
    /// When it opened (unix ms).
    pub opened_at: i64,
    /// Windows of the version closed before it.
    pub closed: u64,
}

/// A window taken out of the pool by the replica closing it.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenParts {
    /// Its parts, oldest first.
    pub parts: Vec<Value>,
    /// Its number: 1 for the version's first window.
    pub index: u64,
    /// When it opened (unix ms).
    pub opened_at: i64,
}

impl Registry {
    /// Adds `part` (`rows` rows) from replica `replica` to the open window
    /// of `model` `version`.
    pub async fn add_window_part(
        &self,
        model: &str,
        version: &str,
        replica: &str,
        rows: u64,
        part: &Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO monitor_window_parts (model, version, replica, rows_count, part, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(model)
        .bind(version)
        .bind(replica)
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .bind(db::to_text(part)?)
        .bind(db::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The open window of `model` `version`, opened now when it had none.
    /// One statement once the window exists (the leader asks every second).
    pub async fn pooled_window(&self, model: &str, version: &str) -> Result<PoolWindow> {
        loop {
            let found = sqlx::query(
                "SELECT w.opened_at, w.closed, \
                 (SELECT CAST(COALESCE(SUM(p.rows_count), 0) AS BIGINT) FROM monitor_window_parts p \
                  WHERE p.model = w.model AND p.version = w.version) AS n \
                 FROM monitor_windows w WHERE w.model = $1 AND w.version = $2",
            )
            .bind(model)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(window) = found {
                return Ok(PoolWindow {
                    rows: u64::try_from(window.try_get::<i64, _>("n")?).unwrap_or(0),
                    opened_at: window.try_get("opened_at")?,
                    closed: u64::try_from(window.try_get::<i64, _>("closed")?).unwrap_or(0),
                });
            }
            sqlx::query(
                "INSERT INTO monitor_windows (model, version, opened_at, closed) \
                 VALUES ($1, $2, $3, 0) ON CONFLICT (model, version) DO NOTHING",
            )
            .bind(model)
            .bind(version)
            .bind(db::now_ms())
            .execute(&self.pool)
            .await?;
        }
    }

    /// Takes every part of the open window of `model` `version` and opens
    /// the next one, in one transaction. `None` when the window is not the
    /// `closed + 1`-th any more (another replica closed it meanwhile).
    pub async fn take_window_parts(
        &self,
        model: &str,
        version: &str,
        seen: PoolWindow,
    ) -> Result<Option<TakenParts>> {
        let mut tx = self.write_transaction().await?;
        // Compare-and-set on the closed count: of two replicas closing at
        // once, one opens the next window.
        let moved = sqlx::query(
            "UPDATE monitor_windows SET closed = closed + 1, opened_at = $1 \
             WHERE model = $2 AND version = $3 AND closed = $4",
        )
        .bind(db::now_ms())
        .bind(model)
        .bind(version)
        .bind(i64::try_from(seen.closed).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(None);
        }
        // What is deleted is what is read: a part committed meanwhile
        // stays for the next window.
        let rows = sqlx::query(
            "DELETE FROM monitor_window_parts WHERE model = $1 AND version = $2 RETURNING id, part",
        )
        .bind(model)
        .bind(version)
        .fetch_all(&mut *tx)
        .await?;
        let mut parts: Vec<(i64, Value)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let text: String = row.try_get("part")?;
            let part = serde_json::from_str(&text).map_err(|e| {
                RegistryError::Invalid(format!("window part {id} is unreadable: {e}"))
            })?;
            parts.push((id, part));
        }
        parts.sort_by_key(|(id, _)| *id);
        let parts = parts.into_iter().map(|(_, part)| part).collect();
        tx.commit().await?;
        Ok(Some(TakenParts {
            parts,
            index: seen.closed + 1,
            opened_at: seen.opened_at,
        }))
    }

    /// Keeps `report`, the leader's report of `model` `version` after it
    /// closed a window, for every replica to answer drift reads with.
    pub async fn publish_window_report(
        &self,
        model: &str,
        version: &str,
        report: &Value,
    ) -> Result<()> {
        sqlx::query("UPDATE monitor_windows SET report = $1 WHERE model = $2 AND version = $3")
            .bind(db::to_text(report)?)
            .bind(model)
            .bind(version)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The report [`Registry::publish_window_report`] kept for `model`
    /// `version`, if any.
    pub async fn window_report(&self, model: &str, version: &str) -> Result<Option<Value>> {
        let row =
            sqlx::query("SELECT report FROM monitor_windows WHERE model = $1 AND version = $2")
                .bind(model)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
        let Some(text) = row
            .map(|r| r.try_get::<Option<String>, _>("report"))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            RegistryError::Invalid(format!(
                "the window report of {model} version {version} is unreadable: {e}"
            ))
        })
    }
}
