//! Job metrics for Prometheus: with `SITEWATCH_PUSHGATEWAY_URL`, every job
//! pushes its run's figures to a Pushgateway when it ends, grouped by job
//! and location (`/metrics/job/<job>/location@base64/<location>`), in the
//! text exposition format. Bounded in time, and never failing the job: a
//! Pushgateway that is down is a warning in the log.
//!
//! A successful run replaces its group (PUT), with
//! `sitewatch_job_last_success_timestamp_seconds`; a failed run replaces
//! only the metrics it pushes (POST), so the last success stays what it
//! was and an alert on `time() - sitewatch_job_last_success_timestamp_seconds`
//! sees the job failing.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::secret::Secret;

/// How long one push may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The metrics every job pushes, with their help; then each figure of the
/// job's summary as `sitewatch_<job>_<figure>` (README, "Job metrics").
pub const JOB_METRICS: &[(&str, &str)] = &[
    (
        "sitewatch_job_duration_seconds",
        "How long the job's last run took",
    ),
    (
        "sitewatch_job_exit_code",
        "The last run's exit status: 0 success, 1 a failed run, 2 a configuration error",
    ),
    (
        "sitewatch_job_last_run_timestamp_seconds",
        "When the last run ended, in seconds since the epoch",
    ),
    (
        "sitewatch_job_last_success_timestamp_seconds",
        "When the last successful run ended, in seconds since the epoch",
    ),
];

/// One job's run, as pushed.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// `probe-once`, `drain`, ...
    pub job: &'static str,
    pub location: String,
    /// Its summary's figures (`telemetry::JobSummary`'s fields), if it
    /// printed one.
    pub figures: Option<Value>,
    pub exit_code: u8,
    pub seconds: f64,
    pub finished_at: OffsetDateTime,
}

/// The metrics of `run` in the text exposition format: the job's own
/// (above), then each number of its summary (`true` as 1, `false` as 0;
/// text and lists left out).
pub fn exposition(run: &JobRun) -> String {
    let mut out = String::new();
    let ended = run.finished_at.unix_timestamp_nanos() as f64 / 1e9;
    let values = [
        Some(run.seconds),
        Some(f64::from(run.exit_code)),
        Some(ended),
        (run.exit_code == 0).then_some(ended),
    ];
    for ((name, help), value) in JOB_METRICS.iter().zip(values) {
        if let Some(value) = value {
            family(&mut out, name, help, value);
        }
    }
    let prefix = format!("sitewatch_{}", snake(run.job));
    if let Some(Value::Object(figures)) = &run.figures {
        for (field, value) in figures {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => None,
            };
            // `seconds` is sitewatch_job_duration_seconds.
            if let Some(number) = number.filter(|_| field != "seconds") {
                let name = format!("{prefix}_{}", snake(field));
                let help = format!("The last run's `{field}` (its summary's figure)");
                family(&mut out, &name, &help, number);
            }
        }
    }
    out
}

fn family(out: &mut String, name: &str, help: &str, value: f64) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
    ));
}

/// `probe-once` as a metric name's part: `probe_once`.
fn snake(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The group's path: `metrics/job/<job>/location@base64/<location>` (a
/// location may hold any character; base64url keeps it one segment).
pub fn group_path(job: &str, location: &str) -> String {
    let location = if location.is_empty() {
        // Pushgateway's spelling of an empty label value.
        "=".to_owned()
    } else {
        base64url(location.as_bytes())
    };
    format!("metrics/job/{}/location@base64/{location}", snake(job))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

/// Pushes `run` to the Pushgateway at `url` (none: nothing); a failure is
/// a warning, never the job's.
pub async fn push(url: Option<&Secret>, run: &JobRun) {
    let Some(url) = url else { return };
    let Ok(base) = url::Url::parse(url.expose()) else {
        return;
    };
    let path = group_path(run.job, &run.location);
    let target = match base
        .join(&format!("{}/", base.path().trim_end_matches('/')))
        .and_then(|b| b.join(&path))
    {
        Ok(u) => u,
        Err(_) => return,
    };
    let client = match crate::outbound::client(TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot push the job's metrics");
            return;
        }
    };
    let request = if run.exit_code == 0 {
        client.put(target)
    } else {
        client.post(target)
    };
    let sent = request
        .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(exposition(run))
        .send()
        .await;
    // The URL may carry credentials: never in the log.
    match sent.map(|r| r.status()) {
        Ok(status) if status.is_success() => {}
        Ok(status) => tracing::warn!(%status, "the Pushgateway refused the job's metrics"),
        Err(e) => tracing::warn!(
            error = %crate::escape::controls(&e.without_url().to_string()),
            "cannot push the job's metrics"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_path_keeps_any_location_one_segment() {
        assert_eq!(
            group_path("probe-once", "eu/west 1"),
            "metrics/job/probe_once/location@base64/ZXUvd2VzdCAx"
        );
        assert_eq!(base64url(b"ab"), "YWI=");
        assert_eq!(base64url(b"\xfb\xff"), "-_8=");
        assert_eq!(
            group_path("drain", ""),
            "metrics/job/drain/location@base64/="
        );
    }

    #[test]
    fn a_failed_run_pushes_no_last_success_and_figures_are_named_by_job() {
        let run = JobRun {
            job: "probe-once",
            location: "eu".into(),
            figures: Some(serde_json::json!({
                "checked": 3, "dry_run": false, "stopped_by": "SIGTERM", "seconds": 1.5
            })),
            exit_code: 1,
            seconds: 1.5,
            finished_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_800_000_000),
        };
        let text = exposition(&run);
        assert!(text.contains("\nsitewatch_job_exit_code 1\n"), "{text}");
        assert!(text.contains("\nsitewatch_job_last_run_timestamp_seconds 1800000000\n"));
        assert!(!text.contains("last_success"), "{text}");
        assert!(text.contains("\nsitewatch_probe_once_checked 3\n"));
        assert!(text.contains("\nsitewatch_probe_once_dry_run 0\n"));
        assert!(!text.contains("stopped_by") && !text.contains("probe_once_seconds"));
        let ok = exposition(&JobRun {
            exit_code: 0,
            ..run
        });
        assert!(ok.contains("\nsitewatch_job_last_success_timestamp_seconds 1800000000\n"));
    }

    #[test]
    fn the_readme_lists_every_job_metric() {
        let readme = include_str!("../README.md");
        for (name, _) in JOB_METRICS {
            assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
        }
    }
}
