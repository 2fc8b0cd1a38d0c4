//! Monitoring alerts recorded in the registry's audit log: the sink the
//! monitor hands each fired alert to.

use std::sync::Arc;

use ferroserve_monitor::hub::{AlertSink, MONITOR_ACTOR};
use ferroserve_registry::{AuditAction, Registry};

/// An alert sink that records each alert as a `monitor_alert` event of
/// its model (and version) in `registry`'s audit log; a failed write is
/// logged, never retried.
pub fn audit_alerts(registry: Registry) -> AlertSink {
    Arc::new(move |alert, body| {
        let registry = registry.clone();
        let model = alert.model.clone();
        let version = alert.version.parse().ok();
        let body = body.clone();
        Box::pin(async move {
            if let Err(e) = registry
                .record_event(
                    &model,
                    version,
                    AuditAction::MonitorAlert,
                    body,
                    MONITOR_ACTOR,
                )
                .await
            {
                tracing::warn!(model = %model, error = %e, "cannot record the alert in the audit log");
            }
        })
    })
}
