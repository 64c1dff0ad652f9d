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
    let _ = FORMAT.set(format);
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

/// The format of the final error line, set by [`init`]; before settings
/// are loaded, the environment's `SITEWATCH_LOG_FORMAT` decides.
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Prints the job's last line, `error: ...`, or the same as one JSON object
/// (`level`, `message`) when logs are JSON, so a log pipeline gets the
/// verdict as it gets every other line.
pub fn final_error(message: &str) {
    let json = match FORMAT.get() {
        Some(format) => *format == LogFormat::Json,
        None => std::env::var("SITEWATCH_LOG_FORMAT").is_ok_and(|v| v.trim() == "json"),
    };
    if json {
        eprintln!(
            "{}",
            serde_json::json!({ "level": "ERROR", "message": format!("error: {message}") })
        );
    } else {
        eprintln!("error: {message}");
    }
}

/// The process's peak resident memory so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What a job did, as its last line on stderr says it: every job's summary
/// is one of these. [`JobSummary::line`] is the sentence for a person; the
/// figures are the summary's own fields (serde), so the JSON line and the
/// text never disagree on a name.
pub trait JobSummary: serde::Serialize {
    /// The job's name, the JSON line's `job`.
    const JOB: &'static str;

    /// The sentence for a person: `drain: 42 consumed, ...`.
    fn line(&self) -> String;
}

/// The figures of the job's summary, kept for its metrics (the
/// Pushgateway): like the log subscriber, one per process, set once as the
/// job ends.
static FIGURES: std::sync::Mutex<Option<serde_json::Value>> = std::sync::Mutex::new(None);

/// The figures the job's summary printed, if it printed one.
pub fn figures() -> Option<serde_json::Value> {
    FIGURES.lock().ok().and_then(|f| f.clone())
}

/// Prints a job's summary on stderr: its line, or with JSON logs one object
/// (`level`, `message`, `job`, each figure, `peak_rss_bytes`).
pub fn summary<S: JobSummary>(format: LogFormat, summary: &S) {
    if let (Ok(mut kept), Ok(figures)) = (FIGURES.lock(), serde_json::to_value(summary)) {
        *kept = Some(figures);
    }
    let line = summary.line();
    match format {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => {
            let mut object = serde_json::json!({ "level": "INFO", "message": line, "job": S::JOB });
            if let (Some(o), Ok(serde_json::Value::Object(figures))) =
                (object.as_object_mut(), serde_json::to_value(summary))
            {
                o.extend(figures);
                o.insert("peak_rss_bytes".to_owned(), peak_rss_bytes().into());
            }
            eprintln!("{object}");
        }
    }
}
