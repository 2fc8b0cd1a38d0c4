//! Serving follows the registry: the controller turns a model's stages,
//! aliases and serving config into the versions the manager serves.
//!
//! For each change it loads the versions that should serve and are not yet
//! loaded (artifact checked against its digest), warms them up, checks the
//! new default against the interface being served (loaded before or not),
//! and installs the result in one atomic swap; versions left out finish
//! their in-flight requests and close. A version that fails is never
//! swapped in: the previous one keeps serving, and the failure shows in the
//! model's status and the audit log. A registry that selects nothing to
//! serve (changed by another process on the data dir) does not unload a
//! model either: it keeps serving and is reported degraded, unless the
//! change that caused it asked to unload.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferroserve_backend::ModelSource;
use ferroserve_registry::changes::tick_or_change;
use ferroserve_registry::{AuditAction, ModelVersion, RegistryError};
use serde_json::json;
use tokio::sync::Mutex;

use super::config::{LoadSettings, ModelServingConfig};
use super::plan::{same_interface, ServingPlan, WhenNothingServes};
use super::register::Lifecycle;
use super::routing::{self, RoutingParts};
use super::status::{IndexEntry, ModelOrigin, ServingFailure, ServingStatus};
use crate::error::{Result, ServingError};
use crate::manager::{ModelEntry, ModelManager, VersionEntry, VersionKey, VersionState};
use crate::repository::ServingDefaults;
use crate::{ModelSpec, ServedVersion};
use ferroserve_core::telemetry;
use ferroserve_monitor::profile::ReferenceProfile;
use ferroserve_monitor::{Monitor, WatchSpec};

/// Actor recorded in the audit log for what the server does by itself.
pub const SERVER_ACTOR: &str = "ferroserve";

/// What a served registry version was loaded from and with.
#[derive(Debug, Clone, PartialEq)]
struct LoadKey {
    digest: String,
    settings: LoadSettings,
}

#[derive(Default)]
struct ControlState {
    /// How each served registry version was loaded, by (model, version).
    loaded: HashMap<(String, i64), LoadKey>,
    /// Versions that should serve but failed, by model.
    failures: HashMap<String, Vec<ServingFailure>>,
    /// Serving-config revision in force, by model.
    revisions: HashMap<String, Option<i64>>,
    /// The version the registry selects, by model.
    targets: HashMap<String, Option<i64>>,

    /// Models unloaded through the repository API.
    unloaded: HashSet<String>,
    /// `updated_at` of each registry model when it was last reconciled.
    seen: HashMap<String, i64>,
    /// The rollout window and shadow lane in force, by model.
    routing: HashMap<String, RoutingParts>,
}

/// Keeps the model manager in line with the registry and the static models.
pub struct Controller {
    lifecycle: Arc<Lifecycle>,
    manager: Arc<ModelManager>,
    defaults: ServingDefaults,
    static_specs: BTreeMap<String, Vec<ModelSpec>>,
    state: Mutex<ControlState>,
    /// Why a model serves another version than the registry selects, by
    /// model; read by probes without waiting for a reconcile.
    degraded: std::sync::Mutex<BTreeMap<String, String>>,
    monitor: Option<Arc<Monitor>>,
}

impl Controller {
    /// A controller serving `static_specs` (from files, never managed by the
    /// registry) and every registry model not named like one of them.
    pub fn new(
        lifecycle: Arc<Lifecycle>,
        manager: Arc<ModelManager>,
        defaults: ServingDefaults,
        static_specs: Vec<ModelSpec>,
    ) -> Self {
        let mut by_name: BTreeMap<String, Vec<ModelSpec>> = BTreeMap::new();
        for spec in static_specs {
            by_name.entry(spec.name.clone()).or_default().push(spec);
        }
        Controller {
            lifecycle,
            manager,
            defaults,
            static_specs: by_name,
            state: Mutex::new(ControlState::default()),
            degraded: std::sync::Mutex::new(BTreeMap::new()),
            monitor: None,
        }
    }

    /// Watches the served registry versions with `monitor`, following
    /// each model's monitoring settings and its versions' reference profiles.
    pub fn with_monitor(mut self, monitor: Arc<Monitor>) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// The monitor watching served versions, if monitoring is on.
    pub fn monitor(&self) -> Option<&Arc<Monitor>> {
        self.monitor.as_ref()
    }

