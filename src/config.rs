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

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::sites::{SitesDoc, SitesSource};

/// A setting's default, as `--help` and the book's settings table show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// None: the setting is optional.
    None,
    /// This value, parsed like a given one.
    Value(&'static str),
    /// Worked out at run time, as described.
    Described(&'static str),
}

/// One setting, declared once: its name is the `[settings]` key; the flag
/// and the environment variable come from it.
#[derive(Debug)]
pub struct Declaration {
    /// `kafka_brokers`: flag `--kafka-brokers`, variable
    /// `SITEWATCH_KAFKA_BROKERS`.
    pub name: &'static str,
    /// What it means: the flag's help and the settings table's row.
    pub help: &'static str,
    pub default: Default,
    /// The placeholder of its value in `--help`.
    pub value_name: &'static str,
    /// Never shown, and not accepted in the sites file.
    pub secret: bool,
    /// The commands that read it (their `--help` lists it).
    pub commands: &'static [&'static str],
}

impl Declaration {
    /// `--kafka-brokers`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    /// `SITEWATCH_KAFKA_BROKERS`.
    pub fn variable(&self) -> String {
        format!("SITEWATCH_{}", self.name.to_ascii_uppercase())
    }

    /// Whether the sites file's `[settings]` may set it.
    fn in_file(&self) -> bool {
        !self.secret && !matches!(self.name, "sites" | "sites_file")
    }

    /// Its row in the book's settings table (docs/src/configuring.md).
    pub fn table_row(&self) -> String {
        let default = match self.default {
            Default::None => "none".to_owned(),
            Default::Value(v) => format!("`{v}`"),
            Default::Described(d) => d.to_owned(),
        };
        let commands = if self.commands == ALL {
            "all".to_owned()
        } else {
            self.commands
                .iter()
                .filter(|c| **c != "validate")
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "| `{}` | `--{}` | {} | {default} | {commands} |",
            self.variable(),
            self.flag(),
            self.help
        )
    }
}

/// Every command that reads settings.
pub const ALL: &[&str] = &[
    "probe-once",
    "drain",
    "alert",
    "check",
    "migrate",
    "report",
    "prune",
    "sites",
    "validate",
];
/// The Kafka connection: every command that talks to the broker.
const KAFKA: &[&str] = &["probe-once", "drain", "migrate", "validate"];
/// The PostgreSQL connection: every command that talks to the database
/// (`probe-once` when its sites are kept there).
const DATABASE: &[&str] = &[
    "probe-once",
    "drain",
    "alert",
    "migrate",
    "report",
    "prune",
    "sites",
    "validate",
];
/// The sites themselves (`alert` and `report` read their rules).
const SITES: &[&str] = &["probe-once", "alert", "report", "validate"];

const fn setting(
    name: &'static str,
    value_name: &'static str,
    default: Default,
    commands: &'static [&'static str],
    help: &'static str,
) -> Declaration {
    Declaration {
        name,
        help,
        default,
        value_name,
        secret: false,
        commands,
    }
}

const fn secret(
    name: &'static str,
    value_name: &'static str,
    default: Default,
    commands: &'static [&'static str],
    help: &'static str,
) -> Declaration {
    Declaration {
        secret: true,
        ..setting(name, value_name, default, commands, help)
    }
}

