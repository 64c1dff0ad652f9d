//! The command line: one variant per subcommand; doc comments are the help.

use clap::{Args, Parser, Subcommand};

/// Website availability checks as one-shot jobs: `probe-once` checks every
/// site and publishes to Kafka, `drain` stores what is pending in
/// PostgreSQL. A scheduler (cron, GitHub Actions, Kubernetes) runs them.
///
/// Each command's --help lists the settings it reads: each is a flag and a
/// `SITEWATCH_*` environment variable (the flag wins), `SITEWATCH_<NAME>_FILE`
/// reads it from a file, and the sites file's [settings] table can set it
/// too. Exit codes: 0 the job did its work, 1 it could not (broker or
/// database failed), 2 bad usage or configuration.
#[derive(Debug, Parser)]
#[command(name = "sitewatch", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The command line: the subcommands' own arguments, and to each the
/// settings it reads ([`crate::config::SETTINGS`]).
pub fn command() -> clap::Command {
    let mut cli = <Cli as clap::CommandFactory>::command();
    let names: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        cli = cli.mut_subcommand(&name, |c| crate::config::add_args(c, &name));
    }
    cli
}

/// Parses the command line (exits as clap does on `--help` or a usage
/// error): the command, its name, and the settings clap found for it.
pub fn parse() -> (Cli, &'static str, Vec<crate::config::Given>) {
    let matches = command().get_matches();
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let (name, mut leaf) = matches.subcommand().expect("clap requires a subcommand");
    // Settings are global to a command's own subcommands (`sites list`):
    // their values are in the innermost matches.
    while let Some((_, inner)) = leaf.subcommand() {
        leaf = inner;
    }
    let name = crate::config::ALL
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("validate");
    (cli, name, crate::config::given(leaf))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every site once, publish one message per check to Kafka, wait
    /// until every message is acknowledged, print a summary, exit.
    ProbeOnce(ProbeOnceArgs),
    /// Consume every message pending when the run starts, store it in
    /// PostgreSQL, commit offsets after the rows, exit.
    Drain(DrainArgs),
    /// Check one URL and print what was measured; publishes nothing.
    Check(CheckArgs),
    /// Apply migrations/ to PostgreSQL and create the Kafka topic when it is
    /// missing (idempotent; safe when two run at once).
    Migrate(MigrateArgs),
    /// What the stored checks say, per site: state, uptime, latency
    /// percentiles, incidents, certificate days left
    Report(ReportArgs),
    /// Evaluate the checks stored since the last run, record the events they
    /// call for (down, resolved, reminder, stale, tls_expiring,
    /// prober_down), deliver each to each notifier once, exit (1 if a
    /// delivery failed: it is retried by the next run)
    Alert(AlertArgs),
    /// Drop stored checks older than --keep, whole days at a time (the day
    /// partitions of `checks`), and rollups older than --keep-rollups; safe
    /// while drains run
    Prune(PruneArgs),
    /// Check the sites file (--sites-file) and the settings, changing
    /// nothing and connecting nowhere: every problem of every site on a line
    /// of its own, exit 2 if there is any (for pull requests that change
    /// `sites.toml`)
    Validate(ValidateArgs),
    /// The sites kept in PostgreSQL (the `sites` table), which probe-once
    /// checks with SITEWATCH_SITES_SOURCE=database
    Sites(SitesArgs),
}

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[command(subcommand)]
    pub command: SitesCommand,
}

#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Every site of the table, each with what is wrong with it, if
    /// anything (such a site is skipped by probe-once)
    List {
        /// `table` or `json`
        #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Add a site, validated as a sites file's (exit 2 if it is not valid,
    /// or if a site of that name exists and --replace is not given)
    Add(Box<SiteAddArgs>),
    /// Remove a site (exit 2 if there is none of that name)
    Remove {
        /// The site's name
        name: String,
    },
    /// Add the sites of a sites file that are new, update those that
    /// differ (each with the file's [defaults] filled in and its ca_file
    /// made absolute); every site must be valid, or nothing is written
    Import {
        /// The sites file (TOML)
        file: std::path::PathBuf,
        /// Also remove the table's sites that the file does not have
        #[arg(long)]
        prune: bool,
    },
    /// The table as a sites file (TOML) on stdout, which `sites import`
    /// reads back unchanged
    Export,
}

