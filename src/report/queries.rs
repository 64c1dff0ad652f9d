//! The report's reads, in one repeatable-read snapshot: rollups, the
//! chunks not folded yet, the latest checks, the hours with failed checks
//! and the stretches of them to read check by check, the run ledger.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context as _;
use time::OffsetDateTime;
use tokio_postgres::{Client, IsolationLevel};

use crate::history::rollup::{self, Tally};
use crate::history::sketch::{Sketch, SketchSum};
use crate::rule;

use super::compute::*;
use super::model::*;

/// A read-only, repeatable-read transaction.
/// A read-only transaction for the report, without JIT compilation: the
/// report's queries are many short index reads, which PostgreSQL's
/// default (JIT above a cost of 100,000) compiled for longer than they ran
/// (docs/src/decisions.md, report).
pub(super) async fn begin(client: &mut Client) -> anyhow::Result<tokio_postgres::Transaction<'_>> {
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

/// Each location's runs in `[from, now]`, from the run ledger (`runs`):
/// made, expected from its tick, and the longest gap. A location that ran
/// before the window and not in it shows with none made.
pub(super) async fn run_ledger(
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
pub(super) async fn tallies(
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
pub(super) fn counts_row(row: &tokio_postgres::Row) -> (String, String, i64, Tally) {
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
pub(super) fn tally_row(row: &tokio_postgres::Row) -> (String, String, i64, Tally) {
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

/// Each pair's newest check in `[from, now]`: the pairs are those with a
/// rollup since `from`, and the bounds keep the read to the partitions of
/// those days (and a check dated in the future out of it).
pub(super) async fn latest_checks(
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

/// The hours that hold failed checks, per site and location (of the sites
/// in `filter`, or all), with the hour checked before each: from the
/// hourly rollups, by a partial index on the hours with failures. The
/// hour before is looked up first where it usually is (the hour just
/// before, by equality), and searched backwards only where that one had no
/// check (docs/src/decisions.md, report). The chunks not
/// folded yet add theirs; [`hours_to_read`] picks what to read.
pub(super) async fn failed_hours(
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

/// Each site's latest failed check, in the hour the rollups say holds it:
/// found in the index (`checks_site_started_at` carries `up`), then its
/// row read for the message. A site whose failed rows were pruned has none.
pub(super) async fn last_errors(
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

pub(super) async fn read_stretches(
    tx: &tokio_postgres::Transaction<'_>,
    runs: &[Stretch],
) -> anyhow::Result<Vec<(Stretch, Vec<Read>)>> {
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
    let mut out: Vec<(Stretch, Vec<Read>)> = runs.iter().map(|r| (r.clone(), Vec::new())).collect();
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
pub(super) async fn first_checks(
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

/// A repeatable-read transaction on `first`, and one on each of `others`
/// in the same snapshot (`pg_export_snapshot`).
pub(super) async fn snapshot<'a>(
    first: &'a mut Client,
    others: &'a mut [Client],
) -> anyhow::Result<(
    tokio_postgres::Transaction<'a>,
    Vec<tokio_postgres::Transaction<'a>>,
)> {
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
    Ok((tx, side))
}

/// The columns of a rollup row as the report reads it: `{t}` the row's
/// time, `{sketched}` whether its sketches are wanted (they are most of the
/// bytes; as bytes, `*_packed`: PostgreSQL sends arrays element by element,
/// ten times slower).
fn rollup_columns() -> String {
    let sketches = ["latency", "dns", "connect", "tls", "ttfb"]
        .iter()
        .map(|p| format!("CASE WHEN {{sketched}} THEN {p}_packed END"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "site, location, extract(epoch FROM {{t}})::bigint, checks, up_checks, {sketches},
         (extract(epoch FROM tls_checked_at) * 1000)::bigint, extract(epoch FROM tls_expires_at)::bigint"
    )
}

/// The daily rollups from the first day read to today, with sketches for
/// the whole days inside the report window, summed per site as they stream
/// in, straight from the bytes (a month of 1,000 sites is 155,000 sketches,
/// never held one by one).
pub(super) async fn daily_rollups(
    tx: &tokio_postgres::Transaction<'_>,
    spans: &Spans,
    filter: &[&str],
) -> anyhow::Result<Daily> {
    use futures::TryStreamExt as _;
    let sql = format!(
        "SELECT {} FROM rollups_daily
         WHERE day >= $1::date AND day <= $4::date
           AND (cardinality($2::text[]) = 0 OR site = ANY($2))",
        rollup_columns()
            .replace("{t}", "(day::timestamp AT TIME ZONE 'UTC')")
            .replace("{sketched}", "(day::timestamp AT TIME ZONE 'UTC') >= $3")
    );
    // Nothing after today counts, whatever a bad clock stored.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
        &at(spans.from_day).date(),
        &filter,
        &at(spans.report_start),
        &at(spans.today).date(),
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
        if day < spans.today && packed.iter().any(Option::is_some) {
            let sums = window.entry(site.clone()).or_default();
            for (sum, bytes) in sums.iter_mut().zip(packed) {
                if let Some(bytes) = bytes {
                    sum.add_packed(bytes);
                }
            }
        }
        rows.push((site, location, day, tally));
    }
    Ok((rows, window))
}

/// The hourly rollups of the given ranges, each with its sketches or not.
pub(super) async fn hourly_rollups(
    tx: &tokio_postgres::Transaction<'_>,
    los: &[OffsetDateTime],
    his: &[OffsetDateTime],
    sketched: &[bool],
    filter: &[&str],
) -> anyhow::Result<Vec<(String, String, i64, Tally)>> {
    tallies(
        tx,
        &format!(
            // Each range on its own through the `hour` index (the OFFSET
            // keeps the subquery whole): joined on the ranges, the planner
            // scanned the whole table (docs/src/decisions.md, report).
            // The sites asked for are a filter on the hour index's rows:
            // a part of 10,000 sites of 100,000 still reads every site's
            // rows of the ranges (about 4 s a part; docs/src/decisions.md,
            // report).
            "SELECT {} FROM unnest($1::timestamptz[], $2::timestamptz[], $4::bool[]) AS r(lo, hi, sketched)
             CROSS JOIN LATERAL (
                 SELECT * FROM rollups_hourly x
                 WHERE x.hour >= r.lo AND x.hour < r.hi
                   AND (cardinality($3::text[]) = 0 OR x.site = ANY($3))
                 OFFSET 0
             ) AS h",
            rollup_columns()
                .replace("{t}", "h.hour")
                .replace("{sketched}", "r.sketched")
        ),
        &[&los, &his, &filter, &sketched],
    )
    .await
    .context("cannot read the hourly rollups")
}

/// The checks and up checks that `read`'s sites made in maintenance, per
/// site and hour: whole hours from the hourly rollups (the chunks not
/// folded yet are added by the caller), parts of hours from the checks
/// themselves (none where `prune` dropped them).
pub(super) async fn maintenance_counts(
    tx: &tokio_postgres::Transaction<'_>,
    read: &MaintenanceReads,
) -> anyhow::Result<Vec<(String, i64, u32, u32)>> {
    let sites: Vec<&str> = read.sites.iter().map(String::as_str).collect();
    let (los, his): (Vec<OffsetDateTime>, Vec<OffsetDateTime>) =
        read.hours.iter().map(|(lo, hi)| (at(*lo), at(*hi))).unzip();
    let mut out = Vec::new();
    if !los.is_empty() {
        let rows = tx
            .query(
                "SELECT h.site, extract(epoch FROM h.hour)::bigint, sum(h.checks)::bigint,
                        sum(h.up_checks)::bigint
                 FROM unnest($1::timestamptz[], $2::timestamptz[]) AS r(lo, hi)
                 CROSS JOIN LATERAL (
                     SELECT site, hour, checks, up_checks FROM rollups_hourly x
                     WHERE x.hour >= r.lo AND x.hour < r.hi AND x.site = ANY($3) OFFSET 0
                 ) AS h
                 GROUP BY h.site, h.hour",
                &[&los, &his, &sites],
            )
            .await
            .context("cannot read the rollups of the maintenance windows")?;
        out.extend(rows.iter().map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get::<_, i64>(2).clamp(0, i64::from(u32::MAX)) as u32,
                r.get::<_, i64>(3).clamp(0, i64::from(u32::MAX)) as u32,
            )
        }));
    }
    if !read.parts.is_empty() {
        let (los, his): (Vec<OffsetDateTime>, Vec<OffsetDateTime>) =
            read.parts.iter().copied().unzip();
        let rows = tx
            .query(
                "SELECT r.i, c.site, count(*), count(*) FILTER (WHERE c.up)
                 FROM unnest($1::timestamptz[], $2::timestamptz[]) WITH ORDINALITY AS r(lo, hi, i)
                 CROSS JOIN unnest($3::text[]) AS s(site)
                 JOIN checks c ON c.site = s.site COLLATE \"C\"
                              AND c.started_at >= r.lo AND c.started_at < r.hi
                 GROUP BY r.i, c.site",
                &[&los, &his, &sites],
            )
            .await
            .context("cannot read the checks of the maintenance windows")?;
        for r in &rows {
            let i: i64 = r.get(0);
            let hour = rollup::hour_of(read.parts[(i - 1) as usize].0);
            out.push((
                r.get(1),
                hour,
                r.get::<_, i64>(2).clamp(0, i64::from(u32::MAX)) as u32,
                r.get::<_, i64>(3).clamp(0, i64::from(u32::MAX)) as u32,
            ));
        }
    }
    Ok(out)
}
