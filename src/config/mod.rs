//! Settings: each declared once in [`SETTINGS`] (its flag, its
//! `SITEWATCH_*` variable, its `[settings]` key, its default, its help and
//! the commands that use it), given as flag over environment variable over
//! the sites file's `[settings]` table over default, validated into typed
//! values once.
//!
//! clap reads the flags and the environment variables (so `--help` shows
//! both); this module adds what clap does not do: `SITEWATCH_<NAME>_FILE`,
//! the sites file's `[settings]`, errors that name where a bad value came
//! from, and warnings for `SITEWATCH_*` variables that name no setting.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::sites::{SitesDoc, SitesSource};

mod declarations;
mod sources;

pub use declarations::*;
use sources::*;
pub use sources::{Given, Sources, given};

/// `security.protocol` of the Kafka clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// The value librdkafka expects.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether the broker can refuse the client (a certificate, a login).
    pub fn secured(self) -> bool {
        self != SecurityProtocol::Plaintext
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// SASL credentials, for `sasl_plaintext` and `sasl_ssl`.
#[derive(Debug, Clone)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub username: String,
    pub password: Secret,
}

/// Everything the Kafka clients need.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port,...`.
    pub brokers: String,
    pub topic: String,
    /// Group id under which `drain` commits offsets.
    pub group: String,
    pub security_protocol: SecurityProtocol,
    /// CA that signs the brokers' certificates (Aiven's `ca.pem`).
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate and key (Aiven's `service.cert`, `service.key`).
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    pub sasl: Option<Sasl>,
    /// Partitions of the topic `migrate` creates.
    pub partitions: i32,
    /// Replication factor of the topic `migrate` creates; -1 asks for the
    /// broker's default.
    pub replication_factor: i32,
    /// How long a published message may wait for its acknowledgement.
    pub publish_timeout: Duration,
}

/// PostgreSQL connection settings.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub ca: Option<PathBuf>,
}

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub database: DatabaseSettings,
    pub sites: SitesSource,
    /// Label of where the probe runs.
    pub location: String,
    /// Checks in flight at once.
    pub concurrency: usize,
    pub log_format: LogFormat,
    /// Pinged by the job as it starts and ends (the watchdog module).
    pub watchdog_url: Option<Secret>,
    /// Where the job pushes its metrics (the pushgateway module).
    pub pushgateway_url: Option<Secret>,
    /// `SITEWATCH_*` variables that name no setting.
    pub unknown_env: Vec<String>,
    /// Said once logging is up: settings that were overridden in a way a
    /// person may not expect.
    pub warnings: Vec<String>,
    /// Every bad setting, one line each, for `validate`: any other command
    /// stops at the first (exit 2) and never sees them.
    pub problems: Vec<String>,
}

/// The most checks in flight a run accepts: each needs a socket, and more
/// than this only queues in the kernel.
pub const MAX_CONCURRENCY: usize = 100_000;

fn positive<T: std::str::FromStr + PartialOrd + std::default::Default>(s: &str) -> Option<T> {
    s.parse::<T>().ok().filter(|v| *v > T::default())
}

