//! The subcommands: one module each, each with a `run`.

pub mod check;
pub mod migrate;
pub mod probe_once;

use crate::cli::Command;
use crate::config::Settings;
use crate::error::Result;

/// Runs the chosen command to completion.
pub async fn run(command: Command, settings: &Settings) -> Result<()> {
    match command {
        Command::ProbeOnce(args) => {
            let sites = crate::sites::load(settings)?;
            let mut stdout = std::io::stdout().lock();
            probe_once::run(settings, sites, args.dry_run, &mut stdout)
                .await
                .map(|_| ())
        }
        Command::Drain(args) => {
            let options = crate::drain::Options {
                batch_size: args.batch_size,
                max_messages: args.max_messages,
                max_duration: args.max_duration,
                ..crate::drain::Options::default()
            };
            crate::drain::run(settings, &options).await.map(|_| ())
        }
        Command::Check(args) => check::run(settings, &args).await,
        Command::Migrate(args) => migrate::run(settings, args.only.as_deref()).await,
    }
}
