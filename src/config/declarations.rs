//! Each setting declared once: its name (its `[settings]` key, its flag
//! and its variable), its default, its help and the commands that read it.

/// A setting's default, as `--help` and the book's settings table show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
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
    pub default: Fallback,
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
    pub(super) fn in_file(&self) -> bool {
        !self.secret && !matches!(self.name, "sites" | "sites_file")
    }

    /// Its row in the book's settings table (docs/src/configuring.md).
    pub fn table_row(&self) -> String {
        let default = match self.default {
            Fallback::None => "none".to_owned(),
            Fallback::Value(v) => format!("`{v}`"),
            Fallback::Described(d) => d.to_owned(),
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
/// The jobs a scheduler starts, each watched by its own watchdog.
const JOBS: &[&str] = &[
    "probe-once",
    "drain",
    "alert",
    "report",
    "prune",
    "validate",
];

pub(super) const fn setting(
    name: &'static str,
    value_name: &'static str,
    default: Fallback,
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

pub(super) const fn secret(
    name: &'static str,
    value_name: &'static str,
    default: Fallback,
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
        Fallback::Value("127.0.0.1:9092"),
        KAFKA,
        "bootstrap servers, `host:port,...`",
    ),
    setting(
        "kafka_topic",
        "TOPIC",
        Fallback::Value("sitewatch.checks"),
        KAFKA,
        "topic for check results",
    ),
    setting(
        "kafka_group",
        "GROUP",
        Fallback::Value("sitewatch-drain"),
        &["drain", "validate"],
        "group id under which `drain` commits offsets",
    ),
    setting(
        "kafka_security_protocol",
        "PROTOCOL",
        Fallback::Value("plaintext"),
        KAFKA,
        "`plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`",
    ),
    setting(
        "kafka_ssl_ca",
        "PATH",
        Fallback::None,
        KAFKA,
        "PEM path of the brokers' CA (Aiven's `ca.pem`)",
    ),
    setting(
        "kafka_ssl_cert",
        "PATH",
        Fallback::None,
        KAFKA,
        "PEM path of the client certificate (Aiven's `service.cert`); with `kafka_ssl_key`",
    ),
    setting(
        "kafka_ssl_key",
        "PATH",
        Fallback::None,
        KAFKA,
        "PEM path of the client key (Aiven's `service.key`); with `kafka_ssl_cert`",
    ),
    setting(
        "kafka_sasl_mechanism",
        "MECHANISM",
        Fallback::None,
        KAFKA,
        "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (required with `sasl_*`)",
    ),
    setting(
        "kafka_sasl_username",
        "USER",
        Fallback::None,
        KAFKA,
        "SASL user name (required with `sasl_*`)",
    ),
    secret(
        "kafka_sasl_password",
        "PASSWORD",
        Fallback::None,
        KAFKA,
        "SASL password (required with `sasl_*`; a secret: prefer the `_FILE` variable)",
    ),
    setting(
        "kafka_partitions",
        "N",
        Fallback::Value("6"),
        &["migrate", "validate"],
        "partitions of the topic `migrate` creates",
    ),
    setting(
        "kafka_replication_factor",
        "N",
        Fallback::Value("-1"),
        &["migrate", "validate"],
        "replication factor of that topic; `-1` asks for the broker's default",
    ),
    setting(
        "kafka_publish_timeout",
        "DURATION",
        Fallback::Value("30s"),
        &["probe-once", "validate"],
        "how long a message may wait for its acknowledgement before the run fails",
    ),
    secret(
        "database_url",
        "URL",
        Fallback::Value("postgres://postgres@127.0.0.1:5432/sitewatch"),
        DATABASE,
        "`postgres://user:pass@host:port/db?sslmode=require` (a secret: prefer the `_FILE` variable)",
    ),
    setting(
        "database_ca",
        "PATH",
        Fallback::None,
        DATABASE,
        "PEM path of the CA that signs the database's certificate: the only CA trusted (as libpq's `sslrootcert`; `sslrootcert=...` in the URL works too, and `sslrootcert=system` trusts the system store instead)",
    ),
    setting(
        "sites_file",
        "PATH",
        Fallback::Value("sites.toml"),
        ALL,
        "path of the sites file (its `[settings]` apply to every command)",
    ),
    setting(
        "sites",
        "JSON",
        Fallback::None,
        SITES,
        "the sites inline, as a JSON list of site objects (same keys as `[[site]]`); they replace the sites file's sites (with a warning when it has some), while its `[settings]` and `[defaults]` still apply",
    ),
    setting(
        "sites_source",
        "SOURCE",
        Fallback::Value("file"),
        SITES,
        "`file` (the sites file or `SITEWATCH_SITES`) or `database` (the `sites` table, with the sites file's `[defaults]`)",
    ),
    setting(
        "location",
        "LABEL",
        Fallback::Described("host name"),
        &[
            "probe-once",
            "check",
            "drain",
            "alert",
            "report",
            "prune",
            "validate",
        ],
        "label of where the job runs (`eu-west`, `gha`, ...): probe-once's checks carry it; every job's metrics are grouped by it",
    ),
    setting(
        "concurrency",
        "N",
        Fallback::Value("1000"),
        &["probe-once", "validate"],
        "checks in flight at once, 1 to 100000",
    ),
    secret(
        "watchdog_url",
        "URL",
        Fallback::None,
        JOBS,
        "a dead man's switch the job pings (healthchecks.io's convention: `URL/start` as it starts, `URL` when it succeeds, `URL/<exit code>` when it fails; a secret: prefer the `_FILE` variable)",
    ),
    secret(
        "pushgateway_url",
        "URL",
        Fallback::None,
        JOBS,
        "a Prometheus Pushgateway the job pushes its run's figures to, grouped by job and location (README, Job metrics; a secret: it may carry credentials)",
    ),
    setting(
        "log_format",
        "FORMAT",
        Fallback::Value("text"),
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
pub(super) fn near_miss(name: &str) -> Option<String> {
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
pub(super) fn edits(a: &str, b: &str) -> usize {
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
            Fallback::Value(v) => arg = arg.default_value(v),
            Fallback::Described(text) => {
                arg = arg.help(format!("{} [default: {text}]", d.help.replace('`', "")))
            }
            _ => {}
        }
        command = command.arg(arg);
    }
    command
}
