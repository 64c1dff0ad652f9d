//! `report`: what the stored checks say, per site. Read from the rollups
//! (and the chunks not folded yet) wherever it can, so that 30 days of
//! 1,000 sites checked every minute are tens of thousands of rollup rows,
//! not 43 million checks; raw rows are read only for the latest check of
//! each location and for the hours that hold failed checks (to place
//! outages to the check).
//!
//! Windows count whole UTC hours, the current one included: `24h` is this
//! hour and the 23 before it. Everything is read in one snapshot.

pub mod html;
pub mod render;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::{Client, IsolationLevel};

use crate::alert::policy::Config;
use crate::message::rfc3339_ms;
use crate::rollup::{self, Tally};
pub use crate::rule::SiteState as State;
use crate::rule::{self, Period, Quorum, Rule, Seen, Streak};
use crate::sketch::{Sketch, SketchSum};

/// What to report on.
#[derive(Debug, Clone)]
pub struct Options {
    /// The window of `checks`, `latency_ms`, `phases_p95_ms`, `incidents`.
    pub window: Duration,
    /// Only these sites (all when empty).
    pub sites: Vec<String>,
    pub now: OffsetDateTime,
    /// Each site's rule (and URL) and the maintenance windows: the sites file's, as
    /// `alert` reads them.
    pub config: Config,
    /// Also read what the status page draws ([`Page`]): 90 days of daily
    /// uptime and the window's latency hour by hour.
    pub page: bool,
}

/// How many days the status page's uptime strip shows.
pub const PAGE_DAYS: i64 = 90;

