//! Kafka over TLS, against the local stack's Apache Kafka, whose listeners
//! are as Aiven has them (scripts/stack):
//! - `ssl` with a client certificate (`ca.pem`, `service.cert`,
//!   `service.key`): the broker requires and verifies one;
//! - `sasl_ssl` with PLAIN (user carol) and SCRAM-SHA-256 and SCRAM-SHA-512
//!   (users bob and alice, stored in the broker's metadata at format time).
//!
//! Producer (`probe-once`), consumer (`drain`) and admin client (`migrate`)
//! all go through them. The CA's key is the stack's, so the tests issue the
//! client certificates they need (an expired one) from it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::certs::Ca;
use crate::support::http::Server;
use crate::support::{db, kafka, sitewatch};

/// The stack broker's TLS listeners and the files a client gets.
struct TlsBroker {
    ssl: String,
    sasl: String,
    /// The stack's TLS directory (ca.pem, ca.key, service.cert, service.key).
    tls: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn stack(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with scripts/test (or eval \"$(scripts/stack env)\") against the stack's Apache Kafka"
        )
    })
}

/// Writes `text` to `dir/name`, read-only (as a mounted secret would be).
fn read_only(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    path
}

impl TlsBroker {
    /// The stack's listeners, with its client files copied into `dir`.
    fn start(dir: &Path) -> TlsBroker {
        let tls = PathBuf::from(stack("STACK_KAFKA_TLS"));
        let copy =
            |name: &str| read_only(dir, name, &std::fs::read_to_string(tls.join(name)).unwrap());
        TlsBroker {
            ssl: stack("STACK_KAFKA_SSL_BROKERS"),
            sasl: stack("STACK_KAFKA_SASL_BROKERS"),
            ca: copy("ca.pem"),
            cert: copy("service.cert"),
            key: copy("service.key"),
            tls,
        }
    }

    /// The stack's CA, to issue client certificates from.
    fn issuer(&self) -> Ca {
        Ca::from_pem(
            &std::fs::read_to_string(self.tls.join("ca.pem")).unwrap(),
            &std::fs::read_to_string(self.tls.join("ca.key")).unwrap(),
        )
    }

    /// The settings of an Aiven-style SASL connection.
    fn sasl_env(
        &self,
        topic: &str,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Vec<(&'static str, String)> {
        let mut env = without(
            &self.env(topic),
            &[
                "SITEWATCH_KAFKA_SSL_CERT",
                "SITEWATCH_KAFKA_SSL_KEY",
                "SITEWATCH_KAFKA_SECURITY_PROTOCOL",
                "SITEWATCH_KAFKA_BROKERS",
            ],
        );
        env.extend([
            ("SITEWATCH_KAFKA_BROKERS", self.sasl.clone()),
            ("SITEWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_ssl".to_owned()),
            ("SITEWATCH_KAFKA_SASL_MECHANISM", mechanism.to_owned()),
            ("SITEWATCH_KAFKA_SASL_USERNAME", user.to_owned()),
            ("SITEWATCH_KAFKA_SASL_PASSWORD", password.to_owned()),
        ]);
        env
    }

    /// The settings of an Aiven-style certificate connection.
    fn env(&self, topic: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SITEWATCH_KAFKA_BROKERS", self.ssl.clone()),
            ("SITEWATCH_KAFKA_SECURITY_PROTOCOL", "ssl".to_owned()),
            ("SITEWATCH_KAFKA_SSL_CA", self.ca.display().to_string()),
            ("SITEWATCH_KAFKA_SSL_CERT", self.cert.display().to_string()),
            ("SITEWATCH_KAFKA_SSL_KEY", self.key.display().to_string()),
            ("SITEWATCH_KAFKA_TOPIC", topic.to_owned()),
            ("SITEWATCH_KAFKA_REPLICATION_FACTOR", "1".to_owned()),
            ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "5s".to_owned()),
        ]
    }
}

