//! Tracking runs: started in an experiment, updated as they go and end,
//! deleted and restored, and read back with everything they logged.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{
    check_key, check_value, LifecycleStage, MetricValue, NewRun, Run, RunInfo, RunInput, RunStatus,
    RunUpdate, ViewType, MAX_TAG_VALUE_LENGTH,
};
use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// The tag MLflow keeps a run's name in as well.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

const COLUMNS: &str = "r.run_id, r.experiment_id, r.run_name, r.user_id, r.status, r.start_time, \
                       r.end_time, r.artifact_uri, r.lifecycle_stage";

fn info_from_row(row: &AnyRow) -> Result<RunInfo> {
    Ok(RunInfo {
        run_id: row.try_get("run_id")?,
        experiment_id: row.try_get("experiment_id")?,
        run_name: row.try_get("run_name")?,
        user_id: row.try_get("user_id")?,
        status: RunStatus::parse(&row.try_get::<String, _>("status")?)?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        artifact_uri: row.try_get("artifact_uri")?,
        lifecycle_stage: LifecycleStage::parse(&row.try_get::<String, _>("lifecycle_stage")?)?,
    })
}

/// A metric value read from a row of `tracking_metrics` or
/// `tracking_latest_metrics`.
pub(super) fn metric_from_row(row: &AnyRow) -> Result<MetricValue> {
    let is_nan: i64 = row.try_get("is_nan")?;
    Ok(MetricValue {
        value: if is_nan != 0 {
            f64::NAN
        } else {
            row.try_get("value")?
        },
        timestamp: row.try_get("timestamp")?,
        step: row.try_get("step")?,
    })
}

impl Registry {
    /// Starts a run in experiment `run.experiment_id` (which must be live)
    /// and returns it.
    pub async fn create_run(&self, run: &NewRun) -> Result<Run> {
        for (key, value) in &run.tags {
            check_key("tag key", key)?;
            check_value("tag", key, value, MAX_TAG_VALUE_LENGTH)?;
        }
        let experiment = self.experiment(run.experiment_id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(RegistryError::Invalid(format!(
                "experiment {} is deleted; runs can only be created in a live experiment",
                experiment.id
            )));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let run_name = match (run.run_name.trim(), run.tags.get(RUN_NAME_TAG)) {
            ("", Some(tagged)) if !tagged.is_empty() => tagged.clone(),
            ("", _) => format!("run-{}", &run_id[..8]),
            (name, _) => name.to_owned(),
        };
        let mut tags = run.tags.clone();
        tags.insert(RUN_NAME_TAG.to_owned(), run_name.clone());
        let artifact_uri = format!(
            "{}/{run_id}/artifacts",
            experiment.artifact_location.trim_end_matches('/')
        );
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "INSERT INTO tracking_runs (run_id, experiment_id, run_name, user_id, status, \
             start_time, end_time, artifact_uri, lifecycle_stage) \
             VALUES ($1, $2, $3, $4, 'RUNNING', $5, NULL, $6, 'active')",
        )
        .bind(run_id.as_str())
        .bind(experiment.id)
        .bind(run_name.as_str())
        .bind(run.user_id.as_str())
        .bind(run.start_time.unwrap_or_else(db::now_ms))
        .bind(artifact_uri.as_str())
        .execute(&mut *tx)
        .await?;
        for (key, value) in &tags {
            upsert_tag(&mut tx, &run_id, key, value).await?;
        }
        tx.commit().await?;
        self.run(&run_id).await
    }

    /// Run `run_id` with everything it logged, deleted or not.
    pub async fn run(&self, run_id: &str) -> Result<Run> {
        self.load_runs("r.run_id = $1", Some(run_id))
            .await?
            .pop()
            .ok_or_else(|| RegistryError::RunNotFound(run_id.to_owned()))
    }

    /// The runs of `experiment_ids` in `view`, newest first, with
    /// everything they logged.
    pub async fn runs_of(&self, experiment_ids: &[i64], view: ViewType) -> Result<Vec<Run>> {
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = experiment_ids.iter().map(i64::to_string).collect();
        let condition = format!("r.experiment_id IN ({})", ids.join(", "));
        let mut runs = self.load_runs(&condition, None).await?;
        runs.retain(|run| view.includes(run.info.lifecycle_stage));
        Ok(runs)
    }

