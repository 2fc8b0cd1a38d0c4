//! The monitor's window pool in the registry: on a PostgreSQL registry the
//! replicas pool their monitoring windows and the predictions awaiting
//! feedback there, and the registry's leader closes the windows and adds
//! the labels to the quality windows, so drift, online quality and their
//! alerts cover the whole service once.

use std::sync::Arc;

use ferroserve_monitor::pool::{
    PoolFuture, PooledLabels, PooledPrediction, PooledWindow, TakenWindow, WindowPool,
};
use ferroserve_registry::{
    DbKind, LabelBatch, Leadership, PoolWindow, PredictionKey, Registry, RegistryError,
};

/// Windows pooled in a registry by the replica `replica`.
struct RegistryWindowPool {
    registry: Registry,
    leadership: Leadership,
    replica: String,
}

/// The window pool of `registry` when replicas may share it (PostgreSQL);
/// `None` on SQLite, where one node closes its own windows.
pub fn registry_window_pool(registry: &Registry) -> Option<Arc<dyn WindowPool>> {
    (registry.db_kind() == DbKind::Postgres).then(|| {
        Arc::new(RegistryWindowPool {
            leadership: registry.leadership(),
            registry: registry.clone(),
            replica: uuid::Uuid::new_v4().to_string(),
        }) as Arc<dyn WindowPool>
    })
}

impl RegistryWindowPool {
    /// Runs `work` on the registry (owned by the future), its error as text.
    fn on_registry<T, F>(&self, work: impl FnOnce(Registry) -> F) -> PoolFuture<T>
    where
        F: std::future::Future<Output = Result<T, RegistryError>> + Send + 'static,
    {
        let running = work(self.registry.clone());
        Box::pin(async move { running.await.map_err(|e| e.to_string()) })
    }
}

impl WindowPool for RegistryWindowPool {
    fn leads(&self) -> bool {
        self.leadership.is_leader()
    }

    fn add_predictions(&self, model: &str, predictions: Vec<PooledPrediction>) -> PoolFuture<()> {
        let model = model.to_owned();
        let rows: Vec<PredictionKey> = predictions
            .into_iter()
            .map(|p| PredictionKey {
                key: p.key,
                prediction: p.prediction,
                version: p.version,
                client: p.client,
                outcomes: p.outcomes,
            })
            .collect();
        self.on_registry(|registry| async move { registry.add_predictions(&model, &rows).await })
    }

    fn find_predictions(
        &self,
        model: &str,
        keys: Vec<String>,
        since_ms: u64,
    ) -> PoolFuture<Vec<(PooledPrediction, bool)>> {
        let model = model.to_owned();
        let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
        self.on_registry(|registry| async move {
            let found = registry.find_predictions(&model, &keys, since).await?;
            Ok(found
                .into_iter()
                .map(|f| {
                    let p = f.prediction;
                    let prediction = PooledPrediction {
                        key: p.key,
                        prediction: p.prediction,
                        version: p.version,
                        client: p.client,
                        outcomes: p.outcomes,
                    };
                    (prediction, f.labeled)
                })
                .collect())
        })
    }

    fn label(&self, model: &str, labels: Vec<PooledLabels>) -> PoolFuture<Vec<String>> {
        let model = model.to_owned();
        let batches: Vec<LabelBatch> = labels
            .into_iter()
            .map(|l| LabelBatch {
                version: l.version,
                predictions: l.predictions,
                pairs: l.pairs,
            })
            .collect();
        self.on_registry(
            |registry| async move { registry.label_predictions(&model, &batches).await },
        )
    }

    fn take_labels(&self, model: &str, version: &str) -> PoolFuture<Vec<serde_json::Value>> {
        let (model, version) = (model.to_owned(), version.to_owned());
        self.on_registry(|registry| async move { registry.take_labels(&model, &version).await })
    }

    fn expire_predictions(&self, before_ms: u64, keep: u64) -> PoolFuture<()> {
        let before = i64::try_from(before_ms).unwrap_or(i64::MAX);
        self.on_registry(|registry| async move {
            registry.expire_predictions(before, keep).await.map(|_| ())
        })
    }

    fn add(
        &self,
        model: &str,
        version: &str,
        rows: u64,
        part: serde_json::Value,
    ) -> PoolFuture<()> {
        let (model, version, replica) =
            (model.to_owned(), version.to_owned(), self.replica.clone());
        self.on_registry(|registry| async move {
            registry
                .add_window_part(&model, &version, &replica, rows, &part)
                .await
        })
    }

    fn open(&self, model: &str, version: &str) -> PoolFuture<PooledWindow> {
        let (model, version) = (model.to_owned(), version.to_owned());
        self.on_registry(|registry| async move {
            let window = registry.pooled_window(&model, &version).await?;
            Ok(PooledWindow {
                rows: window.rows,
                opened_at_ms: u64::try_from(window.opened_at).unwrap_or(0),
                closed: window.closed,
            })
        })
    }

    fn publish(&self, model: &str, version: &str, report: serde_json::Value) -> PoolFuture<()> {
        let (model, version) = (model.to_owned(), version.to_owned());
        self.on_registry(|registry| async move {
            registry
                .publish_window_report(&model, &version, &report)
                .await
        })
    }

    fn published(&self, model: &str, version: &str) -> PoolFuture<Option<serde_json::Value>> {
        let (model, version) = (model.to_owned(), version.to_owned());
        self.on_registry(|registry| async move { registry.window_report(&model, &version).await })
    }

    fn take(
        &self,
        model: &str,
        version: &str,
        seen: PooledWindow,
    ) -> PoolFuture<Option<TakenWindow>> {
        let (model, version) = (model.to_owned(), version.to_owned());
        self.on_registry(|registry| async move {
            let seen = PoolWindow {
                rows: seen.rows,
                opened_at: i64::try_from(seen.opened_at_ms).unwrap_or(i64::MAX),
                closed: seen.closed,
            };
            let taken = registry.take_window_parts(&model, &version, seen).await?;
            Ok(taken.map(|taken| TakenWindow {
                parts: taken.parts,
                index: taken.index,
                opened_at_ms: u64::try_from(taken.opened_at).unwrap_or(0),
            }))
        })
    }
}
