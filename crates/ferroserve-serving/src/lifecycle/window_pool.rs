//! The monitor's window pool in the registry: on a PostgreSQL registry the
//! replicas pool their monitoring windows there, and the registry's leader
//! closes them, so drift and its alerts cover the whole service once.

use std::sync::Arc;

use ferroserve_monitor::pool::{PoolFuture, PooledWindow, TakenWindow, WindowPool};
use ferroserve_registry::{DbKind, Leadership, PoolWindow, Registry};

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

impl WindowPool for RegistryWindowPool {
    fn leads(&self) -> bool {
        self.leadership.is_leader()
    }

    fn add(
        &self,
        model: &str,
        version: &str,
        rows: u64,
        part: serde_json::Value,
    ) -> PoolFuture<()> {
        let registry = self.registry.clone();
        let (model, version, replica) =
            (model.to_owned(), version.to_owned(), self.replica.clone());
        Box::pin(async move {
            registry
                .add_window_part(&model, &version, &replica, rows, &part)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn open(&self, model: &str, version: &str) -> PoolFuture<PooledWindow> {
        let registry = self.registry.clone();
        let (model, version) = (model.to_owned(), version.to_owned());
        Box::pin(async move {
            let window = registry
                .pooled_window(&model, &version)
                .await
                .map_err(|e| e.to_string())?;
            Ok(PooledWindow {
                rows: window.rows,
                opened_at_ms: u64::try_from(window.opened_at).unwrap_or(0),
                closed: window.closed,
            })
        })
    }

    fn publish(&self, model: &str, version: &str, report: serde_json::Value) -> PoolFuture<()> {
        let registry = self.registry.clone();
        let (model, version) = (model.to_owned(), version.to_owned());
        Box::pin(async move {
            registry
                .publish_window_report(&model, &version, &report)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn published(&self, model: &str, version: &str) -> PoolFuture<Option<serde_json::Value>> {
        let registry = self.registry.clone();
        let (model, version) = (model.to_owned(), version.to_owned());
        Box::pin(async move {
            registry
                .window_report(&model, &version)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn take(
        &self,
        model: &str,
        version: &str,
        seen: PooledWindow,
    ) -> PoolFuture<Option<TakenWindow>> {
        let registry = self.registry.clone();
        let (model, version) = (model.to_owned(), version.to_owned());
        Box::pin(async move {
            let seen = PoolWindow {
                rows: seen.rows,
                opened_at: i64::try_from(seen.opened_at_ms).unwrap_or(i64::MAX),
                closed: seen.closed,
            };
            let taken = registry
                .take_window_parts(&model, &version, seen)
                .await
                .map_err(|e| e.to_string())?;
            Ok(taken.map(|taken| TakenWindow {
                parts: taken.parts,
                index: taken.index,
                opened_at_ms: u64::try_from(taken.opened_at).unwrap_or(0),
            }))
        })
    }
}
