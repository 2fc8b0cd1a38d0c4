//! Experiment tracking in the registry database, as MLflow's tracking API
//! has it: experiments, their runs, and what each run logs (params, tags,
//! every value of every metric, input datasets). The MLflow-compatible
//! REST API is built on these; a run's params and metrics become the
//! lineage of the model versions registered from it.

mod experiments;
mod logged_models;
mod logging;
mod runs;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

pub use logged_models::{
    LoggedModel, NewLoggedModel, LOGGED_MODEL_PENDING, LOGGED_MODEL_READY,
    LOGGED_MODEL_UPLOAD_FAILED,
};
pub use logging::{MetricPage, MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS};
pub use runs::RUN_NAME_TAG;

/// The experiment MLflow clients log to unless told otherwise.
pub const DEFAULT_EXPERIMENT_ID: i64 = 0;

/// `Ok` when deleting tag `key` removed a row (`rows`), else
/// `TagNotFound` naming `target` (an experiment, run or logged model).
fn tag_removed(rows: u64, target: impl FnOnce() -> String, key: &str) -> Result<()> {
    if rows == 0 {
        return Err(RegistryError::TagNotFound {
            target: target(),
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// Longest key of a param, metric or tag (MLflow's limit).
pub const MAX_KEY_LENGTH: usize = 250;
/// Longest param value (MLflow's limit).
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// Longest tag value (MLflow's limit).
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;

/// Whether an experiment or run is live or deleted (and restorable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStage {
    /// Live.
    Active,
    /// Deleted; can be restored.
    Deleted,
}

impl LifecycleStage {
    /// `active` or `deleted`, as stored and as MLflow names it.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "active" => Ok(LifecycleStage::Active),
            "deleted" => Ok(LifecycleStage::Deleted),
            other => Err(RegistryError::Invalid(format!(
                "unknown lifecycle stage '{other}' in the tracking store"
            ))),
        }
    }
}

/// Which experiments or runs a listing covers (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    /// Live ones only.
    #[default]
    ActiveOnly,
    /// Deleted ones only.
    DeletedOnly,
    /// Both.
    All,
}

impl ViewType {
    /// Whether something in `stage` is in view.
    pub fn includes(self, stage: LifecycleStage) -> bool {
        match self {
            ViewType::ActiveOnly => stage == LifecycleStage::Active,
            ViewType::DeletedOnly => stage == LifecycleStage::Deleted,
            ViewType::All => true,
        }
    }
}

/// A tracking experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    /// Its id (MLflow clients see it as a string).
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Where its runs' artifacts go (`mlflow-artifacts:/ID` by default).
    pub artifact_location: String,
    /// Live or deleted.
    pub lifecycle_stage: LifecycleStage,
    /// When it was created (unix ms).
    pub creation_time: i64,
    /// When it last changed (unix ms).
    pub last_update_time: i64,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// Where a run stands (MLflow's `RunStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    /// Being run.
    Running,
    /// Scheduled to run.
    Scheduled,
    /// Ended well.
    Finished,
    /// Ended in failure.
    Failed,
    /// Stopped.
    Killed,
}

impl RunStatus {
    /// The status as MLflow names it (`RUNNING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// Parses MLflow's name of a status.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "RUNNING" => Ok(RunStatus::Running),
            "SCHEDULED" => Ok(RunStatus::Scheduled),
            "FINISHED" => Ok(RunStatus::Finished),
            "FAILED" => Ok(RunStatus::Failed),
            "KILLED" => Ok(RunStatus::Killed),
            other => Err(RegistryError::Invalid(format!(
                "run status '{other}' is not one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"
            ))),
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a run and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// Its id: 32 lowercase hex digits.
    pub run_id: String,
    /// The experiment it belongs to.
    pub experiment_id: i64,
    /// Its name.
    pub run_name: String,
    /// Who started it.
    pub user_id: String,
    /// Where it stands.
    pub status: RunStatus,
    /// When it started (unix ms).
    pub start_time: i64,
    /// When it ended (unix ms), once it did.
    pub end_time: Option<i64>,
    /// Where its artifacts go.
    pub artifact_uri: String,
    /// Live or deleted.
    pub lifecycle_stage: LifecycleStage,
}

