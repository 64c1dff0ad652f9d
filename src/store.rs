//! PostgreSQL: connect (TLS per `sslmode`), migrate, and store a batch of
//! checks, dead letters and partition offsets in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

use crate::config::DatabaseSettings;
use crate::error::{Error, Result};
use crate::keys::lock_key;
use crate::message::Check;
use crate::rollup::Rollup;

/// The migrations, in order; each file of `migrations/` is listed here (a
/// test checks that none is missing) and compiled into the binary, so a
/// container needs no extra files.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_checks.sql",
        include_str!("../migrations/0001_checks.sql"),
    ),
    (
        2,
        "0002_site_collate_c.sql",
        include_str!("../migrations/0002_site_collate_c.sql"),
    ),
    (
        3,
        "0003_partitions_and_rollups.sql",
        include_str!("../migrations/0003_partitions_and_rollups.sql"),
    ),
    (
        4,
        "0004_views.sql",
        include_str!("../migrations/0004_views.sql"),
    ),
    (
        5,
        "0005_rebuild_rollups.sql",
        include_str!("../migrations/0005_rebuild_rollups.sql"),
    ),
    (
        6,
        "0006_degraded.sql",
        include_str!("../migrations/0006_degraded.sql"),
    ),
    (
        7,
        "0007_redirects.sql",
        include_str!("../migrations/0007_redirects.sql"),
    ),
    (
        8,
        "0008_sites.sql",
        include_str!("../migrations/0008_sites.sql"),
    ),
    (
        9,
        "0009_alerts_and_runs.sql",
        include_str!("../migrations/0009_alerts_and_runs.sql"),
    ),
    (
        10,
        "0010_packed_sketches.sql",
        include_str!("../migrations/0010_packed_sketches.sql"),
    ),
    (
        11,
        "0011_json_matched.sql",
        include_str!("../migrations/0011_json_matched.sql"),
    ),
    (
        12,
        "0012_packed_by_writers.sql",
        include_str!("../migrations/0012_packed_by_writers.sql"),
    ),
    (
        13,
        "0013_state_rule.sql",
        include_str!("../migrations/0013_state_rule.sql"),
    ),
    (
        14,
        "0014_condition_and_runs.sql",
        include_str!("../migrations/0014_condition_and_runs.sql"),
    ),
];

/// How to secure the connection, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// TLS, unverified (verified against `SITEWATCH_DATABASE_CA` when set, as libpq does).
    Require,
    /// TLS, certificate chain verified, host name not.
    VerifyCa,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

/// Whose certificates the connection trusts, as libpq's `sslrootcert` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// Only the CA certificates in this PEM file.
    File(std::path::PathBuf),
    /// The system's trust store (`sslrootcert=system`).
    System,
}

/// The database URL, taken apart.
#[derive(Debug, Clone)]
pub struct ParsedUrl {
    pub config: tokio_postgres::Config,
    pub mode: SslMode,
    /// `sslrootcert` of the URL, when it has one.
    pub root_cert: Option<RootCert>,
}

/// Parses the database URL: tokio-postgres knows `disable`, `prefer` and
/// `require` only, and no `sslrootcert`, so those are read here and the
/// rest handed over.
pub fn parse_url(url: &str) -> Result<ParsedUrl> {
    let bad = |why: String| Error::config(format!("SITEWATCH_DATABASE_URL: {why}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(bad(
            "expected postgres://user:password@host:port/database".into()
        ));
    }
    let mut mode = None;
    let mut root_cert = None;
    let mut rest = Vec::new();
    // Percent-decoding as libpq does, not form decoding: a `+` is a plus.
    let pairs: Vec<(String, String)> = parsed
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect();
    for (k, v) in pairs {
        if k == "sslmode" {
            mode = Some(match v.as_str() {
                "disable" => SslMode::Disable,
                "prefer" | "allow" => SslMode::Prefer,
                "require" => SslMode::Require,
                "verify-ca" => SslMode::VerifyCa,
                "verify-full" => SslMode::VerifyFull,
                other => {
                    return Err(bad(format!(
                        "sslmode `{other}`: expected disable, prefer, require, verify-ca or verify-full"
                    )));
                }
            });
        } else if k == "sslrootcert" {
            root_cert = Some(match v.as_str() {
                "system" => RootCert::System,
                path => RootCert::File(path.into()),
            });
        } else {
            rest.push((k, v));
        }
    }
    // As libpq: the system store is for verify-full only, and its default.
    let mode = match (mode, &root_cert) {
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (Some(m), Some(RootCert::System)) if m != SslMode::VerifyFull => {
            return Err(bad(
                "sslrootcert=system needs sslmode=verify-full (a weaker mode would make it pointless)"
                    .into(),
            ));
        }
        (mode, _) => mode.unwrap_or(SslMode::Prefer),
    };
    parsed.set_query(None);
    if !rest.is_empty() {
        // Percent-encoded, not form-encoded: tokio-postgres reads `+` as a
        // plus, so `options=-c%20statement_timeout%3D5s` must keep its %20.
        let query: Vec<String> = rest
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        parsed.set_query(Some(&query.join("&")));
    }
    let config =
        tokio_postgres::Config::from_str(parsed.as_str()).map_err(|e| bad(format!("{e}")))?;
    Ok(ParsedUrl {
        config,
        mode,
        root_cert,
    })
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `host:port/database` of a configuration, for messages (never the password).
pub fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().unwrap_or("postgres")
    )
}

