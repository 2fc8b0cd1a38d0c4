//! W3C trace context on every front end: a request's span is parented on
//! the caller's `traceparent` / `tracestate`, and the answer carries the
//! `traceparent` of that span.
//!
//! The spans use [`TRACE_TARGET`], which the logging setup switches off
//! when no OTLP endpoint is configured: then [`request_span`] returns a
//! disabled span without reading a header, and the request path pays
//! nothing for tracing.

use std::fmt::Display;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ferroserve_core::telemetry::TRACE_TARGET;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header carrying the trace and parent span ids (W3C Trace Context).
pub const TRACEPARENT: &str = "traceparent";

/// The span of one request on `protocol` (`http`, `grpc`), named `name`
/// in the exported trace (e.g. `POST /v2/models/{model_name}/infer`),
/// whose parent is the caller's span when `headers` carry a valid
/// `traceparent`. Its `trace_id` field holds the trace id, so JSON log
/// lines of the request carry it. Disabled (free) when traces are off.
///
/// Fields a front end or the pipeline may record later: `request_id`,
/// `model`, `version`, `status` (the HTTP status or gRPC code) and
/// `otel.status_code` (`ERROR` for a failure of the server).
pub fn request_span(
    headers: &HeaderMap,
    name: impl Display,
    protocol: &'static str,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        protocol,
        request_id = Empty,
        model = Empty,
        version = Empty,
        status = Empty,
        trace_id = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Only fails when no OpenTelemetry layer is installed, and then
        // there is no trace to join.
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
    }
    span
}

/// The `traceparent` (and `tracestate`) headers naming `span`, for the
/// answer: a caller can find the server's part of its trace. Empty when
/// `span` is not traced.
pub fn response_headers(span: &tracing::Span) -> Vec<(HeaderName, HeaderValue)> {
    if span.is_disabled() {
        return Vec::new();
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut headers = HeaderInjector(Vec::with_capacity(2));
    TraceContextPropagator::new().inject_context(&context, &mut headers);
    headers.0
}

/// Records the answer's `status` on `span`; a server-side failure
/// (`server_error`) marks the exported span as an error.
pub fn record_status(span: &tracing::Span, status: impl Display, server_error: bool) {
    if span.is_disabled() {
        return;
    }
    span.record("status", tracing::field::display(status));
    if server_error {
        span.record("otel.status_code", "ERROR");
    }
}

/// Reads trace context headers from an HTTP (or gRPC metadata) header map.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Collects the trace context headers to put on an answer; a value that
/// is not a valid header (never, for W3C trace context) is left out.
struct HeaderInjector(Vec<(HeaderName, HeaderValue)>);

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_traces_the_span_is_off_and_answers_carry_nothing() {
        use tracing_subscriber::filter::{LevelFilter, Targets};
        use tracing_subscriber::layer::SubscriberExt;

        // As the server logs without an OTLP endpoint: everything but the
        // trace target.
        let filter = Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target(TRACE_TARGET, LevelFilter::OFF);
        let subscriber = tracing_subscriber::registry().with(filter);
        tracing::subscriber::with_default(subscriber, || {
            let mut headers = HeaderMap::new();
            headers.insert(
                TRACEPARENT,
                HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            );
            let span = request_span(&headers, "POST /v2/models/m/infer", "http");
            assert!(span.is_disabled());
            assert!(response_headers(&span).is_empty());
            assert!(!tracing::info_span!("other").is_disabled());
        });
    }

    #[test]
    fn the_extractor_reads_headers_case_insensitively() {
        let mut headers = HeaderMap::new();
        let name = HeaderName::from_bytes(b"TraceParent").expect("a header name");
        headers.insert(name, HeaderValue::from_static("00-ab-cd-01"));
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get("traceparent"), Some("00-ab-cd-01"));
        assert_eq!(extractor.keys(), ["traceparent"]);
    }

    #[test]
    fn the_request_span_joins_the_callers_trace_and_names_itself_in_the_answer() {
        use opentelemetry::trace::TracerProvider;
        use tracing_subscriber::layer::SubscriberExt;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let mut headers = HeaderMap::new();
            headers.insert(
                TRACEPARENT,
                HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            );
            let span = request_span(&headers, "POST /v2/models/m/infer", "http");
            let context = span.context();
            let own = context.span().span_context().clone();
            assert_eq!(
                own.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            assert_ne!(own.span_id().to_string(), "00f067aa0ba902b7");
            let answer = response_headers(&span);
            let traceparent = answer
                .iter()
                .find(|(name, _)| name == TRACEPARENT)
                .map(|(_, value)| value.to_str().expect("ascii"));
            assert_eq!(
                traceparent,
                Some(format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", own.span_id()).as_str())
            );

            // A malformed header starts a new trace rather than failing.
            headers.insert(TRACEPARENT, HeaderValue::from_static("00-zz-yy-01"));
            let span = request_span(&headers, "GET /", "http");
            let own = span.context().span().span_context().clone();
            assert!(own.is_valid());
            assert_ne!(
                own.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
        });
    }
}
