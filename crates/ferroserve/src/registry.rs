//! Opens the model registry and artifact store of a data dir (or of the
//! URLs that override them), and tidies what an interrupted run left.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferroserve_backend::Engines;
use ferroserve_registry::{ArtifactStore, Backend, Registry};
use ferroserve_serving::lifecycle::{Lifecycle, SERVER_ACTOR};

/// Where the registry and its artifacts live.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Folder for ferroserve's own state.
    pub data_dir: PathBuf,
    /// Registry database URL; default `sqlite://DATA_DIR/registry.db`.
    pub registry_url: Option<String>,
    /// Artifact store URL (`s3://bucket/prefix`, `file:///dir` or a path);
    /// default `DATA_DIR/artifacts`.
    pub artifact_store: Option<String>,
}

impl RegistrySettings {
    /// The registry URL in force.
    pub fn registry_url(&self) -> String {
        self.registry_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("registry.db").display()
            )
        })
    }

    /// The artifact store URL in force.
    pub fn artifact_store(&self) -> String {
        self.artifact_store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("artifacts").display().to_string())
    }
}

/// Connects to the registry and the artifact store, and nothing else: what
/// a client (`ferroserve models` on a data dir) needs.
pub async fn open(settings: &RegistrySettings, engines: Arc<Engines>) -> anyhow::Result<Lifecycle> {
    create_dir(&settings.data_dir)?;
    let registry = Registry::connect(&settings.registry_url())
        .await
        .context("cannot open the model registry")?;
    let work_dir = settings.data_dir.join("tmp");
    create_dir(&work_dir)?;
    let artifacts = ArtifactStore::from_url(&settings.artifact_store(), &work_dir)
        .context("cannot open the artifact store")?;
    Ok(Lifecycle::new(registry, artifacts, engines))
}

/// Opens the registry for the server: [`open`], then marks registrations
/// that an earlier run left pending as failed, and removes temporary files
/// and unreferenced blobs (with a grace period when the registry is shared,
/// so that a replica's upload in progress is not taken for debris).
pub async fn open_and_recover(
    settings: &RegistrySettings,
    engines: Arc<Engines>,
) -> anyhow::Result<Lifecycle> {
    let lifecycle = open(settings, engines).await?;
    let (registry, artifacts) = (lifecycle.registry(), lifecycle.artifacts());
    let shared = registry.backend() != Backend::Sqlite;
    let grace = if shared {
        Duration::from_secs(3600)
    } else {
        Duration::ZERO
    };
    let stale = registry
        .fail_stale_pending_versions(grace.as_millis() as i64, SERVER_ACTOR)
        .await
        .context("cannot recover interrupted registrations")?;
    for (model, version) in &stale {
        tracing::warn!(
            model,
            version,
            "registration interrupted by an earlier stop; marked failed"
        );
    }
    let referenced = registry
        .referenced_digests()
        .await
        .context("cannot list the artifacts in use")?;
    artifacts
        .cleanup(&referenced, grace)
        .await
        .context("cannot clean the artifact store")?;
    tracing::info!(artifacts = %artifacts.describe(), "model registry open");
    Ok(lifecycle)
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