    /// The registry side: registration, rollback, serving configs.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The model manager requests are served from.
    pub fn manager(&self) -> &Arc<ModelManager> {
        &self.manager
    }

    /// Loads the static models and every registry model once.
    pub async fn start(&self) {
        let specs: Vec<ModelSpec> = self.static_specs.values().flatten().cloned().collect();
        self.manager.load_all(specs).await;
        if let Err(e) = self.sync_changed().await {
            tracing::error!(error = %e, "cannot read the registry at start; registry models are not served yet");
        }
    }

    /// Reconciles every registry model that changed since it was last
    /// reconciled (by its `updated_at`), and drops models that are gone.
    pub async fn sync_changed(&self) -> Result<()> {
        let models = self.lifecycle.registry().list_models().await?;
        let listed: HashSet<String> = models.iter().map(|m| m.name.clone()).collect();
        let mut todo: Vec<String> = Vec::new();
        {
            let state = self.state.lock().await;
            for model in &models {
                if state.seen.get(&model.name) != Some(&model.updated_at) {
                    todo.push(model.name.clone());
                }
            }
            for gone in state.seen.keys().filter(|name| !listed.contains(*name)) {
                todo.push(gone.clone());
            }
        }
        for model in todo {
            self.reconcile(&model).await;
        }
        Ok(())
    }

