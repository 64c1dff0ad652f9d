//! Logging: tracing to stderr, as text or JSON lines, and the one-line job
//! summaries.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Log filter when `RUST_LOG` is unset: sitewatch's own info, others' warnings.
const DEFAULT_FILTER: &str = "warn,sitewatch=info";

/// Installs the global subscriber. Logs go to stderr so stdout stays for
/// data (`probe-once --dry-run`, `check --json`).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Prints a job's summary line on stderr: plain text, or one JSON object
/// with the same figures when logs are JSON.
pub fn summary(format: LogFormat, text: &str, fields: serde_json::Value) {
    match format {
        LogFormat::Text => eprintln!("{text}"),
        LogFormat::Json => {
            let mut object = serde_json::json!({ "level": "INFO", "message": text });
            if let (Some(o), serde_json::Value::Object(f)) = (object.as_object_mut(), fields) {
                o.extend(f);
            }
            eprintln!("{object}");
        }
    }
}
