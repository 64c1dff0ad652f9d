//! `report`: what the stored checks say, per site. Read from the rollups
//! (and the chunks not folded yet) wherever it can, so that 30 days of
//! 1,000 sites checked every minute are tens of thousands of rollup rows,
//! not 43 million checks; raw rows are read only for the latest check of
//! each location and for the hours that hold failed checks (to place
//! outages to the check).
//!
//! Windows count whole UTC hours, the current one included: `24h` is this
//! hour and the 23 before it. Everything is read in one snapshot.

mod compute;
pub mod html;
mod model;
mod queries;
pub mod render;

use std::collections::{BTreeSet, HashMap};

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::rollup::{self};
pub use crate::rule::SiteState as State;
use crate::sketch::SketchSum;

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
    let tx = begin(first).await?;
    let mut side = Vec::new();
    if !others.is_empty() {
        let snapshot: String = tx
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .context("cannot export the report's snapshot")?
            .get(0);
        for client in others.iter_mut() {
            let t = begin(client).await?;
            t.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
                .await
                .context("cannot share the report's snapshot")?;
            side.push(t);
        }
    }
    let now = options.now;
    let report_hours = window_hours(options.window);
    let longest = UPTIME_WINDOWS
        .iter()
        .map(|(_, h)| *h as i64)
        .chain([report_hours])
        .max()
        .unwrap_or(report_hours);
    let from = window_start(now, longest);
    let today = rollup::hour_of(now).div_euclid(DAY) * DAY;
    let mut from_day = from.div_euclid(DAY) * DAY;
    if options.page {
        from_day = from_day.min(today - (PAGE_DAYS - 1) * DAY);
    }
    let filter: Vec<&str> = options.sites.iter().map(String::as_str).collect();

    let started = std::time::Instant::now();
    let phase = |what: &str| {
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "report: {what}"
        )
    };
    // The sketches only where the report window needs them (elsewhere,
    // uptime needs the counts alone): they are most of the bytes. As bytes
    // (`*_packed`): PostgreSQL sends arrays element by element, ten times
    // slower.
    let sketches = ["latency", "dns", "connect", "tls", "ttfb"]
        .iter()
        .map(|p| format!("CASE WHEN {{sketched}} THEN {p}_packed END"))
        .collect::<Vec<_>>()
        .join(", ");
    let columns = format!(
        "site, location, extract(epoch FROM {{t}})::bigint, checks, up_checks, {sketches},
         (extract(epoch FROM tls_checked_at) * 1000)::bigint, extract(epoch FROM tls_expires_at)::bigint"
    );
    let report_start = window_start(now, report_hours);

    // Daily rows, with sketches for the whole days inside the report window;
    // and the chunks not folded yet.
    // The chunks not folded yet: a few rows, read first.
    let mut open = rollup::open_chunks(&tx).await?;
    open.tallies.retain(|(site, _, hour), _| {
        *hour >= from.min(from_day) && (filter.is_empty() || filter.contains(&site.as_str()))
    });
    // Their sketches (only the report window's days have them) are summed
    // per site as they stream in, straight from the bytes: a month of 1,000
    // sites is 155,000 sketches, never held one by one.
    let daily = async {
        use futures::TryStreamExt as _;
        let sql = format!(
            "SELECT {} FROM rollups_daily
             WHERE day >= $1::date AND day <= $4::date
               AND (cardinality($2::text[]) = 0 OR site = ANY($2))",
            columns
                .replace("{t}", "(day::timestamp AT TIME ZONE 'UTC')")
                .replace("{sketched}", "(day::timestamp AT TIME ZONE 'UTC') >= $3")
        );
        // Nothing after today counts, whatever a bad clock stored.
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
            &at(from_day).date(),
            &filter,
            &at(report_start),
            &at(today).date(),
        ];
        let stream = tx
            .query_raw(&sql, params.iter().copied())
            .await
            .context("cannot read the daily rollups")?;
        futures::pin_mut!(stream);
        let mut rows = Vec::new();
        let mut window: HashMap<String, [SketchSum; 5]> = HashMap::new();
        while let Some(row) = stream
            .try_next()
            .await
            .context("cannot read the daily rollups")?
        {
            let (site, location, day, tally) = counts_row(&row);
            // Today's daily row is never summed: today comes from hours.
            let packed: [Option<&[u8]>; 5] = std::array::from_fn(|i| {
                row.get::<_, Option<&[u8]>>(5 + i)
                    .filter(|bytes| !bytes.is_empty())
            });
            if day < today && packed.iter().any(Option::is_some) {
                let sums = window.entry(site.clone()).or_default();
                for (sum, bytes) in sums.iter_mut().zip(packed) {
                    if let Some(bytes) = bytes {
                        sum.add_packed(bytes);
                    }
                }
            }
            rows.push((site, location, day, tally));
        }
        phase("read the daily rollups");
        anyhow::Ok((rows, window))
    };
    // Hourly rows only where whole days do not serve. With sketches: today,
    // and the report window's first, partial day (the page: all of the
    // window). Counts alone: the uptime windows' first days.
    let mut full = vec![
        (today, today + DAY),
        (report_start, report_start.div_euclid(DAY) * DAY + DAY),
    ];
    if options.page {
        full.push((report_start, today + DAY));
    }
    let full = merge_ranges(full);
    let counts: Vec<(i64, i64)> = UPTIME_WINDOWS
        .iter()
        .map(|(_, h)| {
            let start = window_start(now, *h as i64);
            (start, start.div_euclid(DAY) * DAY + DAY)
        })
        .collect();
    let counts = subtract_ranges(&merge_ranges(counts), &full);
    let mut los = Vec::new();
    let mut his = Vec::new();
    let mut with_sketches = Vec::new();
    for (ranges, sketched) in [(&full, true), (&counts, false)] {
        for (lo, hi) in ranges {
            los.push(at(*lo));
            his.push(at(*hi));
            with_sketches.push(sketched);
        }
    }
    let hourly_tx = side.first().unwrap_or(&tx);
    let hourly = async {
        let rows = tallies(
                hourly_tx,
                &format!(
                    // Each range on its own through the `hour` index (the
                    // OFFSET keeps the subquery whole): joined on the
                    // ranges, the planner scanned the whole table
                    // (docs/src/decisions.md, report).
                    "SELECT {} FROM unnest($1::timestamptz[], $2::timestamptz[], $4::bool[]) AS r(lo, hi, sketched)
                     CROSS JOIN LATERAL (
                         SELECT * FROM rollups_hourly x WHERE x.hour >= r.lo AND x.hour < r.hi OFFSET 0
                     ) AS h
                     WHERE cardinality($3::text[]) = 0 OR h.site = ANY($3)",
                    columns
                        .replace("{t}", "h.hour")
                        .replace("{sketched}", "r.sketched")
                ),
                &[&los, &his, &filter, &with_sketches],
            )
            .await
            .context("cannot read the hourly rollups")?;
        phase("read the hourly rollups");
        anyhow::Ok(rows)
    };
    // The outages: the failed hours, which of them can hold one, and those
    // stretches check by check; on their own connection, beside the rest.
    let failed_tx = side.get(1).or(side.first()).unwrap_or(&tx);
    let window_from = window_start(now, report_hours);
    let failures = async {
        let mut failed = failed_hours(failed_tx, &filter).await?;
        phase("read the hours with failures");
        for ((site, location, hour), t) in &open.tallies {
            if t.up_checks < t.checks {
                failed.push(FailedHour {
                    site: site.clone(),
                    location: location.clone(),
                    hour: *hour,
                    failed: t.checks - t.up_checks,
                    before: None,
                });
            }
        }
        let rule_of = |site: &str| options.config.policy(site).rule();
        let (down_hours, latest_failed) = hours_to_read(failed, &rule_of, now);
        let last_errors = last_errors(failed_tx, &latest_failed).await?;
        phase("read the latest failed checks");
        let runs = stretches_to_read(&down_hours, window_from);
        let outages = read_stretches(failed_tx, &runs).await?;
        phase(&format!("read {} stretches check by check", runs.len()));
        anyhow::Ok((last_errors, outages))
    };
    let (daily, hourly, (last_errors, outages)) = tokio::try_join!(daily, hourly, failures)?;

    let mut tallies = Tallies {
        pairs_from: from.div_euclid(DAY) * DAY,
        ..Tallies::default()
    };
    for ((site, location, hour), t) in &open.tallies {
        tallies.add((site.clone(), location.clone(), *hour, t.clone()), |s| {
            &mut s.open
        });
    }
    let (daily, window) = daily;
    for row in daily {
        tallies.add(row, |s| &mut s.daily);
    }
    for (site, sums) in window {
        tallies.sites.entry(site).or_default().daily_window = Some(sums.map(|d| d.sketch()));
    }
    for row in hourly {
        tallies.add(row, |s| &mut s.hourly);
    }
    // Every site seen in the longest window, and the sites asked for (or,
    // when none is, every site configured: one never checked is `unknown`).
    let mut sites: BTreeSet<String> = tallies.pairs.iter().map(|(s, _)| s.clone()).collect();
    if options.sites.is_empty() {
        sites.extend(options.config.urls.keys().cloned());
    }
    sites.extend(options.sites.iter().cloned());

    // The smaller reads, side by side too, in the same snapshot.
    let (first_side, second_side) = (
        side.first().unwrap_or(&tx),
        side.get(1).or(side.first()).unwrap_or(&tx),
    );
    let latest = async {
        let latest = latest_checks(&tx, &tallies.pairs, at(tallies.pairs_from), now).await?;
        phase("read the latest checks");
        anyhow::Ok(latest)
    };
    let firsts = async {
        let firsts = first_checks(first_side, &sites).await?;
        phase("read the first checks");
        anyhow::Ok(firsts)
    };
    let ledger = async {
        let ledger = run_ledger(second_side, at(report_start), now).await?;
        phase("read the run ledger");
        anyhow::Ok(ledger)
    };
    let (latest, firsts, ledger) = tokio::try_join!(latest, firsts, ledger)?;
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
