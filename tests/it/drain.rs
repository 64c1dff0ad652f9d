//! `drain` against the real broker and the real PostgreSQL, each test with
//! its own topic and its own fresh database.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sitewatch::message::{Check, ErrorKind, SCHEMA};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::support::http::Server;
use crate::support::kafka::{self, committed, publish, read_all, unique_topic};
use crate::support::{Exited, create_topic, db, sitewatch};

/// Settings that point a run at this test's topic and database.
pub(crate) fn env(topic: &str, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SITEWATCH_KAFKA_BROKERS", kafka::brokers()),
        ("SITEWATCH_KAFKA_TOPIC", topic.to_owned()),
        ("SITEWATCH_KAFKA_GROUP", format!("{topic}-drain")),
        ("SITEWATCH_DATABASE_URL", url.to_owned()),
    ]
}

pub(crate) async fn drain(dir: &Path, topic: &str, url: &str, args: &[&str]) -> Exited {
    let mut all = vec!["drain"];
    all.extend_from_slice(args);
    sitewatch(dir, &all, &env(topic, url)).await
}

/// The figures of a drain's summary line.
pub(crate) fn figures(run: &Exited) -> HashMap<&'static str, u64> {
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("drain: "))
        .unwrap_or_else(|| panic!("no summary in {}", run.stderr));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|w| w.parse().ok())
        .collect();
    ["consumed", "stored", "duplicates", "dead_letters"]
        .into_iter()
        .zip(numbers)
        .collect()
}

/// A realistic check, different for each `i`.
pub(crate) fn sample(i: usize) -> Check {
    let up = !i.is_multiple_of(3);
    Check {
        schema: SCHEMA,
        check_id: Uuid::now_v7(),
        site: format!("site-{}", i % 17),
        url: format!("https://site-{}.example/health", i % 17),
        method: "GET".into(),
        location: "test".into(),
        started_at: OffsetDateTime::now_utc(),
        up,
        status_code: up.then_some(200),
        reason: up.then(|| "OK".to_owned()),
        response_time_ms: 10.0 + i as f64,
        dns_ms: Some(1.5),
        connect_ms: Some(0.25),
        tls_ms: up.then_some(3.0),
        ttfb_ms: up.then_some(4.0),
        ip: Some("127.0.0.1".parse().unwrap()),
        regex: None,
        regex_matched: None,
        json_matched: None,
        redirects: None,
        final_url: None,
        degraded: None,
        body_bytes: up.then_some(1234),
        tls_expires_at: None,
        error_kind: (!up).then_some(ErrorKind::Connect),
        error: (!up).then(|| "Connection refused (os error 111)".to_owned()),
        condition: None,
        run_id: None,
        attempts: None,
        dns_rcode: None,
        dns_answers: None,
        packet_loss: None,
        tls_names: None,
        conditions: None,
    }
}

pub(crate) fn record(check: &Check) -> (Option<String>, Option<Vec<u8>>) {
    (Some(check.site.clone()), Some(check.to_json()))
}

/// A topic with `partitions` partitions and `n` sample checks on it.
pub(crate) async fn topic_with(
    dir: &Path,
    name: &str,
    partitions: u32,
    n: usize,
) -> (String, Vec<Check>) {
    let topic = unique_topic(name);
    create_topic(dir, &topic, partitions).await;
    let checks: Vec<Check> = (0..n).map(sample).collect();
    let records: Vec<_> = checks.iter().map(record).collect();
    publish(&topic, &records).await;
    (topic, checks)
}

