//! Nothing stalls, nothing hangs: bad records, frozen drains, locked
//! tables, silent databases and missing pieces, against the real broker and
//! PostgreSQL, each test with its own topic and database.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sitewatch::message::Check;
use tokio::net::TcpListener;

use crate::drain::{db_offsets, drain, env, figures, record, sample, stored_ids, topic_with};
use crate::support::kafka::{self, committed, publish, unique_topic};
use crate::support::{assert_ended_by, create_topic, db, sitewatch};

/// Sends `signal` (`-STOP`, `-CONT`, ...) to a running child.
fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("the child is running").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

fn spawn_drain(dir: &Path, topic: &str, url: &str, args: &[&str]) -> tokio::process::Child {
    spawn_drain_with(dir, &env(topic, url), args)
}

/// `sitewatch drain ARGS` in the background with exactly `env`.
fn spawn_drain_with(dir: &Path, env: &[(&str, String)], args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .arg("drain")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits until a running drain has stored something of `total`, failing
/// if it finished first (the test would prove nothing, and its stderr says
/// why) or stalls.
async fn wait_for_progress(child: &mut tokio::process::Child, url: &str, topic: &str, total: i64) {
    let waiting = Instant::now();
    loop {
        let progress: i64 = db_offsets(url, topic).await.iter().map(|o| o.1).sum();
        if progress > 0 {
            assert!(progress < total, "the drain finished before the fault");
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = pipe.read_to_string(&mut stderr).await;
            }
            panic!("the drain ended ({status}) before storing anything: {stderr}");
        }
        assert!(waiting.elapsed() < Duration::from_secs(90), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One more drain completes the work: every check stored once, and the
/// offsets at the end of the topic.
async fn assert_a_rerun_completes(dir: &Path, topic: &str, url: &str, checks: &[Check]) {
    let run = drain(dir, topic, url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        stored_ids(url).await,
        checks.iter().map(|c| c.check_id).collect()
    );
    let total: i64 = db_offsets(url, topic).await.iter().map(|o| o.1).sum();
    assert_eq!(total, checks.len() as i64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_record_sends_it_to_dead_letters_and_the_rest_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("nul");
    create_topic(dir.path(), &topic, 1).await;
    let good: Vec<Check> = (0..4).map(sample).collect();
    let mut nul_site = good[0].clone();
    nul_site.check_id = uuid::Uuid::now_v7();
    nul_site.site = "bad\u{0}site".into();
    let mut nul_error = good[0].clone();
    nul_error.check_id = uuid::Uuid::now_v7();
    nul_error.error = Some("zero \u{0} byte".into());
    let records = vec![
        record(&good[0]),
        record(&nul_site),
        record(&good[1]),
        record(&nul_error),
        record(&good[2]),
        record(&good[3]),
    ];
    publish(&topic, &records).await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = figures(&run);
    assert_eq!((f["stored"], f["dead_letters"]), (4, 2), "{}", run.stderr);
    assert_eq!(
        stored_ids(&url).await,
        good.iter().map(|c| c.check_id).collect()
    );
    let client = db::connect(&url).await;
    let reasons: Vec<(i64, String)> = client
        .query(
            "SELECT kafka_offset, reason FROM dead_letters ORDER BY kafka_offset",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                1,
                "site contains a NUL character, which PostgreSQL cannot store".to_owned()
            ),
            (
                3,
                "error contains a NUL character, which PostgreSQL cannot store".to_owned()
            ),
        ]
    );
    assert_eq!(db_offsets(&url, &topic).await, vec![(0, 6)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_postgres_refuses_for_a_reason_nobody_foresaw_is_isolated_as_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("isolate");
    create_topic(dir.path(), &topic, 1).await;
    let mut checks: Vec<Check> = (0..40).map(sample).collect();
    for i in [7, 8, 29] {
        checks[i].site = "refused".into();
    }
    publish(&topic, &checks.iter().map(record).collect::<Vec<_>>()).await;
    // A rule of the user's own that sitewatch knows nothing about: the rows
    // it refuses fail with SQLSTATE 23514 (a data error), not a failure.
    let client = db::connect(&url).await;
    client
        .batch_execute("ALTER TABLE checks ADD CONSTRAINT no_refused CHECK (site <> 'refused')")
        .await
        .unwrap();
    let run = drain(dir.path(), &topic, &url, &["--batch-size", "16"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = figures(&run);
    assert_eq!(
        (f["consumed"], f["stored"], f["dead_letters"]),
        (40, 37, 3),
        "{}",
        run.stderr
    );
    let expected = checks
        .iter()
        .filter(|c| c.site != "refused")
        .map(|c| c.check_id)
        .collect();
    assert_eq!(stored_ids(&url).await, expected);
    let dead: Vec<(i64, String, Vec<u8>)> = client
        .query(
            "SELECT kafka_offset, reason, payload FROM dead_letters ORDER BY kafka_offset",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(dead.iter().map(|d| d.0).collect::<Vec<_>>(), vec![7, 8, 29]);
    for (offset, reason, payload) in &dead {
        assert!(
            reason.starts_with("PostgreSQL refused it: ") && reason.ends_with("(SQLSTATE 23514)"),
            "{reason}"
        );
        assert!(reason.contains("no_refused"), "{reason}");
        let kept: Check = serde_json::from_slice(payload).unwrap();
        assert_eq!(kept.check_id, checks[*offset as usize].check_id);
    }
    assert_eq!(db_offsets(&url, &topic).await, vec![(0, 40)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_drain_loses_its_partitions_to_another_within_the_claim_timeout() {
    const CLAIM: &str = "3s";
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, checks) = topic_with(dir.path(), "frozen", 2, 3000).await;
    // One record a transaction: slow enough to be caught mid-run whatever
    // the broker's speed.
    let mut frozen = spawn_drain(
        dir.path(),
        &topic,
        &url,
        &["--batch-size", "1", "--claim-timeout", CLAIM],
    );
    let pid = frozen.id().unwrap();
    let waiting = Instant::now();
    loop {
        let progress: i64 = db_offsets(&url, &topic).await.iter().map(|o| o.1).sum();
        if progress > 0 {
            assert!(progress < 3000, "the first drain finished before it froze");
            break;
        }
        assert!(
            frozen.try_wait().unwrap().is_none(),
            "the first drain ended"
        );
        assert!(waiting.elapsed() < Duration::from_secs(30), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&frozen, "-STOP");
    let frozen_at = Instant::now();

    let mut named = false;
    let took_over = loop {
        let run = drain(dir.path(), &topic, &url, &["--claim-timeout", CLAIM]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        if figures(&run)["consumed"] > 0 {
            break frozen_at.elapsed();
        }
        // While the claims hold, the run says whose they are.
        named |=
            run.stderr.contains(&format!("pid {pid}")) && run.stderr.contains("sitewatch drain");
        assert!(
            frozen_at.elapsed() < Duration::from_secs(30),
            "no drain took over: {}",
            run.stderr
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("a frozen drain held its partitions for {took_over:?} (claim timeout {CLAIM})");
    assert!(named, "no run named the frozen drain as the claimant");
    assert!(
        took_over <= Duration::from_secs(3 + 5),
        "took {took_over:?}"
    );

    // Resumed, the frozen drain finds its sessions ended and stores nothing.
    signal(&frozen, "-CONT");
    let status = tokio::time::timeout(Duration::from_secs(60), frozen.wait())
        .await
        .expect("the resumed drain did not end")
        .unwrap();
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    frozen
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_a_rerun_completes(dir.path(), &topic, &url, &checks).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_checks_table_ends_drain_by_its_deadline_with_exit_1_and_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, checks) = topic_with(dir.path(), "locked", 1, 100).await;
    let locker = db::connect(&url).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE checks IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let run = drain(dir.path(), &topic, &url, &["--deadline", "5s"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Without the deadline, the lock wait would last the claim timeout (60 s).
    assert_ended_by(&run, Duration::from_secs(5), Duration::from_secs(60));
    let observer = db::connect(&url).await;
    assert_eq!(
        db::count(&observer, "SELECT count(*) FROM drain_offsets").await,
        0
    );
    assert_eq!(committed(&topic, &format!("{topic}-drain"), 1), vec![None]);
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_a_rerun_completes(dir.path(), &topic, &url, &checks).await;
}

/// A TCP endpoint that accepts connections and never says a word, as a
/// database host behind a broken load balancer does.
async fn silent_endpoint() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_never_answers_ends_drain_by_its_deadline_and_migrate_by_the_connect_timeout()
 {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique_topic("silent-db");
    create_topic(dir.path(), &topic, 1).await;
    let port = silent_endpoint().await;
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/sitewatch?sslmode=disable");
    let run = drain(dir.path(), &topic, &url, &["--deadline", "3s"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Without it, the connect timeout (10 s).
    assert_ended_by(&run, Duration::from_secs(3), Duration::from_secs(10));
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "error: cannot connect to PostgreSQL at 127.0.0.1:{port}/sitewatch: no answer within"
        )),
        "{last}"
    );
    // Without a deadline, the connect timeout (10 s) bounds it.
    let run = sitewatch(
        dir.path(),
        &["migrate", "--only", "database"],
        &[("SITEWATCH_DATABASE_URL", url)],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(12),
        "took {:?}",
        run.elapsed
    );
    assert!(!run.stderr.contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_on_a_database_never_migrated_exits_1_and_says_to_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let (topic, _) = topic_with(dir.path(), "unmigrated", 1, 3).await;
    let url = db::empty().await;
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("did `sitewatch migrate` run?"), "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_on_a_missing_topic_exits_1_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("missing");
    let run = drain(dir.path(), &topic, &url, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.contains(&topic), "{last}");
    assert!(last.contains("sitewatch migrate"), "{last}");
    assert_eq!(db_offsets(&url, &topic).await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_migrations_at_once_both_succeed_and_apply_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::empty().await;
    let env = [("SITEWATCH_DATABASE_URL", url.clone())];
    let args = ["migrate", "--only", "database"];
    let (a, b) = tokio::join!(
        sitewatch(dir.path(), &args, &env),
        sitewatch(dir.path(), &args, &env)
    );
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.stderr, b.stderr);
    let client = db::connect(&url).await;
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM schema_migrations").await,
        sitewatch::store::MIGRATIONS.len() as i64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_broker_down_probe_once_names_how_many_were_lost_and_drain_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let web = crate::support::http::Server::start().await;
    let closed = crate::support::http::closed_port().await;
    let sites: Vec<String> = (0..3)
        .map(|i| format!(r#"{{"name":"s{i}","url":"{}"}}"#, web.url("/ok")))
        .collect();
    let run = sitewatch(
        dir.path(),
        &["probe-once"],
        &[
            ("SITEWATCH_KAFKA_BROKERS", format!("127.0.0.1:{closed}")),
            ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "2s".to_owned()),
            ("SITEWATCH_SITES", format!("[{}]", sites.join(","))),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: 3 of 3 messages were not acknowledged"),
        "{last}"
    );

    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("no-broker");
    let mut env = env(&topic, &url);
    env.retain(|(k, _)| *k != "SITEWATCH_KAFKA_BROKERS");
    env.push(("SITEWATCH_KAFKA_BROKERS", format!("127.0.0.1:{closed}")));
    let run = sitewatch(dir.path(), &["drain", "--deadline", "5s"], &env).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Without it, the idle timeout (30 s).
    assert_ended_by(&run, Duration::from_secs(5), Duration::from_secs(30));
    assert_eq!(db_offsets(&url, &topic).await, vec![]);
    let _ = kafka::brokers();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enqueue_error_fails_the_run_but_what_was_queued_is_still_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let web = crate::support::http::Server::start().await;
    let silent = silent_endpoint().await;
    let topic = unique_topic("enqueue-error");
    create_topic(dir.path(), &topic, 1).await;
    // A regex of 1.1 MB (mostly a comment) makes a message larger than
    // the producer's 1 MB limit; its check ends last (a 1 s timeout on a
    // silent server).
    let comment = "x".repeat(1_100_000);
    let mut sites: String = (0..3)
        .map(|i| format!("[[site]]\nname = \"s{i}\"\nurl = \"{}\"\n", web.url("/ok")))
        .collect();
    sites += &format!(
        "[[site]]\nname = \"huge\"\nurl = \"http://127.0.0.1:{silent}/\"\ntimeout = \"1s\"\nregex = \"(?x)hello # {comment}\"\n"
    );
    std::fs::write(dir.path().join("sites.toml"), sites).unwrap();
    let run = sitewatch(
        dir.path(),
        &["probe-once"],
        &[
            ("SITEWATCH_KAFKA_BROKERS", kafka::brokers()),
            ("SITEWATCH_KAFKA_TOPIC", topic.clone()),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: 1 of 4 checks were not published: cannot enqueue")
            && last.ends_with("(3 of the 3 queued were acknowledged)"),
        "{last}"
    );
    let published = kafka::read_all(&topic);
    assert_eq!(published.len(), 3, "the queued messages were purged");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_mid_drain_fails_the_run_and_a_rerun_completes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pg = crate::support::pg::PrivatePg::start();
    let url = pg.url();
    db::migrate(dir.path(), &url).await;
    let (topic, checks) = topic_with(dir.path(), "pg-crash", 2, 3000).await;
    // One record a transaction, so the crash lands mid-run on any broker.
    let mut child = spawn_drain(dir.path(), &topic, &url, &["--batch-size", "1"]);
    wait_for_progress(&mut child, &url, &topic, 3000).await;
    pg.crash();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the drain did not end after the crash")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    pg.resume();
    assert_a_rerun_completes(dir.path(), &topic, &url, &checks).await;
}

/// A session of the test's own that holds both partitions' claims of
/// `topic`'s drain group, as a drain would; returns it and its server pid.
async fn hold_claims(url: &str, topic: &str) -> (tokio_postgres::Client, i32) {
    let holder = db::connect(url).await;
    let group = format!("{topic}-drain");
    for p in 0..2 {
        let key = sitewatch::store::partition_key(&group, topic, p);
        holder
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .unwrap();
    }
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    (holder, pid)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_stuck_in_a_copy_is_ended_and_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, checks) = topic_with(dir.path(), "stuck-claim", 2, 10).await;
    // A drain frozen in the middle of a COPY: the server waits for its data
    // and does not cancel the statement at statement_timeout.
    let (holder, pid) = hold_claims(&url, &topic).await;
    holder
        .batch_execute("CREATE TEMP TABLE t (x text)")
        .await
        .unwrap();
    let sink = holder
        .copy_in::<_, &'static [u8]>("COPY t FROM STDIN")
        .await
        .unwrap();
    let fresh = drain(dir.path(), &topic, &url, &["--claim-timeout", "2s"]).await;
    assert_eq!(
        fresh.code, 0,
        "a live claim is no failure: {}",
        fresh.stderr
    );
    assert_eq!(figures(&fresh)["consumed"], 0);
    assert!(
        fresh.stderr.contains(&format!("pid {pid} ")),
        "{}",
        fresh.stderr
    );
    // An hour later, on drain's clock: the claim has made no progress for
    // longer than the claim timeout (no test waits for that to be true).
    let later = an_hour_later();
    let run = drain(
        dir.path(),
        &topic,
        &url,
        &["--claim-timeout", "2s", "--at", &later],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("ending a drain session that has made no progress"),
        "{}",
        run.stderr
    );
    assert_eq!(figures(&run)["stored"], 10, "{}", run.stderr);
    assert_eq!(
        stored_ids(&url).await,
        checks.iter().map(|c| c.check_id).collect()
    );
    drop(sink);
    assert!(
        holder.batch_execute("SELECT 1").await.is_err(),
        "the stuck session was ended"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_claim_that_cannot_be_ended_fails_the_run_and_names_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let (topic, _) = topic_with(dir.path(), "stale-claim", 2, 10).await;
    // The holder is a superuser; the drain runs as a role that may see its
    // sessions (pg_read_all_stats) but not end them.
    let (holder, pid) = hold_claims(&url, &topic).await;
    let role = format!("drainer_{}", uuid::Uuid::new_v4().simple());
    holder
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
             GRANT pg_read_all_stats TO {role}"
        ))
        .await
        .unwrap();
    let as_role = url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let later = an_hour_later();
    let stale = drain(
        dir.path(),
        &topic,
        &as_role,
        &["--claim-timeout", "2s", "--at", &later],
    )
    .await;
    assert_eq!(stale.code, 1, "{}", stale.stderr);
    let last = stale.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("no drain is making progress")
            && last.contains(&format!("SELECT pg_terminate_backend({pid})")),
        "{last}"
    );
}

/// A broker of the test's own that it can kill: a one-node Apache Kafka
/// from the stack's jars (STACK_KAFKA_LIBS), on ports of its own.
struct OwnBroker {
    child: std::process::Child,
    port: u16,
    /// What starts it again: java, the classpath, the configuration.
    command: (String, String, std::path::PathBuf),
}

impl OwnBroker {
    fn start(dir: &Path) -> OwnBroker {
        let libs = std::env::var("STACK_KAFKA_LIBS")
            .expect("STACK_KAFKA_LIBS: eval \"$(scripts/stack env)\" (the stack's Apache Kafka)");
        let java = std::env::var("STACK_JAVA").unwrap_or_else(|_| "java".to_owned());
        // Below Linux's ephemeral range (32768 and up): a port the kernel
        // hands out as 127.0.0.1:0 can be given to an outgoing connection
        // of another test before Kafka binds it.
        let free = || loop {
            let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let (port, controller) = (free(), free());
        // The log cleaner's dedupe buffer is 128 MiB by default: in this
        // node's 256 MiB heap it ran out of memory at start-up now and then
        // (the broker exited before listening); 8 MiB is plenty here.
        let home = dir.join("own-kafka");
        std::fs::create_dir_all(&home).unwrap();
        let config = home.join("server.properties");
        std::fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.voters=1@127.0.0.1:{controller}\n\
                 controller.listener.names=CONTROLLER\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\nnum.partitions=1\noffsets.topic.replication.factor=1\n\
                 offsets.topic.num.partitions=1\ntransaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\ngroup.initial.rebalance.delay.ms=0\n\
                 log.cleaner.dedupe.buffer.size=8388608\n",
                home.join("data").display()
            ),
        )
        .unwrap();
        let classpath = format!("{libs}/*");
        let format = std::process::Command::new(&java)
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format"])
            .args(["-t", "c2l0ZXdhdGNoLW93bi1rYQ", "-c"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(format.status.success(), "cannot format: {format:?}");
        let mut broker = OwnBroker {
            child: std::process::Command::new("true").spawn().unwrap(),
            port,
            command: (java, classpath, config),
        };
        broker.spawn();
        broker.coordinator_ready();
        broker
    }

    /// A fresh Kafka makes its `__consumer_offsets` topic on the first
    /// group request, which can take seconds on a busy machine: made here,
    /// so that the test's first drain does not meet it (the stack does the
    /// same for its broker).
    fn coordinator_ready(&self) {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{}", self.port))
            .set("group.id", "sitewatch-test-warm-up")
            .create()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition("sitewatch-test-warm-up", 0);
            match consumer.committed_offsets(tpl, Duration::from_secs(5)) {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "the group coordinator is not ready: {e}"
                ),
            }
        }
    }

    fn spawn(&mut self) {
        let (java, classpath, config) = &self.command;
        let log = std::fs::File::create(config.with_file_name("broker.log")).unwrap();
        self.child = std::process::Command::new(java)
            .args(["-Xms128m", "-Xmx256m", "-cp", classpath, "kafka.Kafka"])
            .arg(config)
            .current_dir(config.parent().unwrap())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let log =
                || std::fs::read_to_string(config.with_file_name("broker.log")).unwrap_or_default();
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the broker exited ({status}) before listening: {}", log());
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not listen: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it (SIGKILL, a crash) and starts it again on the same data
    /// and ports.
    fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the broker did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_gone_mid_drain_fails_the_run_with_offsets_matching_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let mut broker = OwnBroker::start(dir.path());
    let brokers = format!("127.0.0.1:{}", broker.port);
    let topic = unique_topic("broker-gone");
    let mut env = env(&topic, &url);
    env.retain(|(k, _)| *k != "SITEWATCH_KAFKA_BROKERS");
    env.push(("SITEWATCH_KAFKA_BROKERS", brokers.clone()));
    env.push(("SITEWATCH_KAFKA_PARTITIONS", "1".to_owned()));
    let run = sitewatch(dir.path(), &["migrate", "--only", "kafka"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let checks: Vec<Check> = (0..3000).map(sample).collect();
    {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        let pending: Vec<_> = checks
            .iter()
            .map(|c| {
                let payload = c.to_json();
                producer
                    .send_result(FutureRecord::to(&topic).key(&c.site).payload(&payload))
                    .map_err(|(e, _)| e)
                    .unwrap()
            })
            .collect();
        for p in pending {
            p.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    }
    let mut child = spawn_drain_with(
        dir.path(),
        &env,
        &["--batch-size", "1", "--idle-timeout", "3s"],
    );
    wait_for_progress(&mut child, &url, &topic, 3000).await;
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("drain did not end after the broker went away")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stored = stored_ids(&url).await;
    let next: i64 = db_offsets(&url, &topic).await.iter().map(|o| o.1).sum();
    if next < 3000 {
        // It did not reach the end: it must say so, exit 1.
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr
                .lines()
                .last()
                .unwrap_or_default()
                .contains("no message and no end of partition"),
            "{stderr}"
        );
    }
    // Whatever it consumed is stored, and exactly the offsets say so.
    assert_eq!(stored.len() as i64, next);
    let expected: std::collections::BTreeSet<_> =
        checks[..next as usize].iter().map(|c| c.check_id).collect();
    assert_eq!(stored, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_poison_records_are_stored_in_batches_bounded_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let topic = unique_topic("big-poison");
    create_topic(dir.path(), &topic, 1).await;
    let big = vec![b'p'; 900 * 1024];
    let records: Vec<_> = (0..40)
        .map(|i| (Some(format!("poison-{i}")), Some(big.clone())))
        .collect();
    publish(&topic, &records).await;
    let mut e = env(&topic, &url);
    e.push(("SITEWATCH_LOG_FORMAT", "json".to_owned()));
    let run = sitewatch(dir.path(), &["drain", "--batch-bytes", "2MiB"], &e).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["job"] == "drain")
        .unwrap();
    assert_eq!(summary["dead_letters"], 40);
    // 36 MB of records went through; at most a few batches of 2 MiB and
    // the prefetch were ever held.
    let peak = summary["peak_rss_bytes"].as_u64().unwrap();
    assert!(peak < 120 * 1024 * 1024, "peak RSS {} MB", peak >> 20);
    let client = db::connect(&url).await;
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM dead_letters WHERE length(payload) = 921600"
        )
        .await,
        40
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_gone_mid_probe_fails_the_run_naming_how_many_were_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = OwnBroker::start(dir.path());
    let web = crate::support::http::Server::start().await;
    let topic = unique_topic("broker-gone-probe");
    let brokers = format!("127.0.0.1:{}", broker.port);
    let env = vec![
        ("SITEWATCH_KAFKA_BROKERS", brokers),
        ("SITEWATCH_KAFKA_TOPIC", topic),
        ("SITEWATCH_KAFKA_PARTITIONS", "1".to_owned()),
        ("SITEWATCH_KAFKA_REPLICATION_FACTOR", "1".to_owned()),
        ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "3s".to_owned()),
    ];
    let run = sitewatch(dir.path(), &["migrate", "--only", "kafka"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Five checks end at once, five after their 2 s timeout: by then the
    // broker is gone.
    let sites: Vec<String> = (0..10)
        .map(|i| {
            let (path, extra) = if i < 5 {
                ("/ok", "")
            } else {
                ("/hang", r#","timeout":"2s""#)
            };
            format!(r#"{{"name":"s{i}","url":"{}"{extra}}}"#, web.url(path))
        })
        .collect();
    let mut probe_env = env.clone();
    probe_env.push(("SITEWATCH_SITES", format!("[{}]", sites.join(","))));
    let probe = tokio::spawn({
        let dir = dir.path().to_owned();
        async move { sitewatch(&dir, &["probe-once"], &probe_env).await }
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    let run = probe.await.unwrap();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    let lost: usize = last
        .strip_prefix("error: ")
        .and_then(|l| l.split(" of 10 messages were not acknowledged").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{last}"));
    assert!((5..=10).contains(&lost), "{last}");
    // Bounded by the checks (2 s), the publish timeout (3 s), the grace for
    // a delivery report that never comes (5 s) and the flush (1 s).
    assert!(
        run.elapsed < Duration::from_secs(14),
        "took {:?}: {last}",
        run.elapsed
    );
}

/// The broker crashes and comes back while drain runs: whatever drain
/// does meanwhile (goes on, or fails with offsets matching the rows), the
/// next run completes the work, every check stored once.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restarted_mid_drain_loses_nothing_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let mut broker = OwnBroker::start(dir.path());
    let brokers = format!("127.0.0.1:{}", broker.port);
    let topic = unique_topic("broker-restart");
    let mut env = env(&topic, &url);
    env.retain(|(k, _)| *k != "SITEWATCH_KAFKA_BROKERS");
    env.push(("SITEWATCH_KAFKA_BROKERS", brokers.clone()));
    env.push(("SITEWATCH_KAFKA_PARTITIONS", "1".to_owned()));
    let run = sitewatch(dir.path(), &["migrate", "--only", "kafka"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let checks: Vec<Check> = (0..2000).map(sample).collect();
    {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        let pending: Vec<_> = checks
            .iter()
            .map(|c| {
                let payload = c.to_json();
                producer
                    .send_result(FutureRecord::to(&topic).key(&c.site).payload(&payload))
                    .map_err(|(e, _)| e)
                    .unwrap()
            })
            .collect();
        for p in pending {
            p.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    }
    let mut child = spawn_drain_with(dir.path(), &env, &["--batch-size", "1"]);
    wait_for_progress(&mut child, &url, &topic, 2000).await;
    broker.crash_and_restart();
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("drain did not end")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stored = stored_ids(&url).await;
    let next: i64 = db_offsets(&url, &topic).await.iter().map(|o| o.1).sum();
    assert_eq!(stored.len() as i64, next, "{stderr}");
    // The next run completes it: all 2,000 once.
    let run = sitewatch(dir.path(), &["drain"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        stored_ids(&url).await,
        checks.iter().map(|c| c.check_id).collect()
    );
    let client = db::connect(&url).await;
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM checks").await,
        2000
    );
}

/// The broker crashes and comes back while probe-once publishes: the
/// idempotent producer delivers everything once it is back, within the
/// publish timeout, and drain stores each check once.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restarted_mid_publish_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let mut broker = OwnBroker::start(dir.path());
    let web = crate::support::http::Server::start().await;
    let topic = unique_topic("broker-restart-probe");
    let brokers = format!("127.0.0.1:{}", broker.port);
    let mut env = env(&topic, &url);
    env.retain(|(k, _)| *k != "SITEWATCH_KAFKA_BROKERS");
    env.extend([
        ("SITEWATCH_KAFKA_BROKERS", brokers.clone()),
        ("SITEWATCH_KAFKA_PARTITIONS", "1".to_owned()),
        ("SITEWATCH_KAFKA_REPLICATION_FACTOR", "1".to_owned()),
        ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "60s".to_owned()),
    ]);
    let run = sitewatch(dir.path(), &["migrate", "--only", "kafka"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Five checks end at once; five wait out their timeout. The test
    // crashes and restarts the broker once the first five are on the
    // topic: the last five are published while it is down or coming back.
    let sites: Vec<String> = (0..10)
        .map(|i| {
            let (path, extra) = if i < 5 {
                ("/ok", "")
            } else {
                ("/hang", r#","timeout":"5s""#)
            };
            format!(r#"{{"name":"s{i}","url":"{}"{extra}}}"#, web.url(path))
        })
        .collect();
    let mut probe_env = env.clone();
    probe_env.push(("SITEWATCH_SITES", format!("[{}]", sites.join(","))));
    let probe = tokio::spawn({
        let dir = dir.path().to_owned();
        async move { sitewatch(&dir, &["probe-once"], &probe_env).await }
    });
    let waiting = Instant::now();
    loop {
        let high = {
            use rdkafka::consumer::{BaseConsumer, Consumer};
            let consumer: BaseConsumer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create()
                .unwrap();
            consumer
                .fetch_watermarks(&topic, 0, Duration::from_secs(5))
                .map_or(0, |(_, high)| high)
        };
        if high >= 5 {
            break;
        }
        assert!(waiting.elapsed() < Duration::from_secs(15), "no publish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.crash_and_restart();
    let run = probe.await.unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("10 published"), "{}", run.stderr);
    let run = sitewatch(dir.path(), &["drain"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let client = db::connect(&url).await;
    assert_eq!(db::count(&client, "SELECT count(*) FROM checks").await, 10);
    assert_eq!(
        db::count(&client, "SELECT count(DISTINCT site) FROM checks").await,
        10
    );
}

/// Drain's `--at` an hour from now: other drains' claims look an hour
/// older to it.
fn an_hour_later() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::HOUR)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