/// The uptime windows every report carries.
pub const UPTIME_WINDOWS: [(&str, u64); 3] = [("24h", 24), ("7d", 168), ("30d", 720)];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Phases {
    pub dns: Option<f64>,
    pub connect: Option<f64>,
    pub tls: Option<f64>,
    pub ttfb: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastError {
    #[serde(with = "rfc3339_ms")]
    pub at: OffsetDateTime,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub status_code: Option<i16>,
}

impl LastError {
    /// For a person: `timeout: no answer in 5s`, `status 503, expected
    /// 200-399`, `http 503`.
    pub fn describe(&self) -> String {
        match (&self.error_kind, &self.error, self.status_code) {
            (Some(kind), Some(error), _) if kind != "http" || self.status_code.is_none() => {
                format!("{kind}: {error}")
            }
            (_, Some(error), _) => error.clone(),
            (_, None, Some(code)) => format!("status {code}"),
            (Some(kind), None, None) => kind.clone(),
            (None, None, None) => "down".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    #[serde(with = "rfc3339_ms")]
    pub start: OffsetDateTime,
    #[serde(with = "rfc3339_ms::option")]
    pub end: Option<OffsetDateTime>,
    /// Until the end, or until the report's time while it lasts.
    pub duration_s: f64,
    /// Of the first failed check of the outage (`http` for a bad status).
    pub error_kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationState {
    pub location: String,
    pub state: State,
    #[serde(with = "rfc3339_ms")]
    pub last_check_at: OffsetDateTime,
    /// The location's `probe-once` runs in the report window (the run
    /// ledger); null when it has recorded none.
    pub runs: Option<Runs>,
}

/// A location's runs in the report window, against what its tick implies:
/// a scheduler that starts late or skips ticks shows here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runs {
    /// Runs recorded in the window.
    pub made: u64,
    /// Ticks in the window (from the location's first run, when that came
    /// later), at its newest run's tick.
    pub expected: u64,
    /// The longest time without a run, within the window and up to now.
    pub longest_gap_s: f64,
    pub tick_s: f64,
}

/// One site, as the report's JSON has it (docs/src/report.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteReport {
    pub site: String,
    pub url: Option<String>,
    pub state: State,
    #[serde(with = "rfc3339_ms::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(with = "rfc3339_ms::option")]
    pub last_check_at: Option<OffsetDateTime>,
    pub uptime_pct: BTreeMap<&'static str, Option<f64>>,
    pub checks: u64,
    pub latency_ms: Percentiles,
    pub phases_p95_ms: Phases,
    #[serde(with = "rfc3339_ms::option")]
    pub tls_expires_at: Option<OffsetDateTime>,
    pub tls_days_left: Option<i64>,
    pub last_error: Option<LastError>,
    /// Why the site is in its state, for a person: a down or pending
    /// site's latest failed check (its error, or the condition it failed),
    /// a degraded site's slow check; null otherwise.
    pub reason: Option<String>,
    pub incidents: Vec<Incident>,
    pub locations: Vec<LocationState>,
    /// What the status page draws; not part of the JSON.
    #[serde(skip)]
    pub page: Option<Page>,
}

/// A site's history as the status page draws it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The last [`PAGE_DAYS`] UTC days, oldest first, today last.
    pub days: Vec<DayUptime>,
    /// Every hour of the report window, oldest first.
    pub hours: Vec<HourLatency>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DayUptime {
    pub day: time::Date,
    pub checks: u32,
    pub up_checks: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HourLatency {
    pub hour: OffsetDateTime,
    pub checks: u32,
    pub up_checks: u32,
    pub latency: Percentiles,
    /// The median of each phase.
    pub phases_p50_ms: Phases,
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The first hour (Unix seconds) of a window of `hours` ending with the
/// hour of `now`.
fn window_start(now: OffsetDateTime, hours: i64) -> i64 {
    rollup::hour_of(now) - (hours - 1) * HOUR
}

fn window_hours(window: Duration) -> i64 {
    (window.as_secs() as i64).div_euclid(HOUR).max(1)
}

/// One site's rollup tallies, every location together: the start of the
/// day or hour (Unix seconds) and what it holds.
#[derive(Default)]
struct SiteTallies {
    /// Counts only: the daily sketches inside the report window are summed
    /// as they are read, into `daily_window`.
    daily: Vec<(i64, Tally)>,
    hourly: Vec<(i64, Tally)>,
    /// From the chunks not folded yet.
    open: Vec<(i64, Tally)>,
    /// The sum of the daily sketches of the report window's whole days
    /// before today, every location together.
    daily_window: Option<[Sketch; 5]>,
}

impl SiteTallies {
    /// What the site adds up to from the hour `start` on; `start` is the
    /// report window's, the only one whose sketches are read.
    fn sum(&self, start: i64, now: OffsetDateTime) -> Tally {
        let parts: Vec<&Tally> = self.from(start, now).collect();
        let mut total = Tally::sum(parts.iter().copied());
        if let Some([latency, dns, connect, tls, ttfb]) = &self.daily_window {
            total.latency.merge(latency);
            total.dns.merge(dns);
            total.connect.merge(connect);
            total.tls.merge(tls);
            total.ttfb.merge(ttfb);
        }
        total
    }

    /// The checks and up checks from the hour `start` on (no sketches).
    fn count(&self, start: i64, now: OffsetDateTime) -> (u64, u64) {
        self.from(start, now).fold((0, 0), |(c, u), t| {
            (c + u64::from(t.checks), u + u64::from(t.up_checks))
        })
    }

    /// The tallies that make up the time from the hour `start` on: daily
    /// ones for whole days before today, hourly ones for the rest, and the
    /// chunks not folded yet.
    fn from(&self, start: i64, now: OffsetDateTime) -> impl Iterator<Item = &Tally> {
        let today = rollup::hour_of(now).div_euclid(DAY) * DAY;
        let first_full_day = start.div_euclid(DAY) * DAY + if start % DAY == 0 { 0 } else { DAY };
        let days = self
            .daily
            .iter()
            .filter(move |(day, _)| *day >= first_full_day && *day < today);
        let hours = self
            .hourly
            .iter()
            .filter(move |(hour, _)| *hour >= start && (*hour < first_full_day || *hour >= today));
        let open = self.open.iter().filter(move |(hour, _)| *hour >= start);
        days.chain(hours).chain(open).map(|(_, t)| t)
    }

    /// Each day's and each hour's tallies, every location together, as
    /// [`SiteTallies::sum`] counts them: daily rollups for the days before
    /// today, hourly ones for today, and the chunks not folded yet.
    fn page(&self, report_from: i64, now: OffsetDateTime) -> Page {
        let this_hour = rollup::hour_of(now);
        let today = this_hour.div_euclid(DAY) * DAY;
        let first_day = today - (PAGE_DAYS - 1) * DAY;
        let mut days: BTreeMap<i64, Tally> = BTreeMap::new();
        let mut hours: BTreeMap<i64, Tally> = BTreeMap::new();
        for (day, t) in &self.daily {
            if *day >= first_day && *day < today {
                days.entry(*day).or_default().merge(t);
            }
        }
        for (hour, t) in self.hourly.iter().chain(&self.open) {
            if *hour >= report_from && *hour <= this_hour {
                hours.entry(*hour).or_default().merge(t);
            }
        }
        for (hour, t) in &self.hourly {
            let day = hour.div_euclid(DAY) * DAY;
            if day == today {
                days.entry(day).or_default().merge(t);
            }
        }
        for (hour, t) in &self.open {
            let day = hour.div_euclid(DAY) * DAY;
            if day >= first_day {
                days.entry(day).or_default().merge(t);
            }
        }
        let days = (0..PAGE_DAYS)
            .map(|i| {
                let day = first_day + i * DAY;
                let t = days.remove(&day).unwrap_or_default();
                DayUptime {
                    day: at(day).date(),
                    checks: t.checks,
                    up_checks: t.up_checks,
                }
            })
            .collect();
        let hours = (report_from..=this_hour)
            .step_by(HOUR as usize)
            .map(|hour| {
                let t = hours.remove(&hour).unwrap_or_default();
                HourLatency {
                    hour: at(hour),
                    checks: t.checks,
                    up_checks: t.up_checks,
                    latency: Percentiles {
                        p50: t.latency.quantile(0.5),
                        p95: t.latency.quantile(0.95),
                        p99: t.latency.quantile(0.99),
                    },
                    phases_p50_ms: Phases {
                        dns: t.dns.quantile(0.5),
                        connect: t.connect.quantile(0.5),
                        tls: t.tls.quantile(0.5),
                        ttfb: t.ttfb.quantile(0.5),
                    },
                }
            })
            .collect();
        Page { days, hours }
    }

    /// The latest certificate seen: (when, in Unix ms; expiry, in Unix s).
    fn tls_seen(&self) -> Option<(i64, i64)> {
        self.daily
            .iter()
            .chain(&self.hourly)
            .chain(&self.open)
            .filter_map(|(_, t)| t.tls_seen)
            .max()
    }
}

/// Overlapping or touching ranges joined, in order.
fn merge_ranges(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// `ranges` without what `minus` covers.
fn subtract_ranges(ranges: &[(i64, i64)], minus: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in ranges {
        for &(mlo, mhi) in minus {
            if mhi <= lo || mlo >= hi {
                continue;
            }
            if mlo > lo {
                out.push((lo, mlo));
            }
            lo = lo.max(mhi);
        }
        if lo < hi {
            out.push((lo, hi));
        }
    }
    out
}

/// The rollup tallies read, per site, and the (site, location) pairs they
/// came from.
#[derive(Default)]
struct Tallies {
    sites: HashMap<String, SiteTallies>,
    pairs: BTreeSet<(String, String)>,
    /// Pairs count from here (Unix seconds): the page reads further back
    /// than the longest window but reports on the same sites.
    pairs_from: i64,
}

impl Tallies {
    fn add(
        &mut self,
        (site, location, start, tally): (String, String, i64, Tally),
        into: fn(&mut SiteTallies) -> &mut Vec<(i64, Tally)>,
    ) {
        if start >= self.pairs_from {
            self.pairs.insert((site.clone(), location));
        }
        into(self.sites.entry(site).or_default()).push((start, tally));
    }
}

/// A read-only, repeatable-read transaction.
/// A read-only transaction for the report, without JIT compilation: the
/// report's queries are many short index reads, which PostgreSQL's
/// default (JIT above a cost of 100,000) compiled for longer than they ran
/// (docs/src/decisions.md, report).
async fn begin(client: &mut Client) -> anyhow::Result<tokio_postgres::Transaction<'_>> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .context("cannot begin a read-only transaction")?;
    tx.batch_execute("SET LOCAL jit = off")
        .await
        .context("cannot turn JIT off for the report")?;
    Ok(tx)
}

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
        let runs = runs_to_read(&down_hours, window_from);
        let outages = read_runs(failed_tx, &runs).await?;
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

/// Each location's runs in `[from, now]`, from the run ledger (`runs`):
/// made, expected from its tick, and the longest gap. A location that ran
/// before the window and not in it shows with none made.
async fn run_ledger(
    tx: &tokio_postgres::Transaction<'_>,
    from: OffsetDateTime,
    now: OffsetDateTime,
) -> anyhow::Result<BTreeMap<String, Runs>> {
    let rows = tx
        .query(
            "WITH w AS (
                 SELECT location, started_at, tick_s,
                        started_at - lag(started_at) OVER (PARTITION BY location ORDER BY started_at) AS gap
                 FROM runs WHERE started_at >= $1 AND started_at <= $2
             ), before AS (
                 SELECT DISTINCT ON (location) location, started_at, tick_s FROM runs
                 WHERE started_at < $1 AND started_at >= $1::timestamptz - interval '30 days'
                 ORDER BY location, started_at DESC
             ), inside AS (
                 SELECT location, count(*) AS made,
                        (array_agg(tick_s ORDER BY started_at DESC))[1] AS tick_s,
                        min(started_at) AS first, max(started_at) AS last,
                        extract(epoch FROM max(gap))::float8 AS gap
                 FROM w GROUP BY location
             )
             SELECT coalesce(i.location, b.location), coalesce(i.made, 0),
                    coalesce(i.tick_s, b.tick_s),
                    extract(epoch FROM i.first)::float8, extract(epoch FROM i.last)::float8,
                    i.gap, b.location IS NOT NULL
             FROM inside i FULL JOIN before b ON b.location = i.location",
            &[&from, &now],
        )
        .await
        .context("cannot read the run ledger")?;
    let (from_s, now_s) = (
        from.unix_timestamp_nanos() as f64 / 1e9,
        now.unix_timestamp_nanos() as f64 / 1e9,
    );
    let mut out = BTreeMap::new();
    for row in rows {
        let location: String = row.get(0);
        let made = row.get::<_, i64>(1) as u64;
        let tick_s = row.get::<_, f64>(2).max(1.0);
        let (first, last): (Option<f64>, Option<f64>) = (row.get(3), row.get(4));
        let inner_gap: Option<f64> = row.get(5);
        let ran_before: bool = row.get(6);
        let start = if ran_before {
            from_s
        } else {
            first.unwrap_or(from_s)
        };
        let expected = ((now_s - start) / tick_s).floor() as u64 + u64::from(!ran_before);
        let longest_gap_s = [
            inner_gap.unwrap_or(0.0),
            now_s - last.unwrap_or(from_s),
            if ran_before {
                first.unwrap_or(now_s) - from_s
            } else {
                0.0
            },
        ]
        .into_iter()
        .fold(0.0_f64, f64::max);
        out.insert(
            location,
            Runs {
                made,
                expected,
                longest_gap_s: (longest_gap_s * 1000.0).round() / 1000.0,
                tick_s,
            },
        );
    }
    Ok(out)
}

/// Runs `sql` and makes each row a tally as it arrives: the decoding
/// overlaps the transfer, and the rows are never all held at once.
async fn tallies(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> anyhow::Result<Vec<(String, String, i64, Tally)>> {
    use futures::TryStreamExt as _;
    let stream = tx.query_raw(sql, params.iter().copied()).await?;
    futures::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(row) = stream.try_next().await? {
        out.push(tally_row(&row));
    }
    Ok(out)
}

/// A rollup row's counts and certificate, without its sketches.
fn counts_row(row: &tokio_postgres::Row) -> (String, String, i64, Tally) {
    let tls: (Option<i64>, Option<i64>) = (row.get(10), row.get(11));
    let tally = Tally {
        checks: row.get::<_, i32>(3) as u32,
        up_checks: row.get::<_, i32>(4) as u32,
        tls_seen: tls.0.zip(tls.1),
        ..Tally::default()
    };
    (row.get(0), row.get(1), row.get(2), tally)
}

/// A rollup row: its counts and certificate ([`counts_row`]) and its
/// sketches.
fn tally_row(row: &tokio_postgres::Row) -> (String, String, i64, Tally) {
    // A damaged sketch reads as empty: the report goes on with the rest.
    let sketch = |i: usize| {
        row.get::<_, Option<&[u8]>>(i)
            .and_then(|b| Sketch::from_bytes(b).ok())
            .unwrap_or_default()
    };
    let (site, location, start, mut tally) = counts_row(row);
    tally.latency = sketch(5);
    tally.dns = sketch(6);
    tally.connect = sketch(7);
    tally.tls = sketch(8);
    tally.ttfb = sketch(9);
    (site, location, start, tally)
}

/// The newest check of a location.
struct Latest {
    at: OffsetDateTime,
    url: String,
    /// Up, but slower than the site's `degraded_after`.
    degraded: bool,
    /// Why it is degraded (the check's `condition`).
    condition: Option<String>,
}

/// Each pair's newest check in `[from, now]`: the pairs are those with a
/// rollup since `from`, and the bounds keep the read to the partitions of
/// those days (and a check dated in the future out of it).
async fn latest_checks(
    tx: &tokio_postgres::Transaction<'_>,
    pairs: &BTreeSet<(String, String)>,
    from: OffsetDateTime,
    now: OffsetDateTime,
) -> anyhow::Result<BTreeMap<(String, String), Latest>> {
    let (sites, locations): (Vec<&str>, Vec<&str>) =
        pairs.iter().map(|(s, l)| (s.as_str(), l.as_str())).unzip();
    let rows = tx
        .query(
            "SELECT p.site, p.location, c.started_at, c.url, coalesce(c.up AND c.degraded, false),
                    c.condition
             FROM unnest($1::text[], $2::text[]) AS p(site, location)
             CROSS JOIN LATERAL (
                 SELECT started_at, url, up, degraded, condition FROM checks
                 WHERE site = p.site COLLATE \"C\" AND location = p.location
                   AND started_at >= $3 AND started_at <= $4
                 ORDER BY started_at DESC LIMIT 1
             ) AS c",
            &[&sites, &locations, &from, &now],
        )
        .await
        .context("cannot read the latest checks")?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                Latest {
                    at: r.get(2),
                    url: r.get(3),
                    degraded: r.get(4),
                    condition: r.get(5),
                },
            )
        })
        .collect())
}