pub(crate) async fn stored_ids(url: &str) -> BTreeSet<Uuid> {
    let client = db::connect(url).await;
    client
        .query("SELECT check_id FROM checks", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

pub(crate) async fn db_offsets(url: &str, topic: &str) -> Vec<(i32, i64)> {
    let client = db::connect(url).await;
    client
        .query(
            "SELECT kafka_partition, next_offset FROM drain_offsets WHERE kafka_topic = $1 ORDER BY 1",
            &[&topic],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn column_as_json(row: &Row, name: &str) -> Value {
    use tokio_postgres::types::Type;
    let index = row.columns().iter().position(|c| c.name() == name).unwrap();
    let ty = row.columns()[index].type_().clone();
    let fmt = |t: OffsetDateTime| sitewatch::message::rfc3339_ms::format(&t);
    match ty {
        Type::UUID => row.get::<_, Uuid>(index).to_string().into(),
        Type::INT2 => row.get::<_, Option<i16>>(index).into(),
        Type::INT4 => row.get::<_, Option<i32>>(index).into(),
        Type::INT8 => row.get::<_, Option<i64>>(index).into(),
        Type::FLOAT8 => row.get::<_, Option<f64>>(index).into(),
        Type::BOOL => row.get::<_, Option<bool>>(index).into(),
        Type::TEXT => row.get::<_, Option<String>>(index).into(),
        Type::INET => row
            .get::<_, Option<std::net::IpAddr>>(index)
            .map(|ip| ip.to_string())
            .into(),
        Type::TIMESTAMPTZ => row.get::<_, Option<OffsetDateTime>>(index).map(fmt).into(),
        Type::TEXT_ARRAY => row.get::<_, Option<Vec<String>>>(index).into(),
        Type::JSONB => row.get::<_, Option<Value>>(index).unwrap_or(Value::Null),
        other => panic!("column {name} has an unexpected type {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_once_then_drain_stores_each_message_as_one_row_with_equal_columns() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"ok","url":"{}","regex":"hello","degraded_after":"1ns"}},{{"name":"missing","url":"{}","json":{{"$.a":1}}}},
            {{"name":"closed","url":"http://127.0.0.1:{}/"}}]"#,
        web.url("/redirect"),
        web.url("/notfound"),
        crate::support::http::closed_port().await
    );
    let topic = unique_topic("e2e");
    create_topic(dir.path(), &topic, 3).await;
    let url = db::fresh(dir.path()).await;
    let mut probe_env = env(&topic, &url);
    probe_env.push(("SITEWATCH_SITES", sites));
    probe_env.push(("SITEWATCH_LOCATION", "test-e2e".to_owned()));
    for _ in 0..2 {
        let run = sitewatch(dir.path(), &["probe-once"], &probe_env).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], 6, "{}", run.stderr);

    let client = db::connect(&url).await;
    let published = read_all(&topic);
    assert_eq!(published.len(), 6);
    assert_eq!(db::count(&client, "SELECT count(*) FROM checks").await, 6);
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM checks WHERE degraded").await,
        2,
        "the `ok` site's checks, slower than 1ns: `degraded` stored"
    );
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM checks WHERE NOT json_matched"
        )
        .await,
        2,
        "the `missing` site's checks, not JSON: `json_matched` stored"
    );
    assert_eq!(
        db::count(
            &client,
            &format!(
                "SELECT count(*) FROM checks WHERE redirects = 1 AND final_url = '{}'",
                web.url("/ok")
            )
        )
        .await,
        2,
        "the `ok` site's checks, redirected once: `redirects` and `final_url` stored"
    );
    for record in published {
        let id: Uuid = record.value["check_id"].as_str().unwrap().parse().unwrap();
        let row = client
            .query_one("SELECT * FROM checks WHERE check_id = $1", &[&id])
            .await
            .unwrap();
        for (field, expected) in record.value.as_object().unwrap() {
            let stored = column_as_json(&row, field);
            let same = match (expected.as_f64(), stored.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                _ => &stored == expected,
            };
            assert!(same, "{field}: stored {stored}, published {expected}");
        }
        assert_eq!(
            column_as_json(&row, "kafka_topic"),
            Value::from(topic.clone())
        );
        assert_eq!(
            column_as_json(&row, "kafka_partition"),
            Value::from(record.partition)
        );
    }
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM dead_letters").await,
        0
    );
    // The run ledger: each run published one run record, stored once.
    let runs = kafka::read_runs(&topic);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].key, "run/test-e2e");
    assert_eq!(figures(&run)["consumed"], 8);
    let rows = client
        .query(
            "SELECT job, location, sites_due, checked, published, outcome, tick_s,
                    finished_at >= started_at
             FROM runs ORDER BY started_at",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row.get::<_, String>(0), "probe-once");
        assert_eq!(row.get::<_, String>(1), "test-e2e");
        assert_eq!(
            (
                row.get::<_, i32>(2),
                row.get::<_, i32>(3),
                row.get::<_, i32>(4)
            ),
            (3, 3, 3)
        );
        assert_eq!(row.get::<_, String>(5), "ok");
        assert_eq!(row.get::<_, f64>(6), 60.0);
        assert!(row.get::<_, bool>(7));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_message_published_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, checks) = topic_with(dir.path(), "dup", 1, 3).await;
    publish(&topic, &[record(&checks[1])]).await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = figures(&run);
    assert_eq!(
        (f["consumed"], f["stored"], f["duplicates"]),
        (4, 3, 1),
        "{}",
        run.stderr
    );
    let expected: BTreeSet<Uuid> = checks.iter().map(|c| c.check_id).collect();
    assert_eq!(stored_ids(&url).await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_go_to_dead_letters_and_the_rows_around_them_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("poison");
    create_topic(dir.path(), &topic, 1).await;
    let good: Vec<Check> = (0..3).map(sample).collect();
    let mut wrong_schema = serde_json::to_value(&good[0]).unwrap();
    wrong_schema["schema"] = 2.into();
    let mut missing = serde_json::to_value(&good[0]).unwrap();
    missing.as_object_mut().unwrap().remove("started_at");
    let huge = vec![b'x'; 300 * 1024];
    let records = vec![
        record(&good[0]),
        (Some("junk".into()), Some(b"this is not JSON".to_vec())),
        record(&good[1]),
        (None, Some(serde_json::to_vec(&wrong_schema).unwrap())),
        (Some("huge".into()), Some(huge.clone())),
        (None, Some(serde_json::to_vec(&missing).unwrap())),
        (Some("tombstone".into()), None),
        record(&good[2]),
    ];
    publish(&topic, &records).await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = figures(&run);
    assert_eq!(
        (f["consumed"], f["stored"], f["dead_letters"]),
        (8, 3, 5),
        "{}",
        run.stderr
    );
    assert_eq!(
        stored_ids(&url).await,
        good.iter().map(|c| c.check_id).collect()
    );

    let client = db::connect(&url).await;
    let dead = client
        .query(
            "SELECT kafka_topic, kafka_offset, key, payload, reason FROM dead_letters ORDER BY kafka_offset",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(i64, Option<Vec<u8>>, String)> = dead
        .iter()
        .map(|r| {
            assert_eq!(r.get::<_, String>(0), topic);
            (r.get(1), r.get(2), r.get(4))
        })
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!((got[0].0, got[0].1.as_deref()), (1, Some(&b"junk"[..])));
    assert!(got[0].2.starts_with("not JSON: "), "{}", got[0].2);
    assert_eq!(
        (got[1].0, got[1].2.as_str()),
        (3, "unknown schema version 2")
    );
    assert_eq!(got[2].0, 4);
    assert_eq!(
        got[2].2,
        "payload of 307200 bytes is larger than the 65536 bytes a check can be"
    );
    assert_eq!(got[3].0, 5);
    assert!(
        got[3]
            .2
            .starts_with("not a check: missing field `started_at`"),
        "{}",
        got[3].2
    );
    assert_eq!((got[4].0, got[4].2.as_str()), (6, "empty payload"));
    let payload: Vec<u8> = dead[2].get(3);
    assert_eq!(payload, huge, "the raw payload is kept");
    assert_eq!(db_offsets(&url, &topic).await, vec![(0, 8)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_failure_mid_run_commits_no_offset_past_the_stored_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("dbfail");
    create_topic(dir.path(), &topic, 1).await;
    let mut checks: Vec<Check> = (0..50).map(sample).collect();
    checks[25].site = "sabotage".into();
    publish(&topic, &checks.iter().map(record).collect::<Vec<_>>()).await;

    // Sabotage the real table: the batch holding offset 25 cannot commit.
    let client = db::connect(&url).await;
    client
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.site = 'sabotage' THEN RAISE EXCEPTION 'sabotaged by the test'; END IF;
             RETURN NEW; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON checks FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .unwrap();
    let run = drain(dir.path(), &topic, &url, &["--batch-size", "10"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l
            .starts_with("error: a batch was not stored; no offset was committed for it: ")
            && l.contains("sabotaged by the test")),
        "{}",
        run.stderr
    );
    let group = format!("{topic}-drain");
    assert_eq!(db::count(&client, "SELECT count(*) FROM checks").await, 20);
    assert_eq!(db_offsets(&url, &topic).await, vec![(0, 20)]);
    assert_eq!(
        committed(&topic, &group, 1),
        vec![Some(20)],
        "Kafka has no offset past the rows"
    );

    client
        .batch_execute("DROP TRIGGER refuse ON checks")
        .await
        .unwrap();
    let run = drain(dir.path(), &topic, &url, &["--batch-size", "10"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = figures(&run);
    assert_eq!(
        (f["consumed"], f["stored"], f["duplicates"]),
        (30, 30, 0),
        "{}",
        run.stderr
    );
    assert_eq!(
        stored_ids(&url).await,
        checks.iter().map(|c| c.check_id).collect()
    );
    assert_eq!(db_offsets(&url, &topic).await, vec![(0, 50)]);
    assert_eq!(committed(&topic, &group, 1), vec![Some(50)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_killed_at_random_points_then_rerun_stores_exactly_the_published_set() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, checks) = topic_with(dir.path(), "kill", 3, 3000).await;
    let seed = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    eprintln!("kill points seeded with {seed}");
    let mut state = seed | 1;
    let mut kills = 0;
    let mut trail = Vec::new();
    for _ in 0..6 {
        // xorshift: a different kill point each round, reproducible from the seed.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(30 + state % 400);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
            .args(["drain", "--batch-size", "100"])
            .current_dir(dir.path())
            .env_clear()
            .envs(env(&topic, &url))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().await.unwrap();
        let progress: i64 = db_offsets(&url, &topic).await.iter().map(|(_, o)| o).sum();
        trail.push((delay.as_millis(), progress));
    }
    eprintln!("(kill after ms, offsets stored): {trail:?}");
    let run = drain(dir.path(), &topic, &url, &["--batch-size", "100"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(kills > 0, "no drain was killed mid-run");
    let stored = stored_ids(&url).await;
    assert_eq!(stored.len(), 3000);
    assert_eq!(stored, checks.iter().map(|c| c.check_id).collect());
    let offsets = db_offsets(&url, &topic).await;
    assert_eq!(
        offsets.iter().map(|(_, o)| o).sum::<i64>(),
        3000,
        "{offsets:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_drains_at_once_store_each_message_once_without_redoing_work() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, checks) = topic_with(dir.path(), "twice", 4, 2000).await;
    let (a, b) = tokio::join!(
        drain(dir.path(), &topic, &url, &["--batch-size", "200"]),
        drain(dir.path(), &topic, &url, &["--batch-size", "200"])
    );
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.stderr, b.stderr);
    let (fa, fb) = (figures(&a), figures(&b));
    assert_eq!(
        fa["stored"] + fb["stored"],
        2000,
        "{}\n{}",
        a.stderr,
        b.stderr
    );
    assert_eq!(
        fa["duplicates"] + fb["duplicates"],
        0,
        "no message was consumed by both"
    );
    assert_eq!(fa["consumed"] + fb["consumed"], 2000);
    assert_eq!(
        stored_ids(&url).await,
        checks.iter().map(|c| c.check_id).collect()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_messages_leaves_the_rest_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, checks) = topic_with(dir.path(), "max", 1, 30).await;
    let run = drain(dir.path(), &topic, &url, &["--max-messages", "10"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["stored"], 10);
    assert_eq!(db_offsets(&url, &topic).await, vec![(0, 10)]);
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(figures(&run)["stored"], 20, "{}", run.stderr);
    assert_eq!(
        stored_ids(&url).await,
        checks.iter().map(|c| c.check_id).collect()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_with_nothing_pending_exits_0_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("empty");
    create_topic(dir.path(), &topic, 6).await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(figures(&run)["consumed"], 0);
    assert!(run.stderr.contains("(6 of 6 partitions)"), "{}", run.stderr);
    // A generous bound: an idle drain must not wait for a rebalance or a timeout.
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_exits_1_with_a_clear_message_when_the_database_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique_topic("nodb");
    create_topic(dir.path(), &topic, 1).await;
    let port = crate::support::http::closed_port().await;
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/sitewatch?sslmode=disable");
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: cannot connect to PostgreSQL at 127.0.0.1:{port}/sitewatch: "
        )),
        "{last}"
    );
    assert!(
        !run.stderr.contains("hunter2"),
        "the password leaked: {}",
        run.stderr
    );
}
