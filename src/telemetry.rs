//! Log setup: JSON lines for machines (default), short text lines for people.
//!
//! Both formats are written here rather than by `tracing-subscriber`'s stock formatters:
//! - JSON nests the fields that hold JSON (`modified_properties`, `counts`, ...) as values, not
//!   strings holding JSON, and calls the module path `module` (`target` is the sync target).
//! - Text prints a provisioning action as one short line
//!   (`create  Adele Vance <adele.vance@contoso.com> → adele.vance_contoso.com#EXT#@…  13 attributes`),
//!   attributes only with `-v`; escapes control characters so upstream error text cannot forge
//!   log lines; colours only a terminal.

pub mod progress;

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// One JSON object per line (for Loki, Log Analytics, ...).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Fields whose value is JSON text, nested as JSON in the JSON format.
pub const NESTED_FIELDS: &[&str] = &[
    "modified_properties",
    "counts",
    "changed",
    "full",
    "added",
    "removed",
    "pairs",
    "summary",
];

/// Installs the global `tracing` subscriber writing to stderr. `RUST_LOG` overrides the
/// default level (`info`; `debug` from `-vv`). `verbose` ≥ 1 shows each action's attributes
/// in the text format. Calling it twice is harmless (the second call is ignored).
pub fn init(format: LogFormat, verbose: u8) {
    let default = if verbose >= 2 { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new());
    let _ = match format {
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
        LogFormat::Text => builder
            .event_format(TextLines {
                verbose: verbose >= 1,
                colour: std::io::stderr().is_terminal(),
            })
            .try_init(),
    };
}

/// An event's fields as JSON values, in the order they were recorded.
#[derive(Default)]
pub struct FieldMap(pub Map<String, Value>);

impl FieldMap {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }

    fn put_text(&mut self, field: &Field, text: String) {
        let value = if NESTED_FIELDS.contains(&field.name()) {
            match serde_json::from_str::<Value>(&text) {
                Ok(v @ (Value::Array(_) | Value::Object(_))) => v,
                _ => Value::String(text),
            }
        } else {
            Value::String(text)
        };
        self.put(field, value);
    }

    fn str(&self, key: &str) -> &str {
        self.0.get(key).and_then(Value::as_str).unwrap_or_default()
    }
}