/// How a connection presents itself and the limits it runs under.
#[derive(Debug, Clone)]
pub struct Session {
    /// Shown in `pg_stat_activity`, so an operator sees who holds what.
    pub application_name: String,
    /// Connecting, TLS and authentication together.
    pub connect_timeout: Duration,
    /// Server-side limits (a drain's connections have them).
    pub limits: Option<Limits>,
}

/// Default time to connect: long enough for a TLS handshake across a
/// continent, short enough that a blackholed host fails a minutely job.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Session {
    fn default() -> Self {
        Session {
            application_name: "sitewatch".to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            limits: None,
        }
    }
}

/// What the server enforces on a session, so that a frozen or vanished
/// client cannot hold its locks (and its partitions) for long: the server
/// ends the session itself once it has been idle, idle in a transaction or
/// in one statement for longer than these.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `idle_session_timeout` and `idle_in_transaction_session_timeout`.
    pub idle: Duration,
    /// `statement_timeout`: a COPY whose client froze is a statement too.
    pub statement: Duration,
    /// `lock_timeout`: a locked table fails the batch instead of waiting.
    pub lock: Duration,
}

/// Connects and drives the connection in the background.
pub async fn connect(db: &DatabaseSettings) -> Result<Client> {
    connect_as(db, &Session::default()).await
}

/// Connects as `session` says, within its connect timeout.
pub async fn connect_as(db: &DatabaseSettings, session: &Session) -> Result<Client> {
    let ParsedUrl {
        mut config,
        mode,
        root_cert,
    } = parse_url(db.url.expose())?;
    config.application_name(&session.application_name);
    config.connect_timeout(session.connect_timeout);
    // Keepalives find a vanished server; tcp_user_timeout one that stops
    // acknowledging what is sent.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(30));
    let target = describe(&config);
    let host = target.split(':').next().unwrap_or_default().to_owned();
    let fail = |e: tokio_postgres::Error| {
        let context = format!("cannot connect to PostgreSQL at {target}");
        let e = anyhow::Error::new(e);
        match tls_hint(&format!("{e:#}"), &host) {
            Some(hint) => Error::Job(anyhow::anyhow!("{context}: {hint}")),
            None => Error::Job(e.context(context)),
        }
    };
    let timed_out = || {
        Error::Job(anyhow::anyhow!(
            "cannot connect to PostgreSQL at {target}: no answer within {}",
            humantime::format_duration(session.connect_timeout)
        ))
    };
    let opened = if mode == SslMode::Disable {
        open(&config, NoTls, session.connect_timeout).await
    } else {
        let tls = tls_connector(db, mode, root_cert, &mut config)?;
        let tls = postgres_native_tls::MakeTlsConnector::new(tls);
        open(&config, tls, session.connect_timeout).await
    };
    let client = opened.map_err(|e| e.map_or_else(timed_out, fail))?;
    if let Some(limits) = &session.limits {
        apply_limits(&client, limits).await?;
    }
    Ok(client)
}

/// Connects with `tls` and drives the connection in the background; `None`
/// when `timeout` ran out first.
async fn open<T>(
    config: &tokio_postgres::Config,
    tls: T,
    timeout: Duration,
) -> std::result::Result<Client, Option<tokio_postgres::Error>>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = tokio::time::timeout(timeout, config.connect(tls))
        .await
        .map_err(|_| None)?
        .map_err(Some)?;
    tokio::spawn(drive(connection));
    Ok(client)
}

