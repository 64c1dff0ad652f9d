//! `report` and `alert` tell the same story: one crafted history, sites
//! with their own rules (thresholds, quorum counts and `"majority"`,
//! `stale_after`), stored by the real drain in the real PostgreSQL; the
//! state and `since` alert keeps for each site are the ones report shows.

use std::collections::BTreeMap;

use serde_json::Value;
use sitewatch::message::rfc3339_ms;

use crate::alert::Rig;
use crate::support::{db, sitewatch};

const SITES: &str = r#"
[alerts]
notify = ["hook"]

[[site]]
name = "steady"
url = "https://steady.example/"

[[site]]
name = "failing-from-the-first"
url = "https://failing-from-the-first.example/"

[[site]]
name = "lenient"
url = "https://lenient.example/"
[site.alerts]
failure_threshold = 5

[[site]]
name = "strict"
url = "https://strict.example/"
[site.alerts]
failure_threshold = 1

[[site]]
name = "majority"
url = "https://majority.example/"
[site.alerts]
quorum = "majority"

[[site]]
name = "minority"
url = "https://minority.example/"
[site.alerts]
quorum = "majority"

[[site]]
name = "two-of-three"
url = "https://two-of-three.example/"
[site.alerts]
quorum = 2

[[site]]
name = "recovered"
url = "https://recovered.example/"

[[site]]
name = "quiet"
url = "https://quiet.example/"
[site.alerts]
stale_after = "5m"

[[site]]
name = "never"
url = "https://never.example/"
"#;

/// Each site's checks: per location, one per minute from `from`, `+` up
/// and `-` down.
const HISTORY: &[(&str, &str, u32, &str)] = &[
    ("steady", "eu", 0, "++++++++++++++++++++++++++++++"),
    ("failing-from-the-first", "eu", 28, "--"),
    ("lenient", "eu", 0, "++++++++++++++++++++++++++----"),
    ("strict", "eu", 0, "+++++++++++++++++++++++++++++-"),
    ("majority", "eu", 0, "+++++++++++++++++++++++++-----"),
    ("majority", "us", 0, "+++++++++++++++++++++++++++---"),
    ("majority", "ap", 0, "++++++++++++++++++++++++++++++"),
    ("minority", "eu", 0, "+++++++++++++++++++++++++-----"),
    ("minority", "us", 0, "++++++++++++++++++++++++++++++"),
    ("minority", "ap", 0, "++++++++++++++++++++++++++++++"),
    ("two-of-three", "eu", 0, "++++++++++++++++++++++++------"),
    ("two-of-three", "us", 0, "+++++++++++++++++++++++++++---"),
    ("two-of-three", "ap", 0, "++++++++++++++++++++++++++++++"),
    ("recovered", "eu", 0, "++++++++++-----+++++++++++++++"),
    ("quiet", "eu", 0, "+++++++++++"),
];

