//! `alert`: evaluate, record, deliver; one line per event on stdout and a
//! summary on stderr.

use std::io::Write;

use super::flags::{parse_duration, parse_time};
use crate::alert::{self, Options};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::telemetry;
use clap::Args;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub command: Option<AlertCommand>,
    /// Evaluate and record the events without a notifier to send them to
    /// (without it, no [[notifier]] at all is a configuration error, exit 2)
    #[arg(long)]
    pub record_only: bool,
    /// Stop delivering this long after the start (such as 50s); what is
    /// left waits for the next run, exit 1
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<std::time::Duration>,
    /// The run's clock, RFC 3339 (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AlertCommand {
    /// Send one test event to NOTIFIER through the real path (its URL or
    /// key, its payload, no redirect followed) and print what the service
    /// answered; records nothing. PagerDuty and Opsgenie get the test's
    /// resolve too, so no incident stays open. Exit 1 if it is refused.
    Test {
        /// A [[notifier]]'s name
        notifier: String,
    },
}

pub async fn run(settings: &Settings, args: &AlertArgs) -> Result<()> {
    if let Some(AlertCommand::Test { notifier }) = &args.command {
        return test(settings, notifier).await;
    }
    let started = std::time::Instant::now();
    let options = Options {
        now: args.at.unwrap_or_else(time::OffsetDateTime::now_utc),
        deadline: args.deadline,
        env: std::env::vars().collect(),
        record_only: args.record_only,
    };
    let s = alert::run(settings, &options).await?;
    let mut out = std::io::stdout().lock();
    for (kind, summary) in &s.events {
        // Summaries quote site names and servers' errors: no escape
        // sequence of theirs reaches the terminal.
        let summary = crate::escape::terminal(summary);
        writeln!(out, "{kind}: {summary}").map_err(|e| Error::Job(e.into()))?;
    }
    let summary = Alerted {
        evaluated: s.evaluated,
        events: s.events.len(),
        delivered: s.delivered,
        failed: s.failed,
        waiting: s.waiting,
        seconds: started.elapsed().as_secs_f64(),
    };
    telemetry::summary(settings.log_format, &summary);
    if let Some(first) = s.problems.first() {
        return Err(Error::Job(anyhow::anyhow!(
            "{first}{}",
            match s.problems.len() {
                1 => String::new(),
                n => format!(" (and {} more: see the log)", n - 1),
            }
        )));
    }
    if s.failed > 0 || s.waiting > 0 {
        return Err(Error::Job(anyhow::anyhow!(
            "{} deliveries failed and {} wait: they are retried by the next run",
            s.failed,
            s.waiting
        )));
    }
    Ok(())
}

/// What one alert run did, as its summary says it.
#[derive(serde::Serialize)]
struct Alerted {
    evaluated: usize,
    events: usize,
    delivered: usize,
    failed: usize,
    waiting: usize,
    seconds: f64,
}

impl telemetry::JobSummary for Alerted {
    const JOB: &'static str = "alert";

    fn line(&self) -> String {
        format!(
            "alert: {} checks evaluated, {} events, {} delivered, {} failed, {} waiting in {:.2} s",
            self.evaluated, self.events, self.delivered, self.failed, self.waiting, self.seconds
        )
    }
}

/// `alert test NOTIFIER`.
async fn test(settings: &Settings, name: &str) -> Result<()> {
    let env = std::env::vars().collect();
    let config = alert::config(settings, None, &env, alert::policy::Urls::Required)
        .await
        .map_err(|problems| Error::config(&problems[0]))?;
    let Some(notifier) = config.notifiers.iter().find(|n| n.name == name) else {
        let names: Vec<&str> = config.notifiers.iter().map(|n| n.name.as_str()).collect();
        return Err(Error::config(format!(
            "no [[notifier]] named `{}`: the sites file declares {}",
            crate::escape::terminal(name),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    let answers = alert::send_test(notifier, time::OffsetDateTime::now_utc())
        .await
        .map_err(Error::Job)?;
    let mut out = std::io::stdout().lock();
    for (what, answer) in answers {
        writeln!(
            out,
            "notifier `{name}` ({}): {what} {answer}",
            notifier.kind.as_str()
        )
        .map_err(|e| Error::Job(e.into()))?;
    }
    Ok(())
}