/// TLS as libpq does it: a CA (`SITEWATCH_DATABASE_CA` or `sslrootcert`)
/// is the only one trusted; `sslrootcert=system` trusts the system store;
/// `verify-ca` and `verify-full` need one of them.
fn tls_connector(
    db: &DatabaseSettings,
    mode: SslMode,
    root_cert: Option<RootCert>,
    config: &mut tokio_postgres::Config,
) -> Result<native_tls::TlsConnector> {
    let trust = match (&db.ca, root_cert) {
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "SITEWATCH_DATABASE_CA and sslrootcert in SITEWATCH_DATABASE_URL are both set: keep one",
            ));
        }
        (Some(path), None) => Some(RootCert::File(path.clone())),
        (None, root) => root,
    };
    if trust.is_none() && matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
        return Err(Error::config(
            "SITEWATCH_DATABASE_URL: sslmode=verify-ca and verify-full need the server's CA: set SITEWATCH_DATABASE_CA to its PEM file (Aiven: the service's ca.pem), or add sslrootcert=system to trust the system store",
        ));
    }
    config.ssl_mode(match mode {
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    // One connector per mode and trust in a process: building one loads
    // the system's CA bundle, and `report` opens three connections
    // (docs/src/decisions.md, PostgreSQL).
    type Built = Vec<((SslMode, Option<RootCert>), native_tls::TlsConnector)>;
    static BUILT: std::sync::Mutex<Built> = std::sync::Mutex::new(Vec::new());
    let key = (mode, trust);
    if let Some((_, tls)) = BUILT
        .lock()
        .expect("not poisoned")
        .iter()
        .find(|(k, _)| *k == key)
    {
        return Ok(tls.clone());
    }
    let tls = build_connector(key.0, key.1.as_ref())?;
    BUILT.lock().expect("not poisoned").push((key, tls.clone()));
    Ok(tls)
}

/// A TLS connector that trusts `trust` and verifies what `mode` asks.
fn build_connector(mode: SslMode, trust: Option<&RootCert>) -> Result<native_tls::TlsConnector> {
    let mut tls = native_tls::TlsConnector::builder();
    if let Some(RootCert::File(path)) = trust {
        let pem = std::fs::read(path)
            .map_err(|e| Error::config(format!("database CA {}: {e}", path.display())))?;
        let certs = pem_certificates(&pem).map_err(|e| {
            Error::config(format!(
                "database CA {}: not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        tls.disable_built_in_roots(true);
        for cert in certs {
            tls.add_root_certificate(cert);
        }
    }
    match mode {
        SslMode::Prefer => {
            tls.danger_accept_invalid_certs(true);
        }
        SslMode::Require if trust.is_none() => {
            tls.danger_accept_invalid_certs(true);
        }
        SslMode::Require | SslMode::VerifyCa => {
            tls.danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyFull | SslMode::Disable => {}
    }
    tls.build()
        .map_err(|e| Error::Job(anyhow::Error::new(e).context("cannot set up TLS for PostgreSQL")))
}

/// Every certificate of a PEM file (a CA bundle may hold several).
fn pem_certificates(pem: &[u8]) -> std::result::Result<Vec<native_tls::Certificate>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if ders.is_empty() {
        return Err("no certificate in it".to_owned());
    }
    ders.iter()
        .map(|d| native_tls::Certificate::from_der(d).map_err(|e| e.to_string()))
        .collect()
}

/// Sets the session's limits. A server too old for one of them (PostgreSQL
/// 13 has no `idle_session_timeout`) gets a warning, not a failed job.
async fn apply_limits(client: &Client, limits: &Limits) -> Result<()> {
    let ms = |d: Duration| d.as_millis().to_string();
    let settings = [
        ("idle_session_timeout", ms(limits.idle)),
        ("idle_in_transaction_session_timeout", ms(limits.idle)),
        ("statement_timeout", ms(limits.statement)),
        ("lock_timeout", ms(limits.lock)),
    ];
    for (name, value) in settings {
        let set = client
            .query_one("SELECT set_config($1, $2, false)", &[&name, &value])
            .await;
        if let Err(e) = set {
            if e.is_closed() {
                return Err(Error::Job(
                    anyhow::Error::new(e).context("PostgreSQL closed the connection"),
                ));
            }
            tracing::warn!(setting = name, error = %e, "the server does not take this limit");
        }
    }
    Ok(())
}

/// OpenSSL's certificate errors, said so a person can act on them.
fn tls_hint(error: &str, host: &str) -> Option<String> {
    if error.contains("hostname mismatch") || error.contains("IP address mismatch") {
        Some(format!(
            "TLS: the server's certificate is not valid for host {host} (sslmode=verify-full checks the name; verify-ca does not)"
        ))
    } else if error.contains("certificate verify failed") {
        Some(
            "TLS: the server's certificate is not signed by a trusted CA: set SITEWATCH_DATABASE_CA to the CA's PEM file (Aiven: the service's ca.pem)"
                .to_owned(),
        )
    } else {
        None
    }
}

async fn drive<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "PostgreSQL connection ended");
    }
}

/// Applies the migrations not yet applied, under an advisory lock so that
/// two at once are safe. Returns the names applied by this call.
pub async fn migrate(client: &mut Client) -> anyhow::Result<Vec<&'static str>> {
    let key = lock_key("sitewatch:migrate");
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .context("cannot take the migration lock")?;
    let result = apply(client).await;
    // Partitions for yesterday to a week ahead, at every migrate.
    let result = match result {
        Ok(applied) => {
            let today = time::OffsetDateTime::now_utc().date().to_julian_day();
            ensure_partitions(client, (today - 1..=today + 7).collect(), false)
                .await
                .map(|()| applied)
        }
        Err(e) => Err(e),
    };
    // Unlocking fails only with the connection, which releases the lock too.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await;
    result
}

async fn apply(client: &mut Client) -> anyhow::Result<Vec<&'static str>> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .context("cannot create schema_migrations")?;
    let done: Vec<i32> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("migration {name} failed"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        tx.commit().await?;
        applied.push(*name);
    }
    Ok(applied)
}

