//! `probe-once`: check every due site concurrently, publish one message per
//! check, confirm every delivery, summarise, exit.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::flags::{parse_duration, parse_tick, parse_time};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kafka::Publisher;
use crate::message::{Check, RunRecord, SCHEMA, rfc3339_ms};
use crate::probe::{self, Prober};
use crate::schedule::{self, Shard};
use crate::sites::Site;
use crate::telemetry;
use clap::Args;

#[derive(Debug, Args)]
pub struct ProbeOnceArgs {
    /// Print the messages to stdout as JSON lines instead of publishing them
    #[arg(long)]
    pub dry_run: bool,
    /// Check every site now, whatever its interval
    #[arg(long)]
    pub all: bool,
    /// How often the scheduler starts this job; a site with a longer
    /// `interval` is checked in one tick out of interval/tick
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_tick)]
    pub tick: std::time::Duration,
    /// Check only shard I of N (a stable, disjoint share of the sites); with
    /// just N, I comes from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Finish before this long after the start: stop starting checks, publish
    /// what is done
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<std::time::Duration>,
    /// Append a Markdown table of the run to this file (also to
    /// $GITHUB_STEP_SUMMARY when that is set)
    #[arg(long, value_name = "FILE")]
    pub summary: Option<std::path::PathBuf>,
    /// The run's clock, RFC 3339, for which sites are due (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

/// How one run picks its sites and when it must end.
#[derive(Debug, Clone)]
pub struct Options {
    /// Print the messages instead of publishing them.
    pub dry_run: bool,
    /// Check every site, whatever its interval.
    pub all: bool,
    /// How often the scheduler starts the job.
    pub tick: Duration,
    pub shard: Option<Shard>,
    /// The job must be over this long after it started.
    pub deadline: Option<Duration>,
    /// Files to append the Markdown table of the run to.
    pub summary_files: Vec<PathBuf>,
    /// The run's clock, for which sites are due (injected by tests).
    pub now: OffsetDateTime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dry_run: false,
            all: false,
            tick: DEFAULT_TICK,
            shard: None,
            deadline: None,
            summary_files: Vec::new(),
            now: OffsetDateTime::now_utc(),
        }
    }
}

/// The scheduler tick when not told otherwise: cron's finest.
pub const DEFAULT_TICK: Duration = Duration::from_secs(60);

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Sites configured, and those due in this run (tick and shard).
    pub sites: usize,
    pub due: usize,
    pub checked: usize,
    pub up: usize,
    pub down: usize,
    /// Messages the broker acknowledged (printed, for a dry run).
    pub published: usize,
    /// Why the run stopped early, if it did.
    pub stopped_by: Option<String>,
    pub seconds: f64,
    /// The checks were printed, not published.
    pub dry_run: bool,
    /// The shard this run checked (`2/4`), if any.
    pub shard: Option<String>,
}

/// Time kept before the deadline to confirm deliveries: a fifth of it, at
/// most 5 s.
fn reserve(deadline: Duration) -> Duration {
    (deadline / 5).min(Duration::from_secs(5))
}

