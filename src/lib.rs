//! sitewatch: website availability checks as one-shot jobs. `probe-once`
//! checks every site concurrently and publishes one JSON message per check
//! to Kafka; `drain` stores what is pending in PostgreSQL.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap); doc comments are the help.
//! - [`config`]: flags, `SITEWATCH_*` environment and the sites file's
//!   `[settings]` merged and validated into [`config::Settings`].
//! - [`sites`]: the sites file and inline sites, validated into [`sites::Site`].
//! - [`probe`]: the checker: one site to one [`message::Check`], phase
//!   timings, certificate expiry; many sites with bounded concurrency.
//! - [`matcher`]: a site's body regex, matched as the body streams in.
//! - [`schedule`]: which sites a run checks: interval slots and shards.
//! - [`message`]: the Kafka message, the one place its shape is defined.
//! - [`kafka`]: client configuration shared by every Kafka client, the
//!   publisher, topic creation.
//! - [`drain`]: consume to the end as of the run, batch, store, commit.
//! - [`store`]: PostgreSQL: connect (TLS), migrate, store a batch, its
//!   rollup chunk and the partition offsets in one transaction; the day
//!   partitions of `checks`.
//! - [`rollup`]: per site, location and hour: counts and latency sketches;
//!   chunks per batch, folded into hourly and daily rollups.
//! - [`sketch`]: log-bucket latency sketches (1 % relative accuracy).
//! - [`state`]: when a site is down (thresholds, quorum), and its outages.
//! - [`report`]: per site, from the rollups: state, uptime, percentiles,
//!   incidents; rendered as a table, Markdown or JSON.
//! - [`commands`]: one module per subcommand, each with a `run`.
//! - [`telemetry`]: logs and summary lines.
//! - [`error`]: the two failure kinds and their exit codes.

pub mod cli;
pub mod commands;
pub mod conditions;
pub mod config;
pub mod drain;
pub mod error;
pub mod kafka;
pub mod matcher;
pub mod message;
pub mod probe;
pub mod report;
pub mod rollup;
pub mod schedule;
pub mod sites;
pub mod sketch;
pub mod state;
pub mod store;
pub mod telemetry;
