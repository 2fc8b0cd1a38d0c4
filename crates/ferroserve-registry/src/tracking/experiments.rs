//! Tracking experiments: created under a unique name, renamed, tagged,
//! deleted and restored (their runs with them), and listed.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::MAX_TAG_VALUE_LENGTH;
use super::{check_key, check_value, Experiment, LifecycleStage, ViewType, DEFAULT_EXPERIMENT_ID};
use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// Longest experiment name.
const MAX_NAME_LENGTH: usize = 500;

const COLUMNS: &str =
    "id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

fn experiment_from_row(row: &AnyRow) -> Result<Experiment> {
    Ok(Experiment {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        artifact_location: row.try_get("artifact_location")?,
        lifecycle_stage: LifecycleStage::parse(&row.try_get::<String, _>("lifecycle_stage")?)?,
        creation_time: row.try_get("creation_time")?,
        last_update_time: row.try_get("last_update_time")?,
        tags: BTreeMap::new(),
    })
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(RegistryError::invalid_name(
            "experiment name",
            name,
            "it is empty",
        ));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(RegistryError::invalid_name(
            "experiment name",
            name,
            format!("it is longer than {MAX_NAME_LENGTH} bytes"),
        ));
    }
    Ok(())
}

impl Registry {
    /// Creates an experiment named `name` with `tags`; its runs' artifacts
    /// go under `artifact_location`, or `mlflow-artifacts:/ID` (the
    /// server's artifact store) when `None`. Returns its id.
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<i64> {
        check_name(name)?;
        for (key, value) in tags {
            check_key("experiment tag key", key)?;
            check_value("experiment tag", key, value, MAX_TAG_VALUE_LENGTH)?;
        }
        let now = db::now_ms();
        let mut tx = self.write_transaction().await?;
        let taken = sqlx::query("SELECT id FROM tracking_experiments WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(RegistryError::ExperimentExists(name.to_owned()));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO tracking_experiments \
             (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, 'active', $3, $3) RETURNING id",
        )
        .bind(name)
        .bind(artifact_location.unwrap_or(""))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        if artifact_location.is_none() {
            sqlx::query("UPDATE tracking_experiments SET artifact_location = $1 WHERE id = $2")
                .bind(format!("mlflow-artifacts:/{id}"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for (key, value) in tags {
            sqlx::query(
                "INSERT INTO tracking_experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(key.as_str())
            .bind(value.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The experiment `id`, deleted or not.
    pub async fn experiment(&self, id: i64) -> Result<Experiment> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tracking_experiments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RegistryError::ExperimentNotFound(id.to_string()))?;
        self.with_tags(vec![experiment_from_row(&row)?])
            .await
            .map(|mut found| found.remove(0))
    }

    /// The experiment named `name`, deleted or not.
    pub async fn experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tracking_experiments WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RegistryError::ExperimentNotFound(format!("'{name}'")))?;
        self.with_tags(vec![experiment_from_row(&row)?])
            .await
            .map(|mut found| found.remove(0))
    }

    /// Every experiment in `view`, by id.
    pub async fn experiments(&self, view: ViewType) -> Result<Vec<Experiment>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tracking_experiments ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let experiment = experiment_from_row(row)?;
            if view.includes(experiment.lifecycle_stage) {
                found.push(experiment);
            }
        }
        self.with_tags(found).await
    }

    /// `experiments` with their tags filled in.
    async fn with_tags(&self, mut experiments: Vec<Experiment>) -> Result<Vec<Experiment>> {
        if experiments.is_empty() {
            return Ok(experiments);
        }
        // One experiment reads its own tags; a list reads them all at once.
        let rows = match experiments.as_slice() {
            [one] => {
                sqlx::query(
                    "SELECT experiment_id, key, value FROM tracking_experiment_tags \
                     WHERE experiment_id = $1",
                )
                .bind(one.id)
                .fetch_all(&self.pool)
                .await?
            }
            _ => {
                sqlx::query("SELECT experiment_id, key, value FROM tracking_experiment_tags")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let mut by_id: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
        for row in &rows {
            by_id
                .entry(row.try_get("experiment_id")?)
                .or_default()
                .insert(row.try_get("key")?, row.try_get("value")?);
        }
        for experiment in &mut experiments {
            experiment.tags = by_id.remove(&experiment.id).unwrap_or_default();
        }
        Ok(experiments)
    }

    /// Renames experiment `id` to `new_name`, which no other has.
    pub async fn rename_experiment(&self, id: i64, new_name: &str) -> Result<()> {
        check_name(new_name)?;
        let mut tx = self.write_transaction().await?;
        let holder = sqlx::query("SELECT id FROM tracking_experiments WHERE name = $1")
            .bind(new_name)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(holder) = holder {
            if holder.try_get::<i64, _>("id")? != id {
                return Err(RegistryError::ExperimentExists(new_name.to_owned()));
            }
        }
        let experiment = experiment_in(&mut tx, id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(RegistryError::Invalid(format!(
                "experiment {id} is deleted; restore it before renaming it"
            )));
        }
        sqlx::query(
            "UPDATE tracking_experiments SET name = $1, last_update_time = $2 WHERE id = $3",
        )
        .bind(new_name)
        .bind(db::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets tag `key` of experiment `id` to `value`.
    pub async fn set_experiment_tag(&self, id: i64, key: &str, value: &str) -> Result<()> {
        check_key("experiment tag key", key)?;
        check_value("experiment tag", key, value, MAX_TAG_VALUE_LENGTH)?;
        let mut tx = self.write_transaction().await?;
        if experiment_in(&mut tx, id).await?.lifecycle_stage != LifecycleStage::Active {
            return Err(RegistryError::Invalid(format!(
                "experiment {id} is deleted; restore it before tagging it"
            )));
        }
        sqlx::query(
            "INSERT INTO tracking_experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(id)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes tag `key` of experiment `id`.
    pub async fn delete_experiment_tag(&self, id: i64, key: &str) -> Result<()> {
        self.experiment(id).await?;
        let removed = sqlx::query(
            "DELETE FROM tracking_experiment_tags WHERE experiment_id = $1 AND key = $2",
        )
        .bind(id)
        .bind(key)
        .execute(&self.pool)
        .await?
        .rows_affected();
        super::tag_removed(removed, || format!("experiment {id}"), key)
    }

    /// Deletes experiment `id` and its runs (all can be restored); the
    /// default experiment stays.
    pub async fn delete_experiment(&self, id: i64) -> Result<()> {
        if id == DEFAULT_EXPERIMENT_ID {
            return Err(RegistryError::Invalid(
                "the default experiment (0) cannot be deleted".to_owned(),
            ));
        }
        self.move_experiment(id, LifecycleStage::Active, LifecycleStage::Deleted)
            .await
    }

    /// Restores deleted experiment `id` and every run of it.
    pub async fn restore_experiment(&self, id: i64) -> Result<()> {
        self.move_experiment(id, LifecycleStage::Deleted, LifecycleStage::Active)
            .await
    }

    async fn move_experiment(
        &self,
        id: i64,
        from: LifecycleStage,
        to: LifecycleStage,
    ) -> Result<()> {
        let now = db::now_ms();
        let mut tx = self.write_transaction().await?;
        let experiment = experiment_in(&mut tx, id).await?;
        if experiment.lifecycle_stage != from {
            return Err(RegistryError::Invalid(format!(
                "experiment {id} is {}, not {}",
                experiment.lifecycle_stage.as_str(),
                from.as_str()
            )));
        }
        sqlx::query(
            "UPDATE tracking_experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE id = $3",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // The runs go with it, both ways, as in MLflow.
        sqlx::query(
            "UPDATE tracking_runs SET lifecycle_stage = $1, deleted_time = $2 WHERE experiment_id = $3",
        )
        .bind(to.as_str())
        .bind((to == LifecycleStage::Deleted).then_some(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Experiment `id` as `conn` (a transaction about to change it) sees it.
async fn experiment_in(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Experiment> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tracking_experiments WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| RegistryError::ExperimentNotFound(id.to_string()))?;
    experiment_from_row(&row)
}