impl Visit for FieldMap {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put_text(field, format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_text(field, value.to_owned());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
}

/// The current span's name and fields (recorded as JSON by `JsonFields`).
fn current_span<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(String, Map<String, Value>)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let span = ctx.lookup_current()?;
    let ext = span.extensions();
    let fields = ext
        .get::<FormattedFields<N>>()
        .and_then(|f| serde_json::from_str::<Map<String, Value>>(&f.fields).ok())
        .unwrap_or_default();
    Some((span.name().to_owned(), fields))
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One JSON object per line.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp()));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        line.extend(fields.0);
        line.insert("module".into(), Value::String(meta.target().to_owned()));
        if let Some((name, mut span)) = current_span(ctx) {
            span.insert("name".into(), Value::String(name));
            line.insert("span".into(), Value::Object(span));
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Short lines for people.
pub struct TextLines {
    pub verbose: bool,
    pub colour: bool,
}

/// Control characters as escapes: a CR/LF in upstream error text cannot start a forged line.
pub fn escape_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A field value: bare when it is one plain word, else double-quoted with `"` and `\` escaped.
fn quoted(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = escape_control(&text);
    let plain = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c == '\\');
    if plain || !value.is_string() {
        text
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

impl TextLines {
    fn level(&self, level: &Level) -> String {
        let name = format!("{level:>5}");
        if !self.colour {
            return name;
        }
        let code = match *level {
            Level::ERROR => "31",
            Level::WARN => "33",
            Level::INFO => "32",
            _ => "2",
        };
        format!("\x1b[{code}m{name}\x1b[0m")
    }

    /// `create  Adele Vance <adele.vance@contoso.com> → adele.vance_contoso.com#EXT#@…  [pair]  13 attributes`
    pub fn action_line(&self, f: &FieldMap) -> String {
        let who = match (f.str("display_name"), f.str("user_principal_name")) {
            ("", "") => f.str("anchor").to_owned(),
            ("", upn) => upn.to_owned(),
            (name, "") => name.to_owned(),
            (name, upn) => format!("{name} <{upn}>"),
        };
        let target = match f.str("target_user_principal_name") {
            "" => String::new(),
            upn => format!(" → {upn}"),
        };
        let count =
            f.0.get("attribute_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        let mut line = format!(
            "{:<12} {}{}  [{}]",
            f.str("action"),
            escape_control(&who),
            escape_control(&target),
            f.str("pair")
        );
        match f.str("manager") {
            "" => {}
            m => {
                let _ = write!(line, "  manager {}", escape_control(m));
            }
        }
        if count > 0 && f.str("manager").is_empty() {
            let _ = write!(
                line,
                "  {count} attribute{}",
                if count == 1 { "" } else { "s" }
            );
        }
        match f.str("reason") {
            "" => {}
            r if f.str("action") == "skip" || f.str("action") == "stagedDelete" => {
                let _ = write!(line, "  ({r})");
            }
            _ => {}
        }
        if f.str("status") == "failure" {
            let _ = write!(
                line,
                "  FAILED {}: {}",
                escape_control(f.str("error_code")),
                escape_control(f.str("error"))
            );
        }
        if self.verbose
            && let Some(Value::Array(props)) = f.0.get("modified_properties")
        {
            {
                for p in props {
                    let s = |k: &str| match p.get(k) {
                        Some(Value::Null) | None => "(none)".to_owned(),
                        Some(v) => quoted(v),
                    };
                    let _ = write!(
                        line,
                        "\n      {}: {} → {}",
                        s("displayName"),
                        s("oldValue"),
                        s("newValue")
                    );
                }
            }
        }
        line
    }
}

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        let time = chrono::Local::now().format("%H:%M:%S");
        let level = self.level(meta.level());
        if fields.str("event") == "provisioningAction" {
            return writeln!(writer, "{time} {level} {}", self.action_line(&fields));
        }
        let message = escape_control(fields.str("message"));
        let mut line = format!("{time} {level} {message}");
        for (key, value) in &fields.0 {
            if key == "message" || key == "event" {
                continue;
            }
            let _ = write!(line, " {key}={}", quoted(value));
        }
        if self.verbose
            && let Some((name, span)) = current_span(ctx)
        {
            {
                let _ = write!(line, " span={name}");
                for (key, value) in span {
                    let _ = write!(line, " {name}.{key}={}", quoted(&value));
                }
            }
        }
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_control("bad\r\n{\"level\":\"INFO\"}\u{1b}[2J"),
            "bad\\r\\n{\"level\":\"INFO\"}\\u{1b}[2J"
        );
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(quoted(&Value::String("contoso".into())), "contoso");
        assert_eq!(quoted(&Value::String("a b".into())), "\"a b\"");
        assert_eq!(quoted(&Value::String(String::new())), "\"\"");
        assert_eq!(
            quoted(&Value::String("say \"hi\"\nnext".into())),
            "\"say \\\"hi\\\"\\\\nnext\""
        );
        assert_eq!(quoted(&Value::from(13)), "13");
    }

    #[test]
    fn an_action_is_one_short_line_and_attributes_need_verbose() {
        let mut f = FieldMap::default();
        for (k, v) in [
            ("action", Value::from("create")),
            ("pair", Value::from("contoso-to-fabrikam")),
            ("display_name", Value::from("Adele Vance")),
            (
                "user_principal_name",
                Value::from("adele.vance@contoso.com"),
            ),
            (
                "target_user_principal_name",
                Value::from("adele.vance_contoso.com#EXT#@fabrikam.onmicrosoft.com"),
            ),
            ("attribute_count", Value::from(13)),
            ("status", Value::from("success")),
            (
                "modified_properties",
                serde_json::json!([{"displayName": "jobTitle", "oldValue": null, "newValue": "Rep"}]),
            ),
        ] {
            f.0.insert(k.into(), v);
        }
        let quiet = TextLines {
            verbose: false,
            colour: false,
        };
        assert_eq!(
            quiet.action_line(&f),
            "create       Adele Vance <adele.vance@contoso.com> → adele.vance_contoso.com#EXT#@fabrikam.onmicrosoft.com  [contoso-to-fabrikam]  13 attributes"
        );
        let loud = TextLines {
            verbose: true,
            colour: false,
        };
        assert!(
            loud.action_line(&f)
                .ends_with("\n      jobTitle: (none) → Rep")
        );
    }
}