/// A location's hour that holds failed checks.
#[derive(Debug, Clone, PartialEq)]
struct FailedHour {
    site: String,
    location: String,
    hour: i64,
    failed: u32,
    /// The location's latest hour before it with any check, and its up
    /// checks; `None` when unknown (an hour from a chunk not folded yet).
    before: Option<(i64, u32)>,
}

/// The hours that hold failed checks, per site and location (of the sites
/// in `filter`, or all), with the hour checked before each: from the
/// hourly rollups, by a partial index on the hours with failures. The
/// hour before is looked up first where it usually is (the hour just
/// before, by equality), and searched backwards only where that one had no
/// check (docs/src/decisions.md, report). The chunks not
/// folded yet add theirs; [`hours_to_read`] picks what to read.
async fn failed_hours(
    tx: &tokio_postgres::Transaction<'_>,
    filter: &[&str],
) -> anyhow::Result<Vec<FailedHour>> {
    let rows = tx
        .query(
            "SELECT f.site, f.location, extract(epoch FROM f.hour)::bigint, f.checks - f.up_checks,
                    extract(epoch FROM coalesce(e.hour, b.hour))::bigint,
                    coalesce(e.up_checks, b.up_checks)
             FROM rollups_hourly f
             LEFT JOIN rollups_hourly e
               ON e.site = f.site AND e.location = f.location AND e.hour = f.hour - interval '1 hour'
             LEFT JOIN LATERAL (
                 SELECT hour, up_checks FROM rollups_hourly b
                 WHERE e.hour IS NULL
                   AND b.site = f.site AND b.location = f.location AND b.hour < f.hour
                 ORDER BY b.hour DESC LIMIT 1
             ) AS b ON true
             WHERE f.up_checks < f.checks AND (cardinality($1::text[]) = 0 OR f.site = ANY($1))",
            &[&filter],
        )
        .await
        .context("cannot read the hours with failed checks")?;
    Ok(rows
        .iter()
        .map(|r| FailedHour {
            site: r.get(0),
            location: r.get(1),
            hour: r.get(2),
            failed: r.get::<_, i32>(3) as u32,
            before: r
                .get::<_, Option<i64>>(4)
                .zip(r.get::<_, Option<i32>>(5).map(|u| u as u32)),
        })
        .collect())
}

