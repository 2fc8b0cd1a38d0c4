//! The model manager: which models and versions exist, their load state, and
//! the lookup every request starts with.
//!
//! The table of models is an [`ArcSwap`]: requests read it without locks and
//! a load publishes a new table atomically.

mod served;
mod spec;

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ferroserve_backend::{Engines, ModelSource};
use ferroserve_core::InferError;
use serde::Serialize;
use tokio::sync::Mutex;

use ferroserve_batcher::{Batcher, BatcherLabels};
use ferroserve_core::telemetry;
pub use served::{InFlight, ServedVersion};

use crate::traffic::{Picked, Routing, StickyKey};

/// Most input bytes one request may carry unless the server sets its own
/// body limit: the server's default `max_body_bytes`, 64 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;
pub use spec::ModelSpec;

/// Load state of one model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum VersionState {
    /// Being loaded and warmed up.
    Loading,
    /// Serving requests.
    Ready,
    /// Could not be loaded; the reason says why.
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// Unloaded on request.
    Unloaded,
}

/// One version as seen in the model table.
#[derive(Clone)]
pub struct VersionEntry {
    /// Version label.
    pub version: String,
    /// Load state.
    pub state: VersionState,
    /// The servable version, when ready.
    pub served: Option<Arc<ServedVersion>>,
}

/// A model name with its versions (keyed by version label, ordered
/// numerically when labels are numbers).
#[derive(Clone, Default)]
pub struct ModelEntry {
    /// Versions by label.
    pub versions: BTreeMap<VersionKey, VersionEntry>,
    /// Label of the version served when a request names none; `None` means
    /// the highest ready version.
    pub default: Option<String>,
    /// Traffic split, shadow and pinning rules; `None`: every request
    /// naming no version goes to the default, and pins are allowed.
    pub routing: Option<Arc<Routing>>,
}

impl ModelEntry {
    /// The version served when a request names none: the chosen default
    /// when it is ready, else the highest ready one.
    pub fn default_version(&self) -> Option<&Arc<ServedVersion>> {
        if let Some(label) = &self.default {
            // A scan, not a keyed lookup: no allocation on the request path,
            // and a model serves a handful of versions at most.
            let chosen = self.versions.values().find(|v| v.version == *label);
            if let Some(served) = chosen.and_then(|v| v.served.as_ref()) {
                return Some(served);
            }
        }
        self.versions.values().rev().find_map(|v| v.served.as_ref())
    }

    /// Whether every version of this model is ready.
    pub fn is_ready(&self) -> bool {
        !self.versions.is_empty()
            && self
                .versions
                .values()
                .all(|v| v.state == VersionState::Ready)
    }
}

/// Orders version labels numerically when both are numbers, else as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionKey(pub String);

impl Ord for VersionKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self.0.parse::<u64>(), other.0.parse::<u64>()) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => self.0.cmp(&other.0),
        }
    }
}

impl PartialOrd for VersionKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

type ModelTable = BTreeMap<String, ModelEntry>;

/// Loads models and answers "which version serves this request".
pub struct ModelManager {
    engines: Arc<Engines>,
    table: ArcSwap<ModelTable>,
    /// Serialises writers of `table`; readers never take it.
    write_lock: Mutex<()>,
    /// Whether versions may have faults injected (for tests and drills).
    fault_injection: bool,
    /// Most input bytes one request may carry (the server's body limit):
    /// a model whose single row needs more is refused before warm-up.
    max_input_bytes: usize,
    /// Bumped each time the table changes, for whoever waits on a model.
    changes: tokio::sync::watch::Sender<u64>,
}

