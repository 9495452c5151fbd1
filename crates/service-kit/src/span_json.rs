//! Span fields for the JSON log format, written as a JSON object in place.
//!
//! The fmt layer formats a span's fields when the span opens and on every `record`, whether or
//! not an event inside it is ever logged. tracing-subscriber's `JsonFields` does that through a
//! `serde_json` map, and on every `record` parses the object written so far back into a map to
//! add one field: with the RPC span's six recordings that was about 12% of the API's CPU.
//! [`SpanJson`] writes each field straight into the string and, on `record`, appends before the
//! closing brace. A field recorded twice then appears twice in the string; the JSON event
//! formatter reads the object back with `serde_json` when (and only when) it logs a line, where
//! the later value wins, as it did with `JsonFields`. What a log line shows is unchanged.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// Formats span fields as one JSON object, cheaply (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanJson;

impl<'writer> FormatFields<'writer> for SpanJson {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        writer.write_char('{')?;
        let mut visitor = Visitor::new(&mut writer, true);
        fields.record(&mut visitor);
        visitor.result?;
        writer.write_char('}')
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // Always an object written by `format_fields`: reopen it.
        let first = match current.fields.pop() {
            Some('}') => current.fields.ends_with('{'),
            _ => {
                current.fields.clear();
                current.fields.push('{');
                true
            }
        };
        let mut visitor = Visitor::new(&mut current.fields, first);
        fields.record(&mut visitor);
        let result = visitor.result;
        current.fields.push('}');
        result
    }
}

/// Writes `"name":value` pairs, comma-separated, into `out`.
struct Visitor<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: fmt::Write> Visitor<'a, W> {
    fn new(out: &'a mut W, first: bool) -> Self {
        Self {
            out,
            first,
            result: Ok(()),
        }
    }

    /// Writes the key, then the value with `value`.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        // As `JsonFields` does: a raw identifier's `r#` is not part of the name.
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.out.write_char(',')?;
            }
            write_str(self.out, name)?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl<W: fmt::Write> Visit for Visitor<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's own number formatting (and `null` for NaN and infinities).
        self.field(field, |out| {
            write!(out, "{}", serde_json::Value::from(value))
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_str(out, value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        // `JsonFields` writes bytes as an array of numbers.
        self.field(field, |out| {
            out.write_char('[')?;
            for (i, byte) in value.iter().enumerate() {
                if i > 0 {
                    out.write_char(',')?;
                }
                write!(out, "{byte}")?;
            }
            out.write_char(']')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // As `JsonFields` does: `log.*` fields are the metadata of a `log` record, shown already.
        if field.name().starts_with("log.") {
            return;
        }
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// A JSON string literal.
fn write_str(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(s)?;
    out.write_char('"')
}

/// Escapes what passes through for the inside of a JSON string (RFC 8259, section 7).
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let escape = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c < ' ' => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", u32::from(c))?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};
    use tracing::field::Empty;
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::prelude::*;

    /// Log lines written by a JSON fmt layer with span fields formatted by `fields`.
    fn log_lines<N>(fields: N, body: impl FnOnce()) -> Vec<Value>
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || Sink(buffer.clone())
        };
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .fmt_fields(fields)
            .with_writer(writer);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, body);
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A span like the RPC span: fields at creation, some filled in later, one twice, values
    /// that need escaping, and events before and after the recordings.
    fn scenario() {
        let span = tracing::info_span!(
            "rpc",
            otel.name = %"credentials.v1.CredentialsService/GetCredential",
            rpc.system = "grpc",
            method = %"/a \"quoted\"\\path\n\u{1}é",
            code = Empty,
            rpc.grpc.status_code = Empty,
            request_id = Empty,
            subject = Empty,
            flag = Empty,
            ratio = Empty,
            r#type = Empty,
        );
        let _entered = span.enter();
        tracing::warn!("before");
        span.record("request_id", "req-1");
        span.record("subject", "svc\tagent");
        span.record("code", "OK");
        span.record("rpc.grpc.status_code", 0_i64);
        span.record("flag", true);
        span.record("ratio", 0.5_f64);
        span.record("type", "x");
        span.record("code", "NOT_FOUND");
        tracing::warn!(answer = 42, "after");
    }

    #[test]
    fn log_lines_are_the_same_as_with_json_fields() {
        let ours = log_lines(SpanJson, scenario);
        let theirs = log_lines(JsonFields::default(), scenario);
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 2);
        assert_eq!(ours[1]["span"]["code"], json!("NOT_FOUND"));
        assert_eq!(ours[1]["span"]["subject"], json!("svc\tagent"));
        assert_eq!(ours[1]["span"]["rpc.grpc.status_code"], json!(0));
        assert_eq!(ours[0]["span"].get("request_id"), None);
    }

    #[test]
    fn a_span_without_fields_is_an_empty_object() {
        let scenario = || {
            let span = tracing::info_span!("bare", later = Empty);
            let _entered = span.enter();
            tracing::warn!("inside");
            span.record("later", 1_u64);
            tracing::warn!("inside again");
        };
        assert_eq!(
            log_lines(SpanJson, scenario),
            log_lines(JsonFields::default(), scenario)
        );
    }
}