#[tokio::test(flavor = "multi_thread")]
async fn report_and_alert_agree_on_every_site_of_a_crafted_history() {
    let rig = Rig::new("agreement", SITES).await;
    let mut checks = Vec::new();
    for (site, location, from, pattern) in HISTORY {
        for (i, c) in pattern.chars().enumerate() {
            let minute = f64::from(*from) + i as f64;
            checks.push(rig.check(site, location, minute, c == '+'));
        }
    }
    rig.store(&checks).await;
    let now = 30.0;
    let run = rig.alert(now).await;

    let client = db::connect(&rig.url).await;
    let alert: BTreeMap<String, (String, String)> = client
        .query("SELECT site, state, since FROM alert_sites", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                (
                    r.get(1),
                    rfc3339_ms::format(&r.get::<_, time::OffsetDateTime>(2)),
                ),
            )
        })
        .collect();
    let at = rfc3339_ms::format(&rig.at(now));
    let report = sitewatch(
        rig.path(),
        &["report", "--format", "json", "--at", &at],
        &rig.env(),
    )
    .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let json: Value = serde_json::from_str(&report.stdout).unwrap();
    let shown: BTreeMap<String, (String, Value)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["site"].as_str().unwrap().to_owned(),
                (s["state"].as_str().unwrap().to_owned(), s["since"].clone()),
            )
        })
        .collect();

    let minute = |m: f64| Value::from(rfc3339_ms::format(&rig.at(m)));
    let expected = [
        ("steady", "up", minute(0.0)),
        ("failing-from-the-first", "pending", minute(28.0)),
        ("lenient", "pending", minute(26.0)),
        ("strict", "down", minute(29.0)),
        // Down from when the second of three locations went down.
        ("majority", "down", minute(27.0)),
        ("minority", "pending", minute(25.0)),
        ("two-of-three", "down", minute(27.0)),
        ("recovered", "up", minute(15.0)),
        ("quiet", "stale", minute(10.0)),
        ("never", "unknown", Value::Null),
    ];
    for (site, state, since) in &expected {
        let (report_state, report_since) = &shown[*site];
        assert_eq!(
            (report_state.as_str(), report_since),
            (*state, since),
            "report, {site}: {json}"
        );
        let (alert_state, alert_since) = &alert[*site];
        assert_eq!(alert_state, state, "alert, {site}: {alert:?}");
        if !since.is_null() {
            assert_eq!(&Value::from(alert_since.clone()), since, "alert, {site}");
        }
    }
    assert_eq!(shown.len(), expected.len(), "{json}");

    // And alert sent what those states call for: a down for each down
    // site (none for pending), a stale for the quiet one; `never` is not
    // overdue yet (15 minutes since alert first saw it configured).
    let mut sent: Vec<(String, String)> = rig
        .events()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["site"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("down".to_owned(), "majority".to_owned()),
            ("down".to_owned(), "strict".to_owned()),
            ("down".to_owned(), "two-of-three".to_owned()),
            ("stale".to_owned(), "quiet".to_owned()),
        ],
        "{}",
        run.stdout
    );

    // The configured site no check mentions: alert says so once it has
    // been unknown for its stale_after.
    let run = rig.alert(now + 16.0).await;
    let never: Vec<Value> = rig
        .events()
        .into_iter()
        .filter(|e| e["site"] == "never")
        .collect();
    assert_eq!(never.len(), 1, "{}", run.stdout);
    assert_eq!(never[0]["kind"], "stale");
    assert!(
        never[0]["summary"]
            .as_str()
            .unwrap()
            .contains("never been checked"),
        "{}",
        never[0]
    );
}

/// Why a site is down travels from the check to alert, report and the
/// page; `resolved` says when the outage began, ended and how long it was.
#[tokio::test(flavor = "multi_thread")]
async fn the_reason_travels_and_resolved_says_how_long_it_lasted() {
    let rig = Rig::new("reason", "").await;
    let why = "status 503, expected 200-299";
    let failed = |minute: f64| {
        let mut c = rig.answered_down("api", "eu", minute);
        c.error = Some(why.to_owned());
        c.condition = Some(why.to_owned());
        c
    };
    let slow_why = "response time 900 ms, over degraded_after 500 ms";
    let mut checks = vec![
        rig.check("api", "eu", 0.0, true),
        rig.check("api", "eu", 1.0, true),
    ];
    checks.extend([failed(2.0), failed(3.0), failed(4.0)]);
    for minute in [0.0, 1.0, 2.0, 3.0, 4.0] {
        let mut c = rig.check("slow", "eu", minute, true);
        c.degraded = Some(minute >= 3.0);
        c.condition = (minute >= 3.0).then(|| slow_why.to_owned());
        checks.push(c);
    }
    rig.store(&checks).await;
    let run = rig.alert(4.5).await;
    let events = rig.events();
    assert_eq!(rig.kinds(), ["down"], "{}", run.stdout);
    assert_eq!(events[0]["error"], why);
    assert!(
        events[0]["summary"].as_str().unwrap().ends_with(why),
        "{}",
        events[0]
    );
    assert!(run.stdout.contains(why), "{}", run.stdout);

    let report = |minute: f64, format: &'static str| {
        let at = rfc3339_ms::format(&rig.at(minute));
        let dir = rig.path().to_owned();
        let env = rig.env();
        async move {
            let out = dir.join("page");
            let mut args = vec!["report", "--format", format, "--at", at.as_str()];
            let out_text = out.display().to_string();
            if format == "html" {
                args.extend(["--output", out_text.as_str()]);
            }
            let run = sitewatch(&dir, &args, &env).await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            if format == "html" {
                std::fs::read_to_string(out.join("index.html")).unwrap()
            } else {
                run.stdout
            }
        }
    };
    let json: Value = serde_json::from_str(&report(4.5, "json").await).unwrap();
    let by_site = |name: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|s| s["site"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_site("api")["state"], "down");
    assert_eq!(by_site("api")["reason"], why, "{json}");
    assert_eq!(by_site("api")["last_error"]["error"], why);
    assert_eq!(by_site("slow")["state"], "degraded");
    assert_eq!(by_site("slow")["reason"], slow_why, "{json}");
    let table = report(4.5, "table").await;
    assert!(table.contains("status 503, expected 200-299 at"), "{table}");
    let page = report(4.5, "html").await;
    assert!(page.contains(why) && page.contains(slow_why), "{page}");

    rig.store(&[
        rig.check("api", "eu", 5.0, true),
        rig.check("api", "eu", 6.0, true),
    ])
    .await;
    let run = rig.alert(6.5).await;
    let events = rig.events();
    assert_eq!(rig.kinds(), ["down", "resolved"], "{}", run.stdout);
    let resolved = &events[1];
    let minute = |m: f64| Value::from(rfc3339_ms::format(&rig.at(m)));
    assert_eq!(resolved["outage_start"], minute(2.0), "{resolved}");
    assert_eq!(resolved["outage_end"], minute(5.0), "{resolved}");
    assert_eq!(resolved["duration_s"], 180.0, "{resolved}");
    assert_eq!(resolved["since"], minute(5.0), "{resolved}");
    assert!(
        resolved["summary"]
            .as_str()
            .unwrap()
            .contains("up again after 3m down"),
        "{resolved}"
    );
    let json: Value = serde_json::from_str(&report(6.5, "json").await).unwrap();
    let api = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "api")
        .unwrap();
    assert_eq!(
        (&api["state"], &api["since"]),
        (&Value::from("up"), &minute(5.0))
    );
    assert_eq!(api["incidents"][0]["duration_s"], 180.0, "{api}");
}

