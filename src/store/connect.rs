//! Connecting to PostgreSQL: the URL as libpq reads it, TLS per `sslmode`
//! and `sslrootcert`, and the server-side limits of a session.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::config::DatabaseSettings;
use crate::error::{Error, Result};

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
    Connector::new(db, session)?.connect().await
}

/// Opens connections to one database as one session: the URL read and the
/// TLS connector built once, so that a job opening several (`report`'s
/// three, `drain`'s writers) builds it once (docs/src/decisions.md,
/// PostgreSQL).
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    /// `None` with `sslmode=disable`.
    tls: Option<native_tls::TlsConnector>,
    session: Session,
    /// `host:port/db`, for errors.
    target: String,
}

impl Connector {
    /// Reads the URL and builds the TLS connector; a bad URL or CA is a
    /// configuration error here, before any connection.
    pub fn new(db: &DatabaseSettings, session: &Session) -> Result<Connector> {
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
        let tls = if mode == SslMode::Disable {
            None
        } else {
            Some(tls_connector(db, mode, root_cert, &mut config)?)
        };
        Ok(Connector {
            target: describe(&config),
            config,
            tls,
            session: session.clone(),
        })
    }

    /// Connects within the session's connect timeout, and applies its
    /// limits.
    pub async fn connect(&self) -> Result<Client> {
        let target = &self.target;
        let timeout = self.session.connect_timeout;
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
                humantime::format_duration(timeout)
            ))
        };
        let opened = match &self.tls {
            None => open(&self.config, NoTls, timeout).await,
            Some(tls) => {
                let tls = postgres_native_tls::MakeTlsConnector::new(tls.clone());
                open(&self.config, tls, timeout).await
            }
        };
        let client = opened.map_err(|e| e.map_or_else(timed_out, fail))?;
        if let Some(limits) = &self.session.limits {
            apply_limits(&client, limits).await?;
        }
        Ok(client)
    }
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
    build_connector(mode, trust.as_ref())
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

#[cfg(test)]
mod tests {
    use super::*;

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