/// The longest dead-letter reason kept: enough for any error, short enough
/// that a reason quoting a hostile payload stays small.
pub const MAX_REASON_CHARS: usize = 500;

/// `text` as PostgreSQL can store it in a `text` column: control
/// characters escaped, at most [`MAX_REASON_CHARS`] characters.
pub fn storable(text: &str) -> String {
    let mut out: String = crate::escape::controls(text)
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    if out.chars().count() == MAX_REASON_CHARS {
        out.push('…');
    }
    out
}

/// A Kafka record that cannot be a check.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
}

/// A check and where it was on the topic.
#[derive(Debug, Clone)]
pub struct Located {
    pub check: Check,
    pub partition: i32,
    pub offset: i64,
}

/// A run record of the run ledger and where it was read.
#[derive(Debug, Clone)]
pub struct LocatedRun {
    pub run: crate::message::Run,
    pub partition: i32,
    pub offset: i64,
}

/// What one transaction stores.
#[derive(Debug, Default)]
pub struct Batch {
    pub checks: Vec<Located>,
    pub runs: Vec<LocatedRun>,
    pub dead: Vec<DeadLetter>,
    /// The next offset to read, per partition, once this batch is stored.
    pub next_offsets: BTreeMap<i32, i64>,
    /// Payload bytes in the batch: batches are bounded by bytes too.
    pub bytes: usize,
}

impl Batch {
    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.checks.len() + self.runs.len() + self.dead.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What storing a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    pub inserted: u64,
    /// Checks whose `check_id` was already stored.
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Run records stored (or already there).
    pub runs: u64,
    /// The rollup chunk of ended hours the batch wrote.
    pub rolled: crate::rollup::Written,
}

/// Stores a batch in one transaction: checks (a known `check_id` is
/// skipped), dead letters, and the partitions' next offsets, each with one
/// statement whatever the batch size. Needs [`prepare`] on the connection.
///
/// When PostgreSQL refuses the batch for its data (a value it cannot store,
/// an index row too large: SQLSTATE classes 22 and 23, and 54000), the
/// batch is stored again with the culprits isolated: each refused check
/// becomes a dead letter with PostgreSQL's reason, the rest is stored, all
/// in one transaction. One bad record can then never stall a partition,
/// whatever the error; and the common path pays nothing for it.
pub async fn store(
    client: &mut Client,
    group: &str,
    topic: &str,
    batch: &Batch,
) -> anyhow::Result<Stored> {
    ensure_partitions(client, days_of(&batch.checks), true).await?;
    let mut how = Insert::choose();
    let mut remade = false;
    // Each cause of a retry at most once, whichever comes first: at most
    // three attempts.
    let outcome = loop {
        let outcome = store_at_once(client, group, topic, batch, how).await;
        match &outcome {
            // A check already stored: the batch again, skipping known checks.
            Err(e) if how == Insert::Direct && is_duplicate(e) => how = Insert::SkippingKnown,
            // A partition this process created was dropped since (`prune`,
            // or by hand): create it again rather than dead-letter its checks.
            Err(e) if !remade && is_missing_partition(e) => {
                ensure_partitions(client, days_of(&batch.checks), false).await?;
                remade = true;
            }
            _ => break outcome,
        }
    };
    if how == Insert::SkippingKnown {
        Insert::after_skipping(outcome.as_ref().is_ok_and(|s| s.duplicates > 0));
    }
    match outcome {
        Err(e) if is_data_error(&e) => {
            tracing::warn!(error = %format!("{e:#}"), "PostgreSQL refused a batch for its data: isolating the records it refuses");
            store_isolating(client, group, topic, batch).await
        }
        other => other,
    }
}

/// How a batch's checks go into `checks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insert {
    /// Binary COPY straight into `checks`: the whole batch or, should one
    /// check be stored already, nothing (the batch is then stored again
    /// [`Insert::SkippingKnown`]). The common case: a check is published
    /// once, and drained once.
    Direct,
    /// Binary COPY into a staging table, then `INSERT ... ON CONFLICT DO
    /// NOTHING`: a known check is skipped, at a cost (docs/src/decisions.md,
    /// PostgreSQL).
    SkippingKnown,
}

/// Batches still to store skipping known checks: set when a batch met
/// checks already stored, so that a topic full of duplicates (a producer
/// that retries often, a replay) does not pay for a failed COPY per batch.
static SKIP_KNOWN_FOR: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Batches stored skipping known checks after one met a duplicate.
const SKIP_KNOWN_BATCHES: u32 = 16;