/// A prober that lost its own network (its run records say none of its
/// checks was answered): neither report nor alert counts its checks; alert
/// says so once, for the location.
#[tokio::test(flavor = "multi_thread")]
async fn a_blind_prober_counts_for_neither_report_nor_alert() {
    let rig = Rig::new("agreement-blind", "").await;
    let mut records = Vec::new();
    for minute in 0..30 {
        let m = f64::from(minute);
        for location in ["eu", "us"] {
            let blind = location == "eu" && minute >= 20;
            let run_id = uuid::Uuid::now_v7();
            for site in ["x", "y"] {
                let mut c = rig.check(site, location, m, !blind);
                c.run_id = Some(run_id);
                records.push(crate::drain::record(&c));
            }
            let run = sitewatch::message::RunRecord {
                schema: sitewatch::message::SCHEMA,
                record: sitewatch::message::RunRecord::RECORD.to_owned(),
                run_id,
                job: "probe-once".into(),
                location: location.into(),
                shard: None,
                tick_s: 60.0,
                started_at: rig.at(m),
                finished_at: rig.at(m) + time::Duration::seconds(1),
                sites_due: 2,
                checked: 2,
                published: 2,
                answered: Some(if blind { 0 } else { 2 }),
                outcome: "ok".into(),
            };
            records.push((Some(format!("run/{location}")), Some(run.to_json())));
        }
    }
    crate::support::kafka::publish(&rig.topic, &records).await;
    rig.store(&[]).await;
    let run = rig.alert(30.0).await;
    assert_eq!(rig.kinds(), ["prober_down"], "{}", run.stdout);
    assert_eq!(rig.events()[0]["location"], "eu");

    let at = rfc3339_ms::format(&rig.at(30.0));
    let report = sitewatch(
        rig.path(),
        &["report", "--format", "json", "--at", &at],
        &rig.env(),
    )
    .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let json: Value = serde_json::from_str(&report.stdout).unwrap();
    let client = db::connect(&rig.url).await;
    for site in ["x", "y"] {
        let shown = json
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["site"] == site)
            .unwrap();
        assert_eq!(shown["state"], "up", "{json}");
        assert_eq!(shown["incidents"], serde_json::json!([]), "{json}");
        let state: String = client
            .query_one("SELECT state FROM alert_sites WHERE site = $1", &[&site])
            .await
            .unwrap()
            .get(0);
        assert_eq!(state, "up", "alert, {site}");
    }
}
