//! What a watched version reports (`GET /api/v1/models/{m}/drift`): its
//! open window, closed windows in brief and in full, contract violations,
//! online quality and alert rules.

use std::collections::BTreeMap;

use serde::Serialize;

use super::alerts::{Alert, RuleStatus};
use super::quality::QualityReport;
use super::window::WindowReport;

/// The window being filled.
#[derive(Debug, Clone, Serialize)]
pub struct OpenWindow {
    /// Rows so far.
    pub rows: usize,
    /// When it opened, in milliseconds since the Unix epoch.
    pub opened_at_ms: u64,
}

/// One closed window in brief.
#[derive(Debug, Clone, Serialize)]
pub struct WindowSummary {
    /// Window number.
    pub index: u64,
    /// Rows.
    pub rows: usize,
    /// When it closed.
    pub closed_at_ms: u64,
    /// Largest feature PSI.
    pub max_psi: Option<f64>,
    /// Each feature's PSI, for the features that had values.
    pub feature_psi: BTreeMap<String, f64>,
    /// Share of drifted features.
    pub drift_share: f64,
    /// Whether the dataset drifted.
    pub dataset_drift: bool,
}

impl WindowSummary {
    pub(crate) fn of(report: &WindowReport) -> Self {
        WindowSummary {
            index: report.index,
            rows: report.rows,
            closed_at_ms: report.closed_at_ms,
            max_psi: report.max_feature_psi().map(|(_, psi)| psi),
            feature_psi: report
                .features
                .iter()
                .filter_map(|f| f.psi.map(|psi| (f.name.clone(), psi)))
                .collect(),
            drift_share: report.drift_share,
            dataset_drift: report.dataset_drift,
        }
    }
}

/// Monitoring figures of one version, as `GET /api/v1/models/{m}/drift` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct VersionDrift {
    /// Version label.
    pub version: String,
    /// Monitored features, in profile (or schema) order.
    pub features: Vec<String>,
    /// Why part of the monitoring is off, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Rows per window.
    pub window_rows: usize,
    /// Seconds per window.
    pub window_seconds: u64,
    /// Requests the monitor took in.
    pub observed_requests: u64,
    /// Requests not observed: over the rows-per-second budget.
    pub skipped_requests: u64,
    /// Requests not observed because the monitor fell behind.
    pub dropped_requests: u64,
    /// The window being filled.
    pub open_window: OpenWindow,
    /// Windows closed so far.
    pub windows_closed: u64,
    /// The last closed window, per feature and overall.
    pub latest: Option<WindowReport>,
    /// Recent closed windows in brief, oldest first.
    pub history: Vec<WindowSummary>,
    /// Data contract violations by feature and kind.
    pub contract_violations: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Online quality over the labeled predictions in the window.
    pub quality: Option<QualityReport>,
    /// Rows labeled by feedback so far.
    pub labeled_rows: u64,
    /// Where each alert rule stands.
    pub alerts: Vec<RuleStatus>,
    /// Alerts fired lately, oldest first.
    pub recent_alerts: Vec<Alert>,
}
