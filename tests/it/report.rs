//! `report` on a crafted history drained through the real broker into a
//! fresh database: its JSON against values computed here from the checks.

use serde_json::Value;
use sitewatch::message::{Check, ErrorKind};
use time::{Duration, OffsetDateTime};

use crate::drain::{drain, figures, sample};
use crate::history::{exact, hour_of, mid_hour, publish_checks};
use crate::support::kafka::unique_topic;
use crate::support::{create_topic, db, sitewatch};

const STEP: i64 = 5; // minutes between checks

fn check(site: &str, location: &str, at: OffsetDateTime, up: bool, ms: f64, i: usize) -> Check {
    let mut c = sample(i);
    c.site = site.to_owned();
    c.url = format!("https://{site}.example/");
    c.location = location.to_owned();
    c.started_at = at;
    c.up = up;
    c.response_time_ms = ms;
    c.ttfb_ms = Some(ms / 2.0);
    c.status_code = Some(if up { 200 } else { 503 });
    c.error_kind = None;
    c.error = None;
    if !up && location == "us" {
        c.status_code = None;
        c.error_kind = Some(ErrorKind::Timeout);
    }
    c
}

/// Three days of checks every 5 minutes, ending at `now`:
/// - `steady` from eu and us, always up;
/// - `flaky` from eu: an outage of 4 failed checks 30 hours ago, and a blip
///   of 2 failures (under the threshold of 3) 5 hours ago;
/// - `down-now` from eu and us: failing for its last 7 checks;
/// - `gone`: its checks stop 2 hours ago;
/// - `secure`: up, with a certificate; its latest check slower than its
///   `degraded_after` (the earlier ones were not).
fn history(now: OffsetDateTime) -> Vec<Check> {
    let mut out = Vec::new();
    let steps = 3 * 24 * 60 / STEP;
    let mut i = 0;
    for n in 0..steps {
        let at = now - Duration::minutes((steps - 1 - n) * STEP);
        let ago = steps - 1 - n; // checks before the last
        let ms = 40.0 + ((n * 7919) % 300) as f64 * 1.3;
        for location in ["eu", "us"] {
            out.push(check("steady", location, at, true, ms + 5.0, i));
            out.push(check("down-now", location, at, ago >= 7, ms, i + 1));
            i += 2;
        }
        let flaky_up = !((358..362).contains(&ago) || (58..60).contains(&ago));
        out.push(check("flaky", "eu", at, flaky_up, ms * 2.0, i));
        if ago >= 24 {
            out.push(check("gone", "eu", at, true, ms, i + 1));
        }
        let mut s = check("secure", "eu", at, true, ms, i + 2);
        s.degraded = Some(ago == 0);
        s.tls_expires_at = Some(now + Duration::days(40) + Duration::hours(1));
        out.push(s);
        i += 3;
    }
    out
}

/// The checks of `site` in the window of `hours` whole hours ending now.
/// The response times of a site's up checks in the last `hours`.
fn up_latencies(checks: &[Check], site: &str, now: OffsetDateTime, hours: i64) -> Vec<f64> {
    in_window(checks, site, now, hours)
        .iter()
        .filter(|c| c.up)
        .map(|c| c.response_time_ms)
        .collect()
}

/// The report's p50/p95/p99 (`latency`) within 2 % of the exact ones.
fn assert_percentiles(latency: &Value, ms: &mut [f64], what: &str) {
    for q in ["p50", "p95", "p99"] {
        let want = exact(ms, q[1..].parse::<f64>().unwrap() / 100.0);
        close(&latency[q], want, &format!("{what} {q}"));
    }
}

fn in_window<'a>(
    checks: &'a [Check],
    site: &str,
    now: OffsetDateTime,
    hours: i64,
) -> Vec<&'a Check> {
    let from = hour_of(now) - (hours - 1) * 3600;
    checks
        .iter()
        .filter(|c| c.site == site && c.started_at.unix_timestamp() >= from)
        .collect()
}

fn close(got: &Value, want: f64, what: &str) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
    assert!(
        (got - want).abs() <= 0.02 * want.abs() + 1e-9,
        "{what}: {got} vs {want}"
    );
}

