//! One watched model version: how its features and prediction are read,
//! its data contract, the open window, the closed windows' reports, its
//! online quality and its alert rules.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferroserve_core::{FeatureSchema, InferError, ModelSignature, Tensor};

use super::alerts::{Alert, AlertTracker, Fired};
use super::contract::{Contract, Violation};
use super::features::{first_of_each_row, FeatureLayout, PredictionSource};
use super::policy::MonitorPolicy;
use super::profile::ReferenceProfile;
use super::quality::{Outcome, QualityReport, QualityWindow};
use super::window::{evaluate, Baseline, Closing, Window, WindowReport};

pub use super::version_report::{OpenWindow, VersionDrift, WindowSummary};
use ferroserve_core::telemetry;

/// Closed-window reports kept per version.
const HISTORY: usize = 48;
/// Fired alerts kept per version.
const RECENT_ALERTS: usize = 20;

/// What a version is watched with: its settings, profile, schema and
/// signature. Two equal specs watch the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSpec {
    /// The model's monitoring settings.
    pub policy: MonitorPolicy,
    /// The version's reference profile, if it has one.
    pub profile: Option<Arc<ReferenceProfile>>,
    /// The version's feature schema (ranges of the data contract).
    pub schema: Option<Arc<FeatureSchema>>,
    /// The version's inputs and outputs.
    pub signature: ModelSignature,
}

/// Longest request id or idempotency key a prediction is remembered by,
/// in bytes; front ends refuse longer ones, and the monitor never indexes
/// them.
pub use ferroserve_core::MAX_REQUEST_KEY_BYTES as MAX_KEY_BYTES;

/// The identifiers a request can be given feedback by, and who made it.
#[derive(Debug, Clone, Default)]
pub struct RequestKeys {
    /// The `x-request-id` header and the body's `id`.
    pub request_ids: Vec<String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The client that made the request: only it may give the feedback.
    pub client: Option<Arc<str>>,
}

impl RequestKeys {
    /// The keys in the pending-prediction store, namespaced by kind, one
    /// shared string each; keys longer than [`MAX_KEY_BYTES`] are left out.
    pub(crate) fn store_keys(&self, model: &str) -> Vec<Arc<str>> {
        let ids = self.request_ids.iter().map(|id| (id, request_key as KeyOf));
        let keys = self
            .idempotency_key
            .iter()
            .map(|k| (k, idempotency_key as KeyOf));
        ids.chain(keys)
            .filter(|(key, _)| key.len() <= MAX_KEY_BYTES)
            .map(|(key, store_key)| Arc::from(store_key(model, key)))
            .collect()
    }
}

/// How a store key is made of a model and a client's key.
type KeyOf = fn(&str, &str) -> String;

/// Store key of a request id of `model`.
pub(crate) fn request_key(model: &str, id: &str) -> String {
    format!("{model}\u{0}r\u{0}{id}")
}

/// Store key of an idempotency key of `model`.
pub(crate) fn idempotency_key(model: &str, key: &str) -> String {
    format!("{model}\u{0}k\u{0}{key}")
}

/// One observed request, on its way to the monitor.
pub(crate) struct Observation {
    pub(crate) watch: Arc<Watch>,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) prediction: Option<Tensor>,
    pub(crate) keys: RequestKeys,
}

/// A served version under watch.
pub struct Watch {
    model: String,
    version: String,
    spec: WatchSpec,
    /// Where the features are; `None` (with the reason in `note`) when
    /// drift cannot be computed.
    layout: Option<FeatureLayout>,
    feature_names: Vec<String>,
    baseline: Option<Baseline>,
    contract: Contract,
    prediction: Option<PredictionSource>,
    note: Option<String>,
    sender: crossbeam_channel::Sender<Observation>,
    /// Set when the service's replicas pool their windows: this watch then
    /// hands its rows over ([`Watch::take_part`]) and only the leader
    /// closes windows ([`Watch::close_pooled`]).
    pooled: Arc<AtomicBool>,
    /// The leader's report of this version, on the other replicas of a
    /// service that pools its windows.
    service_report: Mutex<Option<serde_json::Value>>,
    sampler: Sampler,
    observed: AtomicU64,
    dropped: AtomicU64,
    dropped_metric: metrics::Counter,
    state: Mutex<WatchState>,
}

