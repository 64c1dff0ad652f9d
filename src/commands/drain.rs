//! `drain`: its arguments, and the run they set up.

use clap::Args;

use super::flags::{parse_bytes, parse_claim_timeout, parse_duration, parse_max_age, parse_time};
use crate::config::Settings;
use crate::error::Result;

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

/// Stores what is pending, to a clean stop on `shutdown`.
pub async fn run(
    settings: &Settings,
    args: &DrainArgs,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<()> {
    let options = crate::drain::Options {
        batch_size: args.batch_size,
        max_messages: args.max_messages,
        max_duration: args.max_duration,
        deadline: args.deadline,
        batch_bytes: args.batch_bytes,
        claim_timeout: args.claim_timeout,
        idle_timeout: args.idle_timeout,
        max_age: args.max_age,
        now: args.at,
    };
    crate::drain::run(settings, &options, shutdown)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches as _;

    /// The flags state drain's defaults as text; they must be the
    /// constants the library uses when no flag is given.
    #[test]
    fn the_flags_defaults_are_the_drains() {
        let matches = DrainArgs::augment_args(clap::Command::new("drain"))
            .try_get_matches_from(["drain"])
            .unwrap();
        let args = DrainArgs::from_arg_matches(&matches).unwrap();
        let d = crate::drain::Options::default();
        assert_eq!(args.batch_size, d.batch_size);
        assert_eq!(args.batch_bytes, d.batch_bytes);
        assert_eq!(args.claim_timeout, d.claim_timeout);
        assert_eq!(args.idle_timeout, d.idle_timeout);
        assert_eq!(args.max_age, d.max_age);
    }
}
