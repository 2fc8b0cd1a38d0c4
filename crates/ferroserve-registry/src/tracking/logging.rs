//! What a live run logs: params (set once), tags, metric values (every
//! one kept, and the latest of each metric for searches) and input
//! datasets; and a metric's history read back a page at a time.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::runs::{live_run, metric_from_row, upsert_tag};
use super::{
    check_key, check_value, Dataset, MetricValue, RunInput, MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
};
use crate::db;
use crate::error::{RegistryError, Result};
use crate::registry::Registry;

/// Metrics one batch may log at most (MLflow's limit).
pub const MAX_BATCH_METRICS: usize = 1000;
/// Params one batch may log at most (MLflow's limit).
pub const MAX_BATCH_PARAMS: usize = 100;
/// Tags one batch may set at most (MLflow's limit).
pub const MAX_BATCH_TAGS: usize = 100;

/// Metric values written per statement.
const METRIC_ROWS_PER_STATEMENT: usize = 500;

/// One page of a metric's history.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPage {
    /// Its values, by step, then time.
    pub metrics: Vec<MetricValue>,
    /// The token of the next page, when there is one.
    pub next_page_token: Option<String>,
}

/// A run input read from a row joining `tracking_run_inputs` and
/// `tracking_datasets`.
pub(super) fn input_from_row(row: &AnyRow) -> Result<RunInput> {
    let tags: String = row.try_get("tags")?;
    Ok(RunInput {
        dataset: Dataset {
            name: row.try_get("name")?,
            digest: row.try_get("digest")?,
            source_type: row.try_get("source_type")?,
            source: row.try_get("source")?,
            schema: row.try_get("schema")?,
            profile: row.try_get("profile")?,
        },
        tags: serde_json::from_str(&tags)?,
    })
}

/// Whether `a` replaces `b` as a metric's latest value: a greater step,
/// then a later time, then a greater value (MLflow's rule).
fn is_later(a: &MetricValue, b: &MetricValue) -> bool {
    (a.step, a.timestamp) > (b.step, b.timestamp)
        || ((a.step, a.timestamp) == (b.step, b.timestamp) && a.value > b.value)
}