/// Runs the due checks and publishes them, or prints them to `out` as JSON
/// lines when `dry_run`. Stops starting checks at the deadline (less the
/// time to confirm deliveries) or when `shutdown` resolves (with the
/// signal's name). Fails (exit 1) when a message is not acknowledged, or
/// when a signal cut the run short, after printing the summary.
pub async fn run(
    settings: &Settings,
    sites: Vec<Site>,
    options: &Options,
    out: &mut dyn Write,
    shutdown: impl Future<Output = &'static str>,
) -> Result<Summary> {
    let start = Instant::now();
    let started_at = OffsetDateTime::now_utc();
    let mut summary = Summary {
        sites: sites.len(),
        dry_run: options.dry_run,
        shard: options.shard.map(|s| s.to_string()),
        ..Summary::default()
    };
    let due = due_sites(sites, options);
    summary.due = due.len();

    let prober = Prober::new(&due, &settings.location).map_err(Error::config)?;
    let publisher = if options.dry_run {
        None
    } else {
        Some(Publisher::new(&settings.kafka)?)
    };
    let stop = CancellationToken::new();
    let mut results = probe::spawn_all(
        Arc::new(prober),
        due.into(),
        settings.concurrency,
        stop.clone(),
    );
    let end = options.deadline.map(|d| start + d);
    let stop_checks_at = options.deadline.map(|d| start + d - reserve(d));
    let mut sink = Sink {
        publisher,
        // Every check names its run: a run none of whose checks got an
        // answer is the prober's own outage (crate::rule::blind).
        run_id: uuid::Uuid::now_v7(),
        answered: 0,
        unsent: 0,
        enqueue_error: None,
        table: Vec::new(),
        keep_table: !options.summary_files.is_empty(),
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            result = results.recv() => {
                let Some(check) = result else { break };
                sink.take(check, &mut summary, out, &stop).await?;
            }
            () = sleep_until(stop_checks_at), if summary.stopped_by.is_none() => {
                summary.stopped_by = Some("the deadline".to_owned());
                stop.cancel();
            }
            signal = &mut shutdown, if summary.stopped_by.is_none() => {
                tracing::info!(signal, "stopping: no new checks; publishing what is done");
                summary.stopped_by = Some(signal.to_owned());
                stop.cancel();
            }
        }
    }
    let mut failure = None;
    let run_id = sink.run_id;
    let answered = sink.answered;
    if let Some(publisher) = sink.publisher {
        let sent = Sent {
            unsent: sink.unsent,
            enqueue_error: sink.enqueue_error,
            end,
        };
        failure = confirm(publisher, settings, &mut summary, sent, |summary| {
            run_record(settings, options, summary, run_id, answered, started_at)
        })
        .await;
    }
    out.flush().context("cannot write to stdout")?;
    summary.seconds = start.elapsed().as_secs_f64();
    telemetry::summary(settings.log_format, &summary);
    write_tables(
        &options.summary_files,
        &settings.location,
        &mut sink.table,
        options.now,
    )?;
    match failure.or_else(|| cut_short(&summary)) {
        Some(e) => Err(Error::Job(e)),
        None => Ok(summary),
    }
}

/// Where the checks go as they come: published (or printed for a dry
/// run), counted, kept for the summary tables.
struct Sink {
    /// None for a dry run: the checks go to stdout.
    publisher: Option<Publisher>,
    run_id: uuid::Uuid,
    /// Checks that got an answer (for the run record).
    answered: u64,
    /// Checks not published after an enqueue error.
    unsent: usize,
    enqueue_error: Option<String>,
    table: Vec<Check>,
    keep_table: bool,
}

impl Sink {
    async fn take(
        &mut self,
        mut check: Check,
        summary: &mut Summary,
        out: &mut dyn Write,
        stop: &CancellationToken,
    ) -> Result<()> {
        check.run_id = Some(self.run_id);
        summary.checked += 1;
        if crate::rule::answered(
            check.up,
            check.status_code.map(|c| c as i16),
            check.error_kind.map(|k| k.as_str()),
        ) {
            self.answered += 1;
        }
        if check.up {
            summary.up += 1;
        } else {
            summary.down += 1;
        }
        let payload = check.to_json();
        match self.publisher.as_mut() {
            // After an enqueue error, checks go on being counted but are not
            // published: what is queued is still confirmed (dropping the
            // producer would purge it).
            Some(_) if self.unsent > 0 => self.unsent += 1,
            Some(p) => {
                if let Err(e) = p.enqueue(&check.site, &payload).await {
                    tracing::error!(error = %format!("{e:#}"), "cannot enqueue: publishing no more; confirming what is queued");
                    self.enqueue_error = Some(format!("{e:#}"));
                    self.unsent += 1;
                    stop.cancel();
                }
            }
            None => {
                out.write_all(&payload)
                    .and_then(|()| out.write_all(b"\n"))
                    .context("cannot write to stdout")?;
                summary.published += 1;
            }
        }
        if self.keep_table {
            self.table.push(check);
        }
        Ok(())
    }
}

