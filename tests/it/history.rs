//! History at scale: `checks` partitioned by day, rollups written by drain
//! (and folded), `prune`, and the in-place upgrade of a database made by
//! the first migrations. Each test has its own topic and database; expected
//! values are computed here from the rows or the checks themselves.

use std::collections::BTreeMap;
use std::path::Path;

use sitewatch::message::Check;
use time::{Duration, OffsetDateTime};
use tokio_postgres::Client;

use crate::drain::{drain, figures, record, sample};
use crate::support::kafka::{publish, unique_topic};
use crate::support::{create_topic, db, sitewatch};

/// Checks of `sites` sites from two locations every 10 minutes from
/// `from` for `hours` hours; latencies vary by site and time, and each
/// site is down now and then.
fn history(sites: usize, from: OffsetDateTime, hours: i64) -> Vec<Check> {
    // Whole seconds, as a message carries them (milliseconds) and as
    // PostgreSQL stores them (microseconds) alike.
    let from = OffsetDateTime::from_unix_timestamp(from.unix_timestamp()).unwrap();
    let mut out = Vec::new();
    let mut i = 0usize;
    for step in 0..hours * 6 {
        for s in 0..sites {
            for location in ["eu", "us"] {
                let mut c = sample(i);
                i += 1;
                c.site = format!("site-{s}");
                c.location = location.to_owned();
                c.started_at = from + Duration::minutes(step * 10) + Duration::seconds(s as i64);
                c.up = (step + s as i64) % 7 != 0;
                c.response_time_ms = 20.0 * (s + 1) as f64 + ((step * 37) % 400) as f64 * 0.731;
                c.ttfb_ms = Some(c.response_time_ms * 0.6);
                c.tls_ms = if s % 2 == 0 {
                    Some(5.0 + (step % 9) as f64)
                } else {
                    None
                };
                c.tls_expires_at =
                    (s % 2 == 0).then(|| from + Duration::days(90) - Duration::minutes(step * 7));
                out.push(c);
            }
        }
    }
    out
}

/// The lower quantile, as the sketches define the rank.
pub(crate) fn exact(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(q * (values.len() - 1) as f64).floor() as usize]
}

pub(crate) fn hour_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(3600) * 3600
}

/// (checks, up checks) per (site, location, hour start) from the checks.
fn counts(checks: &[Check]) -> BTreeMap<(String, String, i64), (i64, i64)> {
    let mut out = BTreeMap::new();
    for c in checks {
        let e = out
            .entry((c.site.clone(), c.location.clone(), hour_of(c.started_at)))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += i64::from(c.up);
    }
    out
}

async fn hourly(client: &Client) -> BTreeMap<(String, String, i64), (i64, i64)> {
    client
        .query(
            "SELECT site, location, extract(epoch FROM hour)::bigint, checks::bigint, up_checks::bigint
             FROM rollups_hourly",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| ((r.get(0), r.get(1), r.get(2)), (r.get(3), r.get(4))))
        .collect()
}

pub(crate) async fn publish_checks(topic: &str, checks: &[Check]) {
    let records: Vec<_> = checks.iter().map(record).collect();
    for part in records.chunks(5000) {
        publish(topic, part).await;
    }
}

/// The middle of the current hour, in whole seconds: a clock for drain
/// (`--at`) and report (`--at`) that no hour boundary is near, whenever the
/// test runs.
pub(crate) fn mid_hour() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    OffsetDateTime::from_unix_timestamp(now - now.rem_euclid(3600) + 1800).unwrap()
}

/// A topic and a database of the test's own, and a connection to it.
async fn fresh(dir: &Path, test: &str) -> (String, String, Client) {
    let topic = unique_topic(test);
    create_topic(dir, &topic, 3).await;
    let url = db::fresh(dir).await;
    let client = db::connect(&url).await;
    (topic, url, client)
}

