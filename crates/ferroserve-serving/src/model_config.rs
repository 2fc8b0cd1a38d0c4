//! The serving config of one model, the same type for a model repository's
//! `config.toml` and a registry model's serving config: which versions
//! serve, and the engine, batching, cache and protection settings they run
//! with. The two files spell `version_policy` differently; each spelling is
//! read here into the one [`VersionPolicy`].

use std::path::Path;

use ferroserve_backend::EngineChoice;
use ferroserve_batcher::BatcherConfig;
use ferroserve_core::InferError;
use ferroserve_monitor::MonitorPolicy;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::ModelCachePolicy;
use crate::error::ServingError;
use crate::guard::breaker::BreakerPolicy;
use crate::guard::fallback::Fallback;
use crate::guard::rate_limit::ModelRateLimit;
use crate::guard::ProtectionPolicy;
use crate::traffic::TrafficPolicy;

/// Which version answers requests that name none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ServeTarget {
    /// The newest version in `Production` (the default).
    #[default]
    Production,
    /// The newest version in `Staging`.
    Staging,
    /// The newest ready version.
    Latest,
    /// The version an alias points to, e.g. `{"alias": "champion"}`.
    Alias(String),
    /// One pinned version, e.g. `{"version": 3}`.
    Version(i64),
}

impl std::fmt::Display for ServeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeTarget::Production => f.write_str("production"),
            ServeTarget::Staging => f.write_str("staging"),
            ServeTarget::Latest => f.write_str("latest"),
            ServeTarget::Alias(alias) => write!(f, "alias '{alias}'"),
            ServeTarget::Version(v) => write!(f, "version {v}"),
        }
    }
}

/// Which versions are loaded besides the one that answers requests naming
/// none.
///
/// In a registry serving config it is spelled `"serving"`, `{"latest": 2}`,
/// `{"specific": [1, 3]}` or `"all"`; in a repository `config.toml` (Triton's
/// words) `{ latest = 2 }`, `{ specific = [1, 3] }` or `{ all = true }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum VersionPolicy {
    /// Only the served version (the default): in a repository, the highest
    /// version.
    #[default]
    Serving,
    /// The N newest versions as well; in the registry ready ones, archived
    /// ones included (so the version a promotion archived stays loaded,
    /// e.g. for a `previous` fallback).
    Latest(usize),
    /// These versions as well.
    Specific(Vec<i64>),
    /// Every version: in the registry every ready one that is not archived,
    /// in a repository every version folder.
    All,
}

/// Most versions `version_policy` may load besides the served one
/// (`latest N`, or a `specific` list): each is a whole engine session.
pub const MAX_EXTRA_VERSIONS: usize = 16;

/// Longest `request_timeout_ms`: one hour.
pub const MAX_REQUEST_TIMEOUT_MS: u64 = 3_600_000;