fn time(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[tokio::test]
async fn report_json_matches_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    // One clock for drain's fold and the report, in the middle of an hour:
    // no hour ends while the test runs, whenever it runs.
    let now = mid_hour();
    let at = sitewatch::message::rfc3339_ms::format(&now);
    let checks = history(now);
    let topic = unique_topic("report");
    create_topic(dir.path(), &topic, 3).await;
    let url = db::fresh(dir.path()).await;
    publish_checks(&topic, &checks).await;
    let run = drain(dir.path(), &topic, &url, &["--at", &at]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], checks.len() as u64);

    let env = [("SITEWATCH_DATABASE_URL", url.clone())];
    let report = |args: Vec<&'static str>| {
        let mut all = vec!["report", "--at", at.as_str()];
        all.extend(args);
        let dir = dir.path().to_owned();
        let env = env.clone();
        async move {
            let run = sitewatch(&dir, &all, &env).await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            run.stdout
        }
    };
    let json: Value = serde_json::from_str(
        &report(vec![
            "--format", "json", "--window", "24h", "--site", "steady", "--site", "flaky", "--site",
            "down-now", "--site", "gone", "--site", "secure", "--site", "never",
        ])
        .await,
    )
    .unwrap();
    let sites: std::collections::BTreeMap<&str, &Value> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["site"].as_str().unwrap(), s))
        .collect();
    assert_eq!(sites.len(), 6);

    // Uptime per window and the checks in the report's window.
    for site in ["steady", "flaky", "down-now", "gone", "secure"] {
        for (name, hours) in [("24h", 24), ("7d", 168), ("30d", 720)] {
            let c = in_window(&checks, site, now, hours);
            let up = c.iter().filter(|c| c.up).count() as f64;
            close(
                &sites[site]["uptime_pct"][name],
                100.0 * up / c.len() as f64,
                &format!("{site} {name}"),
            );
        }
        assert_eq!(
            sites[site]["checks"].as_u64().unwrap() as usize,
            in_window(&checks, site, now, 24).len(),
            "{site}"
        );
    }
    // Percentiles of the up checks, and a phase.
    for site in ["steady", "flaky"] {
        let mut ms = up_latencies(&checks, site, now, 24);
        assert_percentiles(&sites[site]["latency_ms"], &mut ms, site);
        let mut ttfb: Vec<f64> = ms.iter().map(|m| m / 2.0).collect();
        close(
            &sites[site]["phases_p95_ms"]["ttfb"],
            exact(&mut ttfb, 0.95),
            site,
        );
        assert!(sites[site]["phases_p95_ms"]["dns"].is_number());
    }

    // States and since.
    let state = |s: &str| sites[s]["state"].as_str().unwrap().to_owned();
    assert_eq!(state("steady"), "up");
    assert_eq!(state("flaky"), "up");
    assert_eq!(state("down-now"), "down");
    assert_eq!(state("gone"), "stale");
    assert_eq!(state("never"), "unknown");
    assert_eq!(
        state("secure"),
        "degraded",
        "up, but its latest check was slow"
    );
    assert_eq!(sites["secure"]["locations"][0]["state"], "degraded");
    assert_eq!(
        sites["secure"]["uptime_pct"]["24h"], 100.0,
        "a degraded check is up"
    );
    assert!(sites["never"]["since"].is_null());
    let first_failure = now - Duration::minutes(6 * STEP);
    assert_eq!(time(&sites["down-now"]["since"]), first_failure);
    assert_eq!(
        time(&sites["gone"]["since"]),
        now - Duration::minutes(24 * STEP),
        "stale since its last check"
    );
    assert_eq!(sites["down-now"]["locations"].as_array().unwrap().len(), 2);
    assert!(
        sites["down-now"]["locations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["state"] == "down")
    );
    // The flaky site came back at the first good check after its outage.
    let recovered = now - Duration::minutes(357 * STEP);
    assert_eq!(time(&sites["flaky"]["since"]), recovered);

    // Incidents: the blip is not one; the outage 30 hours ago is outside
    // 24h and inside 3d; the ongoing one has no end.
    assert_eq!(sites["flaky"]["incidents"].as_array().unwrap().len(), 0);
    let down = &sites["down-now"]["incidents"].as_array().unwrap()[0];
    assert!(down["end"].is_null());
    assert_eq!(time(&down["start"]), first_failure);
    assert_eq!(down["locations"], serde_json::json!(["eu", "us"]));
    close(
        &down["duration_s"],
        (6 * STEP * 60) as f64,
        "ongoing duration",
    );
    let three_days: Value = serde_json::from_str(
        &report(vec![
            "--format", "json", "--window", "72h", "--site", "flaky",
        ])
        .await,
    )
    .unwrap();
    // Over 72 hours the window holds whole days before today: their
    // sketches come from the daily rollups, summed as they are read.
    let mut ms = up_latencies(&checks, "flaky", now, 72);
    assert_percentiles(&three_days[0]["latency_ms"], &mut ms, "flaky 72h");
    assert_eq!(
        three_days[0]["checks"].as_u64().unwrap() as usize,
        in_window(&checks, "flaky", now, 72).len()
    );
    let incidents = three_days[0]["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(
        time(&incidents[0]["start"]),
        now - Duration::minutes(361 * STEP)
    );
    assert_eq!(time(&incidents[0]["end"]), recovered);
    assert_eq!(
        incidents[0]["duration_s"].as_f64().unwrap(),
        (4 * STEP * 60) as f64
    );
    assert_eq!(incidents[0]["error_kind"], "http");
    assert_eq!(incidents[0]["status_code"], 503);
    assert_eq!(incidents[0]["locations"], serde_json::json!(["eu"]));

    // Certificates, and the latest error.
    assert_eq!(sites["secure"]["tls_days_left"], 40);
    assert!(sites["steady"]["tls_expires_at"].is_null());
    let err = &sites["down-now"]["last_error"];
    assert_eq!(time(&err["at"]), now);
    assert!(
        ["http", "timeout"].contains(&err["error_kind"].as_str().unwrap()),
        "{err}"
    );
    assert!(sites["steady"]["last_error"].is_null());

    // The other formats hold the same sites.
    let table = report(vec![]).await;
    for site in ["steady", "flaky", "down-now", "gone", "secure"] {
        assert!(table.contains(site), "{table}");
    }
    assert!(!table.contains('\x1b'), "no colours when piped");
    let markdown = report(vec!["--format", "markdown", "--window", "72h"]).await;
    assert!(markdown.contains("| down-now | **down** |"), "{markdown}");
    assert!(markdown.contains("- **flaky** down "), "{markdown}");

    // For Prometheus: the JSON's figures, and Prometheus' own linter has
    // nothing to say.
    let metrics = report(vec!["--format", "openmetrics", "--window", "72h"]).await;
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    let lint = promtool_check(&metrics).await;
    assert!(lint.is_empty(), "promtool check metrics: {lint}\n{metrics}");
    let json: Value =
        serde_json::from_str(&report(vec!["--format", "json", "--window", "72h"]).await).unwrap();
    for site in json.as_array().unwrap() {
        let name = site["site"].as_str().unwrap();
        let state = site["state"].as_str().unwrap();
        assert!(
            metrics.contains(&format!(
                "sitewatch_site_state{{site=\"{name}\",state=\"{state}\"}} 1\n"
            )),
            "{name} {state}: {metrics}"
        );
        if let Some(pct) = site["uptime_pct"]["24h"].as_f64() {
            let sample = format!("sitewatch_site_uptime_ratio{{site=\"{name}\",window=\"24h\"}} ");
            let line = metrics.lines().find(|l| l.starts_with(&sample)).unwrap();
            let ratio: f64 = line[sample.len()..].parse().unwrap();
            assert!((ratio - pct / 100.0).abs() < 1e-12, "{line} vs {pct}");
        }
    }

    // The status page: its files, then as a real browser renders it.
    let page = dir.path().join("page");
    let page_arg: &'static str = Box::leak(page.display().to_string().into_boxed_str());
    let out = report(vec![
        "--format", "html", "--window", "72h", "--output", page_arg,
    ])
    .await;
    assert_eq!(out, "", "the page goes to its directory");
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(page.join("status.json")).unwrap()).unwrap();
    let same: Value =
        serde_json::from_str(&report(vec!["--format", "json", "--window", "72h"]).await).unwrap();
    assert_eq!(status, same, "status.json is the JSON report");
    let sites = ["down-now", "flaky", "gone", "secure", "steady"];
    for site in sites {
        let badge = std::fs::read_to_string(
            page.join("badges")
                .join(format!("{}.svg", sitewatch::escape::file_stem(site))),
        )
        .unwrap();
        assert!(
            badge.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{badge}"
        );
        assert!(badge.contains(&format!(">{site}</text>")), "{badge}");
    }
    let html = std::fs::read_to_string(page.join("index.html")).unwrap();
    for external in ["<script", " src=", "url(http", "@import", "<iframe"] {
        assert!(
            !html.contains(external),
            "the page loads nothing: {external}"
        );
    }
    assert!(
        html.contains("<link rel=\"stylesheet\" href=\"style.css\">"),
        "its own style sheet only"
    );
    let dom = browser::dom(&page.join("index.html")).await;
    // Each site's card, as its own page renders it.
    let mut cards = std::collections::BTreeMap::new();
    for site in sites {
        let file = page
            .join("sites")
            .join(format!("{}.html", sitewatch::escape::file_stem(site)));
        let rendered = browser::dom(&file).await;
        let start = rendered
            .find(&format!("data-site=\"{site}\""))
            .unwrap_or_else(|| panic!("{site} is not on its rendered page"));
        let end = rendered[start..].find("</section>").unwrap() + start;
        cards.insert(site, rendered[start..end].to_owned());
    }
    let section = |site: &str| cards[site].as_str();
    for (site, state) in [
        ("down-now", "down"),
        ("flaky", "up"),
        ("gone", "stale"),
        ("secure", "degraded"),
        ("steady", "up"),
    ] {
        let s = section(site);
        assert!(
            s.contains(&format!("data-state=\"{state}\"")),
            "{site}: {s}"
        );
        // 90 days of uptime: a bar per day with checks (the last three or
        // four), and one for the days before them, which had none.
        let days: std::collections::BTreeSet<time::Date> = checks
            .iter()
            .filter(|c| c.site == site)
            .map(|c| c.started_at.date())
            .collect();
        // The strip's days, today last; each run of days without checks is
        // one bar (`gone`'s today has none in the first two hours of a day).
        let today = now.date();
        let strip: Vec<bool> = (0..90)
            .rev()
            .map(|back| days.contains(&(today - Duration::days(back))))
            .collect();
        let runs = strip
            .iter()
            .enumerate()
            .filter(|(i, with)| !**with && (*i == 0 || strip[i - 1]))
            .count();
        assert_eq!(
            s.matches("<rect class=\"").count(),
            days.len() + runs,
            "{site}: {} days have checks",
            days.len()
        );
        assert_eq!(s.matches("<rect class=\"none\"").count(), runs, "{site}");
        let empty = strip.iter().take_while(|with| !**with).count();
        assert!(
            s.contains(&format!("width=\"{}\" height=\"34\"", empty * 10 - 2)),
            "{site}: the {empty} days without checks"
        );
        assert!(s.contains("class=\"p50\" points="), "{site}: a p50 line");
    }
    assert!(section("flaky").contains("<table class=\"incidents\">"));
    assert!(section("down-now").contains("ongoing"));
    assert!(section("secure").contains("40 days left"));
    assert!(dom.contains("1 of 5 sites down"), "the summary");
    assert!(dom.contains("checked from eu, us"), "the locations");
    // Problems first: the down site leads the page.
    assert!(dom.find("data-site=\"down-now\"") < dom.find("data-site=\"flaky\""));
    assert!(
        std::fs::read_to_string(page.join("incidents.html"))
            .unwrap()
            .contains("ongoing")
    );
    // The incidents page goes back 90 days whatever the window: flaky's
    // outage of 30 hours ago is on it with a 24-hour window, with its
    // status and location.
    let day_page = dir.path().join("day-page");
    let day_arg: &'static str = Box::leak(day_page.display().to_string().into_boxed_str());
    report(vec!["--format", "html", "--output", day_arg]).await;
    let listed = std::fs::read_to_string(day_page.join("incidents.html")).unwrap();
    let flaky_at = listed
        .find(">flaky</a>")
        .expect("flaky's outage of 30 hours ago");
    assert!(
        listed.contains("every outage over the last 90 days")
            && listed[flaky_at..].starts_with(">flaky</a>")
            && listed[flaky_at..listed[flaky_at..].find("</tr>").unwrap() + flaky_at]
                .contains("<td>http 503</td><td>eu</td>"),
        "{listed}"
    );
    let shot = browser::screenshot(&page.join("index.html")).await;
    assert!(shot.len() > 10_000, "a screenshot of {} bytes", shot.len());

    grafana_panels_answer(&url, now).await;

    // The run ledger: per location, runs made against the runs its tick
    // implies over the window, and the longest gap. `eu` runs every minute
    // but skipped ten; `us` stopped three hours ago.
    let start = now.replace_minute(0).unwrap().replace_second(0).unwrap() - Duration::hours(23);
    let client = db::connect(&url).await;
    let insert = "INSERT INTO runs (run_id, job, location, tick_s, started_at, finished_at,
                      sites_due, checked, published, outcome)
                  SELECT gen_random_uuid(), 'probe-once', $1, 60, t, t + interval '2 seconds', 5, 5, 5, 'ok'
                  FROM generate_series($2::timestamptz, $3::timestamptz, interval '1 minute') t
                  WHERE NOT (t >= $4 AND t < $5)";
    let first = start - Duration::hours(2) + Duration::seconds(30);
    let (skip_from, skip_to) = (
        start + Duration::hours(5),
        start + Duration::hours(5) + Duration::minutes(10),
    );
    client
        .execute(insert, &[&"eu", &first, &now, &skip_from, &skip_to])
        .await
        .unwrap();
    let us_last = now - Duration::hours(3);
    client
        .execute(insert, &[&"us", &first, &us_last, &now, &now])
        .await
        .unwrap();
    let made = |location: &str| {
        let client = &client;
        let location = location.to_owned();
        async move {
            client
                .query_one(
                    "SELECT count(*) FROM runs WHERE location = $1 AND started_at >= $2 AND started_at <= $3",
                    &[&location, &start, &now],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let (eu_made, us_made) = (made("eu").await, made("us").await);
    let json: Value =
        serde_json::from_str(&report(vec!["--format", "json", "--site", "steady"]).await).unwrap();
    let runs = |location: &str| {
        json[0]["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["location"] == location)
            .unwrap()["runs"]
            .clone()
    };
    let expected = (now - start).whole_seconds() / 60;
    let eu = runs("eu");
    assert_eq!(eu["made"], eu_made, "{eu}");
    assert_eq!(eu["expected"], expected, "{eu}");
    // A window holds floor(window / tick) ticks, or one more, by the phase
    // of the runs: ten fewer were made.
    assert!((expected - 10 - eu_made).abs() <= 1, "ten skipped: {eu}");
    assert_eq!(
        eu["longest_gap_s"], 660.0,
        "ten runs skipped: 11 minutes between two"
    );
    let us = runs("us");
    assert_eq!(us["made"], us_made);
    assert_eq!(us["expected"], expected);
    let gap = us["longest_gap_s"].as_f64().unwrap();
    let stopped = (now - (us_last - Duration::seconds(30))).whole_seconds() as f64;
    assert!(
        (gap - stopped).abs() <= 60.0,
        "since it stopped: {gap} vs {stopped}"
    );
    let table = report(vec!["--site", "steady"]).await;
    assert!(
        table.contains(&format!(
            "runs from eu: {eu_made} of {expected} runs, longest gap 11m00s"
        )),
        "{table}"
    );
    let markdown = report(vec!["--format", "markdown", "--site", "steady"]).await;
    assert!(
        markdown.contains(&format!("| eu | {eu_made} | {expected} | 11m00s |")),
        "{markdown}"
    );
}

/// Every query of `grafana/sitewatch.json`, its macros and variables
/// expanded as Grafana does, runs against the history and answers.
async fn grafana_panels_answer(url: &str, now: OffsetDateTime) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/sitewatch.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .expect("the dashboard is JSON");
    assert_eq!(
        dashboard["__inputs"][0]["pluginId"],
        "grafana-postgresql-datasource"
    );
    let client = db::connect(url).await;
    let rfc = |t: OffsetDateTime| sitewatch::message::rfc3339_ms::format(&t);
    let expand = |sql: &str| {
        let mut sql = sql
            .replace("$site", "'steady','flaky','down-now','gone','secure'")
            .replace("$phase", "'total','ttfb'");
        while let Some(start) = sql.find("$__timeFilter(") {
            let end = start + sql[start..].find(')').unwrap();
            let column = sql[start + "$__timeFilter(".len()..end].to_owned();
            sql.replace_range(
                start..=end,
                &format!(
                    "{column} BETWEEN '{}' AND '{}'",
                    rfc(now - Duration::days(3)),
                    rfc(now)
                ),
            );
        }
        assert!(!sql.contains('$'), "a macro left: {sql}");
        sql
    };
    let mut answers = std::collections::BTreeMap::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "${DS_SITEWATCH}", "{title}");
        for target in panel["targets"].as_array().unwrap() {
            let sql = expand(target["rawSql"].as_str().unwrap());
            let rows = client
                .simple_query(&sql)
                .await
                .unwrap_or_else(|e| panic!("{title}: {e:?}\n{sql}"));
            let rows: Vec<Vec<String>> = rows
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("").to_owned())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect();
            assert!(!rows.is_empty(), "{title} answers nothing");
            answers.insert(title.to_owned(), rows);
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            let names = client
                .simple_query(variable["query"].as_str().unwrap())
                .await
                .unwrap();
            assert!(names.len() >= 5, "the site variable lists the sites");
        }
    }
    let state = &answers["State now (latest check per location)"];
    assert_eq!(state[0][..4], ["down-now", "failing", "2", "2"]);
    let incidents = &answers["Incidents (3 or more failed checks in a row, per location)"];
    let flaky: Vec<&Vec<String>> = incidents.iter().filter(|r| r[0] == "flaky").collect();
    assert_eq!(flaky.len(), 1, "the blip of 2 is not one: {incidents:?}");
    assert_eq!(flaky[0][4], "4", "4 failed checks");
    let down_now: Vec<&Vec<String>> = incidents.iter().filter(|r| r[0] == "down-now").collect();
    assert_eq!(down_now.len(), 2, "one per location");
    assert!(
        down_now.iter().all(|r| r[3].is_empty() && r[4] == "7"),
        "{down_now:?}"
    );
    let certs = &answers["Certificate days left"];
    assert_eq!(certs, &vec![vec!["secure".to_owned(), "40".to_owned()]]);
}