    /// Follows changes made elsewhere (another replica, the CLI on the data
    /// dir) until the task is dropped: at once when the registry notifies
    /// them (PostgreSQL), and by polling every `every` in any case.
    pub fn spawn_follower(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let mut feed = self.lifecycle.registry().change_feed();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick_or_change(&mut ticker, feed.as_mut()).await;
                if let Err(e) = self.sync_changed().await {
                    tracing::warn!(error = %e, "cannot poll the registry; serving what is loaded");
                }
            }
        })
    }

    /// Brings what the server serves of `model` in line with the registry,
    /// and returns the result. Errors reading the registry leave serving as
    /// it was and show in the status. A registry that selects nothing
    /// leaves the served version serving (degraded).
    pub async fn reconcile(&self, model: &str) -> ServingStatus {
        self.reconcile_with(model, WhenNothingServes::Refuse).await
    }

    /// [`reconcile`](Self::reconcile) after a change whose caller said what
    /// happens when the registry selects nothing: `Unload` stops serving
    /// the model, `Refuse` keeps serving what serves (degraded).
    pub async fn reconcile_with(
        &self,
        model: &str,
        when_nothing: WhenNothingServes,
    ) -> ServingStatus {
        let mut state = self.state.lock().await;
        if !self.static_specs.contains_key(model) {
            if let Err(e) = self.reconcile_locked(&mut state, model, when_nothing).await {
                tracing::warn!(model, error = %e, "cannot reconcile model with the registry");
                state.failures.insert(
                    model.to_owned(),
                    vec![ServingFailure {
                        version: 0,
                        reason: e.to_string(),
                    }],
                );
            }
        }
        self.status_locked(&state, model)
    }

    /// Why each degraded model serves another version than the registry
    /// selects, by model. Never waits for a reconcile.
    pub fn degraded(&self) -> BTreeMap<String, String> {
        self.degraded_models().clone()
    }

    fn degraded_models(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A panic while holding it cannot leave the map half-written.
        self.degraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets or clears the degraded reason of `model` and its gauge; true
    /// when it changed.
    fn set_degraded(&self, model: &str, reason: Option<String>) -> bool {
        let flag = if reason.is_some() { 1.0 } else { 0.0 };
        metrics::gauge!(telemetry::MODEL_DEGRADED, "model" => model.to_owned()).set(flag);
        let mut degraded = self.degraded_models();
        let changed = degraded.get(model) != reason.as_ref();
        match reason {
            Some(reason) => degraded.insert(model.to_owned(), reason),
            None => degraded.remove(model),
        };
        changed
    }

    /// What the server serves of `model` now; unknown to both the server
    /// and the registry is an error.
    pub async fn status(&self, model: &str) -> Result<ServingStatus> {
        let mut status = {
            let state = self.state.lock().await;
            self.status_locked(&state, model)
        };
        if status.origin == ModelOrigin::Repository {
            let registry = self.lifecycle.registry();
            status.shadows_registry_model = registry.get_model(model).await.is_ok();
        }
        if status.origin == ModelOrigin::Registry && status.versions.is_empty() {
            self.lifecycle.registry().get_model(model).await?;
        }
        Ok(status)
    }

    /// Serves `model` again after [`unload`](Self::unload), or reloads it:
    /// the KServe repository extension's `load`.
    pub async fn load(&self, model: &str) -> Result<ServingStatus> {
        if let Some(specs) = self.static_specs.get(model) {
            for spec in specs {
                self.manager.load(spec.clone()).await?;
            }
            return self.status(model).await;
        }
        self.lifecycle.registry().get_model(model).await?;
        self.state.lock().await.unloaded.remove(model);
        let status = self.reconcile(model).await;
        if status.serving_version.is_none() {
            let why = match status.failures.first() {
                Some(f) => f.reason.clone(),
                None => "no version matches its serving config (by default: the newest Production version)".to_owned(),
            };
            return Err(ServingError::NothingToServe {
                model: model.to_owned(),
                why,
            });
        }
        Ok(status)
    }

    /// Stops serving `model` until [`load`](Self::load): the repository
    /// extension's `unload`. In-flight requests finish first.
    pub async fn unload(&self, model: &str) -> Result<()> {
        if self.static_specs.contains_key(model) {
            return Ok(self.manager.unload(model).await?);
        }
        self.lifecycle.registry().get_model(model).await?;
        let mut state = self.state.lock().await;
        state.unloaded.insert(model.to_owned());
        self.manager.install(model, ModelEntry::default()).await;
        state.loaded.retain(|(m, _), _| m != model);
        self.set_degraded(model, None);
        tracing::info!(model, "model unloaded");
        Ok(())
    }

    /// Renames registry model `from` to `to` (see
    /// [`Registry::rename_model`](ferroserve_registry::Registry::rename_model))
    /// and serves it under the new name: `from` stops serving once `to`
    /// serves. Models served from files keep their names.
    pub async fn rename_model(
        &self,
        from: &str,
        to: &str,
        actor: &str,
    ) -> Result<ferroserve_registry::RegisteredModel> {
        for name in [from, to] {
            if self.static_specs.contains_key(name) {
                return Err(ServingError::invalid(format!(
                    "model '{name}' is served from files (the model repository): \
                     rename its folder instead"
                )));
            }
        }
        let renamed = self
            .lifecycle
            .registry()
            .rename_model(from, to, actor)
            .await?;
        {
            let mut state = self.state.lock().await;
            if state.unloaded.remove(from) {
                state.unloaded.insert(to.to_owned());
            }
        }
        self.reconcile(to).await;
        self.reconcile(from).await;
        tracing::info!(from, to, "model renamed");
        Ok(renamed)
    }

    /// Every model the server knows, served or not (the repository index).
    pub async fn index(&self) -> Result<Vec<IndexEntry>> {
        let snapshot = self.manager.snapshot();
        let mut rows: Vec<IndexEntry> = snapshot
            .iter()
            .flat_map(|(name, entry)| IndexEntry::rows(name, entry))
            .collect();
        let state = self.state.lock().await;
        for model in self.lifecycle.registry().list_models().await? {
            if snapshot.contains_key(&model.name) {
                continue;
            }
            let reason = if state.unloaded.contains(&model.name) {
                "unloaded".to_owned()
            } else {
                match state.failures.get(&model.name).and_then(|f| f.first()) {
                    Some(f) => f.reason.clone(),
                    None => match self.lifecycle.plan(&model.name).await {
                        Ok(plan) => format!("nothing to serve: {}", plan.why_nothing_serves()),
                        Err(e) => e.to_string(),
                    },
                }
            };
            rows.push(IndexEntry {
                name: model.name,
                version: None,
                state: "UNAVAILABLE",
                reason,
            });
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    fn status_locked(&self, state: &ControlState, model: &str) -> ServingStatus {
        let origin = if self.static_specs.contains_key(model) {
            ModelOrigin::Repository
        } else {
            ModelOrigin::Registry
        };
        let entry = self.manager.entry(model);
        let mut status = ServingStatus::new(model, origin, entry.as_ref());
        status.failures = state.failures.get(model).cloned().unwrap_or_default();
        status.config_revision = state.revisions.get(model).copied().flatten();
        status.target_version = state.targets.get(model).copied().flatten();
        status.degraded = self.degraded_models().get(model).cloned();
        status
    }

    async fn reconcile_locked(
        &self,
        state: &mut ControlState,
        model: &str,
        when_nothing: WhenNothingServes,
    ) -> Result<()> {
        let registry = self.lifecycle.registry();
        let registered = match registry.get_model(model).await {
            Ok(registered) => registered,
            Err(RegistryError::ModelNotFound(_)) => {
                self.manager.install(model, ModelEntry::default()).await;
                if let Some(monitor) = &self.monitor {
                    monitor.sync_model(model, Vec::new());
                }
                state.loaded.retain(|(m, _), _| m != model);
                state.failures.remove(model);
                state.revisions.remove(model);
                state.targets.remove(model);
                state.seen.remove(model);
                state.routing.remove(model);
                self.set_degraded(model, None);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        // Read before the versions: a change after this read moves
        // `updated_at` again, and the follower reconciles once more.
        state.seen.insert(model.to_owned(), registered.updated_at);
        let (config, revision) = self.lifecycle.serving_config(model).await?;
        let plan = ServingPlan {
            versions: registry.list_versions(model).await?,
            aliases: registry.aliases(model).await?,
            config,
        };
        state.revisions.insert(model.to_owned(), revision);
        let unloaded = state.unloaded.contains(model);
        let (target, wanted) = if unloaded {
            (None, Vec::new())
        } else {
            (plan.target(), plan.wanted())
        };
        state.targets.insert(model.to_owned(), target);
        // A running rollout routes while its stable version is the target;
        // the driver ends one whose target moved.
        let rollout = match target {
            Some(stable) => registry
                .active_rollout(model)
                .await?
                .filter(|r| r.stable_version == stable),
            None => None,
        };
        let mut wanted = wanted;
        if let Some(rollout) = &rollout {
            if !wanted.contains(&rollout.canary_version) {
                wanted.push(rollout.canary_version);
            }
        }
        let current = self.manager.entry(model).unwrap_or_default();
        let current_default = current.default_version().cloned();
        let mut next = ModelEntry::default();
        let mut failures = Vec::new();
        for number in &wanted {
            let Some(version) = plan.versions.iter().find(|v| v.version == *number) else {
                continue;
            };
            let existing = current
                .versions
                .get(&VersionKey(number.to_string()))
                .and_then(|v| v.served.clone());
            let reference = current_default
                .as_deref()
                .filter(|_| Some(*number) == target);
            let loaded = state.loaded.get(&(model.to_owned(), *number)).cloned();
            match self
                .prepare(&plan.config, version, existing.clone(), loaded, reference)
                .await
            {
                Ok((served, key)) => {
                    state
                        .loaded
                        .insert((version.model.clone(), version.version), key);
                    insert_served(&mut next, served);
                }
                Err(reason) => {
                    self.record_failure(model, *number, &reason).await;
                    failures.push(ServingFailure {
                        version: *number,
                        reason,
                    });
                    // A version that served before keeps serving as it was.
                    if let Some(old) = existing {
                        insert_served(&mut next, old);
                    }
                }
            }
        }
        let target_serves = target.is_some_and(|t| {
            serves(&next, &t.to_string()) && !failures.iter().any(|f| f.version == t)
        });
        let unloading = target.is_none() && (unloaded || when_nothing == WhenNothingServes::Unload);
        let mut degraded = None;
        if target_serves {
            next.default = target.map(|t| t.to_string());
        } else if let (false, Some(old)) = (unloading, &current_default) {
            // What should serve cannot (or nothing should): the version
            // that served stays, and the status says why.
            let why = match target {
                Some(t) => failures
                    .iter()
                    .find(|f| f.version == t)
                    .map_or_else(|| format!("version {t} cannot serve"), |f| f.reason.clone()),
                None => format!(
                    "the registry selects nothing to serve: {}",
                    plan.why_nothing_serves()
                ),
            };
            degraded = Some(format!("{why}; still serving version {}", old.version()));
            next.default = Some(old.version().to_owned());
            if !serves(&next, old.version()) {
                insert_served(&mut next, old.clone());
            }
        }
        if next.versions.is_empty() {
            for failure in &failures {
                next.versions.insert(
                    VersionKey(failure.version.to_string()),
                    VersionEntry {
                        version: failure.version.to_string(),
                        state: VersionState::Failed {
                            reason: failure.reason.clone(),
                        },
                        served: None,
                    },
                );
            }
        }
        let previous = state.routing.remove(model).unwrap_or_default();
        let (routing, parts) = routing::build(
            model,
            &plan.config,
            rollout.as_ref(),
            &next,
            &previous,
            &self.manager,
        );
        next.routing = routing;
        state.routing.insert(model.to_owned(), parts);
        let before = current_default.map(|s| s.version().to_owned());
        let after = next.default_version().map(|s| s.version().to_owned());
        state
            .loaded
            .retain(|(m, v), _| m != model || serves(&next, &v.to_string()));
        if let Some(monitor) = &self.monitor {
            monitor.sync_model(model, watch_specs(&plan.config, &plan.versions, &next));
        }
        self.manager.install(model, next).await;
        if failures.is_empty() {
            state.failures.remove(model);
        } else {
            state.failures.insert(model.to_owned(), failures);
        }
        if self.set_degraded(model, degraded.clone()) {
            self.record_degraded(model, degraded.as_deref()).await;
        }
        if before != after {
            tracing::info!(
                model,
                from = before.as_deref().unwrap_or("none"),
                to = after.as_deref().unwrap_or("none"),
                "serving version swapped"
            );
            let details = json!({ "from": before, "to": after });
            let version = after.as_deref().and_then(|v| v.parse().ok());
            if let Err(e) = registry
                .record_event(
                    model,
                    version,
                    AuditAction::ServingSwapped,
                    details,
                    SERVER_ACTOR,
                )
                .await
            {
                tracing::warn!(model, error = %e, "cannot record the swap in the audit log");
            }
        }
        Ok(())
    }

    /// The served instance of `version` under `config` and how it was
    /// loaded: the existing one when it was loaded the same way, else a new
    /// one, loaded and warmed up. When it is to become the default in place
    /// of `reference` (the version serving now), its interface is checked
    /// against that one's, whether it was loaded before or not.
    async fn prepare(
        &self,
        config: &ModelServingConfig,
        version: &ModelVersion,
        existing: Option<Arc<ServedVersion>>,
        loaded_as: Option<LoadKey>,
        reference: Option<&ServedVersion>,
    ) -> std::result::Result<(Arc<ServedVersion>, LoadKey), String> {
        let settings = config
            .load_settings(version, &self.defaults)
            .map_err(|e| e.message)?;
        let key = LoadKey {
            digest: version.artifact_digest.clone(),
            settings,
        };
        let reusable = existing.filter(|_| loaded_as.as_ref() == Some(&key));
        let fresh = reusable.is_none();
        let served = match reusable {
            Some(served) => served,
            None => self.load_version(version, &key).await?,
        };
        let changes_default = reference.filter(|r| r.version() != served.version());
        if let (Some(reference), false) = (changes_default, config.allow_interface_change) {
            if let Err(difference) = same_interface(reference.signature(), served.signature()) {
                if fresh {
                    served.close();
                }
                return Err(format!(
                    "version {} was not swapped in: its interface differs from version {} \
                     being served ({difference}); set allow_interface_change in the serving \
                     config to allow it",
                    version.version,
                    reference.version()
                ));
            }
        }
        Ok((served, key))
    }

    async fn load_version(
        &self,
        version: &ModelVersion,
        key: &LoadKey,
    ) -> std::result::Result<Arc<ServedVersion>, String> {
        let _slot = self
            .lifecycle
            .artifact_slot()
            .await
            .map_err(|e| e.to_string())?;
        // Kept until the engine has loaded it: a remote blob's local copy.
        let artifact = self
            .lifecycle
            .artifacts()
            .fetch_verified(&key.digest)
            .await
            .map_err(|e| {
                format!(
                    "version {} cannot be served: its artifact failed the check: {e}",
                    version.version
                )
            })?;
        let schema = version.meta.feature_schema.clone().map(Arc::new);
        let spec = ModelSpec {
            name: version.model.clone(),
            version: version.version.to_string(),
            source: ModelSource::Artifact {
                digest: key.digest.clone(),
                path: artifact.path().to_owned(),
            },
            engine: key.settings.engine,
            intra_op_threads: key.settings.intra_op_threads,
            batching: key.settings.batching.clone(),
            schema,
            request_timeout: key.settings.request_timeout,
            cache: key.settings.cache,
            protection: key.settings.protection.clone(),
        };
        self.manager
            .start_version(&spec)
            .await
            .map_err(|e| e.message)
    }

    async fn record_failure(&self, model: &str, version: i64, reason: &str) {
        tracing::error!(model, version, reason, "model version not swapped in");
        let details = json!({ "reason": reason });
        if let Err(e) = self
            .lifecycle
            .registry()
            .record_event(
                model,
                Some(version),
                AuditAction::ServingFailed,
                details,
                SERVER_ACTOR,
            )
            .await
        {
            tracing::warn!(model, error = %e, "cannot record the failure in the audit log");
        }
    }
}

impl Controller {
    /// Why `version` of `model` failed to load at the last reconcile, if it did.
    pub async fn version_failure(&self, model: &str, version: i64) -> Option<String> {
        let state = self.state.lock().await;
        state
            .failures
            .get(model)?
            .iter()
            .find(|f| f.version == version)
            .map(|f| f.reason.clone())
    }

    /// Logs a model becoming degraded (or healthy again) at warn and
    /// records it in the audit log.
    async fn record_degraded(&self, model: &str, reason: Option<&str>) {
        let (action, details) = match reason {
            Some(reason) => {
                tracing::warn!(
                    model,
                    reason,
                    "model degraded: serving another version than the registry selects"
                );
                (AuditAction::ServingDegraded, json!({ "reason": reason }))
            }
            None => {
                tracing::info!(model, "model serves what the registry selects again");
                (AuditAction::ServingRecovered, json!({}))
            }
        };
        if let Err(e) = self
            .lifecycle
            .registry()
            .record_event(model, None, action, details, SERVER_ACTOR)
            .await
        {
            tracing::warn!(model, error = %e, "cannot record the degraded state in the audit log");
        }
    }
}

/// What each served version of `entry` is watched with under `config`;
/// versions the config does not watch are left out.
fn watch_specs(
    config: &ModelServingConfig,
    versions: &[ModelVersion],
    entry: &ModelEntry,
) -> Vec<(String, WatchSpec)> {
    entry
        .versions
        .values()
        .filter_map(|v| v.served.as_ref())
        .filter_map(|served| {
            let registered = versions
                .iter()
                .find(|v| v.version.to_string() == served.version())?;
            let profile = registered.meta.reference_profile.as_ref().and_then(|value| {
                ReferenceProfile::from_json(value)
                    .map_err(|e| {
                        tracing::warn!(model = %registered.model, version = registered.version, error = %e, "reference profile unreadable; drift is not monitored");
                    })
                    .ok()
            });
            if !config.monitoring.watches(profile.is_some()) {
                return None;
            }
            let spec = WatchSpec {
                policy: config.monitoring.clone(),
                profile: profile.map(Arc::new),
                schema: served.schema().cloned().map(Arc::new),
                signature: served.signature().clone(),
            };
            Some((served.version().to_owned(), spec))
        })
        .collect()
}

fn insert_served(entry: &mut ModelEntry, served: Arc<ServedVersion>) {
    let label = served.version().to_owned();
    entry.versions.insert(
        VersionKey(label.clone()),
        VersionEntry {
            version: label,
            state: VersionState::Ready,
            served: Some(served),
        },
    );
}

fn serves(entry: &ModelEntry, label: &str) -> bool {
    entry
        .versions
        .get(&VersionKey(label.to_owned()))
        .is_some_and(|v| v.served.is_some())
}
