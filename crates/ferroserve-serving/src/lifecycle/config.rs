//! What a registry model's serving config means: which version serves,
//! which others stay addressable, and how each is loaded.

use std::collections::BTreeMap;
use std::time::Duration;

use ferroserve_backend::EngineChoice;
use ferroserve_batcher::BatcherConfig;
use ferroserve_core::InferError;
use ferroserve_registry::{ModelVersion, Stage, VersionStatus};

use crate::cache::ModelCachePolicy;
use crate::guard::ProtectionPolicy;
pub use crate::model_config::{ModelServingConfig, ServeTarget, VersionPolicy};
use crate::repository::ServingDefaults;

/// How one version is loaded; a version is reloaded when this changes.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSettings {
    /// Engine to run on.
    pub engine: EngineChoice,
    /// Intra-op threads.
    pub intra_op_threads: usize,
    /// Batching knobs.
    pub batching: BatcherConfig,
    /// Default request deadline of the version.
    pub request_timeout: Option<Duration>,
    /// Result cache settings.
    pub cache: ModelCachePolicy,
    /// Limits, breaker and fallbacks.
    pub protection: ProtectionPolicy,
}

impl ModelServingConfig {
    /// How `version` is loaded under this config and the server `defaults`.
    pub fn load_settings(
        &self,
        version: &ModelVersion,
        defaults: &ServingDefaults,
    ) -> Result<LoadSettings, InferError> {
        Ok(LoadSettings {
            engine: self
                .engine
                .or(version.engine_hint)
                .unwrap_or(defaults.engine),
            intra_op_threads: self.intra_op_threads.unwrap_or(defaults.intra_op_threads),
            batching: self.batching_over(&defaults.batching)?,
            request_timeout: self.request_timeout_ms.map(Duration::from_millis),
            cache: self.cache,
            protection: self.protection(),
        })
    }

    /// The version that should answer requests naming none, among
    /// `versions` (every version of the model) and `aliases`.
    pub fn target_version(
        &self,
        versions: &[ModelVersion],
        aliases: &BTreeMap<String, i64>,
    ) -> Option<i64> {
        let ready = |v: &&ModelVersion| v.status == VersionStatus::Ready;
        let newest_in = |stage: Stage| {
            versions
                .iter()
                .filter(ready)
                .filter(|v| v.stage == stage)
                .map(|v| v.version)
                .max()
        };
        let candidate = match &self.serve {
            ServeTarget::Production => return newest_in(Stage::Production),
            ServeTarget::Staging => return newest_in(Stage::Staging),
            ServeTarget::Latest => return versions.iter().filter(ready).map(|v| v.version).max(),
            ServeTarget::Alias(alias) => *aliases.get(alias)?,
            ServeTarget::Version(v) => *v,
        };
        versions
            .iter()
            .filter(ready)
            .any(|v| v.version == candidate)
            .then_some(candidate)
    }