#[derive(Debug, Args)]
pub struct SiteAddArgs {
    /// Unique and stable: the message key
    pub name: String,
    /// The http:// or https:// URL to check
    pub url: String,
    /// The body must match this regular expression
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// Check it once per this long (such as 5m), under a scheduler that
    /// ticks more often
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// The whole check, DNS to last body byte (default 10s)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// HTTP method (default GET)
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Status codes that count as up (default 200-399)
    #[arg(long, value_name = "CODES")]
    pub expect_status: Option<String>,
    /// A request header, `Name: value` (repeat for more)
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Also trust the CA certificates in this PEM file (made absolute)
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Body bytes read at most (default 1048576)
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<u64>,
    /// An up check slower than this is `degraded` (such as 800ms)
    #[arg(long, value_name = "DURATION")]
    pub degraded_after: Option<String>,
    /// A JSON condition, `$.path=value` (the value as JSON, or else as a
    /// string; repeat for more)
    #[arg(long = "json", value_name = "PATH=VALUE", value_parser = parse_json_condition)]
    pub json: Vec<(String, serde_json::Value)>,
    /// Redirects followed at most (default 10; 0: a 3xx is the result)
    #[arg(long, value_name = "N")]
    pub max_redirects: Option<u32>,
    /// Replace the site of that name if there is one
    #[arg(long)]
    pub replace: bool,
}

/// `Name: value`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}` is not a header such as `User-Agent: sitewatch`"))
}

/// `$.path=value`: the value is JSON when it parses as JSON (`3`, `true`,
/// `"x"`), else a string (`UP`).
fn parse_json_condition(text: &str) -> Result<(String, serde_json::Value), String> {
    let (path, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not a condition such as `$.status=UP`"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| value.into());
    Ok((path.to_owned(), value))
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The window of the checks count, latency percentiles and incidents
    /// (uptime is always given for 24h, 7d and 30d); whole UTC hours
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub window: std::time::Duration,
    /// Only this site (repeat for more); all sites checked in the last 30
    /// days otherwise
    #[arg(long = "site", id = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// `table` (a terminal), `markdown` (for $GITHUB_STEP_SUMMARY), `json`,
    /// or `html`: a static status page written into the --output directory
    /// (index.html, status.json, badges/<site>.svg)
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "markdown", "json", "html"])]
    pub format: String,
    /// Write the report to this file instead of stdout (with `html`: this
    /// directory, made if missing)
    #[arg(long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
    /// The report's clock, RFC 3339 (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Also require each notifier's URL (SITEWATCH_NOTIFIER_<NAME>_URL or
    /// its _FILE), as `alert` does; without it a missing URL is no problem
    /// (a pull request has no secrets), a set one must still be http(s)
    #[arg(long)]
    pub notifier_urls: bool,
}

#[derive(Debug, Args)]
pub struct AlertArgs {
    /// Evaluate and record the events without a notifier to send them to
    /// (without it, no [[notifier]] at all is a configuration error, exit 2)
    #[arg(long)]
    pub record_only: bool,
    /// Stop delivering this long after the start (such as 50s); what is
    /// left waits for the next run, exit 1
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<std::time::Duration>,
    /// The run's clock, RFC 3339 (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep the checks of this long (such as 30d): a day goes once all of
    /// it is older
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keep: std::time::Duration,
    /// Keep the hourly and daily rollups this long (at least --keep)
    #[arg(long, value_name = "DURATION", default_value = "400d", value_parser = parse_duration)]
    pub keep_rollups: std::time::Duration,
    /// The run's clock, RFC 3339 (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// Messages stored per transaction
    #[arg(long, default_value_t = crate::drain::DEFAULT_BATCH_SIZE, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,
    /// Stop after consuming this many messages; the rest stays for the next run
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Stop after this long (such as 5m); what is stored is committed, the rest stays
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_duration: Option<std::time::Duration>,
    /// Finish before this long after the start: stop consuming early enough
    /// to store and commit what was consumed, exit 0; every wait (connecting,
    /// locks, the broker) ends by then too, exit 1 if it had to
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<std::time::Duration>,
    /// How long the broker may stay silent (no record, no end of partition)
    /// before the run fails with exit 1, what it consumed stored
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// Payload bytes stored per transaction at most (such as 8MiB)
    #[arg(long, value_name = "BYTES", default_value = "8MiB", value_parser = parse_bytes)]
    pub batch_bytes: usize,
    /// How long a drain that stops making progress (frozen, or its host
    /// gone) keeps its partitions: the server then ends its sessions and
    /// another drain takes over
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_claim_timeout)]
    pub claim_timeout: std::time::Duration,
    /// Store checks and run records that started at most this long ago;
    /// older ones, and those dated more than 5 minutes ahead of this
    /// machine's clock, go to dead_letters with the reason (as long as
    /// prune's default --keep-rollups)
    #[arg(long, value_name = "DURATION", default_value = "400d", value_parser = parse_max_age)]
    pub max_age: std::time::Duration,
    /// The run's clock, RFC 3339, for --max-age and the future (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

