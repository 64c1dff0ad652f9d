//! Job discipline for schedulers: deadlines, SIGTERM, interval ticks,
//! shards and the Markdown summary, with the real binary, broker and
//! database.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::http::Server;
use crate::support::kafka::{self, committed, publish, read_all, unique_topic};
use crate::support::{assert_ended_by, create_topic, db, sitewatch};

/// `n` sites on `server`: names `s0..`, each at `path`.
fn sites_json(server: &Server, n: usize, path: &str, extra: &str) -> String {
    let sites: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"name":"s{i}","url":"{}"{extra}}}"#, server.url(path)))
        .collect();
    format!("[{}]", sites.join(","))
}

fn names(run: &crate::support::Exited) -> BTreeSet<String> {
    run.json_lines()
        .iter()
        .map(|v| v["site"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends SIGTERM to a running child.
fn terminate(child: &tokio::process::Child) {
    let pid = child.id().expect("the child is running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn spawn(dir: &Path, args: &[&str], env: &[(&str, String)]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_once_stops_starting_checks_at_the_deadline_and_publishes_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"quick","url":"{}"}},{{"name":"h1","url":"{1}","timeout":"60s"}},{{"name":"h2","url":"{1}","timeout":"60s"}}]"#,
        web.url("/ok"),
        web.url("/hang")
    );
    let topic = unique_topic("deadline");
    create_topic(dir.path(), &topic, 1).await;
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--deadline", "2s"],
        &[
            ("SITEWATCH_SITES", sites),
            ("SITEWATCH_KAFKA_BROKERS", kafka::brokers()),
            ("SITEWATCH_KAFKA_TOPIC", topic.clone()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "a deadline is a clean stop: {}", run.stderr);
    assert!(
        run.stderr
            .contains("probe-once: 1 sites checked, 1 up, 0 down, 1 published in ")
            && run
                .stderr
                .contains("stopped by the deadline with 2 due sites not checked"),
        "{}",
        run.stderr
    );
    // The point is that 60 s checks did not hold the job.
    assert_ended_by(&run, Duration::from_secs(2), Duration::from_secs(60));
    let records = read_all(&topic);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, "quick");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_probe_once_publishes_what_is_done_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"quick","url":"{}"}},{{"name":"h1","url":"{1}","timeout":"60s"}},{{"name":"h2","url":"{1}","timeout":"60s"}}]"#,
        web.url("/ok"),
        web.url("/hang")
    );
    let topic = unique_topic("sigterm-probe");
    create_topic(dir.path(), &topic, 1).await;
    let child = spawn(
        dir.path(),
        &["probe-once"],
        &[
            ("SITEWATCH_SITES", sites),
            ("SITEWATCH_KAFKA_BROKERS", kafka::brokers()),
            ("SITEWATCH_KAFKA_TOPIC", topic.clone()),
        ],
    )
    .await;
    let start = Instant::now();
    while web.hits() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the checks never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    terminate(&child);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("probe-once did not stop on SIGTERM")
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "a cut-short run is no success: {stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l == "error: stopped by SIGTERM: 2 of 3 due sites were not checked"),
        "{stderr}"
    );
    assert!(stderr.contains("1 published"), "{stderr}");
    let records = read_all(&topic);
    assert_eq!(records.len(), 1, "what was checked is published");
    assert_eq!(records[0].key, "quick");
}