/// Lets at most `budget` rows a second through, counting the rest.
struct Sampler {
    budget: u64,
    start: Instant,
    second: AtomicU64,
    used: AtomicU64,
    skipped: AtomicU64,
    skipped_metric: metrics::Counter,
}

impl Sampler {
    fn admit(&self, rows: u64) -> bool {
        let second = self.start.elapsed().as_secs();
        if self.second.load(Ordering::Relaxed) != second {
            // Two requests may both reset at a second's turn: a few extra
            // rows get through, which is harmless.
            self.second.store(second, Ordering::Relaxed);
            self.used.store(0, Ordering::Relaxed);
        }
        let admitted = self.used.fetch_add(rows, Ordering::Relaxed) + rows <= self.budget;
        if !admitted {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            self.skipped_metric.increment(1);
        }
        admitted
    }
}

struct WatchState {
    window: Option<Window>,
    opened: Instant,
    opened_at_ms: u64,
    closed: u64,
    history: VecDeque<WindowReport>,
    alerts: AlertTracker,
    recent_alerts: VecDeque<Alert>,
    quality: Option<QualityWindow>,
    /// Rows labeled by feedback so far.
    labeled: u64,
    violations: BTreeMap<(usize, Violation), u64>,
}

impl Watch {
    pub(crate) fn new(
        model: &str,
        version: &str,
        spec: WatchSpec,
        sender: crossbeam_channel::Sender<Observation>,
        pooled: Arc<AtomicBool>,
    ) -> Self {
        let profile = spec.profile.as_deref();
        let feature_names: Vec<String> = match (profile, &spec.schema) {
            (Some(p), _) => p.features.iter().map(|f| f.name.clone()).collect(),
            (None, Some(schema)) => schema.features.iter().map(|f| f.name.clone()).collect(),
            (None, None) => Vec::new(),
        };
        let (layout, mut note) = if feature_names.is_empty() {
            (
                None,
                Some("no reference profile or feature schema names the features".to_owned()),
            )
        } else {
            match FeatureLayout::new(&feature_names, &spec.signature) {
                Ok(layout) => (Some(layout), None),
                Err(reason) => (None, Some(reason)),
            }
        };
        let baseline = match (profile, &layout) {
            (Some(p), Some(_)) => Some(Baseline::new(p)),
            _ => None,
        };
        if note.is_none() && baseline.is_none() {
            note = Some(
                "no reference profile: drift is not computed, the data contract is".to_owned(),
            );
        }
        let contract = Contract::new(&feature_names, spec.schema.as_deref(), profile);
        let prediction = PredictionSource::find(&spec.signature, profile);
        let state = WatchState {
            window: baseline.as_ref().map(Window::new),
            opened: Instant::now(),
            opened_at_ms: now_ms(),
            closed: 0,
            history: VecDeque::new(),
            alerts: AlertTracker::new(&spec.policy.alerts),
            recent_alerts: VecDeque::new(),
            quality: prediction
                .as_ref()
                .map(|p| QualityWindow::new(p.task, spec.policy.feedback_window)),
            labeled: 0,
            violations: BTreeMap::new(),
        };
        let labels = [("model", model.to_owned()), ("version", version.to_owned())];
        let sampler = Sampler {
            budget: spec.policy.max_observed_rows_per_s,
            start: Instant::now(),
            second: AtomicU64::new(0),
            used: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            skipped_metric: metrics::counter!(telemetry::MONITOR_SKIPPED, &labels),
        };
        Watch {
            model: model.to_owned(),
            version: version.to_owned(),
            sampler,
            dropped_metric: metrics::counter!(telemetry::MONITOR_DROPPED, &labels),
            spec,
            layout,
            feature_names,
            baseline,
            contract,
            prediction,
            note,
            sender,
            pooled,
            service_report: Mutex::new(None),
            observed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            state: Mutex::new(state),
        }
    }

    /// Model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Version label.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// What the version is watched with.
    pub fn spec(&self) -> &WatchSpec {
        &self.spec
    }