/// Every setting; each can also be given as `SITEWATCH_<NAME>_FILE`.
pub const SETTINGS: &[Declaration] = &[
    setting(
        "kafka_brokers",
        "HOST:PORT,...",
        Default::Value("127.0.0.1:9092"),
        KAFKA,
        "bootstrap servers, `host:port,...`",
    ),
    setting(
        "kafka_topic",
        "TOPIC",
        Default::Value("sitewatch.checks"),
        KAFKA,
        "topic for check results",
    ),
    setting(
        "kafka_group",
        "GROUP",
        Default::Value("sitewatch-drain"),
        &["drain", "validate"],
        "group id under which `drain` commits offsets",
    ),
    setting(
        "kafka_security_protocol",
        "PROTOCOL",
        Default::Value("plaintext"),
        KAFKA,
        "`plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`",
    ),
    setting(
        "kafka_ssl_ca",
        "PATH",
        Default::None,
        KAFKA,
        "PEM path of the brokers' CA (Aiven's `ca.pem`)",
    ),
    setting(
        "kafka_ssl_cert",
        "PATH",
        Default::None,
        KAFKA,
        "PEM path of the client certificate (Aiven's `service.cert`); with `kafka_ssl_key`",
    ),
    setting(
        "kafka_ssl_key",
        "PATH",
        Default::None,
        KAFKA,
        "PEM path of the client key (Aiven's `service.key`); with `kafka_ssl_cert`",
    ),
    setting(
        "kafka_sasl_mechanism",
        "MECHANISM",
        Default::None,
        KAFKA,
        "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (required with `sasl_*`)",
    ),
    setting(
        "kafka_sasl_username",
        "USER",
        Default::None,
        KAFKA,
        "SASL user name (required with `sasl_*`)",
    ),
    secret(
        "kafka_sasl_password",
        "PASSWORD",
        Default::None,
        KAFKA,
        "SASL password (required with `sasl_*`; a secret: prefer the `_FILE` variable)",
    ),
    setting(
        "kafka_partitions",
        "N",
        Default::Value("6"),
        &["migrate", "validate"],
        "partitions of the topic `migrate` creates",
    ),
    setting(
        "kafka_replication_factor",
        "N",
        Default::Value("-1"),
        &["migrate", "validate"],
        "replication factor of that topic; `-1` asks for the broker's default",
    ),
    setting(
        "kafka_publish_timeout",
        "DURATION",
        Default::Value("30s"),
        &["probe-once", "validate"],
        "how long a message may wait for its acknowledgement before the run fails",
    ),
    secret(
        "database_url",
        "URL",
        Default::Value("postgres://postgres@127.0.0.1:5432/sitewatch"),
        DATABASE,
        "`postgres://user:pass@host:port/db?sslmode=require` (a secret: prefer the `_FILE` variable)",
    ),
    setting(
        "database_ca",
        "PATH",
        Default::None,
        DATABASE,
        "PEM path of the CA that signs the database's certificate: the only CA trusted (as libpq's `sslrootcert`; `sslrootcert=...` in the URL works too, and `sslrootcert=system` trusts the system store instead)",
    ),
    setting(
        "sites_file",
        "PATH",
        Default::Value("sites.toml"),
        ALL,
        "path of the sites file (its `[settings]` apply to every command)",
    ),
    setting(
        "sites",
        "JSON",
        Default::None,
        SITES,
        "the sites inline, as a JSON list of site objects (same keys as `[[site]]`); they replace the sites file's sites (with a warning when it has some), while its `[settings]` and `[defaults]` still apply",
    ),
    setting(
        "sites_source",
        "SOURCE",
        Default::Value("file"),
        SITES,
        "`file` (the sites file or `SITEWATCH_SITES`) or `database` (the `sites` table, with the sites file's `[defaults]`)",
    ),
    setting(
        "location",
        "LABEL",
        Default::Described("host name"),
        &["probe-once", "check", "validate"],
        "label of where the probe runs (`eu-west`, `gha`, ...)",
    ),
    setting(
        "concurrency",
        "N",
        Default::Value("1000"),
        &["probe-once", "validate"],
        "checks in flight at once, 1 to 100000",
    ),
    setting(
        "log_format",
        "FORMAT",
        Default::Value("text"),
        ALL,
        "`text` or `json` logs on stderr",
    ),
];

/// The declaration of the setting named `name`.
pub fn declared(name: &str) -> Option<&'static Declaration> {
    SETTINGS.iter().find(|d| d.name == name)
}

/// The setting variable (or its `_FILE`) one edit away from `name` (a
/// variable's name without `SITEWATCH_`, lowercase): `kafka_broker` is
/// `SITEWATCH_KAFKA_BROKERS`.
fn near_miss(name: &str) -> Option<String> {
    SETTINGS.iter().find_map(|d| {
        if edits(name, d.name) <= 1 {
            Some(d.variable())
        } else if d.secret && edits(name, &format!("{}_file", d.name)) <= 1 {
            Some(format!("{}_FILE", d.variable()))
        } else {
            None
        }
    })
}