/// Per partition: next offset in PostgreSQL, rows stored from it, and the
/// offset committed in Kafka; a stop must leave all three equal.
async fn assert_offsets_match_rows(url: &str, topic: &str, partitions: i32) -> i64 {
    let client = db::connect(url).await;
    let kafka_offsets = committed(topic, &format!("{topic}-drain"), partitions);
    let mut total = 0;
    for p in 0..partitions {
        let rows: i64 = client
            .query_one(
                "SELECT count(*) FROM checks WHERE kafka_partition = $1",
                &[&p],
            )
            .await
            .unwrap()
            .get(0);
        let next: Option<i64> = client
            .query_opt(
                "SELECT next_offset FROM drain_offsets WHERE kafka_topic = $1 AND kafka_partition = $2",
                &[&topic, &p],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        assert_eq!(
            next.unwrap_or(0),
            rows,
            "partition {p}: database offset vs rows"
        );
        assert_eq!(
            kafka_offsets[p as usize].unwrap_or(0),
            rows,
            "partition {p}: Kafka offset vs rows"
        );
        total += rows;
    }
    total
}

async fn topic_with_checks(dir: &Path, name: &str, partitions: u32, n: usize) -> String {
    let topic = unique_topic(name);
    create_topic(dir, &topic, partitions).await;
    let records: Vec<_> = (0..n)
        .map(|i| {
            let mut v: serde_json::Value =
                serde_json::from_str(include_str!("sample_check.json")).unwrap();
            v["check_id"] = uuid::Uuid::new_v4().to_string().into();
            v["site"] = format!("site-{}", i % 50).into();
            (
                Some(format!("site-{}", i % 50)),
                Some(serde_json::to_vec(&v).unwrap()),
            )
        })
        .collect();
    publish(&topic, &records).await;
    topic
}

fn drain_env(topic: &str, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SITEWATCH_KAFKA_BROKERS", kafka::brokers()),
        ("SITEWATCH_KAFKA_TOPIC", topic.to_owned()),
        ("SITEWATCH_KAFKA_GROUP", format!("{topic}-drain")),
        ("SITEWATCH_DATABASE_URL", url.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_drain_commits_nothing_unstored() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = topic_with_checks(dir.path(), "sigterm-drain", 3, 20000).await;
    let child = spawn(
        dir.path(),
        &["drain", "--batch-size", "100"],
        &drain_env(&topic, &url),
    )
    .await;
    // Terminate as soon as the first batches are stored: mid-run.
    let client = db::connect(&url).await;
    let start = Instant::now();
    while db::count(&client, "SELECT count(*) FROM drain_offsets").await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the drain stored nothing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    terminate(&child);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("drain did not stop on SIGTERM")
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "a clean stop: {stderr}");
    let stored = assert_offsets_match_rows(&url, &topic, 3).await;
    assert!(stored < 20000, "SIGTERM came after the drain had finished");
    eprintln!("stored before SIGTERM: {stored} of 20000");
    let run = sitewatch(dir.path(), &["drain"], &drain_env(&topic, &url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(assert_offsets_match_rows(&url, &topic, 3).await, 20000);
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_stops_before_its_deadline_and_commits_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    // One record a transaction: far more than a second of work, whatever
    // the broker's speed.
    let topic = topic_with_checks(dir.path(), "drain-deadline", 2, 12000).await;
    let run = sitewatch(
        dir.path(),
        &["drain", "--batch-size", "1", "--deadline", "1s"],
        &drain_env(&topic, &url),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stored = assert_offsets_match_rows(&url, &topic, 2).await;
    assert!(
        stored < 12000,
        "the deadline did not stop the drain ({stored} stored)"
    );
    let run = sitewatch(dir.path(), &["drain"], &drain_env(&topic, &url)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(assert_offsets_match_rows(&url, &topic, 2).await, 12000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_with_an_interval_is_checked_once_in_its_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = sites_json(&web, 20, "/ok", r#","interval":"5m""#);
    let mut seen = Vec::new();
    for minute in 0..10 {
        let at = format!("2026-11-22T12:{minute:02}:05Z");
        let run = sitewatch(
            dir.path(),
            &["probe-once", "--dry-run", "--tick", "1m", "--at", &at],
            &[("SITEWATCH_SITES", sites.clone())],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        seen.push(names(&run));
    }
    for i in 0..20 {
        let site = format!("s{i}");
        let minutes: Vec<usize> = (0..10).filter(|m| seen[*m].contains(&site)).collect();
        assert_eq!(minutes.len(), 2, "{site} checked at minutes {minutes:?}");
        assert_eq!(
            minutes[1] - minutes[0],
            5,
            "{site} checked at minutes {minutes:?}"
        );
    }
    let run = sitewatch(
        dir.path(),
        &[
            "probe-once",
            "--dry-run",
            "--all",
            "--at",
            "2026-11-22T12:00:05Z",
        ],
        &[("SITEWATCH_SITES", sites)],
    )
    .await;
    assert_eq!(names(&run).len(), 20, "--all checks every site");
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_split_the_sites_disjointly_and_completely() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = sites_json(&web, 30, "/ok", "");
    let mut all = BTreeSet::new();
    for index in 0..3 {
        let shard = format!("{index}/3");
        let run = sitewatch(
            dir.path(),
            &["probe-once", "--dry-run", "--shard", &shard],
            &[("SITEWATCH_SITES", sites.clone())],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mine = names(&run);
        assert!(
            !mine.is_empty() && all.is_disjoint(&mine),
            "shard {shard}: {mine:?}"
        );
        all.extend(mine.iter().cloned());
        // An Indexed Job gives the index in JOB_COMPLETION_INDEX.
        let indexed = sitewatch(
            dir.path(),
            &["probe-once", "--dry-run", "--shard", "3"],
            &[
                ("SITEWATCH_SITES", sites.clone()),
                ("JOB_COMPLETION_INDEX", index.to_string()),
            ],
        )
        .await;
        assert_eq!(names(&indexed), mine);
    }
    assert_eq!(all.len(), 30);
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run", "--shard", "3/3"],
        &[("SITEWATCH_SITES", sites)],
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--shard `3/3`: the index must be below the count"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_is_summarised_as_a_markdown_table_for_github() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"home","url":"{}"}},{{"name":"gone","url":"{}"}}]"#,
        web.url("/ok"),
        web.url("/notfound")
    );
    let github = dir.path().join("step-summary.md");
    std::fs::write(&github, "earlier steps\n").unwrap();
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run", "--summary", "table.md"],
        &[
            ("SITEWATCH_SITES", sites),
            ("SITEWATCH_LOCATION", "gha".into()),
            ("GITHUB_STEP_SUMMARY", github.display().to_string()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let table = std::fs::read_to_string(dir.path().join("table.md")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("### sitewatch: 1 of 2 sites up (gha, "),
        "{table}"
    );
    assert_eq!(
        lines[2],
        "| site | up | status | response time | certificate days left | error |"
    );
    assert!(lines[4].starts_with("| gone | ❌ | 404 | "), "{table}");
    assert!(lines[5].starts_with("| home | ✅ | 200 | "), "{table}");
    assert!(lines[5].ends_with(" ms | - |  |"), "{table}");
    let appended = std::fs::read_to_string(&github).unwrap();
    assert_eq!(
        appended,
        format!("earlier steps\n{table}"),
        "appended to $GITHUB_STEP_SUMMARY"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_json_logs_the_final_error_line_is_json_too() {
    let dir = tempfile::tempdir().unwrap();
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[
            ("SITEWATCH_LOG_FORMAT", "json".to_owned()),
            ("SITEWATCH_CONCURRENCY", "0".to_owned()),
        ],
    )
    .await;
    assert_eq!(run.code, 2);
    let last: serde_json::Value =
        serde_json::from_str(run.stderr.lines().last().unwrap()).expect("a JSON line");
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with("error: SITEWATCH_CONCURRENCY `0`"),
        "{last}"
    );
    // A job failure too, once logging is up.
    let closed = crate::support::http::closed_port().await;
    let run = sitewatch(
        dir.path(),
        &["migrate", "--only", "database"],
        &[
            ("SITEWATCH_LOG_FORMAT", "json".to_owned()),
            (
                "SITEWATCH_DATABASE_URL",
                format!("postgres://u@127.0.0.1:{closed}/db?sslmode=disable"),
            ),
        ],
    )
    .await;
    assert_eq!(run.code, 1);
    for line in run.stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every line is JSON");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_ends_the_job_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    // Checks done, deliveries waiting for an absent broker (up to 60 s):
    // the first SIGTERM starts no new check, the second ends the wait.
    let env = vec![
        ("SITEWATCH_SITES", sites_json(&web, 3, "/ok", "")),
        ("SITEWATCH_KAFKA_BROKERS", "127.0.0.1:1".to_owned()),
        ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "60s".to_owned()),
    ];
    let child = spawn(dir.path(), &["probe-once"], &env).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = Instant::now();
    terminate(&child);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the second signal did not end the job")
        .unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("error: a second signal (SIGTERM)"),
        "{stderr}"
    );
}