fn check_batch(
    metrics: &[(String, MetricValue)],
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Result<()> {
    for (what, count, max) in [
        ("metrics", metrics.len(), MAX_BATCH_METRICS),
        ("params", params.len(), MAX_BATCH_PARAMS),
        ("tags", tags.len(), MAX_BATCH_TAGS),
    ] {
        if count > max {
            return Err(RegistryError::Invalid(format!(
                "a batch may log at most {max} {what}; this one has {count}"
            )));
        }
    }
    for (key, _) in metrics {
        check_key("metric key", key)?;
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in params {
        check_key("param key", key)?;
        check_value("param", key, value, MAX_PARAM_VALUE_LENGTH)?;
        if let Some(earlier) = seen.insert(key, value) {
            if earlier != value {
                return Err(RegistryError::Invalid(format!(
                    "param '{key}' is given twice in the batch, as '{earlier}' and '{value}'"
                )));
            }
        }
    }
    for (key, value) in tags {
        check_key("tag key", key)?;
        check_value("tag", key, value, MAX_TAG_VALUE_LENGTH)?;
    }
    Ok(())
}

impl Registry {
    /// Logs `metrics`, `params` and `tags` to live run `run_id`, all or
    /// nothing. A param keeps its first value: logging another is an
    /// error (the same one again is fine).
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[(String, MetricValue)],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        check_batch(metrics, params, tags)?;
        let mut tx = self.write_transaction().await?;
        live_run(&mut tx, run_id).await?;
        for (key, value) in params {
            let logged =
                sqlx::query("SELECT value FROM tracking_params WHERE run_id = $1 AND key = $2")
                    .bind(run_id)
                    .bind(key.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            match logged {
                Some(row) => {
                    let earlier: String = row.try_get("value")?;
                    if &earlier != value {
                        return Err(RegistryError::Invalid(format!(
                            "changing param values is not allowed: param '{key}' of run '{run_id}' \
                             was logged as '{earlier}'; the new value was '{value}'"
                        )));
                    }
                }
                None => {
                    sqlx::query(
                        "INSERT INTO tracking_params (run_id, key, value) VALUES ($1, $2, $3)",
                    )
                    .bind(run_id)
                    .bind(key.as_str())
                    .bind(value.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        for (key, value) in tags {
            upsert_tag(&mut tx, run_id, key, value).await?;
        }
        for chunk in metrics.chunks(METRIC_ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, {})", db::placeholder_list(2 + i * 5, 5)))
                .collect();
            let sql = format!(
                "INSERT INTO tracking_metrics (run_id, key, step, timestamp, value, is_nan) \
                 VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(run_id);
            for (key, metric) in chunk {
                let (value, is_nan) = stored(metric.value);
                query = query
                    .bind(key.as_str())
                    .bind(metric.step)
                    .bind(metric.timestamp)
                    .bind(value)
                    .bind(is_nan);
            }
            query.execute(&mut *tx).await?;
        }
        let mut latest: BTreeMap<&str, &MetricValue> = BTreeMap::new();
        for (key, metric) in metrics {
            let entry = latest.entry(key).or_insert(metric);
            if is_later(metric, entry) {
                *entry = metric;
            }
        }
        for (key, metric) in latest {
            let (value, is_nan) = stored(metric.value);
            let t = "tracking_latest_metrics";
            sqlx::query(&format!(
                "INSERT INTO {t} (run_id, key, step, timestamp, value, is_nan) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, key) DO UPDATE SET \
                 step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, \
                 is_nan = excluded.is_nan \
                 WHERE excluded.step > {t}.step OR (excluded.step = {t}.step \
                 AND (excluded.timestamp > {t}.timestamp OR (excluded.timestamp = {t}.timestamp \
                 AND excluded.value > {t}.value)))"
            ))
            .bind(run_id)
            .bind(key)
            .bind(metric.step)
            .bind(metric.timestamp)
            .bind(value)
            .bind(is_nan)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes tag `key` of live run `run_id`.
    pub async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let mut tx = self.write_transaction().await?;
        live_run(&mut tx, run_id).await?;
        let removed = sqlx::query("DELETE FROM tracking_run_tags WHERE run_id = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        super::tag_removed(removed, || format!("run '{run_id}'"), key)?;
        tx.commit().await?;
        Ok(())
    }

    /// Records `inputs` as datasets live run `run_id` took in; a dataset
    /// (by name and digest) is kept once per experiment.
    pub async fn log_inputs(&self, run_id: &str, inputs: &[RunInput]) -> Result<()> {
        for input in inputs {
            let dataset = &input.dataset;
            if dataset.name.is_empty() || dataset.digest.is_empty() {
                return Err(RegistryError::Invalid(
                    "a dataset needs a name and a digest".to_owned(),
                ));
            }
            for (key, value) in &input.tags {
                check_key("input tag key", key)?;
                check_value("input tag", key, value, MAX_TAG_VALUE_LENGTH)?;
            }
        }
        let mut tx = self.write_transaction().await?;
        let run = live_run(&mut tx, run_id).await?;
        for input in inputs {
            let d = &input.dataset;
            sqlx::query(
                "INSERT INTO tracking_datasets \
                 (experiment_id, name, digest, source_type, source, schema, profile) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(run.experiment_id)
            .bind(d.name.as_str())
            .bind(d.digest.as_str())
            .bind(d.source_type.as_str())
            .bind(d.source.as_str())
            .bind(d.schema.as_deref())
            .bind(d.profile.as_deref())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO tracking_run_inputs (run_id, experiment_id, name, digest, tags) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (run_id, name, digest) DO UPDATE SET tags = excluded.tags",
            )
            .bind(run_id)
            .bind(run.experiment_id)
            .bind(d.name.as_str())
            .bind(d.digest.as_str())
            .bind(db::to_text(&input.tags)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Values of metric `key` of run `run_id`, by step then time, at most
    /// `max_results` from where `page_token` (from the previous page)
    /// says.
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<MetricPage> {
        let offset: i64 = match page_token.filter(|t| !t.is_empty()) {
            Some(token) => token.parse().map_err(|_| {
                RegistryError::Invalid(format!("page token '{token}' is not one this server gave"))
            })?,
            None => 0,
        };
        self.run(run_id).await?;
        let limit = i64::try_from(max_results.max(1)).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT value, is_nan, timestamp, step FROM tracking_metrics \
             WHERE run_id = $1 AND key = $2 ORDER BY step, timestamp, value LIMIT $3 OFFSET $4",
        )
        .bind(run_id)
        .bind(key)
        .bind(limit.saturating_add(1))
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let mut metrics = rows
            .iter()
            .map(metric_from_row)
            .collect::<Result<Vec<_>>>()?;
        let more = metrics.len() as i64 > limit;
        metrics.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(MetricPage {
            next_page_token: more.then(|| (offset + limit).to_string()),
            metrics,
        })
    }
}

/// How a metric value is stored: NaN as 0 with the flag set.
fn stored(value: f64) -> (f64, i64) {
    if value.is_nan() {
        (0.0, 1)
    } else {
        (value, 0)
    }
}
