//! The day partitions of `checks`: one per UTC day, made by
//! `sitewatch_check_partition` (migrations/) before a batch needs it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use anyhow::Context as _;
use tokio_postgres::Client;

/// The UTC days (Julian day numbers) whose partitions a run knows exist.
#[derive(Debug, Default)]
pub struct KnownDays(Mutex<BTreeSet<i32>>);

impl KnownDays {
    /// Creates the partitions of `days` that are missing, each in its own
    /// short transaction. With `trust_known`, days already known are not
    /// asked again.
    pub async fn ensure(
        &self,
        client: &Client,
        days: BTreeSet<i32>,
        trust_known: bool,
    ) -> anyhow::Result<()> {
        let wanted: Vec<i32> = {
            let known = self.0.lock().expect("not poisoned");
            days.into_iter()
                .filter(|d| !trust_known || !known.contains(d))
                .collect()
        };
        for day in wanted {
            let date = time::Date::from_julian_day(day).context("a day out of range")?;
            client
                .execute("SELECT sitewatch_check_partition($1)", &[&date])
                .await
                .with_context(|| format!("cannot create the partition of checks for {date}"))?;
            self.0.lock().expect("not poisoned").insert(day);
        }
        Ok(())
    }
}