/// A run cut short by the scheduler (a signal) is not a success, even when
/// all it checked is published.
fn cut_short(summary: &Summary) -> Option<anyhow::Error> {
    let not_checked = summary.due - summary.checked;
    let signal = summary
        .stopped_by
        .as_deref()
        .filter(|s| s.starts_with("SIG"))?;
    (not_checked > 0).then(|| {
        anyhow!(
            "stopped by {signal}: {not_checked} of {} due sites were not checked",
            summary.due
        )
    })
}

/// The sites of this run: this shard's, due at this tick (or all).
fn due_sites(sites: Vec<Site>, options: &Options) -> Vec<Site> {
    let tick = schedule::tick_number(options.now, options.tick);
    sites
        .into_iter()
        .filter(|s| options.shard.is_none_or(|shard| shard.owns(&s.name)))
        .filter(|s| options.all || schedule::due(&s.name, s.interval, options.tick, tick))
        .collect()
}

/// What publishing left to confirm: checks not enqueued after an error,
/// the error, and the run's end.
struct Sent {
    unsent: usize,
    enqueue_error: Option<String>,
    end: Option<Instant>,
}

/// Confirms every delivery, then publishes the run record (the run ledger:
/// how this run went, once its checks are acknowledged; a run that could
/// not publish them cannot publish this either, and fails anyway). The
/// failure of the run, if any.
async fn confirm(
    mut publisher: Publisher,
    settings: &Settings,
    summary: &mut Summary,
    sent: Sent,
    record: impl FnOnce(&Summary) -> RunRecord,
) -> Option<anyhow::Error> {
    let enqueued = publisher.enqueued();
    let confirmation = publisher.settle(sent.end).await;
    summary.published = confirmation.acknowledged;
    let mut failure = if let Some(e) = sent.enqueue_error {
        Some(anyhow!(
            "{} of {} checks were not published: cannot enqueue: {e} ({} of the {enqueued} queued were acknowledged)",
            sent.unsent,
            sent.unsent + enqueued,
            confirmation.acknowledged
        ))
    } else if confirmation.lost > 0 {
        Some(anyhow!(
            "{} of {} messages were not acknowledged by {} within {}: {}",
            confirmation.lost,
            enqueued,
            settings.kafka.brokers,
            humantime::format_duration(confirmation.waited),
            confirmation.first_error.unwrap_or_default()
        ))
    } else {
        None
    };
    if failure.is_none() {
        let run = record(summary);
        let key = format!("run/{}", settings.location);
        failure = match publisher.enqueue(&key, &run.to_json()).await {
            Err(e) => Some(e.context("cannot publish the run record")),
            Ok(()) => {
                let c = publisher.settle(sent.end).await;
                (c.lost > 0).then(|| {
                    anyhow!(
                        "the run record was not acknowledged by {}: {}",
                        settings.kafka.brokers,
                        c.first_error.unwrap_or_default()
                    )
                })
            }
        };
    }
    publisher.close().await;
    failure
}

/// This run's record, as it ends.
fn run_record(
    settings: &Settings,
    options: &Options,
    summary: &Summary,
    run_id: uuid::Uuid,
    answered: u64,
    started_at: OffsetDateTime,
) -> RunRecord {
    RunRecord {
        schema: SCHEMA,
        record: RunRecord::RECORD.to_owned(),
        run_id,
        job: "probe-once".to_owned(),
        location: settings.location.clone(),
        shard: options.shard.map(|s| s.to_string()),
        tick_s: options.tick.as_secs_f64(),
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        sites_due: summary.due as u64,
        checked: summary.checked as u64,
        published: summary.published as u64,
        answered: Some(answered),
        outcome: match summary.stopped_by.as_deref() {
            None => "ok".to_owned(),
            Some("the deadline") => "deadline".to_owned(),
            Some(signal) => signal.to_owned(),
        },
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl telemetry::JobSummary for Summary {
    const JOB: &'static str = "probe-once";

    fn line(&self) -> String {
        let verb = if self.dry_run { "printed" } else { "published" };
        let mut text = format!(
            "probe-once: {} sites checked, {} up, {} down, {} {verb} in {:.2} s",
            self.checked, self.up, self.down, self.published, self.seconds
        );
        if let Some(why) = &self.stopped_by {
            text += &format!(
                "; stopped by {why} with {} due sites not checked",
                self.due - self.checked
            );
        }
        if self.due < self.sites {
            text += &format!("; {} of {} sites due", self.due, self.sites);
            if let Some(shard) = &self.shard {
                text += &format!(" in shard {shard}");
            }
        }
        text
    }
}

/// Appends the run as a Markdown table (site, up, status, response time,
/// certificate days left) to each file, as GitHub's `$GITHUB_STEP_SUMMARY`
/// expects.
fn write_tables(
    files: &[PathBuf],
    location: &str,
    checks: &mut [Check],
    now: OffsetDateTime,
) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    checks.sort_by(|a, b| a.site.cmp(&b.site));
    let markdown = markdown_table(location, checks, now);
    for file in files {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(markdown.as_bytes()))
            .map_err(|e| {
                Error::Job(anyhow!(
                    "cannot write the summary to {}: {e}",
                    file.display()
                ))
            })?;
    }
    Ok(())
}

