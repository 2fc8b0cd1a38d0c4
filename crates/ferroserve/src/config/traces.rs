//! The `[traces]` section: where OpenTelemetry traces are exported (OTLP
//! over gRPC) and which share of new traces is kept.

use anyhow::bail;
use clap::Args;
use serde::{Deserialize, Serialize};

/// The `[traces]` section. Without an endpoint no span is exported and
/// tracing costs the request path nothing.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct TracesSettings {
    /// OTLP/gRPC collector to export traces to, e.g. http://127.0.0.1:4317 (plain http: a local collector or agent) [default: none, no traces].
    #[arg(long = "otlp-endpoint", env = "FERROSERVE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces kept, 0 to 1; a request whose `traceparent` says sampled (or not) follows its caller [default: 1].
    #[arg(long = "otlp-sample-ratio", env = "FERROSERVE_OTLP_SAMPLE_RATIO")]
    pub otlp_sample_ratio: f64,
}

impl Default for TracesSettings {
    fn default() -> Self {
        TracesSettings {
            otlp_endpoint: None,
            otlp_sample_ratio: 1.0,
        }
    }
}

/// What the logging setup needs to export traces.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpExport {
    /// The collector's URL.
    pub endpoint: String,
    /// Share of new traces kept.
    pub sample_ratio: f64,
}

impl TracesSettings {
    /// Refuses an endpoint that is not an http URL and a ratio outside
    /// 0..=1, naming the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        let ratio = self.otlp_sample_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            bail!("traces.otlp_sample_ratio (--otlp-sample-ratio) must be between 0 and 1, got {ratio}");
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            // The exporter is built without TLS: a collector on the same
            // host or pod (an agent or sidecar) forwards the traces on.
            let host = endpoint.strip_prefix("http://").unwrap_or_default();
            if host.is_empty() {
                bail!(
                    "traces.otlp_endpoint (--otlp-endpoint) must be an http:// URL of an OTLP/gRPC collector, e.g. http://127.0.0.1:4317 (https is not supported: send to a local collector); got '{endpoint}'"
                );
            }
        }
        Ok(())
    }

    /// The export to set up; `None` when no endpoint is configured.
    pub fn export(&self) -> Option<OtlpExport> {
        self.otlp_endpoint.as_ref().map(|endpoint| OtlpExport {
            endpoint: endpoint.clone(),
            sample_ratio: self.otlp_sample_ratio,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config_file, load};

    #[test]
    fn traces_are_off_by_default_and_layered_like_other_settings() {
        let defaults = load(&[]).expect("defaults");
        assert_eq!(defaults.traces.export(), None);
        assert_eq!(defaults.traces.otlp_sample_ratio, 1.0);

        let (_dir, file) = config_file(
            "[traces]\notlp_endpoint = \"http://collector:4317\"\notlp_sample_ratio = 0.25\n",
        );
        let config = load(&["--config", &file]).expect("valid");
        let export = config.traces.export().expect("configured");
        assert_eq!(export.endpoint, "http://collector:4317");
        assert_eq!(export.sample_ratio, 0.25);

        let config = load(&["--config", &file, "--otlp-sample-ratio", "0.5"]).expect("valid");
        let export = config.traces.export().expect("configured");
        assert_eq!(export.endpoint, "http://collector:4317");
        assert_eq!(export.sample_ratio, 0.5);
    }

    #[test]
    fn bad_endpoints_and_ratios_are_explained() {
        for (argv, words) in [
            (
                &["--otlp-sample-ratio", "1.5"][..],
                "otlp_sample_ratio (--otlp-sample-ratio) must be between 0 and 1, got 1.5",
            ),
            (&["--otlp-sample-ratio=-0.1"][..], "got -0.1"),
            (&["--otlp-sample-ratio", "NaN"][..], "got NaN"),
            (
                &["--otlp-endpoint", "collector:4317"][..],
                "must be an http:// URL",
            ),
            (
                &["--otlp-endpoint", "https://collector:4317"][..],
                "https is not supported",
            ),
            (&["--otlp-endpoint", "http://"][..], "got 'http://'"),
        ] {
            let err = format!("{:#}", load(argv).unwrap_err());
            assert!(err.contains(words), "{argv:?}: {err}");
        }
    }
}