/// Most `intra_op_threads` per engine session: the machine's cores (more
/// threads than cores only contend).
pub fn max_intra_op_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Serving config of one model. Fields left out take the server defaults,
/// so `{}` (an empty `config.toml`) is a valid config. A repository
/// `config.toml` takes every field but those marked registry-only.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelServingConfig {
    /// Which version answers requests that name none (registry-only).
    pub serve: ServeTarget,
    /// Which other versions are loaded too.
    pub version_policy: VersionPolicy,
    /// Engine; else the version's engine hint, else the server default.
    pub engine: Option<EngineChoice>,
    /// Intra-op threads per engine session.
    pub intra_op_threads: Option<usize>,
    /// Batching knobs overriding the server defaults field by field.
    pub batching: Map<String, Value>,
    /// Deadline of requests that set none, in milliseconds (registry-only).
    pub request_timeout_ms: Option<u64>,
    /// Allow a new version whose inputs or outputs differ from the served
    /// one to be swapped in (off: such a swap is refused; registry-only).
    pub allow_interface_change: bool,
    /// Result cache, e.g. `{"enabled": true, "ttl_s": 300}`; unset fields
    /// take the server defaults.
    pub cache: ModelCachePolicy,
    /// Token buckets, e.g. `{"model": {"requests_per_s": 100, "burst":
    /// 20}, "per_client": {"requests_per_s": 5, "burst": 5}}`.
    pub rate_limit: ModelRateLimit,
    /// Requests one version serves at once; more are refused (429).
    pub max_concurrent_requests: Option<usize>,
    /// Circuit breaker of each version, e.g. `{"failure_rate": 0.3}`.
    pub breaker: BreakerPolicy,
    /// What answers while a version's breaker is open, in order, e.g.
    /// `[{"kind": "version", "version": "previous"}]`.
    pub fallback: Vec<Fallback>,
    /// Drift windows, data contract, online quality and alerts, e.g.
    /// `{"window_rows": 500, "alerts": [{"rule": "feature_psi", "above": 0.25}]}`
    /// (registry-only).
    pub monitoring: MonitorPolicy,
    /// A/B split, shadow version and pinning switch, e.g.
    /// `{"split": [{"version": 2, "weight": 50}, {"version": 3, "weight": 50}],
    /// "sticky_header": "X-User-ID"}` (registry-only).
    pub traffic: TrafficPolicy,
}

impl ModelServingConfig {
    /// Parses and checks a config as stored in the registry; an error
    /// names the offending field.
    pub fn from_value(value: &Value) -> Result<Self, InferError> {
        if !value.is_object() {
            return Err(InferError::invalid(
                "serving config must be a JSON object, e.g. {\"serve\": \"production\"}",
            ));
        }
        let config: ModelServingConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            InferError::invalid(format!(
                "serving config: field '{path}': {}",
                e.into_inner()
            ))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses the repository `config.toml` at `path` (named in errors): the
    /// fields of a serving config except the registry-only ones, with
    /// `version_policy` in the repository's spelling. A policy that selects
    /// no version is refused.
    pub fn from_repository_toml(text: &str, path: &Path) -> Result<Self, ServingError> {
        let refuse = |reason: String| ServingError::ConfigFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| refuse(e.to_string()))?;
        if let Some(key) = REGISTRY_ONLY.iter().find(|k| table.contains_key(**k)) {
            return Err(refuse(format!(
                "field `{key}` belongs in a registry serving config, not in a repository config.toml"
            )));
        }
        let policy = table
            .remove("version_policy")
            .map(|value| {
                value
                    .try_into::<RepositoryVersionPolicy>()
                    .map_err(|e| refuse(format!("version_policy: {e}")))
            })
            .transpose()?;
        let mut config: ModelServingConfig = table.try_into().map_err(|e| refuse(e.to_string()))?;
        if let Some(policy) = policy {
            config.version_policy = policy.try_into().map_err(|why| {
                refuse(format!(
                    "version_policy {why}: the model would have nothing to serve"
                ))
            })?;
        }
        // Batching, cache and protection are checked against the server's
        // defaults when the repository is scanned.
        config.validate_bounds().map_err(|e| refuse(e.message))?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), InferError> {
        self.batching_over(&BatcherConfig::default())?;
        self.validate_bounds()?;
        self.cache
            .validate()
            .map_err(|e| InferError::invalid(format!("serving config: {}", e.message)))?;
        self.protection()
            .validate()
            .map_err(|e| InferError::invalid(format!("serving config: {}", e.message)))?;
        self.monitoring
            .validate()
            .map_err(|e| InferError::invalid(format!("serving config: {e}")))?;
        self.traffic
            .validate()
            .map_err(|e| InferError::invalid(format!("serving config: {e}")))?;
        Ok(())
    }

