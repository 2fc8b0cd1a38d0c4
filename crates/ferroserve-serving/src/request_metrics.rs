//! Per-version request counters and latency histograms, with label sets built
//! once per (protocol, status code) instead of once per request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use metrics::{Counter, Histogram};

use ferroserve_core::telemetry;

/// Counter and histogram of one (protocol, status code) pair.
type Handles = (Counter, Histogram);

/// Request metrics of one model version.
pub struct RequestMetrics {
    model: String,
    version: String,
    handles: RwLock<HashMap<(&'static str, u16), Handles>>,
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

    /// Counts one answered request and its duration.
    pub fn record(&self, protocol: &'static str, code: u16, elapsed: Duration) {
        let key = (protocol, code);
        let found = self
            .handles
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        let (counter, histogram) = match found {
            Some(handles) => handles,
            None => {
                let handles = (
                    metrics::counter!(telemetry::REQUESTS_TOTAL, "model" => self.model.clone(),
                        "version" => self.version.clone(), "protocol" => protocol, "code" => code.to_string()),
                    metrics::histogram!(telemetry::REQUEST_DURATION, "model" => self.model.clone(),
                        "version" => self.version.clone(), "protocol" => protocol),
                );
                if let Ok(mut map) = self.handles.write() {
                    map.insert(key, handles.clone());
                }
                handles
            }
        };
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    }
}