/// Which failed hours can hold a down period. A location's failed hours
/// form a stretch unless an hour between them had checks, all up, at least
/// `success_threshold` of them (a recovery, whatever came before). A period
/// needs `failure_threshold` failed checks in a row, so a stretch with
/// fewer failures (a blip) holds none and need not be read, unless it may
/// still be going on (its last hour within `stale_after` of `now`): then
/// the site may be pending, and its streak is read. Each site's rule is
/// `rule_of`'s. Also returns each site's latest failed hour.
fn hours_to_read(
    mut failed: Vec<FailedHour>,
    rule_of: &dyn Fn(&str) -> Rule,
    now: OffsetDateTime,
) -> (BTreeMap<String, BTreeSet<i64>>, BTreeMap<String, i64>) {
    failed.sort_by(|a, b| (&a.site, &a.location, a.hour).cmp(&(&b.site, &b.location, b.hour)));
    let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut latest: BTreeMap<String, i64> = BTreeMap::new();
    let mut stretch: Vec<i64> = Vec::new();
    let mut total = 0u32;
    let this_hour = rollup::hour_of(now);
    let mut keep = |site: &str, stretch: &mut Vec<i64>, total: u32, rule: &Rule| {
        let recent = stretch.last().is_some_and(|last| {
            let stale = rule.stale_after.as_secs().min(i64::MAX as u64) as i64;
            *last >= this_hour.saturating_sub(stale.saturating_add(HOUR))
        });
        if total >= rule.failure_threshold.max(1) || recent {
            out.entry(site.to_owned())
                .or_default()
                .extend(stretch.iter());
        }
        stretch.clear();
    };
    let mut rule = Rule::default();
    for (i, f) in failed.iter().enumerate() {
        let previous = i
            .checked_sub(1)
            .map(|j| &failed[j])
            .filter(|p| p.site == f.site && p.location == f.location);
        let joined = previous.is_some_and(|p| match f.before {
            None => true,
            Some((hour, up)) => hour <= p.hour || up < rule.success_threshold.max(1),
        });
        if !joined {
            // The stretch before (of this location, or of the one before
            // it) is complete.
            if let Some(p) = i.checked_sub(1).map(|j| &failed[j]) {
                keep(&p.site, &mut stretch, total, &rule);
            }
            total = 0;
            rule = rule_of(&f.site);
        }
        stretch.push(f.hour);
        total = total.saturating_add(f.failed);
        let last = latest.entry(f.site.clone()).or_insert(f.hour);
        *last = (*last).max(f.hour);
    }
    if let Some(f) = failed.last() {
        keep(&f.site, &mut stretch, total, &rule);
    }
    (out, latest)
}

