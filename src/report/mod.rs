//! `report`: what the stored checks say, per site. Read from the rollups
//! (and the chunks not folded yet) wherever it can, so that 30 days of
//! 1,000 sites checked every minute are tens of thousands of rollup rows,
//! not 43 million checks; raw rows are read only for the latest check of
//! each location and for the hours that hold failed checks (to place
//! outages to the check).
//!
//! Windows count whole UTC hours, the current one included: `24h` is this
//! hour and the 23 before it. Everything is read in one snapshot.

pub mod announcements;
mod compute;
#[cfg(test)]
mod fixture;
pub mod html;
pub mod look;
mod model;
pub mod openmetrics;
pub mod period;
mod queries;
pub mod render;

use std::collections::BTreeSet;

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::history::rollup;

use compute::*;
pub use model::*;
use queries::*;

/// Builds the report, in one repeatable-read snapshot. Given more than one
/// connection, the daily rollups, the hourly ones and the hours with
/// failures are read at once, each on its own, every one in the first
/// transaction's snapshot (`pg_export_snapshot`).
pub async fn build(clients: &mut [Client], options: &Options) -> anyhow::Result<Vec<SiteReport>> {
    let (first, others) = clients
        .split_first_mut()
        .context("the report needs a database connection")?;
    let (tx, side) = snapshot(first, others).await?;
    let spans = Spans::of(options);
    let filter: Vec<&str> = options.sites.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let phase = |what: &str| {
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "report: {what}"
        )
    };
    // The chunks not folded yet: a few rows, read first.
    let mut open = rollup::open_chunks(&tx).await?;
    open.tallies.retain(|(site, _, hour), _| {
        *hour >= spans.from.min(spans.from_day)
            && (filter.is_empty() || filter.contains(&site.as_str()))
    });
    // Three reads side by side: the daily rollups, the hourly ones, and the
    // outages (the failed hours, which of them can hold one, and those
    // stretches check by check).
    let daily = async {
        let daily = daily_rollups(&tx, &spans, &filter).await?;
        phase("read the daily rollups");
        anyhow::Ok(daily)
    };
    let hourly_tx = side.first().unwrap_or(&tx);
    let hourly = async {
        let (los, his, sketched) = hourly_ranges(&spans, options.page);
        let rows = hourly_rollups(hourly_tx, &los, &his, &sketched, &filter).await?;
        phase("read the hourly rollups");
        anyhow::Ok(rows)
    };
    let failed_tx = side.get(1).or(side.first()).unwrap_or(&tx);
    let failures = async {
        let mut failed = failed_hours(failed_tx, &filter).await?;
        phase("read the hours with failures");
        failed.extend(open_failed_hours(&open));
        let rule_of = |site: &str| options.config.policy(site).rule();
        let (down_hours, latest_failed) = hours_to_read(failed, &rule_of, spans.now);
        let last_errors = last_errors(failed_tx, &latest_failed).await?;
        phase("read the latest failed checks");
        // The page lists the outages of its 90 days.
        let incidents_from = if options.page {
            spans.report_start.min(page_start(spans.now))
        } else {
            spans.report_start
        };
        let stretches = stretches_to_read(&down_hours, incidents_from);
        let outages = read_stretches(failed_tx, &stretches).await?;
        phase(&format!(
            "read {} stretches check by check",
            stretches.len()
        ));
        anyhow::Ok((last_errors, outages))
    };
    let (daily, hourly, (last_errors, outages)) = tokio::try_join!(daily, hourly, failures)?;
    let mut tallies = Tallies::assemble(&spans, &open, daily, hourly);
    let sites = sites_to_report(&tallies, options);

    // The smaller reads, side by side too, in the same snapshot.
    let (first_side, second_side) = (
        side.first().unwrap_or(&tx),
        side.get(1).or(side.first()).unwrap_or(&tx),
    );
    let latest = async {
        let pairs_from = at(tallies.pairs_from);
        let latest = latest_checks(&tx, &tallies.pairs, pairs_from, spans.now).await?;
        phase("read the latest checks");
        anyhow::Ok(latest)
    };
    let firsts = async {
        let firsts = first_checks(first_side, &sites).await?;
        phase("read the first checks");
        anyhow::Ok(firsts)
    };
    let ledger = async {
        let ledger = run_ledger(second_side, at(spans.report_start), spans.now).await?;
        phase("read the run ledger");
        anyhow::Ok(ledger)
    };
    let (latest, firsts, ledger) = tokio::try_join!(latest, firsts, ledger)?;
    for read in maintenance_reads(
        &options.config,
        &sites,
        spans.from.min(spans.from_day),
        spans.now,
    ) {
        leave_out_maintenance(&tx, &read, &open, &mut tallies).await?;
        phase(&format!(
            "read the maintenance of {} sites",
            read.sites.len()
        ));
    }
    for t in side {
        t.commit().await.ok();
    }
    tx.commit().await.ok();

    let mut out = Vec::new();
    for site in sites {
        let mut report = site_report(
            &site,
            options,
            &tallies,
            &latest,
            &outages,
            &firsts,
            &last_errors,
        );
        for l in &mut report.locations {
            l.runs = ledger.get(&l.location).cloned();
        }
        out.push(report);
    }
    phase("built the reports");
    Ok(out)
}

