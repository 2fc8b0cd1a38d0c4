//! Models logged by runs (MLflow 3's logged models): created pending with
//! a place in the experiment's artifacts, finalized once their files are
//! up, tagged, given params, listed and deleted.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{check_key, check_value, LifecycleStage, MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH};
use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// A logged model is being uploaded.
pub const LOGGED_MODEL_PENDING: &str = "LOGGED_MODEL_PENDING";
/// A logged model's files are whole.
pub const LOGGED_MODEL_READY: &str = "LOGGED_MODEL_READY";
/// A logged model's upload failed.
pub const LOGGED_MODEL_UPLOAD_FAILED: &str = "LOGGED_MODEL_UPLOAD_FAILED";

/// A model a run logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    /// Its id: `m-` and 32 hex digits.
    pub model_id: String,
    /// The experiment it belongs to.
    pub experiment_id: i64,
    /// Its name (`model` unless the client named it).
    pub name: String,
    /// The run that logged it.
    pub source_run_id: Option<String>,
    /// `LOGGED_MODEL_PENDING`, `LOGGED_MODEL_READY` or `LOGGED_MODEL_UPLOAD_FAILED`.
    pub status: String,
    /// Why it is in its status, when the client said.
    pub status_message: Option<String>,
    /// Its kind, as the client names it.
    pub model_type: Option<String>,
    /// Where its files are (`mlflow-artifacts:/EXP/models/ID/artifacts`).
    pub artifact_uri: String,
    /// When it was created (unix ms).
    pub creation_time: i64,
    /// When it last changed (unix ms).
    pub last_update_time: i64,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its params.
    pub params: BTreeMap<String, String>,
}

/// A model about to be logged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewLoggedModel {
    /// The experiment it belongs to.
    pub experiment_id: i64,
    /// Its name; `model` when `None`.
    pub name: Option<String>,
    /// The run logging it.
    pub source_run_id: Option<String>,
    /// Its kind.
    pub model_type: Option<String>,
    /// Its first tags.
    pub tags: BTreeMap<String, String>,
    /// Its params.
    pub params: BTreeMap<String, String>,
}

const COLUMNS: &str = "model_id, experiment_id, name, source_run_id, status, status_message, \
                       model_type, artifact_uri, creation_time, last_update_time";

fn model_from_row(row: &AnyRow) -> Result<LoggedModel> {
    Ok(LoggedModel {
        model_id: row.try_get("model_id")?,
        experiment_id: row.try_get("experiment_id")?,
        name: row.try_get("name")?,
        source_run_id: row.try_get("source_run_id")?,
        status: row.try_get("status")?,
        status_message: row.try_get("status_message")?,
        model_type: row.try_get("model_type")?,
        artifact_uri: row.try_get("artifact_uri")?,
        creation_time: row.try_get("creation_time")?,
        last_update_time: row.try_get("last_update_time")?,
        tags: BTreeMap::new(),
        params: BTreeMap::new(),
    })
}

fn check_pairs(what: &'static str, pairs: &BTreeMap<String, String>, max: usize) -> Result<()> {
    for (key, value) in pairs {
        check_key(what, key)?;
        check_value(what, key, value, max)?;
    }
    Ok(())
}