impl ModelManager {
    /// A manager with no models, loading through `engines`.
    pub fn new(engines: Arc<Engines>) -> Self {
        ModelManager {
            engines,
            table: ArcSwap::from_pointee(ModelTable::new()),
            write_lock: Mutex::new(()),
            fault_injection: false,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Sets the most input bytes one request may carry (the server's body
    /// limit); versions whose single row needs more are refused at load.
    pub fn with_max_input_bytes(mut self, max_input_bytes: usize) -> Self {
        self.max_input_bytes = max_input_bytes;
        self
    }

    /// Lets faults be injected into the versions this manager loads from
    /// now on (off by default: a production server refuses them).
    pub fn with_fault_injection(mut self, allowed: bool) -> Self {
        self.fault_injection = allowed;
        self
    }

    /// Whether faults may be injected.
    pub fn fault_injection_allowed(&self) -> bool {
        self.fault_injection
    }

    /// The engines models are loaded with.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// Finds the version that serves a request for `model` (and `version`,
    /// when the request names one).
    pub fn get(
        &self,
        model: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedVersion>, InferError> {
        let table = self.table.load();
        let entry = table
            .get(model)
            .ok_or_else(|| InferError::not_found(format!("unknown model '{model}'")))?;
        match version {
            None => Self::default_of(entry, model),
            Some(v) => Self::version_of(entry, model, v),
        }
    }

    /// The version that answers a call to `model`: the `version` it pins
    /// (refused when the model's traffic rules disallow pins), else — for
    /// an online call (`split`) — an arm of its split or rollout (by
    /// `sticky`, the caller's sticky header value, else at random), else
    /// its default.
    pub fn pick(
        &self,
        model: &str,
        version: Option<&str>,
        sticky: Option<&str>,
        split: bool,
    ) -> Result<Picked, InferError> {
        let table = self.table.load();
        let entry = table
            .get(model)
            .ok_or_else(|| InferError::not_found(format!("unknown model '{model}'")))?;
        let routing = entry.routing.clone();
        if let Some(pinned) = version {
            if routing.as_ref().is_some_and(|r| !r.allow_pinning()) {
                return Err(InferError::new(
                    ferroserve_core::ErrorKind::PermissionDenied,
                    format!(
                        "model '{model}' does not let callers choose a version (its serving \
                         config sets traffic.allow_pinning to false); send the request without \
                         version {pinned} in the path or the x-model-version header"
                    ),
                ));
            }
            return Ok(Picked {
                served: Self::version_of(entry, model, pinned)?,
                variant: None,
                side: None,
                routing,
            });
        }
        if let Some(arm) = routing
            .as_ref()
            .filter(|_| split)
            .and_then(|r| r.pick(sticky.map_or_else(StickyKey::random, StickyKey::of)))
        {
            return Ok(Picked {
                served: arm.served.clone(),
                variant: Some(arm.variant.clone()),
                side: arm.side,
                routing,
            });
        }
        Ok(Picked {
            served: Self::default_of(entry, model)?,
            variant: None,
            side: None,
            routing,
        })
    }

    /// The routing of `model` (split, rollout, shadow, pinning), when it
    /// has any besides its default.
    pub fn routing(&self, model: &str) -> Option<Arc<Routing>> {
        self.table.load().get(model)?.routing.clone()
    }

    /// The default version of `entry` (model `model`), or why none serves.
    fn default_of(entry: &ModelEntry, model: &str) -> Result<Arc<ServedVersion>, InferError> {
        entry.default_version().cloned().ok_or_else(|| {
            InferError::new(
                ferroserve_core::ErrorKind::Unavailable,
                format!("model '{model}' is not ready ({})", describe_states(entry)),
            )
        })
    }

    /// Version `v` of `entry` (model `model`), or why it does not serve.
    fn version_of(
        entry: &ModelEntry,
        model: &str,
        v: &str,
    ) -> Result<Arc<ServedVersion>, InferError> {
        let found = entry
            .versions
            .get(&VersionKey(v.to_string()))
            .ok_or_else(|| {
                InferError::not_found(format!("unknown version '{v}' of model '{model}'"))
            })?;
        found.served.clone().ok_or_else(|| {
            InferError::new(
                ferroserve_core::ErrorKind::Unavailable,
                format!(
                    "model '{model}' version {v} is not ready ({})",
                    state_text(&found.state)
                ),
            )
        })
    }

    /// Changes of the model table: the value is bumped on each change, so a
    /// task waiting for a model to load wakes when something loads.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Publishes `table` and wakes whoever waits on a change.
    fn publish(&self, table: ModelTable) {
        self.table.store(Arc::new(table));
        self.changes.send_modify(|generation| *generation += 1);
    }

    /// A snapshot of every model and its versions.
    pub fn snapshot(&self) -> Arc<BTreeMap<String, ModelEntry>> {
        self.table.load_full()
    }

    /// Whether every model in the table is loaded. A server with no model
    /// yet (an empty registry) is ready: it accepts registrations.
    pub fn all_ready(&self) -> bool {
        self.table.load().values().all(ModelEntry::is_ready)
    }

    /// Whether any version is still loading.
    pub fn any_loading(&self) -> bool {
        self.table.load().values().any(|m| {
            m.versions
                .values()
                .any(|v| v.state == VersionState::Loading)
        })
    }

    /// Marks the versions of `specs` as loading, so that readiness waits for them.
    pub async fn declare(&self, specs: &[ModelSpec]) {
        for spec in specs {
            self.set_state(&spec.name, &spec.version, VersionState::Loading, None)
                .await;
        }
    }

    /// Loads, starts and warms up one version, then publishes it. On failure
    /// the version is marked failed with the reason, and the error returned.
    pub async fn load(&self, spec: ModelSpec) -> Result<Arc<ServedVersion>, InferError> {
        self.set_state(&spec.name, &spec.version, VersionState::Loading, None)
            .await;
        match self.start_version(&spec).await {
            Ok(served) => {
                let previous = self
                    .set_state(
                        &spec.name,
                        &spec.version,
                        VersionState::Ready,
                        Some(served.clone()),
                    )
                    .await;
                if let Some(old) = previous {
                    self.retire(old);
                }
                loaded_gauge(&served, 1.0);
                tracing::info!(model = %spec.name, version = %spec.version, engine = served.engine(), "model version ready");
                Ok(served)
            }
            Err(e) => {
                tracing::error!(model = %spec.name, version = %spec.version, error = %e.message, "model version failed to load");
                self.set_state(
                    &spec.name,
                    &spec.version,
                    VersionState::Failed {
                        reason: e.message.clone(),
                    },
                    None,
                )
                .await;
                Err(e)
            }
        }
    }

    /// Declares `specs` (so readiness waits for them), then loads them all
    /// at once. A version that fails is recorded in its state and logged;
    /// the others still serve.
    pub async fn load_all(&self, specs: Vec<ModelSpec>) {
        self.declare(&specs).await;
        let loads = specs.into_iter().map(|spec| async move {
            let _ = self.load(spec).await;
        });
        futures::future::join_all(loads).await;
    }

    /// Stops serving every version of `model`; queued requests still finish.
    pub async fn unload(&self, model: &str) -> Result<(), InferError> {
        let _guard = self.write_lock.lock().await;
        let mut table = ModelTable::clone(&self.table.load());
        let entry = table
            .get_mut(model)
            .ok_or_else(|| InferError::not_found(format!("unknown model '{model}'")))?;
        let mut displaced = Vec::new();
        for v in entry.versions.values_mut() {
            displaced.extend(v.served.take());
            v.state = VersionState::Unloaded;
        }
        self.publish(table);
        for served in displaced {
            self.retire(served);
        }
        Ok(())
    }

    /// Replaces everything served under `model` in one atomic step: the new
    /// versions and default become visible to the next request at once.
    /// Versions no longer in the table are retired: they finish what they
    /// hold, then close. An empty `entry` removes the model.
    pub async fn install(&self, model: &str, entry: ModelEntry) {
        let displaced = {
            let _guard = self.write_lock.lock().await;
            let mut table = ModelTable::clone(&self.table.load());
            let old = if entry.versions.is_empty() {
                table.remove(model)
            } else {
                table.insert(model.to_string(), entry.clone())
            };
            self.publish(table);
            old.map(|old| displaced_versions(&old, &entry))
                .unwrap_or_default()
        };
        for v in entry.versions.values() {
            if let Some(served) = &v.served {
                loaded_gauge(served, 1.0);
            }
        }
        for served in displaced {
            self.retire(served);
        }
    }

    /// The entry of one model, if it is in the table.
    pub fn entry(&self, model: &str) -> Option<ModelEntry> {
        self.table.load().get(model).cloned()
    }

    /// Closes `served` once no request is in it any more (or after
    /// [`RETIRE_GRACE`]): the table no longer hands it out, so the requests
    /// already in it are the last ones it serves.
    fn retire(&self, served: Arc<ServedVersion>) {
        let still_listed = {
            let table = self.table.load();
            table.get(served.name()).is_some_and(|m| {
                m.versions
                    .get(&VersionKey(served.version().to_string()))
                    .and_then(|v| v.served.as_ref())
                    .is_some_and(|s| s.engine() == served.engine())
            })
        };
        if !still_listed {
            loaded_gauge(&served, 0.0);
        }
        tokio::spawn(async move {
            served
                .until_idle(tokio::time::Instant::now() + RETIRE_GRACE)
                .await;
            served.close();
            tracing::info!(
                model = served.name(),
                version = served.version(),
                "model version retired"
            );
        });
    }

    /// Closes every batcher (graceful shutdown): queued requests finish.
    pub fn close_all(&self) {
        for entry in self.table.load().values() {
            for v in entry.versions.values() {
                if let Some(served) = &v.served {
                    served.close();
                }
            }
        }
    }

    /// Loads one version, starts its batcher and warms it up, without
    /// publishing it: the caller decides when it serves (see [`install`](Self::install)).
    pub async fn start_version(&self, spec: &ModelSpec) -> Result<Arc<ServedVersion>, InferError> {
        spec.batching
            .validate()
            .map_err(|e| InferError::invalid(format!("model '{}': {e}", spec.name)))?;
        spec.protection
            .validate()
            .map_err(|e| InferError::invalid(format!("model '{}': {}", spec.name, e.message)))?;
        let faults = self
            .fault_injection
            .then(|| Arc::new(crate::guard::faults::FaultSlot::default()));
        let engines = self.engines.clone();
        let (source, choice) = (spec.source.clone(), spec.engine);
        let options = ferroserve_backend::LoadOptions {
            intra_op_threads: spec.intra_op_threads,
            max_batch_size: spec.batching.max_batch_size,
        };
        let loaded = tokio::task::spawn_blocking(move || {
            // The content hash names the artifact in result-cache keys, so
            // two servers sharing a cache never mix up equally named versions.
            let content = source.read()?;
            let content_hash = blake3::hash(&content).to_hex().to_string();
            let loaded = engines.load(choice, &ModelSource::Bytes(content), &options)?;
            Ok::<_, ferroserve_backend::BackendError>((loaded, content_hash))
        })
        .await
        .map_err(|e| InferError::internal(format!("model loader stopped: {e}")))?
        .map_err(|e| {
            let e = InferError::from(e);
            InferError::new(
                e.kind,
                format!(
                    "cannot load model '{}' version {} from {}: {}",
                    spec.name,
                    spec.version,
                    spec.source.describe(),
                    e.message
                ),
            )
        })?;
        let (loaded, content_hash) = loaded;
        let loaded = match &faults {
            Some(slot) => crate::guard::faults::FaultyModel::wrap(loaded, slot.clone()),
            None => loaded,
        };
        let signature = loaded.signature().clone();
        signature
            .check_sample_fits(self.max_input_bytes)
            .map_err(|e| {
                InferError::new(
                    e.kind,
                    format!(
                        "cannot serve model '{}' version {}: {}",
                        spec.name, spec.version, e.message
                    ),
                )
            })?;
        let protection = crate::guard::VersionProtection::new(
            &spec.protection,
            &spec.name,
            &spec.version,
            &signature,
            faults,
        )?;
        let engine = loaded.engine();
        let labels = BatcherLabels {
            model: spec.name.clone(),
            version: spec.version.clone(),
        };
        let batching = spec.batching.clone();
        let batcher = tokio::task::spawn_blocking(move || Batcher::start(loaded, batching, labels))
            .await
            .map_err(|e| InferError::internal(format!("batcher start stopped: {e}")))??;
        let served = Arc::new(
            ServedVersion::new(
                spec.name.clone(),
                spec.version.clone(),
                engine,
                signature,
                spec.schema.clone(),
                spec.request_timeout,
                batcher,
            )
            .with_cache_policy(spec.cache)
            .with_content_hash(content_hash)
            .with_protection(protection),
        );
        if let Err(e) = served.warm_up(spec.batching.instance_count).await {
            served.close();
            return Err(e);
        }
        Ok(served)
    }

    /// Replaces the entry of one version; returns the version it displaced.
    async fn set_state(
        &self,
        model: &str,
        version: &str,
        state: VersionState,
        served: Option<Arc<ServedVersion>>,
    ) -> Option<Arc<ServedVersion>> {
        let _guard = self.write_lock.lock().await;
        let mut table = ModelTable::clone(&self.table.load());
        let entry = table.entry(model.to_string()).or_default();
        let key = VersionKey(version.to_string());
        let previous = entry.versions.get(&key).and_then(|v| v.served.clone());
        // While a version reloads, the old instance keeps serving.
        let keep_serving = state == VersionState::Loading;
        let served = if keep_serving {
            previous.clone()
        } else {
            served
        };
        entry.versions.insert(
            key,
            VersionEntry {
                version: version.to_string(),
                state,
                served,
            },
        );
        self.publish(table);
        if keep_serving {
            None
        } else {
            previous
        }
    }
}

/// How long a displaced version may keep serving the requests that hold it
/// before it is closed anyway.
pub const RETIRE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

fn loaded_gauge(served: &ServedVersion, value: f64) {
    metrics::gauge!(telemetry::MODEL_LOADED, "model" => served.name().to_string(),
        "version" => served.version().to_string(), "engine" => served.engine())
    .set(value);
}

/// The served instances of `old` that `new` no longer holds.
fn displaced_versions(old: &ModelEntry, new: &ModelEntry) -> Vec<Arc<ServedVersion>> {
    old.versions
        .iter()
        .filter_map(|(key, v)| {
            let served = v.served.as_ref()?;
            let kept = new
                .versions
                .get(key)
                .and_then(|n| n.served.as_ref())
                .is_some_and(|n| Arc::ptr_eq(n, served));
            (!kept).then(|| served.clone())
        })
        .collect()
}

/// Human-readable load state, as shown in "not ready" errors.
pub fn state_text(state: &VersionState) -> String {
    match state {
        VersionState::Loading => "loading".to_string(),
        VersionState::Ready => "ready".to_string(),
        VersionState::Failed { reason } => format!("failed: {reason}"),
        VersionState::Unloaded => "unloaded".to_string(),
    }
}

fn describe_states(entry: &ModelEntry) -> String {
    let parts: Vec<String> = entry
        .versions
        .values()
        .map(|v| format!("version {}: {}", v.version, state_text(&v.state)))
        .collect();
    if parts.is_empty() {
        "no versions".to_string()
    } else {
        parts.join("; ")
    }
}
