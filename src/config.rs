//! Settings: flags over `SITEWATCH_*` environment over the sites file's
//! `[settings]` table over defaults, validated into typed values once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sites::SitesDoc;

/// A value that must never be printed: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that hands it to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One setting sitewatch knows: its name (the env variable without the
/// `SITEWATCH_` prefix, lowercase) and whether its value is a secret.
struct Key {
    name: &'static str,
    secret: bool,
}

const fn key(name: &'static str) -> Key {
    Key {
        name,
        secret: false,
    }
}

const fn secret(name: &'static str) -> Key {
    Key { name, secret: true }
}

/// Every setting. Each can also be given as `SITEWATCH_<NAME>_FILE`.
const KEYS: &[Key] = &[
    key("kafka_brokers"),
    key("kafka_topic"),
    key("kafka_group"),
    key("kafka_security_protocol"),
    key("kafka_ssl_ca"),
    key("kafka_ssl_cert"),
    key("kafka_ssl_key"),
    key("kafka_sasl_mechanism"),
    key("kafka_sasl_username"),
    secret("kafka_sasl_password"),
    key("kafka_partitions"),
    key("kafka_replication_factor"),
    key("kafka_publish_timeout"),
    secret("database_url"),
    key("database_ca"),
    key("sites_file"),
    key("sites"),
    key("location"),
    key("concurrency"),
    key("log_format"),
];

fn known(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Where a value came from, so an error can name the exact culprit.
#[derive(Debug, Clone)]
enum Origin {
    Flag,
    Env,
    EnvFile(PathBuf),
    File(PathBuf),
}

#[derive(Debug, Clone)]
struct Value {
    text: String,
    origin: Origin,
}

/// Describes a setting's source for an error message; never the secret value.
fn culprit(name: &str, value: &Value) -> String {
    let shown = if known(name).is_some_and(|k| k.secret) {
        String::new()
    } else {
        // Escaped: an error stays one line whatever the value holds.
        let text = crate::error::escape_controls(&value.text);
        format!(" `{text}`")
    };
    match &value.origin {
        Origin::Flag => format!("--{}{shown}", name.replace('_', "-")),
        Origin::Env => format!("SITEWATCH_{}{shown}", name.to_uppercase()),
        Origin::EnvFile(path) => format!(
            "SITEWATCH_{}_FILE ({}){shown}",
            name.to_uppercase(),
            path.display()
        ),
        Origin::File(path) => format!("{} [settings] {name}{shown}", path.display()),
    }
}

/// Raw setting values from the command line and the environment, before the
/// sites file is read.
#[derive(Debug, Default)]
pub struct Sources {
    values: HashMap<&'static str, Value>,
    /// `SITEWATCH_*` variables that name no setting: reported as warnings, not
    /// errors, because platforms set some on their own (Kubernetes adds
    /// `<SERVICE>_PORT` for every service, so a service named `sitewatch`
    /// yields `SITEWATCH_PORT`).
    pub unknown_env: Vec<String>,
}

impl Sources {
    /// Collects settings from flags (name, value) and from environment
    /// variables (name, value) such as `std::env::vars()`.
    pub fn gather<I>(flags: &[(&'static str, String)], env: I) -> Result<Self>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let raw: BTreeMap<String, String> = envy::prefixed("SITEWATCH_")
            .from_iter(env)
            .map_err(|e| Error::config(format!("environment: {e}")))?;
        let mut sources = Sources::default();
        for (name, text) in &raw {
            if let Some(k) = known(name) {
                let file_var = format!("{name}_file");
                if raw.contains_key(&file_var) {
                    return Err(Error::config(format!(
                        "SITEWATCH_{0} and SITEWATCH_{0}_FILE are both set: keep one",
                        name.to_uppercase()
                    )));
                }
                sources.values.insert(
                    k.name,
                    Value {
                        text: text.clone(),
                        origin: Origin::Env,
                    },
                );
            } else if let Some(k) = name.strip_suffix("_file").and_then(known) {
                let path = PathBuf::from(text);
                let content = std::fs::read_to_string(&path).map_err(|e| {
                    Error::config(format!(
                        "SITEWATCH_{}_FILE: cannot read {}: {e}",
                        k.name.to_uppercase(),
                        path.display()
                    ))
                })?;
                // Mounted secrets usually end with a newline that is not part of the value.
                let text = content.trim_end_matches(['\n', '\r']).to_owned();
                sources.values.insert(
                    k.name,
                    Value {
                        text,
                        origin: Origin::EnvFile(path),
                    },
                );
            } else {
                sources
                    .unknown_env
                    .push(format!("SITEWATCH_{}", name.to_uppercase()));
            }
        }
        for (name, text) in flags {
            let k = known(name).expect("every flag names a known setting");
            sources.values.insert(
                k.name,
                Value {
                    text: text.clone(),
                    origin: Origin::Flag,
                },
            );
        }
        Ok(sources)
    }

    /// Adds the sites file's `[settings]` where neither a flag nor the
    /// environment set a value.
    fn add_file_settings(
        &mut self,
        path: &Path,
        settings: &BTreeMap<String, String>,
    ) -> Result<()> {
        for (name, text) in settings {
            let Some(k) = known(name).filter(|k| !matches!(k.name, "sites" | "sites_file")) else {
                return Err(Error::config(format!(
                    "{} [settings]: unknown setting `{name}`",
                    path.display()
                )));
            };
            if k.secret {
                return Err(Error::config(format!(
                    "{} [settings]: `{name}` is a secret and cannot be set in the sites file: use SITEWATCH_{}_FILE",
                    path.display(),
                    name.to_uppercase()
                )));
            }
            self.values.entry(k.name).or_insert_with(|| Value {
                text: text.clone(),
                origin: Origin::File(path.to_owned()),
            });
        }
        Ok(())
    }

    fn get(&self, name: &'static str) -> Option<&Value> {
        debug_assert!(known(name).is_some(), "unknown setting {name}");
        self.values.get(name).filter(|v| !v.text.is_empty())
    }

    fn text(&self, name: &'static str, default: &str) -> String {
        self.get(name)
            .map_or_else(|| default.to_owned(), |v| v.text.clone())
    }

    fn parse<T>(
        &self,
        name: &'static str,
        default: T,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse(v.text.trim())
                .ok_or_else(|| Error::config(format!("{}: expected {expected}", culprit(name, v)))),
        }
    }

    fn path(&self, name: &'static str) -> Result<Option<PathBuf>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                let path = PathBuf::from(&v.text);
                if path.is_file() {
                    Ok(Some(path))
                } else {
                    Err(Error::config(format!(
                        "{}: file not found",
                        culprit(name, v)
                    )))
                }
            }
        }
    }
}

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