impl Registry {
    /// Creates a pending logged model in a live experiment.
    pub async fn create_logged_model(&self, new: &NewLoggedModel) -> Result<LoggedModel> {
        check_pairs("logged model tag", &new.tags, MAX_TAG_VALUE_LENGTH)?;
        check_pairs("logged model param", &new.params, MAX_PARAM_VALUE_LENGTH)?;
        let experiment = self.experiment(new.experiment_id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(RegistryError::Invalid(format!(
                "experiment {} is deleted; models can only be logged to a live experiment",
                experiment.id
            )));
        }
        if let Some(run_id) = &new.source_run_id {
            self.run(run_id).await?;
        }
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let artifact_uri = format!(
            "{}/models/{model_id}/artifacts",
            experiment.artifact_location.trim_end_matches('/')
        );
        let name = new
            .name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or("model");
        let now = db::now_ms();
        let mut tx = self.write_transaction().await?;
        sqlx::query(&format!(
            "INSERT INTO tracking_logged_models ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $8)"
        ))
        .bind(model_id.as_str())
        .bind(experiment.id)
        .bind(name)
        .bind(new.source_run_id.as_deref())
        .bind(LOGGED_MODEL_PENDING)
        .bind(new.model_type.as_deref())
        .bind(artifact_uri.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (table, pairs) in [
            ("tracking_logged_model_tags", &new.tags),
            ("tracking_logged_model_params", &new.params),
        ] {
            for (key, value) in pairs {
                upsert_pair(&mut tx, table, &model_id, key, value).await?;
            }
        }
        tx.commit().await?;
        self.logged_model(&model_id).await
    }

    /// Logged model `model_id` with its tags and params.
    pub async fn logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tracking_logged_models WHERE model_id = $1"
        ))
        .bind(model_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RegistryError::LoggedModelNotFound(model_id.to_owned()))?;
        let mut found = self.with_pairs(vec![model_from_row(&row)?]).await?;
        Ok(found.remove(0))
    }

    /// The logged models of `experiment_ids`, newest first.
    pub async fn logged_models(&self, experiment_ids: &[i64]) -> Result<Vec<LoggedModel>> {
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = experiment_ids.iter().map(i64::to_string).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tracking_logged_models WHERE experiment_id IN ({}) \
             ORDER BY creation_time DESC, model_id",
            ids.join(", ")
        ))
        .fetch_all(&self.pool)
        .await?;
        let models = rows
            .iter()
            .map(model_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.with_pairs(models).await
    }

    /// `models` with their tags and params filled in.
    async fn with_pairs(&self, mut models: Vec<LoggedModel>) -> Result<Vec<LoggedModel>> {
        if models.is_empty() {
            return Ok(models);
        }
        let index: BTreeMap<String, usize> = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.model_id.clone(), i))
            .collect();
        let placeholders = db::placeholder_list(1, models.len());
        for (table, is_tag) in [
            ("tracking_logged_model_tags", true),
            ("tracking_logged_model_params", false),
        ] {
            let sql = format!(
                "SELECT model_id, key, value FROM {table} WHERE model_id IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql);
            for model in &models {
                query = query.bind(model.model_id.clone());
            }
            for row in query.fetch_all(&self.pool).await? {
                let id: String = row.try_get("model_id")?;
                if let Some(&i) = index.get(&id) {
                    let pairs = if is_tag {
                        &mut models[i].tags
                    } else {
                        &mut models[i].params
                    };
                    pairs.insert(row.try_get("key")?, row.try_get("value")?);
                }
            }
        }
        Ok(models)
    }

    /// Sets the status of logged model `model_id` (`LOGGED_MODEL_READY`
    /// once its files are whole, or `LOGGED_MODEL_UPLOAD_FAILED`).
    pub async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        if ![
            LOGGED_MODEL_READY,
            LOGGED_MODEL_UPLOAD_FAILED,
            LOGGED_MODEL_PENDING,
        ]
        .contains(&status)
        {
            return Err(RegistryError::Invalid(format!(
                "logged model status '{status}' is not one of {LOGGED_MODEL_PENDING}, \
                 {LOGGED_MODEL_READY}, {LOGGED_MODEL_UPLOAD_FAILED}"
            )));
        }
        let changed = sqlx::query(
            "UPDATE tracking_logged_models SET status = $1, last_update_time = $2 WHERE model_id = $3",
        )
        .bind(status)
        .bind(db::now_ms())
        .bind(model_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(RegistryError::LoggedModelNotFound(model_id.to_owned()));
        }
        self.logged_model(model_id).await
    }

    /// Sets `tags` of logged model `model_id`.
    pub async fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.add_logged_model_pairs("tracking_logged_model_tags", model_id, tags)
            .await
    }

    /// Adds `params` to logged model `model_id`.
    pub async fn log_logged_model_params(
        &self,
        model_id: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.add_logged_model_pairs("tracking_logged_model_params", model_id, params)
            .await
    }

    async fn add_logged_model_pairs(
        &self,
        table: &str,
        model_id: &str,
        pairs: &BTreeMap<String, String>,
    ) -> Result<()> {
        let (what, max) = if table.ends_with("tags") {
            ("logged model tag", MAX_TAG_VALUE_LENGTH)
        } else {
            ("logged model param", MAX_PARAM_VALUE_LENGTH)
        };
        check_pairs(what, pairs, max)?;
        self.logged_model(model_id).await?;
        let mut tx = self.write_transaction().await?;
        for (key, value) in pairs {
            upsert_pair(&mut tx, table, model_id, key, value).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes tag `key` of logged model `model_id`.
    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.logged_model(model_id).await?;
        let removed =
            sqlx::query("DELETE FROM tracking_logged_model_tags WHERE model_id = $1 AND key = $2")
                .bind(model_id)
                .bind(key)
                .execute(&self.pool)
                .await?
                .rows_affected();
        super::tag_removed(removed, || format!("logged model '{model_id}'"), key)
    }

    /// Deletes logged model `model_id` (its files stay in the store).
    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        let mut tx = self.write_transaction().await?;
        let mut removed = 0;
        for table in [
            "tracking_logged_model_tags",
            "tracking_logged_model_params",
            "tracking_logged_models",
        ] {
            removed = sqlx::query(&format!("DELETE FROM {table} WHERE model_id = $1"))
                .bind(model_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        if removed == 0 {
            return Err(RegistryError::LoggedModelNotFound(model_id.to_owned()));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Sets `key` of `model_id` in `table` (tags or params) to `value`.
async fn upsert_pair(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    model_id: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
    ))
    .bind(model_id)
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
