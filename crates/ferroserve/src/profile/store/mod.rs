//! Where the profiled model version lives: a server's management API
//! (`--url`) or a data dir's registry opened directly. Both look the
//! version up, hand out its artifact and store the profile on it.

mod direct;
mod remote;

use std::sync::Arc;

use anyhow::{bail, Context};
use ferroserve_backend::Engines;
use ferroserve_registry::{ModelVersion, Stage};
use serde_json::Value;

use crate::models::RegistryArgs;

/// The registry operations `ferroserve profile` needs. Blocking.
pub trait VersionStore {
    /// Every version of `model`; an error names a model that does not exist.
    fn versions(&self, model: &str) -> anyhow::Result<Vec<ModelVersion>>;
    /// One version of `model`.
    fn version(&self, model: &str, version: i64) -> anyhow::Result<ModelVersion>;
    /// The bytes of `version`'s artifact, checked against its digest.
    fn artifact(&self, version: &ModelVersion) -> anyhow::Result<Vec<u8>>;
    /// Stores `profile` as the reference profile of `version`.
    fn store_profile(&self, version: &ModelVersion, profile: &Value) -> anyhow::Result<()>;
    /// Where the registry is, for messages: `data dir DIR` or the URL.
    fn describe(&self) -> String;
}

/// The store `args` names: the server at `--url`, else the data dir.
pub fn open(args: &RegistryArgs, engines: Arc<Engines>) -> anyhow::Result<Box<dyn VersionStore>> {
    match args.url() {
        Some(url) => Ok(Box::new(remote::RemoteStore::new(url)?)),
        None => Ok(Box::new(direct::DirectStore::open(args, engines)?)),
    }
}

/// The version `NAME[/VERSION]` names; without a number, the newest
/// version in Production, else the newest version.
pub fn resolve(store: &dyn VersionStore, target: &str) -> anyhow::Result<ModelVersion> {
    let (model, number) = parse_target(target)?;
    if let Some(number) = number {
        return store.version(model, number);
    }
    let versions = store.versions(model)?;
    match default_version(&versions) {
        Some(v) => Ok(v.clone()),
        None => bail!("model '{model}' has no versions to profile"),
    }
}

/// `NAME` or `NAME/VERSION`.
fn parse_target(text: &str) -> anyhow::Result<(&str, Option<i64>)> {
    match text.split_once('/') {
        None => Ok((text, None)),
        Some((model, version)) => {
            let number = version.parse().with_context(|| {
                format!("--model {text}: version '{version}' is not a number (expected NAME or NAME/VERSION)")
            })?;
            Ok((model, Some(number)))
        }
    }
}

/// The newest version in Production, else the newest version.
fn default_version(versions: &[ModelVersion]) -> Option<&ModelVersion> {
    versions
        .iter()
        .filter(|v| v.stage == Stage::Production)
        .max_by_key(|v| v.version)
        .or_else(|| versions.iter().max_by_key(|v| v.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(number: i64, stage: Stage) -> ModelVersion {
        serde_json::from_value(serde_json::json!({
            "model": "m", "version": number, "stage": stage, "status": {"state": "ready"},
            "artifact_digest": "", "artifact_size": 0, "format": "onnx",
            "engine_hint": null, "signature": null, "feature_schema": null,
            "params": {}, "metrics": {}, "lineage": {}, "model_card": null,
            "reference_profile": null, "tags": {}, "registered_by": "t", "created_at": 0
        }))
        .expect("a version")
    }

    #[test]
    fn the_default_is_the_newest_production_version_else_the_newest() {
        let versions = vec![
            version(1, Stage::Archived),
            version(2, Stage::Production),
            version(3, Stage::Staging),
        ];
        assert_eq!(default_version(&versions).map(|v| v.version), Some(2));
        assert_eq!(default_version(&versions[..1]).map(|v| v.version), Some(1));
        assert_eq!(default_version(&[]).map(|v| v.version), None);
    }

    #[test]
    fn targets_name_a_model_and_maybe_a_version() {
        assert_eq!(parse_target("iris").expect("name"), ("iris", None));
        assert_eq!(parse_target("iris/3").expect("version"), ("iris", Some(3)));
        let err = parse_target("iris/x").unwrap_err().to_string();
        assert!(err.contains("'x' is not a number"), "{err}");
    }
}
