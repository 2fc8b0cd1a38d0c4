//! Flags of `ferroserve models` and its subcommands, among them the
//! registry flags that `ferroserve profile` takes too.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferroserve_backend::EngineChoice;
use ferroserve_registry::Stage;

use crate::registry::RegistrySettings;

/// Flags of `ferroserve models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Where the registry is, who makes the change and how to print the answer.
    #[command(flatten)]
    pub target: TargetArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// Which registry to work on, who makes the change, and how to print the
/// answer.
#[derive(Debug, Args)]
#[command(next_help_heading = "Registry options (any subcommand)")]
pub struct TargetArgs {
    /// Where the registry is and who makes the change.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print the answer as JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Which registry to work on (a server, or a data dir opened directly) and
/// who makes the change; `ferroserve profile` takes the same flags. They
/// are global so that they may follow a `models` subcommand (`profile` has
/// none, so there it changes nothing).
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Server base URL: work through its management API (else the data dir is opened directly).
    #[arg(long, env = "FERROSERVE_URL", global = true)]
    pub url: Option<String>,
    /// Data dir to open directly when no --url is given.
    #[arg(
        long,
        env = "FERROSERVE_DATA_DIR",
        default_value = "data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Registry database URL when no --url is given [default: sqlite in the data dir].
    #[arg(long, env = "FERROSERVE_REGISTRY_URL", global = true)]
    pub registry_url: Option<String>,
    /// Artifact store when no --url is given: s3://BUCKET/PREFIX, file:///DIR or a path [default: DATA_DIR/artifacts].
    #[arg(long, env = "FERROSERVE_ARTIFACT_STORE", global = true)]
    pub artifact_store: Option<String>,
    /// Path of libonnxruntime.so, used to check artifacts when no --url is given.
    #[arg(long, env = "FERROSERVE_ORT_LIBRARY", global = true)]
    pub ort_library: Option<PathBuf>,
    /// Who makes the change, as recorded in the audit log, when no --url is given (through a server, the API key's name is recorded) [default: $USER, else "cli"].
    #[arg(long, env = "FERROSERVE_ACTOR", global = true)]
    pub actor: Option<String>,
}

impl RegistryArgs {
    /// The server's base URL, if one is given (an empty one counts as none,
    /// so `FERROSERVE_URL=` selects the data dir).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref().filter(|u| !u.is_empty())
    }

    /// The data dir's registry and artifact store, for direct mode.
    pub fn settings(&self) -> RegistrySettings {
        RegistrySettings {
            data_dir: self.data_dir.clone(),
            registry_url: self.registry_url.clone(),
            artifact_store: self.artifact_store.clone(),
        }
    }

    /// The actor recorded in the audit log.
    pub fn actor(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "cli".to_owned())
    }
}

/// Subcommands of `ferroserve models`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Upload an ONNX file and register it as the next version of a model.
    Register(Box<RegisterArgs>),
    /// List the registered models.
    List,
    /// Show a model (aliases and versions) as NAME, or one version as NAME/VERSION.
    Show {
        /// NAME or NAME/VERSION.
        target: String,
    },
    /// Move a version to a stage (Staging, Production, Archived, None).
    Promote {
        /// Model name.
        model: String,
        /// Version number.
        version: i64,
        /// Stage to move the version to.
        #[arg(long)]
        stage: Stage,
        /// Leave the other versions in the target stage where they are (else they are archived).
        #[arg(long)]
        no_archive_existing: bool,
        /// Allow the move to leave the model with nothing to serve, and stop serving it.
        #[arg(long)]
        unload: bool,
    },
    /// Point an alias at a version, or remove it with --delete.
    Alias {
        /// Model name.
        model: String,
        /// Alias name, e.g. champion.
        alias: String,
        /// Version the alias points to.
        #[arg(required_unless_present = "delete")]
        version: Option<i64>,
        /// Remove the alias.
        #[arg(long, conflicts_with = "version")]
        delete: bool,
        /// With --delete: allow removing the alias the model serves, and stop serving it.
        #[arg(long, requires = "delete")]
        unload: bool,
    },
    /// Print the audit log of a model, newest first (the newest 50 unless --limit, --all or --since say otherwise).
    History(HistoryArgs),
    /// Delete a model with its versions and aliases (refused while a version is in Production); its history stays.
    Delete {
        /// Model name.
        model: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Rename a model: its versions, aliases, serving config, rollout history and the API keys limited to it by name move and the new name serves; the old one serves nothing (refused while a rollout or job of the model runs).
    Rename {
        /// Model name.
        model: String,
        /// The new name.
        new_name: String,
    },
    /// Move Production back to the version that was in Production before.
    Rollback {
        /// Model name.
        model: String,
    },
    /// Print a model's serving config, or store a new revision with --set.
    Config {
        /// Model name.
        model: String,
        /// New config: a JSON object, or a file holding one.
        #[arg(long, value_name = "FILE_OR_JSON")]
        set: Option<String>,
        /// With --set: allow a config that selects nothing to serve, and stop serving the model.
        #[arg(long, requires = "set")]
        unload: bool,
    },
    /// Show, inject or clear faults (latency, errors) on a served version; needs --url and a server started with --enable-fault-injection.
    Faults(FaultsArgs),
}

/// Flags of `ferroserve models history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Model name.
    pub model: String,
    /// Newest events to print at most.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// Print every event (no --limit).
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
    /// Only events at or after this time: RFC 3339 in UTC (2026-12-05T18:00:00Z, or a date 2026-12-05), or a duration back from now (30m, 1h, 2d).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<i64>,
}