    /// Refuses `inputs` that break the data contract, when the model's
    /// config says to; otherwise accepts everything (violations are
    /// counted later, off the request path).
    pub fn admit(&self, inputs: &[Tensor]) -> Result<(), InferError> {
        if !self.spec.policy.reject_contract_violations {
            return Ok(());
        }
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let mut first: Option<String> = None;
        let mut found = Vec::new();
        let read = layout.read(inputs, |feature, row, value| {
            if let Some(violation) = self.contract.check(feature, value) {
                found.push((feature, violation));
                first.get_or_insert_with(|| self.contract.describe(feature, row, value, violation));
            }
        });
        // Inputs that do not fit are the signature check's to refuse.
        if read.is_err() {
            return Ok(());
        }
        match first {
            None => Ok(()),
            Some(message) => {
                self.count_violations(found);
                Err(InferError::invalid(message))
            }
        }
    }

    /// Whether a request of `inputs` is within the rows-per-second budget
    /// of observation (the rest are counted as skipped).
    pub fn sample(&self, inputs: &[Tensor]) -> bool {
        let rows = inputs.first().map_or(1, |t| t.rows() as u64);
        self.sampler.admit(rows)
    }

    /// Queues one answered request for the monitor: never waits; when the
    /// queue is full the observation is dropped and counted.
    pub fn observe(self: &Arc<Self>, inputs: Vec<Tensor>, outputs: &[Tensor], keys: RequestKeys) {
        let prediction = self
            .prediction
            .as_ref()
            .and_then(|p| outputs.iter().find(|t| t.name == p.output).cloned());
        let observation = Observation {
            watch: self.clone(),
            inputs,
            prediction,
            keys,
        };
        if self.sender.try_send(observation).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_metric.increment(1);
        }
    }

    /// Takes one observation in (on the monitor task): counts contract
    /// violations, adds its values to the window, and closes the window
    /// when full. Returns the prediction outcomes, for feedback.
    pub(crate) fn take_in(&self, observation: &Observation) -> (Option<Vec<Outcome>>, Vec<Fired>) {
        self.observed.fetch_add(1, Ordering::Relaxed);
        let outcomes = match (&self.prediction, &observation.prediction) {
            (Some(source), Some(tensor)) => source.read(std::slice::from_ref(tensor)),
            _ => None,
        };
        let Some(layout) = &self.layout else {
            return (outcomes, Vec::new());
        };
        let mut state = self.lock();
        let mut violations = Vec::new();
        let mut window = state.window.take();
        let rows = layout.read(&observation.inputs, |feature, _, value| {
            if let Some(violation) = self.contract.check(feature, value) {
                violations.push((feature, violation));
            }
            if let (Some(window), Some(baseline)) = (&mut window, &self.baseline) {
                window.push(baseline, feature, value);
            }
        });
        for key in violations {
            *state.violations.entry(key).or_default() += 1;
            self.count_violation_metric(key);
        }
        let mut fired = Vec::new();
        match (window, &self.baseline, rows) {
            (Some(mut window), Some(baseline), Ok(rows)) => {
                if let Some(tensor) = &observation.prediction {
                    for value in first_of_each_row(tensor) {
                        window.push_prediction(baseline, value);
                    }
                }
                window.rows += rows;
                let full = window.rows >= self.spec.policy.window_rows && !self.is_pooled();
                state.window = Some(window);
                if full {
                    fired = self.close_window(&mut state, "rows");
                }
            }
            // Inputs that do not fit the layout add nothing (read visits
            // no value before it fails); the window stays as it was.
            (window, _, _) => state.window = window,
        }
        (outcomes, fired)
    }

    /// Closes the window when it is old enough and holds enough rows.
    pub(crate) fn tick(&self) -> Vec<Fired> {
        if self.is_pooled() {
            return Vec::new();
        }
        let mut state = self.lock();
        let due = state.opened.elapsed() >= Duration::from_secs(self.spec.policy.window_seconds);
        let rows = state.window.as_ref().map_or(0, |w| w.rows);
        if due && rows >= self.spec.policy.min_rows {
            self.close_window(&mut state, "time")
        } else {
            Vec::new()
        }
    }

    fn close_window(&self, state: &mut WatchState, closed_by: &'static str) -> Vec<Fired> {
        let (Some(baseline), Some(window)) = (&self.baseline, state.window.take()) else {
            return Vec::new();
        };
        state.closed += 1;
        let closing = Closing {
            index: state.closed,
            opened_at_ms: state.opened_at_ms,
            closed_at_ms: now_ms(),
            closed_by,
        };
        state.window = Some(Window::new(baseline));
        state.opened = Instant::now();
        state.opened_at_ms = now_ms();
        self.report_window(state, &window, closing)
    }

    /// Whether drift is computed (the version has a reference profile whose
    /// features the inputs hold): only then are there windows to pool.
    pub(crate) fn computes_drift(&self) -> bool {
        self.baseline.is_some()
    }

    /// Whether online quality is computed (the version has a prediction
    /// output to compare labels with).
    pub(crate) fn computes_quality(&self) -> bool {
        self.prediction.is_some()
    }

    /// Whether the replicas pool their windows.
    fn is_pooled(&self) -> bool {
        self.pooled.load(Ordering::Relaxed)
    }

    /// The rows taken in since the last call, as a part of the service's
    /// window (`None` when there were none, or drift is not computed);
    /// the open window starts empty again.
    pub(crate) fn take_part(&self) -> Option<(u64, serde_json::Value)> {
        let baseline = self.baseline.as_ref()?;
        let mut state = self.lock();
        if state.window.as_ref().is_none_or(|w| w.rows == 0) {
            return None;
        }
        let part = state.window.replace(Window::new(baseline))?.into_part();
        let rows = part.rows as u64;
        match serde_json::to_value(part) {
            Ok(part) => Some((rows, part)),
            Err(e) => {
                tracing::error!(model = %self.model, version = %self.version, error = %e, "cannot serialize a window part");
                None
            }
        }
    }

    /// Gives back a part [`Watch::take_part`] took that could not be
    /// pooled, so that its rows count in the next one.
    pub(crate) fn restore_part(&self, part: serde_json::Value) {
        let Ok(part) = serde_json::from_value::<Window>(part) else {
            return;
        };
        if let Some(window) = self.lock().window.as_mut() {
            window.absorb(part);
        }
    }

    /// Closes the service's window `index`, opened at `opened_at_ms`, from
    /// the parts every replica pooled (on the leader): its report joins the
    /// history, and the alerts it fires are returned.
    pub(crate) fn close_pooled(
        &self,
        parts: Vec<serde_json::Value>,
        index: u64,
        opened_at_ms: u64,
        closed_by: &'static str,
    ) -> Vec<Fired> {
        let Some(baseline) = &self.baseline else {
            return Vec::new();
        };
        let mut window = Window::new(baseline);
        for part in parts {
            let absorbed = serde_json::from_value::<Window>(part).map(|p| window.absorb(p));
            if !matches!(absorbed, Ok(true)) {
                tracing::warn!(model = %self.model, version = %self.version, "a window part of another shape was left out");
            }
        }
        let closing = Closing {
            index,
            opened_at_ms,
            closed_at_ms: now_ms(),
            closed_by,
        };
        let mut state = self.lock();
        state.closed = index;
        state.opened = Instant::now();
        state.opened_at_ms = now_ms();
        self.report_window(&mut state, &window, closing)
    }

    /// Whether the service's window, holding `rows` rows and opened at
    /// `opened_at_ms`, is due to close, and why (`rows` or `time`).
    pub(crate) fn pooled_due(&self, rows: u64, opened_at_ms: u64) -> Option<&'static str> {
        let policy = &self.spec.policy;
        let age_ms = now_ms().saturating_sub(opened_at_ms);
        if rows >= policy.window_rows as u64 {
            Some("rows")
        } else if age_ms >= policy.window_seconds.saturating_mul(1000)
            && rows >= policy.min_rows as u64
        {
            Some("time")
        } else {
            None
        }
    }

    /// Evaluates a closed window, publishes it, keeps it in the history
    /// and returns the alerts it fires.
    fn report_window(
        &self,
        state: &mut WatchState,
        window: &Window,
        closing: Closing,
    ) -> Vec<Fired> {
        let Some(baseline) = &self.baseline else {
            return Vec::new();
        };
        let report = evaluate(baseline, window, &self.spec.policy, closing);
        self.publish_drift(&report);
        let fired = state.alerts.on_window(&report);
        state.history.push_back(report);
        while state.history.len() > HISTORY {
            state.history.pop_front();
        }
        fired
    }

    /// Adds labeled predictions to the online quality window; returns the
    /// new figures and the rules that fire.
    pub(crate) fn label(
        &self,
        pairs: &[(Outcome, Outcome)],
    ) -> Result<(Option<QualityReport>, Vec<Fired>), String> {
        let mut state = self.lock();
        // Check every pair before adding any, so that a bad batch adds nothing.
        let quality = Self::checked(&mut state, &self.version, pairs)?;
        for (predicted, truth) in pairs {
            quality
                .push(predicted.clone(), truth.clone())
                .map_err(|e| e.to_string())?;
        }
        let report = quality.report();
        state.labeled += pairs.len() as u64;
        let fired = match &report {
            Some(report) => {
                self.publish_quality(report);
                state.alerts.on_quality(report)
            }
            None => Vec::new(),
        };
        Ok((report, fired))
    }

    /// Whether [`Watch::label`] would take `pairs`; the error says why not.
    pub(crate) fn check_labels(&self, pairs: &[(Outcome, Outcome)]) -> Result<(), String> {
        Self::checked(&mut self.lock(), &self.version, pairs).map(|_| ())
    }

    /// The quality window of `state`, once every pair is checked to fit it.
    fn checked<'s>(
        state: &'s mut WatchState,
        version: &str,
        pairs: &[(Outcome, Outcome)],
    ) -> Result<&'s mut QualityWindow, String> {
        let Some(quality) = &mut state.quality else {
            return Err(format!(
                "version {version} has no prediction output to compare labels with"
            ));
        };
        for (predicted, truth) in pairs {
            quality.check(predicted, truth).map_err(|e| e.to_string())?;
        }
        Ok(quality)
    }

    /// The online quality of the version: the service's where the replicas
    /// pool their predictions (as last published), this replica's otherwise.
    pub(crate) fn quality(&self) -> Option<QualityReport> {
        serde_json::from_value(self.report_json()["quality"].take()).ok()
    }

    /// Remembers a fired alert for reports.
    pub(crate) fn remember(&self, alert: Alert) {
        let mut state = self.lock();
        state.recent_alerts.push_back(alert);
        while state.recent_alerts.len() > RECENT_ALERTS {
            state.recent_alerts.pop_front();
        }
    }

    /// Keeps the leader's report of this version (see [`Watch::report_json`]).
    pub(crate) fn set_service_report(&self, report: Option<serde_json::Value>) {
        *self
            .service_report
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = report;
    }

    /// The version's monitoring figures as JSON. Where the replicas pool
    /// their windows, the closed windows, online quality and alerts are the
    /// service's (the leader's report, when it is ahead of this replica's
    /// own), and the request counts and contract violations this
    /// replica's own.
    pub fn report_json(&self) -> serde_json::Value {
        let mut mine = serde_json::to_value(self.report()).unwrap_or_default();
        let service = self
            .service_report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let ahead = |s: &serde_json::Value, key: &str| s[key].as_u64() > mine[key].as_u64();
        if let Some(service) =
            service.filter(|s| ahead(s, "windows_closed") || ahead(s, "labeled_rows"))
        {
            for key in [
                "windows_closed",
                "latest",
                "history",
                "quality",
                "labeled_rows",
                "alerts",
                "recent_alerts",
            ] {
                mine[key] = service[key].clone();
            }
        }
        mine
    }

    /// The version's monitoring figures.
    pub fn report(&self) -> VersionDrift {
        let state = self.lock();
        let mut contract: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
        for (&(feature, violation), &count) in &state.violations {
            let name = self.feature_names.get(feature).cloned().unwrap_or_default();
            contract
                .entry(name)
                .or_default()
                .insert(violation.as_label(), count);
        }
        VersionDrift {
            version: self.version.clone(),
            features: self.feature_names.clone(),
            note: self.note.clone(),
            window_rows: self.spec.policy.window_rows,
            window_seconds: self.spec.policy.window_seconds,
            observed_requests: self.observed.load(Ordering::Relaxed),
            skipped_requests: self.sampler.skipped.load(Ordering::Relaxed),
            dropped_requests: self.dropped.load(Ordering::Relaxed),
            open_window: OpenWindow {
                rows: state.window.as_ref().map_or(0, |w| w.rows),
                opened_at_ms: state.opened_at_ms,
            },
            windows_closed: state.closed,
            latest: state.history.back().cloned(),
            history: state.history.iter().map(WindowSummary::of).collect(),
            contract_violations: contract,
            quality: state.quality.as_ref().and_then(QualityWindow::report),
            labeled_rows: state.labeled,
            alerts: state.alerts.statuses(),
            recent_alerts: state.recent_alerts.iter().cloned().collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WatchState> {
        // A panic while holding the lock leaves figures, never invariants,
        // half-updated: keep going with them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_violations(&self, found: Vec<(usize, Violation)>) {
        let mut state = self.lock();
        for key in found {
            *state.violations.entry(key).or_default() += 1;
            self.count_violation_metric(key);
        }
    }

    fn count_violation_metric(&self, (feature, violation): (usize, Violation)) {
        let name = self.feature_names.get(feature).cloned().unwrap_or_default();
        metrics::counter!(
            telemetry::CONTRACT_VIOLATIONS,
            "model" => self.model.clone(),
            "version" => self.version.clone(),
            "feature" => name,
            "kind" => violation.as_label()
        )
        .increment(1);
    }

    fn publish_drift(&self, report: &WindowReport) {
        let (model, version) = (self.model.clone(), self.version.clone());
        for feature in exported(&report.features) {
            if let Some(psi) = feature.psi {
                metrics::gauge!(telemetry::FEATURE_PSI, "model" => model.clone(), "version" => version.clone(), "feature" => feature.name.clone()).set(psi);
            }
            if let Some(p) = feature.ks_p_value {
                metrics::gauge!(telemetry::FEATURE_KS_PVALUE, "model" => model.clone(), "version" => version.clone(), "feature" => feature.name.clone()).set(p);
            }
            if let Some(d) = feature.js_distance {
                metrics::gauge!(telemetry::FEATURE_JS_DISTANCE, "model" => model.clone(), "version" => version.clone(), "feature" => feature.name.clone()).set(d);
            }
        }
        if let Some(psi) = report.prediction.as_ref().and_then(|p| p.psi) {
            metrics::gauge!(telemetry::PREDICTION_PSI, "model" => model.clone(), "version" => version.clone()).set(psi);
        }
        metrics::gauge!(telemetry::DATASET_DRIFT_SHARE, "model" => model.clone(), "version" => version.clone()).set(report.drift_share);
        metrics::counter!(telemetry::MONITOR_WINDOWS, "model" => model, "version" => version)
            .increment(1);
    }

    fn publish_quality(&self, report: &QualityReport) {
        let labels = [
            ("model", self.model.clone()),
            ("version", self.version.clone()),
        ];
        for (name, value) in [
            (telemetry::ONLINE_ACCURACY, report.accuracy),
            (telemetry::ONLINE_F1, report.f1),
            (telemetry::ONLINE_MAE, report.mae),
            (telemetry::ONLINE_RMSE, report.rmse),
        ] {
            if let Some(value) = value {
                metrics::gauge!(name, &labels).set(value);
            }
        }
    }
}

/// Features whose drift gauges a version exports at most (three series
/// each): a profile may name any number of features, and every label value
/// is a series `/metrics` keeps. The drift report itself still shows all.
pub const MAX_EXPORTED_FEATURES: usize = 64;

/// The first [`MAX_EXPORTED_FEATURES`] of `features`, in profile order.
fn exported<T>(features: &[T]) -> &[T] {
    &features[..features.len().min(MAX_EXPORTED_FEATURES)]
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_gauges_cover_at_most_the_first_features() {
        let many: Vec<usize> = (0..10 * MAX_EXPORTED_FEATURES).collect();
        assert_eq!(exported(&many), &many[..MAX_EXPORTED_FEATURES]);
        assert_eq!(exported(&many[..3]), &many[..3]);
    }
}