/// Debian's headless Chromium, each run in a profile of its own and
/// bounded in time.
mod browser {
    use std::path::Path;
    use std::time::Duration;

    async fn chromium(page: &Path, what: &[&str]) -> Vec<u8> {
        let profile = tempfile::tempdir().unwrap();
        let mut command = tokio::process::Command::new("chromium");
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // Nothing leaves the machine, whatever the page asks.
            .arg("--host-resolver-rules=MAP * ~NOTFOUND")
            .args(what)
            .arg(format!("file://{}", page.display()))
            .current_dir(profile.path())
            .stdin(std::process::Stdio::null());
        succeeded(
            command,
            Duration::from_secs(60),
            "chromium",
            ".ci/run installs Debian's chromium",
        )
        .await
    }

    /// What `command` printed, once it has ended, within `limit`, with
    /// success; `what` names it and `missing` says where it comes from.
    async fn succeeded(
        mut command: tokio::process::Command,
        limit: Duration,
        what: &str,
        missing: &str,
    ) -> Vec<u8> {
        let out = tokio::time::timeout(limit, command.kill_on_drop(true).output())
            .await
            .unwrap_or_else(|_| panic!("{what} ran over {limit:?}"))
            .unwrap_or_else(|e| panic!("{what} did not start ({missing}): {e}"));
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The page's DOM once rendered.
    pub async fn dom(page: &Path) -> String {
        String::from_utf8(chromium(page, &["--dump-dom"]).await).unwrap()
    }

    /// The page in three views (desktop light, desktop dark, a 375-pixel
    /// phone) through playwright-core and axe-core
    /// (tests/it/browser/audit.mjs): what each found, and a PNG of each,
    /// kept as `target/status-page-<view>.png`.
    pub async fn audit(page: &Path, prefix: &str) -> serde_json::Value {
        let modules = std::env::var("STACK_NODE_MODULES")
            .expect("STACK_NODE_MODULES: eval \"$(scripts/stack env)\" (scripts/stack install puts playwright-core and axe-core there)");
        let out = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/browser/audit.mjs");
        let mut node = tokio::process::Command::new("node");
        node.arg(script)
            .arg(page)
            .arg(out.path())
            .arg(prefix)
            .env("STACK_NODE_MODULES", modules);
        let found = succeeded(
            node,
            Duration::from_secs(120),
            "audit.mjs",
            "Node.js is installed with the machine",
        )
        .await;
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        for view in ["light", "dark", "phone"] {
            let name = format!("{prefix}-{view}.png");
            let png = std::fs::read(out.path().join(&name)).unwrap();
            assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
            let _ = std::fs::write(target.join(&name), &png);
        }
        serde_json::from_slice(&found).unwrap()
    }

    /// A PNG of the page, kept as `target/status-page.png` to look at.
    pub async fn screenshot(page: &Path) -> Vec<u8> {
        let shot = page.with_file_name("status-page.png");
        chromium(
            page,
            &[
                "--hide-scrollbars",
                "--window-size=1100,2200",
                &format!("--screenshot={}", shot.display()),
            ],
        )
        .await;
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let keep = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
        let _ = std::fs::write(keep, &png);
        png
    }
}

/// What `promtool check metrics` (Debian's prometheus package) says of
/// `text`: nothing when it accepts it.
async fn promtool_check(text: &str) -> String {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("promtool did not start (scripts/stack installs Debian's prometheus)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("promtool ran over a minute")
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        said
    } else {
        format!("exit {}: {said}", out.status)
    }
}

/// `--period` (a calendar month, in a time zone) and `--from/--to` against
/// uptime computed here from the checks, JSON and CSV alike; what is
/// outside the period does not count.
#[tokio::test]
async fn sla_periods_match_uptime_computed_from_the_checks() {
    use time::macros::datetime;
    let dir = tempfile::tempdir().unwrap();
    // Every 10 minutes from October 29 to December 3, 2026: `a` down for
    // 3 checks on Sunday, November 8 (in maintenance), `b` down all of November 10 (UTC) and all of
    // October 30 and December 2 (outside the period).
    let start = datetime!(2026-10-29 0:00 UTC);
    let end = datetime!(2026-12-03 0:00 UTC);
    let mut checks = Vec::new();
    let mut at = start;
    let mut i = 0;
    while at < end {
        let a_up =
            !(datetime!(2026-11-08 00:10 UTC)..datetime!(2026-11-08 00:40 UTC)).contains(&at);
        let day = at.date();
        let b_up = ![
            time::macros::date!(2026 - 11 - 10),
            time::macros::date!(2026 - 10 - 30),
            time::macros::date!(2026 - 12 - 02),
        ]
        .contains(&day);
        checks.push(check("a", "eu", at, a_up, 50.0, i));
        checks.push(check("b", "eu", at, b_up, 80.0, i + 1));
        i += 2;
        at += Duration::minutes(10);
    }
    let topic = unique_topic("report-sla");
    create_topic(dir.path(), &topic, 1).await;
    let url = db::fresh(dir.path()).await;
    publish_checks(&topic, &checks).await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], checks.len() as u64);
    // Maintenance, left out of every figure: every Sunday 02:00-03:00 in
    // Helsinki for every site (00:00-01:00 UTC in November, EET), and for
    // `b` once on November 10, 10:20-11:10 UTC (parts of two hours).
    std::fs::write(
        dir.path().join("sites.toml"),
        r#"[[site]]
name = "a"
url = "https://a.example/"

[[site]]
name = "b"
url = "https://b.example/"

[[maintenance]]
sites = ["*"]
every = "sun 02:00-03:00"
time_zone = "Europe/Helsinki"

[[maintenance]]
sites = ["b"]
start = "2026-11-10 12:20"
duration = "50m"
time_zone = "Europe/Helsinki"
"#,
    )
    .unwrap();
    let sundays = [1, 8, 15, 22, 29].map(|d| {
        let day = time::Date::from_calendar_date(2026, time::Month::November, d).unwrap();
        let start = day.midnight().assume_utc();
        (start, start + Duration::hours(1))
    });
    let once = (
        datetime!(2026-11-10 10:20 UTC),
        datetime!(2026-11-10 11:10 UTC),
    );
    let in_maintenance = |c: &Check| {
        sundays
            .iter()
            .chain(if c.site == "b" { Some(&once) } else { None })
            .any(|(lo, hi)| *lo <= c.started_at && c.started_at < *hi)
    };
    // Checks counted, their uptime, and those left out.
    let expected_all = |site: &str, from: OffsetDateTime, to: OffsetDateTime| {
        let within: Vec<&Check> = checks
            .iter()
            .filter(|c| c.site == site && c.started_at >= from && c.started_at < to)
            .collect();
        let counted: Vec<&&Check> = within.iter().filter(|c| !in_maintenance(c)).collect();
        let up = counted.iter().filter(|c| c.up).count();
        (
            counted.len(),
            100.0 * up as f64 / counted.len() as f64,
            within.len() - counted.len(),
        )
    };
    let expected = |site: &str, from: OffsetDateTime, to: OffsetDateTime| {
        let (count, uptime, _) = expected_all(site, from, to);
        (count, uptime)
    };
    let env = [("SITEWATCH_DATABASE_URL", url.clone())];
    let report = |args: Vec<&'static str>| {
        let mut all = vec!["report"];
        all.extend(args);
        let dir = dir.path().to_owned();
        let env = env.clone();
        async move {
            let run = sitewatch(&dir, &all, &env).await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            run.stdout
        }
    };
    let november = (
        datetime!(2026-11-01 0:00 UTC),
        datetime!(2026-12-01 0:00 UTC),
    );
    let json: Value =
        serde_json::from_str(&report(vec!["--period", "2026-11", "--format", "json"]).await)
            .unwrap();
    for site in json.as_array().unwrap() {
        let name = site["site"].as_str().unwrap();
        let (count, uptime, left_out) = expected_all(name, november.0, november.1);
        assert_eq!(site["checks"].as_u64().unwrap() as usize, count, "{name}");
        close(&site["window_uptime_pct"], uptime, name);
        assert_eq!(
            site["maintenance_checks"].as_u64().unwrap() as usize,
            left_out,
            "{name}"
        );
        let windows = site["maintenance"].as_array().unwrap();
        assert_eq!(windows.len(), if name == "b" { 6 } else { 5 }, "{name}");
        assert_eq!(windows[0]["start"], "2026-11-01T00:00:00.000Z");
        assert_eq!(windows[0]["duration_s"], 3600.0);
    }
    // The Sunday outage of `a` and the failures of `b` in its window do
    // not count: without maintenance they would.
    let a = &json.as_array().unwrap()[0];
    assert_eq!(a["site"], "a");
    close(
        &a["window_uptime_pct"],
        100.0,
        "a's only outage is in maintenance",
    );
    // The same period by its ends, as CSV.
    let csv = report(vec![
        "--from",
        "2026-11-01",
        "--to",
        "2026-12-01",
        "--format",
        "csv",
    ])
    .await;
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for row in rows {
        let (count, uptime, left_out) = expected_all(row[0], november.0, november.1);
        let maintenance_s = if row[0] == "b" {
            5 * 3600 + 50 * 60
        } else {
            5 * 3600
        };
        assert_eq!(row[12], maintenance_s.to_string(), "{csv}");
        assert_eq!(row[13].parse::<usize>().unwrap(), left_out, "{csv}");
        assert_eq!(row[2], "2026-11-01T00:00:00.000Z");
        assert_eq!(row[3], "2026-12-01T00:00:00.000Z");
        assert_eq!(row[4].parse::<usize>().unwrap(), count, "{csv}");
        let got: f64 = row[6].parse().unwrap();
        assert!(
            (got - uptime).abs() < 0.0001,
            "{}: {got} against {uptime}",
            row[0]
        );
    }
    // November in Helsinki: from October 31, 22:00 UTC to November 30,
    // 22:00 UTC (EET).
    let json: Value = serde_json::from_str(
        &report(vec![
            "--period",
            "2026-11",
            "--time-zone",
            "Europe/Helsinki",
            "--format",
            "json",
        ])
        .await,
    )
    .unwrap();
    let b = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "b")
        .unwrap();
    let (count, uptime) = expected(
        "b",
        datetime!(2026-10-31 22:00 UTC),
        datetime!(2026-11-30 22:00 UTC),
    );
    assert_eq!(b["checks"].as_u64().unwrap() as usize, count);
    close(&b["window_uptime_pct"], uptime, "b in Helsinki");
    // A period that cannot be counted in whole hours is refused, naming why.
    let run = sitewatch(
        dir.path(),
        &[
            "report",
            "--period",
            "2026-11",
            "--time-zone",
            "Asia/Kolkata",
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a whole UTC hour"),
        "{}",
        run.stderr
    );
}

