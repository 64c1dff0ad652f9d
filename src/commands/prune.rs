//! `prune`: drop the stored checks older than `--keep`, whole UTC days at a
//! time (the `checks_YYYYMMDD` partitions), the partitions of days after
//! tomorrow (future-dated checks from before drain refused them), and the
//! rollups older than `--keep-rollups`.
//!
//! Safe while drains run: dropping a partition waits for the transactions
//! that use `checks` (a drain's batch, a fraction of a second) and makes
//! new ones wait for it (milliseconds). It waits at most 5 s at a time for
//! its lock and tries again, so it never stalls drains for long. A check
//! that arrives later for a dropped day gets its partition back.

use std::time::Duration;

use time::OffsetDateTime;

use super::flags::{parse_duration, parse_time};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::history::retention;
use crate::store;
use crate::telemetry;
use clap::Args;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep the checks of this long (such as 30d): a day goes once all of
    /// it is older
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keep: std::time::Duration,
    /// Keep the hourly and daily rollups this long (at least --keep)
    #[arg(long, value_name = "DURATION", default_value = "400d", value_parser = parse_duration)]
    pub keep_rollups: std::time::Duration,
    /// The run's clock, RFC 3339 (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

/// How long one attempt waits for the lock on `checks`, and how many.
const LOCK_WAIT: Duration = Duration::from_secs(5);
const ATTEMPTS: u32 = 6;

pub async fn run(settings: &Settings, args: &PruneArgs) -> Result<()> {
    if args.keep_rollups < args.keep {
        return Err(Error::config(format!(
            "--keep-rollups ({}) is shorter than --keep ({}): rollups must outlive the checks they sum up",
            humantime::format_duration(args.keep_rollups),
            humantime::format_duration(args.keep)
        )));
    }
    let started = std::time::Instant::now();
    let now = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let cutoff = now - args.keep;
    let rollup_cutoff = now - args.keep_rollups;
    let session = store::Session {
        application_name: "sitewatch prune".to_owned(),
        connect_timeout: store::DEFAULT_CONNECT_TIMEOUT,
        limits: Some(store::Limits {
            idle: Duration::from_secs(600),
            statement: Duration::from_secs(600),
            lock: LOCK_WAIT,
        }),
    };
    let db = store::connect_as(&settings.database, &session).await?;
    let first_kept = cutoff.to_offset(time::UtcOffset::UTC).date();
    // Past tomorrow nothing is stored by a drain (it dead-letters checks
    // dated more than minutes ahead): such partitions hold checks a bad
    // clock or a forged message left before it did.
    let last_kept = (now + time::Duration::DAY)
        .to_offset(time::UtcOffset::UTC)
        .date();
    let mut dropped = Vec::new();
    for (name, day) in retention::day_partitions(&db).await? {
        if day >= first_kept && day <= last_kept {
            continue;
        }
        retention::drop_partition(&db, &name, LOCK_WAIT, ATTEMPTS).await?;
        tracing::info!(partition = %name, "dropped");
        dropped.push(day);
    }
    let first_kept_day = rollup_cutoff.to_offset(time::UtcOffset::UTC).date();
    let (hours, days) = retention::delete_rollups(
        &db,
        rollup_cutoff,
        now + time::Duration::DAY,
        (first_kept_day, last_kept),
    )
    .await?;
    let summary = Pruned {
        dropped_days: dropped.iter().map(|d| d.to_string()).collect(),
        kept_from: first_kept.to_string(),
        hourly_rollups_deleted: hours,
        daily_rollups_deleted: days,
        rollups_kept_from: first_kept_day.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    };
    telemetry::summary(settings.log_format, &summary);
    Ok(())
}

/// What one prune did.
#[derive(serde::Serialize)]
struct Pruned {
    /// The day partitions of `checks` dropped, oldest first.
    dropped_days: Vec<String>,
    /// The first day of checks kept.
    kept_from: String,
    hourly_rollups_deleted: u64,
    daily_rollups_deleted: u64,
    #[serde(skip)]
    rollups_kept_from: String,
    seconds: f64,
}

impl telemetry::JobSummary for Pruned {
    const JOB: &'static str = "prune";

    fn line(&self) -> String {
        let mut text = format!(
            "prune: {} days of checks dropped (before {}), {} hourly and {} daily rollups deleted (before {}) in {:.2} s",
            self.dropped_days.len(),
            self.kept_from,
            self.hourly_rollups_deleted,
            self.daily_rollups_deleted,
            self.rollups_kept_from,
            self.seconds
        );
        if let (Some(first), Some(last)) = (self.dropped_days.first(), self.dropped_days.last()) {
            text += &format!("; dropped {first} to {last}");
        }
        text
    }
}
