//! What the monitored data, a message on the topic or a receiver can do to
//! the jobs (issue 21), against the real broker and PostgreSQL: nothing
//! they contain silences alerting, loses a delivery or injects into an
//! output.

use serde_json::Value;
use sitewatch::message::rfc3339_ms;
use time::OffsetDateTime;

use crate::alert::Rig;
use crate::drain::{figures, record};
use crate::support::kafka::publish;
use crate::support::receiver::Receiver;
use crate::support::{certs, db, http, sitewatch};

/// Three failed checks of each site, a minute apart, stored.
async fn fail_three_times(rig: &Rig, sites: &[&str]) {
    let mut checks = Vec::new();
    for minute in 0..3 {
        for site in sites {
            checks.push(rig.check(site, "eu", f64::from(minute), false));
        }
    }
    rig.store(&checks).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notifier_that_redirects_gets_no_event_and_the_next_run_delivers_it_once() {
    let rig = Rig::new("trust-redirect", "").await;
    let elsewhere = Receiver::start().await;
    fail_three_times(&rig, &["api"]).await;
    for (i, status) in [301, 302, 303, 307, 308].into_iter().enumerate() {
        rig.hook.redirect(status, &elsewhere.url("/stolen"));
        let run = rig.alert_with(3.5 + i as f64 * 0.1, &[]).await;
        assert_eq!(run.code, 1, "{status}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("answered {status}"))
                && run
                    .stderr
                    .contains(&format!("redirect to {}", elsewhere.url("/stolen"))),
            "{status}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("/hook"),
            "the notifier's URL is a secret: {}",
            run.stderr
        );
    }
    let run = rig.alert(4.0).await;
    assert!(run.stderr.contains("1 delivered"), "{}", run.stderr);
    let got = rig.hook.received();
    assert_eq!(got.len(), 6, "five refused, one delivered");
    let ids: std::collections::BTreeSet<&str> = got
        .iter()
        .map(|r| {
            r.body["event_id"]
                .as_str()
                .expect("every attempt carried the event")
        })
        .collect();
    assert_eq!(ids.len(), 1, "the same event each time");
    assert_eq!(rig.kinds(), ["down"; 6]);
    assert!(
        got.iter()
            .all(|r| r.headers.iter().all(|(k, _)| k != "referer")),
        "no Referer"
    );
    assert!(
        elsewhere.received().is_empty(),
        "nothing followed the redirect"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_without_a_notifier_exits_2_and_consumes_nothing_unless_record_only() {
    let rig = Rig::new("trust-no-notifier", "").await;
    fail_three_times(&rig, &["api"]).await;
    std::fs::write(
        rig.path().join("bare.toml"),
        "[alerts]\nfailure_threshold = 3\n",
    )
    .unwrap();
    let mut env = rig.env();
    env.push(("SITEWATCH_SITES_FILE", "bare.toml".to_owned()));
    let at = rfc3339_ms::format(&rig.at(3.5));
    let run = sitewatch(rig.path(), &["alert", "--at", &at], &env).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no [[notifier]] is declared") && run.stderr.contains("--record-only"),
        "{}",
        run.stderr
    );
    let client = db::connect(&rig.url).await;
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM alert_events").await,
        0
    );
    // The file that declares the notifier: the outage is announced.
    rig.alert(3.6).await;
    assert_eq!(rig.kinds(), ["down"]);
    // --record-only records without sending (and exits 0).
    rig.store(&[
        rig.check("api", "eu", 4.0, true),
        rig.check("api", "eu", 5.0, true),
    ])
    .await;
    let at = rfc3339_ms::format(&rig.at(5.5));
    let run = sitewatch(rig.path(), &["alert", "--record-only", "--at", &at], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("resolved: api is up again"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_and_errors_reach_slack_markdown_and_the_terminal_escaped() {
    let rig = Rig::new(
        "trust-hostile",
        "[alerts]\nnotify = [\"chat\"]\nfailure_threshold = 1\n\n[[notifier]]\nname = \"chat\"\nkind = \"slack\"\n",
    )
    .await;
    let chat = [("SITEWATCH_NOTIFIER_CHAT_URL", rig.hook.url("/slack"))];
    let sites = [
        "<!channel>",
        "term\u{1b}]0;owned\u{7}\u{1b}[2J",
        "md|x\n<img src=x onerror=alert(1)>[click](http://evil)",
    ];
    let mut checks = Vec::new();
    for site in sites {
        // Answered (a 503), so the prober is not taken to be offline.
        let mut c = rig.answered_down(site, "eu\u{1b}[31m", 0.0);
        c.error_kind = Some(sitewatch::message::ErrorKind::Redirect);
        c.error = Some("redirect to <http://evil|click here> \u{1b}[2K<!here>\nnext".into());
        checks.push(c);
    }
    rig.store(&checks).await;
    let run = rig.alert_with(0.5, &chat).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{7}'),
        "{:?}",
        run.stdout
    );
    assert_eq!(
        run.stdout.lines().count(),
        3,
        "one line an event: {:?}",
        run.stdout
    );
    let texts: Vec<String> = rig
        .hook
        .received()
        .iter()
        .map(|r| r.body["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), 3);
    for text in &texts {
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
    assert!(
        texts.iter().any(|t| t.contains("&lt;!channel&gt;")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("&lt;http://evil|click here&gt;")),
        "{texts:?}"
    );

    let at = rfc3339_ms::format(&rig.at(1.0));
    let env = rig.env();
    let table = sitewatch(rig.path(), &["report", "--at", &at], &env).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        !table.stdout.contains('\u{1b}') && !table.stdout.contains('\u{7}'),
        "{:?}",
        table.stdout
    );
    let md = sitewatch(
        rig.path(),
        &["report", "--format", "markdown", "--at", &at],
        &env,
    )
    .await;
    assert_eq!(md.code, 0, "{}", md.stderr);
    assert!(
        !md.stdout.contains("<img") && !md.stdout.contains("[click]"),
        "{}",
        md.stdout
    );
    let rows: Vec<&str> = md.stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        rows.len(),
        1 + 3,
        "a header and one row a site: {}",
        md.stdout
    );
    let columns = rows[0].matches(" | ").count();
    for row in &rows {
        assert_eq!(row.matches(" | ").count(), columns, "{row}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn badges_never_collide_stay_well_formed_and_follow_no_planted_link() {
    let rig = Rig::new("trust-badges", "").await;
    let long = "x".repeat(300);
    let sites = [
        "Главная",
        "Новости",
        "API",
        "api",
        "api/v1",
        "api_v1",
        long.as_str(),
        "ctl\u{1}name",
    ];
    let checks: Vec<_> = sites
        .iter()
        .map(|s| rig.check(s, "eu", 0.0, true))
        .collect();
    rig.store(&checks).await;
    let out = rig.path().join("out");
    std::fs::create_dir_all(out.join("badges")).unwrap();
    std::fs::write(out.join("badges/gone.svg"), "<svg/>").unwrap();
    let precious = rig.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    std::os::unix::fs::symlink(&precious, out.join(".status.json.tmp")).unwrap();
    let at = rfc3339_ms::format(&rig.at(1.0));
    let run = sitewatch(
        rig.path(),
        &["report", "--format", "html", "--output", "out", "--at", &at],
        &rig.env(),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    let mut badges: Vec<String> = std::fs::read_dir(out.join("badges"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    badges.sort();
    assert_eq!(
        badges.len(),
        sites.len(),
        "one each, the old one gone: {badges:?}"
    );
    let lower: std::collections::BTreeSet<String> =
        badges.iter().map(|b| b.to_lowercase()).collect();
    assert_eq!(
        lower.len(),
        sites.len(),
        "distinct on a case-insensitive disk too"
    );
    for b in &badges {
        assert!(b.len() <= 70, "{b}");
        let svg = std::fs::read_to_string(out.join("badges").join(b)).unwrap();
        assert!(
            !svg.chars().any(|c| (c as u32) < 0x20 && c != '\n'),
            "{b} is not well-formed XML: {svg:?}"
        );
    }
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    for b in &badges {
        let id = format!("id=\"site-{}\"", b.trim_end_matches(".svg"));
        assert_eq!(page.matches(&id).count(), 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn implausible_records_are_dead_lettered_and_alert_and_report_carry_on() {
    let rig = Rig::new("trust-implausible", "").await;
    let mut records = Vec::new();
    // 990 up checks dated next year, one dated 9999, one from 1990, one
    // with a certificate of year 0: none may count.
    for i in 0..990 {
        records.push(record(&rig.check(
            "api",
            "eu",
            60.0 * 24.0 * 400.0 + f64::from(i),
            true,
        )));
    }
    let mut far = rig.check("api", "eu", 0.0, true);
    far.started_at = time::macros::datetime!(9999-12-31 23:00 UTC);
    records.push(record(&far));
    let mut old = rig.check("api", "eu", 0.0, true);
    old.started_at = time::macros::datetime!(1990-01-01 00:00 UTC);
    records.push(record(&old));
    let mut year0 = rig.check("other", "eu", 0.0, false);
    year0.tls_expires_at = Some(time::macros::datetime!(0000-01-01 00:00 UTC));
    records.push(record(&year0));
    let run_record = serde_json::json!({
        "schema": 1, "record": "run", "run_id": uuid::Uuid::now_v7(), "job": "probe-once",
        "location": "eu", "shard": null, "tick_s": 1e19,
        "started_at": rfc3339_ms::format(&rig.at(0.0)),
        "finished_at": rfc3339_ms::format(&rig.at(0.1)),
        "sites_due": 1, "checked": 1, "published": 1, "outcome": "ok"
    });
    records.push((
        Some("run/eu".into()),
        Some(run_record.to_string().into_bytes()),
    ));
    publish(&rig.topic, &records).await;
    // Then the truth: api fails now.
    fail_three_times(&rig, &["api"]).await;
    let client = db::connect(&rig.url).await;
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM dead_letters").await,
        994,
        "every implausible record dead-lettered"
    );
    for (pattern, expected) in [
        ("started_at % is in the future%", 991),
        ("started_at 1990% is older than drain accepts%", 1),
        ("tls_expires_at 0000-01-01% is outside 1970-9999", 1),
        ("a run record's tick_s % is longer than a year", 1),
    ] {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM dead_letters WHERE reason LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, expected, "{pattern}");
    }
    let partitions = db::count(
        &client,
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'checks'::regclass",
    )
    .await;
    assert!(partitions <= 10, "{partitions} partitions");

    let run = rig.alert(3.5).await;
    assert_eq!(rig.kinds(), ["down"], "{}", run.stdout);
    let at = rfc3339_ms::format(&rig.at(3.5));
    let report = sitewatch(
        rig.path(),
        &["report", "--format", "json", "--at", &at, "--site", "api"],
        &rig.env(),
    )
    .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let json: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(json[0]["state"], "down", "{json}");
    assert_eq!(json[0]["checks"], 3, "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_over_five_thousand_days_leave_drain_report_and_prune_working() {
    let rig = Rig::new("trust-days", "").await;
    let now = OffsetDateTime::now_utc();
    let records: Vec<_> = (0..5000)
        .map(|day| {
            let mut c = rig.check("daily", "eu", 0.0, day % 7 != 0);
            c.started_at = now - time::Duration::days(day) - time::Duration::minutes(5);
            record(&c)
        })
        .collect();
    publish(&rig.topic, &records).await;
    let client = db::connect(&rig.url).await;
    let partitions_sql = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'checks'::regclass";
    let before = db::count(&client, partitions_sql).await;
    let run = sitewatch(rig.path(), &["drain"], &rig.env()).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = figures(&run);
    assert_eq!(f["consumed"], 5000);
    assert_eq!(f["stored"] + f["dead_letters"], 5000);
    assert!((399..=402).contains(&f["stored"]), "{f:?}");
    let partitions = db::count(&client, partitions_sql).await;
    assert!(
        partitions <= before + 402,
        "{partitions} partitions ({before} before)"
    );
    let report = sitewatch(rig.path(), &["report", "--format", "json"], &rig.env()).await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let prune = sitewatch(rig.path(), &["prune", "--keep", "30d"], &rig.env()).await;
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    let left = db::count(&client, partitions_sql).await;
    assert!(left <= 33, "{left} partitions after prune");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_presenting_a_year_zero_certificate_silences_no_one() {
    let rig = Rig::new(
        "trust-year0",
        "[alerts]\nnotify = [\"hook\"]\nfailure_threshold = 1\n",
    )
    .await;
    let leaf = certs::self_signed(time::macros::datetime!(0000-01-01 00:00 UTC));
    let server = http::Server::start_tls(leaf.server_config()).await;
    let closed = http::closed_port().await;
    // A site that answers, so the prober is not taken to have lost its
    // network.
    let fine = http::Server::start().await;
    let sites = std::fs::read_to_string(rig.path().join("sites.toml")).unwrap();
    std::fs::write(
        rig.path().join("sites.toml"),
        format!(
            "{sites}\n[[site]]\nname = \"ancient\"\nurl = \"{}\"\n\n[[site]]\nname = \"other\"\nurl = \"http://127.0.0.1:{closed}/\"\n\n[[site]]\nname = \"fine\"\nurl = \"{}\"\n",
            server.url("/"),
            fine.url("/ok")
        ),
    )
    .unwrap();
    let mut env = rig.env();
    env.push(("SITEWATCH_LOCATION", "eu".to_owned()));
    let probe = sitewatch(rig.path(), &["probe-once", "--all"], &env).await;
    assert_eq!(probe.code, 0, "{}", probe.stderr);
    let drain = sitewatch(rig.path(), &["drain"], &env).await;
    assert_eq!(drain.code, 0, "{}", drain.stderr);
    assert_eq!(figures(&drain)["stored"], 3, "{}", drain.stderr);
    let client = db::connect(&rig.url).await;
    let row = client
        .query_one(
            "SELECT error_kind, tls_expires_at IS NULL FROM checks WHERE site = 'ancient'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("tls"));
    assert!(row.get::<_, bool>(1), "a year-0 expiry is no expiry");
    let run = sitewatch(rig.path(), &["alert"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut down: Vec<String> = rig
        .events()
        .iter()
        .filter(|e| e["kind"] == "down")
        .map(|e| e["site"].as_str().unwrap().to_owned())
        .collect();
    down.sort();
    assert_eq!(down, ["ancient", "other"]);
    // And the next run works too.
    let again = sitewatch(rig.path(), &["alert"], &env).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_whose_state_cannot_be_stored_stops_only_itself() {
    let rig = Rig::new(
        "trust-isolation",
        "[alerts]\nnotify = [\"hook\"]\nfailure_threshold = 1\n",
    )
    .await;
    let client = db::connect(&rig.url).await;
    // Sabotage: the database refuses one site's state.
    client
        .batch_execute("ALTER TABLE alert_sites ADD CONSTRAINT sabotage CHECK (site <> 'evil')")
        .await
        .unwrap();
    // Answered (503s), so the prober is not taken to be offline.
    rig.store(&[
        rig.answered_down("evil", "eu", 0.0),
        rig.answered_down("good", "eu", 0.0),
    ])
    .await;
    let run = rig.alert_with(0.5, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("site `evil`: cannot write alert_sites"),
        "{}",
        run.stderr
    );
    let sites: Vec<String> = rig
        .events()
        .iter()
        .map(|e| e["site"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sites, ["good"], "the others are delivered");
    client
        .batch_execute("ALTER TABLE alert_sites DROP CONSTRAINT sabotage")
        .await
        .unwrap();
    rig.alert(1.0).await;
    let sites: Vec<String> = rig
        .events()
        .iter()
        .map(|e| e["site"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sites,
        ["good", "evil"],
        "the held event comes with the next run"
    );
}

#[tokio::test]
async fn an_absurd_tick_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sites.toml"),
        "[[site]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/\"\n",
    )
    .unwrap();
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run", "--tick", "300000000000y"],
        &[],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--tick"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing checked: {}", run.stdout);
}