/// `--since`: a UTC time (RFC 3339, or a date) or a duration back from
/// now, as unix milliseconds.
fn parse_since(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let now = std::time::SystemTime::now();
    let at = if let Ok(ago) = humantime::parse_duration(text) {
        now.checked_sub(ago)
            .ok_or_else(|| format!("'{text}' reaches back before 1970"))?
    } else if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        time
    } else if let Ok(day) = humantime::parse_rfc3339_weak(&format!("{text}T00:00:00Z")) {
        day
    } else {
        return Err(format!(
            "'{text}' is neither a UTC time (RFC 3339, e.g. 2026-12-05T18:00:00Z, or a date 2026-12-05) nor a duration back from now (e.g. 30m, 1h, 2d)"
        ));
    };
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("'{text}' is before 1970"))?
        .as_millis();
    i64::try_from(ms).map_err(|_| format!("'{text}' is too far in the future"))
}

/// Flags of `ferroserve models faults`.
#[derive(Debug, Args)]
pub struct FaultsArgs {
    /// Model name.
    pub model: String,
    /// Version label.
    pub version: String,
    /// Extra latency per batch in ms (the median, with --latency-p99-ms).
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<f64>,
    /// Make the latency long-tailed (log-normal) with this 99th percentile, in ms.
    #[arg(long, value_name = "MS", requires = "latency_ms")]
    pub latency_p99_ms: Option<f64>,
    /// Share of batches that fail, 0 to 1.
    #[arg(long, value_name = "RATE")]
    pub error_rate: Option<f64>,
    /// Remove the faults.
    #[arg(long, conflicts_with_all = ["latency_ms", "error_rate"])]
    pub clear: bool,
}

impl FaultsArgs {
    /// The change asked for: none (show), clear, or the faults to set.
    pub fn change(&self) -> FaultChange {
        if self.clear {
            return FaultChange::Clear;
        }
        if self.latency_ms.is_none() && self.error_rate.is_none() {
            return FaultChange::Show;
        }
        let latency = self.latency_ms.map(|ms| match self.latency_p99_ms {
            Some(p99) => {
                serde_json::json!({"distribution": "lognormal", "median_ms": ms, "p99_ms": p99})
            }
            None => serde_json::json!({"distribution": "fixed", "ms": ms}),
        });
        FaultChange::Set(serde_json::json!({
            "latency": latency,
            "error_rate": self.error_rate.unwrap_or(0.0),
        }))
    }
}

/// What `models faults` does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultChange {
    /// Print the faults in force.
    Show,
    /// Set these faults (the server checks them).
    Set(serde_json::Value),
    /// Remove the faults.
    Clear,
}

/// Flags of `ferroserve models register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// ONNX file to register.
    pub path: PathBuf,
    /// Model name (created on its first registration).
    #[arg(long)]
    pub name: String,
    /// Evaluation metric as KEY=NUMBER (repeatable).
    #[arg(long = "metric", value_name = "KEY=NUMBER", value_parser = parse_metric)]
    pub metrics: Vec<(String, f64)>,
    /// Training parameter as KEY=VALUE (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,
    /// Tag on the version as KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub tags: Vec<(String, String)>,
    /// Training data: a local file (its sha256 is recorded too) or a URI such as s3://bucket/key.
    #[arg(long, value_name = "PATH_OR_URI")]
    pub data: Option<String>,
    /// Commit of the code that trained the model.
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Identifier of the training run.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Version of the same model this one was derived from.
    #[arg(long)]
    pub parent_version: Option<i64>,
    /// Model card (Markdown file).
    #[arg(long, value_name = "FILE")]
    pub card: Option<PathBuf>,
    /// Feature schema (JSON file) [default: features.json beside the model file, when present].
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Do not record a feature schema, even when features.json is beside the model file.
    #[arg(long, conflicts_with = "schema")]
    pub no_schema: bool,
    /// Reference data profile for drift monitoring (JSON file).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Engine the version prefers: onnxruntime or tract.
    #[arg(long)]
    pub engine: Option<EngineChoice>,
    /// Description of the model, used when this registration creates it.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Stage to move the new version to right away (Staging or Production; others there are archived).
    #[arg(long)]
    pub stage: Option<Stage>,
}

/// Parses `KEY=VALUE`.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

/// Parses `KEY=NUMBER`, refusing values that are not finite numbers.
fn parse_metric(text: &str) -> Result<(String, f64), String> {
    let (key, value) = parse_pair(text)?;
    match value.trim().parse::<f64>() {
        Ok(number) if number.is_finite() => Ok((key, number)),
        _ => Err(format!(
            "metric '{key}' has value '{value}', which is not a finite number"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_pair("run=a=b").expect("valid"),
            ("run".into(), "a=b".into())
        );
        assert!(parse_pair("noequals").is_err());
        assert!(parse_pair("=value").is_err());
    }

    #[test]
    fn since_takes_times_dates_and_durations() {
        assert_eq!(parse_since("2024-05-01T12:34:56Z"), Ok(1_714_566_896_000));
        assert_eq!(parse_since("2024-05-01"), Ok(1_714_521_600_000));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        let hour_ago = parse_since("1h").expect("a duration");
        assert!((now - 3_600_000 - hour_ago).abs() < 60_000, "{hour_ago}");
        let err = parse_since("yesterday").unwrap_err();
        assert!(
            err.contains("'yesterday'") && err.contains("RFC 3339"),
            "{err}"
        );
    }

    #[test]
    fn metrics_must_be_finite_numbers() {
        assert_eq!(
            parse_metric("accuracy=0.97").expect("valid"),
            ("accuracy".into(), 0.97)
        );
        let err = parse_metric("accuracy=high").unwrap_err();
        assert!(
            err.contains("'accuracy'") && err.contains("'high'"),
            "{err}"
        );
        assert!(parse_metric("loss=NaN").is_err());
        assert!(parse_metric("loss=inf").is_err());
    }
}
