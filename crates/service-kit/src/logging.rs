use crate::span_json::SpanJson;
use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use std::{io::IsTerminal, time::Duration};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, prelude::*};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (the default; what log collectors expect).
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

/// How long exiting may wait for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps the trace exporter alive; [`TelemetryGuard::shutdown`] flushes the spans still queued.
#[derive(Debug)]
#[must_use = "dropping the guard at once stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported (an OTLP endpoint was configured).
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes queued spans and stops the exporter. Call while the Tokio runtime the exporter
    /// was built in is still alive (its connection runs there), after the server has drained.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
        {
            tracing::warn!(error = %e, "trace exporter did not shut down cleanly");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why traces cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
#[error("OTLP trace exporter: {0}")]
pub struct TelemetryError(String);

/// Whether the standard OTEL_* variables ask for trace export: an endpoint is set and neither
/// `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` turns it off.
fn export_requested(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let no_exporter = var("OTEL_TRACES_EXPORTER")
        .is_some_and(|v| v.split(',').all(|e| e.trim().eq_ignore_ascii_case("none")));
    endpoint && !disabled && !no_exporter
}

/// The resource of this process: what the OTEL_* variables say, with `service.name` defaulting
/// to `service_name` rather than the SDK's `unknown_service`.
fn resource(service_name: &str) -> Resource {
    let detected = Resource::builder().build();
    let unnamed = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_none_or(|name| name.as_str().starts_with("unknown_service"));
    if !unnamed {
        return detected;
    }
    Resource::builder()
        .with_attribute(KeyValue::new("service.name", service_name.to_owned()))
        .build()
}

fn tracer_provider(service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    if std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").is_ok_and(|p| p.trim() != "grpc") {
        // Only the gRPC transport is compiled in (the HTTP one would pull another HTTP client).
        eprintln!("OTEL_EXPORTER_OTLP_PROTOCOL is not grpc; exporting over OTLP/gRPC anyway");
    }
    // Endpoint, headers, timeout and compression come from the OTEL_EXPORTER_OTLP_* variables;
    // batching from OTEL_BSP_*; sampling from OTEL_TRACES_SAMPLER.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| TelemetryError(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_resource(resource(service_name))
        .with_batch_exporter(exporter)
        .build())
}

/// Installs the global tracing subscriber: logs on stderr in `format`, filtered by `RUST_LOG`
/// (else `default_filter`, e.g. `info`), plus OTLP/gRPC trace export when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Without an endpoint there is no exporter and no
/// OpenTelemetry layer at all.
///
/// Call once, inside the Tokio runtime (the exporter's connection is spawned on it), and call
/// [`TelemetryGuard::shutdown`] on the way out. A misconfigured exporter is reported on stderr
/// and leaves logging working: traces are not worth refusing to start over.
pub fn init_telemetry(
    format: LogFormat,
    default_filter: &str,
    service_name: &str,
) -> TelemetryGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (provider, otel_error) = if export_requested(|name| std::env::var(name).ok()) {
        match tracer_provider(service_name) {
            Ok(provider) => (Some(provider), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name.to_owned()))
            // Busy/idle times per span are noise next to the span's own duration.
            .with_tracked_inactivity(false)
    });
    let fmt_layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            // Span fields are formatted for every span, logged or not: the cheap way.
            .fmt_fields(SpanJson)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .with(filter)
        .init();
    if let Some(e) = otel_error {
        tracing::error!(error = %e, "traces are not exported");
    } else if provider.is_some() {
        tracing::info!(service = service_name, "exporting traces over OTLP");
    }
    TelemetryGuard { provider }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn export_only_with_an_endpoint_and_not_disabled() {
        assert!(!export_requested(env(&[])));
        assert!(!export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            " "
        )])));
        assert!(export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4317"
        )])));
        assert!(export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4317"
        )])));
        assert!(!export_requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ])));
        assert!(!export_requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])));
        assert!(export_requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
        ])));
    }
}