/// A duration within `(seconds, as written)` bounds.
fn bounded(
    text: &str,
    (min, min_text): (u64, &str),
    (max, max_text): (u64, &str),
) -> Result<std::time::Duration, String> {
    let d = parse_duration(text)?;
    if d < std::time::Duration::from_secs(min) {
        Err(format!("must be at least {min_text}"))
    } else if d > std::time::Duration::from_secs(max) {
        Err(format!("must be at most {max_text}"))
    } else {
        Ok(d)
    }
}

/// A scheduler's tick: a second to 366 days (drain refuses a run record
/// whose tick is longer).
fn parse_tick(text: &str) -> Result<std::time::Duration, String> {
    bounded(
        text,
        (1, "1s"),
        (
            366 * 86_400,
            "366d (a scheduler ticks more often than once a year)",
        ),
    )
}

fn parse_max_age(text: &str) -> Result<std::time::Duration, String> {
    bounded(text, (3600, "1h"), (100 * 366 * 86_400, "100 years"))
}

fn parse_claim_timeout(text: &str) -> Result<std::time::Duration, String> {
    bounded(text, (1, "1s"), (u64::MAX / 2, "forever"))
}

/// `8MiB`, `512KiB`, `1000000`: a positive size in bytes.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`: use B, KiB, MiB or GiB")),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a positive size such as 8MiB"))
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only one half: `database` (the migrations) or `kafka` (the topic)
    #[arg(long, value_name = "PART", value_parser = ["database", "kafka"])]
    pub only: Option<String>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::duration::non_zero(text)
}

#[derive(Debug, Args)]
pub struct ProbeOnceArgs {
    /// Print the messages to stdout as JSON lines instead of publishing them
    #[arg(long)]
    pub dry_run: bool,
    /// Check every site now, whatever its interval
    #[arg(long)]
    pub all: bool,
    /// How often the scheduler starts this job; a site with a longer
    /// `interval` is checked in one tick out of interval/tick
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_tick)]
    pub tick: std::time::Duration,
    /// Check only shard I of N (a stable, disjoint share of the sites); with
    /// just N, I comes from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Finish before this long after the start: stop starting checks, publish
    /// what is done
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<std::time::Duration>,
    /// Append a Markdown table of the run to this file (also to
    /// $GITHUB_STEP_SUMMARY when that is set)
    #[arg(long, value_name = "FILE")]
    pub summary: Option<std::path::PathBuf>,
    /// The run's clock, RFC 3339, for which sites are due (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The http:// or https:// URL to check
    pub url: String,
    /// The body must match this regular expression for the site to be up
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// HTTP method
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The whole check, DNS to last body byte
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: String,
    /// Status codes that count as up
    #[arg(long, default_value = "200-399", value_name = "CODES")]
    pub expect_status: String,
    /// Also trust the CA certificates in this PEM file
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Redirects followed at most (0: a 3xx is the result); the phase
    /// timings describe the last request
    #[arg(long, default_value_t = crate::sites::DEFAULT_MAX_REDIRECTS, value_name = "N")]
    pub max_redirects: u32,
    /// Print the message as JSON, as probe-once would publish it
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    #[test]
    fn every_command_that_reads_settings_exists() {
        let cli = command();
        for name in crate::config::ALL {
            assert!(
                cli.find_subcommand(name).is_some(),
                "{name} is not a command"
            );
        }
    }
}
