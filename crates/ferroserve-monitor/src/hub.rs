//! The monitor: which versions are watched, the bounded queue observations
//! travel through (off the request path: a request only pushes to it, and
//! never wakes anyone), the thread that drains it every few milliseconds,
//! closes windows on time and applies feedback, and where alerts go.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Serialize;
use tokio::sync::oneshot;

use super::alerts::{Alert, Fired};
use super::feedback::{Feedback, FeedbackOutcome, Pending};
use super::pending::PendingStore;
use super::pool::WindowPool;
use super::pooled_feedback::HandOver;
use super::watch::{now_ms, Observation, VersionDrift, Watch, WatchSpec};
use super::webhook::WebhookSender;
use super::webhook_target::WebhookAllowList;
use ferroserve_core::telemetry;

/// Actor of the monitor's entries in the audit log.
pub const MONITOR_ACTOR: &str = "ferroserve-monitor";

/// Where fired alerts are recorded besides the webhook (the registry's
/// audit log in a server): called with the alert and its JSON form; the
/// future it returns runs on the Tokio runtime the monitor was started on,
/// and is awaited before the webhook is called, so an alert a webhook
/// receiver sees is already recorded.
pub type AlertSink = Arc<
    dyn Fn(
            &Alert,
            &serde_json::Value,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Feedback calls waiting for the monitor at most; more are refused.
const FEEDBACK_QUEUE: usize = 64;

/// Server-wide monitor settings.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Observations waiting for the monitor at most; more are dropped.
    pub queue_capacity: usize,
    /// Predictions kept for feedback at most.
    pub max_pending: usize,
    /// Bytes the predictions kept for feedback may take at most (keys
    /// and outcomes); the oldest leave first.
    pub max_pending_bytes: usize,
    /// How long a prediction waits for its feedback.
    pub feedback_ttl: Duration,
    /// How often the monitor drains its queue and checks window ages.
    pub tick: Duration,
    /// Internal hosts and networks webhooks may reach.
    pub webhook_allow: WebhookAllowList,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            queue_capacity: 65_536,
            max_pending: 100_000,
            max_pending_bytes: 64 * 1024 * 1024,
            feedback_ttl: Duration::from_secs(24 * 3600),
            tick: Duration::from_millis(10),
            webhook_allow: WebhookAllowList::default(),
        }
    }
}

/// Work for the monitor thread besides observations.
enum Call {
    /// Feedback to apply to the predictions this replica keeps.
    Feedback(FeedbackCall),
    /// Take in everything queued now, then answer.
    Drain(oneshot::Sender<()>),
}

/// A feedback call on its way to the monitor thread.
struct FeedbackCall {
    model: String,
    /// Who gives the feedback: only its own predictions are found.
    client: Arc<str>,
    feedback: Feedback,
    reply: oneshot::Sender<FeedbackOutcome>,
}

type Watches = HashMap<String, HashMap<String, Arc<Watch>>>;

pub(crate) struct Shared {
    pub(crate) watches: ArcSwap<Watches>,
    /// Whether windows are pooled across replicas (see [`crate::pool`]).
    pub(crate) pooled: Arc<AtomicBool>,
    /// Where they are pooled, with the predictions awaiting feedback.
    pub(crate) pool: OnceLock<Arc<dyn WindowPool>>,
    /// Predictions served here since the last hand-over to the pool.
    pub(crate) hand_over: Mutex<HandOver>,
    /// Held while predictions are on their way to the pool, so that a
    /// feedback call finds every one handed over before it.
    pub(crate) handing_over: tokio::sync::Mutex<()>,
    /// How long a prediction waits for its feedback.
    pub(crate) feedback_ttl: Duration,
    /// Predictions kept for feedback at most (by the service, when pooled).
    pub(crate) max_pending: usize,
    webhook: WebhookSender,
    alert_sink: Option<AlertSink>,
    /// Runs alert deliveries.
    pub(crate) runtime: tokio::runtime::Handle,
}

/// Watches served versions against their reference profiles.
pub struct Monitor {
    pub(crate) shared: Arc<Shared>,
    observations: Sender<Observation>,
    calls: Sender<Call>,
}

