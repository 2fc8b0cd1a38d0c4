//! Direct mode: the data dir's registry and artifact store, opened in this
//! process as `ferroserve models` opens them; the profile is stored through
//! the lifecycle, which checks it.

use std::sync::Arc;

use anyhow::Context;
use ferroserve_backend::Engines;
use ferroserve_registry::ModelVersion;
use ferroserve_serving::lifecycle::Lifecycle;
use serde_json::Value;
use tokio::runtime::Runtime;

use super::VersionStore;
use crate::models::{open_lifecycle, RegistryArgs};
use crate::registry::Access;

/// The registry of a data dir, opened in this process.
pub(super) struct DirectStore {
    runtime: Runtime,
    lifecycle: Lifecycle,
    actor: String,
    data_dir: String,
}

impl DirectStore {
    /// Opens the registry and artifact store `args` name.
    pub(super) fn open(args: &RegistryArgs, engines: Arc<Engines>) -> anyhow::Result<Self> {
        let settings = args.settings();
        let (runtime, lifecycle) = open_lifecycle(&settings, engines, Access::Existing)?;
        Ok(DirectStore {
            runtime,
            lifecycle,
            actor: args.actor(),
            data_dir: settings.data_dir.display().to_string(),
        })
    }
}

impl VersionStore for DirectStore {
    fn versions(&self, model: &str) -> anyhow::Result<Vec<ModelVersion>> {
        Ok(self
            .runtime
            .block_on(self.lifecycle.registry().list_versions(model))?)
    }

    fn version(&self, model: &str, version: i64) -> anyhow::Result<ModelVersion> {
        Ok(self
            .runtime
            .block_on(self.lifecycle.registry().get_version(model, version))?)
    }

    fn artifact(&self, version: &ModelVersion) -> anyhow::Result<Vec<u8>> {
        self.runtime
            .block_on(
                self.lifecycle
                    .artifacts()
                    .open_verified(&version.artifact_digest),
            )
            .with_context(|| {
                format!(
                    "cannot read the artifact of {} version {}",
                    version.model, version.version
                )
            })
    }

    fn store_profile(&self, version: &ModelVersion, profile: &Value) -> anyhow::Result<()> {
        self.runtime.block_on(self.lifecycle.set_reference_profile(
            &version.model,
            version.version,
            profile.clone(),
            &self.actor,
        ))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("data dir {}", self.data_dir)
    }
}
