//! Direct mode: opens the data dir's registry and artifact store and calls
//! the lifecycle in process. A server on the same data dir picks the
//! changes up at its next registry poll. `ferroserve profile` opens them
//! the same way, with [`open_lifecycle`].

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use ferroserve_backend::Engines;
use ferroserve_registry::{AuditFilter, AuditPage, ModelVersion, RegisteredModel, Stage};
use ferroserve_serving::lifecycle::{ArtifactInfo, Lifecycle, RegisterVersion, WhenNothingServes};
use serde_json::Value;
use tokio::runtime::Runtime;

use super::args::FaultChange;
use super::store::{Changed, ConfigRevision, ModelDetail, ModelStore};
use crate::registry::{Access, RegistrySettings};

/// The registry of a data dir, opened in this process.
pub struct DirectModels {
    runtime: Runtime,
    lifecycle: Lifecycle,
    actor: String,
}

impl DirectModels {
    /// Opens the registry and artifact store named by `settings`; only
    /// [`Access::Create`] creates them when missing.
    pub fn open(
        settings: &RegistrySettings,
        ort_library: Option<&Path>,
        actor: String,
        access: Access,
    ) -> anyhow::Result<Self> {
        let engines = Arc::new(Engines::discover(ort_library));
        let (runtime, lifecycle) = open_lifecycle(settings, engines, access)?;
        Ok(DirectModels {
            runtime,
            lifecycle,
            actor,
        })
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// Opens the registry and artifact store named by `settings`, with the
/// single-threaded runtime that then drives every call on them.
pub fn open_lifecycle(
    settings: &RegistrySettings,
    engines: Arc<Engines>,
    access: Access,
) -> anyhow::Result<(Runtime, Lifecycle)> {
    if access == Access::Existing {
        // Said as is: "cannot open the data dir" would add nothing.
        settings.check_exists()?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let lifecycle = runtime
        .block_on(crate::registry::open(settings, engines, access))
        .with_context(|| format!("cannot open the data dir {}", settings.data_dir.display()))?;
    Ok((runtime, lifecycle))
}

impl ModelStore for DirectModels {
    fn upload(&self, path: &Path) -> anyhow::Result<ArtifactInfo> {
        self.block_on(async {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?;
            self.lifecycle
                .upload(file, None)
                .await
                .with_context(|| format!("cannot store {}", path.display()))
        })
    }

    fn register(
        &self,
        model: &str,
        request: &RegisterVersion,
    ) -> anyhow::Result<Changed<ModelVersion>> {
        let version =
            self.block_on(self.lifecycle.register(model, request.clone(), &self.actor))?;
        Ok(Changed::direct(version))
    }

    fn list(&self) -> anyhow::Result<Vec<RegisteredModel>> {
        Ok(self.block_on(self.lifecycle.registry().list_models())?)
    }

    fn model(&self, model: &str) -> anyhow::Result<ModelDetail> {
        let registry = self.lifecycle.registry();
        self.block_on(async {
            Ok(ModelDetail {
                model: registry.get_model(model).await?,
                aliases: registry.aliases(model).await?,
                versions: registry.list_versions(model).await?,
            })
        })
    }

    fn version(&self, model: &str, version: i64) -> anyhow::Result<ModelVersion> {
        Ok(self.block_on(self.lifecycle.registry().get_version(model, version))?)
    }

    fn promote(
        &self,
        model: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
        unload: bool,
    ) -> anyhow::Result<Changed<ModelVersion>> {
        let changed = self.block_on(self.lifecycle.transition_stage(
            model,
            version,
            stage,
            archive_existing,
            WhenNothingServes::unload_if(unload),
            &self.actor,
        ))?;
        Ok(Changed::direct(changed))
    }

    fn set_alias(&self, model: &str, alias: &str, version: i64) -> anyhow::Result<Changed<()>> {
        self.block_on(self.lifecycle.set_alias(model, alias, version, &self.actor))?;
        Ok(Changed::direct(()))
    }

    fn delete_alias(&self, model: &str, alias: &str, unload: bool) -> anyhow::Result<Changed<()>> {
        self.block_on(self.lifecycle.delete_alias(
            model,
            alias,
            WhenNothingServes::unload_if(unload),
            &self.actor,
        ))?;
        Ok(Changed::direct(()))
    }

    fn rollback(&self, model: &str) -> anyhow::Result<Changed<ModelVersion>> {
        let version = self.block_on(self.lifecycle.rollback(model, &self.actor))?;
        Ok(Changed::direct(version))
    }

    fn history_page(&self, model: &str, filter: &AuditFilter) -> anyhow::Result<AuditPage> {
        let registry = self.lifecycle.registry();
        Ok(self.block_on(registry.model_history(model, filter))?)
    }

    fn serving(&self, _model: &str) -> anyhow::Result<Option<Value>> {
        Ok(None)
    }

    fn delete_model(&self, model: &str) -> anyhow::Result<()> {
        let registry = self.lifecycle.registry();
        Ok(self.block_on(registry.delete_model(model, &self.actor))?)
    }

    fn rename_model(&self, model: &str, new_name: &str) -> anyhow::Result<RegisteredModel> {
        let registry = self.lifecycle.registry();
        Ok(self.block_on(registry.rename_model(model, new_name, &self.actor))?)
    }

    fn serving_config(&self, model: &str) -> anyhow::Result<ConfigRevision> {
        let registry = self.lifecycle.registry();
        self.block_on(async {
            registry.get_model(model).await?;
            // As stored, like the server answers: `null` and `{}` when
            // none was ever set.
            Ok(match registry.serving_config(model).await? {
                Some(stored) => ConfigRevision {
                    revision: Some(stored.revision),
                    config: stored.config,
                },
                None => ConfigRevision {
                    revision: None,
                    config: Value::Object(Default::default()),
                },
            })
        })
    }

    fn set_serving_config(
        &self,
        model: &str,
        config: Value,
        unload: bool,
    ) -> anyhow::Result<Changed<ConfigRevision>> {
        let stored = self.block_on(self.lifecycle.set_serving_config(
            model,
            config,
            WhenNothingServes::unload_if(unload),
            &self.actor,
        ))?;
        Ok(Changed::direct(ConfigRevision {
            revision: Some(stored.revision),
            config: stored.config,
        }))
    }

    fn faults(&self, _model: &str, _version: &str, _change: &FaultChange) -> anyhow::Result<Value> {
        anyhow::bail!(
            "faults act on a running server: pass --url of a server started with --enable-fault-injection"
        )
    }
}
