//! What `prune` deletes: the day partitions of `checks` outside what is
//! kept, and the rollups older than theirs (or dated in the future).

use std::time::Duration;

use anyhow::Context as _;
use time::OffsetDateTime;
use tokio_postgres::Client;

use crate::error::{Error, Result};

/// The day partitions of `checks`, oldest first.
pub async fn day_partitions(db: &Client) -> Result<Vec<(String, time::Date)>> {
    let rows = db
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'checks'::regclass",
            &[],
        )
        .await
        .context("cannot list the partitions of checks (did `sitewatch migrate` run?)")?;
    let format = time::macros::format_description!("[year][month][day]");
    let mut parts: Vec<(String, time::Date)> = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            let day = time::Date::parse(name.strip_prefix("checks_")?, &format).ok()?;
            Some((name, day))
        })
        .collect();
    parts.sort_by_key(|(_, day)| *day);
    Ok(parts)
}

/// Drops one partition, trying `attempts` times while drains hold
/// `checks` longer than the session's lock timeout (`lock_wait`).
pub async fn drop_partition(
    db: &Client,
    name: &str,
    lock_wait: Duration,
    attempts: u32,
) -> Result<()> {
    let mut attempt = 1;
    loop {
        match db
            .batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\""))
            .await
        {
            Ok(()) => return Ok(()),
            Err(e)
                if attempt < attempts
                    && e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
            {
                tracing::info!(
                    partition = name,
                    attempt,
                    ?lock_wait,
                    "checks is busy: trying again"
                );
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(Error::Job(
                    anyhow::Error::new(e).context(format!("cannot drop {name}")),
                ));
            }
        }
    }
}

/// Deletes the hourly rollups of hours that ended before `cutoff` or start
/// after `future`, and the daily ones of days before `first_day` (`cutoff`'s)
/// or after `last_day`: how many of each.
pub async fn delete_rollups(
    db: &Client,
    cutoff: OffsetDateTime,
    future: OffsetDateTime,
    (first_day, last_day): (time::Date, time::Date),
) -> Result<(u64, u64)> {
    let hours = db
        .execute(
            "DELETE FROM rollups_hourly WHERE hour + interval '1 hour' <= $1 OR hour > $2",
            &[&cutoff, &future],
        )
        .await
        .context("cannot delete old hourly rollups")?;
    let days = db
        .execute(
            "DELETE FROM rollups_daily WHERE day < $1 OR day > $2",
            &[&first_day, &last_day],
        )
        .await
        .context("cannot delete old daily rollups")?;
    Ok((hours, days))
}