/// Each site's latest failed check, in the hour the rollups say holds it:
/// found in the index (`checks_site_started_at` carries `up`), then its
/// row read for the message. A site whose failed rows were pruned has none.
async fn last_errors(
    tx: &tokio_postgres::Transaction<'_>,
    latest: &BTreeMap<String, i64>,
) -> anyhow::Result<BTreeMap<String, LastError>> {
    let (sites, hours): (Vec<&str>, Vec<OffsetDateTime>) =
        latest.iter().map(|(s, h)| (s.as_str(), at(*h))).unzip();
    let rows = tx
        .query(
            "SELECT s.site, f.started_at, c.error_kind, c.error, c.status_code
             FROM unnest($1::text[], $2::timestamptz[]) AS s(site, hour)
             CROSS JOIN LATERAL (
                 SELECT started_at FROM checks
                 WHERE site = s.site COLLATE \"C\" AND started_at >= s.hour
                   AND started_at < s.hour + interval '1 hour' AND NOT up
                 ORDER BY started_at DESC LIMIT 1
             ) AS f
             CROSS JOIN LATERAL (
                 SELECT error_kind, error, status_code FROM checks
                 WHERE site = s.site COLLATE \"C\" AND started_at = f.started_at AND NOT up
                 LIMIT 1
             ) AS c",
            &[&sites, &hours],
        )
        .await
        .context("cannot read the latest failed checks")?;
    Ok(rows
        .iter()
        .map(|r| {
            let status_code: Option<i16> = r.get(4);
            (
                r.get(0),
                LastError {
                    at: r.get(1),
                    error_kind: r
                        .get::<_, Option<String>>(2)
                        .or_else(|| status_code.map(|_| "http".to_owned())),
                    error: r.get(3),
                    status_code,
                },
            )
        })
        .collect())
}