/// Monitoring figures of a model, by served version.
#[derive(Debug, Clone, Serialize)]
pub struct ModelDrift {
    /// Model name.
    pub model: String,
    /// One entry per watched version, by version label.
    pub versions: Vec<VersionDrift>,
}

impl Monitor {
    /// Starts the monitor thread; alerts are delivered to webhooks on the
    /// current Tokio runtime and handed to `alert_sink` (the audit log, say)
    /// when one is given. The thread stops when the monitor is dropped.
    pub fn start(options: MonitorOptions, alert_sink: Option<AlertSink>) -> Arc<Monitor> {
        let (observations, observed) = crossbeam_channel::bounded(options.queue_capacity.max(1));
        let (calls, received) = crossbeam_channel::bounded(FEEDBACK_QUEUE);
        let shared = Arc::new(Shared {
            watches: ArcSwap::from_pointee(Watches::new()),
            pooled: Arc::new(AtomicBool::new(false)),
            pool: OnceLock::new(),
            hand_over: Mutex::new(HandOver::new(
                options.max_pending,
                options.max_pending_bytes,
            )),
            handing_over: tokio::sync::Mutex::new(()),
            feedback_ttl: options.feedback_ttl,
            max_pending: options.max_pending,
            webhook: WebhookSender::with_allow_list(options.webhook_allow.clone()),
            alert_sink,
            runtime: tokio::runtime::Handle::current(),
        });
        let worker = Worker {
            shared: shared.clone(),
            observed,
            calls: received,
            pending: PendingStore::new(
                options.max_pending,
                options.max_pending_bytes,
                options.feedback_ttl,
            ),
            tick: options.tick,
        };
        let started = std::thread::Builder::new()
            .name("ferroserve-monitor".to_owned())
            .spawn(move || worker.run());
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the monitor thread; nothing will be observed");
        }
        Arc::new(Monitor {
            shared,
            observations,
            calls,
        })
    }

    /// The watch of one served version, if it is watched.
    pub fn watch(&self, model: &str, version: &str) -> Option<Arc<Watch>> {
        self.shared.watches.load().get(model)?.get(version).cloned()
    }

    /// Watches exactly `versions` of `model`: a version whose spec did not
    /// change keeps its windows and figures; others start afresh.
    pub fn sync_model(&self, model: &str, versions: Vec<(String, WatchSpec)>) {
        let current = self.shared.watches.load();
        let before = current.get(model);
        let next: HashMap<String, Arc<Watch>> = versions
            .into_iter()
            .map(|(version, spec)| {
                let kept = before
                    .and_then(|b| b.get(&version))
                    .filter(|w| *w.spec() == spec)
                    .cloned();
                let watch = kept.unwrap_or_else(|| {
                    Arc::new(Watch::new(
                        model,
                        &version,
                        spec,
                        self.observations.clone(),
                        self.shared.pooled.clone(),
                    ))
                });
                (version, watch)
            })
            .collect();
        if before.is_none() && next.is_empty() {
            return;
        }
        let mut all = (**current).clone();
        if next.is_empty() {
            all.remove(model);
        } else {
            all.insert(model.to_owned(), next);
        }
        self.shared.watches.store(Arc::new(all));
    }

    /// Monitoring figures of `model`; `None` when none of its versions is watched.
    pub fn report(&self, model: &str) -> Option<ModelDrift> {
        let watches = self.shared.watches.load();
        let versions = watches.get(model)?;
        let mut versions: Vec<VersionDrift> = versions.values().map(|w| w.report()).collect();
        versions.sort_by_key(|v| {
            (
                v.version.parse::<i64>().unwrap_or(i64::MAX),
                v.version.clone(),
            )
        });
        Some(ModelDrift {
            model: model.to_owned(),
            versions,
        })
    }

    /// [`Monitor::report`] as JSON, each version as
    /// [`Watch::report_json`] gives it (the service's windows where the
    /// replicas pool them).
    pub fn report_json(&self, model: &str) -> Option<serde_json::Value> {
        let watches = self.shared.watches.load();
        let versions = watches.get(model)?;
        let mut versions: Vec<&Arc<Watch>> = versions.values().collect();
        versions.sort_by_key(|w| {
            (
                w.version().parse::<i64>().unwrap_or(i64::MAX),
                w.version().to_owned(),
            )
        });
        let versions: Vec<serde_json::Value> = versions.iter().map(|w| w.report_json()).collect();
        Some(serde_json::json!({ "model": model, "versions": versions }))
    }

    /// Applies ground truth to the predictions it names that `client`
    /// made (others' are reported as unknown). The monitor drains the
    /// observation queue first, so feedback finds every prediction
    /// answered before it was sent. Where the replicas pool their
    /// predictions, feedback finds those served by any replica, and labels
    /// each once for the whole service.
    pub async fn feedback(
        &self,
        model: &str,
        client: Arc<str>,
        feedback: Feedback,
    ) -> Result<FeedbackOutcome, String> {
        if let Some(pool) = self.shared.pool.get() {
            return self
                .pooled_feedback(pool.as_ref(), model, &client, feedback)
                .await;
        }
        let (reply, answer) = oneshot::channel();
        self.call(Call::Feedback(FeedbackCall {
            model: model.to_owned(),
            client,
            feedback,
            reply,
        }))?;
        answer.await.map_err(|_| {
            "the monitor could not apply this feedback (see the server log)".to_owned()
        })
    }

    /// Returns once the monitor took in every observation queued before.
    pub(crate) async fn drained(&self) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.call(Call::Drain(reply))?;
        answer
            .await
            .map_err(|_| "the monitor has stopped".to_owned())
    }

    fn call(&self, call: Call) -> Result<(), String> {
        self.calls.try_send(call).map_err(|e| match e {
            TrySendError::Full(_) => {
                "the monitor is busy with other feedback; retry shortly".to_owned()
            }
            TrySendError::Disconnected(_) => "the monitor has stopped".to_owned(),
        })
    }
}

