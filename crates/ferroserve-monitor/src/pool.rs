//! Windows over the whole service. When several replicas serve a model,
//! each hands the rows it took in over to a shared pool every second (a
//! part: its values and counts since the last hand-over), and one replica,
//! the leader, closes the service's window from every part once it holds
//! enough rows or is old enough: drift is computed over all the traffic,
//! however it is spread, and an alert fires once for the service, not
//! once per replica. Predictions awaiting feedback are pooled the same
//! way, so that feedback through any replica labels them, and the leader
//! keeps each version's online quality from every label (see
//! `pooled_feedback`). The pool itself (PostgreSQL in a server) is behind
//! [`WindowPool`], so this crate stays free of storage.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::hub::{dispatch, Monitor};
use super::quality::Outcome;
use super::watch::{now_ms, Watch};

/// A boxed future of the pool, returning `Err(message)` on failure.
pub type PoolFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// How often parts are handed over and due windows closed.
pub const POOL_EVERY: Duration = Duration::from_secs(1);

/// The service's open window of one version, as the pool holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PooledWindow {
    /// Rows in the parts pooled so far.
    pub rows: u64,
    /// When the window opened (unix ms).
    pub opened_at_ms: u64,
    /// Windows of the version closed before it.
    pub closed: u64,
}

/// A window taken out of the pool to be closed.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenWindow {
    /// Its parts, as [`WindowPool::add`] received them.
    pub parts: Vec<serde_json::Value>,
    /// Its number (1 for the version's first window).
    pub index: u64,
    /// When it opened (unix ms).
    pub opened_at_ms: u64,
}

/// A served prediction under one of the keys feedback can name it by, as
/// the replica that served it hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledPrediction {
    /// The key: `r:` and a request id, or `k:` and an idempotency key.
    pub key: String,
    /// The prediction's id, shared by all its keys.
    pub prediction: String,
    /// The version that answered.
    pub version: String,
    /// The client that made the request.
    pub client: Option<String>,
    /// What the version predicted, one outcome per row (JSON).
    pub outcomes: serde_json::Value,
}

/// Labels that a feedback call gives predictions of one version.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledLabels {
    /// The version.
    pub version: String,
    /// Ids of the labeled predictions.
    pub predictions: Vec<String>,
    /// The (predicted, true) pairs, in order (JSON).
    pub pairs: serde_json::Value,
}

/// Where the replicas of a service pool their windows, and the
/// predictions waiting for feedback with the labels it gives them.
pub trait WindowPool: Send + Sync {
    /// Whether this replica closes the windows (it leads).
    fn leads(&self) -> bool;
    /// Adds a part of `rows` rows to the open window of `model` `version`.
    fn add(&self, model: &str, version: &str, rows: u64, part: serde_json::Value)
        -> PoolFuture<()>;
    /// The open window of `model` `version` (opened now if there was none).
    fn open(&self, model: &str, version: &str) -> PoolFuture<PooledWindow>;
    /// Takes the parts of the open window of `model` `version`, as `seen`
    /// by [`WindowPool::open`], and opens the next one; `None` when another
    /// replica closed it meanwhile.
    fn take(
        &self,
        model: &str,
        version: &str,
        seen: PooledWindow,
    ) -> PoolFuture<Option<TakenWindow>>;
    /// Keeps the leader's `report` of `model` `version` (a
    /// [`VersionDrift`](crate::VersionDrift) as JSON) after it closed a
    /// window, for every replica to answer drift reads with.
    fn publish(&self, model: &str, version: &str, report: serde_json::Value) -> PoolFuture<()>;
    /// The report last published for `model` `version`, if any.
    fn published(&self, model: &str, version: &str) -> PoolFuture<Option<serde_json::Value>>;
    /// Keeps served predictions of `model` for feedback through any
    /// replica; a key used before now names the newer prediction.
    fn add_predictions(&self, model: &str, predictions: Vec<PooledPrediction>) -> PoolFuture<()>;
    /// The predictions of `model` kept under `keys` since `since_ms`, each
    /// with whether it is labeled already.
    fn find_predictions(
        &self,
        model: &str,
        keys: Vec<String>,
        since_ms: u64,
    ) -> PoolFuture<Vec<(PooledPrediction, bool)>>;
    /// Labels predictions and keeps their pairs for the leader, all or
    /// nothing: returns the ids of the predictions that were labeled
    /// already or are gone (then nothing was written), or an empty list.
    fn label(&self, model: &str, labels: Vec<PooledLabels>) -> PoolFuture<Vec<String>>;
    /// Takes the labeled pairs of `model` `version` kept so far, oldest
    /// first, as [`PooledLabels::pairs`] gave them.
    fn take_labels(&self, model: &str, version: &str) -> PoolFuture<Vec<serde_json::Value>>;
    /// Forgets predictions and labels kept before `before_ms`, then the
    /// oldest predictions past the newest `keep` keys.
    fn expire_predictions(&self, before_ms: u64, keep: u64) -> PoolFuture<()>;
}