/// A stretch of hours of one site to read check by check: hours with
/// failed checks, each with the hour after it (where recoveries end),
/// joined when they touch. Before it, every location was up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    site: String,
    from: i64,
    to: i64,
}

/// The runs that overlap the window, and the latest few before it (for
/// `since`).
fn runs_to_read(down: &BTreeMap<String, BTreeSet<i64>>, window_from: i64) -> Vec<Run> {
    let mut out = Vec::new();
    for (site, hours) in down {
        let mut runs: Vec<Run> = Vec::new();
        for &h in hours {
            match runs.last_mut() {
                Some(r) if h <= r.to => r.to = r.to.max(h + 2 * HOUR),
                _ => runs.push(Run {
                    site: site.clone(),
                    from: h,
                    to: h + 2 * HOUR,
                }),
            }
        }
        let before = runs.iter().filter(|r| r.to <= window_from).count();
        out.extend(runs.into_iter().skip(before.saturating_sub(5)));
    }
    out
}

/// A check read for placing outages.
#[derive(Debug, Clone)]
struct Read {
    location: String,
    at: i64,
    up: bool,
    status_code: Option<i16>,
    error_kind: Option<String>,
    /// From a blind run (the prober's own outage): not counted.
    blind: bool,
}

async fn read_runs(
    tx: &tokio_postgres::Transaction<'_>,
    runs: &[Run],
) -> anyhow::Result<Vec<(Run, Vec<Read>)>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let sites: Vec<&str> = runs.iter().map(|r| r.site.as_str()).collect();
    let los: Vec<OffsetDateTime> = runs.iter().map(|r| at(r.from)).collect();
    let his: Vec<OffsetDateTime> = runs.iter().map(|r| at(r.to)).collect();
    let rows = tx
        .query(
            "SELECT r.i, c.location, c.started_at, c.up, c.status_code, c.error_kind,
                    l.checked::bigint, l.answered
             FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS r(site, lo, hi, i)
             JOIN checks c ON c.site = r.site COLLATE \"C\" AND c.started_at >= r.lo AND c.started_at < r.hi
             LEFT JOIN runs l ON l.run_id = c.run_id
             ORDER BY r.i, c.started_at",
            &[&sites, &los, &his],
        )
        .await
        .context("cannot read the checks around failures")?;
    let mut out: Vec<(Run, Vec<Read>)> = runs.iter().map(|r| (r.clone(), Vec::new())).collect();
    for row in &rows {
        let i: i64 = row.get(0);
        let started: OffsetDateTime = row.get(2);
        out[(i - 1) as usize].1.push(Read {
            location: row.get(1),
            at: rollup::unix_ms(started),
            up: row.get(3),
            status_code: row.get(4),
            error_kind: row.get(5),
            blind: row
                .get::<_, Option<i64>>(6)
                .zip(row.get::<_, Option<i64>>(7))
                .is_some_and(|(checked, answered)| {
                    rule::blind(checked.max(0) as u64, answered.max(0) as u64)
                }),
        });
    }
    Ok(out)
}

