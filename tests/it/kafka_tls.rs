//! Kafka over TLS, against a real TLS endpoint: stunnel (Debian's package)
//! in front of a Nisshi broker of the test's own that advertises the TLS
//! port. Two setups, as Aiven offers them:
//! - `ssl` with a client certificate (`ca.pem`, `service.cert`,
//!   `service.key`): stunnel requires and verifies one;
//! - `sasl_ssl` with SCRAM-SHA-256 and SCRAM-SHA-512: Nisshi runs with
//!   `--authentication` and users made with `nisshi user create`.
//!
//! Producer (`probe-once`), consumer (`drain`) and admin client (`migrate`)
//! all go through it. Nisshi 0.7.0-pre.2 offers no SASL PLAIN: a PLAIN
//! login is shown to reach the broker's SASL handshake and fail there by name.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::certs::Ca;
use crate::support::http::Server;
use crate::support::{db, kafka, sitewatch};

/// How clients must authenticate.
#[derive(Clone, Copy, PartialEq)]
enum Auth {
    ClientCertificate,
    /// Users alice (SCRAM-SHA-512, password `wonderland`) and bob
    /// (SCRAM-SHA-256, password `builder`).
    Scram,
}

/// A broker reachable only over TLS.
struct TlsBroker {
    children: Vec<Child>,
    port: u16,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `text` to `dir/name`, read-only (as a mounted secret would be).
fn read_only(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    path
}

impl TlsBroker {
    fn start(dir: &Path, auth: Auth) -> TlsBroker {
        let nisshi = std::env::var("STACK_NISSHI").expect(
            "STACK_NISSHI is not set: run the tests with scripts/test (or eval \"$(scripts/stack env)\")",
        );
        let stunnel = ["/usr/bin/stunnel4", "/usr/bin/stunnel"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("stunnel is not installed: scripts/stack install installs it (apt-get install stunnel4)");
        let ca = Ca::new();
        let (server_cert, server_key) = ca.issue_pem(&["127.0.0.1", "localhost"]);
        let (client_cert, client_key) = ca.issue_pem(&["sitewatch-client"]);
        std::fs::write(dir.join("server.pem"), format!("{server_cert}{}", ca.pem())).unwrap();
        std::fs::write(dir.join("server.key"), server_key).unwrap();
        let broker = TlsBroker {
            children: Vec::new(),
            port: free_port(),
            ca: read_only(dir, "ca.pem", &ca.pem()),
            cert: read_only(dir, "service.cert", &client_cert),
            key: read_only(dir, "service.key", &client_key),
        };
        let plain = free_port();
        let mut broker = broker;
        let run_nisshi = |authentication: bool| {
            let mut args = vec![
                "broker".to_owned(),
                "--listener-url".to_owned(),
                format!("tcp://127.0.0.1:{plain}"),
                "--advertised-listener-url".to_owned(),
                format!("tcp://127.0.0.1:{}", broker.port),
                "--storage-engine".to_owned(),
                "sqlite://broker.db".to_owned(),
            ];
            if authentication {
                args.push("--authentication".to_owned());
            }
            let child = Command::new(&nisshi)
                .args(&args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("nisshi.log")).unwrap())
                .spawn()
                .expect("cannot start Nisshi");
            wait_for_port(plain, "Nisshi");
            child
        };
        if auth == Auth::Scram {
            // Users can only be made while authentication is off; they are
            // kept in the sqlite store across the restart.
            let mut open = run_nisshi(false);
            for (user, password, mechanism) in [
                ("alice", "wonderland", "scram512"),
                ("bob", "builder", "scram256"),
            ] {
                let made = Command::new(&nisshi)
                    .args([
                        "user",
                        "create",
                        "--broker",
                        &format!("tcp://127.0.0.1:{plain}"),
                    ])
                    .args(["--mechanism", mechanism, user, password])
                    .current_dir(dir)
                    .output()
                    .unwrap();
                assert!(made.status.success(), "nisshi user create: {made:?}");
            }
            open.kill().unwrap();
            open.wait().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", plain)).is_ok() {
                assert!(Instant::now() < deadline, "Nisshi did not stop");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        broker.children.push(run_nisshi(auth == Auth::Scram));
        let client_certificates = match auth {
            Auth::ClientCertificate => "requireCert = yes\nverifyChain = yes\n",
            Auth::Scram => "",
        };
        let config = format!(
            "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{}\nconnect = 127.0.0.1:{plain}\n\
             cert = {dir}/server.pem\nkey = {dir}/server.key\nCAfile = {dir}/ca.pem\n\
             {client_certificates}",
            broker.port,
            dir = dir.display()
        );
        std::fs::write(dir.join("stunnel.conf"), config).unwrap();
        broker.children.push(
            Command::new(stunnel)
                .arg(dir.join("stunnel.conf"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("stunnel.log")).unwrap())
                .spawn()
                .expect("cannot start stunnel"),
        );
        wait_for_port(broker.port, "stunnel");
        broker
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
            &["SITEWATCH_KAFKA_SSL_CERT", "SITEWATCH_KAFKA_SSL_KEY"],
        );
        env.retain(|(k, _)| *k != "SITEWATCH_KAFKA_SECURITY_PROTOCOL");
        env.extend([
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
            (
                "SITEWATCH_KAFKA_BROKERS",
                format!("127.0.0.1:{}", self.port),
            ),
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
    let broker = TlsBroker::start(dir.path(), Auth::ClientCertificate);
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
    let broker = TlsBroker::start(dir.path(), Auth::ClientCertificate);
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
    let broker = TlsBroker::start(dir.path(), Auth::ClientCertificate);
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
        last.contains("not acknowledged") && last.contains("certificate required"),
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
    let broker = TlsBroker::start(dir.path(), Auth::Scram);
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
    let broker = TlsBroker::start(dir.path(), Auth::Scram);
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
    assert!(
        last.contains("not acknowledged") && last.contains("SASL authentication error"),
        "{last}"
    );
    assert!(
        !probe.stderr.contains("not-the-password"),
        "{}",
        probe.stderr
    );

    // PLAIN goes to the broker as PLAIN, which this broker does not offer.
    let mut env = broker.sasl_env(
        &kafka::unique_topic("sasl-plain"),
        "PLAIN",
        "alice",
        "wonderland",
    );
    env.push(sites);
    let probe = sitewatch(dir.path(), &["probe-once"], &env).await;
    assert_eq!(probe.code, 1, "{}", probe.stderr);
    let last = probe.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("SASL PLAIN mechanism handshake failed"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_ca_is_the_only_one_trusted_even_when_the_system_store_knows_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TlsBroker::start(dir.path(), Auth::ClientCertificate);
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
