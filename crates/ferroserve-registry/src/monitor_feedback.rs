//! Predictions waiting for their feedback across the replicas of a
//! service: each replica hands over the predictions it served every
//! second, a feedback call on any replica finds them by key and labels
//! them once (whichever replica it reaches), and the labeled pairs wait
//! for the leader to add them to the version's online quality. The
//! registry keeps outcomes and pairs as the monitor wrote them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::Row;

use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// Rows written or keys looked up per statement (PostgreSQL takes at most
/// 65 535 parameters in one).
const CHUNK: usize = 500;

/// A served prediction under one of the keys feedback can name it by.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionKey {
    /// The key (`r:` and a request id, or `k:` and an idempotency key).
    pub key: String,
    /// The prediction's id, shared by all its keys.
    pub prediction: String,
    /// The version that answered.
    pub version: String,
    /// The client that made the request: only it may label it.
    pub client: Option<String>,
    /// What the version predicted, one outcome per row.
    pub outcomes: Value,
}

/// A prediction found under a key.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPrediction {
    /// The prediction and the key it was found under.
    pub prediction: PredictionKey,
    /// Whether feedback labeled it already.
    pub labeled: bool,
}

/// Labels given to predictions of one version.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelBatch {
    /// The version.
    pub version: String,
    /// The ids of the labeled predictions.
    pub predictions: Vec<String>,
    /// The (predicted, true) pairs, for the quality window.
    pub pairs: Value,
}

impl Registry {
    /// Keeps `predictions` of `model` for feedback; a key used before now
    /// names the newer prediction.
    pub async fn add_predictions(&self, model: &str, predictions: &[PredictionKey]) -> Result<()> {
        // One row per key, the last prediction winning: PostgreSQL refuses
        // to update a row twice in one statement.
        let by_key: BTreeMap<&str, &PredictionKey> =
            predictions.iter().map(|p| (p.key.as_str(), p)).collect();
        let rows: Vec<&PredictionKey> = by_key.into_values().collect();
        let now = db::now_ms();
        for chunk in rows.chunks(CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, $2, {}, NULL)", db::placeholder_list(3 + i * 5, 5)))
                .collect();
            let sql = format!(
                "INSERT INTO monitor_predictions \
                 (model, created_at, key, prediction, version, client, outcomes, labeled_at) \
                 VALUES {} ON CONFLICT (model, key) DO UPDATE SET \
                 prediction = excluded.prediction, version = excluded.version, \
                 client = excluded.client, outcomes = excluded.outcomes, \
                 created_at = excluded.created_at, labeled_at = NULL",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(model).bind(now);
            for p in chunk {
                query = query
                    .bind(p.key.as_str())
                    .bind(p.prediction.as_str())
                    .bind(p.version.as_str())
                    .bind(p.client.as_deref())
                    .bind(db::to_text(&p.outcomes)?);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The predictions of `model` kept under `keys` since `since_ms` (unix
    /// ms); keys with none are left out.
    pub async fn find_predictions(
        &self,
        model: &str,
        keys: &[String],
        since_ms: i64,
    ) -> Result<Vec<FoundPrediction>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(CHUNK) {
            let sql = format!(
                "SELECT key, prediction, version, client, outcomes, labeled_at \
                 FROM monitor_predictions WHERE model = $1 AND created_at >= $2 AND key IN ({})",
                db::placeholder_list(3, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(model).bind(since_ms);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                let key: String = row.try_get("key")?;
                let outcomes: String = row.try_get("outcomes")?;
                let outcomes = serde_json::from_str(&outcomes).map_err(|e| {
                    RegistryError::Invalid(format!(
                        "the prediction of {model} under key {key} is unreadable: {e}"
                    ))
                })?;
                found.push(FoundPrediction {
                    labeled: row.try_get::<Option<i64>, _>("labeled_at")?.is_some(),
                    prediction: PredictionKey {
                        prediction: row.try_get("prediction")?,
                        version: row.try_get("version")?,
                        client: row.try_get("client")?,
                        outcomes,
                        key,
                    },
                });
            }
        }
        Ok(found)
    }

    /// Labels the predictions of `batches` and keeps their pairs for the
    /// leader, all or nothing: when some prediction is labeled already (by
    /// a feedback call through another replica, say) or is gone, nothing
    /// is written and their ids are returned; an empty list means done.
    pub async fn label_predictions(
        &self,
        model: &str,
        batches: &[LabelBatch],
    ) -> Result<Vec<String>> {
        let wanted: BTreeSet<&str> = batches
            .iter()
            .flat_map(|b| b.predictions.iter().map(String::as_str))
            .collect();
        let wanted: Vec<&str> = wanted.into_iter().collect();
        let now = db::now_ms();
        let mut tx = self.write_transaction().await?;
        let mut claimed = BTreeSet::new();
        // Sorted ids lock rows in one order, whoever claims.
        for chunk in wanted.chunks(CHUNK) {
            let sql = format!(
                "UPDATE monitor_predictions SET labeled_at = $1 \
                 WHERE model = $2 AND labeled_at IS NULL AND prediction IN ({}) \
                 RETURNING prediction",
                db::placeholder_list(3, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(now).bind(model);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *tx).await? {
                claimed.insert(row.try_get::<String, _>("prediction")?);
            }
        }
        let lost: Vec<String> = wanted
            .iter()
            .filter(|id| !claimed.contains(**id))
            .map(|id| (*id).to_owned())
            .collect();
        if !lost.is_empty() {
            tx.rollback().await?;
            return Ok(lost);
        }
        for batch in batches {
            sqlx::query(
                "INSERT INTO monitor_labels (model, version, pairs, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(model)
            .bind(batch.version.as_str())
            .bind(db::to_text(&batch.pairs)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Vec::new())
    }

    /// Takes the labeled pairs of `model` `version` kept so far, oldest
    /// first (for the leader's quality window).
    pub async fn take_labels(&self, model: &str, version: &str) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "DELETE FROM monitor_labels WHERE model = $1 AND version = $2 RETURNING id, pairs",
        )
        .bind(model)
        .bind(version)
        .fetch_all(&self.pool)
        .await?;
        let mut taken: Vec<(i64, Value)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let text: String = row.try_get("pairs")?;
            let pairs = serde_json::from_str(&text).map_err(|e| {
                RegistryError::Invalid(format!("labels {id} of {model} are unreadable: {e}"))
            })?;
            taken.push((id, pairs));
        }
        taken.sort_by_key(|(id, _)| *id);
        Ok(taken.into_iter().map(|(_, pairs)| pairs).collect())
    }

    /// Forgets predictions handed over, and labels kept, before
    /// `before_ms` (unix ms): their time for feedback is over, or nobody
    /// watches their version any more; then the oldest predictions past
    /// the newest `keep` keys. Returns how many rows left.
    pub async fn expire_predictions(&self, before_ms: i64, keep: u64) -> Result<u64> {
        let mut removed = 0;
        for table in ["monitor_predictions", "monitor_labels"] {
            removed += sqlx::query(&format!("DELETE FROM {table} WHERE created_at < $1"))
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        // Keys handed over in the same millisecond as the newest past the
        // bound stay: the bound holds to within one hand-over.
        removed += sqlx::query(
            "DELETE FROM monitor_predictions WHERE created_at < \
             (SELECT created_at FROM monitor_predictions ORDER BY created_at DESC LIMIT 1 OFFSET $1)",
        )
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(removed)
    }
}
