//! Per-version request counters and latency histograms, with label sets built
//! once per (protocol, status code, variant) instead of once per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram};

use ferroserve_core::telemetry;

/// Counter and histogram of one (protocol, status code, variant).
type Handles = (Counter, Histogram);

/// What the handles of one label set are found by.
type HandleKey = (&'static str, u16, Option<Arc<str>>);

/// Request metrics of one model version.
pub struct RequestMetrics {
    model: String,
    version: String,
    handles: RwLock<HashMap<HandleKey, Handles>>,
}

impl RequestMetrics {
    /// Metrics labelled with `model` and `version`.
    pub fn new(model: &str, version: &str) -> Self {
        RequestMetrics {
            model: model.to_string(),
            version: version.to_string(),
            handles: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one answered request and its duration; `variant` (the split
    /// or rollout arm that chose this version) adds a `variant` label.
    pub fn record(
        &self,
        protocol: &'static str,
        code: u16,
        elapsed: Duration,
        variant: Option<&Arc<str>>,
    ) {
        let key = (protocol, code, variant.cloned());
        let found = self
            .handles
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        let (counter, histogram) = match found {
            Some(handles) => handles,
            None => {
                let handles = self.handles_for(protocol, code, variant);
                if let Ok(mut map) = self.handles.write() {
                    map.insert(key, handles.clone());
                }
                handles
            }
        };
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    }

    /// Registers the counter and histogram of one label set.
    fn handles_for(
        &self,
        protocol: &'static str,
        code: u16,
        variant: Option<&Arc<str>>,
    ) -> Handles {
        let mut counter_labels = vec![
            metrics::Label::new("model", self.model.clone()),
            metrics::Label::new("version", self.version.clone()),
            metrics::Label::new("protocol", protocol),
        ];
        if let Some(variant) = variant {
            counter_labels.push(metrics::Label::new("variant", variant.to_string()));
        }
        let histogram_labels = counter_labels.clone();
        counter_labels.push(metrics::Label::new("code", code.to_string()));
        (
            metrics::counter!(telemetry::REQUESTS_TOTAL, counter_labels),
            metrics::histogram!(telemetry::REQUEST_DURATION, histogram_labels),
        )
    }
}