/// The sites file's `[page]`, groups, `public = false` and `hide_url`
/// through `report --format html`, from stored checks.
#[tokio::test]
async fn the_page_shows_its_settings_and_leaves_out_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let now = mid_hour();
    let at = sitewatch::message::rfc3339_ms::format(&now);
    let mut checks = Vec::new();
    for (i, site) in ["checkout", "internal", "billing", "blog"]
        .iter()
        .enumerate()
    {
        for n in 0..6 {
            // `checkout` fails 5, 10 and 15 minutes ago: the first two in
            // its maintenance window.
            let up = !(*site == "checkout" && (1..=3).contains(&n));
            checks.push(check(
                site,
                "eu",
                now - Duration::minutes(5 * n),
                up,
                40.0,
                i * 10 + n as usize,
            ));
        }
    }
    let topic = unique_topic("report-page");
    create_topic(dir.path(), &topic, 1).await;
    let url = db::fresh(dir.path()).await;
    publish_checks(&topic, &checks).await;
    let run = drain(dir.path(), &topic, &url, &["--at", &at]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::create_dir_all(dir.path().join("brand")).unwrap();
    std::fs::write(
        dir.path().join("brand/logo.svg"),
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40" width="40" height="40"><circle cx="20" cy="20" r="18" fill="#0969da"/><path d="M11 21l6 6 12-14" stroke="#fff" stroke-width="4" fill="none"/></svg>"##,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sites.toml"),
        r#"[page]
title = "Acme <status>"
description = "Our APIs & <i>more</i>"
logo = "brand/logo.svg"
links = [ { name = "Docs", url = "https://docs.acme.test/" } ]
footer = "Acme Inc."
announcements = "news.md"

[[site]]
name = "checkout"
url = "https://checkout.example/"
group = "Payments"

[[site]]
name = "billing"
url = "https://billing.corp.example/secret-path"
group = "Payments"
hide_url = true

[[site]]
name = "internal"
url = "http://10.0.0.7/actuator/health"
public = false

[[site]]
name = "blog"
url = "https://blog.example/"

[[maintenance]]
sites = ["checkout"]
title = "Checkout database upgrade"
start = "{window_start}"
duration = "30m"

[[maintenance]]
sites = ["internal"]
title = "Secret internal work"
every = "daily 00:00-23:59"
"#
        .replace(
            "{window_start}",
            &sitewatch::message::rfc3339_ms::format(&(now - Duration::minutes(12))),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("news.md"),
        "## maintenance: Payments upgrade\nstart: 2099-01-01 02:00\nend: 2099-01-01 04:00\ntime_zone: Europe/Helsinki\n\nCheckout may be **slow**. <img src=x onerror=alert(1)>\n\n## resolved: An old one\nstart: 2020-01-01T00:00:00Z\n\nDone.\n",
    )
    .unwrap();
    let out = dir.path().join("public");
    let out_text = out.display().to_string();
    let env = [("SITEWATCH_DATABASE_URL", url.clone())];
    let run = sitewatch(
        dir.path(),
        &[
            "report", "--at", &at, "--format", "html", "--output", &out_text,
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let json = std::fs::read_to_string(out.join("status.json")).unwrap();
    assert!(html.contains("<h1>Acme &lt;status&gt;</h1>"), "{html}");
    assert!(html.contains("Our APIs &amp; &lt;i&gt;more&lt;/i&gt;"));
    assert!(html.contains("<a href=\"https://docs.acme.test/\">Docs</a>"));
    assert!(out.join("logo.svg").is_file());
    assert!(html.contains("<h2 class=\"group-name\">Payments</h2>"));
    assert!(
        html.contains("Payments upgrade")
            && html.contains("2099-01-01 00:00Z to 2099-01-01 02:00Z"),
        "{html}"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;") && !html.contains("<img src=x"),
        "raw HTML is text: {}",
        &html[html.find("Checkout may").unwrap_or(0)..]
            [..200.min(html.len() - html.find("Checkout may").unwrap_or(0))]
    );
    assert!(!html.contains("An old one"), "the past is in the archive");
    // The maintenance going on is announced, and uptime leaves it out:
    // checkout's figure is that of its checks outside the window,
    // computed here.
    assert!(
        html.contains("Checkout database upgrade")
            && html.contains("Sites: checkout. Once. Uptime leaves this time out.")
            && html.contains("uptime leaves out maintenance windows"),
        "{html}"
    );
    let window = (now - Duration::minutes(12), now + Duration::minutes(18));
    let counted: Vec<&Check> = checks
        .iter()
        .filter(|c| c.site == "checkout" && !(window.0..window.1).contains(&c.started_at))
        .collect();
    let uptime = 100.0 * counted.iter().filter(|c| c.up).count() as f64 / counted.len() as f64;
    let figure = format!("{:.2}%", (uptime * 100.0).floor() / 100.0);
    assert_eq!(figure, "66.66%", "one failure of three counted");
    let row_at = html.find("data-site=\"checkout\"").unwrap();
    let row = &html[row_at..row_at + html[row_at..].find("</tr>").unwrap()];
    assert!(
        row.contains("data-state=\"maintenance\"") && row.contains(&format!("<td>{figure}</td>")),
        "{row}"
    );
    assert!(
        std::fs::read_to_string(out.join("announcements.html"))
            .unwrap()
            .contains("An old one")
    );
    let mut pages = vec![html.clone(), json.clone()];
    for entry in std::fs::read_dir(out.join("sites")).unwrap() {
        pages.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert_eq!(pages.len(), 2 + 3, "a page per site shown");
    for text in &pages {
        assert!(
            !text.contains("internal") && !text.contains("10.0.0.7"),
            "the private site shows"
        );
        assert!(
            !text.contains("Secret internal work"),
            "its maintenance shows"
        );
        assert!(!text.contains("secret-path"), "the hidden URL shows");
    }
    assert!(
        html.contains("data-site=\"billing\""),
        "billing is on the page, without its URL"
    );
    let badges: Vec<String> = std::fs::read_dir(out.join("badges"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(badges.len(), 3, "{badges:?}");
    // In a real browser: axe-core finds nothing serious or critical in the
    // light and dark themes and on a 375-pixel phone, nothing is wider
    // than the screen, nothing is fetched from elsewhere.
    let checkout = out
        .join("sites")
        .join(format!("{}.html", sitewatch::escape::file_stem("checkout")));
    let mut audits = Vec::new();
    for (page, prefix) in [
        (out.join("index.html"), "status-page"),
        (checkout, "status-site"),
        (out.join("incidents.html"), "status-incidents"),
        (out.join("announcements.html"), "status-announcements"),
    ] {
        audits.push((prefix, browser::audit(&page, prefix).await));
    }
    for (page, audit) in &audits {
        for view in ["light", "dark", "phone"] {
            let v = &audit[view];
            assert_eq!(v["violations"], serde_json::json!([]), "{page} {view}: {v}");
            assert_eq!(v["overflow"], false, "{page} {view}: {v}");
            assert_eq!(v["outside"], serde_json::json!([]), "{page} {view}: {v}");
        }
    }
    let audit = &audits[0].1;
    assert_ne!(
        audit["light"]["layout"]["background"], audit["dark"]["layout"]["background"],
        "the dark theme follows prefers-color-scheme"
    );
    // The table still reports the private site.
    let run = sitewatch(dir.path(), &["report", "--at", &at], &env).await;
    assert!(run.stdout.contains("internal"), "{}", run.stdout);
    // A missing logo is named before anything is read.
    std::fs::write(
        dir.path().join("sites.toml"),
        "[page]\nlogo = \"nope.png\"\n\n[[site]]\nname = \"blog\"\nurl = \"https://blog.example/\"\n",
    )
    .unwrap();
    let run = sitewatch(
        dir.path(),
        &["report", "--format", "html", "--output", &out_text],
        &env,
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("[page] logo `") && run.stderr.contains("no such file"),
        "{}",
        run.stderr
    );
    let run = sitewatch(dir.path(), &["validate"], &[]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("[page] logo"), "{}", run.stderr);
}