fn without(env: &[(&'static str, String)], keys: &[&str]) -> Vec<(&'static str, String)> {
    env.iter()
        .filter(|(k, _)| !keys.contains(k))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_with_a_client_certificate_publishes_and_drains() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let topic = kafka::unique_topic("tls");
    let mut env = broker.env(&topic);
    env.push((
        "SITEWATCH_SITES",
        format!(r#"[{{"name":"tls-site","url":"{}"}}]"#, web.url("/ok")),
    ));
    env.push(("SITEWATCH_DATABASE_URL", db::fresh(dir.path()).await));

    let migrate = sitewatch(dir.path(), &["migrate"], &env).await;
    assert_eq!(migrate.code, 0, "{}", migrate.stderr);
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 0, "{}", probe.stderr);
    assert!(probe.stderr.contains("1 published"), "{}", probe.stderr);
    let drain = sitewatch(dir.path(), &["drain"], &env).await;
    assert_eq!(drain.code, 0, "{}", drain.stderr);
    assert!(drain.stderr.contains("1 stored"), "{}", drain.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_ca_fails_with_exit_1_and_says_the_certificate_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let other = read_only(dir.path(), "other-ca.pem", &Ca::new().pem());
    let mut env = broker.env(&kafka::unique_topic("tls-wrong-ca"));
    env.retain(|(k, _)| *k != "SITEWATCH_KAFKA_SSL_CA");
    env.push(("SITEWATCH_KAFKA_SSL_CA", other.display().to_string()));
    env.push((
        "SITEWATCH_SITES",
        format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
    ));
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("not acknowledged") && last.contains("certificate verify failed"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_client_certificate_fails_with_exit_1_and_says_the_broker_wants_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let mut env = without(
        &broker.env(&kafka::unique_topic("tls-no-cert")),
        &["SITEWATCH_KAFKA_SSL_CERT", "SITEWATCH_KAFKA_SSL_KEY"],
    );
    env.push((
        "SITEWATCH_SITES",
        format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
    ));
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("not acknowledged") && last.contains("bad certificate"),
        "{last}"
    );
}

/// The database password of the round trips: the stack's PostgreSQL trusts
/// its loopback clients, so any password is the right one.
const DB_PASSWORD: &str = "pg-Right-Secret-7";

/// migrate, probe-once and drain with `env`, at `RUST_LOG=trace`: the
/// check is published and stored, and neither `password` nor the database
/// URL's password appears in any output: secrets that worked stay secret.
async fn round_trip(
    dir: &Path,
    mut env: Vec<(&'static str, String)>,
    web: &Server,
    password: &str,
) {
    env.push(("RUST_LOG", "trace".to_owned()));
    env.push((
        "SITEWATCH_SITES",
        format!(r#"[{{"name":"sasl-site","url":"{}"}}]"#, web.url("/ok")),
    ));
    let url = db::fresh(dir).await.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{DB_PASSWORD}@"),
        1,
    );
    assert!(url.contains(DB_PASSWORD), "{url}");
    env.push(("SITEWATCH_DATABASE_URL", url));
    for (args, expect) in [
        (&["migrate"][..], ""),
        (&["probe-once"][..], "1 published"),
        (&["drain"][..], "1 stored"),
    ] {
        let run = sitewatch(dir, args, &env).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expect), "{args:?}: {}", run.stderr);
        for secret in [password, DB_PASSWORD] {
            assert!(
                !run.stderr.contains(secret) && !run.stdout.contains(secret),
                "{args:?} printed a secret"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_ssl_with_scram_sha_256_and_512_publishes_and_drains() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let alice = broker.sasl_env(
        &kafka::unique_topic("sasl512"),
        "SCRAM-SHA-512",
        "alice",
        "wonderland",
    );
    round_trip(dir.path(), alice, &web, "wonderland").await;
    let bob = broker.sasl_env(
        &kafka::unique_topic("sasl256"),
        "SCRAM-SHA-256",
        "bob",
        "builder",
    );
    round_trip(dir.path(), bob, &web, "builder").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_fails_with_exit_1_and_says_authentication_failed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let sites = (
        "SITEWATCH_SITES",
        format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
    );
    let mut env = broker.sasl_env(
        &kafka::unique_topic("sasl-wrong"),
        "SCRAM-SHA-512",
        "alice",
        "not-the-password",
    );
    env.push(sites.clone());
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    // Refused, said at once: not a publish timeout.
    assert!(
        last.contains("not acknowledged")
            && last.contains("the broker refused the connection")
            && last.contains("SASL authentication error"),
        "{last}"
    );
    assert!(
        !probe.stderr.contains("not-the-password"),
        "{}",
        probe.stderr
    );
    // drain names it too.
    env.push(("SITEWATCH_DATABASE_URL", db::fresh(dir.path()).await));
    let drain = sitewatch(dir.path(), &["drain"], &env).await;
    assert_eq!(drain.code, 1, "{}", drain.stderr);
    let last = drain.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cannot read the metadata of topic")
            && last.contains("SASL authentication error"),
        "{last}"
    );

    // PLAIN, with a wrong password: the same, by name.
    let mut env = broker.sasl_env(
        &kafka::unique_topic("sasl-plain-wrong"),
        "PLAIN",
        &stack("STACK_KAFKA_PLAIN_USER"),
        "not-the-password",
    );
    env.push(sites);
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("not acknowledged") && last.contains("SASL authentication error"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_ssl_with_plain_publishes_and_drains() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let password = stack("STACK_KAFKA_PLAIN_PASSWORD");
    let carol = broker.sasl_env(
        &kafka::unique_topic("sasl-plain"),
        "PLAIN",
        &stack("STACK_KAFKA_PLAIN_USER"),
        &password,
    );
    round_trip(dir.path(), carol, &web, &password).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_client_certificate_is_refused_by_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let (cert, key) = broker
        .issuer()
        .issue_pem_until(&["sitewatch-client"], crate::support::certs::EXPIRED_AT);
    let cert = read_only(dir.path(), "expired.cert", &cert);
    let key = read_only(dir.path(), "expired.key", &key);
    let mut env = without(
        &broker.env(&kafka::unique_topic("tls-expired")),
        &["SITEWATCH_KAFKA_SSL_CERT", "SITEWATCH_KAFKA_SSL_KEY"],
    );
    env.extend([
        ("SITEWATCH_KAFKA_SSL_CERT", cert.display().to_string()),
        ("SITEWATCH_KAFKA_SSL_KEY", key.display().to_string()),
        (
            "SITEWATCH_SITES",
            format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
        ),
    ]);
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("not acknowledged") && last.contains("certificate"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_does_not_match_the_certificate_is_named_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let (_, other_key) = Ca::new().issue_pem(&["someone-else"]);
    let other_key = read_only(dir.path(), "other.key", &other_key);
    let mut env = without(
        &broker.env(&kafka::unique_topic("tls-mismatch")),
        &["SITEWATCH_KAFKA_SSL_KEY"],
    );
    env.extend([
        ("SITEWATCH_KAFKA_SSL_KEY", other_key.display().to_string()),
        (
            "SITEWATCH_SITES",
            r#"[{"name":"a","url":"http://127.0.0.1:1/"}]"#.to_owned(),
        ),
    ]);
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "error: cannot create the Kafka producer: SITEWATCH_KAFKA_SSL_KEY ({}) is not the key of SITEWATCH_KAFKA_SSL_CERT ({}): give the key issued with that certificate (Aiven's service.key beside service.cert)",
            other_key.display(),
            broker.cert.display()
        )
    );
    // migrate says the same, at once.
    let migrate = sitewatch(dir.path(), &["migrate", "--only", "kafka"], &env).await;
    assert_eq!(migrate.code, 1, "{}", migrate.stderr);
    assert!(
        migrate
            .stderr
            .contains("cannot create the Kafka admin client: SITEWATCH_KAFKA_SSL_KEY"),
        "{}",
        migrate.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_ca_is_the_only_one_trusted_even_when_the_system_store_knows_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let other = read_only(dir.path(), "other-ca.pem", &Ca::new().pem());
    let sites = (
        "SITEWATCH_SITES",
        format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
    );
    // The broker's CA stands in for the system store: OpenSSL (and so
    // librdkafka) reads its default trust from SSL_CERT_FILE.
    let system = ("SSL_CERT_FILE", broker.ca.display().to_string());
    let topic = kafka::unique_topic("tls-pinned");
    let mut trusted_by_system = without(&broker.env(&topic), &["SITEWATCH_KAFKA_SSL_CA"]);
    trusted_by_system.extend([sites.clone(), system.clone()]);
    let migrate = sitewatch(
        dir.path(),
        &["migrate", "--only", "kafka"],
        &trusted_by_system,
    )
    .await;
    assert_eq!(
        migrate.code, 0,
        "the system store works: {}",
        migrate.stderr
    );

    let mut pinned = without(&broker.env(&topic), &["SITEWATCH_KAFKA_SSL_CA"]);
    pinned.extend([
        sites,
        system,
        ("SITEWATCH_KAFKA_SSL_CA", other.display().to_string()),
    ]);
    let probe = sitewatch(dir.path(), &["probe-once"], &pinned).await;
    assert_eq!(
        probe.code, 1,
        "a CA of the system store was trusted: {}",
        probe.stderr
    );
    assert!(
        probe.stderr.contains("certificate verify failed"),
        "{}",
        probe.stderr
    );
}

/// Every command that talks to Kafka (`migrate --only kafka`, `probe-once`,
/// `drain`) says in its last line why the broker refused it, for each
/// refusal an Aiven user can meet, instead of waiting for a request to time
/// out.
#[tokio::test(flavor = "multi_thread")]
async fn every_command_that_talks_to_kafka_names_each_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let topic = kafka::unique_topic("refused");
    let other = read_only(dir.path(), "other-ca.pem", &Ca::new().pem());
    let (expired_cert, expired_key) = broker
        .issuer()
        .issue_pem_until(&["sitewatch-client"], crate::support::certs::EXPIRED_AT);
    let expired_cert = read_only(dir.path(), "expired.cert", &expired_cert);
    let expired_key = read_only(dir.path(), "expired.key", &expired_key);
    let with = |env: Vec<(&'static str, String)>, extra: &[(&'static str, String)]| {
        let keys: Vec<&str> = extra.iter().map(|(k, _)| *k).collect();
        let mut env = without(&env, &keys);
        env.extend(extra.iter().cloned());
        env
    };
    let cases = [
        (
            "a wrong CA",
            with(
                broker.env(&topic),
                &[("SITEWATCH_KAFKA_SSL_CA", other.display().to_string())],
            ),
            "certificate verify failed",
        ),
        (
            "no client certificate",
            without(
                &broker.env(&topic),
                &["SITEWATCH_KAFKA_SSL_CERT", "SITEWATCH_KAFKA_SSL_KEY"],
            ),
            "bad certificate",
        ),
        (
            "an expired client certificate",
            with(
                broker.env(&topic),
                &[
                    (
                        "SITEWATCH_KAFKA_SSL_CERT",
                        expired_cert.display().to_string(),
                    ),
                    ("SITEWATCH_KAFKA_SSL_KEY", expired_key.display().to_string()),
                ],
            ),
            "certificate",
        ),
        (
            "a wrong SCRAM password",
            broker.sasl_env(&topic, "SCRAM-SHA-256", "bob", "not-the-password"),
            "SASL authentication error",
        ),
        (
            "a wrong PLAIN password",
            broker.sasl_env(
                &topic,
                "PLAIN",
                &stack("STACK_KAFKA_PLAIN_USER"),
                "not-the-password",
            ),
            "SASL authentication error",
        ),
        (
            "a mechanism the broker does not offer",
            with(
                broker.sasl_env(&topic, "PLAIN", &stack("STACK_KAFKA_PLAIN_USER"), "x"),
                &[(
                    "SITEWATCH_KAFKA_BROKERS",
                    stack("STACK_KAFKA_SCRAM_ONLY_BROKERS"),
                )],
            ),
            "Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512",
        ),
    ];
    let database = db::fresh(dir.path()).await;
    for (what, env, cause) in cases {
        let env = with(
            env,
            &[
                (
                    "SITEWATCH_SITES",
                    format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
                ),
                ("SITEWATCH_DATABASE_URL", database.clone()),
            ],
        );
        for (command, says) in [
            (
                &["migrate", "--only", "kafka"][..],
                format!("error: cannot create topic {topic} on "),
            ),
            (&["probe-once"][..], "error: ".to_owned()),
            (
                &["drain"][..],
                format!("error: cannot read the metadata of topic {topic} from "),
            ),
        ] {
            let run = sitewatch(dir.path(), command, &env).await;
            assert_eq!(run.code, 1, "{what}, {command:?}: {}", run.stderr);
            let last = run.stderr.lines().last().unwrap_or_default();
            assert!(
                last.starts_with(&says) && last.contains(cause) && !last.contains("Timed out"),
                "{what}, {command:?} ({:?}): {last}",
                run.elapsed
            );
            assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);
        }
    }
}

/// The book's rehearsal of "Connecting to Aiven", run as written: the
/// block's commands, from the checkout, with this build's `sitewatch` on
/// the PATH, on a topic of the test's own.
#[tokio::test(flavor = "multi_thread")]
async fn the_books_aiven_rehearsal_runs_as_written() {
    let chapter = include_str!("../../docs/src/aiven.md");
    let after = chapter
        .split_once("**Rehearse it on the local stack.**")
        .expect("docs/src/aiven.md has its rehearsal")
        .1;
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a sh block")
        .0;
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sitewatch"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let topic = kafka::unique_topic("readme-aiven");
    let mut command = tokio::process::Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", block])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .env("SITEWATCH_KAFKA_TOPIC", &topic)
        .env("SITEWATCH_KAFKA_GROUP", format!("{topic}-drain"))
        .env("SITEWATCH_KAFKA_REPLICATION_FACTOR", "1")
        .env("SITEWATCH_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("the rehearsal did not end")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Each run published the four sites and each drain stored them.
    assert_eq!(stderr.matches("4 published").count(), 2, "{stderr}");
    assert_eq!(stderr.matches("4 stored").count(), 2, "{stderr}");
}

/// A mechanism the broker does not offer (a listener with SCRAM-SHA-512
/// only): refused by name, at once, by every command that talks to Kafka.
#[tokio::test(flavor = "multi_thread")]
async fn a_sasl_mechanism_the_broker_does_not_offer_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path());
    let web = Server::start().await;
    let topic = kafka::unique_topic("sasl-mechanism");
    let mut env = without(
        &broker.sasl_env(&topic, "PLAIN", &stack("STACK_KAFKA_PLAIN_USER"), "x"),
        &["SITEWATCH_KAFKA_BROKERS"],
    );
    env.extend([
        (
            "SITEWATCH_KAFKA_BROKERS",
            stack("STACK_KAFKA_SCRAM_ONLY_BROKERS"),
        ),
        (
            "SITEWATCH_SITES",
            format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
        ),
    ]);
    let cause = "Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512";
    let migrate = sitewatch(dir.path(), &["migrate", "--only", "kafka"], &env).await;
    assert_eq!(migrate.code, 1, "{}", migrate.stderr);
    let last = migrate.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(cause) && !last.contains("Timed out"),
        "{last}"
    );
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("the broker refused the connection") && last.contains(cause),
        "{last}"
    );
    // The mechanism it offers works there.
    let alice = without(
        &broker.sasl_env(&topic, "SCRAM-SHA-512", "alice", "wonderland"),
        &["SITEWATCH_KAFKA_BROKERS"],
    );
    let mut alice = alice;
    alice.push((
        "SITEWATCH_KAFKA_BROKERS",
        stack("STACK_KAFKA_SCRAM_ONLY_BROKERS"),
    ));
    let migrate = sitewatch(dir.path(), &["migrate", "--only", "kafka"], &alice).await;
    assert_eq!(migrate.code, 0, "{}", migrate.stderr);
}