#[tokio::test]
async fn drain_writes_rollups_that_agree_with_the_rows_and_folds_ended_hours() {
    let dir = tempfile::tempdir().unwrap();
    let (topic, url, client) = fresh(dir.path(), "rollups").await;
    // drain's clock and every query's, in the middle of an hour.
    let now = mid_hour();
    let at = sitewatch::message::rfc3339_ms::format(&now);
    let days_ago = |ago: i64| (now - Duration::days(ago)).date();
    // Three days ago to two hours ago (ended hours), then a few in this hour.
    let mut checks = history(4, now - Duration::days(3), 70);
    let this_hour = OffsetDateTime::from_unix_timestamp(hour_of(now)).unwrap();
    for (i, c) in history(2, this_hour, 1).into_iter().take(6).enumerate() {
        let mut c = c;
        c.started_at = this_hour + Duration::seconds(i as i64);
        checks.push(c);
    }
    publish_checks(&topic, &checks).await;
    // Some published twice: stored once, counted once.
    publish_checks(&topic, &checks[100..400]).await;

    let run = drain(
        dir.path(),
        &topic,
        &url,
        &["--batch-size", "700", "--at", &at],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = figures(&run);
    assert_eq!((f["stored"], f["duplicates"]), (checks.len() as u64, 300));

    // Every ended hour is folded and matches the checks; this hour's
    // checks wait in a chunk.
    let want = counts(&checks);
    let got = hourly(&client).await;
    let ended: BTreeMap<_, _> = want
        .iter()
        .filter(|((_, _, h), _)| *h < hour_of(now))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(got, ended);
    let unfolded: i64 = client
        .query_one(
            "SELECT count(*) FROM rollup_chunks WHERE last_hour < date_trunc('hour', $1::timestamptz)",
            &[&now],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unfolded, 0, "every chunk of ended hours is folded");
    let open = sitewatch::history::rollup::open_chunks(&client)
        .await
        .unwrap();
    let waiting: u32 = open.tallies.values().map(|t| t.checks).sum();
    assert_eq!(
        waiting, 6,
        "this hour's checks wait in chunks until the hour ends"
    );
    assert!(open.tallies.keys().all(|(_, _, h)| *h == hour_of(now)));
    // The rows say the same.
    let from_rows = db::count(
        &client,
        "SELECT count(*) FROM (
           SELECT site, location, date_trunc('hour', started_at, 'UTC') AS hour,
                  count(*) AS n, count(*) FILTER (WHERE up) AS up_n
           FROM checks GROUP BY 1, 2, 3
         ) r JOIN rollups_hourly h USING (site, location, hour)
         WHERE h.checks <> r.n OR h.up_checks <> r.up_n",
    )
    .await;
    assert_eq!(from_rows, 0);

    // The sketches' bytes, written by drain, are what SQL packs of the
    // arrays; and SQL that writes only the arrays gets them packed.
    let disagree = "SELECT count(*) FROM {t} WHERE
        (latency_packed, dns_packed, connect_packed, tls_packed, ttfb_packed) IS DISTINCT FROM
        (sitewatch_sketch_pack(latency_keys, latency_counts), sitewatch_sketch_pack(dns_keys, dns_counts),
         sitewatch_sketch_pack(connect_keys, connect_counts), sitewatch_sketch_pack(tls_keys, tls_counts),
         sitewatch_sketch_pack(ttfb_keys, ttfb_counts))";
    for t in ["rollups_hourly", "rollups_daily"] {
        let sql = disagree.replace("{t}", t);
        assert!(db::count(&client, &format!("SELECT count(*) FROM {t}")).await > 0);
        assert_eq!(db::count(&client, &sql).await, 0, "{t} as drain wrote it");
    }
    let edited = client
        .execute(
            "UPDATE rollups_hourly SET dns_keys = '{1, 2}', dns_counts = '{3, 4}'
             WHERE site = 'site-2'
               AND (hour AT TIME ZONE 'UTC')::date = $1",
            &[&days_ago(2)],
        )
        .await
        .unwrap();
    assert!(edited > 0);
    let packed: Vec<u8> = client
        .query_one(
            "SELECT dns_packed FROM rollups_hourly
             WHERE site = 'site-2'
               AND (hour AT TIME ZONE 'UTC')::date = $1
             LIMIT 1",
            &[&days_ago(2)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(packed, [0, 1, 0, 0, 0, 3, 0, 2, 0, 0, 0, 4]);
    client
        .batch_execute(
            "INSERT INTO rollups_daily (site, location, day, checks, up_checks, latency_keys,
                 latency_counts, dns_keys, dns_counts, connect_keys, connect_counts, tls_keys,
                 tls_counts, ttfb_keys, ttfb_counts)
             VALUES ('by-hand', 'eu', '2001-01-01', 1, 1, '{7}', '{1}', '{}', '{}', '{}', '{}',
                     '{}', '{}', '{}', '{}')",
        )
        .await
        .unwrap();
    let sql = disagree.replace("{t}", "rollups_hourly");
    assert_eq!(db::count(&client, &sql).await, 0, "after an UPDATE");
    let sql = disagree.replace("{t}", "rollups_daily");
    assert_eq!(db::count(&client, &sql).await, 0, "after an INSERT");
    // Back as drain wrote them, for what follows.
    client
        .batch_execute("DELETE FROM rollups_daily WHERE site = 'by-hand'")
        .await
        .unwrap();
    client
        .execute("SELECT sitewatch_rebuild_rollups($1, $1)", &[&days_ago(2)])
        .await
        .unwrap();

    // Daily rollups sum the same checks.
    let daily: i64 = client
        .query_one("SELECT sum(checks)::bigint FROM rollups_daily", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(daily as usize, checks.len() - 6);

    // Percentiles from the sketches: within 1 % of the exact values, per
    // site over the three days (as a report reads them) and per phase.
    for site in ["site-0", "site-3"] {
        let row = client
            .query_one(
                "SELECT sitewatch_sketch_quantile(k, n, 0.5), sitewatch_sketch_quantile(k, n, 0.95),
                        sitewatch_sketch_quantile(k, n, 0.99)
                 FROM (SELECT array_agg(k ORDER BY k) AS k, array_agg(n ORDER BY k) AS n
                       FROM (SELECT k, sum(n)::integer AS n
                             FROM rollups_daily, unnest(latency_keys, latency_counts) AS u(k, n)
                             WHERE site = $1 GROUP BY k) b) s",
                &[&site],
            )
            .await
            .unwrap();
        let mut values: Vec<f64> = checks
            .iter()
            .filter(|c| c.site == site && c.up && c.started_at < this_hour)
            .map(|c| c.response_time_ms)
            .collect();
        for (i, q) in [0.5, 0.95, 0.99].into_iter().enumerate() {
            let got: f64 = row.get(i);
            let want = exact(&mut values, q);
            assert!(
                (got - want).abs() <= 0.01 * want,
                "{site} q{q}: {got} vs {want}"
            );
        }
    }
    let tls: Option<f64> = client
        .query_one(
            "SELECT sitewatch_sketch_quantile(tls_keys, tls_counts, 0.95) FROM rollups_daily
             WHERE site = 'site-1' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tls, None, "site-1 never measured a TLS handshake");

    // The views say the same.
    let ended_site0: Vec<&Check> = checks
        .iter()
        .filter(|c| c.site == "site-0" && c.started_at < this_hour)
        .collect();
    let (in_view, up_in_view): (i64, i64) = client
        .query_one(
            "SELECT sum(checks)::bigint, sum(up_checks)::bigint FROM site_uptime_daily WHERE site = 'site-0'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(in_view as usize, ended_site0.len());
    assert_eq!(
        up_in_view as usize,
        ended_site0.iter().filter(|c| c.up).count()
    );
    let day = (now - Duration::days(2)).date();
    let p95: f64 = client
        .query_one(
            "SELECT p95_ms FROM site_latency_daily WHERE site = 'site-0' AND phase = 'total' AND day = $1",
            &[&day],
        )
        .await
        .unwrap()
        .get(0);
    let mut that_day: Vec<f64> = ended_site0
        .iter()
        .filter(|c| c.up && c.started_at.date() == day)
        .map(|c| c.response_time_ms)
        .collect();
    let want = exact(&mut that_day, 0.95);
    assert!((p95 - want).abs() <= 0.01 * want, "{p95} vs {want}");
    let statuses = client
        .query(
            "SELECT site, location, last_check_at FROM site_status ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(statuses.len(), 8, "4 sites from 2 locations");
    let newest = checks
        .iter()
        .filter(|c| c.site == "site-0" && c.location == "eu")
        .map(|c| c.started_at)
        .max()
        .unwrap();
    let got: OffsetDateTime = statuses[0].get(2);
    assert_eq!(got, newest);

    // The latest certificate seen, per site and location.
    let latest = checks
        .iter()
        .filter(|c| c.site == "site-0" && c.location == "eu" && c.started_at < this_hour)
        .filter_map(|c| c.tls_expires_at.map(|e| (c.started_at, e)))
        .max()
        .unwrap();
    let stored: (OffsetDateTime, OffsetDateTime) = client
        .query_one(
            "SELECT tls_checked_at, tls_expires_at FROM rollups_daily
             WHERE site = 'site-0' AND location = 'eu' ORDER BY tls_checked_at DESC NULLS LAST LIMIT 1",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(stored, latest);

    // Rebuilt from the rows (migration 0005's repair function), the days
    // before today come out exactly as drain wrote them; today still has
    // a chunk not folded, so it is refused.
    let today = days_ago(0);
    let snapshot = |table: &'static str| {
        let client = &client;
        let today = &today;
        async move {
            client
                .query_one(
                    &format!(
                        "SELECT string_agg(r::text, E'\\n' ORDER BY r::text) FROM {table} r
                         WHERE {} < $1",
                        if table == "rollups_daily" {
                            "day"
                        } else {
                            "(hour AT TIME ZONE 'UTC')::date"
                        }
                    ),
                    &[today],
                )
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    let (hours_before, days_before) = (
        snapshot("rollups_hourly").await,
        snapshot("rollups_daily").await,
    );
    let rebuilt: i64 = client
        .query_one(
            "SELECT sitewatch_rebuild_rollups($1, $2)",
            &[&days_ago(4), &days_ago(1)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rebuilt as usize, hours_before.lines().count());
    assert_eq!(snapshot("rollups_hourly").await, hours_before);
    assert_eq!(snapshot("rollups_daily").await, days_before);
    let refused = client
        .query_one("SELECT sitewatch_rebuild_rollups($1, $1)", &[&days_ago(0)])
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("not folded yet"),
        "{refused:?}"
    );

    // A second run finds nothing new and leaves the rollups as they are.
    let again = drain(dir.path(), &topic, &url, &["--at", &at]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(hourly(&client).await, ended);
}

/// A backlog of more site-hours than a few batches describe is folded as
/// it is drained (memory stays bounded by the batch size), an hour split
/// between two folds is added up, and the rollups agree with the rows.
#[tokio::test]
async fn a_long_backlog_is_folded_as_it_is_drained() {
    let dir = tempfile::tempdir().unwrap();
    let (topic, url, client) = fresh(dir.path(), "backlog").await;
    // Every hour of the backlog has ended, whatever the clock says.
    let now = OffsetDateTime::now_utc();
    // 4 sites from 2 locations for 48 hours ending a day ago: 384
    // site-hours, all ended; a writer folds at 4 batches of 25 = 100.
    let checks = history(4, now - Duration::days(3), 48);
    publish_checks(&topic, &checks).await;
    let mut env = crate::drain::env(&topic, &url);
    env.push(("RUST_LOG", "sitewatch=debug".to_owned()));
    let run = sitewatch(dir.path(), &["drain", "--batch-size", "25"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], checks.len() as u64);
    let folds = run.stderr.matches("rollups folded").count();
    assert!(folds >= 3, "folded {folds} times: {}", run.stderr);
    assert_eq!(hourly(&client).await, counts(&checks));
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM rollup_chunks").await,
        0,
        "every chunk folded"
    );
    let daily = db::count(&client, "SELECT sum(checks)::bigint FROM rollups_daily").await;
    assert_eq!(daily as usize, checks.len());
}

#[tokio::test]
async fn checks_are_stored_in_day_partitions_made_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (topic, url, client) = fresh(dir.path(), "partitions").await;
    let now = mid_hour();
    let at = sitewatch::message::rfc3339_ms::format(&now);
    let long_ago = OffsetDateTime::parse(
        "2021-03-04T05:06:07Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let mut checks = vec![sample(1), sample(2)];
    checks[0].started_at = long_ago;
    checks[1].started_at = now;
    publish_checks(&topic, &checks).await;
    // Older than drain takes by default (400 days): told to keep 10 years.
    let run = drain(
        dir.path(),
        &topic,
        &url,
        &["--max-age", "3650d", "--at", &at],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], 2);
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM checks_20210304").await,
        1
    );
    let kind: i8 = client
        .query_one(
            "SELECT relkind::\"char\" FROM pg_class WHERE relname = 'checks'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind as u8, b'p', "checks is a partitioned table");
    // Today's and tomorrow's partitions (by drain's clock) exist ahead of
    // need.
    let today = now.date();
    for day in [today, today.next_day().unwrap()] {
        let name = format!(
            "checks_{}",
            day.format(time::macros::format_description!("[year][month][day]"))
                .unwrap()
        );
        assert_eq!(
            db::count(
                &client,
                &format!("SELECT count(*) FROM pg_class WHERE relname = '{name}'")
            )
            .await,
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn prune_drops_only_old_days_and_a_drain_meanwhile_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (topic, url, client) = fresh(dir.path(), "prune").await;
    // One clock for drain and prune, in the middle of an hour.
    let now = mid_hour();
    let at = sitewatch::message::rfc3339_ms::format(&now);
    // One check an hour for 40 days.
    let old: Vec<Check> = (0..40 * 24)
        .map(|h| {
            let mut c = sample(h);
            c.site = "steady".into();
            c.started_at = now - Duration::hours(h as i64);
            c
        })
        .collect();
    publish_checks(&topic, &old).await;
    let run = drain(dir.path(), &topic, &url, &["--at", &at]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    // A backlog of recent checks, drained while prune runs.
    let recent: Vec<Check> = (0..20_000)
        .map(|i| Check {
            started_at: now,
            ..sample(i)
        })
        .collect();
    publish_checks(&topic, &recent).await;
    let drain_args = ["--batch-size", "500", "--at", at.as_str()];
    let prune_args = ["prune", "--keep", "30d", "--at", at.as_str()];
    let (drained, pruned) = tokio::join!(drain(dir.path(), &topic, &url, &drain_args), async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        sitewatch(
            dir.path(),
            &prune_args,
            &[("SITEWATCH_DATABASE_URL", url.clone())],
        )
        .await
    });
    assert_eq!(drained.code, 0, "{}", drained.stderr);
    assert_eq!(pruned.code, 0, "{}", pruned.stderr);
    assert!(pruned.stderr.contains("prune: "), "{}", pruned.stderr);
    assert_eq!(figures(&drained)["stored"], recent.len() as u64);

    let first_kept = (now - Duration::days(30)).date();
    let kept_old = old
        .iter()
        .filter(|c| c.started_at.date() >= first_kept)
        .count();
    let stored: i64 = db::count(&client, "SELECT count(*) FROM checks WHERE site = 'steady'").await;
    assert_eq!(
        stored as usize, kept_old,
        "exactly the days before {first_kept} are gone"
    );
    let oldest: OffsetDateTime = client
        .query_one("SELECT min(started_at) FROM checks", &[])
        .await
        .unwrap()
        .get(0);
    assert!(oldest.date() >= first_kept, "{oldest}");
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM checks WHERE site <> 'steady'"
        )
        .await as usize,
        recent.len(),
        "the drain that ran meanwhile lost nothing"
    );
    // The rollups outlive the rows.
    let rolled: i64 = client
        .query_one(
            "SELECT coalesce(sum(checks), 0)::bigint FROM rollups_hourly WHERE site = 'steady'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let ended = old
        .iter()
        .filter(|c| hour_of(c.started_at) < hour_of(now))
        .count();
    assert_eq!(rolled as usize, ended);

    // Rollups go too once older than --keep-rollups; shorter than --keep is refused.
    let bad = sitewatch(
        dir.path(),
        &[
            "prune",
            "--keep",
            "30d",
            "--keep-rollups",
            "7d",
            "--at",
            &at,
        ],
        &[("SITEWATCH_DATABASE_URL", url.clone())],
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--keep-rollups"), "{}", bad.stderr);
    let all = sitewatch(
        dir.path(),
        &[
            "prune",
            "--keep",
            "10d",
            "--keep-rollups",
            "10d",
            "--at",
            &at,
        ],
        &[("SITEWATCH_DATABASE_URL", url.clone())],
    )
    .await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    let left: OffsetDateTime = client
        .query_one("SELECT min(hour) FROM rollups_hourly", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        left >= now - Duration::days(10) - Duration::hours(1),
        "{left}"
    );
}

#[tokio::test]
async fn migrate_upgrades_the_first_schema_in_place_and_fills_the_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::empty().await;
    let client = db::connect(&url).await;
    // The database as the first two migrations left it, with rows.
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                                             applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    for (version, name, sql) in [
        (
            1,
            "0001_checks.sql",
            include_str!("../../migrations/0001_checks.sql"),
        ),
        (
            2,
            "0002_site_collate_c.sql",
            include_str!("../../migrations/0002_site_collate_c.sql"),
        ),
    ] {
        client.batch_execute(sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &name],
            )
            .await
            .unwrap();
    }
    let now = OffsetDateTime::now_utc();
    let checks = history(3, now - Duration::days(4), 30);
    for c in &checks {
        client
            .execute(
                "INSERT INTO checks (check_id, schema, site, url, method, location, started_at, up,
                   response_time_ms, dns_ms, connect_ms, tls_ms, ttfb_ms,
                   kafka_topic, kafka_partition, kafka_offset)
                 VALUES ($1, 1, $2, $3, 'GET', $4, $5, $6, $7, $8, $9, $10, $11, 'old', 0, 0)",
                &[
                    &c.check_id,
                    &c.site,
                    &c.url,
                    &c.location,
                    &c.started_at,
                    &c.up,
                    &c.response_time_ms,
                    &c.dns_ms,
                    &c.connect_ms,
                    &c.tls_ms,
                    &c.ttfb_ms,
                ],
            )
            .await
            .unwrap();
    }

    db::migrate(dir.path(), &url).await;
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM schema_migrations WHERE version = 3"
        )
        .await,
        1
    );

    assert_eq!(
        db::count(&client, "SELECT count(*) FROM checks").await as usize,
        checks.len(),
        "no row lost"
    );
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'checks'::regclass"
        )
        .await,
        // Every day with rows (5) and yesterday to a week ahead (9), overlapping.
        {
            let mut days: std::collections::BTreeSet<_> =
                checks.iter().map(|c| c.started_at.date()).collect();
            for d in -1..=7 {
                days.insert((now + Duration::days(d)).date());
            }
            days.len() as i64
        }
    );
    // Every hour, this one included, is in the rollups.
    assert_eq!(hourly(&client).await, counts(&checks));
    let mut values: Vec<f64> = checks
        .iter()
        .filter(|c| c.site == "site-2" && c.up)
        .map(|c| c.response_time_ms)
        .collect();
    let p95: f64 = client
        .query_one(
            "SELECT sitewatch_sketch_quantile(k, n, 0.95)
             FROM (SELECT array_agg(k ORDER BY k) AS k, array_agg(n ORDER BY k) AS n
                   FROM (SELECT k, sum(n)::integer AS n
                         FROM rollups_daily, unnest(latency_keys, latency_counts) AS u(k, n)
                         WHERE site = 'site-2' GROUP BY k) b) s",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let want = exact(&mut values, 0.95);
    assert!((p95 - want).abs() <= 0.01 * want, "{p95} vs {want}");

    // The upgraded table still stores a redelivered check once.
    let topic = unique_topic("upgrade");
    create_topic(dir.path(), &topic, 1).await;
    let mut again = checks[..10].to_vec();
    again.push(sample(99));
    publish_checks(&topic, &again).await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (figures(&run)["stored"], figures(&run)["duplicates"]),
        (1, 10)
    );
}
