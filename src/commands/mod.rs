//! The subcommands: one module each, each with a `run`; and the signals
//! that stop a job cleanly.

pub mod alert;
pub mod check;
pub mod migrate;
pub mod probe_once;
pub mod prune;
pub mod report;
pub mod sites;
pub mod validate;

use crate::cli::Command;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::schedule::Shard;

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
    let shutdown = shutdown_signal()?;
    match command {
        Command::ProbeOnce(args) => {
            let shard = args
                .shard
                .as_deref()
                .map(|s| Shard::parse(s, std::env::var("JOB_COMPLETION_INDEX").ok().as_deref()))
                .transpose()
                .map_err(Error::config)?;
            let mut summary_files: Vec<_> = args.summary.into_iter().collect();
            if let Some(github) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty())
            {
                summary_files.push(github.into());
            }
            let options = probe_once::Options {
                dry_run: args.dry_run,
                all: args.all,
                tick: args.tick,
                shard,
                deadline: args.deadline,
                summary_files,
                now: args.at.unwrap_or_else(time::OffsetDateTime::now_utc),
            };
            let sites = match &settings.sites {
                crate::sites::SitesSource::Database(_) => {
                    // Within the deadline's first half, or 10 s.
                    let timeout = args
                        .deadline
                        .map_or(crate::store::DEFAULT_CONNECT_TIMEOUT, |d| {
                            (d / 2).min(crate::store::DEFAULT_CONNECT_TIMEOUT)
                        });
                    let (sites, skipped) =
                        crate::site_table::load(&settings.database, &settings.sites, timeout)
                            .await?;
                    for why in skipped {
                        tracing::warn!("{why}: skipped, the other sites are checked");
                    }
                    sites
                }
                source => crate::sites::load(source)?,
            };
            let mut stdout = std::io::stdout().lock();
            probe_once::run(settings, sites, &options, &mut stdout, shutdown)
                .await
                .map(|_| ())
        }
        Command::Drain(args) => {
            let options = crate::drain::Options {
                batch_size: args.batch_size,
                max_messages: args.max_messages,
                max_duration: args.max_duration,
                deadline: args.deadline,
                batch_bytes: args.batch_bytes,
                claim_timeout: args.claim_timeout,
                idle_timeout: args.idle_timeout,
                max_age: args.max_age,
                now: args.at,
            };
            crate::drain::run(settings, &options, shutdown)
                .await
                .map(|_| ())
        }
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
