//! The subcommands: one module each, each with a `run`; and the signals
//! that stop a job cleanly.

pub mod alert;
pub mod check;
pub mod drain;
mod flags;
pub mod migrate;
pub mod probe_once;
pub mod prune;
pub mod report;
pub mod site_flags;
pub mod sites;
pub mod validate;

use clap::Subcommand;

use crate::config::Settings;
use crate::error::{Error, Result};

/// The subcommands, each with its own arguments; doc comments are the help.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every site once, publish one message per check to Kafka, wait
    /// until every message is acknowledged, print a summary, exit.
    ProbeOnce(probe_once::ProbeOnceArgs),
    /// Consume every message pending when the run starts, store it in
    /// PostgreSQL, commit offsets after the rows, exit.
    Drain(drain::DrainArgs),
    /// Check one URL and print what was measured; publishes nothing.
    Check(Box<check::CheckArgs>),
    /// Apply migrations/ to PostgreSQL and create the Kafka topic when it is
    /// missing (idempotent; safe when two run at once).
    Migrate(migrate::MigrateArgs),
    /// What the stored checks say, per site: state, uptime, latency
    /// percentiles, incidents, certificate days left
    Report(report::ReportArgs),
    /// Evaluate the checks stored since the last run, record the events they
    /// call for (down, resolved, reminder, stale, tls_expiring,
    /// prober_down), deliver each to each notifier once, exit (1 if a
    /// delivery failed: it is retried by the next run)
    Alert(alert::AlertArgs),
    /// Drop stored checks older than --keep, whole days at a time (the day
    /// partitions of `checks`), and rollups older than --keep-rollups; safe
    /// while drains run
    Prune(prune::PruneArgs),
    /// Check the sites file (--sites-file) and the settings, changing
    /// nothing and connecting nowhere: every problem of every site on a line
    /// of its own, exit 2 if there is any (for pull requests that change
    /// `sites.toml`)
    Validate(validate::ValidateArgs),
    /// The sites kept in PostgreSQL (the `sites` table), which probe-once
    /// checks with SITEWATCH_SITES_SOURCE=database
    Sites(sites::SitesArgs),
}

/// The runtime a command runs on. `probe-once` (thousands of checks and
/// TLS handshakes) and `drain` (batches stored while the next are decoded)
/// use every core. `report` runs on this thread alone: its work is
/// PostgreSQL's, and waking worker threads for every message of its three
/// streams of rows cost more than they gave (docs/src/decisions.md,
/// report).
pub fn runtime(command: &Command) -> tokio::runtime::Builder {
    let mut builder = match command {
        Command::Report(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all();
    builder
}

/// Runs the chosen command to completion, or to a clean stop on SIGTERM or
/// SIGINT.
pub async fn run(command: Command, settings: &Settings) -> Result<()> {
    // `validate` connects nowhere: it checks the URL and pings nothing.
    let watchdog = match command {
        Command::Validate(_) => None,
        _ => crate::watchdog::Watchdog::new(settings.watchdog_url.as_ref()),
    };
    if let Some(w) = &watchdog {
        w.started().await;
    }
    let job = job_name(&command);
    let started = std::time::Instant::now();
    let outcome = run_command(command, settings).await;
    if let Some(job) = job {
        let run = crate::pushgateway::JobRun {
            job,
            location: settings.location.clone(),
            figures: crate::telemetry::figures(),
            exit_code: outcome.as_ref().err().map_or(0, Error::exit_code_number),
            seconds: started.elapsed().as_secs_f64(),
            finished_at: time::OffsetDateTime::now_utc(),
        };
        crate::pushgateway::push(settings.pushgateway_url.as_ref(), &run).await;
    }
    if let Some(w) = &watchdog {
        w.finished(outcome.as_ref().map(|_| ())).await;
    }
    outcome
}

/// The jobs a scheduler starts push their metrics under this name; a
/// person's commands (`check`, `validate`, `sites`, `migrate`) push none.
fn job_name(command: &Command) -> Option<&'static str> {
    match command {
        Command::ProbeOnce(_) => Some("probe-once"),
        Command::Drain(_) => Some("drain"),
        Command::Alert(a) if a.command.is_none() => Some("alert"),
        Command::Report(_) => Some("report"),
        Command::Prune(_) => Some("prune"),
        _ => None,
    }
}

async fn run_command(command: Command, settings: &Settings) -> Result<()> {
    let shutdown = shutdown_signal()?;
    match command {
        Command::ProbeOnce(args) => probe_once::command(settings, &args, shutdown).await,
        Command::Drain(args) => drain::run(settings, &args, shutdown).await,
        Command::Check(args) => check::run(settings, &args).await,
        Command::Migrate(args) => migrate::run(settings, args.only.as_deref()).await,
        Command::Prune(args) => prune::run(settings, &args).await,
        Command::Alert(args) => alert::run(settings, &args).await,
        Command::Report(args) => report::run(settings, &args).await,
        Command::Validate(args) => validate::run(settings, &args),
        Command::Sites(args) => sites::run(settings, &args).await,
    }
}

/// Resolves with the signal's name on the first SIGTERM or SIGINT. The
/// handlers are installed at once, so a signal during start-up is not lost.
/// A second signal ends the process at once, exit 1, whatever the job is
/// waiting for: the person or scheduler sending it does not want to wait for
/// the clean stop (and nothing is committed past what is stored, so nothing
/// is lost either).
fn shutdown_signal() -> Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let install =
        |kind| signal(kind).map_err(|e| Error::Job(anyhow::anyhow!("cannot handle signals: {e}")));
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let _ = first_tx.send(first);
        let second = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        crate::telemetry::final_error(&format!(
            "a second signal ({second}) after {first}: exiting at once; what was not stored stays for the next run"
        ));
        std::process::exit(1);
    });
    Ok(async move {
        match first_rx.await {
            Ok(signal) => signal,
            Err(_) => std::future::pending().await,
        }
    })
}