/// Per site, its first stored check (within the rollups kept).
async fn first_checks(
    tx: &tokio_postgres::Transaction<'_>,
    sites: &BTreeSet<String>,
) -> anyhow::Result<BTreeMap<String, OffsetDateTime>> {
    let names: Vec<&str> = sites.iter().map(String::as_str).collect();
    let rows = tx
        .query(
            "SELECT s.site, coalesce(
                 (SELECT min(started_at) FROM checks c
                  WHERE c.site = s.site COLLATE \"C\" AND c.started_at >= d.day::timestamp AT TIME ZONE 'UTC'
                    AND c.started_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'),
                 d.day::timestamp AT TIME ZONE 'UTC')
             FROM unnest($1::text[]) AS s(site)
             CROSS JOIN LATERAL (
                 SELECT day FROM rollups_daily WHERE site = s.site COLLATE \"C\" ORDER BY day LIMIT 1
             ) AS d",
            &[&names],
        )
        .await
        .context("cannot read when sites were first checked")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn site_report(
    site: &str,
    options: &Options,
    tallies: &Tallies,
    latest: &BTreeMap<(String, String), Latest>,
    outages: &[(Run, Vec<Read>)],
    firsts: &BTreeMap<String, OffsetDateTime>,
    last_errors: &BTreeMap<String, LastError>,
) -> SiteReport {
    let now = options.now;
    let report_from = window_start(now, window_hours(options.window));
    let none = SiteTallies::default();
    let mine = tallies.sites.get(site).unwrap_or(&none);
    let in_window = mine.sum(report_from, now);
    let uptime_pct = UPTIME_WINDOWS
        .iter()
        .map(|(name, hours)| {
            let (checks, up) = mine.count(window_start(now, *hours as i64), now);
            (
                *name,
                (checks > 0).then(|| 100.0 * up as f64 / checks as f64),
            )
        })
        .collect();

    // Outages, check by check, over the runs read (oldest first), by the
    // site's own rule; and the streak each location ends the newest run
    // with, when that run reaches now.
    let rule = options.config.policy(site).rule();
    let mut periods: Vec<(Period, Option<String>)> = Vec::new();
    let mut streaks: BTreeMap<String, Streak> = BTreeMap::new();
    let site_runs: Vec<&(Run, Vec<Read>)> =
        outages.iter().filter(|(r, _)| r.site == site).collect();
    let this_hour = rollup::hour_of(now);
    for (i, (run, reads)) in site_runs.iter().enumerate() {
        // Only a run that reaches this hour can hold an outage going on.
        let current = i + 1 == site_runs.len() && run.to > this_hour;
        let mut by_location: BTreeMap<&str, Vec<(OffsetDateTime, bool)>> = BTreeMap::new();
        for r in reads.iter().filter(|r| !r.blind) {
            by_location
                .entry(&r.location)
                .or_default()
                .push((at_ms(r.at), r.up));
        }
        let per_location: Vec<Vec<Period>> = by_location
            .iter()
            .map(|(location, checks)| {
                let (mut p, streak) = rule::location_periods(checks, &rule);
                if current {
                    streaks.insert((*location).to_owned(), streak);
                } else if let Some(last) = p.last_mut()
                    && last.end.is_none()
                {
                    // Recovered after the stretch read, with checks too far
                    // apart to show it inside.
                    last.end = Some(at(run.to));
                }
                p
            })
            .collect();
        for p in rule::site_periods(&per_location, rule.quorum) {
            let start_ms = rollup::unix_ms(p.start);
            let kind = reads
                .iter()
                .find(|r| !r.up && !r.blind && r.at >= start_ms)
                .and_then(|r| {
                    r.error_kind
                        .clone()
                        .or_else(|| r.status_code.map(|_| "http".to_owned()))
                });
            periods.push((p, kind));
        }
    }

    // Each location's state (the rule, applied to it alone); the site's
    // from all of them, as `alert` decides it.
    let alone = Rule {
        quorum: Quorum::Count(1),
        ..rule
    };
    let mut locations = Vec::new();
    let mut seen = Vec::new();
    let mut url = None;
    let mut last_check_at: Option<OffsetDateTime> = None;
    for ((s, location), l) in latest.range((site.to_owned(), String::new())..) {
        if s != site {
            break;
        }
        let one = Seen {
            last_at: l.at,
            streak: streaks.get(location).copied().unwrap_or_default(),
            degraded: l.degraded,
        };
        seen.push(one);
        if last_check_at.is_none_or(|t| l.at > t) {
            last_check_at = Some(l.at);
            url = Some(l.url.clone());
        }
        locations.push(LocationState {
            runs: None,
            location: location.clone(),
            state: rule::site(&alone, now, false, &[one]).state,
            last_check_at: l.at,
        });
    }
    let verdict = rule::site(&rule, now, options.config.in_maintenance(site, now), &seen);
    let state = verdict.state;
    // Up since the last outage ended, or since the first check.
    let up_since = periods
        .iter()
        .rev()
        .find_map(|(p, _)| p.end)
        .or_else(|| firsts.get(site).copied())
        .or_else(|| seen.iter().map(|l| l.last_at).min());
    let since = match state {
        State::Unknown => None,
        State::Up | State::Degraded => up_since,
        State::Maintenance => verdict.since.or(up_since),
        State::Down | State::Pending | State::Stale => verdict.since.or(last_check_at),
    };

    let report_from_at = at(report_from);
    let mut incidents: Vec<Incident> = periods
        .iter()
        .filter(|(p, _)| p.end.is_none_or(|e| e > report_from_at) && p.start <= now)
        .map(|(p, kind)| Incident {
            start: p.start,
            end: p.end,
            duration_s: (p.end.unwrap_or(now) - p.start).whole_milliseconds() as f64 / 1000.0,
            error_kind: kind.clone(),
        })
        .collect();
    incidents.reverse();

    let reason = match state {
        State::Down | State::Pending => last_errors.get(site).map(LastError::describe),
        State::Degraded => latest
            .range((site.to_owned(), String::new())..)
            .take_while(|((s, _), _)| s == site)
            .filter(|(_, l)| l.degraded)
            .max_by_key(|(_, l)| l.at)
            .and_then(|(_, l)| l.condition.clone()),
        _ => None,
    };
    let tls = mine.tls_seen();
    let tls_expires_at = tls.map(|(_, expires)| at(expires));
    SiteReport {
        site: site.to_owned(),
        url: url.or_else(|| options.config.urls.get(site).cloned()),
        state,
        since,
        last_check_at,
        uptime_pct,
        checks: u64::from(in_window.checks),
        latency_ms: Percentiles {
            p50: in_window.latency.quantile(0.5),
            p95: in_window.latency.quantile(0.95),
            p99: in_window.latency.quantile(0.99),
        },
        phases_p95_ms: Phases {
            dns: in_window.dns.quantile(0.95),
            connect: in_window.connect.quantile(0.95),
            tls: in_window.tls.quantile(0.95),
            ttfb: in_window.ttfb.quantile(0.95),
        },
        tls_expires_at,
        tls_days_left: tls_expires_at.map(|e| (e - now).whole_days()),
        last_error: last_errors.get(site).cloned(),
        reason,
        incidents,
        locations,
        page: options.page.then(|| mine.page(report_from, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(
        site: &str,
        location: &str,
        hour: i64,
        failed: u32,
        before: Option<(i64, u32)>,
    ) -> FailedHour {
        FailedHour {
            site: site.to_owned(),
            location: location.to_owned(),
            hour: hour * HOUR,
            failed,
            before: before.map(|(h, up)| (h * HOUR, up)),
        }
    }

    fn hours(out: &BTreeMap<String, BTreeSet<i64>>, site: &str) -> Vec<i64> {
        out.get(site)
            .map_or_else(Vec::new, |h| h.iter().map(|h| h / HOUR).collect())
    }

    #[test]
    fn ranges_merge_and_subtract() {
        assert_eq!(
            merge_ranges(vec![(5, 8), (1, 3), (3, 4), (7, 9)]),
            [(1, 4), (5, 9)]
        );
        assert_eq!(
            subtract_ranges(&[(0, 10), (20, 30)], &[(2, 4), (6, 8), (25, 40)]),
            [(0, 2), (4, 6), (8, 10), (20, 25)]
        );
        assert!(subtract_ranges(&[(3, 5)], &[(0, 10)]).is_empty());
    }

    #[test]
    fn blips_are_not_read_but_outages_and_the_latest_failure_are() {
        let (out, latest) = hours_to_read(
            vec![
                // a: a blip of 2 at hour 10 (hour 9 all up), an outage of
                // 2 + 2 over hours 20 and 21, a blip of 1 at hour 30.
                f("a", "eu", 10, 2, Some((9, 60))),
                f("a", "eu", 20, 2, Some((19, 60))),
                f("a", "eu", 21, 2, Some((20, 58))),
                f("a", "eu", 30, 1, Some((29, 60))),
                // b: 1 failure an hour, hours apart with no check between
                // (the prober stopped): 3 in a row.
                f("b", "eu", 5, 1, Some((4, 60))),
                f("b", "eu", 8, 1, Some((5, 59))),
                f("b", "eu", 12, 1, Some((8, 59))),
                // c: 2 failures, then one lone up check (no recovery),
                // then 2 more: one stretch of 4.
                f("c", "us", 1, 2, Some((0, 60))),
                f("c", "us", 3, 2, Some((2, 1))),
                // d: the same with a recovery between: two blips.
                f("d", "us", 1, 2, Some((0, 60))),
                f("d", "us", 3, 2, Some((2, 2))),
                // e: one failure from each of two locations, and one
                // from a chunk not folded.
                f("e", "eu", 7, 1, Some((6, 60))),
                f("e", "us", 7, 1, Some((6, 60))),
                f("e", "us", 8, 2, None),
                // f: a blip of 1 in the hour before now: maybe pending.
                f("f", "eu", 99, 1, Some((98, 60))),
            ],
            &|_: &str| Rule::default(),
            at(100 * HOUR + 60),
        );
        assert_eq!(hours(&out, "a"), [20, 21]);
        assert_eq!(latest["a"], 30 * HOUR, "the latest failed hour");
        assert_eq!(hours(&out, "b"), [5, 8, 12]);
        assert_eq!(hours(&out, "c"), [1, 3]);
        assert!(hours(&out, "d").is_empty());
        assert_eq!(latest["d"], 3 * HOUR);
        assert_eq!(hours(&out, "e"), [7, 8], "us: 1 + 2 from the chunk");
        assert_eq!(hours(&out, "f"), [99], "a blip that may go on is read");
        // With a threshold of 1 for a alone, its blips are outages.
        let one = |site: &str| Rule {
            failure_threshold: if site == "a" { 1 } else { 3 },
            ..Rule::default()
        };
        let (out, _) = hours_to_read(
            vec![
                f("a", "eu", 10, 1, Some((9, 60))),
                f("b", "eu", 10, 1, Some((9, 60))),
            ],
            &one,
            at(100 * HOUR),
        );
        assert_eq!(hours(&out, "a"), [10]);
        assert!(hours(&out, "b").is_empty());
    }
}