    /// Checks the numbers of this config's own fields against their floor
    /// and the server's ceiling; the error names the field and the bound.
    fn validate_bounds(&self) -> Result<(), InferError> {
        let out_of_range = |field: &str, value: String, range: String| {
            Err(InferError::invalid(format!(
                "serving config: {field} must be {range}, got {value}"
            )))
        };
        match &self.version_policy {
            VersionPolicy::Latest(n) if !(1..=MAX_EXTRA_VERSIONS).contains(n) => {
                return out_of_range(
                    "version_policy latest",
                    n.to_string(),
                    format!("between 1 and {MAX_EXTRA_VERSIONS}"),
                );
            }
            VersionPolicy::Specific(list) if list.len() > MAX_EXTRA_VERSIONS => {
                return out_of_range(
                    "version_policy specific",
                    format!("{} versions", list.len()),
                    format!("at most {MAX_EXTRA_VERSIONS} versions"),
                );
            }
            _ => {}
        }
        let max_threads = max_intra_op_threads();
        if let Some(threads) = self
            .intra_op_threads
            .filter(|t| !(1..=max_threads).contains(t))
        {
            return out_of_range(
                "intra_op_threads",
                threads.to_string(),
                format!("between 1 and {max_threads} (the machine's cores)"),
            );
        }
        if let Some(ms) = self
            .request_timeout_ms
            .filter(|ms| !(1..=MAX_REQUEST_TIMEOUT_MS).contains(ms))
        {
            return out_of_range(
                "request_timeout_ms",
                ms.to_string(),
                format!("between 1 and {MAX_REQUEST_TIMEOUT_MS} (one hour)"),
            );
        }
        Ok(())
    }

    /// Batching knobs: `defaults` with this config's fields on top.
    pub fn batching_over(&self, defaults: &BatcherConfig) -> Result<BatcherConfig, InferError> {
        defaults
            .with_overrides(&self.batching)
            .map_err(|e| InferError::invalid(format!("serving config: batching: {}", e.message)))
    }

    /// The protection settings of this model.
    pub fn protection(&self) -> ProtectionPolicy {
        ProtectionPolicy {
            rate_limit: self.rate_limit,
            max_concurrent_requests: self.max_concurrent_requests,
            breaker: self.breaker,
            fallback: self.fallback.clone(),
        }
    }
}

/// Fields a repository `config.toml` refuses: they only mean something for
/// a model whose versions live in the registry.
const REGISTRY_ONLY: [&str; 5] = [
    "serve",
    "request_timeout_ms",
    "allow_interface_change",
    "monitoring",
    "traffic",
];

/// `version_policy` as a repository `config.toml` spells it.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum RepositoryVersionPolicy {
    Latest(usize),
    All(bool),
    Specific(Vec<u64>),
}

impl TryFrom<RepositoryVersionPolicy> for VersionPolicy {
    /// Why the policy selects no version.
    type Error = &'static str;