/// Every how many hand-overs the leader forgets predictions past their
/// time for feedback or past the number kept.
const EXPIRE_EVERY: u64 = 10;

impl Monitor {
    /// Pools this replica's windows and predictions in `pool` from now on:
    /// every [`POOL_EVERY`], each watch hands its rows over, and so do the
    /// predictions served since; while this replica leads, due windows are
    /// closed from every replica's parts and the labels feedback gave
    /// through any replica are added to the quality windows. Feedback
    /// calls look predictions up in the pool. Runs until the monitor is
    /// dropped.
    pub fn pool_windows(
        self: &Arc<Self>,
        pool: Arc<dyn WindowPool>,
    ) -> tokio::task::JoinHandle<()> {
        if self.shared.pool.set(pool.clone()).is_err() {
            tracing::warn!("the monitor's windows are pooled already; the second pool is ignored");
        }
        self.shared.pooled.store(true, Ordering::Relaxed);
        let monitor = Arc::downgrade(self);
        self.shared.runtime.spawn(async move {
            let mut ticks = tokio::time::interval(POOL_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for tick in 1u64.. {
                ticks.tick().await;
                let Some(monitor) = monitor.upgrade() else {
                    return;
                };
                monitor.pool_once(pool.as_ref()).await;
                if tick % EXPIRE_EVERY == 0 && pool.leads() {
                    monitor.expire_predictions(pool.as_ref()).await;
                }
            }
        })
    }

    /// One hand-over of every watch's part and of the predictions served
    /// since the last, then (on the leader) the closing of due windows and
    /// the adding of labels, or (on the others) the reading of the
    /// leader's reports.
    pub(crate) async fn pool_once(&self, pool: &dyn WindowPool) {
        if let Err(e) = self.hand_over_predictions(pool).await {
            tracing::warn!(error = %e, "cannot pool the predictions served here; they wait for the next hand-over");
        }
        let watches: Vec<_> = self
            .shared
            .watches
            .load()
            .values()
            .flat_map(|versions| versions.values().cloned())
            .filter(|watch| watch.computes_drift() || watch.computes_quality())
            .collect();
        for watch in &watches {
            let (model, version) = (watch.model(), watch.version());
            if let Some((rows, part)) = watch.take_part() {
                if let Err(e) = pool.add(model, version, rows, part.clone()).await {
                    tracing::warn!(%model, %version, error = %e, "cannot pool this replica's window rows; they wait for the next hand-over");
                    watch.restore_part(part);
                }
            }
        }
        if !pool.leads() {
            for watch in &watches {
                match pool.published(watch.model(), watch.version()).await {
                    Ok(report) => watch.set_service_report(report),
                    Err(e) => {
                        tracing::debug!(model = %watch.model(), error = %e, "cannot read the service's monitoring report")
                    }
                }
            }
            return;
        }
        for watch in &watches {
            let closed = self.close_pooled_window(pool, watch).await;
            let labeled = self.add_pooled_labels(pool, watch).await;
            if closed || labeled {
                let (model, version) = (watch.model(), watch.version());
                let report = serde_json::to_value(watch.report()).unwrap_or_default();
                if let Err(e) = pool.publish(model, version, report).await {
                    tracing::warn!(%model, %version, error = %e, "cannot publish the service's monitoring report");
                }
            }
        }
    }

    /// Closes the service's window of `watch` when it is due (on the
    /// leader); whether it closed one.
    async fn close_pooled_window(&self, pool: &dyn WindowPool, watch: &Arc<Watch>) -> bool {
        if !watch.computes_drift() {
            return false;
        }
        let (model, version) = (watch.model(), watch.version());
        let closed = async {
            let open = pool.open(model, version).await?;
            let Some(closed_by) = watch.pooled_due(open.rows, open.opened_at_ms) else {
                return Ok(None);
            };
            let taken = pool.take(model, version, open).await?;
            Ok::<_, String>(taken.map(|taken| (taken, closed_by)))
        };
        match closed.await {
            Ok(Some((taken, closed_by))) => {
                let fired =
                    watch.close_pooled(taken.parts, taken.index, taken.opened_at_ms, closed_by);
                dispatch(&self.shared, watch, fired);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(%model, %version, error = %e, "cannot close the service's window; trying again in a second");
                false
            }
        }
    }

    /// Adds the labels feedback gave through any replica to the quality
    /// window of `watch` (on the leader); whether there were any.
    async fn add_pooled_labels(&self, pool: &dyn WindowPool, watch: &Arc<Watch>) -> bool {
        if !watch.computes_quality() {
            return false;
        }
        let (model, version) = (watch.model(), watch.version());
        let taken = match pool.take_labels(model, version).await {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(%model, %version, error = %e, "cannot take the service's labels; trying again in a second");
                return false;
            }
        };
        for pairs in &taken {
            let added = serde_json::from_value::<Vec<(Outcome, Outcome)>>(pairs.clone())
                .map_err(|e| e.to_string())
                .and_then(|pairs| watch.label(&pairs));
            match added {
                Ok((_, fired)) => dispatch(&self.shared, watch, fired),
                Err(e) => {
                    tracing::warn!(%model, %version, error = %e, "labels given through another replica were left out")
                }
            }
        }
        !taken.is_empty()
    }