fn duration(s: &str) -> Option<Duration> {
    crate::duration::non_zero(s).ok()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| {
            s.trim()
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Settings {
    /// Reads the sites file (unless sites are inline), merges its
    /// `[settings]` and validates every value. Errors exit 2 and name the
    /// setting, its source and, unless secret, its value: the first bad
    /// one, or for `validate` each in [`Settings::problems`].
    pub fn load(mut sources: Sources) -> Result<Settings> {
        let mut warnings = Vec::new();
        let sites = sites_source(&mut sources, &mut warnings)?;
        let s = &sources;
        let kafka = kafka(s);
        let database = DatabaseSettings {
            url: Secret::new(s.text("database_url")),
            ca: s.path("database_ca"),
        };
        let location = location(s);
        let concurrency = s.parse(
            "concurrency",
            "a number of checks in flight from 1 to 100000",
            |v| positive(v).filter(|n| *n <= MAX_CONCURRENCY),
        );
        let log_format = s.parse("log_format", "text or json", |v| match v {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        });
        let watchdog_url = s
            .parse_optional("watchdog_url", "an http:// or https:// URL", |v| {
                url::Url::parse(v)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            })
            .map(|u| Secret::new(u.to_string()));
        let pushgateway_url = s
            .parse_optional("pushgateway_url", "an http:// or https:// URL", |v| {
                url::Url::parse(v)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            })
            .map(|u| Secret::new(u.to_string()));
        let problems = sources.problems.take();
        if sources.command != "validate"
            && let Some(first) = problems.first()
        {
            return Err(Error::config(first));
        }
        Ok(Settings {
            kafka,
            database,
            location,
            concurrency,
            log_format,
            watchdog_url,
            pushgateway_url,
            problems,
            unknown_env: std::mem::take(&mut sources.unknown_env),
            warnings,
            sites,
        })
    }
}

/// Where the sites come from: the sites file (whose `[settings]` join the
/// sources), `SITEWATCH_SITES`, or the `sites` table; a warning when one
/// hides another's sites.
fn sites_source(sources: &mut Sources, warnings: &mut Vec<String>) -> Result<SitesSource> {
    let explicit = sources.get("sites_file").cloned();
    let path = PathBuf::from(sources.text("sites_file"));
    let file = if path.exists() {
        let doc = SitesDoc::read(&path)?;
        sources.add_file_settings(&path, &doc.settings)?;
        Some((path.clone(), doc))
    } else if let (Some(v), None) = (&explicit, sources.get("sites")) {
        return Err(Error::config(format!(
            "{}: file not found",
            culprit("sites_file", v)
        )));
    } else {
        None
    };
    let from_database = sources.parse("sites_source", "file or database", |v| {
        match v.to_ascii_lowercase().as_str() {
            "file" => Some(false),
            "database" => Some(true),
            _ => None,
        }
    });
    let sites = match (sources.get("sites"), file) {
        (Some(_), _) if from_database => {
            return Err(Error::config(
                "SITEWATCH_SITES is set but SITEWATCH_SITES_SOURCE is database: keep one",
            ));
        }
        (None, file) if from_database => {
            if let Some((path, doc)) = &file
                && !doc.site.is_empty()
            {
                warnings.push(format!(
                    "SITEWATCH_SITES_SOURCE is database: checking the sites table, not the {} of {} (its [settings] and [defaults] still apply)",
                    match doc.site.len() {
                        1 => "1 site".to_owned(),
                        n => format!("{n} sites"),
                    },
                    path.display()
                ));
            }
            SitesSource::Database(file)
        }
        (Some(inline), file) => {
            if let Some((path, doc)) = &file
                && !doc.site.is_empty()
            {
                warnings.push(format!(
                    "SITEWATCH_SITES overrides the {} sites of {}: checking the inline sites only (its [settings] and [defaults] still apply)",
                    doc.site.len(),
                    path.display()
                ));
            }
            SitesSource::Inline(inline.text.clone(), file)
        }
        (None, Some((path, doc))) => SitesSource::File(path, doc),
        (None, None) => SitesSource::Missing(path),
    };
    Ok(sites)
}

/// The Kafka settings, every problem recorded in `s`.
fn kafka(s: &Sources) -> KafkaSettings {
    let security_protocol = s.parse(
        "kafka_security_protocol",
        "one of plaintext, ssl, sasl_plaintext, sasl_ssl",
        |v| match v.to_ascii_lowercase().as_str() {
            "plaintext" => Some(SecurityProtocol::Plaintext),
            "ssl" => Some(SecurityProtocol::Ssl),
            "sasl_plaintext" => Some(SecurityProtocol::SaslPlaintext),
            "sasl_ssl" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        },
    );
    let ssl_ca = s.path("kafka_ssl_ca");
    let ssl_cert = s.path("kafka_ssl_cert");
    let ssl_key = s.path("kafka_ssl_key");
    if s.get("kafka_ssl_cert").is_some() != s.get("kafka_ssl_key").is_some() {
        s.problem(
            "SITEWATCH_KAFKA_SSL_CERT and SITEWATCH_KAFKA_SSL_KEY go together: set both or neither"
                .to_owned(),
        );
    }
    let misplaced = ["kafka_ssl_ca", "kafka_ssl_cert"]
        .into_iter()
        .find(|n| s.get(n).is_some());
    if let (false, Some(name)) = (security_protocol.uses_tls(), misplaced) {
        s.problem(format!(
            "SITEWATCH_{} is set but SITEWATCH_KAFKA_SECURITY_PROTOCOL is {}: use ssl or sasl_ssl",
            name.to_uppercase(),
            security_protocol.as_str()
        ));
    }
    let sasl = sasl(s, security_protocol);
    KafkaSettings {
        brokers: s.text("kafka_brokers"),
        topic: s.text("kafka_topic"),
        group: s.text("kafka_group"),
        security_protocol,
        ssl_ca,
        ssl_cert,
        ssl_key,
        sasl,
        partitions: s.parse(
            "kafka_partitions",
            "a positive number of partitions",
            positive,
        ),
        replication_factor: s.parse(
            "kafka_replication_factor",
            "a positive replication factor, or -1 for the broker's default",
            |v| v.parse::<i32>().ok().filter(|n| *n > 0 || *n == -1),
        ),
        publish_timeout: s.parse(
            "kafka_publish_timeout",
            "a non-zero duration such as 30s",
            duration,
        ),
    }
}

/// SASL's mechanism and credentials, each required with `sasl_*`.
fn sasl(s: &Sources, security_protocol: SecurityProtocol) -> Option<Sasl> {
    if security_protocol.uses_sasl() {
        let mechanism = s.parse_optional(
            "kafka_sasl_mechanism",
            "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
            |v| {
                let v = v.to_ascii_uppercase();
                ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
                    .contains(&v.as_str())
                    .then_some(v)
            },
        );
        for (name, unset) in [
            (
                "kafka_sasl_mechanism",
                s.get("kafka_sasl_mechanism").is_none(),
            ),
            (
                "kafka_sasl_username",
                s.get("kafka_sasl_username").is_none(),
            ),
            (
                "kafka_sasl_password",
                s.get("kafka_sasl_password").is_none(),
            ),
        ] {
            if unset {
                s.problem(format!(
                    "SITEWATCH_KAFKA_SECURITY_PROTOCOL is {} but SITEWATCH_{} is not set",
                    security_protocol.as_str(),
                    name.to_uppercase()
                ));
            }
        }
        Some(Sasl {
            mechanism: mechanism.unwrap_or_default(),
            username: s.text("kafka_sasl_username"),
            password: Secret::new(s.text("kafka_sasl_password")),
        })
    } else {
        None
    }
}

/// Where the probe runs: the setting, or the host name.
fn location(s: &Sources) -> String {
    match s.get("location") {
        Some(v) => match crate::sites::check_label("location", &v.text) {
            Ok(()) => v.text.clone(),
            Err(why) => {
                s.problem(format!("{}: {why}", culprit("location", v)));
                host_name()
            }
        },
        None => host_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Loads `validate`'s settings (all of them) as main does, with what
    /// clap would find: the flags, and the environment variables that name
    /// a setting; the rest of the environment for the `_FILE` variants.
    fn load(flags: &[(&'static str, String)], pairs: &[(&str, &str)]) -> Result<Settings> {
        let mut all = env(pairs);
        // Keep the tests independent of a sites.toml in the working directory.
        if !pairs.iter().any(|(k, _)| k.starts_with("SITEWATCH_SITES")) {
            all.push(("SITEWATCH_SITES".into(), "[]".into()));
        }
        let mut given: Vec<Given> = Vec::new();
        for (k, v) in &all {
            if let Some(d) = k
                .strip_prefix("SITEWATCH_")
                .and_then(|n| declared(&n.to_ascii_lowercase()))
                && !flags.iter().any(|(f, _)| *f == d.name)
            {
                given.push((d.name, v.clone(), Origin::Env));
            }
        }
        for (name, v) in flags {
            given.push((name, v.clone(), Origin::Flag));
        }
        let settings = Settings::load(Sources::gather("validate", given, all)?)?;
        match settings.problems.first() {
            Some(first) => Err(Error::config(first)),
            None => Ok(settings),
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = load(&[], &[]).unwrap();
        assert_eq!(s.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(s.kafka.topic, "sitewatch.checks");
        assert_eq!(s.kafka.group, "sitewatch-drain");
        assert_eq!(s.kafka.security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(s.concurrency, 1000);
        assert_eq!(
            s.database.url.expose(),
            "postgres://postgres@127.0.0.1:5432/sitewatch"
        );
    }

    #[test]
    fn flags_beat_environment() {
        let s = load(
            &[("kafka_topic", "from-flag".into())],
            &[
                ("SITEWATCH_KAFKA_TOPIC", "from-env"),
                ("SITEWATCH_CONCURRENCY", "7"),
            ],
        )
        .unwrap();
        assert_eq!(s.kafka.topic, "from-flag");
        assert_eq!(s.concurrency, 7);
    }

    #[test]
    fn environment_beats_the_sites_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sites.toml");
        std::fs::write(
            &path,
            "[settings]\nkafka_topic = \"from-file\"\nlocation = \"file-loc\"\n",
        )
        .unwrap();
        let s = load(
            &[],
            &[
                ("SITEWATCH_SITES_FILE", path.to_str().unwrap()),
                ("SITEWATCH_KAFKA_TOPIC", "from-env"),
            ],
        )
        .unwrap();
        assert_eq!(s.kafka.topic, "from-env");
        assert_eq!(s.location, "file-loc");
    }

    #[test]
    fn a_file_variant_reads_the_secret_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = load(
            &[],
            &[
                ("SITEWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
                ("SITEWATCH_KAFKA_SASL_MECHANISM", "scram-sha-256"),
                ("SITEWATCH_KAFKA_SASL_USERNAME", "avnadmin"),
                ("SITEWATCH_KAFKA_SASL_PASSWORD_FILE", path.to_str().unwrap()),
            ],
        )
        .unwrap();
        let sasl = s.kafka.sasl.unwrap();
        assert_eq!(sasl.password.expose(), "s3cret");
        assert_eq!(sasl.mechanism, "SCRAM-SHA-256");
        assert!(!format!("{sasl:?}").contains("s3cret"));
    }

    #[test]
    fn a_value_and_its_file_variant_together_are_an_error() {
        let err = load(
            &[],
            &[
                ("SITEWATCH_DATABASE_URL", "postgres://u:p@h/db"),
                ("SITEWATCH_DATABASE_URL_FILE", "/nonexistent"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.one_line(),
            "SITEWATCH_DATABASE_URL and SITEWATCH_DATABASE_URL_FILE are both set: keep one"
        );
    }

    #[test]
    fn errors_name_the_setting_and_never_a_secret_value() {
        let err = load(&[], &[("SITEWATCH_CONCURRENCY", "0")]).unwrap_err();
        assert_eq!(
            err.one_line(),
            "SITEWATCH_CONCURRENCY `0`: expected a number of checks in flight from 1 to 100000"
        );
        let err = load(
            &[("concurrency", "lots".into())],
            &[("SITEWATCH_CONCURRENCY", "3")],
        )
        .unwrap_err();
        assert!(
            err.one_line().starts_with("--concurrency `lots`"),
            "{}",
            err.one_line()
        );
        let err = load(
            &[],
            &[
                ("SITEWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
                ("SITEWATCH_KAFKA_SASL_MECHANISM", "GSSAPI"),
                ("SITEWATCH_KAFKA_SASL_PASSWORD", "hunter2"),
            ],
        )
        .unwrap_err();
        assert!(!err.one_line().contains("hunter2"));
        assert!(
            err.one_line()
                .contains("SITEWATCH_KAFKA_SASL_MECHANISM `GSSAPI`")
        );
    }

    #[test]
    fn the_book_lists_every_setting_as_declared() {
        let book = include_str!("../../docs/src/configuring.md");
        let table: Vec<&str> = book
            .lines()
            .skip_while(|l| !l.starts_with("| variable | flag |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let declared: Vec<String> = SETTINGS.iter().map(Declaration::table_row).collect();
        assert_eq!(
            table,
            declared,
            "the settings table of docs/src/configuring.md differs from SETTINGS; its rows should read:\n{}",
            declared.join("\n")
        );
    }

    #[test]
    fn every_default_parses_as_its_setting() {
        // Settings::load parses each default it falls back to; with
        // nothing set, every one of them is parsed.
        let s = load(&[], &[]).unwrap();
        assert_eq!(s.kafka.partitions, 6);
        assert_eq!(s.kafka.replication_factor, -1);
        assert_eq!(s.kafka.publish_timeout, Duration::from_secs(30));
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn another_commands_setting_in_the_sites_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sites.toml");
        std::fs::write(&path, "[settings]\nconcurrency = \"0\"\n").unwrap();
        let given = vec![("sites_file", path.to_str().unwrap().to_owned(), Origin::Env)];
        let drain = Sources::gather("drain", given.clone(), Vec::new()).unwrap();
        assert!(Settings::load(drain).is_ok(), "drain reads no concurrency");
        let probe = Sources::gather("probe-once", given, Vec::new()).unwrap();
        assert!(
            Settings::load(probe)
                .unwrap_err()
                .one_line()
                .contains("[settings] concurrency `0`")
        );
    }

    #[test]
    fn unknown_environment_variables_are_collected_not_fatal() {
        let s = load(&[], &[("SITEWATCH_PORT", "tcp://10.0.0.1:80")]).unwrap();
        assert_eq!(s.unknown_env, vec!["SITEWATCH_PORT".to_owned()]);
    }

    #[test]
    fn a_variable_one_edit_from_a_setting_is_an_error_with_a_hint() {
        let e = load(&[], &[("SITEWATCH_KAFKA_BROKER", "kafka:9092")]).unwrap_err();
        assert_eq!(
            e.one_line(),
            "SITEWATCH_KAFKA_BROKER names no setting: did you mean SITEWATCH_KAFKA_BROKERS?"
        );
        assert_eq!(edits("kafka_topc", "kafka_topic"), 1);
        assert_eq!(edits("port", "kafka_topic"), 10);
    }
}