/// Levenshtein distance, small strings only.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Adds each setting `command` reads to it as a flag that clap also reads
/// from its environment variable, under the "Settings" heading.
pub fn add_args(command: clap::Command, name: &str) -> clap::Command {
    let mut command = command.next_help_heading("Settings");
    for d in SETTINGS.iter().filter(|d| d.commands.contains(&name)) {
        // clap shows the variable after the help; the table's backticks
        // are for Markdown only.
        let mut arg = clap::Arg::new(d.name)
            .long(d.flag())
            .env(d.variable())
            .value_name(d.value_name)
            .help(d.help.replace('`', ""))
            .hide_env_values(d.secret)
            .global(true);
        match d.default {
            Default::Value(v) => arg = arg.default_value(v),
            Default::Described(text) => {
                arg = arg.help(format!("{} [default: {text}]", d.help.replace('`', "")))
            }
            _ => {}
        }
        command = command.arg(arg);
    }
    command
}

/// Where a value came from, so an error can name the exact culprit.
#[derive(Debug, Clone)]
pub enum Origin {
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
    let shown = if declared(name).is_some_and(|k| k.secret) {
        String::new()
    } else {
        // Escaped: an error stays one line whatever the value holds.
        let text = crate::escape::controls(&value.text);
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

/// One value clap found: (setting, value, where from).
pub type Given = (&'static str, String, Origin);

/// The values clap found for a command's settings, as (setting, value,
/// where from): flags and environment variables, not clap's defaults
/// (those come last, after the sites file).
pub fn given(matches: &clap::ArgMatches) -> Vec<Given> {
    SETTINGS
        .iter()
        .filter_map(|d| {
            let value = matches.try_get_one::<String>(d.name).ok()??;
            let origin = match matches.value_source(d.name)? {
                clap::parser::ValueSource::CommandLine => Origin::Flag,
                clap::parser::ValueSource::EnvVariable => Origin::Env,
                _ => return None,
            };
            Some((d.name, value.clone(), origin))
        })
        .collect()
}

/// Raw setting values of one command, before the sites file is read.
#[derive(Debug, Default)]
pub struct Sources {
    /// The command whose settings these are.
    command: &'static str,
    values: HashMap<&'static str, Value>,
    /// Bad values found so far, one line each: a job stops at the first,
    /// `validate` lists them all.
    problems: RefCell<Vec<String>>,
    /// `SITEWATCH_*` variables that name no setting: reported as warnings, not
    /// errors, because platforms set some on their own (Kubernetes adds
    /// `<SERVICE>_PORT` for every service, so a service named `sitewatch`
    /// yields `SITEWATCH_PORT`).
    pub unknown_env: Vec<String>,
}

impl Sources {
    /// Collects the settings `command` reads: the values clap found
    /// ([`given`]), then the `SITEWATCH_<NAME>_FILE` variables of `env`
    /// (such as `std::env::vars()`) for those it did not.
    pub fn gather<I>(command: &'static str, given: Vec<Given>, env: I) -> Result<Self>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut sources = Sources {
            command,
            ..Sources::default()
        };
        for (name, text, origin) in given {
            sources.values.insert(name, Value { text, origin });
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SITEWATCH_"))
            .collect();
        env.sort();
        for (variable, path) in env {
            let name = variable["SITEWATCH_".len()..].to_ascii_lowercase();
            if declared(&name).is_some() {
                continue;
            }
            let Some(d) = name.strip_suffix("_file").and_then(declared) else {
                // A notifier's URL: `alert` reads it by the notifier's name.
                let notifier = name.starts_with("notifier_")
                    && (name.ends_with("_url") || name.ends_with("_url_file"));
                if notifier {
                    continue;
                }
                // One edit from a setting is a typo, not a platform's
                // variable: an error that says which was meant.
                match near_miss(&name) {
                    Some(meant) => sources.problems.borrow_mut().push(format!(
                        "{variable} names no setting: did you mean {meant}?"
                    )),
                    None => sources.unknown_env.push(variable),
                }
                continue;
            };
            if !d.commands.contains(&command) {
                continue;
            }
            match sources.values.get(d.name).map(|v| &v.origin) {
                Some(Origin::Env) => {
                    return Err(Error::config(format!(
                        "{0} and {0}_FILE are both set: keep one",
                        d.variable()
                    )));
                }
                Some(_) => continue,
                None => {}
            }
            let path = PathBuf::from(path);
            let text = crate::secret::read_file(&variable, &path).map_err(Error::config)?;
            sources.values.insert(
                d.name,
                Value {
                    text,
                    origin: Origin::EnvFile(path),
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
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        for (name, text) in settings {
            let Some(d) = declared(name).filter(|d| d.name != "sites" && d.name != "sites_file")
            else {
                return Err(Error::config(format!(
                    "{} [settings]: unknown setting `{name}`",
                    path.display()
                )));
            };
            if !d.in_file() {
                return Err(Error::config(format!(
                    "{} [settings]: `{name}` is a secret and cannot be set in the sites file: use {}_FILE",
                    path.display(),
                    d.variable()
                )));
            }
            // Another command's setting: not this one's to read.
            if !d.commands.contains(&self.command) {
                continue;
            }
            self.values.entry(d.name).or_insert_with(|| Value {
                text: text.clone(),
                origin: Origin::File(path.to_owned()),
            });
        }
        Ok(())
    }

    fn get(&self, name: &'static str) -> Option<&Value> {
        debug_assert!(declared(name).is_some(), "undeclared setting {name}");
        self.values.get(name).filter(|v| !v.text.is_empty())
    }

    /// The value, or the declared default.
    fn text(&self, name: &'static str) -> String {
        match self.get(name) {
            Some(v) => v.text.clone(),
            None => match declared(name).map(|d| d.default) {
                Some(Default::Value(v)) => v.to_owned(),
                _ => String::new(),
            },
        }
    }

    /// Notes a problem: the setting then takes its default, so that the
    /// other settings are still validated.
    fn problem(&self, line: String) {
        self.problems.borrow_mut().push(line);
    }

    /// The value parsed, or the declared default parsed the same way (also
    /// when the value is bad, which is noted).
    fn parse<T>(&self, name: &'static str, expected: &str, parse: impl Fn(&str) -> Option<T>) -> T {
        if let Some(v) = self.get(name) {
            match parse(v.text.trim()) {
                Some(value) => return value,
                None => self.problem(format!("{}: expected {expected}", culprit(name, v))),
            }
        }
        let text = match declared(name).map(|d| d.default) {
            Some(Default::Value(v)) => v,
            _ => panic!("{name} has no default to parse"),
        };
        parse(text).unwrap_or_else(|| panic!("the default of {name}, `{text}`, is not {expected}"))
    }

    /// An optional value parsed; none when unset or bad (which is noted).
    fn parse_optional<T>(
        &self,
        name: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let v = self.get(name)?;
        let parsed = parse(v.text.trim());
        if parsed.is_none() {
            self.problem(format!("{}: expected {expected}", culprit(name, v)));
        }
        parsed
    }

    /// A path that must name a file; none when unset or missing (which is
    /// noted).
    fn path(&self, name: &'static str) -> Option<PathBuf> {
        let v = self.get(name)?;
        let path = PathBuf::from(&v.text);
        if path.is_file() {
            Some(path)
        } else {
            self.problem(format!("{}: file not found", culprit(name, v)));
            None
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
        let s = &sources;

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
        let sasl = if security_protocol.uses_sasl() {
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
        };

        let kafka = KafkaSettings {
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
        };
        let database = DatabaseSettings {
            url: Secret::new(s.text("database_url")),
            ca: s.path("database_ca"),
        };
        let location = match s.get("location") {
            Some(v) => match crate::sites::check_label("location", &v.text) {
                Ok(()) => v.text.clone(),
                Err(why) => {
                    s.problem(format!("{}: {why}", culprit("location", v)));
                    host_name()
                }
            },
            None => host_name(),
        };
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
            problems,
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
        let book = include_str!("../docs/src/configuring.md");
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