    /// Forgets pooled predictions past their time for feedback, and the
    /// oldest past `max_pending` keys for the service (on the leader).
    async fn expire_predictions(&self, pool: &dyn WindowPool) {
        let ttl_ms = u64::try_from(self.shared.feedback_ttl.as_millis()).unwrap_or(u64::MAX);
        let keep = self.shared.max_pending as u64;
        if let Err(e) = pool
            .expire_predictions(now_ms().saturating_sub(ttl_ms), keep)
            .await
        {
            tracing::warn!(error = %e, "cannot forget the predictions past their time for feedback");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hub::MonitorOptions;
    use crate::watch::RequestKeys;
    use crate::{AlertRule, WatchSpec};
    use std::collections::HashMap;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// A pool in this process's memory, shared by the monitors of a test
    /// as replicas share the registry's.
    #[derive(Default)]
    pub(crate) struct MemoryPool {
        parts: Mutex<Vec<(u64, serde_json::Value)>>,
        window: Mutex<PooledWindow>,
        report: Mutex<Option<serde_json::Value>>,
        /// Predictions by key, each with whether it is labeled.
        pub(crate) predictions: Mutex<HashMap<String, (PooledPrediction, bool)>>,
        labels: Mutex<Vec<(String, serde_json::Value)>>,
        pub(crate) failing: AtomicBool,
    }

    /// One replica's view of a [`MemoryPool`].
    pub(crate) struct Replica {
        pub(crate) pool: Arc<MemoryPool>,
        pub(crate) leads: bool,
    }

    impl MemoryPool {
        fn check(&self) -> Result<(), String> {
            if self.failing.load(Ordering::Relaxed) {
                return Err("the pool is down".to_owned());
            }
            Ok(())
        }
    }

    impl WindowPool for Replica {
        fn leads(&self) -> bool {
            self.leads
        }

        fn add(&self, _: &str, _: &str, rows: u64, part: serde_json::Value) -> PoolFuture<()> {
            let pool = self.pool.clone();
            Box::pin(async move {
                pool.check()?;
                pool.parts.lock().expect("parts").push((rows, part));
                Ok(())
            })
        }

        fn add_predictions(&self, _: &str, predictions: Vec<PooledPrediction>) -> PoolFuture<()> {
            let pool = self.pool.clone();
            Box::pin(async move {
                pool.check()?;
                let mut kept = pool.predictions.lock().expect("predictions");
                for p in predictions {
                    kept.insert(p.key.clone(), (p, false));
                }
                Ok(())
            })
        }

        fn find_predictions(
            &self,
            _: &str,
            keys: Vec<String>,
            _: u64,
        ) -> PoolFuture<Vec<(PooledPrediction, bool)>> {
            let pool = self.pool.clone();
            Box::pin(async move {
                pool.check()?;
                let kept = pool.predictions.lock().expect("predictions");
                Ok(keys.iter().filter_map(|k| kept.get(k).cloned()).collect())
            })
        }

        fn label(&self, _: &str, labels: Vec<PooledLabels>) -> PoolFuture<Vec<String>> {
            let pool = self.pool.clone();
            Box::pin(async move {
                pool.check()?;
                let mut kept = pool.predictions.lock().expect("predictions");
                let ids: Vec<&String> = labels.iter().flat_map(|l| &l.predictions).collect();
                let lost: Vec<String> = ids
                    .iter()
                    .filter(|id| {
                        !kept
                            .values()
                            .any(|(p, labeled)| &&p.prediction == *id && !labeled)
                    })
                    .map(|id| (*id).clone())
                    .collect();
                if !lost.is_empty() {
                    return Ok(lost);
                }
                for (p, labeled) in kept.values_mut() {
                    *labeled |= ids.contains(&&p.prediction);
                }
                let mut waiting = pool.labels.lock().expect("labels");
                waiting.extend(labels.into_iter().map(|l| (l.version, l.pairs)));
                Ok(Vec::new())
            })
        }

        fn take_labels(&self, _: &str, version: &str) -> PoolFuture<Vec<serde_json::Value>> {
            let pool = self.pool.clone();
            let version = version.to_owned();
            Box::pin(async move {
                let mut waiting = pool.labels.lock().expect("labels");
                let (taken, kept) = std::mem::take(&mut *waiting)
                    .into_iter()
                    .partition::<Vec<_>, _>(|(v, _)| *v == version);
                *waiting = kept;
                Ok(taken.into_iter().map(|(_, pairs)| pairs).collect())
            })
        }

        fn expire_predictions(&self, _: u64, _: u64) -> PoolFuture<()> {
            Box::pin(async { Ok(()) })
        }

        fn open(&self, _: &str, _: &str) -> PoolFuture<PooledWindow> {
            let pool = self.pool.clone();
            Box::pin(async move {
                let rows = pool.parts.lock().expect("parts").iter().map(|p| p.0).sum();
                Ok(PooledWindow {
                    rows,
                    ..*pool.window.lock().expect("window")
                })
            })
        }

        fn publish(&self, _: &str, _: &str, report: serde_json::Value) -> PoolFuture<()> {
            let pool = self.pool.clone();
            Box::pin(async move {
                *pool.report.lock().expect("report") = Some(report);
                Ok(())
            })
        }

        fn published(&self, _: &str, _: &str) -> PoolFuture<Option<serde_json::Value>> {
            let pool = self.pool.clone();
            Box::pin(async move { Ok(pool.report.lock().expect("report").clone()) })
        }

        fn take(&self, _: &str, _: &str, seen: PooledWindow) -> PoolFuture<Option<TakenWindow>> {
            let pool = self.pool.clone();
            Box::pin(async move {
                let mut window = pool.window.lock().expect("window");
                if window.closed != seen.closed {
                    return Ok(None);
                }
                window.closed += 1;
                let parts = std::mem::take(&mut *pool.parts.lock().expect("parts"));
                Ok(Some(TakenWindow {
                    parts: parts.into_iter().map(|p| p.1).collect(),
                    index: window.closed,
                    opened_at_ms: seen.opened_at_ms,
                }))
            })
        }
    }

    /// A watch of `x` against the reference 0..10, alerting on a PSI above
    /// 0.25 in one window of 20 rows.
    fn spec() -> WatchSpec {
        let mut spec = crate::hub::tests::spec(20);
        spec.policy.alerts = vec![AlertRule::FeaturePsi {
            above: 0.25,
            windows: 1,
        }];
        spec
    }

    fn observe(monitor: &Monitor, values: impl Iterator<Item = f64>) {
        let watch = monitor.watch("m", "1").expect("watched");
        for value in values {
            watch.observe(crate::hub::tests::row(value), &[], RequestKeys::default());
        }
    }

    /// Waits until the monitor thread took in `rows` rows.
    async fn taken_in(monitor: &Monitor, rows: usize) {
        let watch = monitor.watch("m", "1").expect("watched");
        for _ in 0..1000 {
            if watch.report().open_window.rows >= rows {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the monitor never took in {rows} rows");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_fill_one_window_that_only_the_leader_closes_and_alerts_once() {
        let pool = Arc::new(MemoryPool::default());
        let replicas: Vec<(Arc<Monitor>, Replica)> = [true, false]
            .into_iter()
            .map(|leads| {
                let monitor = Monitor::start(MonitorOptions::default(), None);
                monitor.shared.pooled.store(true, Ordering::Relaxed);
                monitor.sync_model("m", vec![("1".into(), spec())]);
                let replica = Replica {
                    pool: pool.clone(),
                    leads,
                };
                (monitor, replica)
            })
            .collect();
        let (leader, follower) = (&replicas[0], &replicas[1]);

        // Shifted values, 12 through the leader and 12 through the other:
        // neither alone fills a window of 20, and neither closes one.
        observe(&leader.0, (0..12).map(|i| f64::from(i) + 50.0));
        observe(&follower.0, (0..12).map(|i| f64::from(i) + 50.0));
        taken_in(&leader.0, 12).await;
        taken_in(&follower.0, 12).await;
        // The pool is down for the follower's first hand-over: its rows
        // wait for the next one.
        pool.failing.store(true, Ordering::Relaxed);
        follower.0.pool_once(&follower.1).await;
        pool.failing.store(false, Ordering::Relaxed);
        leader.0.pool_once(&leader.1).await;
        let watch = |m: &Monitor| m.watch("m", "1").expect("watched").report();
        assert_eq!(
            watch(&leader.0).windows_closed,
            0,
            "12 rows are not a window"
        );
        follower.0.pool_once(&follower.1).await;
        follower.0.pool_once(&follower.1).await;
        assert_eq!(
            watch(&follower.0).windows_closed,
            0,
            "only the leader closes"
        );
        leader.0.pool_once(&leader.1).await;

        let closed = watch(&leader.0);
        assert_eq!(closed.windows_closed, 1);
        let latest = closed.latest.expect("a closed window");
        assert_eq!(
            (latest.index, latest.rows, latest.closed_by),
            (1, 24, "rows")
        );
        assert_eq!(closed.alerts.iter().map(|a| a.fired).sum::<u64>(), 1);
        assert_eq!(
            watch(&follower.0)
                .alerts
                .iter()
                .map(|a| a.fired)
                .sum::<u64>(),
            0
        );
        assert!(pool.parts.lock().expect("parts").is_empty());

        // The other replica answers drift reads with the service's windows.
        follower.0.pool_once(&follower.1).await;
        let seen = follower.0.report_json("m").expect("watched");
        assert_eq!(seen["versions"][0]["windows_closed"], 1, "{seen:#}");
        assert_eq!(seen["versions"][0]["latest"]["rows"], 24, "{seen:#}");
        assert_eq!(seen["versions"][0]["alerts"][0]["fired"], 1, "{seen:#}");
        assert_eq!(
            leader.0.report_json("m").expect("watched")["versions"][0]["windows_closed"],
            1
        );
    }
}
