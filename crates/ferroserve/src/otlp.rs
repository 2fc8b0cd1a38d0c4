//! The OpenTelemetry trace export: spans of [`TRACE_TARGET`] go to an
//! OTLP/gRPC collector in batches, from a background thread, and whatever
//! is still buffered is sent at shutdown.

use std::time::Duration;

use anyhow::Context;
use ferroserve_core::telemetry::TRACE_TARGET;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::OtlpExport;

/// Longest wait for the collector when flushing at shutdown: an absent
/// collector must not hold the process.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporting tracer provider; [`Traces::shutdown`] sends what is left.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Connects (lazily) to `export.endpoint`. Must run inside the tokio
    /// runtime, which carries the exporter's connection.
    pub fn start(export: &OtlpExport) -> anyhow::Result<Traces> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(export.endpoint.clone())
            .build()
            .with_context(|| format!("cannot export traces to {}", export.endpoint))?;
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "ferroserve".into());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                export.sample_ratio,
            ))))
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        Ok(Traces { provider })
    }

    /// The `tracing` layer that turns ferroserve's trace spans (and only
    /// those) into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("ferroserve"))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(Targets::new().with_target(TRACE_TARGET, Level::DEBUG))
    }

    /// Sends the spans still buffered and stops the exporter. Blocks up to
    /// [`FLUSH_TIMEOUT`]; run it off the async workers.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!(%error, "could not send the last traces");
        }
    }
}
