//! Structured logs: human-readable text on a terminal, JSON lines
//! otherwise (or as `--log-format` says), filtered by `RUST_LOG` or the
//! configured level; and beside them, when configured, the OpenTelemetry
//! trace export.

use std::io::IsTerminal;

use ferroserve_core::telemetry::TRACE_TARGET;
use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::Directive;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::otlp::Traces;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text when standard error is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The format used when standard error is (`terminal`) or is not a terminal.
    pub fn resolve(self, terminal: bool) -> LogFormat {
        match self {
            LogFormat::Auto if terminal => LogFormat::Text,
            LogFormat::Auto => LogFormat::Json,
            chosen => chosen,
        }
    }
}

/// Installs the global subscriber. Colours only go to a terminal: text
/// logs redirected to a file or a pipe stay plain.
pub fn init(format: LogFormat, level: &str) {
    install(format, level, None);
}

/// Like [`init`], exporting the trace spans through `traces` when given.
/// Without it those spans are switched off in the filter, so that they
/// cost the request path nothing. Log lines of a traced request name its
/// trace (`trace_id` of the request span, in the JSON `span` object).
pub fn init_with_traces(format: LogFormat, level: &str, traces: Option<&Traces>) {
    install(format, level, traces);
}

fn install(format: LogFormat, level: &str, traces: Option<&Traces>) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    if traces.is_none() {
        filter = filter.add_directive(trace_spans_off());
    }
    let terminal = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    let fmt = match format.resolve(terminal) {
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        _ => fmt.with_filter(filter).boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt);
    let result = match traces {
        Some(traces) => registry.with(traces.layer()).try_init(),
        None => registry.try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}

/// The filter directive that turns the trace spans off.
fn trace_spans_off() -> Directive {
    format!("{TRACE_TARGET}=off")
        .parse()
        .expect("a target name and `off` make a valid directive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_text_on_a_terminal_and_json_elsewhere() {
        assert_eq!(LogFormat::Auto.resolve(true), LogFormat::Text);
        assert_eq!(LogFormat::Auto.resolve(false), LogFormat::Json);
        assert_eq!(LogFormat::Json.resolve(true), LogFormat::Json);
        assert_eq!(LogFormat::Text.resolve(false), LogFormat::Text);
    }

    #[test]
    fn the_trace_spans_directive_names_their_target() {
        assert_eq!(trace_spans_off().to_string(), format!("{TRACE_TARGET}=off"));
    }
}
