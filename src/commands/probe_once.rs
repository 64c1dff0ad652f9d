//! `probe-once`: check every site concurrently, publish one message per
//! check, confirm every delivery, summarise, exit.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, anyhow};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kafka::Publisher;
use crate::probe::{self, Prober};
use crate::sites::Site;
use crate::telemetry;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub sites: usize,
    pub up: usize,
    pub down: usize,
    /// Messages the broker acknowledged (printed, for a dry run).
    pub published: usize,
    pub seconds: f64,
}

/// Runs the checks and publishes them, or prints them to `out` as JSON
/// lines when `dry_run`. Fails (exit 1) when any message is not
/// acknowledged, after printing the summary.
pub async fn run(
    settings: &Settings,
    sites: Vec<Site>,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Summary> {
    let start = Instant::now();
    let prober = Prober::new(&sites, &settings.location).map_err(Error::config)?;
    let mut publisher = if dry_run {
        None
    } else {
        Some(Publisher::new(&settings.kafka)?)
    };
    let mut summary = Summary {
        sites: sites.len(),
        ..Summary::default()
    };
    let mut results = probe::spawn_all(Arc::new(prober), sites.into(), settings.concurrency);
    while let Some(check) = results.recv().await {
        if check.up {
            summary.up += 1;
        } else {
            summary.down += 1;
        }
        tracing::debug!(site = %check.site, up = check.up, status = ?check.status_code, error_kind = ?check.error_kind, "checked");
        let payload = check.to_json();
        match publisher.as_mut() {
            Some(p) => p.enqueue(&check.site, &payload).await?,
            None => {
                out.write_all(&payload)
                    .and_then(|()| out.write_all(b"\n"))
                    .context("cannot write to stdout")?;
                summary.published += 1;
            }
        }
    }
    let mut failure = None;
    if let Some(publisher) = publisher {
        let enqueued = publisher.enqueued();
        let confirmation = publisher.confirm().await;
        summary.published = confirmation.acknowledged;
        if confirmation.lost > 0 {
            failure = Some(anyhow!(
                "{} of {} messages were not acknowledged by {} within {}: {}",
                confirmation.lost,
                enqueued,
                settings.kafka.brokers,
                humantime::format_duration(settings.kafka.publish_timeout),
                confirmation.first_error.unwrap_or_default()
            ));
        }
    }
    out.flush().context("cannot write to stdout")?;
    summary.seconds = start.elapsed().as_secs_f64();
    report(settings, &summary, dry_run);
    match failure {
        Some(e) => Err(Error::Job(e)),
        None => Ok(summary),
    }
}

fn report(settings: &Settings, s: &Summary, dry_run: bool) {
    let verb = if dry_run { "printed" } else { "published" };
    telemetry::summary(
        settings.log_format,
        &format!(
            "probe-once: {} sites checked, {} up, {} down, {} {verb} in {:.2} s",
            s.sites, s.up, s.down, s.published, s.seconds
        ),
        serde_json::json!({
            "job": "probe-once", "sites": s.sites, "up": s.up, "down": s.down,
            verb: s.published, "seconds": s.seconds,
        }),
    );
}