    /// Every version to load: the target plus what the version policy adds
    /// (`latest` and `specific` take any ready version; `all` skips
    /// archived ones).
    pub fn wanted_versions(&self, versions: &[ModelVersion], target: Option<i64>) -> Vec<i64> {
        let ready = |archived_too: bool| -> Vec<i64> {
            let mut found: Vec<i64> = versions
                .iter()
                .filter(|v| v.status == VersionStatus::Ready)
                .filter(|v| archived_too || v.stage != Stage::Archived)
                .map(|v| v.version)
                .collect();
            found.sort_unstable();
            found
        };
        let mut wanted: Vec<i64> = match &self.version_policy {
            VersionPolicy::Serving => Vec::new(),
            VersionPolicy::Latest(n) => {
                let any = ready(true);
                any[any.len().saturating_sub(*n)..].to_vec()
            }
            VersionPolicy::Specific(list) => {
                let any = ready(true);
                list.iter().copied().filter(|v| any.contains(v)).collect()
            }
            VersionPolicy::All => ready(false),
        };
        wanted.extend(target);
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A version of model `m` with the given stage and status.
    pub(crate) fn version(n: i64, stage: Stage, status: VersionStatus) -> ModelVersion {
        ModelVersion {
            model: "m".into(),
            version: n,
            stage,
            status,
            artifact_digest: "0".repeat(64),
            artifact_size: 1,
            format: "onnx".into(),
            engine_hint: None,
            signature: None,
            meta: Default::default(),
            registered_by: "t".into(),
            created_at: 0,
        }
    }

    fn history() -> Vec<ModelVersion> {
        vec![
            version(1, Stage::Archived, VersionStatus::Ready),
            version(2, Stage::Production, VersionStatus::Ready),
            version(3, Stage::Staging, VersionStatus::Ready),
            version(
                4,
                Stage::None,
                VersionStatus::Failed {
                    reason: "bad".into(),
                },
            ),
            version(5, Stage::None, VersionStatus::Ready),
        ]
    }

    #[test]
    fn targets_resolve_against_stages_aliases_and_pins() {
        let versions = history();
        let aliases = BTreeMap::from([("champion".to_string(), 3), ("broken".to_string(), 4)]);
        let target = |value: Value| {
            ModelServingConfig::from_value(&json!({ "serve": value }))
                .expect("valid")
                .target_version(&versions, &aliases)
        };
        assert_eq!(target(json!("production")), Some(2));
        assert_eq!(target(json!("staging")), Some(3));
        assert_eq!(target(json!("latest")), Some(5));
        assert_eq!(target(json!({"alias": "champion"})), Some(3));
        assert_eq!(target(json!({"alias": "broken"})), None, "failed version");
        assert_eq!(target(json!({"alias": "missing"})), None);
        assert_eq!(target(json!({"version": 1})), Some(1));
        assert_eq!(target(json!({"version": 9})), None);
    }

    #[test]
    fn version_policy_adds_ready_versions() {
        let versions = history();
        let wanted = |value: Value| {
            ModelServingConfig::from_value(&json!({ "version_policy": value }))
                .expect("valid")
                .wanted_versions(&versions, Some(2))
        };
        assert_eq!(wanted(json!("serving")), vec![2]);
        assert_eq!(wanted(json!({"latest": 2})), vec![2, 3, 5]);
        assert_eq!(
            wanted(json!({"latest": 5})),
            vec![1, 2, 3, 5],
            "archived, among the newest"
        );
        assert_eq!(wanted(json!({"specific": [3, 4, 7]})), vec![2, 3]);
        assert_eq!(
            wanted(json!({"specific": [1]})),
            vec![1, 2],
            "archived, named"
        );
        assert_eq!(wanted(json!("all")), vec![2, 3, 5]);
    }

    #[test]
    fn batching_overrides_defaults_field_by_field() {
        let config = ModelServingConfig::from_value(&json!({"batching": {"max_batch_size": 4}}))
            .expect("valid");
        let defaults = BatcherConfig {
            max_queue_size: 7,
            ..BatcherConfig::default()
        };
        let merged = config.batching_over(&defaults).expect("valid");
        assert_eq!(merged.max_batch_size, 4);
        assert_eq!(merged.max_queue_size, 7);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let err = |value: Value| ModelServingConfig::from_value(&value).unwrap_err().message;
        assert!(err(json!({"serve": "canary"})).contains("field 'serve': unknown variant"));
        assert!(err(json!([1])).contains("must be a JSON object"));
        assert!(err(json!({"batching": {"max_batch": 3}})).contains("max_batch"));
        assert!(err(json!({"batching": {"max_batch_size": 0}})).contains("max_batch_size"));
        assert!(err(json!({"intra_op_threads": 0})).contains("intra_op_threads"));
        assert!(err(json!({"version_policy": {"latest": 0}}))
            .contains("latest must be between 1 and 16"));
        assert!(err(json!({"engine": "cuda"})).contains("cuda"));
        assert!(err(json!({"colour": 1})).contains("colour"));
        assert!(err(json!({"cache": {"ttl_s": 0}})).contains("cache.ttl_s"));
        assert!(err(json!({"cache": {"ttl": 3}})).contains("field 'cache"));
        assert!(err(json!({"monitoring": {"window_rows": 0}})).contains("monitoring.window_rows"));
        assert!(
            err(json!({"monitoring": {"alerts": [{"rule": "feature_psi"}]}}))
                .contains("field 'monitoring.alerts[0]'")
        );
    }

    #[test]
    fn cache_section_is_per_model() {
        let config =
            ModelServingConfig::from_value(&json!({"cache": {"enabled": true, "ttl_s": 300}}))
                .expect("valid");
        assert_eq!(
            config.cache,
            ModelCachePolicy {
                enabled: Some(true),
                ttl_s: Some(300)
            }
        );
        assert_eq!(
            ModelServingConfig::from_value(&json!({}))
                .expect("valid")
                .cache,
            ModelCachePolicy::default(),
            "unset: the server default decides"
        );
    }
}