/// Where the sites come from.
#[derive(Debug, Clone)]
pub enum SitesSource {
    /// `SITEWATCH_SITES`: a JSON list of sites, and the sites file when
    /// there is one too: its `[settings]` and `[defaults]` still apply,
    /// its sites do not.
    Inline(String, Option<(PathBuf, SitesDoc)>),
    /// The sites file, already parsed (its `[settings]` are merged above).
    File(PathBuf, SitesDoc),
    /// The default sites file does not exist.
    Missing(PathBuf),
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
    /// `SITEWATCH_*` variables that name no setting.
    pub unknown_env: Vec<String>,
    /// Said once logging is up: settings that were overridden in a way a
    /// person may not expect.
    pub warnings: Vec<String>,
}

/// The most checks in flight a run accepts: each needs a socket, and more
/// than this only queues in the kernel.
pub const MAX_CONCURRENCY: usize = 100_000;

/// Default checks in flight: enough that thousands of sites answering in
/// 100 ms finish in about a second, few enough to stay under common
/// file-descriptor limits once sitewatch has raised its soft limit.
pub const DEFAULT_CONCURRENCY: usize = 1000;

/// Default time a message may wait for its acknowledgement: long enough to
/// ride out a broker leader election, short enough for a minutely job.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

fn positive<T: std::str::FromStr + PartialOrd + Default>(s: &str) -> Option<T> {
    s.parse::<T>().ok().filter(|v| *v > T::default())
}