/// The Markdown table of a run.
pub fn markdown_table(location: &str, checks: &[Check], now: OffsetDateTime) -> String {
    let up = checks.iter().filter(|c| c.up).count();
    let mut md = format!(
        "### sitewatch: {up} of {} sites up ({}, {})\n\n| site | up | status | response time | certificate days left | error |\n|---|---|---|---|---|---|\n",
        checks.len(),
        crate::escape::markdown(location),
        rfc3339_ms::format(&now)
    );
    let cell = crate::escape::markdown;
    for c in checks {
        let status = c.status_code.map_or("-".to_owned(), |s| s.to_string());
        let days = c
            .tls_expires_at
            .map_or("-".to_owned(), |t| (t - now).whole_days().to_string());
        let error = match (c.error_kind, &c.error) {
            (Some(kind), Some(e)) => format!("{}: {}", kind.as_str(), cell(e)),
            _ => String::new(),
        };
        md += &format!(
            "| {} | {} | {status} | {:.0} ms | {days} | {error} |\n",
            cell(&c.site),
            if c.up { "✅" } else { "❌" },
            c.response_time_ms
        );
    }
    md.push('\n');
    md
}

/// `probe-once` as the command line asks it: the sites from their source,
/// the options from the arguments, the checks printed to stdout for a dry
/// run.
pub async fn command(
    settings: &Settings,
    args: &ProbeOnceArgs,
    shutdown: impl Future<Output = &'static str>,
) -> Result<()> {
    let shard = args
        .shard
        .as_deref()
        .map(|s| Shard::parse(s, std::env::var("JOB_COMPLETION_INDEX").ok().as_deref()))
        .transpose()
        .map_err(Error::config)?;
    let mut summary_files: Vec<_> = args.summary.iter().cloned().collect();
    if let Some(github) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        summary_files.push(github.into());
    }
    let options = Options {
        dry_run: args.dry_run,
        all: args.all,
        tick: args.tick,
        shard,
        deadline: args.deadline,
        summary_files,
        now: args.at.unwrap_or_else(time::OffsetDateTime::now_utc),
    };
    let sites = load_sites(settings, args.deadline).await?;
    let mut stdout = std::io::stdout().lock();
    run(settings, sites, &options, &mut stdout, shutdown)
        .await
        .map(|_| ())
}

/// The sites probe-once checks (and `check --site` finds one in): the
/// sites file's or `SITEWATCH_SITES`, or the `sites` table's valid rows
/// (each bad row named in a warning), reading the table within the
/// deadline's first half, or 10 s.
pub async fn load_sites(
    settings: &Settings,
    deadline: Option<std::time::Duration>,
) -> Result<Vec<crate::sites::Site>> {
    Ok(match &settings.sites {
        crate::sites::SitesSource::Database(_) => {
            let timeout = deadline.map_or(crate::store::DEFAULT_CONNECT_TIMEOUT, |d| {
                (d / 2).min(crate::store::DEFAULT_CONNECT_TIMEOUT)
            });
            let (sites, skipped) =
                crate::site_table::load(&settings.database, &settings.sites, timeout).await?;
            for why in skipped {
                tracing::warn!("{why}: skipped, the other sites are checked");
            }
            sites
        }
        source => crate::sites::load(source)?,
    })
}