impl Insert {
    fn choose() -> Insert {
        if SKIP_KNOWN_FOR.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            Insert::SkippingKnown
        } else {
            Insert::Direct
        }
    }

    /// After a batch stored skipping known checks: start over when it met
    /// duplicates, else count down to [`Insert::Direct`].
    fn after_skipping(met_duplicates: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if met_duplicates {
            SKIP_KNOWN_FOR.store(SKIP_KNOWN_BATCHES, Relaxed);
        } else {
            let _ = SKIP_KNOWN_FOR.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// Whether a batch failed on a check already stored (or twice in it).
fn is_duplicate(error: &anyhow::Error) -> bool {
    db_error(error)
        .is_some_and(|db| *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// The UTC days whose `checks` partitions this process knows exist.
static KNOWN_PARTITIONS: std::sync::Mutex<BTreeSet<i32>> = std::sync::Mutex::new(BTreeSet::new());

/// The UTC days (Julian day numbers) the checks fall on.
fn days_of(checks: &[Located]) -> BTreeSet<i32> {
    checks
        .iter()
        .map(|l| {
            l.check
                .started_at
                .to_offset(time::UtcOffset::UTC)
                .date()
                .to_julian_day()
        })
        .collect()
}

/// Creates the day partitions of `checks` (UTC days, as Julian day numbers)
/// that are missing (`sitewatch_check_partition`, each in its own short
/// transaction). With `trust_known`, days this process already saw are not
/// asked again.
pub async fn ensure_partitions(
    client: &Client,
    days: BTreeSet<i32>,
    trust_known: bool,
) -> anyhow::Result<()> {
    let wanted: Vec<i32> = {
        let known = KNOWN_PARTITIONS.lock().expect("not poisoned");
        days.into_iter()
            .filter(|d| !trust_known || !known.contains(d))
            .collect()
    };
    for day in wanted {
        let date = time::Date::from_julian_day(day).context("a day out of range")?;
        client
            .execute("SELECT sitewatch_check_partition($1)", &[&date])
            .await
            .with_context(|| format!("cannot create the partition of checks for {date}"))?;
        KNOWN_PARTITIONS.lock().expect("not poisoned").insert(day);
    }
    Ok(())
}

/// Whether a batch failed because a day has no partition.
fn is_missing_partition(error: &anyhow::Error) -> bool {
    db_error(error).is_some_and(|db| {
        db.code().code() == "23514" && db.message().starts_with("no partition of relation")
    })
}

/// Whether PostgreSQL refused the data itself (rather than failing).
pub fn is_data_error(error: &anyhow::Error) -> bool {
    let Some(code) = db_error(error).map(|e| e.code().code()) else {
        return false;
    };
    code.starts_with("22") || code.starts_with("23") || code == "54000"
}

/// Whether a query failed on a table that does not exist: a database
/// that `sitewatch migrate` has not brought up to date.
pub fn is_missing_table(error: &anyhow::Error) -> bool {
    db_error(error).is_some_and(|db| *db.code() == tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

fn db_error(error: &anyhow::Error) -> Option<&tokio_postgres::error::DbError> {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::as_db_error)
}

async fn store_at_once(
    client: &mut Client,
    group: &str,
    topic: &str,
    batch: &Batch,
    how: Insert,
) -> anyhow::Result<Stored> {
    let tx = client
        .transaction()
        .await
        .context("cannot begin a transaction")?;
    let mut rollup = Rollup::default();
    let inserted = insert_checks(&tx, topic, &batch.checks, &mut rollup, how).await?;
    insert_runs(&tx, topic, &batch.runs).await?;
    let dead_letters = insert_dead_letters(&tx, topic, &batch.dead).await?;
    let rolled = crate::rollup::insert_chunk(&tx, rollup).await?;
    record_offsets(&tx, group, topic, batch).await?;
    tx.commit().await.context("cannot commit the batch")?;
    Ok(Stored {
        inserted,
        duplicates: batch.checks.len() as u64 - inserted,
        dead_letters,
        runs: batch.runs.len() as u64,
        rolled,
    })
}

/// The batch again, each half under a savepoint, halving what PostgreSQL
/// refuses down to single records, which become dead letters.
async fn store_isolating(
    client: &mut Client,
    group: &str,
    topic: &str,
    batch: &Batch,
) -> anyhow::Result<Stored> {
    let tx = client
        .transaction()
        .await
        .context("cannot begin a transaction")?;
    let mut dead = batch.dead.clone();
    let mut inserted = 0;
    let mut stored_checks = 0;
    let mut rollup = Rollup::default();
    let mut parts: Vec<&[Located]> = vec![&batch.checks];
    while let Some(part) = parts.pop() {
        tx.batch_execute("SAVEPOINT part").await?;
        let mut part_rollup = Rollup::default();
        match insert_checks(&tx, topic, part, &mut part_rollup, Insert::SkippingKnown).await {
            Ok(n) => {
                tx.batch_execute("DELETE FROM staging_checks; RELEASE SAVEPOINT part")
                    .await?;
                rollup.merge(part_rollup);
                inserted += n;
                stored_checks += part.len() as u64;
            }
            Err(e) if is_data_error(&e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT part; RELEASE SAVEPOINT part")
                    .await?;
                if let [one] = part {
                    let reason = match db_error(&e) {
                        Some(db) => format!(
                            "PostgreSQL refused it: {} (SQLSTATE {})",
                            db.message(),
                            db.code().code()
                        ),
                        None => format!("PostgreSQL refused it: {e:#}"),
                    };
                    let reason = storable(&reason);
                    tracing::warn!(partition = one.partition, offset = one.offset, %reason, "a check became a dead letter");
                    dead.push(DeadLetter {
                        partition: one.partition,
                        offset: one.offset,
                        key: Some(one.check.site.as_bytes().to_vec()),
                        // The check as decoded: its raw bytes were not kept,
                        // to spare the common path a copy of every payload.
                        payload: Some(one.check.to_json()),
                        reason,
                    });
                } else {
                    let (first, second) = part.split_at(part.len() / 2);
                    parts.push(second);
                    parts.push(first);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut runs = 0;
    for run in &batch.runs {
        tx.batch_execute("SAVEPOINT run").await?;
        match insert_runs(&tx, topic, std::slice::from_ref(run)).await {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT run").await?;
                runs += 1;
            }
            Err(e) if is_data_error(&e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT run; RELEASE SAVEPOINT run")
                    .await?;
                dead.push(DeadLetter {
                    partition: run.partition,
                    offset: run.offset,
                    key: Some(format!("run/{}", run.run.location).into_bytes()),
                    payload: Some(run.run.to_json()),
                    reason: storable(&format!("PostgreSQL refused a run record: {e:#}")),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let dead_letters = insert_dead_letters(&tx, topic, &dead).await?;
    let rolled = crate::rollup::insert_chunk(&tx, rollup).await?;
    record_offsets(&tx, group, topic, batch).await?;
    tx.commit().await.context("cannot commit the batch")?;
    Ok(Stored {
        inserted,
        duplicates: stored_checks - inserted,
        dead_letters,
        runs,
        rolled,
    })
}

/// Stores run records in `runs`, each once.
async fn insert_runs(
    tx: &tokio_postgres::Transaction<'_>,
    topic: &str,
    runs: &[LocatedRun],
) -> anyhow::Result<()> {
    for l in runs {
        let r = &l.run;
        tx.execute(
            "INSERT INTO runs (run_id, job, location, shard, tick_s, started_at, finished_at,
                 sites_due, checked, published, outcome, kafka_topic, kafka_partition, kafka_offset,
                 answered)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (run_id) DO NOTHING",
            &[
                &r.run_id,
                &r.job,
                &r.location,
                &r.shard,
                &r.tick_s,
                &r.started_at,
                &r.finished_at,
                &(r.sites_due as i32),
                &(r.checked as i32),
                &(r.published as i32),
                &r.outcome,
                &topic,
                &l.partition,
                &l.offset,
                &r.answered.map(|a| a as i64),
            ],
        )
        .await
        .context("cannot insert a run record")?;
    }
    Ok(())
}

async fn insert_dead_letters(
    tx: &tokio_postgres::Transaction<'_>,
    topic: &str,
    dead: &[DeadLetter],
) -> anyhow::Result<u64> {
    if dead.is_empty() {
        return Ok(0);
    }
    let partitions: Vec<i32> = dead.iter().map(|d| d.partition).collect();
    let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
    let keys: Vec<Option<&[u8]>> = dead.iter().map(|d| d.key.as_deref()).collect();
    let payloads: Vec<Option<&[u8]>> = dead.iter().map(|d| d.payload.as_deref()).collect();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    tx.execute(
        "INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, key, payload, reason)
         SELECT $1, * FROM UNNEST($2::integer[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[])
         ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING",
        &[&topic, &partitions, &offsets, &keys, &payloads, &reasons],
    )
    .await
    .context("cannot insert dead letters")
}

async fn record_offsets(
    tx: &tokio_postgres::Transaction<'_>,
    group: &str,
    topic: &str,
    batch: &Batch,
) -> anyhow::Result<()> {
    let partitions: Vec<i32> = batch.next_offsets.keys().copied().collect();
    let next: Vec<i64> = batch.next_offsets.values().copied().collect();
    tx.execute(
        "INSERT INTO drain_offsets (kafka_group, kafka_topic, kafka_partition, next_offset)
         SELECT $1, $2, * FROM UNNEST($3::integer[], $4::bigint[])
         ON CONFLICT (kafka_group, kafka_topic, kafka_partition)
         DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        &[&group, &topic, &partitions, &next],
    )
    .await
    .context("cannot record the partition offsets")?;
    Ok(())
}

/// The staging table `store` copies into: one per session, emptied at every
/// commit. Call once per connection before `store`.
pub async fn prepare(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS staging_checks (LIKE checks INCLUDING DEFAULTS)
             ON COMMIT DELETE ROWS",
        )
        .await
        .context("cannot create the staging table (did `sitewatch migrate` run?)")
}

/// Column types of `staging_checks` in COPY order.
const CHECK_TYPES: [Type; 31] = [
    Type::UUID,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::BOOL,
    Type::INT2,
    Type::TEXT,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::INET,
    Type::TEXT,
    Type::BOOL,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT8,
    Type::BOOL,
    Type::BOOL,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
];

/// The checks, [`Insert::Direct`] or [`Insert::SkippingKnown`]: binary
/// COPY, then (skipping known checks) one `INSERT ... SELECT` from the
/// staging table, rather than `INSERT ... SELECT FROM UNNEST(...)`
/// (docs/src/decisions.md, PostgreSQL). Adds the checks it inserted (not
/// the skipped ones) to
/// `rollup`.
async fn insert_checks(
    tx: &tokio_postgres::Transaction<'_>,
    topic: &str,
    checks: &[Located],
    rollup: &mut Rollup,
    how: Insert,
) -> anyhow::Result<u64> {
    if checks.is_empty() {
        return Ok(0);
    }
    let table = match how {
        Insert::Direct => "checks",
        Insert::SkippingKnown => "staging_checks",
    };
    let sink = tx
        .copy_in(&format!(
            "COPY {table} (check_id, schema, site, url, method, location, started_at, up,
              status_code, reason, response_time_ms, dns_ms, connect_ms, tls_ms, ttfb_ms, ip,
              regex, regex_matched, body_bytes, tls_expires_at, error_kind, error,
              kafka_topic, kafka_partition, kafka_offset, degraded, json_matched, redirects,
              final_url, condition, run_id) FROM STDIN BINARY"
        ))
        .await
        .context("cannot start copying checks")?;
    let writer = BinaryCopyInWriter::new(sink, &CHECK_TYPES);
    futures::pin_mut!(writer);
    // In the order of the index by site: each insert then lands beside the
    // one before, not on a random page (docs/src/decisions.md, PostgreSQL).
    let mut sorted: Vec<&Located> = checks.iter().collect();
    sorted.sort_unstable_by(|a, b| {
        (&a.check.site, b.check.started_at).cmp(&(&b.check.site, a.check.started_at))
    });
    for l in sorted {
        let c = &l.check;
        let schema = c.schema as i16;
        let status = c.status_code.map(|s| s as i16);
        let bytes = c.body_bytes.map(|b| b as i64);
        let kind = c.error_kind.map(|k| k.as_str());
        let redirects = c.redirects.map(|r| r as i32);
        writer
            .as_mut()
            .write(&[
                &c.check_id,
                &schema,
                &c.site,
                &c.url,
                &c.method,
                &c.location,
                &c.started_at,
                &c.up,
                &status,
                &c.reason,
                &c.response_time_ms,
                &c.dns_ms,
                &c.connect_ms,
                &c.tls_ms,
                &c.ttfb_ms,
                &c.ip,
                &c.regex,
                &c.regex_matched,
                &bytes,
                &c.tls_expires_at,
                &kind,
                &c.error,
                &topic,
                &l.partition,
                &l.offset,
                &c.degraded,
                &c.json_matched,
                &redirects,
                &c.final_url,
                &c.condition,
                &c.run_id,
            ])
            .await
            .context("cannot copy checks")?;
    }
    writer.finish().await.context("cannot copy checks")?;
    if how == Insert::Direct {
        for l in checks {
            rollup.add(&l.check);
        }
        return Ok(checks.len() as u64);
    }
    // One row back: how many were inserted, and which only when some were
    // not (duplicates are rare; a row per check costs drain CPU).
    let n = checks.len() as i64;
    let row = tx
        .query_one(
            "WITH inserted AS (
                 INSERT INTO checks SELECT * FROM staging_checks
                 ON CONFLICT (started_at, check_id) DO NOTHING RETURNING started_at, check_id
             )
             SELECT count(*),
                    CASE WHEN count(*) < $1 THEN array_agg(started_at) END,
                    CASE WHEN count(*) < $1 THEN array_agg(check_id) END
             FROM inserted",
            &[&n],
        )
        .await
        .context("cannot insert checks")?;
    let inserted: i64 = row.get(0);
    if inserted == n {
        for l in checks {
            rollup.add(&l.check);
        }
    } else {
        let times: Vec<time::OffsetDateTime> = row.get::<_, Option<_>>(1).unwrap_or_default();
        let ids: Vec<uuid::Uuid> = row.get::<_, Option<_>>(2).unwrap_or_default();
        let mut inserted_keys: HashSet<(time::OffsetDateTime, uuid::Uuid)> =
            times.into_iter().zip(ids).collect();
        // A check twice in one batch is inserted once: count it once.
        for l in checks {
            if inserted_keys.remove(&(l.check.started_at, l.check.check_id)) {
                rollup.add(&l.check);
            }
        }
    }
    Ok(inserted as u64)
}

/// The next offsets the database holds for a group's partitions of a topic.
pub async fn next_offsets(
    client: &Client,
    group: &str,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let rows = client
        .query(
            "SELECT kafka_partition, next_offset FROM drain_offsets
             WHERE kafka_group = $1 AND kafka_topic = $2",
            &[&group, &topic],
        )
        .await
        .context("cannot read drain_offsets (did `sitewatch migrate` run?)")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The advisory-lock key of one partition of a group's drain.
pub fn partition_key(group: &str, topic: &str, partition: i32) -> i64 {
    lock_key(&format!("sitewatch:drain:{group}:{topic}:{partition}"))
}

/// Takes the session's advisory lock on one partition for a group, if free.
pub async fn try_lock_partition(
    client: &Client,
    group: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<bool> {
    let key = partition_key(group, topic, partition);
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .context("cannot take a partition lock")?;
    Ok(row.get(0))
}

/// A session that holds partition claims, as `pg_stat_activity` shows it.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub pid: i32,
    pub application_name: String,
    pub client: Option<String>,
    pub connected_at: Option<time::OffsetDateTime>,
    pub state: Option<String>,
    /// When its state last changed: for an idle session, since when it idles.
    pub state_since: Option<time::OffsetDateTime>,
    /// Seconds in that state, by the server's clock.
    pub seconds_in_state: Option<f64>,
    /// Partitions it holds.
    pub partitions: Vec<i32>,
}

/// Ends another session (`pg_terminate_backend`): its transaction rolls
/// back and its locks go. Returns whether the server did it.
pub async fn terminate(client: &Client, pid: i32) -> anyhow::Result<bool> {
    let row = client
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .with_context(|| format!("cannot end session {pid}"))?;
    Ok(row.get(0))
}

/// Who holds the claims on these partitions (advisory locks on keys of
/// [`partition_key`]).
pub async fn claimants(
    client: &Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<Vec<Claimant>> {
    // A bigint advisory key shows in pg_locks as classid (high 32 bits) and
    // objid (low 32 bits), with objsubid 1.
    let keys: Vec<i64> = partitions
        .iter()
        .map(|&p| partition_key(group, topic, p))
        .collect();
    let rows = client
        .query(
            "SELECT a.pid, coalesce(a.application_name, ''), a.client_addr::text,
                    a.backend_start, a.state, a.state_change,
                    extract(epoch FROM now() - a.state_change)::float8,
                    array_agg(k.ord::integer - 1 ORDER BY k.ord)
             FROM unnest($1::bigint[]) WITH ORDINALITY AS k(key, ord)
             JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                AND l.classid = ((k.key >> 32) & 4294967295)::bigint::text::oid
                AND l.objid = (k.key & 4294967295)::bigint::text::oid
             JOIN pg_stat_activity a ON a.pid = l.pid
             GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1",
            &[&keys],
        )
        .await
        .context("cannot read who holds the partition claims")?;
    Ok(rows
        .iter()
        .map(|r| Claimant {
            pid: r.get(0),
            application_name: r.get(1),
            client: r.get(2),
            connected_at: r.get(3),
            state: r.get(4),
            state_since: r.get(5),
            seconds_in_state: r.get(6),
            partitions: r
                .get::<_, Vec<i32>>(7)
                .into_iter()
                .filter_map(|i| partitions.get(i as usize).copied())
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_compiled_in_order() {
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sql"))
                .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(_, name, _)| *name).collect();
        assert_eq!(files, listed);
        for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i32 + 1);
            assert!(name.starts_with(&format!("{version:04}_")));
        }
    }

    #[test]
    fn sslmode_is_read_here_and_the_rest_handed_over() {
        let ParsedUrl { config, mode, .. } = parse_url(
            "postgres://u:p@db.example.com:25060/defaultdb?sslmode=verify-full&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(describe(&config), "db.example.com:25060/defaultdb");
        assert_eq!(
            config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(5))
        );
        let err = parse_url("postgres://u:secret@h/db?sslmode=bogus").unwrap_err();
        assert!(!err.one_line().contains("secret"));
        assert_eq!(parse_url("postgres://h/db").unwrap().mode, SslMode::Prefer);
    }

    #[test]
    fn url_parameters_with_spaces_and_sslrootcert_are_understood() {
        let parsed = parse_url(
            "postgres://h/db?options=-c%20statement_timeout%3D5s&application_name=a+b&sslrootcert=/etc/ca.pem&sslmode=verify-ca",
        )
        .unwrap();
        assert_eq!(parsed.config.get_options(), Some("-c statement_timeout=5s"));
        assert_eq!(parsed.config.get_application_name(), Some("a+b"));
        assert_eq!(parsed.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        assert_eq!(parsed.mode, SslMode::VerifyCa);
        let system = parse_url("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!(
            (system.root_cert, system.mode),
            (Some(RootCert::System), SslMode::VerifyFull)
        );
        let err = parse_url("postgres://h/db?sslrootcert=system&sslmode=require").unwrap_err();
        assert!(
            err.one_line().contains("needs sslmode=verify-full"),
            "{}",
            err.one_line()
        );
    }
}
