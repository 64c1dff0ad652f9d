//! The command line: one variant per subcommand; doc comments are the help.

use clap::{Args, Parser, Subcommand};

/// Website availability checks as one-shot jobs: `probe-once` checks every
/// site and publishes to Kafka, `drain` stores what is pending in
/// PostgreSQL. A scheduler (cron, GitHub Actions, Kubernetes) runs them.
///
/// Every setting is also a `SITEWATCH_*` environment variable (flags win),
/// and `SITEWATCH_<NAME>_FILE` reads it from a file. Exit codes: 0 the job
/// did its work, 1 it could not (broker or database failed), 2 bad usage or
/// configuration.
#[derive(Debug, Parser)]
#[command(name = "sitewatch", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings that also have a flag. Values are validated with the
/// environment's, so `--concurrency 0` and `SITEWATCH_CONCURRENCY=0` fail
/// the same way.
#[derive(Debug, Args, Default)]
pub struct GlobalArgs {
    /// Kafka bootstrap servers [env: SITEWATCH_KAFKA_BROKERS]
    #[arg(long, global = true, value_name = "HOST:PORT,...")]
    pub kafka_brokers: Option<String>,
    /// Topic for check results [env: SITEWATCH_KAFKA_TOPIC]
    #[arg(long, global = true, value_name = "TOPIC")]
    pub kafka_topic: Option<String>,
    /// Group id under which drain commits offsets [env: SITEWATCH_KAFKA_GROUP]
    #[arg(long, global = true, value_name = "GROUP")]
    pub kafka_group: Option<String>,
    /// Path of the sites file [env: SITEWATCH_SITES_FILE] [default: sites.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub sites_file: Option<String>,
    /// Label of where the probe runs [env: SITEWATCH_LOCATION] [default: host name]
    #[arg(long, global = true, value_name = "LABEL")]
    pub location: Option<String>,
    /// Checks in flight at once [env: SITEWATCH_CONCURRENCY] [default: 1000]
    #[arg(long, global = true, value_name = "N")]
    pub concurrency: Option<String>,
    /// Log format on stderr: text or json [env: SITEWATCH_LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

impl GlobalArgs {
    /// The flags that were given, as (setting, value).
    pub fn values(&self) -> Vec<(&'static str, String)> {
        [
            ("kafka_brokers", &self.kafka_brokers),
            ("kafka_topic", &self.kafka_topic),
            ("kafka_group", &self.kafka_group),
            ("sites_file", &self.sites_file),
            ("location", &self.location),
            ("concurrency", &self.concurrency),
            ("log_format", &self.log_format),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect()
    }
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
    /// Drop stored checks older than --keep, whole days at a time (the day
    /// partitions of `checks`), and rollups older than --keep-rollups; safe
    /// while drains run
    Prune(PruneArgs),
    /// Check the sites file (--sites-file) and the settings, changing
    /// nothing and connecting nowhere: every problem of every site on a line
    /// of its own, exit 2 if there is any (for pull requests that change
    /// `sites.toml`)
    Validate,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The window of the checks count, latency percentiles and incidents
    /// (uptime is always given for 24h, 7d and 30d); whole UTC hours
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub window: std::time::Duration,
    /// Only this site (repeat for more); all sites checked in the last 30
    /// days otherwise
    #[arg(long = "site", value_name = "NAME")]
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
}

fn parse_claim_timeout(text: &str) -> Result<std::time::Duration, String> {
    parse_duration(text).and_then(|d| {
        if d < std::time::Duration::from_secs(1) {
            Err("must be at least 1s".into())
        } else {
            Ok(d)
        }
    })
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
    humantime::parse_duration(text)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            if d.is_zero() {
                Err("must not be zero".into())
            } else {
                Ok(d)
            }
        })
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
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_duration)]
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
    }
}
