//! The command line: one variant per subcommand; doc comments are the help.

use clap::Parser;

use crate::commands::Command;

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
