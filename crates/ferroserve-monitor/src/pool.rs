//! Windows over the whole service. When several replicas serve a model,
//! each hands the rows it took in over to a shared pool every second (a
//! part: its values and counts since the last hand-over), and one replica,
//! the leader, closes the service's window from every part once it holds
//! enough rows or is old enough: drift is computed over all the traffic,
//! however it is spread, and an alert fires once for the service, not
//! once per replica. The pool itself (PostgreSQL in a server) is behind
//! [`WindowPool`], so this crate stays free of storage.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::hub::{dispatch, Monitor};

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

/// Where the replicas of a service pool their windows.
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
}

impl Monitor {
    /// Pools this replica's windows in `pool` from now on: every
    /// [`POOL_EVERY`], each watch hands its rows over, and while this
    /// replica leads, due windows are closed from every replica's parts.
    /// Runs until the monitor is dropped.
    pub fn pool_windows(
        self: &Arc<Self>,
        pool: Arc<dyn WindowPool>,
    ) -> tokio::task::JoinHandle<()> {
        self.shared.pooled.store(true, Ordering::Relaxed);
        let monitor = Arc::downgrade(self);
        self.shared.runtime.spawn(async move {
            let mut ticks = tokio::time::interval(POOL_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(monitor) = monitor.upgrade() else {
                    return;
                };
                monitor.pool_once(pool.as_ref()).await;
            }
        })
    }

    /// One hand-over of every watch's part, then (on the leader) the
    /// closing of due windows.
    async fn pool_once(&self, pool: &dyn WindowPool) {
        let watches: Vec<_> = self
            .shared
            .watches
            .load()
            .values()
            .flat_map(|versions| versions.values().cloned())
            .filter(|watch| watch.computes_drift())
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
                        tracing::debug!(model = %watch.model(), error = %e, "cannot read the service's drift report")
                    }
                }
            }
            return;
        }
        for watch in &watches {
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
                    let report = serde_json::to_value(watch.report()).unwrap_or_default();
                    if let Err(e) = pool.publish(model, version, report).await {
                        tracing::warn!(%model, %version, error = %e, "cannot publish the service's drift report");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%model, %version, error = %e, "cannot close the service's window; trying again in a second")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::MonitorOptions;
    use crate::watch::RequestKeys;
    use crate::{AlertRule, WatchSpec};
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// A pool in this process's memory, shared by the monitors of a test
    /// as replicas share the registry's.
    #[derive(Default)]
    struct MemoryPool {
        parts: Mutex<Vec<(u64, serde_json::Value)>>,
        window: Mutex<PooledWindow>,
        report: Mutex<Option<serde_json::Value>>,
        failing: AtomicBool,
    }

    /// One replica's view of a [`MemoryPool`].
    struct Replica {
        pool: Arc<MemoryPool>,
        leads: bool,
    }

    impl WindowPool for Replica {
        fn leads(&self) -> bool {
            self.leads
        }

        fn add(&self, _: &str, _: &str, rows: u64, part: serde_json::Value) -> PoolFuture<()> {
            let pool = self.pool.clone();
            Box::pin(async move {
                if pool.failing.load(Ordering::Relaxed) {
                    return Err("the pool is down".to_owned());
                }
                pool.parts.lock().expect("parts").push((rows, part));
                Ok(())
            })
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