impl Monitor {
    /// POSTs `body` (an event of `model`, e.g. a rollout's step or
    /// rollback) to `webhook` in the background, with the alerts' retries
    /// and target checks; the outcome is logged.
    pub fn notify(
        &self,
        model: &str,
        webhook: super::webhook::WebhookConfig,
        body: serde_json::Value,
    ) {
        let shared = self.shared.clone();
        let model = model.to_owned();
        self.shared.runtime.spawn(async move {
            match shared.webhook.deliver(&webhook, &body).await {
                Ok(delivery) => {
                    tracing::info!(%model, attempts = delivery.attempts, "event delivered to the webhook")
                }
                Err(e) => tracing::error!(%model, error = %e, "event not delivered to the webhook"),
            }
        });
    }
}

struct Worker {
    shared: Arc<Shared>,
    observed: Receiver<Observation>,
    calls: Receiver<Call>,
    pending: PendingStore,
    tick: Duration,
}

impl Worker {
    /// Drains, closes windows and applies feedback until the monitor is
    /// dropped. Each piece of work runs [`isolated`]: a panic (a bug, or a
    /// model whose outputs break an assumption) loses that one piece, not
    /// the monitoring of every model.
    fn run(mut self) {
        loop {
            self.drain();
            isolated("closing due windows", || self.close_due_windows());
            match self.calls.recv_timeout(self.tick) {
                Ok(Call::Drain(reply)) => {
                    self.drain();
                    let _ = reply.send(());
                }
                Ok(Call::Feedback(call)) => {
                    self.drain();
                    let FeedbackCall {
                        model,
                        client,
                        feedback,
                        reply,
                    } = call;
                    // On a panic the reply is dropped: the caller hears
                    // that the feedback was not applied.
                    if let Some(outcome) = isolated("applying feedback", || {
                        self.apply_feedback(&model, &client, feedback)
                    }) {
                        let _ = reply.send(outcome);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Takes in everything queued now.
    fn drain(&mut self) {
        while let Ok(observation) = self.observed.try_recv() {
            isolated("taking in an observation", || self.take_in(observation));
        }
    }

    fn close_due_windows(&self) {
        for versions in self.shared.watches.load().values() {
            for watch in versions.values() {
                let fired = watch.tick();
                dispatch(&self.shared, watch, fired);
            }
        }
    }

    fn take_in(&mut self, observation: Observation) {
        let (outcomes, fired) = observation.watch.take_in(&observation);
        let watch = observation.watch.clone();
        dispatch(&self.shared, &watch, fired);
        let Some(outcomes) = outcomes else {
            return;
        };
        let keys = observation.keys.store_keys(watch.model());
        if keys.is_empty() {
            return;
        }
        if self.shared.pooled.load(Ordering::Relaxed) && self.shared.pool.get().is_some() {
            let client = observation.keys.client.as_deref();
            self.shared
                .hand_over
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&watch, &keys, client, &outcomes);
            return;
        }
        let pending = Arc::new(Pending {
            watch,
            outcomes,
            keys: keys.clone(),
            client: observation.keys.client.clone(),
        });
        for key in keys {
            self.pending.insert(key, pending.clone());
        }
    }

    fn apply_feedback(&mut self, model: &str, client: &str, feedback: Feedback) -> FeedbackOutcome {
        let matched = feedback.match_pending(model, client, |key| self.pending.get(key));
        let mut outcome = matched.outcome;
        for batch in matched.batches {
            let watch = batch.watch.clone();
            match watch.label(&batch.pairs) {
                Ok((quality, fired)) => {
                    outcome.applied(&batch);
                    for key in &batch.keys {
                        self.pending.mark_labeled(key);
                    }
                    if let Some(quality) = quality {
                        outcome.quality.insert(watch.version().to_owned(), quality);
                    }
                    dispatch(&self.shared, &watch, fired);
                }
                Err(reason) => outcome.reject_batch(batch, &reason),
            }
        }
        outcome
    }
}

/// Runs `work`, containing a panic: logged (as `what` failed) and `None`.
/// The monitor's state stays usable: its locks tolerate poisoning, and
/// each piece of work only adds to windows that are checked on close.
fn isolated<T>(what: &str, work: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(value) => Some(value),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%message, "the monitor failed {what}; it goes on with the next piece of work");
            None
        }
    }
}

/// Logs, counts, audits and delivers the alerts that fired on `watch`.
pub(crate) fn dispatch(shared: &Arc<Shared>, watch: &Arc<Watch>, fired: Vec<Fired>) {
    for fired in fired {
        let alert = Alert {
            model: watch.model().to_owned(),
            version: watch.version().to_owned(),
            rule: fired.rule.name(),
            condition: fired.rule,
            message: fired.message,
            figures: fired.figures,
            fired_at_ms: now_ms(),
        };
        tracing::warn!(model = %alert.model, version = %alert.version, rule = alert.rule, message = %alert.message, "monitoring alert");
        metrics::counter!(telemetry::MONITOR_ALERTS, "model" => alert.model.clone(), "rule" => alert.rule)
            .increment(1);
        watch.remember(alert.clone());
        let delivery = deliver(shared.clone(), watch.spec().policy.webhook.clone(), alert);
        shared.runtime.spawn(delivery);
    }
}

/// Hands `alert` to the alert sink and POSTs it to the webhook, if any.
async fn deliver(
    shared: Arc<Shared>,
    webhook: Option<super::webhook::WebhookConfig>,
    alert: Alert,
) {
    let body = serde_json::to_value(&alert).unwrap_or_default();
    if let Some(sink) = &shared.alert_sink {
        sink(&alert, &body).await;
    }
    if let Some(webhook) = webhook {
        match shared.webhook.deliver(&webhook, &body).await {
            Ok(delivery) => {
                tracing::info!(model = %alert.model, rule = alert.rule, attempts = delivery.attempts, "alert delivered")
            }
            Err(e) => {
                tracing::error!(model = %alert.model, rule = alert.rule, error = %e, "alert not delivered")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::profile::{Cell, ColumnSpec, ProfileBuilder};
    use crate::watch::RequestKeys;
    use crate::{MonitorPolicy, WatchSpec};
    use ferroserve_core::{DataType, Dim, ModelSignature, Tensor, TensorData, TensorSpec};
    use serde_json::json;

    /// A watch of `x` against the reference 0..10, in windows of `window_rows`.
    pub(crate) fn spec(window_rows: usize) -> WatchSpec {
        let mut builder = ProfileBuilder::new(vec![ColumnSpec::inferred("x")]).expect("columns");
        for i in 0..10 {
            builder
                .push_row(&[Cell::Number(f64::from(i))])
                .expect("row");
        }
        WatchSpec {
            policy: MonitorPolicy {
                window_rows,
                ..MonitorPolicy::default()
            },
            profile: Some(Arc::new(builder.finish().expect("profile"))),
            schema: None,
            signature: ModelSignature {
                inputs: vec![TensorSpec::new("x", DataType::Fp64, vec![Dim::Dynamic])],
                outputs: vec![TensorSpec::new("y", DataType::Int64, vec![Dim::Dynamic])],
            },
        }
    }

    /// One row of `x`.
    pub(crate) fn row(value: f64) -> Vec<Tensor> {
        vec![Tensor::new("x", vec![1], TensorData::Fp64(vec![value])).expect("tensor")]
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let options = MonitorOptions {
            queue_capacity: 2,
            tick: Duration::from_secs(3600),
            ..MonitorOptions::default()
        };
        let monitor = Monitor::start(options, None);
        monitor.sync_model("m", vec![("1".into(), spec(10_000))]);
        let watch = monitor.watch("m", "1").expect("watched");
        // The monitor sleeps between drains: a burst overflows two slots.
        for i in 0..1000 {
            watch.observe(row(f64::from(i)), &[], RequestKeys::default());
        }
        let dropped = watch.report().dropped_requests;
        assert!(dropped > 0, "nothing was dropped");
        // Feedback drains the queue first: every observation is accounted for.
        let feedback =
            Feedback::from_json(&json!([{"request_id": "x", "label": 1}])).expect("valid");
        monitor
            .feedback("m", Arc::from("ip:1"), feedback)
            .await
            .expect("answered");
        let report = watch.report();
        assert_eq!(report.observed_requests + report.dropped_requests, 1000);
        assert_eq!(report.open_window.rows as u64, report.observed_requests);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_window_with_enough_rows_closes_on_time() {
        let options = MonitorOptions {
            tick: Duration::from_millis(20),
            ..MonitorOptions::default()
        };
        let monitor = Monitor::start(options, None);
        let mut spec = spec(100);
        spec.policy.window_seconds = 1;
        spec.policy.min_rows = 3;
        monitor.sync_model("m", vec![("1".into(), spec)]);
        let watch = monitor.watch("m", "1").expect("watched");
        for i in 0..3 {
            watch.observe(row(f64::from(i)), &[], RequestKeys::default());
        }
        for _ in 0..500 {
            if let Some(latest) = watch.report().latest {
                assert_eq!((latest.closed_by, latest.rows), ("time", 3));
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the window never closed on time");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn keys_longer_than_the_limit_are_not_remembered() {
        let monitor = Monitor::start(MonitorOptions::default(), None);
        monitor.sync_model("m", vec![("1".into(), spec(100))]);
        let watch = monitor.watch("m", "1").expect("watched");
        let long = "x".repeat(crate::MAX_KEY_BYTES + 1);
        let keys = RequestKeys {
            request_ids: vec![long.clone(), "short".into()],
            idempotency_key: Some(long.clone()),
            client: Some(Arc::from("ip:1")),
        };
        let output = Tensor::new("y", vec![1], TensorData::Int64(vec![1])).expect("y");
        watch.observe(row(1.0), &[output], keys);
        let feedback = Feedback::from_json(&json!([
            {"request_id": long, "label": 1},
            {"idempotency_key": long, "label": 1},
            {"request_id": "short", "label": 1},
        ]))
        .expect("valid");
        let outcome = monitor
            .feedback("m", Arc::from("ip:1"), feedback)
            .await
            .expect("answered");
        assert_eq!(outcome.accepted, 1);
        assert_eq!(outcome.unknown.len(), 2);
    }

    #[test]
    fn a_panic_in_one_piece_of_work_is_contained() {
        assert_eq!(isolated("adding", || 1 + 1), Some(2));
        assert_eq!(isolated("failing", || -> u8 { panic!("a bug") }), None);
        assert_eq!(isolated("adding again", || 2 + 2), Some(4), "work goes on");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unchanged_specs_keep_their_figures() {
        let monitor = Monitor::start(MonitorOptions::default(), None);
        monitor.sync_model("m", vec![("1".into(), spec(100))]);
        let first = monitor.watch("m", "1").expect("watched");
        monitor.sync_model("m", vec![("1".into(), spec(100))]);
        assert!(Arc::ptr_eq(
            &first,
            &monitor.watch("m", "1").expect("watched")
        ));
        monitor.sync_model("m", vec![("1".into(), spec(50))]);
        assert!(!Arc::ptr_eq(
            &first,
            &monitor.watch("m", "1").expect("watched")
        ));
        monitor.sync_model("m", Vec::new());
        assert!(monitor.watch("m", "1").is_none());
        assert!(monitor.report("m").is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn windows_close_and_feedback_finds_its_prediction() {
        let monitor = Monitor::start(MonitorOptions::default(), None);
        monitor.sync_model("m", vec![("1".into(), spec(10))]);
        let watch = monitor.watch("m", "1").expect("watched");
        for i in 0..10 {
            let keys = RequestKeys {
                request_ids: vec![format!("r{i}")],
                idempotency_key: None,
                client: Some(Arc::from("ip:1")),
            };
            let output = Tensor::new("y", vec![1], TensorData::Int64(vec![i % 2])).expect("y");
            watch.observe(row(i as f64), &[output], keys);
        }
        let feedback = Feedback::from_json(&json!({"feedback": [
            {"request_id": "r0", "label": 0},
            {"request_id": "r1", "label": 0},
            {"request_id": "r9", "labels": [1, 1]},
            {"request_id": "zz", "label": 1},
        ]}))
        .expect("valid");
        // Another client neither labels nor learns of these predictions.
        let other = monitor
            .feedback("m", Arc::from("ip:2"), feedback.clone())
            .await
            .expect("answered");
        assert_eq!(other.accepted, 0);
        assert_eq!(other.unknown, vec!["r0", "r1", "r9", "zz"]);
        let outcome = monitor
            .feedback("m", Arc::from("ip:1"), feedback)
            .await
            .expect("applied");
        assert_eq!(outcome.accepted, 2);
        assert_eq!(outcome.unknown, vec!["zz".to_string()]);
        assert_eq!(outcome.rejected.len(), 1, "{:?}", outcome.rejected);
        assert!(outcome.rejected[0].reason.contains("1 rows but 2 labels"));
        assert_eq!(outcome.quality["1"].accuracy, Some(0.5));
        let again = Feedback::from_json(&json!([{"request_id": "r0", "label": 1}])).expect("valid");
        let outcome = monitor
            .feedback("m", Arc::from("ip:1"), again.clone())
            .await
            .expect("answered");
        assert_eq!(outcome.accepted, 0);
        assert_eq!(outcome.already_labeled, vec!["r0".to_string()]);
        assert!(outcome.unknown.is_empty(), "{:?}", outcome.unknown);
        let outcome = monitor
            .feedback("m", Arc::from("ip:2"), again)
            .await
            .expect("answered");
        assert_eq!(
            outcome.unknown,
            vec!["r0".to_string()],
            "not told it exists"
        );
        let report = monitor.report("m").expect("watched");
        let version = &report.versions[0];
        assert_eq!(version.windows_closed, 1, "10 rows close a window of 10");
        let latest = version.latest.as_ref().expect("closed window");
        assert!(latest.features[0].psi.expect("psi") < 1e-9, "{latest:?}");
    }
}