/// One logged value of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricValue {
    /// The value (NaN and infinities included).
    pub value: f64,
    /// When it was logged (unix ms).
    pub timestamp: i64,
    /// Its step.
    pub step: i64,
}

/// A dataset a run took in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Its name.
    pub name: String,
    /// Its digest (content hash, as the client computed it).
    pub digest: String,
    /// What kind of source it came from (`local`, `s3`, `http`, ...).
    pub source_type: String,
    /// The source, as the client describes it (JSON text).
    pub source: String,
    /// Its schema, as the client describes it (JSON text).
    pub schema: Option<String>,
    /// Its profile, as the client describes it (JSON text).
    pub profile: Option<String>,
}

/// A dataset as a run's input, with the input's tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInput {
    /// The dataset.
    pub dataset: Dataset,
    /// Tags of the input (`mlflow.data.context`: `training`, say).
    pub tags: BTreeMap<String, String>,
}

/// A run with everything it logged (the latest value of each metric).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// What identifies it and where it stands.
    pub info: RunInfo,
    /// Its params.
    pub params: BTreeMap<String, String>,
    /// The latest value of each of its metrics.
    pub metrics: BTreeMap<String, MetricValue>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The datasets it took in.
    pub inputs: Vec<RunInput>,
}

/// A new run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewRun {
    /// The experiment it belongs to.
    pub experiment_id: i64,
    /// Its name; one is made up when empty.
    pub run_name: String,
    /// Who starts it.
    pub user_id: String,
    /// When it started (unix ms); now when `None`.
    pub start_time: Option<i64>,
    /// Its first tags.
    pub tags: BTreeMap<String, String>,
}

/// Changes to a run; what is `None` stays.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunUpdate {
    /// Its new status.
    pub status: Option<RunStatus>,
    /// When it ended.
    pub end_time: Option<i64>,
    /// Its new name.
    pub run_name: Option<String>,
}

/// Checks a param, metric or tag key: MLflow's rule (alphanumerics, `_`,
/// `-`, `.`, ` `, `:` and `/`; no `..` part, no leading `/`), at most
/// [`MAX_KEY_LENGTH`] bytes.
pub fn check_key(what: &'static str, key: &str) -> Result<()> {
    let fail = |reason: &str| Err(RegistryError::invalid_name(what, key, reason));
    if key.is_empty() {
        return fail("it is empty");
    }
    if key.len() > MAX_KEY_LENGTH {
        return fail(&format!("it is longer than {MAX_KEY_LENGTH} bytes"));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/');
    if !key.chars().all(allowed) {
        return fail(
            "it may only hold alphanumerics, underscores, dashes, periods, spaces, colons and slashes",
        );
    }
    if key.starts_with('/') || key.split('/').any(|part| part == "..") {
        return fail("it may not start with '/' or hold a '..' part");
    }
    Ok(())
}

/// Checks that `value` of `what` `key` is at most `max` bytes.
fn check_value(what: &'static str, key: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(RegistryError::Invalid(format!(
            "{what} '{key}': the value is {} bytes; at most {max}",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_mlflow_rules() {
        for good in ["rmse", "train/loss", "a b:c-d_e.f", "ñ"] {
            assert!(check_key("metric key", good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("a$b", "may only hold"),
            ("/abs", "may not start"),
            ("a/../b", "'..'"),
        ] {
            let e = check_key("metric key", bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let long = "k".repeat(MAX_KEY_LENGTH + 1);
        assert!(check_key("param key", &long).is_err());
    }

    #[test]
    fn statuses_and_stages_round_trip() {
        for status in [
            RunStatus::Running,
            RunStatus::Scheduled,
            RunStatus::Finished,
            RunStatus::Failed,
            RunStatus::Killed,
        ] {
            assert_eq!(RunStatus::parse(status.as_str()), Ok(status));
        }
        assert!(RunStatus::parse("DONE").is_err());
        for stage in [LifecycleStage::Active, LifecycleStage::Deleted] {
            assert_eq!(LifecycleStage::parse(stage.as_str()), Ok(stage));
        }
        assert!(ViewType::All.includes(LifecycleStage::Deleted));
        assert!(!ViewType::ActiveOnly.includes(LifecycleStage::Deleted));
    }
}