    /// The runs (`r`) meeting `condition`, whose `$1` is `run_id` if given,
    /// newest first.
    async fn load_runs(&self, condition: &str, run_id: Option<&str>) -> Result<Vec<Run>> {
        let rows = self
            .fetch_rows(
                &format!(
                    "SELECT {COLUMNS} FROM tracking_runs r WHERE {condition} \
                     ORDER BY r.start_time DESC, r.run_id"
                ),
                run_id,
            )
            .await?;
        let mut runs: Vec<Run> = Vec::with_capacity(rows.len());
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for row in &rows {
            let info = info_from_row(row)?;
            index.insert(info.run_id.clone(), runs.len());
            runs.push(Run {
                info,
                params: BTreeMap::new(),
                metrics: BTreeMap::new(),
                tags: BTreeMap::new(),
                inputs: Vec::new(),
            });
        }
        if runs.is_empty() {
            return Ok(runs);
        }
        // What the runs logged, one query per kind, each row joined to its
        // run to meet the same condition.
        let logged = |columns: &str, from: &str| {
            format!(
                "SELECT x.run_id, {columns} FROM {from} \
                 JOIN tracking_runs r ON r.run_id = x.run_id WHERE {condition}"
            )
        };
        let at = |row: &AnyRow| -> Result<Option<usize>> {
            Ok(index.get(&row.try_get::<String, _>("run_id")?).copied())
        };
        let params = logged("x.key, x.value", "tracking_params x");
        for row in &self.fetch_rows(&params, run_id).await? {
            if let Some(i) = at(row)? {
                runs[i]
                    .params
                    .insert(row.try_get("key")?, row.try_get("value")?);
            }
        }
        let tags = logged("x.key, x.value", "tracking_run_tags x");
        for row in &self.fetch_rows(&tags, run_id).await? {
            if let Some(i) = at(row)? {
                runs[i]
                    .tags
                    .insert(row.try_get("key")?, row.try_get("value")?);
            }
        }
        let metrics = logged(
            "x.key, x.value, x.is_nan, x.timestamp, x.step",
            "tracking_latest_metrics x",
        );
        for row in &self.fetch_rows(&metrics, run_id).await? {
            if let Some(i) = at(row)? {
                runs[i]
                    .metrics
                    .insert(row.try_get("key")?, metric_from_row(row)?);
            }
        }
        let inputs = logged(
            "x.name, x.digest, x.tags, d.source_type, d.source, d.schema, d.profile",
            "tracking_run_inputs x JOIN tracking_datasets d ON d.experiment_id = x.experiment_id \
             AND d.name = x.name AND d.digest = x.digest",
        );
        for row in &self.fetch_rows(&inputs, run_id).await? {
            if let Some(i) = at(row)? {
                runs[i].inputs.push(super::logging::input_from_row(row)?);
            }
        }
        for run in &mut runs {
            run.inputs.sort_by(|a: &RunInput, b: &RunInput| {
                (&a.dataset.name, &a.dataset.digest).cmp(&(&b.dataset.name, &b.dataset.digest))
            });
        }
        Ok(runs)
    }

    /// The rows `sql` selects, its `$1` bound to `run_id` if given.
    async fn fetch_rows(&self, sql: &str, run_id: Option<&str>) -> Result<Vec<AnyRow>> {
        let mut query = sqlx::query(sql);
        if let Some(id) = run_id {
            query = query.bind(id);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Changes run `run_id` (live) as `update` says; returns its info.
    pub async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<RunInfo> {
        let mut tx = self.write_transaction().await?;
        let info = live_run(&mut tx, run_id).await?;
        let status = update.status.unwrap_or(info.status);
        let end_time = update.end_time.or(info.end_time);
        let run_name = match update.run_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => info.run_name.clone(),
        };
        sqlx::query(
            "UPDATE tracking_runs SET status = $1, end_time = $2, run_name = $3 WHERE run_id = $4",
        )
        .bind(status.as_str())
        .bind(end_time)
        .bind(run_name.as_str())
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        if run_name != info.run_name {
            upsert_tag(&mut tx, run_id, RUN_NAME_TAG, &run_name).await?;
        }
        tx.commit().await?;
        Ok(RunInfo {
            status,
            end_time,
            run_name,
            ..info
        })
    }

    /// Deletes run `run_id` (it can be restored).
    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        self.move_run(run_id, LifecycleStage::Deleted).await
    }

    /// Restores deleted run `run_id`.
    pub async fn restore_run(&self, run_id: &str) -> Result<()> {
        self.move_run(run_id, LifecycleStage::Active).await
    }

    async fn move_run(&self, run_id: &str, to: LifecycleStage) -> Result<()> {
        let deleted_time = (to == LifecycleStage::Deleted).then(db::now_ms);
        let changed = sqlx::query(
            "UPDATE tracking_runs SET lifecycle_stage = $1, deleted_time = $2 WHERE run_id = $3",
        )
        .bind(to.as_str())
        .bind(deleted_time)
        .bind(run_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(RegistryError::RunNotFound(run_id.to_owned()));
        }
        Ok(())
    }
}

/// The info of run `run_id` as `conn` (a transaction about to change it)
/// sees it; an error unless the run is live.
pub(super) async fn live_run(conn: &mut sqlx::AnyConnection, run_id: &str) -> Result<RunInfo> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tracking_runs r WHERE r.run_id = $1"
    ))
    .bind(run_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| RegistryError::RunNotFound(run_id.to_owned()))?;
    let info = info_from_row(&row)?;
    if info.lifecycle_stage != LifecycleStage::Active {
        return Err(RegistryError::Invalid(format!(
            "run '{run_id}' is deleted; it must be active to change it"
        )));
    }
    Ok(info)
}

/// Sets tag `key` of run `run_id` to `value` within `conn`'s transaction.
pub(super) async fn upsert_tag(
    conn: &mut sqlx::AnyConnection,
    run_id: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tracking_run_tags (run_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(run_id)
    .bind(key)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