fn duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s).ok().filter(|d| !d.is_zero())
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
    /// setting, its source and, unless secret, its value.
    pub fn load(mut sources: Sources) -> Result<Settings> {
        let mut warnings = Vec::new();
        let explicit = sources.get("sites_file").cloned();
        let path = PathBuf::from(sources.text("sites_file", "sites.toml"));
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
        let sites = match (sources.get("sites"), file) {
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
        let s = &sources;

        let security_protocol = s.parse(
            "kafka_security_protocol",
            SecurityProtocol::Plaintext,
            "one of plaintext, ssl, sasl_plaintext, sasl_ssl",
            |v| match v.to_ascii_lowercase().as_str() {
                "plaintext" => Some(SecurityProtocol::Plaintext),
                "ssl" => Some(SecurityProtocol::Ssl),
                "sasl_plaintext" => Some(SecurityProtocol::SaslPlaintext),
                "sasl_ssl" => Some(SecurityProtocol::SaslSsl),
                _ => None,
            },
        )?;
        let ssl_ca = s.path("kafka_ssl_ca")?;
        let ssl_cert = s.path("kafka_ssl_cert")?;
        let ssl_key = s.path("kafka_ssl_key")?;
        if ssl_cert.is_some() != ssl_key.is_some() {
            return Err(Error::config(
                "SITEWATCH_KAFKA_SSL_CERT and SITEWATCH_KAFKA_SSL_KEY go together: set both or neither",
            ));
        }
        let misplaced = ["kafka_ssl_ca", "kafka_ssl_cert"]
            .into_iter()
            .find(|n| s.get(n).is_some());
        if let (false, Some(name)) = (security_protocol.uses_tls(), misplaced) {
            return Err(Error::config(format!(
                "SITEWATCH_{} is set but SITEWATCH_KAFKA_SECURITY_PROTOCOL is {}: use ssl or sasl_ssl",
                name.to_uppercase(),
                security_protocol.as_str()
            )));
        }
        let sasl = if security_protocol.uses_sasl() {
            let mechanism = s.parse(
                "kafka_sasl_mechanism",
                None,
                "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                |v| {
                    let v = v.to_ascii_uppercase();
                    ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
                        .contains(&v.as_str())
                        .then_some(Some(v))
                },
            )?;
            let missing = |n: &str| {
                Error::config(format!(
                    "SITEWATCH_KAFKA_SECURITY_PROTOCOL is {} but SITEWATCH_{} is not set",
                    security_protocol.as_str(),
                    n.to_uppercase()
                ))
            };
            Some(Sasl {
                mechanism: mechanism.ok_or_else(|| missing("kafka_sasl_mechanism"))?,
                username: s
                    .get("kafka_sasl_username")
                    .map(|v| v.text.clone())
                    .ok_or_else(|| missing("kafka_sasl_username"))?,
                password: s
                    .get("kafka_sasl_password")
                    .map(|v| Secret::new(v.text.clone()))
                    .ok_or_else(|| missing("kafka_sasl_password"))?,
            })
        } else {
            None
        };

        let kafka = KafkaSettings {
            brokers: s.text("kafka_brokers", "127.0.0.1:9092"),
            topic: s.text("kafka_topic", "sitewatch.checks"),
            group: s.text("kafka_group", "sitewatch-drain"),
            security_protocol,
            ssl_ca,
            ssl_cert,
            ssl_key,
            sasl,
            partitions: s.parse(
                "kafka_partitions",
                6,
                "a positive number of partitions",
                positive,
            )?,
            replication_factor: s.parse(
                "kafka_replication_factor",
                -1,
                "a positive replication factor, or -1 for the broker's default",
                |v| v.parse::<i32>().ok().filter(|n| *n > 0 || *n == -1),
            )?,
            publish_timeout: s.parse(
                "kafka_publish_timeout",
                DEFAULT_PUBLISH_TIMEOUT,
                "a non-zero duration such as 30s",
                duration,
            )?,
        };
        let database = DatabaseSettings {
            url: Secret::new(s.text(
                "database_url",
                "postgres://postgres@127.0.0.1:5432/sitewatch",
            )),
            ca: s.path("database_ca")?,
        };
        Ok(Settings {
            kafka,
            database,
            location: match s.get("location") {
                Some(v) => {
                    crate::sites::check_label("location", &v.text).map_err(|why| {
                        Error::config(format!("{}: {why}", culprit("location", v)))
                    })?;
                    v.text.clone()
                }
                None => host_name(),
            },
            concurrency: s.parse(
                "concurrency",
                DEFAULT_CONCURRENCY,
                "a number of checks in flight from 1 to 100000",
                |v| positive(v).filter(|n| *n <= MAX_CONCURRENCY),
            )?,
            log_format: s.parse("log_format", LogFormat::Text, "text or json", |v| match v {
                "text" => Some(LogFormat::Text),
                "json" => Some(LogFormat::Json),
                _ => None,
            })?,
            unknown_env: std::mem::take(&mut sources.unknown_env),
            warnings,
            sites,
        })
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

    fn load(flags: &[(&'static str, String)], pairs: &[(&str, &str)]) -> Result<Settings> {
        let mut all = env(pairs);
        // Keep the tests independent of a sites.toml in the working directory.
        if !pairs.iter().any(|(k, _)| k.starts_with("SITEWATCH_SITES")) {
            all.push(("SITEWATCH_SITES".into(), "[]".into()));
        }
        Settings::load(Sources::gather(flags, all)?)
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = load(&[], &[]).unwrap();
        assert_eq!(s.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(s.kafka.topic, "sitewatch.checks");
        assert_eq!(s.kafka.group, "sitewatch-drain");
        assert_eq!(s.kafka.security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY);
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
    fn unknown_environment_variables_are_collected_not_fatal() {
        let s = load(&[], &[("SITEWATCH_PORT", "tcp://10.0.0.1:80")]).unwrap();
        assert_eq!(s.unknown_env, vec!["SITEWATCH_PORT".to_owned()]);
    }
}