    fn try_from(policy: RepositoryVersionPolicy) -> Result<Self, Self::Error> {
        match policy {
            RepositoryVersionPolicy::Latest(0) => {
                Err("latest = 0 selects no version; use 1 or more")
            }
            RepositoryVersionPolicy::Latest(n) => Ok(VersionPolicy::Latest(n)),
            RepositoryVersionPolicy::All(false) => {
                Err("all = false selects no version; use all = true")
            }
            RepositoryVersionPolicy::All(true) => Ok(VersionPolicy::All),
            RepositoryVersionPolicy::Specific(list) if list.is_empty() => {
                Err("specific = [] selects no version; name at least one")
            }
            RepositoryVersionPolicy::Specific(list) => list
                .into_iter()
                .map(i64::try_from)
                .collect::<Result<Vec<i64>, _>>()
                .map(VersionPolicy::Specific)
                .map_err(|_| "specific names a version number beyond 2^63"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_and_registry_spellings_read_into_one_policy() {
        let toml =
            |text: &str| ModelServingConfig::from_repository_toml(text, Path::new("config.toml"));
        let json = |value: Value| ModelServingConfig::from_value(&value).expect("valid");
        for (repository, registry, policy) in [
            ("", serde_json::json!({}), VersionPolicy::Serving),
            (
                "version_policy = { latest = 2 }",
                serde_json::json!({"version_policy": {"latest": 2}}),
                VersionPolicy::Latest(2),
            ),
            (
                "version_policy = { all = true }",
                serde_json::json!({"version_policy": "all"}),
                VersionPolicy::All,
            ),
            (
                "version_policy = { specific = [1, 3] }",
                serde_json::json!({"version_policy": {"specific": [1, 3]}}),
                VersionPolicy::Specific(vec![1, 3]),
            ),
        ] {
            assert_eq!(toml(repository).expect("valid").version_policy, policy);
            assert_eq!(json(registry).version_policy, policy);
        }
        // Each file keeps its own spelling.
        assert!(toml("version_policy = \"all\"").is_err());
        assert!(toml("version_policy = \"serving\"").is_err());
        assert!(ModelServingConfig::from_value(
            &serde_json::json!({"version_policy": {"all": true}})
        )
        .is_err());
    }

    #[test]
    fn repository_configs_refuse_registry_only_fields_and_empty_policies() {
        let err = |text: &str| {
            ModelServingConfig::from_repository_toml(text, Path::new("m/config.toml"))
                .unwrap_err()
                .to_string()
        };
        assert!(err("serve = \"staging\"")
            .starts_with("model repository: m/config.toml: field `serve`"));
        assert!(err("request_timeout_ms = 5").contains("request_timeout_ms"));
        assert!(err("colour = 1").contains("colour"));
        assert!(err("version_policy = { all = false }").contains("all = false selects no version"));
        assert!(err("version_policy = { specific = [-1] }").contains("version_policy"));
        let config = ModelServingConfig::from_repository_toml(
            "engine = \"tract\"\n[batching]\nmax_batch_size = 4\n[cache]\nenabled = true\n",
            Path::new("m/config.toml"),
        )
        .expect("valid");
        assert_eq!(config.engine, Some(EngineChoice::Tract));
        assert_eq!(
            config
                .batching_over(&BatcherConfig::default())
                .expect("valid")
                .max_batch_size,
            4
        );
        assert_eq!(config.cache.enabled, Some(true));
    }

    #[test]
    fn numbers_past_the_server_bounds_are_refused_alike_by_registry_and_repository() {
        let registry = |value: Value| {
            ModelServingConfig::from_value(&value)
                .expect_err("over a bound")
                .message
        };
        let repository = |text: &str| {
            ModelServingConfig::from_repository_toml(text, Path::new("m/config.toml"))
                .expect_err("over a bound")
                .to_string()
        };
        let threads = max_intra_op_threads() + 1;
        let expected = format!("intra_op_threads must be between 1 and {}", threads - 1);
        assert!(registry(serde_json::json!({"intra_op_threads": threads})).contains(&expected));
        assert!(repository(&format!("intra_op_threads = {threads}")).contains(&expected));
        assert!(repository("intra_op_threads = 0").contains(&expected));
        let expected = "version_policy latest must be between 1 and 16, got 17";
        assert!(registry(serde_json::json!({"version_policy": {"latest": 17}})).contains(expected));
        assert!(repository("version_policy = { latest = 17 }").contains(expected));
        let many: Vec<u64> = (1..=17).collect();
        assert!(
            registry(serde_json::json!({"version_policy": {"specific": many}}))
                .contains("version_policy specific must be at most 16 versions")
        );
        assert!(
            registry(serde_json::json!({"request_timeout_ms": MAX_REQUEST_TIMEOUT_MS + 1}))
                .contains("request_timeout_ms must be between 1 and 3600000")
        );
        assert!(
            registry(serde_json::json!({"batching": {"instance_count": 100_000}}))
                .contains("instance_count (100000) is more than the limit of 64")
        );
        assert!(
            registry(serde_json::json!({"monitoring": {"window_rows": 1_000_000_000_000u64}}))
                .contains("monitoring.window_rows: must be between 1 and 100000")
        );
    }
}
