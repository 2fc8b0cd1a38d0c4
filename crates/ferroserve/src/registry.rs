//! Opens the model registry and artifact store of a data dir (or of the
//! URLs that override them), and tidies what an interrupted run left.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferroserve_backend::Engines;
use ferroserve_registry::{ArtifactStore, DbKind, Registry};
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
    /// The registry URL in force; the default SQLite file is created when
    /// missing only with [`Access::Create`].
    pub fn registry_url(&self, access: Access) -> String {
        self.registry_url.clone().unwrap_or_else(|| {
            let mode = match access {
                Access::Create => "rwc",
                Access::Existing => "rw",
            };
            format!("sqlite://{}?mode={mode}", self.default_database().display())
        })
    }

    /// The SQLite file of the data dir, used when no registry URL is given.
    fn default_database(&self) -> PathBuf {
        self.data_dir.join("registry.db")
    }

    /// Fails, naming the data dir and how to point elsewhere, when the
    /// registry to open is the data dir's own and it does not exist; with a
    /// registry URL the database server says whether it exists.
    pub fn check_exists(&self) -> anyhow::Result<()> {
        if self.registry_url.is_some() {
            return Ok(());
        }
        let dir = self.data_dir.display();
        let why = if !self.data_dir.is_dir() {
            "no such directory".to_owned()
        } else if !self.default_database().is_file() {
            "it has no registry.db".to_owned()
        } else {
            return Ok(());
        };
        anyhow::bail!(
            "no registry at {dir} ({why}); pass --data-dir DIR, or --url of a server (or set FERROSERVE_URL)"
        )
    }

    /// The artifact store URL in force.
    pub fn artifact_store(&self) -> String {
        self.artifact_store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("artifacts").display().to_string())
    }
}

/// Whether opening a registry may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create the data dir and its registry when missing (`serve`,
    /// `models register`, in-process `batch`).
    Create,
    /// Open only a registry that exists: every command that reads, or
    /// changes models that must already be registered, so that one run in
    /// the wrong folder creates nothing there.
    Existing,
}

/// Connects to the registry and the artifact store, and nothing else: what
/// a client (`ferroserve models` on a data dir) needs.
pub async fn open(
    settings: &RegistrySettings,
    engines: Arc<Engines>,
    access: Access,
) -> anyhow::Result<Lifecycle> {
    let work_dir = settings.data_dir.join("tmp");
    match access {
        Access::Create => {
            create_dir(&settings.data_dir)?;
            create_dir(&work_dir)?;
        }
        // The work dir only holds uploads, which create it when needed.
        Access::Existing => settings.check_exists()?,
    }
    let registry = Registry::connect(&settings.registry_url(access))
        .await
        .context("cannot open the model registry")?;
    let artifacts = ArtifactStore::from_url(&settings.artifact_store(), &work_dir)
        .context("cannot open the artifact store")?;
    if let ArtifactStore::Local(store) = &artifacts {
        store.refuse_containing(&settings.data_dir)?;
    }
    Ok(Lifecycle::new(registry, artifacts, engines))
}

/// Opens the registry for the server: [`open`], then, on a registry of one
/// node (SQLite), [`recover`]s at once. On a registry replicas share
/// (PostgreSQL) recovery is work for one replica, the leader:
/// [`spawn_recovery_on_leader`].
pub async fn open_and_recover(
    settings: &RegistrySettings,
    engines: Arc<Engines>,
) -> anyhow::Result<Lifecycle> {
    let lifecycle = open(settings, engines, Access::Create).await?;
    if lifecycle.registry().db_kind() == DbKind::Sqlite {
        recover(&lifecycle).await?;
    }
    tracing::info!(artifacts = %lifecycle.artifacts().describe(), "model registry open");
    Ok(lifecycle)
}

/// Marks registrations that an earlier run left pending as failed, and
/// removes the temporary files no upload holds and unreferenced blobs
/// older than a grace period (an hour), so that an upload in progress
/// elsewhere (a replica on a shared registry, or a `ferroserve models
/// register` on the same SQLite data dir) is not taken for debris.
pub async fn recover(lifecycle: &Lifecycle) -> anyhow::Result<()> {
    let (registry, artifacts) = (lifecycle.registry(), lifecycle.artifacts());
    let grace = RECOVERY_GRACE;
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
    Ok(())
}

/// On a registry replicas share, [`recover`]s whenever this replica leads:
/// as soon as it becomes the leader, then every [`RECOVERY_EVERY`] while
/// it stays so. Nothing on a registry of one node (recovered at open).
pub fn spawn_recovery_on_leader(lifecycle: Arc<Lifecycle>) {
    if lifecycle.registry().db_kind() == DbKind::Sqlite {
        return;
    }
    let leadership = lifecycle.registry().leadership();
    tokio::spawn(async move {
        let mut last: Option<std::time::Instant> = None;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticks.tick().await;
            if !leadership.is_leader() {
                last = None;
                continue;
            }
            if last.is_some_and(|at| at.elapsed() < RECOVERY_EVERY) {
                continue;
            }
            last = Some(std::time::Instant::now());
            if let Err(e) = recover(&lifecycle).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "registry recovery failed; trying again later"
                );
            }
        }
    });
}

/// How often the leader of a shared registry recovers.
const RECOVERY_EVERY: Duration = Duration::from_secs(3600);

/// How old a pending registration, a temporary upload or an unreferenced
/// blob must be before a starting server takes it for debris.
const RECOVERY_GRACE: Duration = Duration::from_secs(3600);

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