/// Records the checks `read`'s sites made in maintenance in their
/// tallies, to be left out of every count.
async fn leave_out_maintenance(
    tx: &tokio_postgres::Transaction<'_>,
    read: &MaintenanceReads,
    open: &rollup::Rollup,
    tallies: &mut Tallies,
) -> anyhow::Result<()> {
    let mut counts = maintenance_counts(tx, read).await?;
    let whole = |hour: i64| read.hours.iter().any(|(lo, hi)| (*lo..*hi).contains(&hour));
    for ((site, _, hour), t) in &open.tallies {
        if whole(*hour) && read.sites.binary_search(site).is_ok() {
            counts.push((site.clone(), *hour, t.checks, t.up_checks));
        }
    }
    for (site, hour, checks, up) in counts {
        tallies
            .sites
            .entry(site)
            .or_default()
            .maintenance
            .push((hour, checks, up));
    }
    Ok(())
}

/// The sites a report covers, in name order, without reading their
/// histories: those asked for, or else those with rollups in the longest
/// window (the chunks not folded yet too) and those configured. What
/// [`build`] reports on when given none; the page reads them a part at a
/// time.
pub async fn sites(client: &Client, options: &Options) -> anyhow::Result<Vec<String>> {
    if !options.sites.is_empty() {
        let mut sites = options.sites.clone();
        sites.sort();
        sites.dedup();
        return Ok(sites);
    }
    let spans = Spans::of(options);
    let from = compute::at(spans.from.div_euclid(compute::DAY) * compute::DAY);
    let rows = client
        .query(
            "SELECT site FROM rollups_daily WHERE day >= $1 AND day <= $2
             UNION SELECT site FROM rollups_hourly WHERE hour >= $3 AND hour <= $4",
            &[&from.date(), &spans.now.date(), &from, &spans.now],
        )
        .await
        .context("cannot list the sites checked")?;
    let mut sites: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let open = rollup::open_chunks(client).await?;
    let from_s = from.unix_timestamp();
    let last = rollup::hour_of(spans.now);
    sites.extend(
        open.tallies
            .keys()
            .filter(|(_, _, hour)| *hour >= from_s && *hour <= last)
            .map(|(site, _, _)| site.clone()),
    );
    sites.extend(options.config.urls.keys().cloned());
    Ok(sites.into_iter().collect())
}

/// Every site seen in the longest window, and the sites asked for (or, when
/// none is, every site configured: one never checked is `unknown`).
fn sites_to_report(tallies: &Tallies, options: &Options) -> BTreeSet<String> {
    let mut sites: BTreeSet<String> = tallies.pairs.iter().map(|(s, _)| s.clone()).collect();
    if options.sites.is_empty() {
        sites.extend(options.config.urls.keys().cloned());
    }
    sites.extend(options.sites.iter().cloned());
    sites
}
