//! Opens N spans shaped like the per-RPC span under the JSON log layer, records the fields the
//! auth layer, handlers and status recording fill in, and logs nothing, for instruction counts
//! under `valgrind --tool=callgrind` (see docs/performance.md):
//! `span_fields_cost <N> <span-json|json-fields>`.

use service_kit::SpanJson;
use tracing::field::Empty;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::prelude::*;

fn run(n: u64) {
    for i in 0..n {
        let span = tracing::info_span!(
            "rpc",
            otel.name = %"credentials.v1.CredentialsService/GetCredential",
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = "credentials.v1.CredentialsService",
            rpc.method = "GetCredential",
            rpc.grpc.status_code = Empty,
            method = %"/credentials.v1.CredentialsService/GetCredential",
            code = Empty,
            request_id = Empty,
            subject = Empty,
            workspace_id = Empty,
            credential_id = Empty,
        );
        let _entered = span.enter();
        span.record("request_id", "0b7c8e4e-4f8e-4d1a-9c55-3f1f4f0f9a11");
        span.record("subject", "svc-agent");
        span.record("workspace_id", "team-a");
        span.record("credential_id", "4a7d1c9e-2b3f-4e5a-8c6d-7e8f9a0b1c2d");
        span.record("code", "OK");
        span.record("rpc.grpc.status_code", 0_i64);
        tracing::debug!(i, "filtered out, as at the default level");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let which = args.next().unwrap_or_else(|| "span-json".into());
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr);
    let filter = tracing_subscriber::EnvFilter::new("info");
    if which == "json-fields" {
        let subscriber = tracing_subscriber::registry()
            .with(layer.fmt_fields(JsonFields::default()))
            .with(filter);
        tracing::subscriber::with_default(subscriber, || run(n));
    } else {
        let subscriber = tracing_subscriber::registry()
            .with(layer.fmt_fields(SpanJson))
            .with(filter);
        tracing::subscriber::with_default(subscriber, || run(n));
    }
    println!("{n} spans, fields by {which}");
}
